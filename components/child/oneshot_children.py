"""The one-shot template's children: one per ``cell.execute``, each contained like a kernel, none outliving its call.

A one-shot's code is a stranger's.  An earlier release ended a child at its
exit *and* EOF on its pipe and killed only its process group, so
``os.setsid()`` and a double fork left a process behind: it kept the slot
(and its uid) past the timeout, survived the node, and, its uid handed
straight to the next one-shot, read a later visitor's memory.  Now each child:

- runs in a memory cgroup of its uid's (L{ChildCgroups}): the limit counts
  everything it starts, and when the call ends (its code returned, its time
  ran out, or it was cancelled) everything in the cgroup is killed, again
  and again until ``cgroup.procs`` is empty;
- has network and IPC namespaces of its own (a listener or a SysV segment it
  left could not reach the next run anyway, but it is not left);
- gets a uid that goes back to the free list only once its cgroup is empty,
  and at the back of it (first in, first out);
- ends with the call's deadline, pipe included: the template does not wait
  for EOF on a pipe that something else may hold.

The template is the children's subreaper, so whatever they orphan is reaped
here, not by the host's init.  Without root (no uids, no cgroups) the same
rules hold as far as the process group reaches.
"""

import collections
import gc
import json
import os
import shutil
import signal
import tempfile
import time

from components.child import process_setup, sandbox
from components.child.libc import LIBC

PR_SET_CHILD_SUBREAPER = 36
#: the children's PATH: this environment's bin first (see components.child.sandbox.kernel_path)
KERNEL_PATH = sandbox.kernel_path()
#: how long the template waits for a finished child's pipe to drain once nothing of it runs (without a cgroup:
#: once its process group was killed)
DRAIN_GRACE_S = 0.5
#: while a child is being ended, the template wakes this often to kill what is left in its cgroup
KILL_INTERVAL_S = 0.01
#: a cgroup whose processes will not die (stuck in the kernel) past this is given up on: its uid stays out of use
GIVE_UP_S = 30.0


def become_subreaper():
    LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class ChildCgroups:
    """A memory cgroup per one-shot uid, made once and reused by that uid's runs, which never overlap.

    Reusing it keeps ``mkdir``/``rmdir`` off every run; its OOM count is read
    before and after a run to tell whether that run hit the limit.
    """

    def __init__(self, root, memory_limit_mb):
        self.root = root
        self.memory_limit_mb = memory_limit_mb
        self._made = set()

    def path(self, uid):
        if self.root is None:
            return None
        path = os.path.join(self.root, "oneshot-{}".format(uid))
        if path not in self._made:
            os.makedirs(path, exist_ok=True)
            sandbox.set_memory_limit(path, self.memory_limit_mb)
            self._made.add(path)
        return path

    def remove_all(self):
        for path in self._made:
            sandbox.try_remove_cgroup(path)

    def usable(self, uids):
        """The uids whose cgroup holds nothing a killed template's runs left (a daemon there would meet the next
        visitor given that uid), after killing it for up to 2 s."""
        paths = {os.path.join(self.root, "oneshot-{}".format(uid)): uid for uid in uids}
        stuck = {paths[path] for path in sandbox.empty_cgroups(list(paths), 2.0)}
        return [uid for uid in uids if uid not in stuck]


def run_child(run_code, request, out_fd, spec, workdir, loop, syscall_filter=None, template_pid=None):
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
            process_setup.die_with_parent(signal.SIGKILL, template_pid)
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
        run_code(request, out)
        code = 0
    finally:
        if out is not None:
            try:
                out.flush()
            except OSError:
                pass
        os._exit(code)


class Template:
    """Forks one child per request, relays what it says, ends it and everything it started with the call.

    @param run_code: C{run_code(request, out)} runs a request's code in the child, writing JSON lines to C{out}.
    @param cgroups: L{ChildCgroups}, or None (no memory cgroup on this host, or not root).
    """

    def __init__(
        self, run_code, uids, limits, root, max_children, child_sandbox=None, syscall_filter=None, cgroups=None
    ):
        self._run_code = run_code
        self._child_sandbox = child_sandbox or {}
        self._syscall_filter = syscall_filter
        self._free_uids = collections.deque(cgroups.usable(uids) if cgroups is not None else uids)
        self._limits = limits
        self._root = root
        self._max_children = max_children
        self._cgroups = cgroups
        self._queue = []
        self._children = {}  # pid -> state
        self._ending = []  # states of finished children whose cgroup is being emptied
        from components.child.control_loop import ControlLoop

        self._loop = ControlLoop(self._request, self._shutdown)

    def send(self, event):
        data = (json.dumps(event, default=repr) + "\n").encode()
        while data:
            data = data[os.write(1, data) :]

    def serve(self):
        """Serve requests until stdin closes (L{ControlLoop}); never returns."""
        become_subreaper()
        self._loop.run(self._after_wake, self._next_deadline)

    def _after_wake(self):
        self._reap()
        self._expire()
        self._empty_cgroups()
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
        if self._ending or any(s["exited"] for s in self._children.values()):
            return KILL_INTERVAL_S
        if not self._children:
            return None
        return max(0.0, min(c["deadline"] for c in self._children.values()) - time.monotonic())

    def _start_queued(self):
        while self._queue and len(self._children) < self._max_children and self._free_uids:
            request = self._queue.pop(0)
            uid = self._free_uids.popleft()
            try:
                self._start(request, uid)
            except OSError as exc:  # the fork was refused (EAGAIN, ENOMEM): that run fails, the template goes on
                self._free_uids.appendleft(uid)
                self.send({"op": "failed", "id": request["id"], "error": "{}: {}".format(type(exc).__name__, exc)})

    def _spec(self, request, uid, workdir):
        root = os.geteuid() == 0
        spec = {
            "uid": uid if root else None,
            "gid": uid,
            "netns": bool(self._child_sandbox.get("netns")) and root,
            "ipcns": root,
            "limits": dict(self._limits, cpu_s=int(request["timeout"]) + 1),
            "cgroup": self._cgroups.path(uid) if self._cgroups is not None else None,
            "memory_limit_mb": self._cgroups.memory_limit_mb if self._cgroups is not None else None,
            "cgroup_made": True,
            "seccomp": bool(self._child_sandbox.get("seccomp")),
        }
        view = self._child_sandbox.get("filesystem")
        if view:
            # The other runs' directories (under root) are hidden; its own is a size- and inode-limited tmpfs of its
            # namespace (nothing outside reads it), gone with its last process: the template never walks it.
            spec["filesystem"] = dict(view, keep=[], private=[workdir], hide=list(view.get("hide", ())) + [self._root])
        if not root:
            spec["limits"].pop("processes", None)
        return spec

    def _start(self, request, uid):
        workdir = tempfile.mkdtemp(dir=self._root)
        spec = self._spec(request, uid, workdir)
        if spec["uid"] is not None:
            os.chown(workdir, uid, uid)
        oom_before = sandbox.cgroup_oom_count(spec["cgroup"]) if spec["cgroup"] else 0
        template = os.getpid()  # taken before the fork: what the child checks its parent against
        pid, r, w = process_setup.fork_with_pipe(workdir)
        if pid == 0:
            os.close(r)
            run_child(self._run_code, request, w, spec, workdir, self._loop, self._syscall_filter, template)
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
            "reply": None,
            "uid": uid,
            "cgroup": spec["cgroup"],
            "oom_before": oom_before,
            "memory_limit_mb": spec["memory_limit_mb"],
            "workdir": workdir,
            "room": keep,
            "deadline": time.monotonic() + request["timeout"],
            "timed_out": False,
            "exited": False,
            "eof": False,
            "ended_at": None,
        }
        self._children[pid] = state
        self._loop.add_reader(r, lambda state=state: self._read_child(state))

    def _read_child(self, state):
        try:
            chunk = os.read(state["fd"], 1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            self._close_pipe(state)
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
                    self.send({"op": "output", "id": state["id"], "output": message["output"]})
            elif "reply" in message:
                state["reply"] = message["reply"]
        if len(state["buf"]) > state["room"] + (1 << 20):
            state["buf"] = b""
            state["timed_out"] = True  # a line that never ends: stop the child as if its time were up
            self._kill(state)

    def _close_pipe(self, state):
        if not state["eof"]:
            state["eof"] = True
            self._loop.remove_reader(state["fd"])
            os.close(state["fd"])

    def _kill(self, state):
        """SIGKILL the child, its process group and everything in its cgroup."""
        sandbox.signal_group(state["pid"], signal.SIGKILL)
        if state["cgroup"]:
            sandbox.kill_cgroup(state["cgroup"])

    def _reap(self):
        for pid, _ in self._loop.exited_children():
            state = self._children.get(pid)
            if state is not None and not state["exited"]:
                state["exited"] = True
                state["ended_at"] = time.monotonic()
                self._kill(state)  # its code returned: nothing it started outlives the call

    def _expire(self):
        now = time.monotonic()
        for state in list(self._children.values()):
            if not state["exited"] and now >= state["deadline"]:
                state["timed_out"] = True
                self._kill(state)
        for state in list(self._children.values()):
            if state["exited"]:
                self._maybe_finish(state, now)

    def _maybe_finish(self, state, now):
        """Answer the call once the child exited and its pipe drained, or the grace for draining passed."""
        if not state["eof"]:
            self._read_child(state)  # whatever is in the pipe now
        if not state["eof"] and now - state["ended_at"] < DRAIN_GRACE_S:
            return  # everything it started is being killed: the pipe's last writers are going
        self._close_pipe(state)
        del self._children[state["pid"]]
        self._ending.append(state)
        # The outputs went one by one as "output" events: the spawner has them all (sending them again here
        # doubled what crossed the pipe, up to 2 x max_output_bytes of JSON a call).
        self.send({"op": "done", "id": state["id"], "reply": self._reply(state)})
        self._empty_cgroups()

    def _reply(self, state):
        reply = state["reply"] or {}
        if state["timed_out"]:
            return {"status": "timeout", "execution_count": reply.get("execution_count")}
        if state["cgroup"] and sandbox.cgroup_oom_count(state["cgroup"]) > state["oom_before"]:
            return {
                "status": "error",
                "execution_count": None,
                "ename": "MemoryError",
                "evalue": "the one-shot was stopped: it exceeded its memory limit of {} MB".format(
                    state["memory_limit_mb"]
                ),
                "traceback": [],
            }
        if state["reply"] is None:
            return {
                "status": "error",
                "execution_count": None,
                "ename": "ProcessExited",
                "evalue": "the execution ended without a reply (a limit was hit?)",
                "traceback": [],
            }
        return reply

    def _empty_cgroups(self):
        """Kill what is left of finished children until their cgroups are empty; then free their uids."""
        still = []
        now = time.monotonic()
        for state in self._ending:
            if state["cgroup"] and sandbox.cgroup_pids(state["cgroup"]):
                if now - state["ended_at"] < GIVE_UP_S:
                    sandbox.kill_cgroup(state["cgroup"])
                    still.append(state)
                continue  # given up on: the uid is never handed out again
            sandbox.signal_group(state["pid"], signal.SIGKILL)
            shutil.rmtree(state["workdir"], ignore_errors=True)
            self._free_uids.append(state["uid"])
        self._ending = still

    def _shutdown(self):
        states = list(self._children.values()) + self._ending
        deadline = time.monotonic() + 2.0
        while True:
            for state in states:
                self._kill(state)
            if time.monotonic() > deadline or not any(s["cgroup"] and sandbox.cgroup_pids(s["cgroup"]) for s in states):
                break
            time.sleep(KILL_INTERVAL_S)  # the killed processes are leaving their cgroups
        if self._cgroups is not None:
            self._cgroups.remove_all()
        shutil.rmtree(self._root, ignore_errors=True)  # os._exit skips main()'s own clean-up
        os._exit(0)
