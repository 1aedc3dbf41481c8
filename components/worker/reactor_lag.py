"""How late the spawner's reactor runs a timer: the figure that says whether anything blocks it.

L{ReactorLag} asks the clock to call it every C{interval} seconds and records,
each time, how much later than asked it ran.  Anything holding the reactor
(a walk, a big file write, a launch) shows up as lag; a healthy reactor stays
within a few milliseconds.  The clock is passed in (a C{task.Clock} in tests).
"""

from twisted.internet import task

#: how often the probe fires (seconds): the finest block it can see
INTERVAL_S = 0.05
#: the max gauge covers the last one to two windows (seconds)
WINDOW_S = 60.0


class ReactorLag:
    """A C{LoopingCall} measuring its own lateness into C{observe(lag)}; keeps the max of the recent windows.

    @param observe: called with each lag in seconds (e.g. a histogram's C{observe}).
    """

    def __init__(self, clock, observe=None, interval=INTERVAL_S, window=WINDOW_S):
        self._clock = clock
        self._observe = observe
        self.interval = interval
        self._window = window
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = clock
        self._last = None
        self._window_start = None
        self._max_now = 0.0  # the current window's max
        self._max_before = 0.0  # the previous window's

    def start(self):
        self._last = self._window_start = self._clock.seconds()
        self._loop.start(self.interval, now=False)

    def stop(self):
        if self._loop.running:
            self._loop.stop()

    def _tick(self):
        now = self._clock.seconds()
        lag = max(0.0, now - self._last - self.interval)
        self._last = now
        if now - self._window_start >= self._window:
            self._max_before, self._max_now = self._max_now, 0.0
            self._window_start = now
        self._max_now = max(self._max_now, lag)
        if self._observe is not None:
            self._observe(lag)

    @property
    def recent_max(self):
        """The largest lag seen in the current and the previous window (seconds)."""
        return max(self._max_now, self._max_before)
