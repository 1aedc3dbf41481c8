"""The backend transport's authenticator: only the node key opens it (see L{components.common.node_key}).

Crossbar's ``function`` authenticator of the backend unix socket, loaded into
the router process: ``"auth": {"cryptosign": {"type": "function", "create":
"components.router.backend_authenticator.create_authenticator"}}``.  It
answers every HELLO with the node's public key; Crossbar then checks the
client's signature against it, so only a holder of ``key.priv`` joins.
"""

import os

from autobahn.wamp.exception import ApplicationError

from components.common.node_key import BACKEND_ROLE, node_key


def create_authenticator(config, controller=None):
    """Crossbar's ``create`` hook.

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
