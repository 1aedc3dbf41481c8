"""The router's hold on its clients' connections: a bounded send buffer each, and a close that cannot be ignored.

A router component (in the router process, where the connections are): it
learns each client session from ``wamp.session.on_join`` and puts a
L{SendBufferGuard} on its transport (clients of roles ``browser`` and
``service``; a remote spawner is the node's own and keeps its connection),
and it serves ``cell.backend.session.close`` to the node's components: the
session gets a GOODBYE with the reason and message (what a well-behaved
client shows), then its connection is closed.  Crossbar's own
``wamp.session.kill`` only sends the GOODBYE: a client that never answers
it stays joined and keeps calling.

Crossbar has no public hook on a client's transport, so the component reads
its router's session table (``_session_id_to_session``), as the register
guard reads its dealer; a Crossbar that moved it stops the node's start.
"""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import SessionNotReady
from twisted.internet import defer

from components.common import errors, uris
from components.common.config import ClientConnectionsConfig, from_mapping
from components.router.authorization import CLIENT_ROLES
from components.router.send_buffers import SendBufferGuard, websocket_bytes_written


class ClientConnections(ApplicationSession):
    """See the module docstring."""

    @classmethod
    def check_config(cls, personality, extra):
        from_mapping(ClientConnectionsConfig, extra, ignore=("cbdir",))

    @defer.inlineCallbacks
    def onJoin(self, details):
        self.settings = from_mapping(ClientConnectionsConfig, self.config.extra, ignore=("cbdir",))
        self._sessions = getattr(getattr(self._transport, "_router", None), "_session_id_to_session", None)
        if not isinstance(self._sessions, dict):
            raise RuntimeError("client connections: this Crossbar's router has no session table; see the module")
        # Router components join before the transports listen: every client joins after this subscription.
        yield self.subscribe(self.joined, uris.SESSION_ON_JOIN)
        yield self.register(self.close_session, uris.SESSION_CLOSE)
        self.log.info(
            "client connections: at most {limit} bytes unsent per client connection",
            limit=self.settings.max_unsent_bytes,
        )

    def _client(self, session_id):
        """The router's session C{session_id} of a client role, and its transport; (None, None) otherwise."""
        session = self._sessions.get(session_id)
        if session is None or getattr(session, "_authrole", None) not in CLIENT_ROLES:
            return None, None
        return session, getattr(session, "_transport", None)

    def joined(self, details):
        session_id = details.get("session")
        session, wamp_transport = self._client(session_id)
        transport = getattr(wamp_transport, "transport", None)
        if transport is None:
            return

        def dropped(unsent):
            self.log.warn(
                "dropping client session {session} ({authrole}): it stopped reading and {unsent} bytes were written "
                "since it last caught up "
                "(max_unsent_bytes {limit})",
                session=session_id,
                authrole=details.get("authrole"),
                unsent=unsent,
                limit=self.settings.max_unsent_bytes,
            )

        try:
            written = websocket_bytes_written(wamp_transport)
            SendBufferGuard.install(transport, written, self.settings.max_unsent_bytes, dropped)
        except (RuntimeError, AttributeError) as exc:
            self.log.warn("client session {session}: send buffer not guarded ({error})", session=session_id, error=exc)

    def close_session(self, session_id, reason, message):
        """``cell.backend.session.close(session_id, reason, message)``: a client session goes, whether it agrees or not.

        True if it was there to close.  Only client sessions may be closed this way.
        """
        session, wamp_transport = self._client(session_id)
        if session is None:
            if session_id in self._sessions:
                raise errors.InvalidArgument("session {} is not a client's: it is not closed".format(session_id))
            return False
        try:
            session.leave(reason=reason, message=message)
        except SessionNotReady:  # already leaving (its GOODBYE was sent): close its connection all the same
            pass
        if wamp_transport is not None and wamp_transport.isOpen():
            wamp_transport.close()  # a peer that does not answer the close is dropped after autobahn's timeout
        return True
