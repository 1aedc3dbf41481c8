"""Who a request to the Jupyter face comes from: a principal and its role.

Jupyter clients send ``Authorization: token <secret>`` (or ``?token=`` on a
WebSocket URL).  A secret names a principal of role ``service``, the secrets
coming from environment variables as the WAMP services' do.  With no token,
and anonymous access on (the default, so ``make run`` and
``jupyter lab --gateway-url`` work on a laptop), the client is anonymous, with
the ``browser`` role's limits.  An anonymous client proves nothing but the
kernel ids it was given: a kernel's id is its capability (components.router.jupyter.kernels).
The client's address, for the quotas per address, is the node's one resolver's
business (components.common.addresses, in the session router).
"""

import dataclasses
import hmac
import os


class Refused(Exception):
    """No principal: C{code} is the HTTP status, the text says what to do."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class Principal:
    #: the token's principal; "" for an anonymous client
    name: str
    role: str

    @property
    def anonymous(self):
        return not self.name


ANONYMOUS = Principal("", "browser")


class Access:
    """Decides the L{Principal} of a request from its token."""

    def __init__(self, tokens=None, anonymous=True, environ=None):
        environ = os.environ if environ is None else environ
        if any(not name for name in tokens or {}):
            raise ValueError("a token's principal needs a name (the tokens setting maps names to variables)")
        #: principal name -> its secret (from the environment variable the config names)
        self._secrets = {name: environ.get(variable, "") for name, variable in (tokens or {}).items()}
        self._anonymous = anonymous

    def principal(self, authorization, query_token):
        """The L{Principal} of a request, or L{Refused} (401)."""
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() in ("token", "bearer") and value.strip():
                token = value.strip()
        token = token or query_token
        if token:
            for name, secret in self._secrets.items():
                if secret and hmac.compare_digest(secret.encode(), token.encode()):
                    return Principal(name, "service")
            raise Refused(401, "this token is not known here; check the gateway token you configured")
        if not self._anonymous:
            raise Refused(401, "this gateway needs a token: send 'Authorization: token <secret>'")
        return ANONYMOUS
