"""Files sent to a caller without blocking the reactor or filling the spawner's memory.

A download of up to 64 MiB used to be read and pushed in one reactor turn.
L{FileDownload} reads one chunk at a time in a thread, hands it to the caller
(a progressive result), and reads the next only when the router connection
can take more: L{TransportFlow} is the producer registered on that
connection, so Twisted tells it when the connection's buffer is full and when
it has drained.
"""

import hashlib

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


@implementer(IPushProducer)
class TransportFlow:
    """Backpressure of one connection, shared by every download on it: L{writable} waits while it is full."""

    def __init__(self):
        self._paused = False
        self._waiting = []

    def attach(self, transport):
        """Register as the producer of C{transport} (a Twisted transport); False if it has one already."""
        self._paused = False
        try:
            transport.registerProducer(self, True)
        except (RuntimeError, AttributeError):
            return False
        return True

    def writable(self):
        """A Deferred that fires once the connection takes more data (at once if it does now)."""
        if not self._paused:
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiting.append(d)
        return d

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def stopProducing(self):
        """The connection is gone: let waiters go on (what they send next fails with it)."""
        self.resumeProducing()


class FileDownload:
    """One ``files.get``: chunks as progressive results (or one result), then C{{size, sha256}}.

    @param f: the open binary file (closed when done).
    @param progress: the caller's progress callable, or None for the whole file in the result.
    @param flow: the connection's L{TransportFlow}, or None.
    @param blocking: runs C{f(*args)} off the reactor, returning a Deferred (L{components.worker.blocking}).
    """

    def __init__(self, f, chunk_bytes, progress, flow=None, blocking=defer.maybeDeferred):
        self._blocking = blocking
        self._f = f
        self._chunk_bytes = chunk_bytes
        self._progress = progress
        self._flow = flow

    @defer.inlineCallbacks
    def run(self):
        digest = hashlib.sha256()
        offset = 0
        whole = []
        try:
            while True:
                chunk = yield self._blocking(self._f.read, self._chunk_bytes)
                if not chunk:
                    break
                digest.update(chunk)
                if self._progress is not None:
                    if self._flow is not None:
                        yield self._flow.writable()
                    self._progress({"offset": offset, "data": chunk})
                else:
                    whole.append(chunk)
                offset += len(chunk)
        finally:
            self._f.close()
        result = {"size": offset, "sha256": digest.hexdigest()}
        if self._progress is None:
            result["data"] = b"".join(whole)
        return result
