"""Per-role quotas and the per-session rate limit on one-shot executions.

The clock is passed in (anything with ``seconds()``, e.g. the reactor or a
``twisted.internet.task.Clock`` in tests).
"""

import dataclasses


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
    """A token bucket per key: C{allow(key)} says whether one more event fits now."""

    def __init__(self, clock, per_minute):
        self._clock = clock
        self._rate = per_minute / 60.0
        self._burst = max(1.0, per_minute / 4.0)
        self._buckets = {}

    def allow(self, key):
        now = self._clock.seconds()
        tokens, then = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

    def forget(self, key):
        self._buckets.pop(key, None)
