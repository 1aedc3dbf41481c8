"""What ends a kernel that does not end itself: heartbeat silence, idle time, lifespan, processes, disk.

A L{Watchdog} keeps one kernel's clocks (from the clock passed in) and, on
each heartbeat tick, the checks a kernel cannot enforce on itself: the
number of tasks in its memory cgroup (a fork bomb) and, every fifth tick,
its working directory's disk use where no file system of its own bounds it
(L{components.worker.kernel_disk}: a walk, in a thread).  When one fires it
calls C{on_expired} with a reason a person can read; the L{Kernel} then dies
with that reason.
"""

from twisted.logger import Logger

from components.child.sandbox import cgroup_task_count
from components.worker.death_causes import DeathReason

#: disk use is checked on every this many heartbeat ticks (without a file system of its own, it walks the directory)
DISK_CHECK_TICKS = 5


class Watchdog:
    """@param busy: whether the kernel has calls in flight (an idle kernel is one without).
    @param ping: sends one heartbeat ping.
    @param heartbeat_while_busy: whether the kernel answers heartbeats while it runs code (ipykernel does, from a
        thread of its own); if not (IRkernel), silence counts only while it is idle, and a long execution is
        bounded by its timeout instead.
    """

    log = Logger()

    def __init__(self, clock, config, on_expired, busy, ping, heartbeat_while_busy=True):
        self._clock = clock
        self._config = config
        self._on_expired = on_expired
        self._busy = busy
        self._ping = ping
        self._heartbeat_while_busy = heartbeat_while_busy
        self._timers = {}
        self._last_pong = None
        self._ticks = 0
        self.cgroup = None
        #: checks the disk: returns a Deferred firing with a L{DeathReason} or None (L{KernelDisks.check})
        self.disk_check = None
        self._disk_checking = False

    # -- clocks --

    def _start(self, name, seconds, fn):
        self._cancel(name)
        self._timers[name] = self._clock.callLater(seconds, self._fire, name, fn)

    def _fire(self, name, fn):
        self._timers.pop(name, None)
        fn()

    def _cancel(self, name):
        timer = self._timers.pop(name, None)
        if timer is not None and timer.active():
            timer.cancel()

    def stop(self):
        for name in list(self._timers):
            self._cancel(name)

    # -- heartbeat --

    def watch_heartbeat(self):
        """The process is ready: ping it every interval, and check its limits."""
        self._last_pong = self._clock.seconds()
        self._start("heartbeat", self._config.heartbeat_interval_s, self._beat)

    def stop_heartbeat(self):
        self._cancel("heartbeat")

    def pong(self):
        self._last_pong = self._clock.seconds()

    def _beat(self):
        if not self._heartbeat_while_busy and self._busy():
            self._last_pong = self._clock.seconds()  # its silence while busy says nothing
        silent = self._clock.seconds() - self._last_pong
        if silent > self._config.heartbeat_timeout_s:
            self._on_expired(
                DeathReason("heartbeat", "the kernel stopped answering its heartbeat for {:.0f} s".format(silent))
            )
            return
        self._ticks += 1
        reason = self._process_limit()
        if reason:
            self._on_expired(reason)
            return
        if self._ticks % DISK_CHECK_TICKS == 0:
            self._check_disk()
        self._ping()
        self._start("heartbeat", self._config.heartbeat_interval_s, self._beat)

    # -- ownership clocks --

    def assigned(self):
        """Handed to an owner: the lifespan starts, and the idle clock."""
        lifespan = self._config.max_lifespan_s
        self._start(
            "lifespan",
            lifespan,
            lambda: self._on_expired(
                DeathReason("lifespan", "the kernel reached its maximum lifespan of {:.0f} s".format(lifespan))
            ),
        )
        self.touch()

    def touch(self):
        """Activity: the idle clock starts again."""
        self._start("idle", self._config.idle_timeout_s, self._idle)

    def _idle(self):
        if self._busy():
            self.touch()
        else:
            self._on_expired(
                DeathReason("idle_timeout", "the kernel was idle for {:.0f} s".format(self._config.idle_timeout_s))
            )

    # -- limits the kernel cannot enforce on itself --

    def _process_limit(self):
        limit = self._config.limit_processes
        if self.cgroup and limit and cgroup_task_count(self.cgroup) >= limit:
            return DeathReason(
                "process_limit", "the kernel reached its limit of {} processes and threads (a fork bomb?)".format(limit)
            )
        return None

    def _check_disk(self):
        if self.disk_check is None or self._disk_checking:
            return
        self._disk_checking = True
        d = self.disk_check()
        d.addCallbacks(self._disk_checked, self._disk_check_failed)

    def _disk_checked(self, reason):
        self._disk_checking = False
        if reason:
            self._on_expired(reason)

    def _disk_check_failed(self, failure):
        self._disk_checking = False
        self.log.failure("could not measure a kernel's disk use", failure)
