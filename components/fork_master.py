"""The preloaded master process that forks kernels.

Started by the spawner as ``python -m components.fork_master``.  It imports
ipykernel, IPython and the preload list once, *before* any ZMQ context or
thread exists, then serves fork requests.  Each child becomes one ipykernel
in its own session and process group, with its own working directory and
fresh random state, and dies with the master (``PR_SET_PDEATHSIG``).

Protocol: one JSON object per line.  Requests on stdin::

    {"op": "spawn", "ref": str, "connection_file": str, "cwd": str,
     "env": {str: str}, "log_file": str, "sandbox": {...},   # see components.sandbox
     "max_output_bytes": int}                        # per request and stream, in the kernel
    {"op": "signal", "pid": int, "signum": int}      # to the kernel's process group
                                                     # (SIGKILL: and to everything in its cgroup)

Events on stdout::

    {"op": "ready", "pid": int, "preload_s": float, "preloaded": [str]}
    {"op": "spawned", "ref": str, "pid": int}
    {"op": "exited", "pid": int, "status": int, "oom": bool}
                                                     # status as os.waitstatus_to_exitcode

When stdin closes (the spawner went away, however it died) the master kills
every kernel's process group and exits.  It never writes anything else to
stdout: children redirect their fds before running any kernel code.
"""

import argparse
import gc
import json
import os
import selectors
import signal
import sys
import threading
import time

from components import sandbox
from components.free_slots import FreeSlots

PR_SET_PDEATHSIG = 1
M_ARENA_MAX = -8  # glibc's mallopt parameter


def die_with_parent(signum=signal.SIGKILL):
    """Ask Linux to send C{signum} to this process when its parent exits."""
    sandbox.LIBC.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)


def preload(modules):
    """Import what every kernel needs, so forked children share it.

    debugpy is kept out on purpose: importing it in the master made forked
    kernels stop answering (see docs/architecture.md), and a public kernel
    has no use for a debugger.  Blocking its import makes ipykernel run
    without the debugger.
    """
    sys.modules["debugpy"] = None
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    import IPython  # noqa: F401
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import ipykernel.zmqshell  # noqa: F401

    import components.kernel_app  # noqa: F401
    import components.kernel_streams  # noqa: F401

    # What IPKernelApp.initialize() would otherwise import in every child (measured:
    # the modules it imported in a child; 25 ms of a kernel's start).
    import bdb  # noqa: F401
    import code  # noqa: F401
    import faulthandler  # noqa: F401
    import pdb  # noqa: F401

    import IPython.core.completerlib  # noqa: F401
    import IPython.core.debugger  # noqa: F401
    import IPython.core.magic_arguments  # noqa: F401
    import IPython.core.magics.execution  # noqa: F401
    import IPython.core.oinspect  # noqa: F401
    import IPython.extensions.storemagic  # noqa: F401
    import IPython.utils.module_paths  # noqa: F401
    import IPython.utils.wildcard  # noqa: F401
    import ipykernel.debugger  # noqa: F401
    import tornado.gen  # noqa: F401
    import tornado.locks  # noqa: F401
    import tornado.platform.asyncio  # noqa: F401
    import tornado.queues  # noqa: F401

    loaded = []
    for name in modules:
        try:
            __import__(name)
        except ImportError as exc:
            _log("preload of {!r} skipped: {}".format(name, exc))
            continue
        loaded.append(name)
        if name == "matplotlib":
            _warm_matplotlib()
        if name == "numpy":
            import numpy.random  # noqa: F401  (lazy in numpy 2; every child's reseed would import it: 12 ms)
    return loaded


def _warm_matplotlib():
    """Draw one figure so that a kernel's first plot does not pay for fonts."""
    import io

    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 2))
    plt.plot([0, 1], [0, 1])
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    # The font list stays cached; the open FreeType faces do not survive a fork anyway
    # (matplotlib empties that cache in every child), and freeing them there copied
    # 0.4 MB of the master's pages into each kernel.
    import matplotlib.font_manager

    get_font = getattr(matplotlib.font_manager, "_get_font", None)
    if hasattr(get_font, "cache_clear"):
        get_font.cache_clear()


def _log(text):
    sys.stderr.write("fork_master: {}\n".format(text))
    sys.stderr.flush()


class ForkMaster:
    """Serves spawn and signal requests; reaps children and reports exits."""

    def __init__(self, stdin_fd, stdout_fd, syscall_filter=None):
        self._in = stdin_fd
        self._syscall_filter = syscall_filter
        self._out = stdout_fd
        self._buffer = b""
        self._children = {}  # pid -> cgroup path or None
        self._stale_cgroups = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)

    def send(self, event):
        data = (json.dumps(event) + "\n").encode()
        while data:
            n = os.write(self._out, data)
            data = data[n:]

    def serve(self):
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self._shutdown(0))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        selector = selectors.DefaultSelector()
        selector.register(self._in, selectors.EVENT_READ, "control")
        selector.register(self._wake_r, selectors.EVENT_READ, "signal")
        while True:
            for key, _ in selector.select(1.0 if self._stale_cgroups else None):
                if key.data == "signal":
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    self._reap()
                else:
                    chunk = os.read(self._in, 65536)
                    if not chunk:
                        self._shutdown(0)
                    self._buffer += chunk
                    while b"\n" in self._buffer:
                        line, self._buffer = self._buffer.split(b"\n", 1)
                        if line.strip():
                            self._handle(json.loads(line))
            self._reap()
            self._stale_cgroups = [c for c in self._stale_cgroups if not sandbox.try_remove_cgroup(c)]

    def _handle(self, request):
        op = request.get("op")
        if op == "spawn":
            pid = os.fork()
            if pid == 0:
                self._become_kernel(request)  # never returns
            self._children[pid] = (request.get("sandbox") or {}).get("cgroup")
            self.send({"op": "spawned", "ref": request["ref"], "pid": pid})
        elif op == "signal":
            pid = request["pid"]
            if pid in self._children:
                self._signal_kernel(pid, request["signum"])
        else:
            _log("unknown request {!r}".format(request))

    def _reap(self):
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            cgroup = self._children[pid]
            # Whatever the kernel left running (its group, its cgroup) goes with it.
            self._signal_kernel(pid, signal.SIGKILL)
            del self._children[pid]
            oom = False
            if cgroup:
                oom = sandbox.cgroup_oom_killed(cgroup)
                self._stale_cgroups.append(cgroup)
            self.send({"op": "exited", "pid": pid, "status": os.waitstatus_to_exitcode(status), "oom": oom})

    def _signal_kernel(self, pid, signum):
        _signal_group(pid, signum)
        cgroup = self._children.get(pid)
        if cgroup and signum == signal.SIGKILL:
            for other in sandbox.cgroup_pids(cgroup):
                try:
                    os.kill(other, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def _shutdown(self, code):
        for pid in list(self._children):
            self._signal_kernel(pid, signal.SIGKILL)
        os._exit(code)

    def _become_kernel(self, request):
        """In the child: turn into an ipykernel.  Never returns."""
        code = 1
        try:
            master_pid = os.getppid()
            os.setsid()
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            _redirect_stdio(request["log_file"])
            _close_fds_from(3)
            spec = request.get("sandbox") or {"limits": {}}
            if spec.get("nice"):
                os.nice(spec["nice"])  # a pool kernel; the spawner (root) restores it on hand-out
            sandbox.enter(spec, self._syscall_filter)
            # After the uid change, which clears it.
            die_with_parent(signal.SIGKILL)
            if os.getppid() != master_pid:
                os._exit(1)
            os.umask(0o077)
            os.chdir(request["cwd"])
            _replace_environ(request["env"])
            _reseed()
            _one_malloc_arena()
            sys.argv = ["cellserver-kernel"]
            from components.kernel_app import ForkedKernelApp, config_for
            from components.kernel_streams import KernelOutStream

            KernelOutStream.output_cap_chars = request.get("max_output_bytes") or 0
            app = ForkedKernelApp.instance(config=config_for(request["connection_file"], "matplotlib.pyplot" in sys.modules))
            app.initialize([])
            app.start()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)


def _signal_group(pid, signum):
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _redirect_stdio(log_file):
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def _close_fds_from(lowest):
    """Close every inherited fd from C{lowest} up (one ``close_range`` call on Linux 5.9+)."""
    os.closerange(lowest, 2**31 - 1)


def _reseed():
    """Forked children share the master's random state: give each its own.

    The ``random`` module reseeds itself in every forked child (its own
    ``os.register_at_fork`` hook), so only numpy's global generator is left.
    It gets a whole Mersenne Twister state from the OS (624 words): the same
    entropy as ``numpy.random.seed()``'s, without the Python-level seeding
    machinery it runs (0.17 MB of copied pages per kernel).
    """
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        import numpy

        key = numpy.frombuffer(os.urandom(624 * 4), dtype=numpy.uint32)
        numpy_random.set_state(("MT19937", key, 624))


def _one_malloc_arena():
    """Have every thread the kernel starts allocate from glibc's main arena.

    ipykernel and ZMQ start seven threads; each would get an arena of its own
    (measured: 0.15 MB of a kernel's 15.3).  Allocation mostly happens under the
    GIL anyway, so the lock the threads now share is hardly contended.
    """
    sandbox.LIBC.mallopt(M_ARENA_MAX, 1)


def _replace_environ(env):
    """Make C{os.environ} exactly C{env}, touching only the entries that differ.

    Clearing and refilling it copied 0.13 MB more per kernel (every entry's
    objects freed and made again on the master's pages).
    """
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", default="numpy,sympy,matplotlib", help="comma-separated modules to import once")
    args = parser.parse_args(argv)
    # SIGTERM, not SIGKILL: the master's handler kills every kernel's process
    # group (kernels' own children included) before it exits.
    die_with_parent(signal.SIGTERM)
    started = time.monotonic()
    loaded = preload([m for m in args.preload.split(",") if m])
    from components import syscall_filter
    from components.kernel_app import ForkedKernelApp

    ForkedKernelApp.forget_outputs()
    ForkedKernelApp.warm_up("matplotlib.pyplot" in sys.modules)
    kernel_filter = syscall_filter.build()  # each child loads it (components.sandbox.enter)
    ForkedKernelApp.snapshot_modules()  # after anything that may import
    # Everything alive now is shared with every kernel: keep the children's garbage
    # collections from walking (and so copying) it, and their allocations off its pages.
    gc.collect()
    slots = FreeSlots().fill()
    gc.freeze()
    _log("filled {} free pymalloc blocks and {} free malloc chunks".format(slots.blocks, slots.chunks))
    if threading.active_count() != 1:
        _log("WARNING: {} threads exist after preload; forking may be unsafe".format(threading.active_count()))
    master = ForkMaster(sys.stdin.fileno(), sys.stdout.fileno(), kernel_filter)
    master.send({"op": "ready", "pid": os.getpid(), "preload_s": time.monotonic() - started, "preloaded": loaded})
    master.serve()


if __name__ == "__main__":
    main()
