"""The spawner's side of the kernel sandbox: what cage each kernel gets, and its uid.

L{SandboxPolicy} decides a kernel's cage: a uid/gid of its own from a
configured range (never shared by two live kernels), a network namespace with
no route out, its own view of the file system, a syscall filter, resource
limits, a memory cgroup where the host has one.  Where the spawner is not
root, or the host lacks a feature (L{probe}), it degrades loudly: the spawner
logs it and ``cell.status`` reports the level.  The child applies the spec
with L{components.child.sandbox.enter}.
"""

import collections
import json
import os
import subprocess

from components.child.sandbox import (
    CGROUP_MEMORY_ROOT,
    RLIMITS,
    cgroup_task_count,
    empty_cgroups,
    kill_cgroup,
    try_remove_cgroup,
    world_readable,
)
from components.worker import uid_range
from components.worker.kernel_environment import KernelEnvironment


class SandboxPolicy:
    """Builds each kernel's sandbox spec and hands out uids.

    @param config: the L{SpawnerConfig}.
    @param hidden: directories kernels must not see (the node directory, the
        spawner's roots of working and runtime directories).
    @param features: what this host allows (L{probe}); probed when not given.
    @param environment: the kernels' L{KernelEnvironment} (default: the spawner's own Python).
    @param shown: more environments kernels run in (the Sage environment): kernels may read them too.
    """

    def __init__(self, config, is_root=None, hidden=(), features=None, environment=None, shown=()):
        self.config = config
        self.environment = environment or KernelEnvironment()
        self.is_root = (os.geteuid() == 0) if is_root is None else is_root
        self.full = self.is_root
        self.hidden = tuple(hidden) + tuple(config.hidden_paths)
        self.features = features if features is not None else probe(self.environment)
        #: this spawner's uids, apart from every other spawner's on the host (L{uid_range}); None when not root
        self.uids = None
        if self.is_root:
            self.uids = uid_range.claim(
                config.spawner_id,
                config.sandbox_uid_base,
                config.sandbox_uid_count,
                config.oneshot_children,
                config.sandbox_uid_ranges,
                reap=reap_stale_cgroups,
            )
        # Handed out first in, first out: a uid just freed is the last to be used again.
        self._free_uids = collections.deque(range(self.uids.first, self.uids.oneshot_first) if self.uids else ())
        self.cgroup_root = None
        if self.is_root and config.memory_limit_mb and os.access(CGROUP_MEMORY_ROOT, os.W_OK):
            # Named after its uid range too: two spawners with one id on one host keep apart.
            root = os.path.join(CGROUP_MEMORY_ROOT, "cellserver-{}-{}".format(config.spawner_id, self.uids.first))
            try:
                os.makedirs(root, exist_ok=True)
                self.cgroup_root = root
            except OSError:
                self.cgroup_root = None
        self.warnings = []
        #: empty kernel cgroups a previous spawner of this id left (one killed, say), removed at start
        self.stale_cgroups_removed = remove_empty_cgroups(self.cgroup_root) if self.cgroup_root else 0
        #: what a kernel must read: its Python environment (and the Sage environment) and the project
        self.python_dirs = sorted(set(self.environment.paths()).union(*(env.paths() for env in shown)))
        unreadable = [p for p in self.python_dirs if not world_readable(p)]
        if self.is_root and unreadable:
            self.is_root = False
            self.full = False
            self.warnings.append(
                "other users cannot read {}, so kernels cannot switch to their own uids. Install the project with a "
                "Python readable by all users (the Makefile prefers /usr/bin/python3).".format(unreadable[0])
            )
        if not self.is_root:
            self.warnings.append(
                "the spawner is not root: kernels run as the spawner's own user, share its network, see its files and "
                "have no memory cgroup; only rlimits and the syscall filter apply. Run the spawner as root for the full "
                "sandbox (docs/security.md)."
            )
        self.filesystem = self.is_root and config.sandbox_filesystem and self.features.get("filesystem") is True
        self.seccomp = config.sandbox_seccomp and self.features.get("seccomp") is True
        if self.is_root and config.sandbox_filesystem and not self.filesystem:
            self.full = False
            self.warnings.append(
                "kernels share the host's view of the file system: {}".format(self.features.get("filesystem"))
            )
        if config.sandbox_seccomp and not self.seccomp:
            self.full = False
            self.warnings.append("kernels run without a syscall filter: {}".format(self.features.get("seccomp")))
        elif self.cgroup_root is None and config.memory_limit_mb:
            self.warnings.append(
                "no writable memory cgroup (cgroup v1 at {}); memory is bounded by RLIMIT_AS only".format(
                    CGROUP_MEMORY_ROOT
                )
            )

    def status(self):
        """What ``cell.status`` reports about this spawner's sandbox."""
        return {
            "level": "full" if self.full else "reduced",
            "separate_uids": self.is_root,
            "network_isolated": self.is_root and not self.config.allow_network,
            "memory_cgroup": self.cgroup_root is not None,
            "own_filesystem_view": self.filesystem,
            "syscall_filter": self.seccomp,
            #: [first, end) of this spawner's uids (its kernels', then its one-shot children's), None when not root
            "uids": [self.uids.first, self.uids.end] if self.uids else None,
        }

    def allocate(self, kernel_name, uid=None, keep=()):
        """A spec for one kernel process (see L{enter}); C{uid}: keep this kernel's uid (restarts).

        C{keep}: the kernel's own directories, the only ones of the spawner's it sees.
        L{release} the uid when the kernel is dead and its last process is gone.
        """
        limits = {name: getattr(self.config, "limit_" + name) for name in RLIMITS}
        if not self.is_root:
            limits.pop("processes")  # per-uid: would count the spawner's own processes
        spec = {
            "uid": None,
            "gid": None,
            "netns": False,
            "limits": limits,
            "cgroup": None,
            "memory_limit_mb": self.config.memory_limit_mb,
            "seccomp": self.seccomp,
        }
        if self.filesystem:
            spec["filesystem"] = self.filesystem_view(keep)
        if self.is_root:
            if uid is None and not self._free_uids:
                return None
            if uid is None:
                uid = self._free_uids.popleft()
            spec.update(uid=uid, gid=uid, netns=not self.config.allow_network, ipcns=True)
            if self.cgroup_root is not None:
                spec["cgroup"] = os.path.join(self.cgroup_root, kernel_name)
        return spec

    def filesystem_view(self, keep):
        """The C{filesystem} part of a spec: see L{components.child.filesystem_view.enter}."""
        return {
            "keep": list(keep),
            "hide": list(self.hidden),
            "show": self.python_dirs,
            "scratch_mb": self.config.disk_limit_mb or 256,
            "scratch_inodes": self.config.disk_limit_inodes,
        }

    def close(self):
        """At the spawner's stop, once the master and the template are gone: kill whatever is still in this
        spawner's cgroups (a one-shot's daemon outlives a template that was SIGKILLed mid-run), remove them and
        the root, and give up the uid range.  False while a cgroup still holds processes (call again)."""
        if self.cgroup_root is not None:
            for entry in _cgroups_under(self.cgroup_root):
                kill_cgroup(entry)
            remove_empty_cgroups(self.cgroup_root)
            if not try_remove_cgroup(self.cgroup_root):
                return False
        if self.uids is not None:
            self.uids.release()
        return True

    def release(self, uid):
        if uid is not None:
            self._free_uids.append(uid)

    def prepare_dirs(self, spec, *paths):
        """Give the kernel's uid its directories (mode 0700)."""
        for path in paths:
            os.chmod(path, 0o700)
            if spec.get("uid") is not None:
                os.chown(path, spec["uid"], spec["gid"])


def probe(environment):
    """What this host lets a kernel sandbox do: {feature: True or why not}.

    Tried in a throwaway child process (``python -m components.child.sandbox
    --probe``), so that nothing here changes the caller.
    """
    try:
        out = subprocess.run(
            environment.command("components.child.sandbox", "--probe"),
            env=environment.env(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        return json.loads(out.stdout.decode() or "{}") or {
            "filesystem": "the probe failed",
            "seccomp": "the probe failed",
        }
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return {"filesystem": "the probe failed: {}".format(exc), "seccomp": "the probe failed: {}".format(exc)}


def _cgroups_under(root):
    try:
        return [entry.path for entry in os.scandir(root) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def reap_stale_cgroups(first, seconds=5.0):
    """End what a dead spawner of the uid range starting at C{first} left in its cgroups, and remove them.

    Called with the range's lock held, so no live spawner owns these: a
    spawner SIGKILLed (its keeper starts another) leaves its one-shots'
    daemons, which no parent death signal reaches."""
    suffix = "-{}".format(first)
    try:
        roots = [
            entry.path
            for entry in os.scandir(CGROUP_MEMORY_ROOT)
            if entry.name.startswith("cellserver-") and entry.name.endswith(suffix)
        ]
    except OSError:
        return
    for root in roots:
        empty_cgroups(_cgroups_under(root) + [root], seconds)
        remove_empty_cgroups(root)
        try_remove_cgroup(root)


def remove_empty_cgroups(root):
    """Remove the empty cgroups under C{root}; return how many went (those with processes stay)."""
    removed = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and not cgroup_task_count(entry.path) and try_remove_cgroup(entry.path):
            removed += 1
    return removed
