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
import functools
import gc
import json
import os
import shutil
import signal
import sys
import tempfile

from components.child import huge_pages, process_setup, sandbox, syscall_filter
from components.child.fork_master import preload
from components.child.oneshot_children import ChildCgroups, Template
from components.child.output_history import WithoutOutputTee, forget_outputs


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", default="numpy,scipy,sympy,pandas,matplotlib,ipywidgets")
    parser.add_argument("--uids", default="", help="first:count of the uids for children (when root)")
    parser.add_argument(
        "--limits", default="{}", help="JSON rlimits, as in the spawner config (limit_* without the prefix)"
    )
    parser.add_argument(
        "--isolate-network", action="store_true", help="each child (and the template) in a network namespace of its own"
    )
    parser.add_argument("--cgroup-root", default=None, help="memory cgroup under which each child uid gets its own")
    parser.add_argument("--memory-limit-mb", type=int, default=0, help="each child's memory limit (with --cgroup-root)")
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
    child_sandbox = dict(json.loads(args.sandbox), netns=args.isolate_network)
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
    cgroups = ChildCgroups(args.cgroup_root, args.memory_limit_mb) if args.cgroup_root else None
    template = Template(
        functools.partial(execute, shell),
        uids,
        json.loads(args.limits),
        root,
        args.max_children,
        child_sandbox,
        children_filter,
        cgroups,
    )
    template.send({"op": "ready", "pid": os.getpid()})
    try:
        template.serve()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
