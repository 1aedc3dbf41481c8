"""The spawner's one way to run blocking work: a bounded thread pool of its own.

Directory walks, file writes and reads, ``rmtree``, launching a kernel from its
kernelspec: anything that may take more than a few milliseconds goes through
L{BlockingWork} and comes back to the reactor as a Deferred.  A pool of its
own (not the reactor's, which name resolution shares) with a fixed number of
threads: a burst queues rather than starting a thread per request.  Library
code that is asyncio (jupyter_client's provisioner) runs inside such a work,
through L{run_coroutine}: never an event loop on the reactor's thread.
"""

import asyncio

from twisted.internet import threads
from twisted.python import threadable
from twisted.python.threadpool import ThreadPool

#: threads of the pool; a burst of walks or file writes waits for one rather than multiplying threads
MAX_THREADS = 8


class BlockingWork:
    """Runs C{f(*args)} in one of C{max_threads} threads; C{run} returns a Deferred fired on the reactor.

    The pool starts with the reactor and stops at its shutdown (or at L{stop}).
    """

    def __init__(self, reactor, max_threads=MAX_THREADS, name="cell-blocking"):
        self._reactor = reactor
        self.pool = ThreadPool(minthreads=0, maxthreads=max_threads, name=name)
        reactor.callWhenRunning(self.pool.start)
        self._stopped = False
        reactor.addSystemEventTrigger("during", "shutdown", self.stop)

    def run(self, f, *args, **kwargs):
        """C{f(*args, **kwargs)} in a thread of the pool; the Deferred fires (on the reactor) with its result."""
        return threads.deferToThreadPool(self._reactor, self.pool, f, *args, **kwargs)

    __call__ = run

    def stop(self):
        """Stop the pool once, waiting for the works running (those queued are not run)."""
        if not self._stopped:
            self._stopped = True
            self.pool.stop()


def run_coroutine(f, *args, **kwargs):
    """Inside a blocking work: run the coroutine C{f(*args, **kwargs)} to its end on an event loop of its own.

    Refused on the reactor's thread, which it would block for as long as the coroutine runs.
    """
    if threadable.isInIOThread():
        raise RuntimeError("run_coroutine blocks: call it in a blocking work (BlockingWork.run), not on the reactor")
    return asyncio.run(f(*args, **kwargs))
