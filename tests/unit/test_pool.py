"""L{components.worker.pool}: a crowd served in order of arrival, and starts that fail at once, on a Clock."""

import pytest
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from components.common import errors
from components.worker.pool import KernelPool
from tests.fakes import FakePoolKernel

pytestmark = pytest.mark.unit


class RefusedKernel(FakePoolKernel):
    """A kernel whose start raises before it returns (no directory, no descriptor left): as L{Kernel.start} may."""

    def start(self):
        self._started.append((self, None))
        raise OSError(24, "Too many open files")


class PoolTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.started = []  # (kernel, Deferred) of every start, in order
        self.refuse = False

    def make_pool(self, size):
        def make_kernel():
            return (RefusedKernel if self.refuse else FakePoolKernel)(self.started)

        self.pool = KernelPool(self.clock, size, make_kernel, room=lambda: 100)
        return self.pool

    def ready(self, i):
        kernel, d = self.started[i]
        kernel.state = "ready"
        d.callback(kernel)
        return kernel

    def test_a_start_that_raises_at_once_is_retried_and_the_pool_fills_again(self):
        """Before: the error escaped from refill() (an unhandled error in the Deferred that called it) and each
        such start stayed counted as starting, so that two of them stopped the pool from refilling for good."""
        pool = self.make_pool(2)
        self.refuse = True
        pool.refill()  # does not raise
        refused = [k for k, _ in self.started]
        self.assertEqual(len(refused), 1, "no more forks until the failures' delay has passed")
        self.assertIsNotNone(refused[0].shut, "a refused kernel is shut down (its slot freed)")
        self.refuse = False
        self.clock.advance(pool.backoff.initial)  # the retry
        self.assertEqual(len(self.started), 3)
        self.ready(1), self.ready(2)
        self.assertEqual(pool.ready_count, 2)

    def test_a_refused_start_answers_its_caller_with_the_error(self):
        pool = self.make_pool(0)
        self.refuse = True
        self.failureResultOf(pool.acquire(), OSError)

    def test_the_first_kernel_ready_serves_whoever_waited_longest(self):
        pool = self.make_pool(0)
        first, second = pool.acquire(), pool.acquire()
        self.assertEqual(len(self.started), 2, "each acquisition starts a kernel")
        kernel = self.ready(1)  # the second start ends first
        self.assertIs(self.successResultOf(first), kernel, "before: the first in line waited for its own start")
        self.assertNoResult(second)
        kernel = self.ready(0)
        self.assertIs(self.successResultOf(second), kernel)

    def test_the_pool_forks_for_itself_only_when_nobody_waits(self):
        pool = self.make_pool(2)
        pool.refill()
        self.ready(0), self.ready(1)
        waiting = [pool.acquire() for _ in range(5)]  # two served from the pool, three start and wait
        self.assertEqual(len([d for d in waiting if d.called]), 2)
        self.clock.advance(1)  # past the refill delay
        self.assertEqual(len(self.started), 2 + 3, "before: the pool forked 2 more of its own for the 3 waiting")
        for i in (2, 3, 4):
            self.ready(i)
        self.assertTrue(all(d.called for d in waiting))
        self.assertEqual(len(self.started), 2 + 3 + 2, "nobody waits any more: the pool refills")

    def test_a_failed_start_fails_only_a_waiter_left_without_one(self):
        pool = self.make_pool(0)
        first, second = pool.acquire(), pool.acquire()
        self.started[0][1].errback(errors.Capacity("the kernel did not start within 30.0 s"))
        self.failureResultOf(first, errors.Capacity)
        self.assertNoResult(second)
        kernel = self.ready(1)
        self.assertIs(self.successResultOf(second), kernel)

    def test_closing_answers_everyone_waiting(self):
        pool = self.make_pool(0)
        waiting = pool.acquire()
        pool.close()
        self.failureResultOf(waiting, errors.Capacity)
        self.ready(0)
        self.assertIsNotNone(self.started[0][0].shut, "a kernel that starts after the close is shut down")
