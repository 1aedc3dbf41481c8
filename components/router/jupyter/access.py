"""Who a request to the Jupyter face comes from: a principal and its role.

Jupyter clients send ``Authorization: token <secret>`` (or ``?token=`` on a
WebSocket URL).  A secret names a principal of role ``service``, the secrets
coming from environment variables as the WAMP services' do.  With no token,
and anonymous access on (the default, so ``make run`` and
``jupyter lab --gateway-url`` work on a laptop), the client is anonymous, with
the ``browser`` role's limits.  An anonymous client proves nothing but the
kernel ids it was given: a kernel's id is its capability (components.router.jupyter.kernels).
A Binder launch token (components.router.launch_tokens, minted by ``GET /build``) names a principal
``binder:<launch id>`` of role ``browser`` that may start one kernelspec, only while anonymous use is on.
The client's address, for the quotas per address, is the node's one resolver's
business (components.common.addresses, in the session router).
"""

import dataclasses
import hmac
import os

from components.router import launch_tokens


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
    #: the one kernelspec it may start (a Binder launch's token); None: any
    kernel_name: str = None

    @property
    def anonymous(self):
        return not self.name

    def check_kernel(self, name):
        """L{Refused} (403) if it may not start a kernel of kernelspec C{name}."""
        if self.kernel_name is not None and name != self.kernel_name:
            raise Refused(403, "this launch token starts {!r} kernels only, not {!r}".format(self.kernel_name, name))


ANONYMOUS = Principal("", "browser")
#: a Binder launch token's principal is this and the launch id
LAUNCH_PRINCIPAL = "binder:"


def reaches(principal, holder):
    """Whether C{principal} reaches a kernel (or session) held by C{holder}, given its id: its own; and, for an
    anonymous client, a Binder launch's too, as an anonymous kernel is reached by its id alone.  thebe needs it:
    a page that reuses a saved Binder session rebuilds its settings without ``appendToken`` (thebe-core 0.5), so
    its channels WebSocket comes without the launch token.  The id is as secret as the token (both are told only
    to the launching page), and the kernel stays listed to the launch's token alone."""
    return holder == principal.name or (principal.anonymous and holder.startswith(LAUNCH_PRINCIPAL))


class Access:
    """Decides the L{Principal} of a request from its token."""

    def __init__(self, tokens=None, anonymous=True, environ=None, launches=None):
        environ = os.environ if environ is None else environ
        if any(not name or name.startswith(LAUNCH_PRINCIPAL) for name in tokens or {}):
            raise ValueError("a token's principal needs a name, not starting with " + LAUNCH_PRINCIPAL)
        #: principal name -> its secret (from the environment variable the config names)
        self._secrets = {name: environ.get(variable, "") for name, variable in (tokens or {}).items()}
        self._anonymous = anonymous
        #: Binder launch tokens (components.router.launch_tokens), keyed when the first one comes
        self._launches = launches

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
            if token.startswith(launch_tokens.PREFIX):
                return self._launch(token)
            raise Refused(401, "this token is not known here; check the gateway token you configured")
        if not self._anonymous:
            raise Refused(401, "this gateway needs a token: send 'Authorization: token <secret>'")
        return ANONYMOUS

    def _launch(self, token):
        """A Binder launch's principal: browser limits, its own kernels listed, one kernelspec (see the module)."""
        if not self._anonymous:
            raise Refused(401, "this gateway takes no launch tokens (anonymous use is off): use a configured token")
        if self._launches is None:
            self._launches = launch_tokens.LaunchTokens(launch_tokens.node_signing_key())
        try:
            launch = self._launches.verify(token)
        except launch_tokens.TokenRefused as exc:
            raise Refused(401, str(exc)) from None
        return Principal(LAUNCH_PRINCIPAL + launch.launch_id, "browser", launch.kernel_name)
