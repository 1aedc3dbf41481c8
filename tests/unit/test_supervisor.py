"""L{components.worker.supervisor} and the pool's waiting, on a Twisted C{Clock}: replaced with backoff, never a spin."""

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from components.worker.supervisor import Backoff, Supervisor
from tests.fakes import FakePart

pytestmark = pytest.mark.unit


def test_backoff_doubles_to_its_maximum_and_resets():
    backoff = Backoff(initial=0.5, maximum=30.0)
    assert [backoff.next_delay() for _ in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


class SupervisorTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.parts = []
        self.ups, self.downs, self.counted = [], [], []

        def start():
            self.parts.append(FakePart())
            return self.parts[-1]

        self.supervisor = Supervisor(
            self.clock,
            "fork master",
            start,
            on_up=lambda proto, event: self.ups.append(proto),
            on_down=lambda proto, reason: self.downs.append(proto),
            restarted=lambda: self.counted.append(1),
            stable_s=60.0,
        )
        d = self.supervisor.start()
        self.parts[0].come_up()
        self.successResultOf(d)
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def test_a_dead_part_is_replaced_after_the_first_delay(self):
        self.assertTrue(self.supervisor.up)
        self.parts[0].die()
        self.assertFalse(self.supervisor.up)
        self.assertEqual(self.downs, [self.parts[0]], "its kernels are ended once")
        self.clock.advance(0.49)
        self.assertEqual(len(self.parts), 1, "not before the delay")
        self.clock.advance(0.01)
        self.assertEqual(len(self.parts), 2)
        self.parts[1].come_up(2)
        self.assertTrue(self.supervisor.up)
        self.assertIs(self.supervisor.current, self.parts[1])
        self.assertEqual((self.supervisor.restarts, len(self.counted), len(self.ups)), (1, 1, 2))

    def test_failing_starts_back_off_to_thirty_seconds_never_spinning(self):
        self.parts[0].die()
        delays = []
        for _ in range(10):
            before = len(self.parts)
            waited = 0.0
            while len(self.parts) == before:
                self.clock.advance(0.25)
                waited += 0.25
            delays.append(waited)
            self.parts[-1].die("preload failed")  # dies before it is ready
        self.assertEqual(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0])
        warned = [e for e in self.logged if e.get("log_level") == LogLevel.warn]
        self.assertEqual(len(warned), 3, "died, began to fail, stopped growing its delay: not one line per try")
        self.assertEqual(self.downs, [self.parts[0]], "only a part that was up has kernels to end")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1, "one pending restart, never more")

    def test_the_delay_resets_after_a_part_stayed_up(self):
        self.parts[0].die()
        for part in range(1, 4):  # three quick deaths: 0.5, 1, 2
            self.clock.advance(self.supervisor.backoff._next)
            self.parts[part].come_up()
            self.parts[part].die()
        self.clock.advance(4.0)
        self.parts[4].come_up()
        self.clock.advance(60.0)  # up a while
        self.parts[4].die()
        self.clock.advance(0.5)
        self.assertEqual(len(self.parts), 6, "back to the first delay")

    def test_waiters_are_served_by_the_replacement_or_told_after_their_timeout(self):
        self.parts[0].die()
        served = self.supervisor.when_up(10.0)
        late = self.supervisor.when_up(0.2)
        self.clock.advance(0.2)
        self.assertIsNone(self.successResultOf(late))
        self.clock.advance(0.3)
        self.parts[1].come_up()
        self.assertIs(self.successResultOf(served), self.parts[1])
        self.assertIs(self.successResultOf(self.supervisor.when_up(1.0)), self.parts[1])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_stopped_part_is_not_replaced(self):
        self.successResultOf(self.supervisor.stop())
        self.assertTrue(self.parts[0].stopped)
        self.clock.advance(100)
        self.assertEqual(len(self.parts), 1)
        self.assertEqual(self.downs, [])

    def test_a_refused_process_start_is_tried_again_later(self):
        self.parts[0].die()
        calls = []

        def refused():
            calls.append(1)
            raise OSError(11, "Resource temporarily unavailable")

        self.supervisor._start = refused
        self.clock.advance(0.5)
        self.clock.advance(1.0)
        self.assertEqual(len(calls), 2, "each refusal waits the next delay")


def test_a_first_start_that_fails_is_the_callers_error_and_not_retried():
    clock = Clock()
    parts = []

    def start():
        parts.append(FakePart())
        return parts[-1]

    supervisor = Supervisor(clock, "fork master", start)
    d = supervisor.start()
    failures = []
    d.addErrback(failures.append)
    parts[0].die("preload failed")
    assert len(failures) == 1
    clock.advance(100)
    assert len(parts) == 1 and supervisor.current is None and not supervisor.up


class PoolWaitsTests(SynchronousTestCase):
    """The pool forks nothing while its kernels cannot start, and retries failed starts with a growing delay."""

    def make_pool(self, available):
        from components.worker.pool import KernelPool

        self.clock = Clock()
        self.started = []

        class Starting:
            def __init__(kernel):
                kernel.state = "starting"

            def start(kernel):
                d = defer.Deferred()
                self.started.append((kernel, d))
                return d

        return KernelPool(self.clock, 2, Starting, room=lambda: 10, available=available)

    def test_no_fork_while_unavailable(self):
        up = [False]
        pool = self.make_pool(lambda: up[0])
        pool.refill()
        self.assertEqual(self.started, [])
        up[0] = True
        pool.retry_now()
        self.assertEqual(len(self.started), 2)

    def test_failed_starts_retry_with_a_growing_delay(self):
        pool = self.make_pool(lambda: True)
        pool.refill()
        times = []
        for _ in range(6):
            for kernel, d in self.started:
                if not d.called:
                    d.errback(RuntimeError("fork refused"))
            pool.refill()  # a dead kernel's refill while the retry waits forks nothing
            count = len(self.started)
            waited = 0.0
            while len(self.started) == count:
                self.clock.advance(0.25)
                waited += 0.25
            times.append(waited)
        self.assertEqual(times, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
        pool.close()
