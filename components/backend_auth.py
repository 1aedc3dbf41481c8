"""How the node's own components prove they are the node: cryptosign with the node's key.

Everything that joins over the node's unix socket (the session router, the
permalink service, the local spawner) is given role ``backend``, which may do
anything on the realm.  A unix socket is not covered by a kernel's network
namespace, so the socket alone must grant nothing: the backend transport
accepts only WAMP-cryptosign signed with the node's private key, the one
Crossbar makes at its first start (``key.priv`` in the node directory, mode
0600, the node's user only).  Kernels run as other uids and cannot read it.

Three parts, each used by a different process:

- L{create_authenticator}: Crossbar's ``function`` authenticator for the
  backend transport, in the router process.  It answers every HELLO with the
  node's public key; Crossbar then checks the signature against it.
- L{BackendSession}: an ``ApplicationSession`` base for container components
  (Crossbar does not let a container component's config carry credentials).
- L{cryptosign_authentication}: the same credentials for an autobahn
  ``Component`` (the spawner).

L{PrivateNodeDirectory} (a router component, started before any transport)
closes the node directory to other users, so its sockets, keys, database and
logs are out of a kernel's reach even before authentication.
"""

import os
import stat

from autobahn.twisted.wamp import ApplicationSession
from autobahn.util import parse_keyfile
from autobahn.wamp.cryptosign import CryptosignKey
from autobahn.wamp.exception import ApplicationError

#: the node key Crossbar writes into its node directory (cbdir)
PRIVATE_KEY_FILE = "key.priv"
PUBLIC_KEY_FILE = "key.pub"
BACKEND_ROLE = "backend"


def node_key(cbdir, private=True):
    """The node's L{CryptosignKey} (private by default), read from C{cbdir}."""
    path = os.path.join(cbdir, PRIVATE_KEY_FILE if private else PUBLIC_KEY_FILE)
    try:
        return CryptosignKey.from_keyfile(path)
    except (OSError, RuntimeError) as exc:
        raise RuntimeError("cannot read the node key {}: {} (Crossbar makes it at its first start)".format(path, exc)) from None


def cryptosign_authentication(cbdir, authid):
    """autobahn ``Component(authentication=...)`` for a backend joining over the node's unix socket."""
    path = os.path.join(cbdir, PRIVATE_KEY_FILE)
    try:
        privkey = parse_keyfile(path)["private-key-ed25519"]
    except (OSError, KeyError) as exc:
        raise RuntimeError("cannot read the node key {}: {} (Crossbar makes it at its first start)".format(path, exc)) from None
    return {"cryptosign": {"authid": authid, "privkey": privkey}}


def create_authenticator(config, controller=None):
    """Crossbar's ``create`` hook of the backend transport's function authenticator.

    C{config["cbdir"]}: where the node key lives (default: the router
    worker's working directory, which Crossbar sets to the node directory).
    """
    cbdir = (config or {}).get("cbdir") or os.getcwd()
    pubkey = node_key(cbdir, private=False).public_key()

    def authenticate(realm, authid, details):
        presented = (details.get("authextra") or {}).get("pubkey")
        if presented != pubkey:
            raise ApplicationError(
                ApplicationError.AUTHENTICATION_FAILED,
                "the backend transport admits only the node's own components (signed with the node key)",
            )
        return {"pubkey": pubkey, "role": BACKEND_ROLE, "authid": authid or "backend"}

    return authenticate


class BackendSession(ApplicationSession):
    """Joins as ``backend`` with the node key: the base of the node's container components.

    The node directory comes from the component's ``extra["cbdir"]`` (Crossbar
    puts it there), or the working directory.  C{backend_authid} names the
    component in the router's logs.
    """

    backend_authid = "backend"

    def onConnect(self):
        cbdir = (self.config.extra or {}).get("cbdir") or os.getcwd()
        self._node_key = node_key(cbdir)
        self.join(self.config.realm, authmethods=["cryptosign"], authid=self.backend_authid, authextra={"pubkey": self._node_key.public_key()})

    def onChallenge(self, challenge):
        return self._node_key.sign_challenge(challenge)


def make_private(path, log=None):
    """Give C{path} (a directory) to its owner only; True if its mode had to change."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077 == 0:
        return False
    os.chmod(path, mode & 0o700)
    if log is not None:
        log.info("node directory {path}: mode {old:o} -> {new:o}, so that kernels (other uids) cannot reach its sockets, keys or data", path=path, old=mode, new=mode & 0o700)
    return True


class PrivateNodeDirectory(ApplicationSession):
    """A router component that closes the node directory before any transport listens.

    Crossbar starts a router's components before its transports, and this is
    the first of them: when the backend socket appears, its directory is
    already mode 0700.
    """

    def __init__(self, config=None):
        super().__init__(config)
        make_private(os.getcwd(), self.log)
