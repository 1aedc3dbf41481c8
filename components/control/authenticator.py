"""Crossbar's dynamic WAMP-CRA authenticator of the node's services and remote spawners.

Registered by the session router's WAMP face as ``cell.backend.authenticate``.
The secrets come from the environment variables named in the config, never
from the config itself, so a config file can be shown without giving them away.
"""

import os

from autobahn.wamp.exception import ApplicationError


class ServiceAuthenticator:
    """@param services: {authid: name of the environment variable holding its secret}, role "service".
    @param spawners: the same for role "spawner" (remote workers).
    @param environ: where the secrets are read (the process environment by default).
    """

    def __init__(self, services, spawners, environ=None):
        self._principals = (("service", services), ("spawner", spawners))
        self._environ = os.environ if environ is None else environ

    def authenticate(self, realm, authid, details):
        """The principal's secret and role, or ``cell.error.not_authorized`` saying why not."""
        for role, principals in self._principals:
            if authid in principals:
                secret = self._environ.get(principals[authid])
                if not secret:
                    raise ApplicationError(
                        "cell.error.not_authorized",
                        "principal {} has no secret: set {} in the router's environment".format(
                            authid, principals[authid]
                        ),
                    )
                return {"secret": secret, "role": role}
        raise ApplicationError("cell.error.not_authorized", "unknown principal {}".format(authid))
