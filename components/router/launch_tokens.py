"""Launch tokens: what ``GET /build/...`` (components.router.binder_launch) hands a page, and the face accepts.

A token names one launch and the one kernelspec that launch may start, until
an expiry::

    cbl1.<base64url of {"l": launch id, "k": kernel name, "x": expiry (unix seconds)}>.<base64url of its HMAC>

The HMAC (SHA-256) is keyed by a secret only router processes hold, so no
one else can mint a token, nor change a field of one (another kernel, another
launch, a later expiry) without the MAC failing.  The token keeps nothing on
the node: a launch costs an HMAC, and a token holder gets the ``browser``
role's limits (kernels counted per client address, as anonymous clients' are).

Where the key comes from (L{node_signing_key}):

- ``CELL_LAUNCH_SECRET`` in the router's environment, when set: give several
  nodes behind one front the same value, and a token minted by any of them
  is accepted by all (the ``ready`` URL points at the front, so a page's next
  request may reach another node);
- otherwise the node key (``key.priv`` in the node directory, readable only by
  the node's user): tokens work on this node alone, and across its restarts.

Either way the key is derived with a label of its own (HMAC of the secret and
L{KEY_LABEL}), so it is used for nothing else.
"""

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import os
import time
import uuid

#: what every launch token starts with (the face tells them from its configured tokens by it)
PREFIX = "cbl1."
#: the environment variable that, when set, keys the tokens of every node sharing it
SECRET_VARIABLE = "CELL_LAUNCH_SECRET"
KEY_LABEL = b"cellserver launch tokens v1"
#: longer is not a token of ours (the face refuses before any decoding)
MAX_TOKEN_CHARS = 512


class TokenRefused(Exception):
    """A token that is not a valid launch token now: the text says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Launch:
    launch_id: str
    kernel_name: str
    expires: int


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive(secret):
    """The signing key for C{secret} (bytes)."""
    return hmac.new(secret, KEY_LABEL, hashlib.sha256).digest()


def node_signing_key(cbdir=None, environ=None):
    """The key of this router process: from C{CELL_LAUNCH_SECRET}, else from the node key in C{cbdir}."""
    environ = os.environ if environ is None else environ
    secret = environ.get(SECRET_VARIABLE, "")
    if secret:
        return derive(secret.encode("utf-8"))
    path = os.path.join(cbdir or os.getcwd(), "key.priv")
    try:
        from autobahn.util import parse_keyfile

        seed = parse_keyfile(path)["private-key-ed25519"]
    except (OSError, KeyError, RuntimeError, ValueError) as exc:
        raise RuntimeError(
            "launch tokens need a key: set {} or run in the node directory ({}: {})".format(SECRET_VARIABLE, path, exc)
        ) from None
    return derive(seed if isinstance(seed, bytes) else str(seed).encode("ascii"))


class LaunchTokens:
    """Mints and verifies launch tokens with C{key}; C{clock}: anything with C{seconds()} (the reactor, a Clock)."""

    def __init__(self, key, clock=None):
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValueError("a launch token key is at least 16 bytes")
        self._key = key
        self._clock = clock

    def _now(self):
        return self._clock.seconds() if self._clock is not None else time.time()

    def _mac(self, body):
        return _b64(hmac.new(self._key, (PREFIX + body).encode("ascii"), hashlib.sha256).digest())

    def mint(self, kernel_name, lifetime_s):
        """A new launch (a fresh random id) that may start C{kernel_name} for C{lifetime_s}: C{(Launch, token)}."""
        launch = Launch(uuid.uuid4().hex, kernel_name, int(self._now() + lifetime_s))
        payload = {"l": launch.launch_id, "k": launch.kernel_name, "x": launch.expires}
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        return launch, PREFIX + body + "." + self._mac(body)

    def verify(self, token):
        """The L{Launch} C{token} names, or L{TokenRefused}: not ours, altered, or expired."""
        invalid = TokenRefused(
            "this launch token is not valid here (altered, cut, or minted by a node that does not share this one's "
            "key): launch again (GET /build/...)"
        )
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.startswith(PREFIX):
            raise invalid
        body, _, mac = token[len(PREFIX) :].partition(".")
        if not body or not hmac.compare_digest(self._mac(body).encode("ascii"), mac.encode("ascii", "replace")):
            raise invalid
        try:
            payload = json.loads(_unb64(body))
            launch = Launch(str(payload["l"]), str(payload["k"]), int(payload["x"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise invalid from None
        if self._now() >= launch.expires:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(launch.expires))
            raise TokenRefused("this launch token expired at {}: launch again (GET /build/...)".format(stamp))
        return launch
