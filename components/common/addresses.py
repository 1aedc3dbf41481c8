"""Where each client comes from: the node's one address resolver, so that one address cannot take the node.

A client's address is its connection's peer IP; behind a front the node
trusts (``trusted_proxies``, the session router's setting and the node's only
one: e.g. the HAProxy host), it is the address the front put last into
``X-Forwarded-For``.  A header from anyone else is ignored: a client cannot
pick its own address.  Every client is described as Crossbar describes a
WAMP session's transport (``peer``, ``http_headers_received``), so WebSocket
sessions (learned from ``wamp.session.on_join``, or asked for, for a session
that joined before the session router) and the Jupyter face's HTTP clients
(L{http_client}) are resolved by the same L{ClientAddresses}.
"""

import ipaddress


def peer_ip(peer):
    """``tcp4:1.2.3.4:5678`` / ``tcp6:::1:5678`` -> the IP; anything else (unix, in-process) -> ``"local"``."""
    if not isinstance(peer, str) or not peer.startswith(("tcp4:", "tcp6:")):
        return "local"
    return peer[5:].rsplit(":", 1)[0]


def networks(trusted_proxies):
    """The fronts' networks from the config: addresses (``10.0.0.5``) or networks (``10.0.0.0/24``)."""
    try:
        return tuple(ipaddress.ip_network(str(entry), strict=False) for entry in trusted_proxies)
    except ValueError as exc:
        raise ValueError("trusted_proxies lists addresses or networks: {}".format(exc)) from None


def _within(ip, nets):
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in nets)


def client_address(transport, trusted_proxies):
    """The address a client is counted under, from its transport details (a dict)."""
    transport = transport or {}
    ip = peer_ip(transport.get("peer"))
    if _within(ip, networks(trusted_proxies)):
        headers = transport.get("http_headers_received") or {}
        forwarded = headers.get("x-forwarded-for") or headers.get("X-Forwarded-For")
        if isinstance(forwarded, str) and forwarded:
            # The last entry is the one the trusted front added: the address that connected to it.
            return forwarded.split(",")[-1].strip()[:64] or ip
    return ip


def http_client(host, port, forwarded_for):
    """An HTTP client (the face's) as Crossbar describes a session's transport, for L{client_address}.

    C{forwarded_for}: every ``X-Forwarded-For`` header of the request, joined in order (a front appends its own
    header after any the client sent, so its entry stays last).
    """
    family = "tcp6" if ":" in str(host) else "tcp4"
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    return {"peer": "{}:{}:{}".format(family, host, port), "http_headers_received": headers}


class ClientAddresses:
    """The node's resolver, in the session router: each WAMP session's address, and any client's on demand."""

    def __init__(self, trusted_proxies=()):
        self._trusted = networks(trusted_proxies)
        self._by_session = {}

    def resolve(self, transport):
        """The address of a client described like a session's transport (the face's clients: L{http_client})."""
        return client_address(transport if isinstance(transport, dict) else {}, self._trusted)

    def joined(self, session_details):
        """A ``wamp.session.on_join`` event's details."""
        session_id = session_details.get("session")
        if session_id is not None:
            self._by_session[session_id] = self.resolve(session_details.get("transport"))

    def learned(self, session_id, session_details):
        """What ``wamp.session.get`` said of a session that joined before us."""
        self._by_session[session_id] = self.resolve((session_details or {}).get("transport"))
        return self._by_session[session_id]

    def of(self, session_id):
        """The session's address, or None if unknown yet."""
        return self._by_session.get(session_id)

    def left(self, session_id):
        self._by_session.pop(session_id, None)
