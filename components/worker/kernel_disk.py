"""Each kernel's writable directories as file systems of their own: hard limits on bytes and files, freed in O(1).

When the spawner is root, a kernel's working directory (kept across its restarts) and each generation's runtime
directory (its ``$TMPDIR``, IPython's and Matplotlib's state, its sockets and log) are each a tmpfs, mounted by the
spawner in the host's mount namespace at their usual paths: ``size=disk_limit_mb``, ``nr_inodes=disk_limit_inodes``,
mode 0700 (the sandbox then hands it to the kernel's uid).  A write past either limit fails at once with ENOSPC
("No space left on device") and the kernel keeps running; nothing is measured, so nothing walks.  When the kernel is
done, a lazy unmount (``MNT_DETACH``) drops the whole file system without the spawner looking at one file; its
memory goes when the last process that sees it (the kernel, being killed) is gone.  tmpfs pages are memory,
charged to the memory cgroup of whoever wrote them (the kernel's): see docs/security.md for how the disk and
memory limits add up.

The roots the directories live in are bound onto themselves (a mount point each) and listed for every spawner on
the host to read (L{filesystem_view.ROOTS_DIRS}), so that a kernel's new mount namespace drops every other kernel's
copy, this spawner's and the others', in one unmount per root (L{components.child.filesystem_view.enter});
otherwise each namespace would keep, until it ends, the file systems of every kernel alive when it was made.

Without root (no mounts), a directory is a plain one: its use is measured by a walk in a thread, every few
heartbeat ticks (L{components.worker.watchdog.Watchdog}) and after each execution, and a kernel past the limit is
stopped; it is removed by ``rmtree``, in a thread.  Nothing here walks or deletes on the reactor.
"""

import contextlib
import os
import shutil

from twisted.internet import defer
from twisted.logger import Logger

from components.child import filesystem_view
from components.worker.death_causes import DeathReason

#: the source every kernel file system is mounted with, then ``-<spawner pid>``
SOURCE = "cellserver-disk"


class KernelDisks:
    """The directories of one spawner's kernels: L{make} one, L{remove} it, L{check} it against the limits.

    @param config: the spawner's settings (C{disk_limit_mb}, C{disk_limit_inodes}).
    @param blocking: runs C{f(*args)} off the reactor, returning a Deferred (L{KernelHost.blocking}).
    @param mount: whether to mount (the spawner is root and sandboxes kernels).
    @param roots: the directories kernels' directories are made in, bound onto themselves when mounting.
    """

    log = Logger()

    def __init__(self, config, blocking, mount, roots=()):
        self._config = config
        self._blocking = blocking
        self.mounting = mount
        self._source = "{}-{}".format(SOURCE, os.getpid())
        #: directories that are file systems of their own (no walk measures them)
        self._mounted = set()
        #: removals under way, waited for by L{close}
        self._pending = set()
        self._roots = []
        self._registry = None
        if not self.mounting:
            self.log.warn(
                "SANDBOX REDUCED: kernels' directories are plain directories (the spawner cannot mount): their use "
                "is measured by a walk every few seconds, and a kernel past disk_limit_mb is stopped"
            )
            return
        stale = detach_stale()
        if stale:
            self.log.info("unmounted {n} kernel file system(s) a stopped spawner left", n=stale)
        try:
            points = {point for point, _, _ in filesystem_view.mounts()}
            roots = list(dict.fromkeys(roots))
            bound = [root for root in roots if root not in points]  # a mount point already is as good
            for root in bound:
                filesystem_view.bind_onto_itself(root)
                self._roots.append(root)
            self._registry = register_roots(os.getpid(), bound, [root for root in roots if root in points])
        except OSError as exc:
            _detach_all(self._roots)
            self._roots = []
            self._fall_back(exc)

    @classmethod
    def for_host(cls, host):
        """The disks of a L{KernelHost}'s kernels: mounted where the spawner is root and sandboxes them."""
        mount = host.sandbox is not None and os.geteuid() == 0
        return cls(host.config, host.blocking, mount, roots=(host.work_root, host.runtime_root))

    def _fall_back(self, exc):
        self.mounting = False
        self.log.warn("SANDBOX REDUCED: kernels' directories cannot be file systems of their own ({exc})", exc=exc)

    def make(self, path):
        """Create C{path} (mode 0700): a tmpfs of the configured limits when mounting."""
        os.makedirs(path, mode=0o700, exist_ok=True)
        if not self.mounting:
            return
        config = self._config
        try:
            filesystem_view.mount_disk(path, config.disk_limit_mb, config.disk_limit_inodes, self._source)
        except OSError as exc:
            self._fall_back(exc)
            return
        self._mounted.add(path)

    def remove(self, path):
        """Remove C{path} and all in it, off the reactor; the Deferred fires when it is gone."""
        mounted = path in self._mounted
        self._mounted.discard(path)
        d = self._blocking(_remove, path, mounted)
        d.addErrback(lambda failure: self.log.failure("could not remove {path}", failure, path=path))
        if not d.called:
            self._pending.add(d)
            d.addBoth(self._removed, d)
        return d

    def _removed(self, result, d):
        self._pending.discard(d)
        return result

    def check(self, path):
        """Fire with a L{DeathReason} if C{path} is past the limits, else None (a walk, in a thread, unless mounted)."""
        if path in self._mounted or not (self._config.disk_limit_mb or self._config.disk_limit_inodes):
            return defer.succeed(None)
        d = self._blocking(disk_use, path)
        d.addCallback(lambda use: self.limit_reason(*use))
        return d

    def over_limit(self, path, used_bytes):
        """C{used_bytes} of C{path}, measured after an execution: a L{DeathReason} when past the limit."""
        if path in self._mounted:
            return None
        return self.limit_reason(used_bytes, 0)

    def limit_reason(self, used_bytes, files):
        limit_mb, limit_files = self._config.disk_limit_mb, self._config.disk_limit_inodes
        if limit_mb and used_bytes > limit_mb * 1024 * 1024:
            return DeathReason(
                "disk_limit", "the kernel's working directory exceeded its disk limit of {} MB".format(limit_mb)
            )
        if limit_files and files > limit_files:
            return DeathReason(
                "disk_limit", "the kernel's working directory exceeded its limit of {} files".format(limit_files)
            )
        return None

    @defer.inlineCallbacks
    def close(self):
        """The spawner stops: wait for the removals under way, then unmount what is left (the roots' own mounts)."""
        yield defer.DeferredList(list(self._pending))
        left, self._mounted = sorted(self._mounted), set()
        yield self._blocking(_detach_all, left + self._roots)
        self._roots = []
        if self._registry is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._registry)
            self._registry = None


def _remove(path, mounted):
    """In a thread: detach C{path}'s file system (O(1)), then remove what is left (an empty directory if it was)."""
    if mounted:
        filesystem_view.detach(path)
    shutil.rmtree(path, ignore_errors=True)


def _detach_all(paths):
    for path in paths:
        filesystem_view.detach(path)


def register_roots(pid, bound, found=()):
    """List spawner C{pid}'s roots (L{filesystem_view.ROOTS_DIRS}), C{bound} onto themselves or C{found} mount
    points already; return the list's path.  Written whole, then renamed: a reader never sees half."""
    lines = ["bound " + root for root in bound] + ["found " + root for root in found]
    for directory in filesystem_view.ROOTS_DIRS:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError:
            continue
        path = os.path.join(directory, "disks-{}".format(pid))
        with open(os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(path + ".new", path)
        return path
    raise OSError("no directory for the list of roots ({})".format(", ".join(filesystem_view.ROOTS_DIRS)))


def _detach_stale_roots():
    """Unmount the roots that spawners no longer running bound onto themselves, and forget their lists."""
    dead = set()
    for pid, root, bound in filesystem_view.roots_listed():
        if _alive(pid):
            continue
        dead.add(pid)
        if bound:
            with contextlib.suppress(OSError):
                filesystem_view.detach(root)
    for pid in dead:
        for directory in filesystem_view.ROOTS_DIRS:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, "disks-{}".format(pid)))


def detach_stale():
    """Unmount the kernel file systems of spawners no longer running (one killed, say), then the roots they bound
    onto themselves; return how many file systems went."""
    stale = 0
    for point, fstype, source in filesystem_view.mounts():
        owner = source[len(SOURCE) + 1 :]
        if fstype != "tmpfs" or not source.startswith(SOURCE + "-") or not owner.isdigit() or _alive(int(owner)):
            continue
        try:
            if filesystem_view.detach(point):
                stale += 1
            os.rmdir(point)
        except OSError:
            pass
    _detach_stale_roots()
    return stale


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def disk_use(path):
    """C{(bytes, entries)} used under C{path} (no symlinks followed): a walk, for a thread."""
    total = entries = 0
    stack = [path]
    while stack:
        try:
            found = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in found:
            entries += 1
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                pass
    return total, entries
