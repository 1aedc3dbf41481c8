"""Per-role quotas and the per-session rate limit on one-shot executions.

The clock is passed in (anything with ``seconds()``, e.g. the reactor or a
``twisted.internet.task.Clock`` in tests).
"""

import dataclasses

from components.common.token_bucket import TokenBucket


@dataclasses.dataclass(frozen=True)
class RoleQuota:
    #: kernels one session of this role may own at once
    max_kernels_per_session: int = 4
    #: one-shot ``cell.execute`` calls per session per minute (bursts of a quarter of it are fine)
    max_oneshots_per_minute: int = 900
    #: largest code a session of this role may send to ``cell.execute``
    max_code_bytes: int = 64 * 1024


DEFAULT_ROLES = {
    "browser": RoleQuota(),
    "service": RoleQuota(max_kernels_per_session=32, max_oneshots_per_minute=6000, max_code_bytes=256 * 1024),
}


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
