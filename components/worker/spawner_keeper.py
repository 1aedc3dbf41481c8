"""Keeping the spawner process itself alive: a small parent that starts it again when it dies.

Crossbar ends the whole node when one of its guest workers exits, so a
spawner killed by the OOM killer or ``kill -9`` used to take every user of the
node down with it.  With ``--keep-alive`` (as ``.crossbar/config.json`` runs
it) the guest is this keeper: it runs no reactor work of the spawner's, holds
no kernels and no router session, so there is little in it to die.  It starts
the spawner as its child and, when that child ends without being asked to,
starts a new one through the same L{Supervisor} (and backoff) that keeps the
fork master and the one-shot template.

What the death of the old spawner means is handled where it is seen: its
fork master, template and kernels die with it (parent-death signals); the
session router sees its WAMP session leave and reports its kernels dead to
their owners; the new spawner claims the same uid range and reaps what the
old one left in its cgroups (L{uid_range.claim}).

A child is "up" once it says so on the pipe at fd 3 (after its fork master is
ready), so a spawner that cannot start at all (a config error) ends the keeper
with that child's error instead of being retried for ever.
"""

import json
import os
import sys

from twisted.internet import defer, protocol
from twisted.logger import Logger

from components.worker import uid_range
from components.worker.sandbox_policy import reap_stale_cgroups
from components.worker.supervisor import Supervisor

#: the fd on which a spawner tells its keeper it is ready
READY_FD = 3
#: how long a spawner asked to stop may take before it is killed
STOP_GRACE_S = 30.0


class SpawnerProcess(protocol.ProcessProtocol):
    """One incarnation of the spawner, as its L{Supervisor} wants it: C{ready}, C{ended}, C{running}, C{stop}."""

    def __init__(self, clock):
        self._clock = clock
        self.ready = defer.Deferred()
        self.ended = defer.Deferred()
        self.running = True
        self._said = b""
        self._stop_waiters = []
        #: the first of the sandbox uids it runs kernels as (None when it switches no uids)
        self.uid_first = None

    def connectionMade(self):
        self.transport.closeStdin()

    def childDataReceived(self, fd, data):
        if fd != READY_FD or self.ready.called:
            return
        self._said = (self._said + data)[-64:]
        if b"\n" in self._said:
            words = self._said.split(b"\n")[0].split()  # "ready <first uid>" or "ready -"
            if len(words) == 2 and words[1].isdigit():
                self.uid_first = int(words[1])
            self.ready.callback({"pid": self.transport.pid})

    def processEnded(self, reason):
        self.running = False
        if not self.ready.called:
            self.ready.errback(reason)
        self.ended.callback(reason.value)
        waiters, self._stop_waiters = self._stop_waiters, []
        for d in waiters:
            d.callback(None)

    def stop(self):
        """SIGTERM (the spawner stops its kernels and cleans up), SIGKILL after L{STOP_GRACE_S}; fires once ended."""
        if not self.running:
            return defer.succeed(None)
        d = defer.Deferred()
        self._stop_waiters.append(d)
        self._signal("TERM")
        kill = self._clock.callLater(STOP_GRACE_S, self._signal, "KILL")
        d.addBoth(lambda result: (kill.active() and kill.cancel(), result)[1])
        return d

    def _signal(self, name):
        try:
            self.transport.signalProcess(name)
        except Exception:  # it ended meanwhile: processEnded will say so
            pass


class SpawnerKeeper:
    """Starts the spawner (C{python -m components.kernel_spawner ARGS}) and replaces it when it dies.

    @param reactor: spawns the processes and times the backoff.
    @param arguments: the spawner's own command-line arguments (the keeper adds its settings, restarts and
        ready fd).
    @param settings: the spawner's settings (a JSON object), read once by the keeper.
    """

    log = Logger()

    def __init__(self, reactor, arguments, settings, executable=None, env=None):
        self._reactor = reactor
        self._arguments = list(arguments)
        self._settings = json.dumps(settings)
        self._executable = executable or sys.executable
        self._env = env
        self.supervisor = Supervisor(reactor, "spawner", self._start_one, on_down=self._spawner_died)

    def command(self):
        """The command line of the next incarnation."""
        return [
            self._executable,
            "-m",
            "components.kernel_spawner",
            *self._arguments,
            "--config",
            self._settings,
            "--restarts",
            str(self.supervisor.restarts),
            "--ready-fd",
            str(READY_FD),
        ]

    def _start_one(self):
        proto = SpawnerProcess(self._reactor)
        command = self.command()
        self._reactor.spawnProcess(
            proto,
            command[0],
            command,
            env=self._env if self._env is not None else os.environ,
            childFDs={0: "w", 1: 1, 2: 2, READY_FD: "r"},
        )
        return proto

    def _spawner_died(self, proto, reason):
        """End what the dead spawner left in its cgroups (its one-shots' daemons: no parent-death signal reaches
        them) now, whichever uids the next spawner gets."""
        if proto.uid_first is not None:
            try:
                reaped = uid_range.reap_if_free(proto.uid_first, reap_stale_cgroups)
            except OSError as exc:
                self.log.warn("could not end what the dead spawner left: {exc}", exc=exc)
            else:
                if reaped:
                    self.log.info(
                        "ended what the dead spawner left in its cgroups (uids from {first})", first=proto.uid_first
                    )

    def start(self):
        """Start the first spawner; fires once it is ready, fails if it could not start."""
        return self.supervisor.start()

    def stop(self):
        """Stop the spawner (it stops its kernels); fires once it has ended."""
        return self.supervisor.stop()
