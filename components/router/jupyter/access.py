"""Who a request to the Jupyter face comes from: a principal, its role, its client address.

Jupyter clients send ``Authorization: token <secret>`` (or ``?token=`` on a
WebSocket URL).  A secret names a principal of role ``service``, the secrets
coming from environment variables as the WAMP services' do; with no token,
and anonymous access on (the default, so ``make run`` and
``jupyter lab --gateway-url`` work on a laptop), the principal is the client
address with the ``browser`` role's limits.  Each principal sees only its own
kernels.  The client address is the peer's, or the ``X-Forwarded-For`` entry
a trusted front added.
"""

import dataclasses
import hmac
import ipaddress
import os


class Refused(Exception):
    """No principal: C{code} is the HTTP status, the text says what to do."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class Principal:
    name: str
    role: str
    address: str


class Access:
    """Decides the L{Principal} of a request from its token, headers and peer."""

    def __init__(self, tokens=None, anonymous=True, trusted_proxies=(), environ=None):
        environ = os.environ if environ is None else environ
        #: principal name -> its secret (from the environment variable the config names)
        self._secrets = {name: environ.get(variable, "") for name, variable in (tokens or {}).items()}
        self._anonymous = anonymous
        self._trusted = [ipaddress.ip_network(net, strict=False) for net in trusted_proxies]

    def principal(self, authorization, query_token, peer_host, forwarded_for):
        """The L{Principal} of a request, or L{Refused} (401)."""
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() in ("token", "bearer") and value.strip():
                token = value.strip()
        token = token or query_token
        address = self.address(peer_host, forwarded_for)
        if token:
            for name, secret in self._secrets.items():
                if secret and hmac.compare_digest(secret.encode(), token.encode()):
                    return Principal(name, "service", address)
            raise Refused(401, "this token is not known here; check the gateway token you configured")
        if not self._anonymous:
            raise Refused(401, "this gateway needs a token: send 'Authorization: token <secret>'")
        return Principal("anonymous@" + address, "browser", address)

    def address(self, peer_host, forwarded_for):
        """The client's address: the peer, or the last hop a trusted front added to X-Forwarded-For."""
        if forwarded_for and self._trusted and self._is_trusted(peer_host):
            hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
            if hops:
                return hops[-1]
        return peer_host

    def _is_trusted(self, host):
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self._trusted)
