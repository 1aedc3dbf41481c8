"""A token bucket: C{rate} events per second, in bursts of at most C{burst}.

Used for one-shot quotas per session (L{components.control.quotas}) and for a
kernel's iopub messages per second (L{components.worker.output_limiter}).
Time comes from the clock passed in.
"""


class TokenBucket:
    def __init__(self, clock, rate, burst):
        self._clock = clock
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = self._burst
        self._at = clock.seconds()

    def take(self):
        """Whether one more event fits now (and if so, count it)."""
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
