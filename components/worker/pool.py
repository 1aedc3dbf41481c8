"""The warm pool: forked kernels kept ready so that a start costs no fork.

It refills in the background, a few forks at a time, within the spawner's
capacity; a pooled kernel that dies is simply dropped and replaced.  While
its kernels cannot start (the fork master is down and being replaced, forks
are refused) it waits: it forks nothing while C{available()} is false, and
after a failed start it tries again with a growing delay, logging once when
starts begin to fail and once when they work again.

When it is empty, each L{KernelPool.acquire} starts a kernel and waits in
line: whichever start ends first serves whoever has waited longest (a
refill's kernel too), and the pool forks nothing for itself while anyone
waits, so that a crowd arriving at once is served in order of arrival and
its CPU goes to the people waiting (docs/benchmarks.md, the burst section).
"""

import collections

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from components.common import errors
from components.worker.death_causes import DeathReason
from components.worker.kernel_state import KernelState
from components.worker.supervisor import Backoff


class KernelPool:
    """Ready kernels of one spawner.

    @param make_kernel: returns a new, unstarted L{Kernel}.
    @param room: returns how many more kernels the spawner may fork now.
    @param prepare: called with each started kernel before it joins the pool
        (the spawner registers its procedures then, off the hand-out path);
        may return a Deferred.
    @param refill_delay_s: how long after a hand-out the pool starts refilling.
        A fork and a kernel's start-up take CPU; right after a hand-out that CPU
        is better spent on the kernel just handed out, whose first execute
        usually follows at once (measured on 2 cores: start -> first reply
        13.0 ms with an immediate refill, 9.4 ms with a delayed one).
    """

    log = Logger()

    def __init__(self, clock, size, make_kernel, room, concurrency=2, prepare=None, refill_delay_s=0.0, available=None):
        self._clock = clock
        self._retry = None
        #: delays before forking again after failed starts (0.5 s doubling to 30 s; reset by a start that works)
        self.backoff = Backoff()
        self._failing = False
        self._available = available or (lambda: True)
        self.size = size
        self._make_kernel = make_kernel
        self._room = room
        self._prepare = prepare
        self._refill_delay_s = refill_delay_s
        self._delayed_refill = None
        self._concurrency = concurrency
        self._ready = collections.deque()
        #: acquisitions waiting for a kernel, oldest first (each started one; any start's kernel serves the first)
        self._waiters = collections.deque()
        self._starting = 0
        self._closed = False

    @property
    def ready_count(self):
        return len(self._ready)

    def acquire(self):
        """A ready kernel: from the pool if one waits, else the first one ready of those starting (one is started)."""
        while self._ready:
            kernel = self._ready.popleft()
            if kernel.state == KernelState.READY:
                self._refill_later()
                return defer.succeed(kernel)
        waiter = defer.Deferred()
        self._waiters.append(waiter)
        self._start()
        return waiter

    def take_ready(self):
        """A ready kernel out of the pool without forking one, or None (the pool refills after its delay)."""
        while self._ready:
            kernel = self._ready.popleft()
            if kernel.state == KernelState.READY:
                self._refill_later()
                return kernel
        return None

    def _refill_later(self):
        if self._delayed_refill is None or not self._delayed_refill.active():
            self._delayed_refill = self._clock.callLater(self._refill_delay_s, self.refill)

    def refill(self):
        """Start forks until the pool is (or will be) full (not while its kernels cannot start, a retry waits, or
        anyone waits for a kernel: their starts come first)."""
        while (
            not self._waiters
            and self._available()
            and not (self._retry is not None and self._retry.active())  # a start that failed at once sets it
            and not self._closed
            and len(self._ready) + self._starting < self.size
            and self._starting < self._concurrency
            and self._room() > 0
        ):
            self._start()

    def _start(self):
        """Start one kernel; it serves the longest waiter when ready, else joins the pool."""
        self._starting += 1
        kernel = self._make_kernel()
        # A start that raises at once (a directory or a descriptor it could not make) fails like any other:
        # before, it escaped from the refill (an unhandled error in whatever Deferred called it) and its count
        # stayed in _starting for good, so that a pool could stop refilling.
        d = defer.maybeDeferred(kernel.start)
        if self._prepare is not None:
            d.addCallback(self._prepared)
        d.addErrback(self._start_failed, kernel)
        d.addBoth(self._started)

    @staticmethod
    def _start_failed(failure, kernel):
        kernel.shutdown(DeathReason("start_failed", "it failed to start"))  # at once if it raised; else a no-op
        return failure

    def retry_now(self):
        """Its kernels can start again (a new fork master is ready): forget the failures' delay and refill."""
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self.backoff.reset()
        self.refill()

    def _prepared(self, kernel):
        def failed(failure):
            kernel.shutdown(DeathReason("start_failed", "it could not be prepared for the pool"))
            return failure

        d = defer.maybeDeferred(self._prepare, kernel)
        d.addCallbacks(lambda _: kernel, failed)
        return d

    def _started(self, result):
        self._starting -= 1
        if isinstance(result, Failure):
            self._fail_waiters(result)
            if not self._failing:
                self._failing = True
                self.log.warn(
                    "pool kernels fail to start ({err}); retrying with a growing delay", err=result.getErrorMessage()
                )
            if self._retry is None or not self._retry.active():
                self._retry = self._clock.callLater(self.backoff.next_delay(), self.refill)
            return None
        if self._failing:
            self._failing = False
            self.log.info("pool kernels start again")
        self.backoff.reset()
        if self._closed:
            result.shutdown(DeathReason("spawner_stopping", "the spawner is stopping"))
        elif result.state != KernelState.READY:
            self._fail_waiters(Failure(errors.KernelDied("the kernel died while starting")))
        elif self._waiters:
            self._waiters.popleft().callback(result)
        else:
            self._ready.append(result)
        self.refill()
        return None

    def _fail_waiters(self, failure):
        """A start failed: whoever would be left waiting with no start of their own in progress gets its error."""
        while len(self._waiters) > self._starting:
            self._waiters.popleft().errback(failure)

    def ready_kernels(self):
        return list(self._ready)

    def discard(self, kernel):
        """Forget a pooled kernel that died."""
        try:
            self._ready.remove(kernel)
        except ValueError:
            pass

    def close(self):
        self._closed = True
        waiters, self._waiters = self._waiters, collections.deque()
        for waiter in waiters:
            waiter.errback(errors.Capacity("the spawner is stopping; try again in a moment"))
        for call in (self._retry, self._delayed_refill):
            if call is not None and call.active():
                call.cancel()
        while self._ready:
            self._ready.popleft().shutdown(DeathReason("spawner_stopping", "the spawner is stopping"))
