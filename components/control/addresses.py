"""Where each client session comes from, so that one address cannot take the node.

A session's address is its transport's peer IP; behind a front the node
trusts (``trusted_proxies``: e.g. the HAProxy host), it is the client
address the front put last into ``X-Forwarded-For``.  A header from anyone
else is ignored: a client cannot pick its own address.  Addresses are
learned from ``wamp.session.on_join`` (or asked for, for a session that
joined before the session router), and forgotten when the session leaves.
"""


def peer_ip(peer):
    """``tcp4:1.2.3.4:5678`` / ``tcp6:::1:5678`` -> the IP; anything else (unix, in-process) -> ``"local"``."""
    if not isinstance(peer, str) or not peer.startswith(("tcp4:", "tcp6:")):
        return "local"
    return peer[5:].rsplit(":", 1)[0]


def client_address(transport, trusted_proxies):
    """The address a session is counted under, from its transport details (a dict)."""
    transport = transport or {}
    ip = peer_ip(transport.get("peer"))
    if ip in trusted_proxies:
        headers = transport.get("http_headers_received") or {}
        forwarded = headers.get("x-forwarded-for") or headers.get("X-Forwarded-For")
        if forwarded:
            # The last entry is the one the trusted front added: the address that connected to it.
            return forwarded.split(",")[-1].strip() or ip
    return ip


class ClientAddresses:
    def __init__(self, trusted_proxies=()):
        self._trusted = frozenset(trusted_proxies)
        self._by_session = {}

    def joined(self, session_details):
        """A ``wamp.session.on_join`` event's details."""
        session_id = session_details.get("session")
        if session_id is not None:
            self._by_session[session_id] = client_address(session_details.get("transport"), self._trusted)

    def learned(self, session_id, session_details):
        """What ``wamp.session.get`` said of a session that joined before us."""
        self._by_session[session_id] = client_address((session_details or {}).get("transport"), self._trusted)
        return self._by_session[session_id]

    def of(self, session_id):
        """The session's address, or None if unknown yet."""
        return self._by_session.get(session_id)

    def left(self, session_id):
        self._by_session.pop(session_id, None)
