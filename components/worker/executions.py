"""The requests in flight on one kernel, and what each execute has produced so far.

An L{Execution} is one ``execute_request``: its outputs (folded as a
notebook would keep them), its reply, whether iopub said ``idle``, its
timers, a pending ``input()``.  It is finished once it has both the reply and
the ``idle`` status (the kernel sends them on two sockets, in either order).
L{Requests} holds the executions and the other shell requests (complete,
inspect) by msg_id, and fails them all at once when the kernel dies.
"""

from twisted.internet import defer

from components.worker.outputs import OutputCollector


class Execution:
    """One execute request: its outputs, its reply, and who waits for them."""

    def __init__(self, msg_id, progress, kill_on_timeout=False):
        self.msg_id = msg_id
        self.progress = progress
        self.kill_on_timeout = kill_on_timeout
        self.collector = OutputCollector()
        self.reply = None
        self.idle = False
        self.timed_out = False
        self.truncated = False
        self.pending_input = None
        self.interrupted = False
        self.started_ns = 0
        self.timers = []
        self.deferred = None
        #: where its progressive items are kept (components.worker.execution_record), if anywhere
        self.entry = None

    @property
    def finished(self):
        return self.reply is not None and self.idle

    def add_output(self, output):
        self.collector.add(output)
        self.emit(output)

    def emit(self, item):
        """A progressive item (an output, or an ``input_request``): kept in the record, sent to the caller."""
        if self.entry is not None:
            self.entry.add(item)
        if self.progress is not None and not send_progress(self.progress, item):
            self.progress = None  # its caller is gone (the router went away): the record keeps the rest

    def result(self):
        reply = self.reply or {}
        status = "timeout" if self.timed_out else reply.get("status", "error")
        if status == "abort":
            status = "aborted"  # the protocol's old spelling, which IRkernel and bash_kernel send when interrupted
        result = {
            "status": status,
            "execution_count": reply.get("execution_count"),
            "outputs": self.collector.nbformat_outputs(),
        }
        if reply.get("status") == "error":
            result.update(
                ename=reply.get("ename", ""), evalue=reply.get("evalue", ""), traceback=reply.get("traceback", [])
            )
        if reply.get("user_expressions"):
            result["user_expressions"] = reply["user_expressions"]
        return result

    def cancel_timers(self):
        for timer in self.timers:
            if timer.active():
                timer.cancel()
        self.timers = []


def send_progress(progress, item):
    """Send a progressive result; False when it cannot go (the session lost its router: autobahn raises)."""
    try:
        progress(item)
    except Exception:  # TransportLost, or whatever the detached session raises: the call is over for its caller
        return False
    return True


class Requests:
    """Executions and other shell requests in flight, by msg_id."""

    def __init__(self):
        self.executions = {}
        self._others = {}

    def __bool__(self):
        return bool(self.executions or self._others)

    def add_execution(self, execution):
        self.executions[execution.msg_id] = execution

    def execution(self, msg_id):
        return self.executions.get(msg_id)

    def remove(self, execution):
        """Take C{execution} out (it finished, timed out or was cancelled); False if it was not in."""
        execution.cancel_timers()
        return self.executions.pop(execution.msg_id, None) is execution

    def waiting_for_input(self):
        for execution in self.executions.values():
            if execution.pending_input is not None:
                return execution
        return None

    def add_request(self, msg_id):
        """A Deferred for the reply content of shell request C{msg_id}."""
        d = defer.Deferred(canceller=lambda _: self._others.pop(msg_id, None))
        self._others[msg_id] = d
        return d

    def answer(self, msg_id, content):
        d = self._others.pop(msg_id, None)
        if d is not None and not d.called:
            d.callback(content)

    def fail_all(self, error):
        """Every pending call fails with C{error} (the kernel died or restarts)."""
        executions, self.executions = self.executions, {}
        for execution in executions.values():
            execution.cancel_timers()
            if execution.deferred is not None and not execution.deferred.called:
                execution.deferred.errback(error)
        others, self._others = self._others, {}
        for d in others.values():
            if not d.called:
                d.errback(error)
