"""What a kernel sees of the file system: its own mount namespace, made in the forked child.

Applied by L{components.child.sandbox.enter} while the child is still root, before
it drops to the kernel's uid and before any user code runs:

- every mount read-only and ``nosuid`` (the system, the kernel's Python
  environment, the project), recursively, in one ``mount_setattr`` call;
- a private ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (tmpfs, limited in bytes and
  in files), so nothing is shared with other kernels or the host through them;
- the copies of other kernels' file systems (their working and runtime directories,
  L{components.worker.kernel_disk}), this spawner's and every other spawner's on the
  host, that the new namespace starts with dropped, so that it does not keep them in
  memory after those kernels are gone: each spawner binds the roots it keeps them in
  onto themselves and lists them (L{ROOTS_DIRS}), and one lazy unmount of a root
  drops every copy below it;
- the node's state directories (node directory, the spawner's roots of
  working and runtime directories) covered by empty read-only tmpfs: absent;
- the kernel's own directories (working directory, runtime directory with
  its ZMQ sockets) bound back at their usual paths, writable, so that the
  spawner, outside, still sees the same inodes; its Python environment and
  the project bound back read-only where a scratch file system covers them
  (a checkout in ``/tmp``);
- a ``/proc`` of its own with ``hidepid=invisible``: only its uid's
  processes (its own) are listed.

The kernel's own directories are held with ``open_tree`` clones (Linux 5.2) taken
before anything is dropped or covered, and attached again with ``move_mount``.

Each step is a handful of syscalls: no new process, no ``exec``, which fits a
kernel forked from a warm master (bubblewrap would ``exec``).
"""

import ctypes
import errno
import os
import re

from components.child.libc import LIBC

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8
OPEN_TREE_CLONE = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
#: the same on every architecture (the syscall table is shared from 5.1 on); used where the C library has no wrapper
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2

#: private scratch file systems of every kernel
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
#: most files (inodes) in each of them unless told: the spawner's disk_limit_inodes default
SCRATCH_INODES = 20000
#: where each spawner lists the roots of its kernels' directories (``disks-<its pid>``: a line ``bound <path>`` for
#: a root it bound onto itself, ``found <path>`` for one that was a mount point already); root's alone, beside the
#: uid locks (L{components.worker.uid_range})
ROOTS_DIRS = ("/run/cellserver", "/var/tmp/cellserver")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "{}: {}".format(what, os.strerror(err)))


def _mount(source, target, fstype, flags, data=None):
    _check(
        LIBC.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        "mount {} on {}".format(fstype or source, target),
    )


def mount_disk(path, size_mb, inodes, source):
    """Mount a tmpfs of C{size_mb} MB and C{inodes} files (0: no limit) at C{path}, mode 0700, owned by root."""
    _mount(
        source,
        path,
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        "mode=0700,size={}m,nr_inodes={}".format(max(0, int(size_mb)), max(0, int(inodes))),
    )


def bind_onto_itself(path):
    """Make C{path} a mount point of its own (private: nothing mounted below it propagates anywhere)."""
    _mount(path, path, None, MS_BIND)
    _mount(None, path, None, MS_PRIVATE)


def detach(path):
    """Lazily unmount C{path} and everything mounted below it; False if it is no mount point."""
    if LIBC.umount2(path.encode(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(err, "umount {}: {}".format(path, os.strerror(err)))


def mounts():
    """C{(mount point, file system type, source)} of every mount of the caller's namespace, parents first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            found.append((_unescape(fields[4]), fields[sep + 1], _unescape(fields[sep + 2])))
    return found


def roots_listed():
    """C{(spawner pid, path, bound)} of every root a spawner on this host listed in L{ROOTS_DIRS}."""
    found = []
    for directory in ROOTS_DIRS:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            pid = name[len("disks-") :]
            if not name.startswith("disks-") or not pid.isdigit():
                continue
            try:
                with open(os.path.join(directory, name)) as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for line in lines:
                kind, _, path = line.partition(" ")
                if kind in ("bound", "found") and path.startswith("/") and path != "/":
                    found.append((int(pid), path, kind == "bound"))
    return found


def _unescape(field):
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _read_only_everywhere():
    """Every mount of the new namespace read-only and nosuid (device nodes stay usable)."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
    if hasattr(LIBC, "mount_setattr"):
        _check(
            LIBC.mount_setattr(AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)), "mount_setattr /"
        )
        return
    with open("/proc/self/mountinfo") as f:  # Linux before 5.12: one remount per mount point
        points = [line.split()[4] for line in f]
    for point in points:
        _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def _hold(path):
    """A handle on C{path} to attach again later, valid whatever is unmounted meanwhile: C{(fd, is_tree)}.

    An ``open_tree`` clone (a detached copy of the mount) where the kernel has it, else an ``O_PATH`` fd
    (bound from ``/proc/self/fd``; its mount must then stay attached).
    """
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC
    if hasattr(LIBC, "open_tree"):
        fd = LIBC.open_tree(AT_FDCWD, path.encode(), flags)
    else:
        fd = LIBC.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(), flags)
    if fd >= 0:
        return fd, True
    err = ctypes.get_errno()
    if err != errno.ENOSYS:
        raise OSError(err, "open_tree {}: {}".format(path, os.strerror(err)))
    return os.open(path, os.O_PATH | os.O_DIRECTORY), False


def _attach(held, path, flags):
    """Attach what L{_hold} took at C{path} (made anew inside a fresh tmpfs) with C{flags}."""
    fd, is_tree = held
    os.makedirs(path, mode=0o755, exist_ok=True)
    if is_tree:
        move = getattr(LIBC, "move_mount", None)
        args = (fd, b"", AT_FDCWD, path.encode(), MOVE_MOUNT_F_EMPTY_PATH)
        _check(move(*args) if move is not None else LIBC.syscall(SYS_MOVE_MOUNT, *args), "move_mount " + path)
    else:
        _mount("/proc/self/fd/{}".format(fd), path, None, MS_BIND)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | flags)
    os.close(fd)


def _drop_copies(hide, held, needed):
    """Unmount, in this namespace, the kernels' file systems of every spawner on the host (other kernels').

    Each root a spawner listed (L{roots_listed}) and each hidden root that is a mount point goes in one lazy
    unmount: C{held}, every kept directory, is an ``open_tree`` clone, independent of them; a root holding what the
    kernel needs (C{needed}: its Python environment) stays.  Without clones, only what is below a hidden root
    goes, mount by mount, except the kept ones.
    """
    points = [point for point, _, _ in mounts()]
    kept = [path for path, _ in held]
    if all(is_tree for _, (_, is_tree) in held):
        listed = [path for _, path, _ in roots_listed() if not any(_under(p, [path]) for p in needed)]
        for root in dict.fromkeys(list(hide) + listed):
            if root in points and root != "/":
                detach(root)
        hide = [root for root in hide if root not in points]
    for root in hide:
        for point in reversed(points):  # the deepest first
            if point != root and _under(point, [root]) and not any(_under(path, [point]) for path in kept):
                detach(point)


def _under(path, roots):
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def enter(keep, hide, scratch_mb, show=(), hide_processes=True, scratch_inodes=SCRATCH_INODES, private=(), owner=None):
    """Give the calling process its own view (see the module docstring).

    @param keep: directories bound back writable at their own paths (the kernel's own).
    @param hide: directories replaced by an empty read-only directory.
    @param scratch_mb: size of each private scratch file system.
    @param scratch_inodes: most files (inodes) in each of them (0: no limit).
    @param show: directories the kernel needs read-only (its Python environment, the
        project), bound back where a scratch file system covers them (a checkout in /tmp).
    @param private: directories that get a scratch file system of their own (limited like the others, mode 0700,
        owned by C{owner}, a C{(uid, gid)}) in this namespace only: a one-shot child's working directory, whose
        files nobody outside reads, and which goes with the child's last process (no walk, no delete).
    """
    _check(LIBC.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks back to the host
    scratch = [p for p in SCRATCH if os.path.isdir(p)]
    needed = list(show)
    show = [p for p in show if _under(p, scratch) and os.path.isdir(p)]
    # Handles on the directories to bind back, taken before anything is dropped or covered.
    shown = [(path, _hold(path)) for path in show]
    kept = [(path, _hold(path)) for path in keep]
    _drop_copies(hide, shown + kept, needed)
    _read_only_everywhere()
    size = "size={}m,nr_inodes={}".format(max(1, int(scratch_mb)), max(0, int(scratch_inodes)))
    for path in scratch:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777," + size)
    for path, held in shown:
        _attach(held, path, MS_RDONLY | MS_NOSUID | MS_NODEV)
    # What a scratch file system covers is gone already, unless it is inside a directory bound back.
    covers = [p for p in hide if os.path.isdir(p) and (not _under(p, scratch) or _under(p, show))]
    for path in covers:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k")
    for path, held in kept:
        _attach(held, path, MS_NOSUID | MS_NODEV)
    for path in private:
        os.makedirs(path, mode=0o755, exist_ok=True)
        mine = "mode=0700" + (",uid={},gid={}".format(*owner) if owner is not None else "")
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, mine + "," + size)
    for path in covers:
        _mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if hide_processes:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")
