"""The node key: how the node's own components prove they are the node.

Everything that joins over the node's unix socket (the session router, the
permalink service, the local spawner) gets role ``backend``, which may do
anything on the realm.  A unix socket is not covered by a kernel's network
namespace, so the socket alone must grant nothing: the backend transport
accepts only WAMP-cryptosign signed with the node's private key, the one
Crossbar makes at its first start (``key.priv`` in the node directory, mode
0600, the node's user only).  Kernels run as other uids and cannot read it.

This module is the clients' side: L{BackendSession} for container components
(Crossbar does not let a container component's config carry credentials) and
L{cryptosign_authentication} for an autobahn ``Component`` (the spawner).  The
router's side is L{components.router.backend_authenticator}.
"""

import os

from autobahn.twisted.wamp import ApplicationSession
from autobahn.util import parse_keyfile
from autobahn.wamp.cryptosign import CryptosignKey

from components.common.sessions import CallerMayLeave

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
        raise RuntimeError(
            "cannot read the node key {}: {} (Crossbar makes it at its first start)".format(path, exc)
        ) from None


def cryptosign_authentication(cbdir, authid):
    """autobahn ``Component(authentication=...)`` for a backend joining over the node's unix socket."""
    path = os.path.join(cbdir, PRIVATE_KEY_FILE)
    try:
        privkey = parse_keyfile(path)["private-key-ed25519"]
    except (OSError, KeyError) as exc:
        raise RuntimeError(
            "cannot read the node key {}: {} (Crossbar makes it at its first start)".format(path, exc)
        ) from None
    return {"cryptosign": {"authid": authid, "privkey": privkey}}


class BackendSession(CallerMayLeave, ApplicationSession):
    """Joins as ``backend`` with the node key: the base of the node's container components.

    The node directory comes from the component's ``extra["cbdir"]`` (Crossbar
    puts it there), or the working directory.  C{backend_authid} names the
    component in the router's logs.
    """

    backend_authid = "backend"

    def onConnect(self):
        cbdir = (self.config.extra or {}).get("cbdir") or os.getcwd()
        self._node_key = node_key(cbdir)
        self.join(
            self.config.realm,
            authmethods=["cryptosign"],
            authid=self.backend_authid,
            authextra={"pubkey": self._node_key.public_key()},
        )

    def onChallenge(self, challenge):
        return self._node_key.sign_challenge(challenge)
