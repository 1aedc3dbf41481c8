"""The keeper's view of one spawner: ready when it says so, ended when it ends, killed if it will not stop."""

import pytest
from twisted.internet import error
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from components.worker.spawner_keeper import READY_FD, STOP_GRACE_S, SpawnerKeeper, SpawnerProcess

pytestmark = pytest.mark.unit


class Transport:
    pid = 4242

    def __init__(self):
        self.signals = []

    def closeStdin(self):
        pass

    def signalProcess(self, name):
        self.signals.append(name)


def started(clock):
    proto = SpawnerProcess(clock)
    proto.makeConnection(Transport())
    return proto


def test_ready_once_it_says_so_with_its_uids():
    proto = started(Clock())
    proto.childDataReceived(1, b"ready 5\n")  # its log, not the ready pipe
    assert not proto.ready.called
    proto.childDataReceived(READY_FD, b"rea")
    assert not proto.ready.called
    proto.childDataReceived(READY_FD, b"dy 268592\n")
    assert proto.ready.called and proto.uid_first == 268592


def test_a_spawner_that_dies_before_ready_fails_its_start():
    proto = started(Clock())
    failures = []
    proto.ready.addErrback(failures.append)
    proto.processEnded(Failure(error.ProcessTerminated(exitCode=1)))
    assert failures and not proto.running
    assert isinstance(proto.ended.result, error.ProcessTerminated)


def test_stop_asks_then_kills_after_the_grace():
    clock = Clock()
    proto = started(clock)
    proto.childDataReceived(READY_FD, b"ready -\n")
    assert proto.uid_first is None
    stopped = proto.stop()
    assert proto.transport.signals == ["TERM"]
    clock.advance(STOP_GRACE_S)
    assert proto.transport.signals == ["TERM", "KILL"]
    assert not stopped.called
    proto.processEnded(Failure(error.ProcessTerminated(signal=9)))
    assert stopped.called


def test_each_incarnation_is_told_how_many_came_before():
    keeper = SpawnerKeeper(Clock(), ["--id", "local"], {"pool_size": 2}, executable="/usr/bin/python3")
    command = keeper.command()
    assert command[:3] == ["/usr/bin/python3", "-m", "components.kernel_spawner"]
    assert command[command.index("--config") + 1] == '{"pool_size": 2}'
    assert command[command.index("--restarts") + 1] == "0"
    assert command[command.index("--ready-fd") + 1] == str(READY_FD)
    keeper.supervisor.restarts = 3
    assert keeper.command()[keeper.command().index("--restarts") + 1] == "3"
