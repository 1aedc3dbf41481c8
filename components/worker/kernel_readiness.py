"""When a freshly forked kernel counts as ready: the start-up probe.

A kernel's ZMQ sockets connect while it starts, and iopub is a PUB socket: what
it publishes before our SUB socket has joined is lost (the slow-joiner trap).
So a starting kernel is asked ``kernel_info`` until iopub shows the status of
one of those requests; then (Python only) one warm-up execute pays IPython's
first-run costs in the pool instead of in the user's first cell.  Past the
configured start timeout the start has failed.
"""

from components.common import errors

#: How often a starting kernel is asked kernel_info until iopub shows the answer.
PROBE_INTERVAL_S = 0.05
#: A launched kernel (another language) is asked again when it answered on shell before iopub showed it, or after
#: this long: R answers each kernel_info slowly, and a probe every 50 ms during its 1-2 s start left it a backlog.
LAUNCHED_PROBE_INTERVAL_S = 1.0

#: the warm-up: not silent, so the display hook runs too; without history, so the user's first cell is still In[1]
WARMUP_CONTENT = {
    "code": "0",
    "silent": False,
    "store_history": False,
    "user_expressions": {},
    "allow_stdin": False,
    "stop_on_error": False,
}


class KernelReadiness:
    """Probes one start of a kernel; calls C{on_ready()} once it answers, C{on_failed(error)} past the timeout.

    The kernel hands it each start's channels (L{probe}) and, while it is
    starting, every shell reply and iopub message (L{reply}, L{iopub}).
    """

    def __init__(self, clock, config, forked, on_ready, on_failed):
        """C{forked}: an ipykernel forked from a master (python3, sagemath), probed often and warmed up; else a
        kernel launched from its kernelspec."""
        self._clock = clock
        self._start_timeout_s = config.start_timeout_s
        self._python = forked
        self._on_ready = on_ready
        self._on_failed = on_failed
        self._channels = None
        self._probe_ids = set()
        self._warmup_id = None
        self._probe = None
        self._start_timer = None

    def begin(self):
        """A new process is being forked: its start clock runs from now."""
        self.stop()
        self._start_timer = self._clock.callLater(self._start_timeout_s, self._timed_out)

    def probe(self, channels):
        """The process is up and its channels open: ask it kernel_info until iopub shows the answer."""
        self._channels = channels
        self._send_probe()

    def stop(self):
        """The start is over (ready, failed, or the kernel died): no more probes or timeout."""
        self._channels = None
        self._probe_ids.clear()
        self._warmup_id = None
        _cancel(self._probe)
        _cancel(self._start_timer)
        self._probe = self._start_timer = None

    def reply(self, parent_id, msg_type):
        """A shell reply while starting: the warm-up's ends the start; a launched kernel's kernel_info is re-asked."""
        if msg_type == "kernel_info_reply":
            if not self._python and parent_id in self._probe_ids and self._channels is not None:
                # Shell answered before iopub showed the status (the slow joiner): ask again shortly.
                self._schedule_probe(PROBE_INTERVAL_S)
        elif msg_type == "execute_reply" and parent_id is not None and parent_id == self._warmup_id:
            self._ready()

    def iopub(self, parent_id, msg_type):
        """An iopub message while starting: any probe's status shows that iopub flows."""
        if msg_type == "status" and parent_id is not None and parent_id in self._probe_ids and self._warmup_id is None:
            self._iopub_flowing()

    def _send_probe(self):
        if self._channels is None:
            return
        # Any probe's status on iopub shows iopub flows (a kernel slow to start answers the queued ones late).
        self._probe_ids.add(self._channels.request("shell", "kernel_info_request", {}))
        self._schedule_probe(PROBE_INTERVAL_S if self._python else LAUNCHED_PROBE_INTERVAL_S)

    def _schedule_probe(self, delay):
        _cancel(self._probe)
        self._probe = self._clock.callLater(delay, self._send_probe)

    def _iopub_flowing(self):
        """Warm the execute path (Python), or count a kernel of another language ready at once.

        Its first execute increments such a kernel's execution count, so it gets no warm-up.
        """
        _cancel(self._probe)
        self._probe_ids.clear()
        if not self._python:
            self._ready()
            return
        self._warmup_id = self._channels.request("shell", "execute_request", dict(WARMUP_CONTENT))

    def _ready(self):
        self.stop()
        self._on_ready()

    def _timed_out(self):
        self._start_timer = None
        self._on_failed(errors.Capacity("the kernel did not start within {} s".format(self._start_timeout_s)))


def _cancel(timer):
    if timer is not None and timer.active():
        timer.cancel()
