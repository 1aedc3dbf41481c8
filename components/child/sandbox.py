"""The cage of a forked kernel or one-shot child, applied in the child (see L{enter}).

Before any of the kernel's code runs: a network namespace with only
loopback, a memory cgroup, its own mount namespace
(L{components.child.filesystem_view}), rlimits, the irreversible drop to the
kernel's uid and gid, and last the seccomp filter
(L{components.child.syscall_filter}).  What each kernel gets is decided in
the spawner by L{components.worker.sandbox_policy.SandboxPolicy}.

The kernel's ZMQ channels use the ``ipc`` transport (unix sockets in a
directory the kernel owns), so a kernel needs no network at all.

``python -m components.child.sandbox --probe`` tells what this host allows.
"""

import ctypes
import fcntl
import os
import resource
import signal
import socket
import stat
import struct
import sys
import time

from components.child import filesystem_view
from components.child import syscall_filter as syscall_filters
from components.child.libc import LIBC

CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
PR_SET_DUMPABLE = 4
CGROUP_MEMORY_ROOT = "/sys/fs/cgroup/memory"

RLIMITS = {
    "cpu_s": resource.RLIMIT_CPU,
    "address_space_mb": resource.RLIMIT_AS,
    "processes": resource.RLIMIT_NPROC,
    "file_size_mb": resource.RLIMIT_FSIZE,
    "open_files": resource.RLIMIT_NOFILE,
}


def world_readable(path):
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
        if directory not in kept and os.path.isdir(directory) and world_readable(directory):
            kept.append(directory)
    return os.pathsep.join(kept)


def enter(spec, syscall_filter=None):
    """In the forked child: apply C{spec}.  Raises if any step fails (the child then exits).

    C{syscall_filter}: the filter the master built (L{components.child.syscall_filter.build}),
    loaded last when C{spec["seccomp"]}.
    """
    if spec.get("netns"):
        unshare_network()
    if spec.get("ipcns"):
        # SysV IPC objects outlive their processes: a segment a stranger left must not wait for the uid's next user.
        _unshare(CLONE_NEWIPC, "CLONE_NEWIPC")
    if spec.get("cgroup"):
        if not spec.get("cgroup_made"):
            os.makedirs(spec["cgroup"], exist_ok=True)
            set_memory_limit(spec["cgroup"], spec["memory_limit_mb"])
        _join_cgroup(spec["cgroup"])
    view = spec.get("filesystem")
    if view:
        filesystem_view.enter(
            view["keep"],
            view["hide"],
            view["scratch_mb"],
            show=view.get("show", ()),
            scratch_inodes=view.get("scratch_inodes", filesystem_view.SCRATCH_INODES),
            private=view.get("private", ()),
            owner=(spec["uid"], spec["gid"]) if spec.get("uid") is not None else None,
        )
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


def _probe_here():
    """Try each feature as a kernel would, in the order a kernel would; print what worked."""
    import json

    found = {}
    built = syscall_filters.build()  # in the master, before anything forks (and before /tmp is replaced)
    if os.geteuid() != 0:
        found["filesystem"] = "needs root"
    else:
        try:
            filesystem_view.enter([], [], 1)
            found["filesystem"] = True
        except OSError as exc:
            found["filesystem"] = "a private mount namespace failed ({})".format(exc)
    if built is None:
        found["seccomp"] = "libseccomp or pyseccomp is not installed"
    else:
        try:
            syscall_filters.load(built)
            found["seccomp"] = True
        except OSError as exc:
            found["seccomp"] = "loading a seccomp filter failed ({})".format(exc)
    sys.stdout.write(json.dumps(found))


def _unshare(flag, name):
    if LIBC.unshare(flag) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "unshare({}): {}".format(name, os.strerror(err)))


def unshare_network():
    _unshare(CLONE_NEWNET, "CLONE_NEWNET")
    # Loopback only (inside the namespace): ipykernel binds an internal pipe on 127.0.0.1.
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, b"\0" * 14)
        flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, request)[:18])[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b"\0" * 14))


def set_memory_limit(path, limit_mb):
    limit = str(int(limit_mb * 1024 * 1024))
    for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
        try:
            with open(os.path.join(path, name), "w") as f:
                f.write(limit)
        except OSError:
            pass  # memsw exists only with swap accounting


def _join_cgroup(path):
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def cgroup_oom_count(path):
    """How many times the OOM killer fired in the cgroup (cumulative; 0 where the kernel does not say)."""
    try:
        with open(os.path.join(path, "memory.oom_control")) as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


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


def cgroup_tasks(path):
    """Every thread in the cgroup (cgroup v1's ``tasks``)."""
    try:
        with open(os.path.join(path, "tasks")) as f:
            return [int(line) for line in f if line.strip()]
    except OSError:
        return []


def kill_cgroup(path):
    """SIGKILL every process now in the cgroup (one pass: callers repeat it until it finds none); how many there were."""
    pids = cgroup_pids(path)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(pids)


def empty_cgroups(paths, seconds, interval=0.01):
    """Kill the processes of each cgroup until all are empty or C{seconds} have passed; the paths still holding some."""
    deadline = time.monotonic() + seconds
    while True:
        paths = [path for path in paths if kill_cgroup(path)]
        if not paths or time.monotonic() > deadline:
            return paths
        time.sleep(interval)  # the killed processes are leaving their cgroups


def signal_group(pid, signum):
    """C{signum} to the process group C{pid} leads (to the process alone if it has no group of its own)."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def cgroup_task_count(path):
    """Threads and processes in the cgroup (what RLIMIT_NPROC counts, roughly)."""
    return len(cgroup_tasks(path))


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
