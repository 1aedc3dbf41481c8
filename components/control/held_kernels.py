"""Warm kernels the spawners hold for the session router, so that a start takes one router hop.

Without them, ``cell.kernel.start`` went client -> session router -> spawner
and back: two hops through the router before the client had a kernel.  Now
each spawner holds a few ready kernels for the session router
(``cell.spawner.<id>.hold(count)`` tops them up and answers with every
kernel it holds for us); a start takes one of them at once and tells the
spawner the new owner on the way (``hand_over``).  The router delivers
that message to the spawner before the client can call the kernel, since
both travel the same connection in order.

Plain bookkeeping, no WAMP: what the spawners answered, minus what was
handed out or ended since.
"""

import collections

#: how many handed-out or ended kernel ids are remembered (see L{HeldKernels._gone})
GONE_KEPT = 4096


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
