"""The router's one bound on what it holds for a client that does not read, on Twisted's public producer API.

The router writes every message for a client (results, the progressive
chunks of ``files.get``, a kernel's iopub on the Jupyter face) to that
client's connection at once, and Twisted keeps in memory what the socket
cannot take yet.  A client that stops reading let that grow without end
(500 MB of downloads took the router from 592 MB to 1,055 MB, never given
back; Jupyter Server leaves such sockets behind on the face).

A L{SendBufferGuard} is the streaming producer registered on one client's
transport (``registerProducer(guard, True)``).  Twisted's C{FileDescriptor}
calls its C{pauseProducing} at every write while more than its own
C{bufferSize} (64 KiB) waits unsent, and its C{resumeProducing} once all of it
is sent.  The guard counts what the connection's protocol wrote since the
buffer filled and did not drain (C{written}: for a WebSocket, autobahn's own
count of bytes written, L{websocket_bytes_written}): past C{limit}, the client
has not taken what was written before all of that, it stopped reading; the
guard tells C{on_drop(backlog)} and aborts the connection (on ``/ws``
Crossbar then detaches the session as for any lost client; on the face the
kernel serves its other connections).  The producer it replaces (the HTTP
channel that upgraded to the WebSocket, which stops reading from a client it
cannot write to) is still told everything, so that behaviour stays.
"""

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


def websocket_bytes_written(protocol):
    """C{written} for an autobahn WebSocket C{protocol}: the bytes it wrote so far (its C{trafficStats}).

    Raises C{AttributeError} for a protocol that keeps no such count (not a WebSocket).
    """
    stats = protocol.trafficStats
    return lambda: stats.outgoingOctetsWireLevel


@implementer(IPushProducer)
class SendBufferGuard:
    """Aborts C{transport} once more than C{limit} bytes were written to it since its send buffer last filled
    without draining; C{on_drop(backlog)} is told first.

    @param written: returns the bytes written to C{transport} so far (any counter that only grows).
    """

    def __init__(self, transport, written, limit, on_drop, previous=None):
        self._transport = transport
        self._written = written
        self._limit = limit
        self._on_drop = on_drop
        self._previous = previous
        #: what C{written} said when the send buffer filled (None while it drains as fast as it is written)
        self._filled_at = None
        self.dropped = False

    @classmethod
    def install(cls, transport, written, limit, on_drop):
        """Guard C{transport} (a client's Twisted transport), keeping its current producer informed.

        Raises C{RuntimeError} or C{AttributeError} when the transport takes no producer.
        """
        previous = getattr(transport, "producer", None)
        if previous is not None:
            transport.unregisterProducer()
        guard = cls(transport, written, limit, on_drop, previous)
        transport.registerProducer(guard, True)
        return guard

    def backlog(self):
        """Bytes written since the send buffer filled and did not drain (0 while the client keeps up)."""
        return 0 if self._filled_at is None else self._written() - self._filled_at

    def pauseProducing(self):
        # Called inside transport.write, before the protocol counts that write: it counts from there on.
        if self._filled_at is None:
            self._filled_at = self._written()
        backlog = self.backlog()
        if backlog > self._limit and not self.dropped:
            self.dropped = True
            self._on_drop(backlog)
            self._transport.abortConnection()
            return
        if self._previous is not None:
            self._previous.pauseProducing()

    def resumeProducing(self):
        self._filled_at = None  # everything written was sent: the client reads
        if self._previous is not None:
            self._previous.resumeProducing()

    def stopProducing(self):
        if self._previous is not None:
            self._previous.stopProducing()
