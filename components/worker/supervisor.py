"""Keeping a child process of the spawner alive: replaced with backoff when it dies.

The fork master and the one-shot template are processes of their own; the
OOM killer or an operator's ``kill -9`` may end either at any time.  A
L{Supervisor} starts one such part, and when it ends without being asked to,
starts it again after a L{Backoff} delay (0.5 s, doubling to 30 s; back to
0.5 s once a part has been up for a while), so a part that cannot start does
not spin.  It logs one line per change of state (died, back, a restart that
failed), never one per request refused meanwhile, and counts the restarts.
"""

from twisted.internet import defer
from twisted.logger import Logger


class Backoff:
    """Delays between restarts: C{initial}, doubling to C{maximum}; L{reset} after a good run."""

    def __init__(self, initial=0.5, maximum=30.0, factor=2.0):
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._next = initial

    def next_delay(self):
        """The delay before the next attempt (each call doubles the one after)."""
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return delay

    def reset(self):
        self._next = self.initial


class Supervisor:
    """One supervised part: started by C{start()}, replaced when it ends by itself.

    @param start: returns a new, started process protocol with C{.ready} (fires with its first event)
        and C{.ended} (fires with the reason it ended) Deferreds, C{.running} and C{.stop()}.
    @param on_up: called with C{(protocol, event)} each time an instance is ready.
    @param on_down: called with C{(protocol, reason)} when a ready instance died (not when stopped).
    @param restarted: called once per restart (a metric's C{inc}).
    @param stable_s: an instance up this long has its backoff reset when it dies.
    """

    log = Logger()

    def __init__(self, clock, name, start, on_up=None, on_down=None, restarted=None, backoff=None, stable_s=60.0):
        self._clock = clock
        self.name = name
        self._start = start
        self._on_up = on_up or (lambda proto, event: None)
        self._on_down = on_down or (lambda proto, reason: None)
        self._restarted = restarted or (lambda: None)
        self.backoff = backoff or Backoff()
        self._stable_s = stable_s
        #: the current instance (None between a death and its replacement's start)
        self.current = None
        self.restarts = 0
        self._up_since = None
        self._down_since = None
        self._pending = None
        self._stopping = False
        self._ever_up = False
        self._failed_starts = 0
        self._logged_delay = 0.0
        self._waiters = []

    @property
    def up(self):
        """True while an instance is ready and running."""
        return self._up_since is not None and self.current is not None and self.current.running

    def state(self):
        return {"up": self.up, "restarts": self.restarts}

    def start(self):
        """Start the first instance; the Deferred fires with its ready event (or fails: nothing is restarted)."""
        proto = self._launch(first=True)
        return proto.ready

    def when_up(self, timeout):
        """A Deferred that fires when an instance is up (at once if one is), or with None after C{timeout} s."""
        if self.up:
            return defer.succeed(self.current)
        d = defer.Deferred()
        call = self._clock.callLater(timeout, self._give_up, d)
        self._waiters.append((d, call))
        return d

    def _give_up(self, d):
        self._waiters = [(w, c) for w, c in self._waiters if w is not d]
        d.callback(None)

    def _launch(self, first=False):
        self._pending = None
        proto = self.current = self._start()
        # The first start's failure is its caller's; a replacement's is logged when it ends.
        proto.ready.addCallbacks(lambda event: self._ready(proto, event), lambda failure: failure if first else None)
        proto.ended.addBoth(lambda reason: self._ended(proto, reason))
        return proto

    def _ready(self, proto, event):
        if proto is not self.current:
            return event
        self._up_since = self._clock.seconds()
        self._ever_up = True
        self._failed_starts, self._logged_delay = 0, 0.0
        if self._down_since is not None:
            self.log.info(
                "the {name} is back (pid {pid}) {s:.1f} s after it died; restarts so far: {n}",
                name=self.name,
                pid=event.get("pid") if isinstance(event, dict) else None,
                s=self._up_since - self._down_since,
                n=self.restarts,
            )
            self._down_since = None
        self._on_up(proto, event)
        waiters, self._waiters = self._waiters, []
        for d, call in waiters:
            call.cancel()
            d.callback(proto)
        return event

    def _ended(self, proto, reason):
        if proto is not self.current or self._stopping:
            return None
        if not self._ever_up:  # the first start failed: its caller has the error (a spawner that cannot start)
            self.current = None
            return None
        was_up = self._up_since is not None
        now = self._clock.seconds()
        if was_up and now - self._up_since >= self._stable_s:
            self.backoff.reset()
        self._up_since = None
        delay = self.backoff.next_delay()
        why = getattr(reason, "value", reason)
        if was_up:
            self._down_since = now
            self.log.warn(
                "the {name} died ({why}); starting a new one in {delay:.1f} s", name=self.name, why=why, delay=delay
            )
            self._on_down(proto, reason)
        else:
            self._failed_starts += 1
            if self._down_since is None:
                self._down_since = now
            # One line when replacements begin to fail and one when the delay stops growing: not one per try.
            if self._failed_starts == 1 or (delay == self.backoff.maximum and self._logged_delay < delay):
                self._logged_delay = delay
                self.log.warn(
                    "the {name} failed to start ({why}); trying again in {delay:.1f} s{more}",
                    name=self.name,
                    why=why,
                    delay=delay,
                    more=", and every {:.0f} s while it fails".format(delay) if delay == self.backoff.maximum else "",
                )
        self._pending = self._clock.callLater(delay, self._restart)
        return None

    def _restart(self):
        self.restarts += 1
        self._restarted()
        try:
            self._launch()
        except Exception as exc:  # spawnProcess itself failed (EAGAIN, ENOMEM): try again later
            self.current = None
            self._ended(None, exc)

    def stop(self):
        """Stop supervising and stop the current instance; fires when it has ended."""
        self._stopping = True
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        waiters, self._waiters = self._waiters, []
        for d, call in waiters:
            call.cancel()
            d.callback(None)
        if self.current is None:
            return defer.succeed(None)
        return defer.maybeDeferred(self.current.stop)
