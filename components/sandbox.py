"""The cage each kernel runs in.

Two halves, one idea:

- L{SandboxPolicy} (in the spawner) decides a kernel's cage: a uid/gid of its
  own from a configured range (never shared by two live kernels), a network
  namespace with no route out, its own view of the file system, a syscall
  filter, resource limits, a memory cgroup where the host has one.  Where the
  spawner is not root, or the host lacks a feature (L{probe}), it degrades
  loudly: the spawner logs it and ``cell.status`` reports the level.
- L{enter} (in the forked child, before any kernel code runs) applies it:
  new network namespace with only loopback, memory cgroup, own mount
  namespace (L{components.filesystem_view}), rlimits, the irreversible drop to
  the kernel's uid and gid, and last the seccomp filter
  (L{components.syscall_filter}).

The kernel's ZMQ channels use the ``ipc`` transport (unix sockets in a
directory the kernel owns), so a kernel needs no network at all.
"""

import ctypes
import fcntl
import os
import resource
import socket
import stat
import struct
import sys

from components import filesystem_view
from components import syscall_filter as syscall_filters
from components.libc import LIBC


CLONE_NEWNET = 0x40000000
PR_SET_DUMPABLE = 4
CGROUP_MEMORY_ROOT = "/sys/fs/cgroup/memory"

RLIMITS = {
    "cpu_s": resource.RLIMIT_CPU,
    "address_space_mb": resource.RLIMIT_AS,
    "processes": resource.RLIMIT_NPROC,
    "file_size_mb": resource.RLIMIT_FSIZE,
    "open_files": resource.RLIMIT_NOFILE,
}


class SandboxPolicy:
    """Builds each kernel's sandbox spec and hands out uids.

    @param config: the L{SpawnerConfig}.
    @param hidden: directories kernels must not see (the node directory, the
        spawner's roots of working and runtime directories).
    @param features: what this host allows (L{probe}); probed when not given.
    """

    def __init__(self, config, log=None, is_root=None, hidden=(), features=None):
        self.config = config
        self.is_root = (os.geteuid() == 0) if is_root is None else is_root
        self.full = self.is_root
        self.hidden = tuple(hidden) + tuple(config.hidden_paths)
        self.features = features if features is not None else probe()
        self._free_uids = list(range(config.sandbox_uid_base, config.sandbox_uid_base + config.sandbox_uid_count))
        self._free_uids.reverse()
        self.cgroup_root = None
        if self.is_root and config.memory_limit_mb and os.access(CGROUP_MEMORY_ROOT, os.W_OK):
            root = os.path.join(CGROUP_MEMORY_ROOT, "cellserver-{}".format(config.spawner_id))
            try:
                os.makedirs(root, exist_ok=True)
                self.cgroup_root = root
            except OSError:
                self.cgroup_root = None
        self.warnings = []
        unreadable = [p for p in _python_paths() if not _world_readable(p)]
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
            self.warnings.append("kernels share the host's view of the file system: {}".format(self.features.get("filesystem")))
        if config.sandbox_seccomp and not self.seccomp:
            self.full = False
            self.warnings.append("kernels run without a syscall filter: {}".format(self.features.get("seccomp")))
        elif self.cgroup_root is None and config.memory_limit_mb:
            self.warnings.append("no writable memory cgroup (cgroup v1 at {}); memory is bounded by RLIMIT_AS only".format(CGROUP_MEMORY_ROOT))

    def status(self):
        """What ``cell.status`` reports about this spawner's sandbox."""
        return {
            "level": "full" if self.full else "reduced",
            "separate_uids": self.is_root,
            "network_isolated": self.is_root and not self.config.allow_network,
            "memory_cgroup": self.cgroup_root is not None,
            "own_filesystem_view": self.filesystem,
            "syscall_filter": self.seccomp,
        }

    def allocate(self, kernel_name, uid=None, keep=()):
        """A spec for one kernel process (see L{enter}); C{uid}: keep this kernel's uid (restarts).

        C{keep}: the kernel's own directories, the only ones of the spawner's it sees.
        L{release} the uid when the kernel is dead and its last process is gone.
        """
        limits = {name: getattr(self.config, "limit_" + name) for name in RLIMITS}
        if not self.is_root:
            limits.pop("processes")  # per-uid: would count the spawner's own processes
        spec = {"uid": None, "gid": None, "netns": False, "limits": limits, "cgroup": None, "memory_limit_mb": self.config.memory_limit_mb, "seccomp": self.seccomp}
        if self.filesystem:
            spec["filesystem"] = self.filesystem_view(keep)
        if self.is_root:
            if uid is None and not self._free_uids:
                return None
            if uid is None:
                uid = self._free_uids.pop()
            spec.update(uid=uid, gid=uid, netns=not self.config.allow_network)
            if self.cgroup_root is not None:
                spec["cgroup"] = os.path.join(self.cgroup_root, kernel_name)
        return spec

    def filesystem_view(self, keep):
        """The C{filesystem} part of a spec: see L{components.filesystem_view.enter}."""
        return {"keep": list(keep), "hide": list(self.hidden), "scratch_mb": self.config.disk_limit_mb or 256}

    def release(self, uid):
        if uid is not None:
            self._free_uids.append(uid)

    def prepare_dirs(self, spec, *paths):
        """Give the kernel's uid its directories (mode 0700)."""
        for path in paths:
            os.chmod(path, 0o700)
            if spec.get("uid") is not None:
                os.chown(path, spec["uid"], spec["gid"])


def _python_paths():
    """Directories a kernel must read to import modules."""
    import sysconfig

    paths = {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return sorted(paths)


def _world_readable(path):
    """Whether any user can reach C{path} (x on every parent, r+x on it)."""
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        try:
            mode = os.stat(os.sep.join(parts[:i]) or os.sep).st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def kernel_path(python_bin=None):
    """The ``PATH`` of a kernel: its own environment's ``bin`` first, then the system's.

    Only directories any user can enter and list are kept (a kernel runs as
    another uid): a missing program then gets the shell's or IPython's usual
    "not found" instead of ``PermissionError``, and ``python3``, ``pip`` and
    the like are the kernel's own, not the system's.
    """
    first = python_bin or os.path.dirname(os.path.abspath(sys.executable))
    candidates = [first, "/usr/local/bin", "/usr/bin", "/bin"]
    kept = []
    for directory in candidates:
        if directory not in kept and os.path.isdir(directory) and _world_readable(directory):
            kept.append(directory)
    return os.pathsep.join(kept)


def enter(spec, syscall_filter=None):
    """In the forked child: apply C{spec}.  Raises if any step fails (the child then exits).

    C{syscall_filter}: the filter the master built (L{components.syscall_filter.build}),
    loaded last when C{spec["seccomp"]}.
    """
    if spec.get("netns"):
        _unshare_network()
    if spec.get("cgroup"):
        _join_memory_cgroup(spec["cgroup"], spec["memory_limit_mb"])
    view = spec.get("filesystem")
    if view:
        filesystem_view.enter(view["keep"], view["hide"], view["scratch_mb"])
    for name, value in spec["limits"].items():
        if value:
            amount = int(value * 1024 * 1024) if name.endswith("_mb") else int(value)
            if name == "cpu_s":
                resource.setrlimit(RLIMITS[name], (amount, amount + 5))
            else:
                resource.setrlimit(RLIMITS[name], (amount, amount))
    if spec.get("uid") is not None:
        os.setgroups([])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])
        if os.getuid() != spec["uid"] or os.geteuid() != spec["uid"]:
            raise RuntimeError("could not drop privileges")
        # The uid change left the process "non-dumpable": its /proc entries would belong to root, so
        # the kernel's own processes (forked, not yet exec'd) would be hidden from it by hidepid.  It
        # is an ordinary process of its uid now; ptrace stays refused by the syscall filter, and no
        # core files are written.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    if spec.get("seccomp"):
        if syscall_filter is None:
            raise RuntimeError("the spec asks for a syscall filter and none was built")
        syscall_filters.load(syscall_filter)


def probe():
    """What this host lets a kernel sandbox do: {feature: True or why not}.

    Tried in a throwaway child process (``python -m components.sandbox
    --probe``), so that nothing here changes the caller.
    """
    import json
    import subprocess

    try:
        out = subprocess.run([sys.executable, "-m", "components.sandbox", "--probe"], capture_output=True, timeout=30, check=False)
        return json.loads(out.stdout.decode() or "{}") or {"filesystem": "the probe failed", "seccomp": "the probe failed"}
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return {"filesystem": "the probe failed: {}".format(exc), "seccomp": "the probe failed: {}".format(exc)}


def _probe_here():
    import json

    found = {}
    if os.geteuid() != 0:
        found["filesystem"] = "needs root"
    else:
        try:
            filesystem_view.enter([], [], 1)
            found["filesystem"] = True
        except OSError as exc:
            found["filesystem"] = "a private mount namespace failed ({})".format(exc)
    try:
        built = syscall_filters.build()
        if built is None:
            found["seccomp"] = "libseccomp is not installed"
        else:
            syscall_filters.load(built)
            found["seccomp"] = True
    except OSError as exc:
        found["seccomp"] = "loading a seccomp filter failed ({})".format(exc)
    sys.stdout.write(json.dumps(found))


def _unshare_network():
    if LIBC.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "unshare(CLONE_NEWNET): {}".format(os.strerror(err)))
    # Loopback only (inside the namespace): ipykernel binds an internal pipe on 127.0.0.1.
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, b"\0" * 14)
        flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, request)[:18])[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b"\0" * 14))


def _join_memory_cgroup(path, limit_mb):
    os.makedirs(path, exist_ok=True)
    limit = str(int(limit_mb * 1024 * 1024))
    for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
        try:
            with open(os.path.join(path, name), "w") as f:
                f.write(limit)
        except OSError:
            pass  # memsw exists only with swap accounting
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def cgroup_oom_killed(path):
    """Whether the kernel OOM-killer fired in this cgroup (read before removal)."""
    try:
        with open(os.path.join(path, "memory.oom_control")) as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1]) > 0
        with open(os.path.join(path, "memory.failcnt")) as f:
            return int(f.read().strip() or 0) > 0
    except OSError:
        return False


def cgroup_pids(path):
    """Every process still in the cgroup (a kernel's escaped descendants included)."""
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(line) for line in f if line.strip()]
    except OSError:
        return []


def cgroup_task_count(path):
    """Threads and processes in the cgroup (what RLIMIT_NPROC counts, roughly)."""
    try:
        with open(os.path.join(path, "tasks")) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def try_remove_cgroup(path):
    """Remove an empty cgroup; False while processes are still leaving it."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


if __name__ == "__main__":
    if sys.argv[1:] == ["--probe"]:
        _probe_here()
