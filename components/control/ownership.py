"""What happens to a kernel whose holder or whose worker went away: orphans, resumes, the declared dead.

A kernel's holder is the principal its quotas count it against (for a client,
its session id; see L{components.control.control_plane}).  A kernel the
control plane knows is, at any moment, in one of these states::

    held --its holder's session ends--> orphaned --resume_grace_s passes--> shut down, forgotten
      ^                                   |
      +--- cell.kernel.resume ------------+

    held or orphaned --its worker's session ends--> declared dead
    declared dead --the worker comes back still running it--> shut down (once)
    declared dead --the worker comes back without it, or DECLARED_DEAD_KEPT_S passes--> forgotten

The declared dead are kept per worker: when it comes back, the list of
kernels it runs says which of them to end, and the others are forgotten;
a worker that never comes back has its kernels forgotten after
L{DECLARED_DEAD_KEPT_S} (if it came back later still running one, the
kernel would be adopted like any other, and orphaned if its session is gone).

Plain code on a clock: no WAMP.  The placement (L{Placement}) keeps who holds
what; this class keeps the timers and the declared dead, and acts through
the two callables it is given.
"""

#: how long the kernels of a worker that left are remembered as declared dead, waiting for it to return (seconds)
DECLARED_DEAD_KEPT_S = 3600.0


class Ownership:
    """@param placement: the L{Placement} whose kernels these are.
    @param shutdown: called with C{(spawner_id, kernel_id, reason)} to end a kernel on its worker.
    @param announce_lost: called with C{(kernel_id, reason)} when a worker vanished with the kernel.
    """

    def __init__(self, clock, placement, grace_s, shutdown, announce_lost):
        self._clock = clock
        self._placement = placement
        self._grace_s = grace_s
        self._shutdown = shutdown
        self._announce_lost = announce_lost
        self._orphans = {}  # kernel_id -> the timer that shuts it down unless resumed
        self._declared_dead = {}  # spawner_id -> (set of kernel ids, the timer that forgets them)

    def is_orphaned(self, kernel_id):
        return kernel_id in self._orphans

    def is_declared_dead(self, kernel_id):
        return any(kernel_id in kernels for kernels, _ in self._declared_dead.values())

    def sizes(self):
        """Its tables' sizes (node metrics, the soak)."""
        return {
            "orphaned_kernels": len(self._orphans),
            "declared_dead_kernels": sum(len(kernels) for kernels, _ in self._declared_dead.values()),
        }

    def holder_left(self, holder):
        """A client's session ended (C{holder}, its id): each kernel it held waits C{grace_s} for a resume."""
        for kernel_id, spawner_id in self._placement.kernels_of(holder):
            self.orphan(kernel_id, spawner_id)

    def orphan(self, kernel_id, spawner_id):
        """Keep C{kernel_id} (whose session is gone) for the grace period, then shut it down."""
        if kernel_id in self._orphans:
            return
        self._orphans[kernel_id] = self._clock.callLater(self._grace_s, self._expire, kernel_id, spawner_id)

    def _expire(self, kernel_id, spawner_id):
        del self._orphans[kernel_id]
        self._placement.forget_kernel(kernel_id)
        self._shutdown(
            spawner_id,
            kernel_id,
            "its owner's session ended and it was not resumed within {:.0f} s".format(self._grace_s),
        )

    def resumed(self, kernel_id, holder):
        """C{holder} (a session) showed the kernel's token: it is theirs, and no longer waits to be shut down."""
        self._cancel(kernel_id)
        self._placement.move_kernel(kernel_id, holder)

    def ended(self, kernel_id):
        """The kernel is gone (its spawner said so, or it is not among a returning worker's kernels)."""
        self._cancel(kernel_id)
        self._placement.forget_kernel(kernel_id)

    def worker_left(self, spawner_id, kernel_ids):
        """A worker's session ended: its kernels are declared dead, and their subscribers told."""
        kernels, timer = self._declared_dead.pop(spawner_id, (set(), None))
        if timer is not None and timer.active():
            timer.cancel()
        for kernel_id in kernel_ids:
            self._cancel(kernel_id)
            kernels.add(kernel_id)
            self._announce_lost(kernel_id, "its worker (spawner {}) went away".format(spawner_id))
        if kernels:
            timer = self._clock.callLater(DECLARED_DEAD_KEPT_S, self._declared_dead.pop, spawner_id, None)
            self._declared_dead[spawner_id] = (kernels, timer)

    def worker_returned(self, spawner_id, kernel_ids):
        """C{spawner_id} is back, running C{kernel_ids}: those declared dead are shut down (returned, a set), and
        the rest of its declared dead are forgotten (they died with it)."""
        kernels, timer = self._declared_dead.pop(spawner_id, (set(), None))
        if timer is not None and timer.active():
            timer.cancel()
        ended = kernels.intersection(kernel_ids)
        for kernel_id in ended:
            self._shutdown(spawner_id, kernel_id, "it was declared dead when its worker went away")
        return ended

    def _cancel(self, kernel_id):
        timer = self._orphans.pop(kernel_id, None)
        if timer is not None and timer.active():
            timer.cancel()
