"""A ZMQ socket as a Twisted read descriptor.

A ZMQ socket's ``FD`` is edge-triggered: it signals once when the socket's
state changes, not while messages wait.  So every wake-up drains what is
ready, and every send is followed by a re-check of ``EVENTS`` (a send can
consume the edge that announced incoming messages).  Draining is capped per
turn of the reactor so that one kernel's output flood cannot starve the
others; the rest is picked up on the next turn.
"""

import zmq
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer


@implementer(IReadDescriptor)
class ZmqReader:
    """Delivers each multipart message of C{socket} to C{on_message(frames)}."""

    max_per_turn = 256

    def __init__(self, reactor, socket, on_message, name="zmq"):
        self._reactor = reactor
        self.socket = socket
        self._on_message = on_message
        self._name = name
        self._scheduled = None
        self._fd = socket.getsockopt(zmq.FD)
        reactor.addReader(self)

    def fileno(self):
        return -1 if self.socket.closed else self._fd

    def logPrefix(self):
        return self._name

    def doRead(self):
        self._drain()

    def read_pending(self):
        """Handle now whatever this socket has already received (in order, as L{doRead} would)."""
        self._drain()

    def connectionLost(self, reason):
        pass

    def send_multipart(self, frames, copy=True, **kwargs):
        """Queue C{frames} for sending, then make sure nothing incoming sits unread.

        Named like ``zmq.Socket.send_multipart`` so that
        ``jupyter_client.session.Session.send`` can write to it directly.
        """
        self.socket.send_multipart(frames, copy=copy)
        self._schedule()

    def _schedule(self):
        if self._scheduled is None and not self.socket.closed:
            self._scheduled = self._reactor.callLater(0, self._drain)

    def _drain(self):
        if self._scheduled is not None:
            if self._scheduled.active():
                self._scheduled.cancel()
            self._scheduled = None
        socket = self.socket
        for _ in range(self.max_per_turn):
            if socket.closed or not socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                return
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_message(frames)
        self._schedule()

    def close(self):
        """Stop watching and close the socket (linger 0: a dead kernel reads nothing)."""
        if self._scheduled is not None and self._scheduled.active():
            self._scheduled.cancel()
        self._scheduled = None
        self._reactor.removeReader(self)
        if not self.socket.closed:
            self.socket.close(linger=0)
