"""The preloaded master process that forks kernels.

Started by the spawner as ``python -m components.child.fork_master``.  It imports
ipykernel, IPython and the preload list once, *before* any ZMQ context or
thread exists, then serves fork requests.  Each child becomes one ipykernel
in its own session and process group, with its own working directory and
fresh random state, and dies with the master (``PR_SET_PDEATHSIG``).

Protocol: one JSON object per line.  Requests on stdin::

    {"op": "spawn", "ref": str, "connection_file": str, "cwd": str,
     "env": {str: str}, "log_file": str, "sandbox": {...},   # see components.child.sandbox
     "max_output_bytes": int}                        # per request and stream, in the kernel
    {"op": "signal", "pid": int, "signum": int}      # to the kernel's process group
                                                     # (SIGKILL: and to everything in its cgroup)

Events on stdout::

    {"op": "ready", "pid": int, "preload_s": float, "preloaded": [str]}
    {"op": "spawned", "ref": str, "pid": int}
    {"op": "failed", "ref": str, "error": str}      # that spawn failed (e.g. fork: EAGAIN); the master goes on
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
import signal
import sys
import threading
import time

from components.child import huge_pages, process_setup, sandbox
from components.child.control_loop import ControlLoop
from components.child.free_slots import FreeSlots


def preload(modules):
    """Import what every kernel needs, so forked children share it.

    debugpy is kept out on purpose: importing it in the master made forked
    kernels stop answering (see docs/architecture.md), and a public kernel
    has no use for a debugger.  Blocking its import makes ipykernel run
    without the debugger.
    """
    sys.modules["debugpy"] = None
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # What IPKernelApp.initialize() would otherwise import in every child (measured:
    # the modules it imported in a child; 25 ms of a kernel's start).
    import bdb  # noqa: F401
    import code  # noqa: F401
    import faulthandler  # noqa: F401
    import pdb  # noqa: F401

    import ipykernel.debugger  # noqa: F401
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import ipykernel.zmqshell  # noqa: F401
    import IPython  # noqa: F401
    import IPython.core.completerlib  # noqa: F401
    import IPython.core.debugger  # noqa: F401
    import IPython.core.magic_arguments  # noqa: F401
    import IPython.core.magics.execution  # noqa: F401
    import IPython.core.oinspect  # noqa: F401
    import IPython.extensions.storemagic  # noqa: F401
    import IPython.utils.module_paths  # noqa: F401
    import IPython.utils.wildcard  # noqa: F401
    import tornado.gen  # noqa: F401
    import tornado.locks  # noqa: F401
    import tornado.platform.asyncio  # noqa: F401
    import tornado.queues  # noqa: F401

    import components.child.kernel_app  # noqa: F401
    import components.child.kernel_streams  # noqa: F401

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


#: the master's own niceness (when it may: as root).  Forks are the serial part of a burst of starts, and the
#: master forked slowly while the kernels it had just forked (and whatever else ran) took the CPU it needed.
MASTER_NICE = -5


def _beyond_inherited(spec):
    """C{spec} with its address-space limit counted beyond what the child inherits from the master.

    A Sage master maps about 6 GB of address space it never touches (PARI's
    stack, GAP's workspace, ECL's heap are reserved up front): an absolute
    ``limit_address_space_mb`` below that would leave a Sage kernel unable to
    allocate at all.  Memory itself stays bounded by the kernel's memory cgroup.
    """
    limits = dict(spec.get("limits") or {})
    if limits.get("address_space_mb"):
        with open("/proc/self/statm") as statm:
            inherited = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
        limits["address_space_mb"] += inherited
    return dict(spec, limits=limits)


def _set_nice(value):
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
    except OSError:
        pass  # not allowed (not root): it stays as it is


def _log(text):
    sys.stderr.write("fork_master: {}\n".format(text))
    sys.stderr.flush()


class ForkMaster:
    """Serves spawn and signal requests; reaps children and reports exits."""

    def __init__(self, stdin_fd, stdout_fd, syscall_filter=None, flavour="python"):
        self._syscall_filter = syscall_filter
        self._flavour = flavour
        self._out = stdout_fd
        self._children = {}  # pid -> cgroup path or None
        self._stale_cgroups = []
        self._pid = os.getpid()  # what each child checks its parent against (process_setup.die_with_parent)
        self._loop = ControlLoop(self._handle, lambda: self._shutdown(0), stdin_fd, on_error=self._failed)

    def send(self, event):
        data = (json.dumps(event) + "\n").encode()
        while data:
            n = os.write(self._out, data)
            data = data[n:]

    def serve(self):
        """Serve requests until stdin closes (L{ControlLoop}); never returns."""
        self._loop.run(self._after_wake, lambda: 0.02 if self._stale_cgroups else None)

    def _after_wake(self):
        self._reap()
        # A dead kernel's cgroup: killed until empty (what it forked while being killed included), then removed.
        self._stale_cgroups = [
            c for c in self._stale_cgroups if sandbox.kill_cgroup(c) or not sandbox.try_remove_cgroup(c)
        ]

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

    def _failed(self, request, exc):
        """A request raised (a fork refused: EAGAIN, ENOMEM): answer it; the master goes on."""
        if request.get("op") == "spawn" and "ref" in request:
            self.send({"op": "failed", "ref": request["ref"], "error": "{}: {}".format(type(exc).__name__, exc)})

    def _reap(self):
        for pid, status in self._loop.exited_children():
            if pid not in self._children:
                continue
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
        sandbox.signal_group(pid, signum)
        cgroup = self._children.get(pid)
        if cgroup and signum == signal.SIGKILL:
            sandbox.kill_cgroup(cgroup)

    def _shutdown(self, code):
        for pid in list(self._children):
            self._signal_kernel(pid, signal.SIGKILL)
        # Their memory cgroups go too (a cgroup outlives its processes); SIGKILLed processes leave at once.
        cgroups = self._stale_cgroups + [c for c in self._children.values() if c]
        deadline = time.monotonic() + 2.0
        while cgroups and time.monotonic() < deadline:
            cgroups = [c for c in cgroups if sandbox.kill_cgroup(c) or not sandbox.try_remove_cgroup(c)]
            if cgroups:
                time.sleep(0.01)  # the killed processes are still leaving their cgroups
        os._exit(code)

    def _become_kernel(self, request):
        """In the child: turn into an ipykernel.  Never returns."""
        code = 1
        try:
            os.setsid()
            self._loop.close_in_child()
            process_setup.redirect_stdio(request["log_file"])
            process_setup.close_fds_from(3)
            spec = request.get("sandbox") or {"limits": {}}
            if self._flavour == "sage":
                spec = _beyond_inherited(spec)
            # Absolute, not relative to the master's MASTER_NICE.  A pool kernel's (the spawner, root, restores it
            # on hand-out); else 0, when the master may set it (a master that is not root left it as it was).
            _set_nice(spec.get("nice") or 0)
            sandbox.enter(spec, self._syscall_filter)
            # After the uid change, which clears it.
            process_setup.die_with_parent(signal.SIGKILL, self._pid)
            os.umask(0o077)
            os.chdir(request["cwd"])
            process_setup.replace_environ(request["env"])
            if self._flavour == "sage":
                from components.child import sage_kernel

                sage_kernel.in_child(request["env"].get("HOME") or request["cwd"])
            process_setup.reseed()
            process_setup.one_malloc_arena()
            sys.argv = ["cellserver-kernel"]
            from components.child.kernel_app import ForkedKernelApp, config_for
            from components.child.kernel_streams import KernelOutStream

            KernelOutStream.output_cap_chars = request.get("max_output_bytes") or 0
            app = ForkedKernelApp.instance(
                config=config_for(request["connection_file"], "matplotlib.pyplot" in sys.modules, self._flavour)
            )
            app.initialize([])
            app.start()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preload",
        default="numpy,scipy,sympy,pandas,matplotlib,ipywidgets",
        help="comma-separated modules to import once",
    )
    parser.add_argument(
        "--flavour",
        choices=("python", "sage"),
        default="python",
        help="the kernels it forks: ipykernel's Python, or Sage's kernel with Sage imported and warmed up",
    )
    args = parser.parse_args(argv)
    # SIGTERM, not SIGKILL: the master's handler kills every kernel's process
    # group (kernels' own children included) before it exits.
    process_setup.die_with_parent(signal.SIGTERM)
    started = time.monotonic()
    loaded = preload([m for m in args.preload.split(",") if m])
    if args.flavour == "sage":
        from components.child import sage_kernel

        loaded += ["sage: " + part for part in sage_kernel.preload()]
    from components.child import syscall_filter
    from components.child.kernel_app import ForkedKernelApp

    ForkedKernelApp.forget_outputs()
    ForkedKernelApp.warm_up("matplotlib.pyplot" in sys.modules, args.flavour)
    kernel_filter = syscall_filter.build()  # each child loads it (components.child.sandbox.enter)
    ForkedKernelApp.snapshot_modules()  # after anything that may import
    # Everything alive now is shared with every kernel: keep the children's garbage
    # collections from walking (and so copying) it, and their allocations off its pages.
    gc.collect()
    slots = FreeSlots().fill()
    gc.freeze()
    _log("filled {} free pymalloc blocks and {} free malloc chunks".format(slots.blocks, slots.chunks))
    # Kernels are forked one after another by this one process: the fork is the serial part of a burst of
    # starts.  Measured with the default preload: fork p50 30 -> 12 ms (docs/benchmarks.md, the burst section).
    huge_pages.collapse_heap()
    _set_nice(MASTER_NICE)
    if threading.active_count() != 1:
        _log("WARNING: {} threads exist after preload; forking may be unsafe".format(threading.active_count()))
    master = ForkMaster(sys.stdin.fileno(), sys.stdout.fileno(), kernel_filter, args.flavour)
    master.send({"op": "ready", "pid": os.getpid(), "preload_s": time.monotonic() - started, "preloaded": loaded})
    master.serve()


if __name__ == "__main__":
    main()
