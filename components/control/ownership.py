"""What happens to a kernel whose owner or whose worker went away: orphans, resumes, the declared dead.

A kernel the control plane knows is, at any moment, in one of these states::

    owned --owner's session ends--> orphaned --resume_grace_s passes--> shut down, forgotten
      ^                                |
      +--- cell.kernel.resume ---------+

    owned or orphaned --its worker's session ends--> declared dead
    declared dead --the worker comes back still running it--> shut down (once)

Plain code on a clock: no WAMP.  The placement (L{Placement}) keeps who owns
what; this class keeps the timers and the declared dead, and acts through
the two callables it is given.
"""


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
        self._declared_dead = set()

    def is_orphaned(self, kernel_id):
        return kernel_id in self._orphans

    def is_declared_dead(self, kernel_id):
        return kernel_id in self._declared_dead

    def owner_left(self, session_id):
        """A client's session ended: each of its kernels waits C{grace_s} for a resume."""
        for kernel_id, spawner_id in self._placement.kernels_of(session_id):
            self.orphan(kernel_id, spawner_id)

    def orphan(self, kernel_id, spawner_id):
        """Keep C{kernel_id} (whose owner is gone) for the grace period, then shut it down."""
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

    def resumed(self, kernel_id, owner):
        """C{owner} showed the kernel's token: it is theirs, and no longer waits to be shut down."""
        self._cancel(kernel_id)
        self._placement.move_kernel(kernel_id, owner)

    def ended(self, kernel_id):
        """The kernel is gone (its spawner said so, or it is not among a returning worker's kernels)."""
        self._cancel(kernel_id)
        self._placement.forget_kernel(kernel_id)

    def worker_left(self, spawner_id, kernel_ids):
        """A worker's session ended: its kernels are declared dead, and their subscribers told."""
        for kernel_id in kernel_ids:
            self._cancel(kernel_id)
            self._declared_dead.add(kernel_id)
            self._announce_lost(kernel_id, "its worker (spawner {}) went away".format(spawner_id))

    def worker_returned(self, spawner_id, kernel_id):
        """A returning worker still runs C{kernel_id}: True if it was declared dead (and is now shut down)."""
        if kernel_id not in self._declared_dead:
            return False
        self._declared_dead.discard(kernel_id)
        self._shutdown(spawner_id, kernel_id, "it was declared dead when its worker went away")
        return True

    def _cancel(self, kernel_id):
        timer = self._orphans.pop(kernel_id, None)
        if timer is not None and timer.active():
            timer.cancel()
