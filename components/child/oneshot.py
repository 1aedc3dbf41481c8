"""The one-shot template: ``cell.execute`` without a kernel.

A fresh ipykernel per one-shot costs tens of ms of CPU (fork, ZMQ set-up,
readiness), which caps one-shots far below what short computations need.
This process is started once per spawner (``python -m components.child.oneshot``):
it preloads the same modules as the fork master, builds one IPython
``InteractiveShell`` with the inline matplotlib backend, and then forks one
child per request.  The child runs the code in its copy of the shell and
streams nbformat outputs back over a pipe; it then exits, so nothing survives
from one one-shot to the next.  Each child gets the kernel sandbox: its own
session, a uid from the template's pool, rlimits, a fresh working directory,
and (the template runs in its own network namespace) no network.

Protocol, JSON lines.  Requests on stdin::

    {"op": "run", "id": str, "code": str, "timeout": float,
     "user_expressions": {...}, "stop_on_error": bool}
    {"op": "cancel", "id": str}                          # kill that run (it reports "timeout")

Events on stdout::

    {"op": "ready", "pid": int}
    {"op": "output", "id": str, "output": {...}}       # as each output happens
    {"op": "done", "id": str, "result": {...}}         # the execution result (docs/api.md)
"""

import argparse
import gc
import json
import os
import shutil
import signal
import sys
import tempfile
import time

from components.child import huge_pages, process_setup, sandbox, syscall_filter
from components.child.control_loop import ControlLoop
from components.child.fork_master import preload
from components.child.output_history import WithoutOutputTee, forget_outputs

#: the children's PATH: this environment's bin first (see components.child.sandbox.kernel_path)
KERNEL_PATH = sandbox.kernel_path()


class OutputStream:
    """sys.stdout/stderr of a child: every write becomes a stream output."""

    def __init__(self, name, emit):
        self.name = name
        self._emit = emit

    def write(self, text):
        if text:
            self._emit({"output_type": "stream", "name": self.name, "text": text})
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    @property
    def encoding(self):
        return "utf-8"


def build_shell():
    """One InteractiveShell, ready to run cells, with the inline matplotlib backend."""
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class Publisher(DisplayPublisher):
        emit = None

        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            self.emit({"output_type": "display_data", "data": data, "metadata": metadata or {}})

        def clear_output(self, wait=False):
            self.emit({"output_type": "clear_output", "wait": bool(wait)})

    class Hook(DisplayHook):
        emit = None

        def start_displayhook(self):
            pass

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            self.emit(
                {"output_type": "execute_result", "execution_count": 1, "data": format_dict, "metadata": md_dict or {}}
            )

        def finish_displayhook(self):
            pass

    class Shell(WithoutOutputTee, InteractiveShell):
        error = None

        def enable_gui(self, gui=None):
            pass  # inline plots need no event loop

        def _showtraceback(self, etype, evalue, stb):
            self.error = {"output_type": "error", "ename": etype.__name__, "evalue": str(evalue), "traceback": stb}
            self.display_pub.emit(self.error)

    forget_outputs()
    shell = Shell.instance(display_pub_class=Publisher, displayhook_class=Hook, colors="Linux", history_length=0)
    shell.history_manager.enabled = False
    if "matplotlib.pyplot" in sys.modules:
        shell.enable_matplotlib("inline")
    return shell


#: output a child may emit past the cap, so that the spawner sees the cap passed and says so
OUTPUT_SLACK_BYTES = 65536


def execute(shell, request, out):
    """Run one request in C{shell}, writing JSON lines (outputs, then the reply) to C{out}.

    Past C{request["max_output_bytes"]} (and a little more, so that the
    spawner notices and adds its notice) outputs are dropped here, in the
    child: a flood costs the child nothing but CPU time.
    """
    cap = request.get("max_output_bytes") or 0
    budget = [cap + OUTPUT_SLACK_BYTES if cap else None]

    def emit(output):
        line = json.dumps({"output": output}, default=repr)
        if budget[0] is not None:
            if budget[0] <= 0:
                return
            budget[0] -= len(line)
        out.write(line + "\n")

    shell.error = None
    shell.display_pub.emit = emit
    shell.displayhook.emit = emit
    sys.stdout = OutputStream("stdout", emit)
    sys.stderr = OutputStream("stderr", emit)
    try:
        result = shell.run_cell(request["code"], store_history=False, silent=False)
        status = "ok" if result.success else "error"
        reply = {"status": status, "execution_count": 1}
        if shell.error is not None:
            reply.update(ename=shell.error["ename"], evalue=shell.error["evalue"], traceback=shell.error["traceback"])
        expressions = request.get("user_expressions") or {}
        if expressions:
            reply["user_expressions"] = shell.user_expressions(expressions)
        widgets = widget_state()
        if widgets:
            reply["widgets"] = {WIDGET_STATE_MIME: widgets}
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    out.write(json.dumps({"reply": reply}, default=repr) + "\n")


WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"


def widget_state():
    """The state of every widget the run made (as nbconvert saves it in a notebook), or None.

    A one-shot child has no kernel and so no comms to a browser: its widgets
    are shown as a static snapshot, which a page renders from this state.
    """
    module = sys.modules.get("ipywidgets.widgets.widget")
    if module is None or not module._instances:
        return None
    return module.Widget.get_manager_state(drop_defaults=True)


#: Run in the template before it forks: each child then finds the code paths,
#: caches and formatters of common cells already built, instead of building
#: them on copy-on-write pages (measured: page faults per "1+1" 1015 -> 666).
WARM_UP_CELLS = (
    "1+1",
    "print(1)",
    "x = [i * i for i in range(10)]\nx",
    "from IPython.display import display\ndisplay('a')",
    "1/0",
)


def warm_up(shell):
    """Run L{WARM_UP_CELLS}, then put the user's namespace back exactly as it was."""
    user_ns, hidden = dict(shell.user_ns), dict(shell.user_ns_hidden)
    hook = shell.displayhook
    underscores = (hook._, hook.__, hook.___)
    with open(os.devnull, "w") as sink:
        for _ in range(3):
            for code in WARM_UP_CELLS:
                execute(shell, {"code": code, "user_expressions": {"a": "1"}}, sink)
    shell.history_manager.output_hist.clear()  # Out / _oh
    shell.user_ns.clear()
    shell.user_ns.update(user_ns)
    shell.user_ns_hidden.clear()
    shell.user_ns_hidden.update(hidden)
    hook._, hook.__, hook.___ = underscores
    shell.error = None


def run_child(shell, request, out_fd, spec, workdir, loop, syscall_filter=None):
    """In the forked child: sandbox, run, stream outputs, exit.

    If the child cannot enter its sandbox, it runs nothing and says why (a
    reply the template passes on), rather than looking like a hit limit.
    """
    code = 1
    out = None
    try:
        os.setsid()
        loop.close_in_child()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.dup2(out_fd, 3)
        process_setup.close_fds_from(4)
        out = os.fdopen(3, "w", buffering=1)
        gc.disable()
        try:
            sandbox.enter(spec, syscall_filter)
            process_setup.die_with_parent(signal.SIGKILL)
            os.chdir(workdir)
        except Exception as exc:
            reply = {
                "status": "error",
                "execution_count": None,
                "ename": "SandboxError",
                "evalue": "the one-shot could not enter its sandbox: {}".format(exc),
                "traceback": [],
            }
            out.write(json.dumps({"reply": reply}) + "\n")
            return
        os.environ.clear()
        os.environ.update(
            {
                "PATH": KERNEL_PATH,
                "HOME": workdir,
                "TMPDIR": workdir,
                "LANG": "C.UTF-8",
                "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            }
        )
        process_setup.reseed()
        execute(shell, request, out)
        code = 0
    finally:
        if out is not None:
            try:
                out.flush()
            except OSError:
                pass
        os._exit(code)


class Template:
    """Forks one child per request and relays what it says; enforces timeouts."""

    def __init__(self, shell, uids, limits, root, max_children, child_sandbox=None, syscall_filter=None):
        self.shell = shell
        self._child_sandbox = child_sandbox or {}
        self._syscall_filter = syscall_filter
        self._free_uids = list(uids)
        self._limits = limits
        self._root = root
        self._max_children = max_children
        self._queue = []
        self._children = {}  # pid -> state
        self._loop = ControlLoop(self._request, self._shutdown)

    def send(self, event):
        data = (json.dumps(event, default=repr) + "\n").encode()
        while data:
            data = data[os.write(1, data) :]

    def serve(self):
        """Serve requests until stdin closes (L{ControlLoop}); never returns."""
        self._loop.run(self._after_wake, self._next_deadline)

    def _after_wake(self):
        self._reap()
        self._expire()
        self._start_queued()

    def _request(self, request):
        if request.get("op") == "cancel":
            self._queue = [r for r in self._queue if r["id"] != request["id"]]
            for state in self._children.values():
                if state["id"] == request["id"]:
                    state["deadline"] = 0
        else:
            self._queue.append(request)

    def _next_deadline(self):
        if not self._children:
            return None
        return max(0.0, min(c["deadline"] for c in self._children.values()) - time.monotonic())

    def _start_queued(self):
        while self._queue and len(self._children) < self._max_children and self._free_uids:
            request = self._queue.pop(0)
            uid = self._free_uids.pop()
            workdir = tempfile.mkdtemp(dir=self._root)
            spec = {
                "uid": uid if os.geteuid() == 0 else None,
                "gid": uid,
                "netns": False,
                "limits": dict(self._limits, cpu_s=int(request["timeout"]) + 1),
                "cgroup": None,
                "seccomp": bool(self._child_sandbox.get("seccomp")),
            }
            view = self._child_sandbox.get("filesystem")
            if view:
                # Its own directory only: the other runs' directories (under root) are hidden.
                spec["filesystem"] = dict(view, keep=[workdir], hide=list(view.get("hide", ())) + [self._root])
            if spec["uid"] is not None:
                os.chown(workdir, uid, uid)
            else:
                spec["limits"].pop("processes", None)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                run_child(self.shell, request, w, spec, workdir, self._loop, self._syscall_filter)
            os.close(w)
            os.set_blocking(r, False)
            # What the template keeps of a child's output is bounded whatever the child writes
            # (it is hostile: it may write to the pipe directly, without newlines).
            keep = (request.get("max_output_bytes") or 0) * 2 + (1 << 20)
            state = {
                "id": request["id"],
                "pid": pid,
                "fd": r,
                "buf": b"",
                "outputs": [],
                "reply": None,
                "uid": uid,
                "workdir": workdir,
                "room": keep,
                "deadline": time.monotonic() + request["timeout"],
                "timed_out": False,
                "exited": False,
                "eof": False,
            }
            self._children[pid] = state
            self._loop.add_reader(r, lambda state=state: self._read_child(state))

    def _read_child(self, state):
        try:
            chunk = os.read(state["fd"], 1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            state["eof"] = True
            self._loop.remove_reader(state["fd"])
            os.close(state["fd"])
            self._maybe_finish(state)
            return
        state["buf"] += chunk
        while b"\n" in state["buf"]:
            line, state["buf"] = state["buf"].split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not the child's JSON: written by the user's code to the pipe itself
            if not isinstance(message, dict):
                continue
            if "output" in message:
                state["room"] -= len(line)
                if state["room"] >= 0:
                    state["outputs"].append(message["output"])
                    self.send({"op": "output", "id": state["id"], "output": message["output"]})
            elif "reply" in message:
                state["reply"] = message["reply"]
        if len(state["buf"]) > state["room"] + (1 << 20):
            state["buf"] = b""
            state["timed_out"] = True  # a line that never ends: stop the child as if its time were up
            sandbox.signal_group(state["pid"], signal.SIGKILL)

    def _reap(self):
        for pid, _ in self._loop.exited_children():
            state = self._children.get(pid)
            if state is not None:
                state["exited"] = True
                self._maybe_finish(state)

    def _expire(self):
        now = time.monotonic()
        for state in list(self._children.values()):
            if not state["exited"] and now >= state["deadline"]:
                state["timed_out"] = True
                sandbox.signal_group(state["pid"], signal.SIGKILL)

    def _maybe_finish(self, state):
        if not (state["exited"] and state["eof"]):
            return
        del self._children[state["pid"]]
        sandbox.signal_group(state["pid"], signal.SIGKILL)  # whatever the code left running
        shutil.rmtree(state["workdir"], ignore_errors=True)
        self._free_uids.append(state["uid"])
        reply = state["reply"] or {}
        if state["timed_out"]:
            reply = {"status": "timeout", "execution_count": reply.get("execution_count")}
        elif state["reply"] is None:
            reply = {
                "status": "error",
                "execution_count": None,
                "ename": "ProcessExited",
                "evalue": "the execution ended without a reply (a limit was hit?)",
                "traceback": [],
            }
        self.send({"op": "done", "id": state["id"], "reply": reply, "outputs": state["outputs"]})

    def _shutdown(self):
        for pid in list(self._children):
            sandbox.signal_group(pid, signal.SIGKILL)
        shutil.rmtree(self._root, ignore_errors=True)  # os._exit skips main()'s own clean-up
        os._exit(0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", default="numpy,scipy,sympy,pandas,matplotlib,ipywidgets")
    parser.add_argument("--uids", default="", help="first:count of the uids for children (when root)")
    parser.add_argument(
        "--limits", default="{}", help="JSON rlimits, as in the spawner config (limit_* without the prefix)"
    )
    parser.add_argument("--isolate-network", action="store_true", help="run in a network namespace with loopback only")
    parser.add_argument("--max-children", type=int, default=32)
    parser.add_argument(
        "--sandbox",
        default="{}",
        help='JSON: {"filesystem": {"hide": [...], "scratch_mb": N} or null, "seccomp": bool}',
    )
    args = parser.parse_args(argv)
    process_setup.die_with_parent(signal.SIGTERM)
    if args.isolate_network:
        sandbox.unshare_network()
    preload([m for m in args.preload.split(",") if m])
    child_sandbox = json.loads(args.sandbox)
    children_filter = syscall_filter.build() if child_sandbox.get("seccomp") else None
    shell = build_shell()
    warm_up(shell)  # pay first-run costs once, not in every child
    # Children are short-lived: keep the collector off the shared heap, or its
    # bookkeeping would copy-on-write most pages into every child.
    gc.collect()
    gc.freeze()
    huge_pages.collapse_heap()  # cheaper forks and exits (see the module)
    if args.uids:
        first, count = (int(x) for x in args.uids.split(":"))
        uids = range(first, first + count)
    else:
        uids = range(os.getuid(), os.getuid() + args.max_children)
    root = tempfile.mkdtemp(prefix="cell-oneshot-")
    os.chmod(root, 0o711)
    template = Template(shell, uids, json.loads(args.limits), root, args.max_children, child_sandbox, children_filter)
    template.send({"op": "ready", "pid": os.getpid()})
    try:
        template.serve()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
