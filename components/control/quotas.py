"""The per-session rate limit on one-shot executions (the quotas themselves are L{components.common.config.RoleQuota}).

The clock is passed in (anything with ``seconds()``, e.g. the reactor or a
``twisted.internet.task.Clock`` in tests).
"""

from components.common.token_bucket import TokenBucket


class RateLimiter:
    """A L{TokenBucket} per key (a session): C{allow(key)} says whether one more event fits now."""

    def __init__(self, clock, per_minute):
        self._clock = clock
        self._rate = per_minute / 60.0
        self._burst = max(1.0, per_minute / 4.0)
        self._buckets = {}

    def allow(self, key):
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._clock, self._rate, self._burst)
        return bucket.take()

    def forget(self, key):
        self._buckets.pop(key, None)
