"""Sessions per client address: one address cannot hold the router's connections (one opened 300).

L{SessionLimits} follows every client session (``wamp.session.on_join`` and
``on_leave``, and at start the sessions that joined before the session
router), counts them per role and client address (the node's one resolver,
L{ClientAddresses}), and closes a session that joins past its role's
C{max_sessions_per_address} through ``cell.backend.session.close``: the client
hears GOODBYE with ``cell.error.capacity`` and a message, then its
connection is closed by the router (a GOODBYE alone can be ignored).  A
closed session stops counting at once, so the address's other sessions keep
their places.  Roles without a quota (the node's own, spawners) are not
counted.
"""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.logger import Logger

from components.common import uris


class SessionLimits:
    """See the module docstring: C{quotas} by role (L{RoleQuota}s), C{addresses} the node's L{ClientAddresses}."""

    log = Logger()

    def __init__(self, quotas, addresses):
        self._quotas = quotas
        self._addresses = addresses
        self._session = None
        self._key = {}  # session id -> (role, address) of a counted session
        self._sessions = {}  # (role, address) -> {session id}

    @defer.inlineCallbacks
    def attach(self, session):
        """Follow C{session}'s realm (a backend session): joins and leaves, then the client sessions already there."""
        self._session = session
        yield session.subscribe(self.joined, uris.SESSION_ON_JOIN)
        yield session.subscribe(self.left, uris.SESSION_ON_LEAVE)
        listed = yield session.call(uris.SESSION_LIST, list(self._quotas))
        for session_id in listed:
            if session_id in self._key:
                continue
            try:
                details = yield session.call(uris.SESSION_GET, session_id)
            except ApplicationError:
                continue  # it left meanwhile
            self.joined(details)

    def joined(self, details):
        """A session's details (a ``wamp.session.on_join`` event, or ``wamp.session.get``'s answer)."""
        session_id, role = details.get("session"), details.get("authrole")
        quota = self._quotas.get(role)
        if quota is None or session_id is None or session_id in self._key:
            return
        address = self._addresses.resolve(details.get("transport"))
        key = (role, address)
        sessions = self._sessions.setdefault(key, set())
        if len(sessions) >= quota.max_sessions_per_address:
            self._refuse(session_id, role, address, quota.max_sessions_per_address)
            return
        sessions.add(session_id)
        self._key[session_id] = key

    def left(self, session_id, *args, **kwargs):
        key = self._key.pop(session_id, None)
        if key is None:
            return
        sessions = self._sessions.get(key)
        sessions.discard(session_id)
        if not sessions:
            del self._sessions[key]

    def sizes(self):
        """Its tables' sizes (node metrics, the soak): sessions counted, and (role, address) pairs with any."""
        return {"counted_sessions": len(self._key), "session_addresses": len(self._sessions)}

    def count(self, role, address):
        """Sessions of C{role} counted for C{address}."""
        return len(self._sessions.get((role, address), ()))

    def _refuse(self, session_id, role, address, limit):
        message = (
            "too many sessions from your address: it may hold {} {} sessions at once; close another one (a page "
            "shares one session among its cells) and connect again".format(limit, role)
        )
        self.log.warn(
            "closing session {session} ({role}) from {address}: past max_sessions_per_address {limit}",
            session=session_id,
            role=role,
            address=address,
            limit=limit,
        )
        d = self._session.call(uris.SESSION_CLOSE, session_id, uris.ERROR_CAPACITY, message)
        d.addErrback(
            lambda failure: self.log.warn(
                "could not close session {session}: {error}", session=session_id, error=failure.getErrorMessage()
            )
        )
