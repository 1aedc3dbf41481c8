"""The lifecycle of one kernel, in one place.

A L{Kernel} is what a client sees: an unguessable id, an owner, a working
directory that survives restarts, and one forked ipykernel process at a time
behind it.  Its states (L{KernelState})::

    starting --ready--> ready --(assign)--> ready (owned) --> dead
       ^                                         |
       +---------------- restart ----------------+

It is dead for good once its process exits unexpectedly, stops answering the
heartbeat, is shut down, or passes its idle timeout or lifespan; then every
pending call fails with L{KernelDied} and a last iopub ``status: dead`` event
(with a ``reason``) is published.

The work is shared by collaborators, each with one job: L{KernelProcess}
(fork, signal, kill, exit reasons), L{Requests} and L{Execution} (what is in
flight and what it produced), L{OutputLimiter} (the output caps) and
L{Watchdog} (heartbeat, idle, lifespan, processes, disk).  This class holds
the state machine and wires them to the kernel's ZMQ channels.
"""

import dataclasses
import os
import secrets
import signal
import time
import uuid
from typing import Any, Callable, Optional

from twisted.internet import defer
from twisted.logger import Logger

from components.common import errors
from components.common.kernelspecs import PYTHON
from components.worker.blocking import BlockingWork
from components.worker.death_causes import DeathReason
from components.worker.exec_kernel_process import ExecKernelProcess
from components.worker.executions import Execution, Requests
from components.worker.files import KernelFiles
from components.worker.kernel_channels import KernelChannels
from components.worker.kernel_disk import KernelDisks
from components.worker.kernel_messages import KernelMessages
from components.worker.kernel_process import KernelProcess
from components.worker.kernel_state import KernelState
from components.worker.metrics import SpawnerMetrics
from components.worker.output_limiter import OutputLimiter
from components.worker.outputs import OUTPUT_MSG_TYPES, output_size, to_output
from components.worker.watchdog import Watchdog

#: Most Jupyter client messages held while a kernel restarts.
MAX_JUPYTER_WAITING = 64

#: How often a starting kernel is asked kernel_info until iopub shows the answer.
PROBE_INTERVAL_S = 0.05
#: A launched kernel (another language) is asked again when it answered on shell before iopub showed it, or after
#: this long: R answers each kernel_info slowly, and a probe every 50 ms during its 1-2 s start left it a backlog.
LAUNCHED_PROBE_INTERVAL_S = 1.0
#: after an interrupt, how long an execution whose kernel went idle may wait for its reply (see _idle)
INTERRUPTED_REPLY_GRACE_S = 1.0
#: Linux's clock of file timestamps (coarse: a file written later is never stamped earlier)
CLOCK_REALTIME_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", 5)


@dataclasses.dataclass
class KernelHost:
    """What every kernel of one spawner shares: the clock, settings, fork master, directories, sandbox.

    C{run_blocking(f, *args)} runs C{f} off the reactor thread and returns a
    Deferred (the spawner's L{BlockingWork}; tests run it inline).
    """

    clock: Any
    config: Any
    master: Any
    zmq_context: Any
    work_root: str
    runtime_root: str
    sandbox: Any = None
    channels_factory: Callable = KernelChannels
    messages: KernelMessages = dataclasses.field(default_factory=KernelMessages)
    metrics: SpawnerMetrics = dataclasses.field(default_factory=SpawnerMetrics)
    run_blocking: Optional[Callable] = None
    #: the kernelspecs of other languages (L{components.worker.kernelspecs.Kernelspecs}), for non-Python kernels
    kernelspecs: Any = None
    #: the kernels' directories as file systems of their own where the spawner is root and sandboxes (L{KernelDisks})
    disks: Any = None

    def __post_init__(self):
        self.disks = self.disks or KernelDisks.for_host(self)

    def blocking(self, f, *args):
        if self.run_blocking is None:
            self.run_blocking = BlockingWork(self.clock)
        return self.run_blocking(f, *args)


class Kernel:
    """One kernel: see the module docstring.

    @param host: the spawner's L{KernelHost}.
    @param on_iopub: called with C{(kernel, msg)} for every iopub message of an owned kernel.
    @param on_dead: called with C{(kernel, reason)} once, when the kernel is dead for good.
    @param on_pid: called with C{(kernel, pid)} each time a process is forked for it.
    @param kernel_name: C{python3} (forked from the warm master), or the name of one of the host's
        C{kernelspecs} (launched from its kernelspec, L{ExecKernelProcess}).
    """

    log = Logger()

    def __init__(self, host, on_iopub, on_dead, on_pid=lambda kernel, pid: None, on_jupyter=None, kernel_name=PYTHON):
        self.kernel_id = uuid.uuid4().hex
        self.kernel_name = kernel_name
        self._host = host
        self._config = host.config
        self._clock = host.clock
        self._on_iopub = on_iopub
        self._on_dead = on_dead
        self._on_jupyter = on_jupyter or (lambda kernel, channel, msg: None)
        #: requests a Jupyter client sent through the face (msg_id -> msg_type), until their reply
        self._jupyter_pending = {}
        #: their executions still running (the kernel is busy; an input_request of theirs goes to the client)
        self._jupyter_executing = set()
        #: what clients sent while the kernel restarted, sent when it is ready
        self._jupyter_waiting = []
        self.cwd = os.path.join(host.work_root, self.kernel_id)
        self.files = KernelFiles(self.cwd, max_files=host.config.max_files)
        #: uploads run in threads, one at a time and in order (L{components.worker.procedures})
        self.file_work = defer.DeferredLock()
        #: how an interrupt reaches the kernel: "signal" (SIGINT to its group) or "message" (interrupt_request)
        self.interrupt_mode = "signal"
        if kernel_name == PYTHON:
            self.process = KernelProcess(self.kernel_id, host, self.cwd, lambda pid: on_pid(self, pid))
        else:
            self.process = ExecKernelProcess(
                self.kernel_id, host, self.cwd, kernel_name, host.kernelspecs, on_exit=self.process_exited
            )
            self.interrupt_mode = host.kernelspecs.specs[kernel_name].interrupt_mode
        self.requests = Requests()
        self.limiter = OutputLimiter(host.clock, host.config)
        self.watchdog = Watchdog(
            host.clock,
            host.config,
            self.die,
            busy=lambda: bool(self.requests.executions or self._jupyter_executing),
            ping=self._ping,
            # ipykernel answers heartbeats from a thread of its own; IRkernel's loop does not while it runs code
            heartbeat_while_busy=kernel_name == PYTHON,
        )
        self.watchdog.disk_check = lambda: host.disks.check(self.cwd)
        self.owner = None
        #: a bearer secret that lets a new session take this kernel over (cell.kernel.resume)
        self.resume_token = secrets.token_urlsafe(24)
        self.state = KernelState.STARTING
        self.dead_reason = None
        self._channels = None
        self._ready = None
        self._probe = None
        self._probe_ids = set()
        self._warmup_id = None
        self._start_timer = None

    @property
    def pid(self):
        return self.process.pid

    # -- starting ----------------------------------------------------------------

    def start(self):
        """Fork the process; the Deferred fires with this kernel once it is ready."""
        self._host.disks.make(self.cwd)
        return self._fork()

    def _fork(self):
        self.state = KernelState.STARTING
        self._warmup_id = None
        self._probe_ids.clear()
        ready = self._ready = defer.Deferred()
        try:
            d = self.process.fork(niced=self.owner is None)
        except errors.CellError as exc:
            self._fail_start(exc)
            return ready
        self.files.owner = self.process.owns_files_as()
        self.watchdog.cgroup = self.process.cgroup
        self._start_timer = self._clock.callLater(self._config.start_timeout_s, self._start_timed_out)
        d.addCallbacks(self._spawned, self._fail_start)
        return ready

    def _spawned(self, forked):
        pid, connection = forked
        if self.state == KernelState.DEAD:
            self.process.kill(pid)
            return
        config = self._config
        self._channels = self._host.channels_factory(
            self._clock,
            self._host.zmq_context,
            connection,
            on_reply=self._reply_received,
            on_iopub=self._iopub_received,
            on_stdin=self._stdin_received,
            on_pong=self.watchdog.pong,
            max_iopub_content_bytes=config.max_output_bytes + 65536 if config.max_output_bytes else 0,
        )
        self._send_probe()

    def _send_probe(self):
        """Ask kernel_info until iopub shows the kernel's answer (the slow-joiner trap)."""
        if self.state != KernelState.STARTING or self._channels is None:
            return
        # Any probe's status on iopub shows iopub flows (a kernel slow to start answers the queued ones late).
        self._probe_ids.add(self._channels.request("shell", "kernel_info_request", {}))
        _cancel(self._probe)
        interval = PROBE_INTERVAL_S if self.kernel_name == PYTHON else LAUNCHED_PROBE_INTERVAL_S
        self._probe = self._clock.callLater(interval, self._send_probe)

    def _iopub_flowing(self):
        """iopub answered the probe; warm the execute path, then count the kernel ready.

        An execute without history (no execution count) pays IPython's first-run
        costs here, in the pool, instead of in the user's first execute.  Kernels of other
        languages are ready at once (their first execute increments their execution count).
        """
        _cancel(self._probe)
        self._probe_ids.clear()
        if self.kernel_name != PYTHON:
            self._became_ready()
            return
        # Not silent, so the display hook runs too; without history, so the user's first cell is still In[1].
        content = {
            "code": "0",
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        self._warmup_id = self._channels.request("shell", "execute_request", content)

    def _became_ready(self):
        self.state = KernelState.READY
        self._warmup_id = None
        waiting, self._jupyter_waiting = self._jupyter_waiting, []
        for message in waiting:
            self.jupyter_send(message)
        _cancel(self._start_timer)
        _cancel(self._probe)
        self.watchdog.watch_heartbeat()
        ready, self._ready = self._ready, None
        ready.callback(self)

    def _start_timed_out(self):
        self._fail_start(errors.Capacity("the kernel did not start within {} s".format(self._config.start_timeout_s)))

    def _fail_start(self, failure):
        ready, self._ready = self._ready, None
        self.die(DeathReason("start_failed", "failed to start"))
        if ready is not None and not ready.called:
            ready.errback(failure)

    # -- ownership and lifetime ------------------------------------------------------

    def assign(self, owner):
        """Hand this ready kernel to C{owner} (a WAMP session id); start its clocks."""
        self.owner = owner
        self.process.restore_priority(self.log)
        self.watchdog.assigned()

    def touch(self):
        """Note activity: the idle clock starts again."""
        if self.owner is not None and self.state != KernelState.DEAD:
            self.watchdog.touch()

    def process_exited(self, pid, status, oom=False):
        """Called by the spawner when the fork master reaps C{pid} (any generation)."""
        if self.process.exited(pid) and self.state != KernelState.DEAD:
            self.die(self.process.exit_reason(status, oom))
        if self.state == KernelState.DEAD:
            self.process.release()

    def shutdown(self, reason=DeathReason("shutdown", "shut down by its owner")):
        """Kill the process group and declare the kernel dead."""
        self.die(reason)
        return defer.succeed(None)

    def die(self, reason):
        """Declare the kernel dead for good: fail everything pending, kill, clean up, tell."""
        if self.state == KernelState.DEAD:
            return
        was_starting = self.state == KernelState.STARTING
        self.state = KernelState.DEAD
        self._host.metrics.died(reason)
        reason = str(reason)  # the text travels; the cause was for the count
        self.dead_reason = reason
        self.log.info("kernel {kernel_id} dead: {reason}", kernel_id=self.kernel_id, reason=reason)
        if was_starting and self.process.runtime_dir:
            self.log.warn(
                "kernel {kernel_id} failed to start; its log ends with:\n{tail}",
                kernel_id=self.kernel_id,
                tail=self.process.log_tail(),
            )
        self.watchdog.stop()
        _cancel(self._start_timer)
        _cancel(self._probe)
        self._close_channels()
        self.process.stop()
        self.requests.fail_all(errors.KernelDied("the kernel died: {}".format(reason), reason=reason))
        self._jupyter_pending.clear()
        self._jupyter_executing.clear()
        self._jupyter_waiting.clear()
        ready, self._ready = self._ready, None
        if ready is not None and not ready.called:
            ready.errback(errors.KernelDied("the kernel died while starting: {}".format(reason), reason=reason))
        self._host.disks.remove(self.cwd)
        self.process.release()
        if self.owner is not None:
            self._on_iopub(self, self._host.messages.dead(reason))
        self._on_dead(self, reason)

    def _close_channels(self):
        if self._channels is not None:
            self._channels.close()
            self._channels = None

    def restart(self):
        """Replace the process by a fresh one (same id, owner and directory)."""
        self._check_alive()
        self.requests.fail_all(errors.KernelDied("the kernel was restarted", reason="restarted"))
        self._jupyter_pending.clear()
        self._jupyter_executing.clear()
        self._close_channels()
        self.process.stop()
        self.watchdog.stop_heartbeat()
        _cancel(self._probe)
        if self.owner is not None:
            self._on_iopub(self, self._host.messages.restarting())
        d = self._fork()
        d.addCallback(lambda _: {"status": "ok"})
        return d

    def interrupt(self):
        """Interrupt the kernel the way its kernelspec says: SIGINT to its process group, or an interrupt_request."""
        self._check_alive()
        for execution in self.requests.executions.values():
            execution.interrupted = True
        self._interrupt_process()

    def _interrupt_process(self):
        if self.interrupt_mode == "message" and self._channels is not None:
            self._channels.request("control", "interrupt_request", {})
        else:
            self.process.signal(signal.SIGINT)

    def _ping(self):
        if self._channels is not None:
            self._channels.ping()

    # -- requests --------------------------------------------------------------------

    def execute(
        self,
        code,
        allow_stdin=False,
        timeout=None,
        user_expressions=None,
        stop_on_error=True,
        progress=None,
        kill_on_timeout=False,
    ):
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
        # What the filesystem stamps files with: a file the execution writes is stamped no earlier.
        started_ns = time.clock_gettime_ns(CLOCK_REALTIME_COARSE)
        execution = Execution(self._channels.request("shell", "execute_request", content), progress, kill_on_timeout)
        execution.started_ns = started_ns
        execution.deferred = defer.Deferred(canceller=lambda _: self._cancel_execution(execution))
        self.requests.add_execution(execution)
        execution.deferred.addBoth(self._observe_execute, self._clock.seconds())
        limit = (
            self._config.execute_timeout_s if timeout is None else min(float(timeout), self._config.execute_timeout_s)
        )
        execution.timers.append(self._clock.callLater(limit, self._execution_timed_out, execution))
        return execution.deferred

    def _observe_execute(self, result, started):
        self._host.metrics.execute_seconds.observe(self._clock.seconds() - started)
        return result

    def _cancel_execution(self, execution):
        self.requests.remove(execution)
        if self.state != KernelState.DEAD:
            self._interrupt_process()

    def _execution_timed_out(self, execution):
        if self.requests.execution(execution.msg_id) is not execution:
            return
        execution.timed_out = True
        if execution.kill_on_timeout:
            self.requests.remove(execution)
            execution.deferred.callback(execution.result())
            self.die(DeathReason("execute_timeout", "the execution passed its time limit"))
            return
        self._interrupt_process()
        execution.timers.append(
            self._clock.callLater(self._config.interrupt_grace_s, self._interrupt_ignored, execution)
        )

    def _reply_lost(self, execution):
        if self.requests.execution(execution.msg_id) is not execution or execution.reply is not None:
            return
        self.log.info("kernel {kernel_id}: an interrupted execution ended without a reply", kernel_id=self.kernel_id)
        execution.reply = {
            "status": "error",
            "ename": "KeyboardInterrupt",
            "evalue": "interrupted before it ran",
            "traceback": [],
        }
        self._maybe_finish(execution)

    def _interrupt_ignored(self, execution):
        """The kernel did not stop after the timeout interrupt: replace it."""
        if not self.requests.remove(execution):
            return
        self.log.info("kernel {kernel_id} ignored the timeout interrupt; restarting it", kernel_id=self.kernel_id)
        result = execution.result()
        result["kernel_restarted"] = True
        execution.deferred.callback(result)
        self.restart()

    def input(self, value):
        """Answer the pending ``input()`` of the running execution."""
        self._check_alive()
        self.touch()
        execution = self.requests.waiting_for_input()
        if execution is None:
            raise errors.InvalidArgument("no input is pending: input() answers an input_request of a running execute")
        parent, execution.pending_input = execution.pending_input, None
        self._channels.request("stdin", "input_reply", {"value": value}, parent=parent)

    def send_comm(self, msg_type, content, metadata, buffers):
        """Send a comm message (``comm_open``, ``comm_msg``, ``comm_close``) to the kernel; return its msg_id.

        It has no reply; what the kernel does with it shows on iopub under that
        msg_id as parent (a front end waits for its ``idle`` status).
        """
        self._check_alive()
        self.touch()
        return self._channels.request("shell", msg_type, content, metadata=metadata, buffers=buffers)

    def jupyter_send(self, message):
        """Send a Jupyter client's checked L{ClientMessage}, under its own ids, signed by us; its reply goes back
        through C{on_jupyter} (and an input request of its execution)."""
        if self.state == KernelState.STARTING and self.owner is not None:
            # Restarting: Jupyter clients keep sending (kernel_info until answered); as ZMQ would, hold on.
            if len(self._jupyter_waiting) >= MAX_JUPYTER_WAITING:
                raise errors.Capacity("kernel {} is restarting; try again in a moment".format(self.kernel_id))
            self._jupyter_waiting.append(message)
            return message.header["msg_id"]
        self._check_alive()
        self.touch()
        msg_id = self._channels.request(
            message.channel,
            message.msg_type,
            message.content,
            parent=message.parent_header,
            metadata=message.metadata,
            buffers=message.buffers,
            header=message.header,
        )
        if message.msg_type.endswith("_request"):
            self._jupyter_pending[msg_id] = message.msg_type
            if message.msg_type == "execute_request":
                self._jupyter_executing.add(msg_id)
        return msg_id

    def answer_jupyter(self, message, msg_type, content):
        """Answer a client's request ourselves (interrupt, shutdown): the reply it waits for, on its channel."""
        self._on_jupyter(self, message.channel, self._host.messages.reply(msg_type, content, message.header))

    def shell_request(self, msg_type, content):
        """Send a shell request (complete, inspect); fire with the reply's content."""
        self._check_alive()
        self.touch()
        d = self.requests.add_request(self._channels.request("shell", msg_type, content))
        timeout = self._config.request_timeout_s

        def timed_out(result, _):
            raise errors.Timeout("the kernel did not answer {} within {} s".format(msg_type, timeout))

        d.addTimeout(timeout, self._clock, onTimeoutCancel=timed_out)
        return d

    def _check_alive(self):
        if self.state == KernelState.DEAD:
            raise errors.NotFound("kernel {} is dead: {}".format(self.kernel_id, self.dead_reason))
        if self.state != KernelState.READY or self._channels is None:
            raise errors.Capacity("kernel {} is restarting; try again in a moment".format(self.kernel_id))

    # -- incoming messages -----------------------------------------------------------

    def _reply_received(self, channel, msg):
        parent_id = msg["parent_header"].get("msg_id")
        msg_type = msg["header"]["msg_type"]
        if parent_id in self._jupyter_pending:
            del self._jupyter_pending[parent_id]
            self._jupyter_executing.discard(parent_id)
            self.touch()
            self._on_jupyter(self, channel, msg)
            return
        if msg_type == "kernel_info_reply":
            if self.state == KernelState.STARTING and self.kernel_name != PYTHON and parent_id in self._probe_ids:
                # Shell answered before iopub showed the status (the slow joiner): ask again shortly.
                _cancel(self._probe)
                self._probe = self._clock.callLater(PROBE_INTERVAL_S, self._send_probe)
            return
        if self.state == KernelState.STARTING:
            if msg_type == "execute_reply" and parent_id is not None and parent_id == self._warmup_id:
                self._became_ready()
            return
        if msg_type != "execute_reply":
            self.requests.answer(parent_id, msg["content"])
            return
        execution = self.requests.execution(parent_id)
        if execution is not None:
            execution.reply = msg["content"]
            if msg["content"].get("status") == "aborted":
                execution.idle = True
            self._maybe_finish(execution)

    def _iopub_received(self, msg):
        parent_id = msg["parent_header"].get("msg_id")
        msg_type = msg["header"]["msg_type"]
        if self.state == KernelState.STARTING:
            if (
                msg_type == "status"
                and parent_id is not None
                and parent_id in self._probe_ids
                and self._warmup_id is None
            ):
                self._iopub_flowing()
            return
        execution = self.requests.execution(parent_id)
        output = to_output(msg_type, msg["content"]) if msg_type in OUTPUT_MSG_TYPES else None
        if msg_type in OUTPUT_MSG_TYPES:
            admitted, why_cut = self.limiter.admit(execution, output, msg["content"])
            if why_cut and execution is not None:
                self._truncate(execution, why_cut)
            if not admitted:
                cut = msg["content"].get("oversized_bytes") or (output_size(output) if output is not None else 0)
                self._host.metrics.output_bytes_cut.inc(cut)
                return
        if self.owner is not None:
            self._on_iopub(self, msg)
        if execution is None:
            return
        if msg_type in OUTPUT_MSG_TYPES:
            execution.add_output(output)
        elif msg_type == "status" and msg["content"].get("execution_state") == "idle":
            execution.idle = True
            self._maybe_finish(execution)
            if execution.interrupted and execution.reply is None:
                # A SIGINT that lands before the code runs (right after execute_input) makes ipykernel drop the
                # request without a reply ("KeyboardInterrupt caught in kernel"), and the kernel goes idle: the
                # reply would never come.  The reply and idle travel on two sockets, so it gets a moment first.
                execution.timers.append(self._clock.callLater(INTERRUPTED_REPLY_GRACE_S, self._reply_lost, execution))

    def _truncate(self, execution, why):
        """Cut an execution's output once, with a notice; maybe interrupt it."""
        if execution.truncated:
            return
        execution.truncated = True
        notice = "\n[output truncated: this execution produced {}; the rest is dropped]\n".format(why)
        execution.add_output({"output_type": "stream", "name": "stderr", "text": notice})
        if self.owner is not None:
            self._on_iopub(self, self._host.messages.stream("stderr", notice, execution.msg_id))
        if self._config.on_output_limit == "interrupt":
            self._interrupt_process()

    def _stdin_received(self, msg):
        if msg["header"]["msg_type"] != "input_request":
            return
        parent_id = msg["parent_header"].get("msg_id")
        if parent_id in self._jupyter_executing:
            self._on_jupyter(self, "stdin", msg)
            return
        execution = self.requests.execution(parent_id)
        if execution is None:
            return
        execution.pending_input = msg["header"]
        if execution.progress is not None:
            execution.progress(
                {
                    "output_type": "input_request",
                    "prompt": msg["content"].get("prompt", ""),
                    "password": bool(msg["content"].get("password", False)),
                }
            )
        if self.owner is not None:
            self._on_iopub(self, msg)

    def _maybe_finish(self, execution):
        """Reply and idle are in: look at the directory (off the reactor), then answer."""
        if not execution.finished or not self.requests.remove(execution):
            return
        self.touch()
        d = self._host.blocking(self.files.changes_since, execution.started_ns)
        d.addCallbacks(self._finish, self._scan_failed, callbackArgs=(execution,), errbackArgs=(execution,))

    def _scan_failed(self, failure, execution):
        self.log.failure(
            "kernel {kernel_id}: could not look at its working directory", failure, kernel_id=self.kernel_id
        )
        self._finish(([], 0), execution)

    def _finish(self, scan, execution):
        files, used = scan
        if self.state == KernelState.DEAD:
            if not execution.deferred.called:
                execution.deferred.errback(
                    errors.KernelDied("the kernel died: {}".format(self.dead_reason), reason=self.dead_reason)
                )
            return
        if self.owner is not None and (reason := self._host.disks.over_limit(self.cwd, used)):
            self.requests.add_execution(execution)  # so that it fails with the reason, as every pending call does
            self.die(reason)
            return
        if files and self.owner is not None:
            self._on_iopub(self, self._host.messages.files(files, execution.msg_id))
        if not execution.deferred.called:
            result = execution.result()
            result["files"] = files
            execution.deferred.callback(result)


def _cancel(timer):
    if timer is not None and timer.active():
        timer.cancel()
