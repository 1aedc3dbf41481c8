"""A bound on what the router holds for one client that does not read: its connection's send buffer.

The router writes every message for a client (results, the progressive
chunks of ``files.get``, events) to that client's connection at once, and
Twisted keeps in memory what the socket cannot take yet.  A spawner sends a
download only as fast as its own connection to the router drains, which the
router reads at once, so a client that stops reading its own progressive
``files.get`` let the router's buffer for it grow without end (500 MB of
downloads took the router from 592 MB to 1,055 MB, never given back).

A L{SendBufferGuard} is the streaming producer of one client's transport:
Twisted calls its C{pauseProducing} at every write while the buffer is past
Twisted's own C{bufferSize} (64 KiB), and past C{limit} unsent bytes the guard
aborts the connection; Crossbar then detaches the session as for any lost
client (its kernels wait the resume grace).  The producer it replaces (the
HTTP channel that upgraded to the WebSocket, which stops reading from a client
it cannot write to) is still told everything, so that behaviour stays.
"""

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


def unsent_bytes(transport):
    """What Twisted still holds to write on C{transport} (under TLS, the TCP transport beneath)."""
    transport = getattr(transport, "transport", None) or transport
    buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return max(0, buffered) + getattr(transport, "_tempDataLen", 0)


@implementer(IPushProducer)
class SendBufferGuard:
    """Aborts C{transport} once more than C{limit} bytes wait to be sent on it; C{on_drop(unsent)} is told first."""

    def __init__(self, transport, limit, on_drop, previous=None):
        self._transport = transport
        self._limit = limit
        self._on_drop = on_drop
        self._previous = previous
        self.dropped = False

    @classmethod
    def install(cls, transport, limit, on_drop):
        """Guard C{transport} (a client's Twisted transport), keeping its current producer informed."""
        previous = getattr(transport, "producer", None)
        if previous is not None:
            transport.unregisterProducer()
        guard = cls(transport, limit, on_drop, previous)
        transport.registerProducer(guard, True)
        return guard

    def pauseProducing(self):
        unsent = unsent_bytes(self._transport)
        if unsent > self._limit and not self.dropped:
            self.dropped = True
            self._on_drop(unsent)
            self._transport.abortConnection()
            return
        if self._previous is not None:
            self._previous.pauseProducing()

    def resumeProducing(self):
        if self._previous is not None:
            self._previous.resumeProducing()

    def stopProducing(self):
        if self._previous is not None:
            self._previous.stopProducing()
