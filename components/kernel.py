"""The lifecycle of one kernel, in one place.

A L{Kernel} is what a client sees: an unguessable id, an owner, a working
directory that survives restarts, and one forked ipykernel process at a time
behind it.  Its states::

    starting --ready--> ready --(assign)--> ready (owned) --> dead
                          ^                    |
                          +----- restart ------+

It is dead for good once its process exits unexpectedly, stops answering the
heartbeat, is shut down, or passes its idle timeout or lifespan; then every
pending call fails with L{KernelDied} and a last iopub ``status: dead`` event
(with a ``reason``) is published.  Time comes from the C{reactor} passed in.
"""

import os
import secrets
import shutil
import signal
import uuid
from datetime import datetime, timezone

from jupyter_client.connect import write_connection_file
from twisted.internet import defer
from twisted.logger import Logger

from components import errors
from components.files import KernelFiles, changed_files
from components.kernel_channels import KernelChannels
from components.outputs import OUTPUT_MSG_TYPES, OutputCollector, to_output
from components.sandbox import kernel_path


#: How often a starting kernel is asked kernel_info until iopub shows the answer.
PROBE_INTERVAL_S = 0.05


def dead_event(reason, session="cellserver"):
    """The synthetic last iopub message of a kernel."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "status",
            "session": session,
            "username": "cellserver",
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {"execution_state": "dead", "reason": reason},
    }


class Execution:
    """One execute request: its outputs, its reply, and who waits for them."""

    def __init__(self, msg_id, progress):
        self.msg_id = msg_id
        self.progress = progress
        self.collector = OutputCollector()
        self.reply = None
        self.idle = False
        self.timed_out = False
        self.timers = []
        self.deferred = None
        self.pending_input = None
        self.truncated = False
        self.files_before = {}

    def result(self):
        reply = self.reply or {}
        status = "timeout" if self.timed_out else reply.get("status", "error")
        result = {
            "status": status,
            "execution_count": reply.get("execution_count"),
            "outputs": self.collector.nbformat_outputs(),
        }
        if reply.get("status") == "error":
            result.update(ename=reply.get("ename", ""), evalue=reply.get("evalue", ""), traceback=reply.get("traceback", []))
        if "user_expressions" in reply and reply["user_expressions"]:
            result["user_expressions"] = reply["user_expressions"]
        return result

    def cancel_timers(self):
        for timer in self.timers:
            if timer.active():
                timer.cancel()
        self.timers = []


class Kernel:
    """One kernel: see the module docstring.

    @param master: the L{ForkMasterProtocol} that forks processes.
    @param on_iopub: called with C{(kernel, msg)} for every iopub message of an owned kernel.
    @param on_dead: called with C{(kernel, reason)} once, when the kernel is dead for good.
    @param on_pid: called with C{(kernel, pid)} each time a process is forked for it.
    @param channels_factory: builds the L{KernelChannels} (a seam for unit tests).
    @param sandbox: the spawner's L{SandboxPolicy}, or None for no sandbox (unit tests).
    """

    log = Logger()

    def __init__(self, reactor, config, master, zmq_context, work_root, runtime_root, on_iopub, on_dead, on_pid=lambda kernel, pid: None, channels_factory=KernelChannels, sandbox=None):
        self.kernel_id = uuid.uuid4().hex
        self._reactor = reactor
        self._config = config
        self._master = master
        self._context = zmq_context
        self._on_iopub = on_iopub
        self._on_dead = on_dead
        self._on_pid = on_pid
        self._channels_factory = channels_factory
        self._sandbox = sandbox
        self._live_pids = set()
        self._spec = None
        self._uid = None  # the kernel's sandbox uid, kept across restarts
        self._tokens = float(config.max_iopub_messages_per_s)
        self._tokens_at = reactor.seconds()
        self._ticks = 0
        self.cwd = os.path.join(work_root, self.kernel_id)
        self.files = KernelFiles(self.cwd, max_files=config.max_files)
        self._runtime_root = runtime_root
        self.owner = None
        #: a bearer secret that lets a new session take this kernel over (cell.kernel.resume)
        self.resume_token = secrets.token_urlsafe(24)
        self.state = "starting"
        self.dead_reason = None
        self.pid = None
        self.started_at = reactor.seconds()
        self._generation = 0
        self._channels = None
        self._runtime_dir = None
        self._executions = {}
        self._requests = {}
        self._ready_probe = None
        self._warmup = None
        self._ready = None
        self._last_pong = None
        self._timers = {}

    # -- process ---------------------------------------------------------------

    def start(self):
        """Fork the process; the Deferred fires with this kernel once it is ready."""
        os.makedirs(self.cwd, mode=0o700, exist_ok=True)
        return self._fork()

    def _fork(self):
        self._generation += 1
        self._runtime_dir = os.path.join(self._runtime_root, "{}-{}".format(self.kernel_id[:12], self._generation))
        os.makedirs(os.path.join(self._runtime_dir, "tmp"), mode=0o700)
        spec = {"limits": {}}
        if self._sandbox is not None:
            spec = self._sandbox.allocate("{}-{}".format(self.kernel_id, self._generation), uid=self._uid, keep=(self.cwd, self._runtime_dir))
            if spec is None:
                self.state = "starting"
                self._ready = defer.Deferred()
                ready = self._ready
                self._fail_start(errors.Capacity("no sandbox uid is free on this worker; try again later"))
                return ready
        if self.owner is None and spec.get("uid") is not None and self._config.pool_nice:
            spec = dict(spec, nice=self._config.pool_nice)  # until assign(): see SpawnerConfig.pool_nice
        self._spec = spec
        self._uid = spec.get("uid")
        if self._uid is not None:
            self.files.owner = (spec["uid"], spec["gid"])
        key = uuid.uuid4().hex + uuid.uuid4().hex
        connection_file, connection = write_connection_file(
            os.path.join(self._runtime_dir, "connection.json"),
            transport="ipc",
            ip=os.path.join(self._runtime_dir, "k"),
            shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5,
            key=key.encode(),
        )
        if self._sandbox is not None:
            self._sandbox.prepare_dirs(spec, self.cwd, self._runtime_dir, os.path.join(self._runtime_dir, "tmp"))
            if spec.get("uid") is not None:
                os.chown(connection_file, spec["uid"], spec["gid"])
        env = {
            "PATH": kernel_path(),
            "HOME": self.cwd,
            "LANG": "C.UTF-8",
            "TMPDIR": os.path.join(self._runtime_dir, "tmp"),
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": os.path.join(self._runtime_dir, "mpl"),
            "IPYTHONDIR": os.path.join(self._runtime_dir, "ipython"),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        self.state = "starting"
        self._warmup = None
        self._ready = defer.Deferred()
        self._start_timer("start", self._config.start_timeout_s, self._start_timed_out)
        d = self._master.spawn(connection_file, self.cwd, env, os.path.join(self._runtime_dir, "kernel.log"), spec, self._config.max_output_bytes)
        d.addCallback(self._spawned, connection)
        d.addErrback(self._fail_start)
        return self._ready

    def _spawned(self, pid, connection):
        self._live_pids.add(pid)
        self._on_pid(self, pid)
        if self.state == "dead":
            self._master.signal(pid, signal.SIGKILL)
            return
        self.pid = pid
        self._channels = self._channels_factory(
            self._reactor, self._context, connection,
            on_reply=self._reply_received, on_iopub=self._iopub_received,
            on_stdin=self._stdin_received, on_pong=self._pong,
            max_iopub_content_bytes=self._config.max_output_bytes + 65536 if self._config.max_output_bytes else 0,
        )
        self._probe_ready()

    def _probe_ready(self):
        """Ask kernel_info until iopub shows the kernel's answer (the slow-joiner trap)."""
        if self.state != "starting" or self._channels is None:
            return
        self._ready_probe = self._channels.request("shell", "kernel_info_request", {})
        self._start_timer("probe", PROBE_INTERVAL_S, self._probe_ready)

    def _iopub_flowing(self):
        """iopub answered the probe; warm the execute path, then count the kernel ready.

        An execute without history (no execution count) pays IPython's first-run
        costs here, in the pool, instead of in the user's first execute.
        """
        self._cancel_timer("probe")
        # Not silent, so the display hook runs too; without history, so the user's first cell is still In[1].
        self._warmup = self._channels.request("shell", "execute_request", {"code": "0", "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False, "stop_on_error": False})

    def _became_ready(self):
        self.state = "ready"
        self._warmup = None
        self._cancel_timer("start")
        self._cancel_timer("probe")
        self._last_pong = self._reactor.seconds()
        self._start_timer("heartbeat", self._config.heartbeat_interval_s, self._heartbeat)
        ready, self._ready = self._ready, None
        ready.callback(self)

    def _start_timed_out(self):
        self._fail_start(errors.Capacity("the kernel did not start within {} s".format(self._config.start_timeout_s)))

    def _fail_start(self, failure):
        ready, self._ready = self._ready, None
        self.die("failed to start")
        if ready is not None:
            ready.errback(failure)

    def process_exited(self, pid, status, oom=False):
        """Called by the spawner when the fork master reaps C{pid} (any generation)."""
        self._live_pids.discard(pid)
        if pid == self.pid and self.state != "dead":
            self.die(self._exit_reason(status, oom))
        self._maybe_release_uid()

    def _maybe_release_uid(self):
        """A dead kernel's uid is free again once none of its processes is left."""
        if self.state == "dead" and not self._live_pids and self._uid is not None and self._sandbox is not None:
            self._sandbox.release(self._uid)
            self._uid = None

    def _exit_reason(self, status, oom):
        """Name the limit that ended the process, when one did."""
        config = self._config
        if oom:
            return "the kernel exceeded its memory limit of {} MB".format(config.memory_limit_mb)
        if status == -signal.SIGXCPU:
            return "the kernel used up its CPU time limit of {} s".format(config.limit_cpu_s)
        if status == -signal.SIGXFSZ:
            return "the kernel exceeded the file size limit of {} MB".format(config.limit_file_size_mb)
        if status < 0:
            return "the kernel process was killed by signal {}".format(signal.Signals(-status).name)
        return "the kernel process exited (status {})".format(status)

    def _heartbeat(self):
        now = self._reactor.seconds()
        if now - self._last_pong > self._config.heartbeat_timeout_s:
            self.die("the kernel stopped answering its heartbeat for {:.0f} s".format(now - self._last_pong))
            return
        self._ticks += 1
        if self._check_limits():
            return
        self._channels.ping()
        self._start_timer("heartbeat", self._config.heartbeat_interval_s, self._heartbeat)

    def _check_limits(self):
        """Limits the kernel cannot enforce on itself: processes and disk use.  True if it died."""
        spec = self._spec or {}
        limit = self._config.limit_processes
        if spec.get("cgroup") and limit:
            from components.sandbox import cgroup_task_count

            if cgroup_task_count(spec["cgroup"]) >= limit:
                self.die("the kernel reached its limit of {} processes and threads (a fork bomb?)".format(limit))
                return True
        if self._config.disk_limit_mb and self.owner is not None and self._ticks % 5 == 0:
            return self._check_disk()
        return False

    def _check_disk(self):
        used = _disk_use(self.cwd)
        if used > self._config.disk_limit_mb * 1024 * 1024:
            self.die("the kernel's working directory exceeded its disk limit of {} MB".format(self._config.disk_limit_mb))
            return True
        return False

    def _pong(self):
        self._last_pong = self._reactor.seconds()

    # -- ownership and lifetime --------------------------------------------------

    def assign(self, owner):
        """Hand this ready kernel to C{owner} (a WAMP session id); start its clocks."""
        self.owner = owner
        if self._spec is not None and self._spec.get("nice") and self.pid is not None:
            try:
                os.setpriority(os.PRIO_PGRP, self.pid, 0)  # every thread of every process in its group
            except OSError as exc:
                self.log.warn("kernel {kernel_id}: could not restore its priority: {exc}", kernel_id=self.kernel_id, exc=exc)
        self.started_at = self._reactor.seconds()
        self._start_timer("lifespan", self._config.max_lifespan_s, lambda: self.shutdown("the kernel reached its maximum lifespan of {:.0f} s".format(self._config.max_lifespan_s)))
        self.touch()

    def touch(self):
        """Note activity: the idle clock starts again."""
        if self.owner is not None and self.state != "dead":
            self._start_timer("idle", self._config.idle_timeout_s, self._idle_check)

    def _idle_check(self):
        if self._executions:
            self.touch()
        else:
            self.shutdown("the kernel was idle for {:.0f} s".format(self._config.idle_timeout_s))

    def shutdown(self, reason="shut down by its owner"):
        """Kill the process group and declare the kernel dead."""
        self.die(reason)
        return defer.succeed(None)

    def die(self, reason):
        """Declare the kernel dead for good: fail everything pending, kill, clean up, tell."""
        if self.state == "dead":
            return
        was_starting = self.state == "starting"
        self.state = "dead"
        self.dead_reason = reason
        self.log.info("kernel {kernel_id} dead: {reason}", kernel_id=self.kernel_id, reason=reason)
        if was_starting and self._runtime_dir:
            self.log.warn("kernel {kernel_id} failed to start; its log ends with:\n{tail}", kernel_id=self.kernel_id, tail=_tail(os.path.join(self._runtime_dir, "kernel.log")))
        for name in list(self._timers):
            self._cancel_timer(name)
        self._stop_process()
        self._fail_pending(errors.KernelDied("the kernel died: {}".format(reason), reason=reason))
        ready, self._ready = self._ready, None
        if ready is not None:
            ready.errback(errors.KernelDied("the kernel died while starting: {}".format(reason), reason=reason))
        shutil.rmtree(self.cwd, ignore_errors=True)
        self._maybe_release_uid()
        if self.owner is not None:
            self._on_iopub(self, dead_event(reason))
        self._on_dead(self, reason)

    def _stop_process(self):
        if self._channels is not None:
            self._channels.close()
            self._channels = None
        if self.pid is not None:
            self._master.signal(self.pid, signal.SIGKILL)
        if self._runtime_dir:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)

    def _fail_pending(self, error):
        executions, self._executions = self._executions, {}
        for execution in executions.values():
            execution.cancel_timers()
            if execution.deferred is not None and not execution.deferred.called:
                execution.deferred.errback(error)
        requests, self._requests = self._requests, {}
        for d in requests.values():
            if not d.called:
                d.errback(error)

    def restart(self):
        """Replace the process by a fresh one (same id, owner and directory)."""
        self._check_alive()
        self._fail_pending(errors.KernelDied("the kernel was restarted", reason="restarted"))
        self._stop_process()
        self.pid = None
        for name in ("heartbeat", "probe"):
            self._cancel_timer(name)
        if self.owner is not None:
            restarting = dead_event("restarting")
            restarting["content"] = {"execution_state": "restarting"}
            self._on_iopub(self, restarting)
        d = self._fork()
        d.addCallback(lambda _: {"status": "ok"})
        return d

    def interrupt(self):
        """SIGINT to the kernel's process group (ipykernel's signal interrupt mode)."""
        self._check_alive()
        if self.pid is not None:
            self._master.signal(self.pid, signal.SIGINT)

    # -- requests ------------------------------------------------------------------

    def execute(self, code, allow_stdin=False, timeout=None, user_expressions=None, stop_on_error=True, progress=None, kill_on_timeout=False):
        """Run C{code}; fire with the result dict (see docs/api.md).

        C{progress}, if given, is called with each output as it arrives.
        Cancelling the Deferred interrupts the kernel.  Past C{timeout} the
        kernel is interrupted (and replaced if it does not stop), or, with
        C{kill_on_timeout} (one-shot kernels), killed at once.
        """
        self._check_alive()
        self.touch()
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": user_expressions or {},
            "allow_stdin": bool(allow_stdin),
            "stop_on_error": bool(stop_on_error),
        }
        before = self.files.snapshot()
        msg_id = self._channels.request("shell", "execute_request", content)
        execution = Execution(msg_id, progress)
        execution.files_before = before
        execution.kill_on_timeout = kill_on_timeout
        execution.deferred = defer.Deferred(canceller=lambda _: self._cancel_execution(execution))
        self._executions[msg_id] = execution
        limit = self._config.execute_timeout_s if timeout is None else min(float(timeout), self._config.execute_timeout_s)
        execution.timers.append(self._reactor.callLater(limit, self._execution_timed_out, execution))
        return execution.deferred

    def _cancel_execution(self, execution):
        execution.cancel_timers()
        self._executions.pop(execution.msg_id, None)
        if self.state != "dead" and self.pid is not None:
            self._master.signal(self.pid, signal.SIGINT)

    def _execution_timed_out(self, execution):
        if execution.msg_id not in self._executions:
            return
        execution.timed_out = True
        if execution.kill_on_timeout:
            self._executions.pop(execution.msg_id)
            execution.cancel_timers()
            execution.deferred.callback(execution.result())
            self.die("the execution passed its time limit")
            return
        self._master.signal(self.pid, signal.SIGINT)
        execution.timers.append(self._reactor.callLater(self._config.interrupt_grace_s, self._interrupt_ignored, execution))

    def _interrupt_ignored(self, execution):
        """The kernel did not stop after the timeout interrupt: replace it."""
        if self._executions.get(execution.msg_id) is not execution:
            return
        self._executions.pop(execution.msg_id)
        execution.cancel_timers()
        self.log.info("kernel {kernel_id} ignored the timeout interrupt; restarting it", kernel_id=self.kernel_id)
        result = execution.result()
        result["kernel_restarted"] = True
        execution.deferred.callback(result)
        self.restart()

    def input(self, value):
        """Answer the pending ``input()`` of the running execution."""
        self._check_alive()
        self.touch()
        for execution in self._executions.values():
            if execution.pending_input is not None:
                parent, execution.pending_input = execution.pending_input, None
                self._channels.request("stdin", "input_reply", {"value": value}, parent=parent)
                return None
        raise errors.InvalidArgument("no input is pending: input() answers an input_request of a running execute")

    def shell_request(self, msg_type, content):
        """Send a shell request (complete, inspect); fire with the reply's content."""
        self._check_alive()
        self.touch()
        msg_id = self._channels.request("shell", msg_type, content)
        d = defer.Deferred(canceller=lambda _: self._requests.pop(msg_id, None))
        self._requests[msg_id] = d
        timeout = self._config.request_timeout_s

        def timed_out(result, _):
            raise errors.Timeout("the kernel did not answer {} within {} s".format(msg_type, timeout))

        d.addTimeout(timeout, self._reactor, onTimeoutCancel=timed_out)
        return d

    def _check_alive(self):
        if self.state == "dead":
            raise errors.NotFound("kernel {} is dead: {}".format(self.kernel_id, self.dead_reason))
        if self.state != "ready" or self._channels is None:
            raise errors.Capacity("kernel {} is restarting; try again in a moment".format(self.kernel_id))

    # -- incoming messages -----------------------------------------------------------

    def _reply_received(self, channel, msg):
        parent_id = msg["parent_header"].get("msg_id")
        msg_type = msg["header"]["msg_type"]
        if msg_type == "kernel_info_reply":
            return
        if self.state == "starting":
            if msg_type == "execute_reply" and parent_id is not None and parent_id == self._warmup:
                self._became_ready()
            return
        if msg_type == "execute_reply":
            execution = self._executions.get(parent_id)
            if execution is not None:
                execution.reply = msg["content"]
                if msg["content"].get("status") == "aborted":
                    execution.idle = True
                self._maybe_finish(execution)
            return
        d = self._requests.pop(parent_id, None)
        if d is not None and not d.called:
            d.callback(msg["content"])

    def _iopub_received(self, msg):
        parent_id = msg["parent_header"].get("msg_id")
        msg_type = msg["header"]["msg_type"]
        if self.state == "starting":
            if msg_type == "status" and parent_id is not None and parent_id == self._ready_probe and self._warmup is None:
                self._iopub_flowing()
            return
        execution = self._executions.get(parent_id)
        if msg_type in OUTPUT_MSG_TYPES and not self._admit_output(execution, msg):
            return
        if self.owner is not None:
            self._on_iopub(self, msg)
        if execution is None:
            return
        if msg_type in OUTPUT_MSG_TYPES:
            output = to_output(msg_type, msg["content"])
            execution.collector.add(output)
            if execution.progress is not None:
                execution.progress(output)
        elif msg_type == "status" and msg["content"].get("execution_state") == "idle":
            execution.idle = True
            self._maybe_finish(execution)

    def _admit_output(self, execution, msg):
        """Apply the output caps: bytes per execution, messages per second per kernel."""
        config = self._config
        now = self._reactor.seconds()
        rate = config.max_iopub_messages_per_s
        if rate:
            self._tokens = min(float(rate), self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
            if self._tokens < 1:
                if execution is not None:
                    self._truncate(execution, "more than {} output messages per second".format(rate))
                return False
            self._tokens -= 1
        if execution is None:
            return "oversized_bytes" not in msg["content"]
        if execution.truncated:
            return False
        if "oversized_bytes" in msg["content"]:
            self._truncate(execution, "a single output of {} bytes".format(msg["content"]["oversized_bytes"]))
            return False
        if config.max_output_bytes and execution.collector.output_bytes + _message_size(msg) > config.max_output_bytes:
            self._truncate(execution, "more than {} bytes of output".format(config.max_output_bytes))
            return False
        return True

    def _truncate(self, execution, why):
        """Cut an execution's output once, with a notice; maybe interrupt it."""
        if execution.truncated:
            return
        execution.truncated = True
        notice = "\n[output truncated: this execution produced {}; the rest is dropped]\n".format(why)
        output = {"output_type": "stream", "name": "stderr", "text": notice}
        execution.collector.add(output)
        if execution.progress is not None:
            execution.progress(output)
        if self.owner is not None:
            msg = dead_event("truncated")
            msg["header"]["msg_type"] = "stream"
            msg["parent_header"] = {"msg_id": execution.msg_id, "msg_type": "execute_request"}
            msg["content"] = {"name": "stderr", "text": notice}
            self._on_iopub(self, msg)
        if self._config.on_output_limit == "interrupt" and self.pid is not None:
            self._master.signal(self.pid, signal.SIGINT)

    def _stdin_received(self, msg):
        if msg["header"]["msg_type"] != "input_request":
            return
        execution = self._executions.get(msg["parent_header"].get("msg_id"))
        if execution is None:
            return
        execution.pending_input = msg["header"]
        request = {"output_type": "input_request", "prompt": msg["content"].get("prompt", ""), "password": bool(msg["content"].get("password", False))}
        if execution.progress is not None:
            execution.progress(request)
        if self.owner is not None:
            self._on_iopub(self, msg)

    def _maybe_finish(self, execution):
        if execution.reply is None or not execution.idle:
            return
        if self._config.disk_limit_mb and self.owner is not None and self._check_disk():
            return  # dead: the execution failed with the disk limit named
        self._executions.pop(execution.msg_id, None)
        execution.cancel_timers()
        self.touch()
        files = changed_files(execution.files_before, self.files.snapshot())
        if files and self.owner is not None:
            event = dead_event("files")
            event["header"]["msg_type"] = "cell_files"
            event["parent_header"] = {"msg_id": execution.msg_id, "msg_type": "execute_request"}
            event["content"] = {"files": files}
            self._on_iopub(self, event)
        if not execution.deferred.called:
            result = execution.result()
            result["files"] = files
            execution.deferred.callback(result)

    # -- timers ----------------------------------------------------------------------

    def _start_timer(self, name, seconds, fn):
        self._cancel_timer(name)
        self._timers[name] = self._reactor.callLater(seconds, self._fire_timer, name, fn)

    def _fire_timer(self, name, fn):
        self._timers.pop(name, None)
        fn()

    def _cancel_timer(self, name):
        timer = self._timers.pop(name, None)
        if timer is not None and timer.active():
            timer.cancel()


def _message_size(msg):
    content = msg.get("content", {})
    if "text" in content:
        return len(content["text"])
    size = 0
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else 64
    for line in content.get("traceback") or ():
        size += len(line)
    return size


def _disk_use(path):
    """Bytes used under C{path} (no symlinks followed)."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                pass
    return total


def _tail(path, limit=3000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
