"""The executions and shell requests of one kernel: send, time, collect, answer.

L{KernelExecutions} sends an ``execute_request``, folds what iopub says about
it into its L{Execution} (outputs within the caps of L{OutputLimiter}, the
``idle`` status, an ``input_request``), and answers the caller once reply and
idle are both in and the working directory has been looked at for the files
it wrote.  Its time limit interrupts the kernel, and replaces it if the
interrupt is ignored (a one-shot's kernel is killed at once).  Whether the
kernel is alive, and its process and channels, stay with the L{Kernel}.
"""

import time

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from components.common import errors
from components.worker.death_causes import DeathReason
from components.worker.execution_record import ExecutionRecord
from components.worker.executions import Execution, Requests
from components.worker.kernel_state import KernelState
from components.worker.output_limiter import OutputLimiter
from components.worker.outputs import OUTPUT_MSG_TYPES, output_size, to_output

#: after an interrupt, how long an execution whose kernel went idle may wait for its reply (see L{iopub})
INTERRUPTED_REPLY_GRACE_S = 1.0
#: Linux's clock of file timestamps (coarse: a file written later is never stamped earlier)
CLOCK_REALTIME_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", 5)


class KernelExecutions:
    """What one kernel has in flight for its callers, and what each execution produced.

    @param kernel: the L{Kernel} they run on: its C{channels}, C{interrupt_process()}, C{publish(msg)},
        C{touch()}, C{die(reason)}, C{restart()}, C{files}, C{cwd}, C{owner}, C{state}.
    @param host: its L{KernelHost} (clock, config, metrics, messages, disks, blocking work).
    """

    log = Logger()

    def __init__(self, kernel, host):
        self._kernel = kernel
        self._host = host
        self._clock = host.clock
        self._config = host.config
        self.requests = Requests()
        self.limiter = OutputLimiter(host.clock, host.config)
        self.record = ExecutionRecord(host.config.record_executions, host.config.record_bytes)

    def execute(
        self,
        code,
        allow_stdin=False,
        timeout=None,
        user_expressions=None,
        stop_on_error=True,
        progress=None,
        kill_on_timeout=False,
        tag=None,
    ):
        """Send C{code}; a Deferred of the result dict (see docs/api.md).

        C{progress}, if given, is called with each output as it arrives.
        Cancelling the Deferred interrupts the kernel.  Past C{timeout} the
        kernel is interrupted (and replaced if it does not stop), or, with
        C{kill_on_timeout} (one-shot kernels), killed at once.  Its items and end are kept in
        L{record} (under the next number, and C{tag} if given).
        """
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
        msg_id = self._kernel.channels.request("shell", "execute_request", content)
        execution = Execution(msg_id, progress, kill_on_timeout)
        execution.started_ns = started_ns
        execution.deferred = defer.Deferred()  # its end, whoever still waits for it
        execution.entry = self.record.begin(tag)
        self.record.track(execution.entry, execution.deferred)
        self.requests.add_execution(execution)
        execution.deferred.addBoth(self._observe, self._clock.seconds())
        limit = self._config.execute_timeout_s
        if timeout is not None:
            limit = min(float(timeout), limit)
        execution.timers.append(self._clock.callLater(limit, self._timed_out, execution))
        return _for_caller(execution)

    def interrupted(self):
        """The kernel is being interrupted: a running execution may end without a reply."""
        for execution in self.requests.executions.values():
            execution.interrupted = True

    def input(self, value):
        """Answer the pending ``input()`` of the running execution."""
        execution = self.requests.waiting_for_input()
        if execution is None:
            raise errors.InvalidArgument("no input is pending: input() answers an input_request of a running execute")
        parent, execution.pending_input = execution.pending_input, None
        self._kernel.channels.request("stdin", "input_reply", {"value": value}, parent=parent)

    def shell_request(self, msg_type, content):
        """Send a shell request (complete, inspect); fire with the reply's content, or time out."""
        d = self.requests.add_request(self._kernel.channels.request("shell", msg_type, content))
        timeout = self._config.request_timeout_s

        def timed_out(result, _):
            raise errors.Timeout("the kernel did not answer {} within {} s".format(msg_type, timeout))

        d.addTimeout(timeout, self._clock, onTimeoutCancel=timed_out)
        return d

    def fail_all(self, error):
        """Every pending call fails with C{error} (the kernel died or restarts)."""
        self.requests.fail_all(error)

    # -- what the kernel answers -------------------------------------------------------

    def reply(self, msg):
        """A shell reply of a ready kernel: the answer to a request, or the end of an execution."""
        parent_id = msg["parent_header"].get("msg_id")
        if msg["header"]["msg_type"] != "execute_reply":
            self.requests.answer(parent_id, msg["content"])
            return
        execution = self.requests.execution(parent_id)
        if execution is not None:
            execution.reply = msg["content"]
            if msg["content"].get("status") == "aborted":
                execution.idle = True
            self._maybe_finish(execution)

    def iopub(self, msg):
        """An iopub message of a ready kernel: cap and collect outputs, publish, finish on idle."""
        msg_type = msg["header"]["msg_type"]
        execution = self.requests.execution(msg["parent_header"].get("msg_id"))
        output = to_output(msg_type, msg["content"]) if msg_type in OUTPUT_MSG_TYPES else None
        if msg_type in OUTPUT_MSG_TYPES:
            admitted, why_cut = self.limiter.admit(execution, output, msg["content"])
            if why_cut and execution is not None:
                self._truncate(execution, why_cut)
            if not admitted:
                cut = msg["content"].get("oversized_bytes") or (output_size(output) if output is not None else 0)
                self._host.metrics.output_bytes_cut.inc(cut)
                return
        self._kernel.publish(msg)
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

    def input_request(self, msg):
        """An execution asks for ``input()``: remember what to answer, tell its caller."""
        execution = self.requests.execution(msg["parent_header"].get("msg_id"))
        if execution is None:
            return
        execution.pending_input = msg["header"]
        execution.emit(
            {
                "output_type": "input_request",
                "prompt": msg["content"].get("prompt", ""),
                "password": bool(msg["content"].get("password", False)),
            }
        )
        self._kernel.publish(msg)

    # -- time limits -------------------------------------------------------------------

    def _observe(self, result, started):
        self._host.metrics.execute_seconds.observe(self._clock.seconds() - started)
        return result

    def _timed_out(self, execution):
        if self.requests.execution(execution.msg_id) is not execution:
            return
        execution.timed_out = True
        if execution.kill_on_timeout:
            self.requests.remove(execution)
            execution.deferred.callback(execution.result())
            self._kernel.die(DeathReason("execute_timeout", "the execution passed its time limit"))
            return
        self._kernel.interrupt_process()
        execution.timers.append(
            self._clock.callLater(self._config.interrupt_grace_s, self._interrupt_ignored, execution)
        )

    def _interrupt_ignored(self, execution):
        """The kernel did not stop after the timeout interrupt: replace it."""
        if not self.requests.remove(execution):
            return
        self.log.info("kernel {kernel_id} ignored the timeout interrupt; restarting it", kernel_id=self._kernel_id)
        result = execution.result()
        result["kernel_restarted"] = True
        execution.deferred.callback(result)
        self._kernel.restart()

    def _reply_lost(self, execution):
        if self.requests.execution(execution.msg_id) is not execution or execution.reply is not None:
            return
        self.log.info("kernel {kernel_id}: an interrupted execution ended without a reply", kernel_id=self._kernel_id)
        execution.reply = {
            "status": "error",
            "ename": "KeyboardInterrupt",
            "evalue": "interrupted before it ran",
            "traceback": [],
        }
        self._maybe_finish(execution)

    def _truncate(self, execution, why):
        """Cut an execution's output once, with a notice; maybe interrupt it."""
        if execution.truncated:
            return
        execution.truncated = True
        notice = "\n[output truncated: this execution produced {}; the rest is dropped]\n".format(why)
        execution.add_output({"output_type": "stream", "name": "stderr", "text": notice})
        self._kernel.publish(self._host.messages.stream("stderr", notice, execution.msg_id))
        if self._config.on_output_limit == "interrupt":
            self._kernel.interrupt_process()

    # -- the answer --------------------------------------------------------------------

    def _maybe_finish(self, execution):
        """Reply and idle are in: look at the directory (off the reactor), then answer."""
        if not execution.finished or not self.requests.remove(execution):
            return
        self._kernel.touch()
        d = self._host.blocking(self._kernel.files.changes_since, execution.started_ns)
        d.addCallbacks(self._finish, self._scan_failed, callbackArgs=(execution,), errbackArgs=(execution,))

    def _scan_failed(self, failure, execution):
        self.log.failure(
            "kernel {kernel_id}: could not look at its working directory", failure, kernel_id=self._kernel_id
        )
        self._finish(([], 0), execution)

    def _finish(self, scan, execution):
        files, used = scan
        kernel = self._kernel
        if kernel.state == KernelState.DEAD:
            if not execution.deferred.called:
                execution.deferred.errback(
                    errors.KernelDied("the kernel died: {}".format(kernel.dead_reason), reason=kernel.dead_reason)
                )
            return
        if kernel.owner is not None and (reason := self._host.disks.over_limit(kernel.cwd, used)):
            self.requests.add_execution(execution)  # so that it fails with the reason, as every pending call does
            kernel.die(reason)
            return
        if files:
            kernel.publish(self._host.messages.files(files, execution.msg_id))
        if not execution.deferred.called:
            result = execution.result()
            result["files"] = files
            execution.deferred.callback(result)

    @property
    def _kernel_id(self):
        return self._kernel.kernel_id


def _for_caller(execution):
    """The caller's Deferred of C{execution}'s result.  Cancelling it (the caller left: the router INTERRUPTs the
    call) only stops what goes to that caller: the code runs on, and the record keeps what it prints for
    ``attach``.  Stopping the code is ``interrupt``'s job (docs/api.md)."""

    def detach(_):
        execution.progress = None

    caller = defer.Deferred(canceller=detach)

    def forward(result):
        if not caller.called:
            caller.callback(result) if not isinstance(result, Failure) else caller.errback(result)

    execution.deferred.addBoth(forward)
    return caller
