"""L{components.router.send_buffers}: the guard on Twisted's own FileDescriptor, whose socket takes what the test says.

The transport is Twisted's real C{FileDescriptor} (its buffering and its
calls to a streaming producer are what the guard relies on); only its socket
is replaced by a peer that reads when the test lets it.
"""

import pytest
from twisted.internet.abstract import FileDescriptor
from twisted.internet.testing import MemoryReactor

from components.router.send_buffers import SendBufferGuard, websocket_bytes_written

pytestmark = pytest.mark.unit

CHUNK = 16 * 1024
LIMIT = 256 * 1024


class Connection(FileDescriptor):
    """A client connection: Twisted's FileDescriptor over a peer that reads C{room} bytes when written to."""

    def __init__(self):
        super().__init__(reactor=MemoryReactor())
        self.connected = 1
        self.room = 0
        self.aborted = False
        #: what the protocol wrote so far (autobahn counts a write after transport.write returns)
        self.written = 0

    def writeSomeData(self, data):
        n = min(len(data), self.room)
        self.room -= n
        return n

    def abortConnection(self):
        self.aborted = True

    def send(self, data):
        self.write(data)
        self.written += len(data)


class Producer:
    def __init__(self):
        self.told = []

    def pauseProducing(self):
        self.told.append("pause")

    def resumeProducing(self):
        self.told.append("resume")

    def stopProducing(self):
        self.told.append("stop")


def guarded(previous=None):
    connection, drops = Connection(), []
    if previous is not None:
        connection.registerProducer(previous, True)
    guard = SendBufferGuard.install(connection, lambda: connection.written, LIMIT, drops.append)
    return connection, guard, drops


def test_a_client_that_reads_nothing_is_dropped_once_past_the_limit():
    connection, guard, drops = guarded()
    sent = 0
    while not connection.aborted and sent < 10 * LIMIT:
        connection.send(b"x" * CHUNK)
        sent += CHUNK
    assert connection.aborted and len(drops) == 1 and drops[0] > LIMIT
    assert sent <= LIMIT + connection.bufferSize + 2 * CHUNK  # held no more than the limit past Twisted's buffer
    connection.send(b"x" * CHUNK)
    assert len(drops) == 1


def test_a_client_that_keeps_up_is_never_dropped_however_much_it_is_sent():
    connection, guard, drops = guarded()
    for _ in range(20 * LIMIT // CHUNK):
        connection.send(b"x" * CHUNK)
        if guard.backlog():
            connection.room = 1 << 30
            connection.doWrite()  # it reads all: Twisted resumes its producer
            assert guard.backlog() == 0
    assert not connection.aborted and drops == []


def test_a_slow_reader_that_catches_up_starts_afresh():
    connection, guard, drops = guarded()
    for _ in range(LIMIT // CHUNK):  # just under the limit written while the buffer is full
        connection.send(b"x" * CHUNK)
    assert 0 < guard.backlog() <= LIMIT
    connection.room = 1 << 30
    connection.doWrite()
    for _ in range(LIMIT // CHUNK):
        connection.send(b"x" * CHUNK)
    assert not connection.aborted and drops == []


def test_the_producer_it_replaces_is_still_told_everything():
    http_channel = Producer()
    connection, guard, drops = guarded(http_channel)
    assert connection.producer is guard
    connection.send(b"x" * (connection.bufferSize + 1))
    connection.room = 1 << 30
    connection.doWrite()
    guard.stopProducing()
    assert http_channel.told == ["pause", "resume", "stop"]


def test_only_a_websocket_has_a_count_of_bytes_written():
    with pytest.raises(AttributeError):
        websocket_bytes_written(object())
