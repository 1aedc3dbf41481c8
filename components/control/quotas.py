"""Rate limits keyed by a session or a client address (the quotas themselves are L{components.common.config.RoleQuota}).

A bucket that has been left alone long enough to be full again is the same
as no bucket: L{RateLimiter} forgets it, so its table follows the keys that
are active now, not every address ever seen (one bucket per address used to
stay for the life of the session router).  Forgetting a key when its
sessions leave would not do for addresses: a client could leave and come
back to a fresh burst.  The clock is passed in (anything with ``seconds()``,
e.g. the reactor or a ``twisted.internet.task.Clock`` in tests).
"""

from components.common.token_bucket import TokenBucket


class RateLimiter:
    """A L{TokenBucket} per key: C{allow(key)} says whether one more event fits now.

    C{per_minute} events a minute, in bursts of a quarter of that.  Buckets idle for the time they take to
    refill are swept at most once per that time, and whenever L{size} is asked; so an idle key is gone within
    two refill times.
    """

    def __init__(self, clock, per_minute):
        self._clock = clock
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._burst = max(1.0, per_minute / 4.0)
        self.refill_s = self._burst / self._rate if self._rate > 0 else float("inf")
        self._buckets = {}  # key -> [bucket, time of its last use]
        self._next_sweep = clock.seconds() + self.refill_s

    def allow(self, key):
        now = self._clock.seconds()
        if now >= self._next_sweep:
            self._sweep(now)
        entry = self._buckets.get(key)
        if entry is None:
            entry = self._buckets[key] = [TokenBucket(self._clock, self._rate, self._burst), now]
        entry[1] = now
        return entry[0].take()

    def forget(self, key):
        self._buckets.pop(key, None)

    def size(self):
        """How many keys have a bucket that is not full (the idle ones are swept first)."""
        self._sweep(self._clock.seconds())
        return len(self._buckets)

    def _sweep(self, now):
        self._next_sweep = now + self.refill_s
        idle = [key for key, (_, last) in self._buckets.items() if now - last >= self.refill_s]
        for key in idle:
            del self._buckets[key]
