"""L{components.worker.blocking}: the spawner's one seam for blocking work, on the real reactor and real threads."""

import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.python import threadable

from components.worker.blocking import BlockingWork, run_coroutine
from tests.helpers import until

pytestmark = pytest.mark.unit


@pytest.fixture
def work():
    work = BlockingWork(reactor, max_threads=2, name="test-blocking")
    yield work
    work.stop()


@pytest_twisted.inlineCallbacks
def test_work_runs_in_a_thread_of_the_pool_and_its_result_comes_back_on_the_reactor(work):
    seen = yield work.run(lambda x, y=0: (threadable.isInIOThread(), threading.current_thread().name, x + y), 1, y=2)
    assert seen[0] is False and "test-blocking" in seen[1] and seen[2] == 3
    assert threadable.isInIOThread()
    with pytest.raises(ZeroDivisionError):
        yield work(lambda: 1 / 0)


@pytest_twisted.inlineCallbacks
def test_a_burst_waits_for_the_pools_threads_rather_than_starting_more(work):
    release, lock, running, most = threading.Event(), threading.Lock(), [0], [0]

    def job():
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(30)
        with lock:
            running[0] -= 1

    async def two_running():
        return running[0] == 2

    burst = [work.run(job) for _ in range(6)]
    yield defer.ensureDeferred(until(two_running, 10, "two works running"))
    assert running[0] == 2
    release.set()
    yield defer.gatherResults(burst)
    assert most[0] == 2


@pytest_twisted.inlineCallbacks
def test_a_coroutine_runs_inside_a_work_and_is_refused_on_the_reactor(work):
    async def add(x, y):
        return x + y

    assert (yield work.run(run_coroutine, add, 1, y=2)) == 3
    with pytest.raises(RuntimeError, match="blocks"):
        run_coroutine(add, 1, 2)
