"""Warm kernels the spawners hold for the session router, so that a start takes one router hop.

Without them, ``cell.kernel.start`` went client -> session router -> spawner
and back: two hops through the router before the client had a kernel.  Now
each spawner holds a few ready kernels for the session router
(``cell.spawner.<id>.hold(count)`` tops them up and answers with every
kernel it holds for us); a start takes one of them at once and tells the
spawner the new owner session on the way (``hand_over``).  The router delivers
that message to the spawner before the client can call the kernel, since
both travel the same connection in order.

L{HeldKernels} is plain bookkeeping: what the spawners answered, minus what
was handed out or ended since.  L{HoldRequests} asks for them (through the
control plane's L{SpawnerCalls}), and again soon when a spawner's pool was short.
"""

import collections

from twisted.logger import Logger

#: how many handed-out or ended kernel ids are remembered (see L{HeldKernels._gone})
GONE_KEPT = 4096
#: how soon a spawner whose pool was short is asked again to hold kernels for us (seconds)
HOLD_RETRY_S = 0.5


class HeldKernels:
    """@param per_spawner: how many ready kernels each spawner holds for the session router."""

    def __init__(self, per_spawner):
        self.per_spawner = per_spawner
        self._by_spawner = {}  # spawner_id -> [descriptor, ...], oldest first
        # Kernel ids handed out or ended, never to be offered again.  A stale answer to `hold` can
        # only name kernels held moments ago, so the most recent GONE_KEPT ids are enough.
        self._gone = collections.OrderedDict()

    def replace(self, spawner_id, kernels):
        """A spawner's answer to ``hold``: every kernel it holds for us (an answer may be stale)."""
        self._by_spawner[spawner_id] = [k for k in kernels if k["kernel_id"] not in self._gone]

    def take(self, spawner_id):
        """A held kernel of C{spawner_id} (its descriptor), or None; it is never offered again."""
        kernels = self._by_spawner.get(spawner_id)
        if not kernels:
            return None
        kernel = kernels.pop(0)
        self._forget(kernel["kernel_id"])
        return kernel

    def discard(self, kernel_id):
        """A kernel ended (held or not): forget it."""
        self._forget(kernel_id)
        for kernels in self._by_spawner.values():
            kernels[:] = [k for k in kernels if k["kernel_id"] != kernel_id]

    def _forget(self, kernel_id):
        self._gone[kernel_id] = None
        while len(self._gone) > GONE_KEPT:
            self._gone.popitem(last=False)

    def drop_spawner(self, spawner_id):
        self._by_spawner.pop(spawner_id, None)

    def count(self, spawner_id):
        return len(self._by_spawner.get(spawner_id, ()))

    def spawners_with_kernels(self):
        return [spawner_id for spawner_id, kernels in self._by_spawner.items() if kernels]


class HoldRequests:
    """Keeps each spawner holding its quota of ready kernels for us (L{HeldKernels.per_spawner}).

    @param held: the L{HeldKernels} its answers go to.
    @param spawners: the L{SpawnerCalls} port (its C{hold}).
    @param is_known: C{is_known(spawner_id)}: whether that spawner is still connected.
    """

    log = Logger()

    def __init__(self, clock, held, spawners, is_known):
        self._clock = clock
        self.held = held
        self._spawners = spawners
        self._is_known = is_known
        self._retries = {}  # spawner id -> the timer that asks it to hold kernels again

    def ask(self, spawner_id):
        """Ask C{spawner_id} to hold its quota of ready kernels for us again (not waited for)."""
        count = self.held.per_spawner
        if not count:
            return
        d = self._spawners.hold(spawner_id, count)
        d.addCallbacks(self._answered, self._failed, callbackArgs=(spawner_id, count), errbackArgs=(spawner_id,))

    def _answered(self, kernels, spawner_id, count):
        self.held.replace(spawner_id, kernels)
        # Its pool was short (a burst): ask again once it has refilled, or starts stay two hops from now on.
        if len(kernels) < count and self._is_known(spawner_id) and spawner_id not in self._retries:
            self._retries[spawner_id] = self._clock.callLater(HOLD_RETRY_S, self._again, spawner_id)

    def _failed(self, failure, spawner_id):
        self.log.warn("spawner {id} holds no kernels for us: {error}", id=spawner_id, error=failure.getErrorMessage())

    def _again(self, spawner_id):
        self._retries.pop(spawner_id, None)
        if self._is_known(spawner_id):
            self.ask(spawner_id)

    def spawner_left(self, spawner_id):
        """Forget what C{spawner_id} held for us, and stop asking it."""
        self.held.drop_spawner(spawner_id)
        timer = self._retries.pop(spawner_id, None)
        if timer is not None and timer.active():
            timer.cancel()

    def sizes(self):
        """Its table's size (node metrics, the soak)."""
        return {"hold_retries": len(self._retries)}
