"""The spawner's one way to run blocking work: a bounded thread pool of its own.

Directory walks, file writes and reads, ``rmtree``, launching a kernel from its
kernelspec: anything that may take more than a few milliseconds goes through
L{BlockingWork} and comes back to the reactor as a Deferred.  A pool of its
own (not the reactor's, which name resolution shares) with a fixed number of
threads: a burst queues rather than starting a thread per request.
"""

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

#: threads of the pool; a burst of walks or file writes waits for one rather than multiplying threads
MAX_THREADS = 8


class BlockingWork:
    """Runs C{f(*args)} in one of C{max_threads} threads; C{run} returns a Deferred fired on the reactor.

    The pool starts with the reactor and stops at its shutdown.
    """

    def __init__(self, reactor, max_threads=MAX_THREADS, name="cell-blocking"):
        self._reactor = reactor
        self.pool = ThreadPool(minthreads=0, maxthreads=max_threads, name=name)
        reactor.callWhenRunning(self.pool.start)
        reactor.addSystemEventTrigger("during", "shutdown", self.pool.stop)

    def run(self, f, *args, **kwargs):
        """C{f(*args, **kwargs)} in a thread of the pool; the Deferred fires (on the reactor) with its result."""
        return threads.deferToThreadPool(self._reactor, self.pool, f, *args, **kwargs)

    __call__ = run
