"""components.control.authenticator: services and remote spawners by WAMP-CRA, secrets from the environment."""

import pytest
from autobahn.wamp.exception import ApplicationError

from components.control.authenticator import ServiceAuthenticator

pytestmark = pytest.mark.unit


def _authenticator(environ):
    return ServiceAuthenticator({"service": "CELL_SERVICE_SECRET"}, {"w2": "W2_SECRET"}, environ=environ)


def test_a_known_principal_gets_its_secret_and_role():
    authenticator = _authenticator({"CELL_SERVICE_SECRET": "s", "W2_SECRET": "w"})
    assert authenticator.authenticate("cell", "service", {}) == {"secret": "s", "role": "service"}
    assert authenticator.authenticate("cell", "w2", {}) == {"secret": "w", "role": "spawner"}


def test_an_unknown_principal_or_a_missing_secret_is_refused_saying_why():
    authenticator = _authenticator({})
    with pytest.raises(ApplicationError, match="unknown principal mallory"):
        authenticator.authenticate("cell", "mallory", {})
    with pytest.raises(ApplicationError, match="set W2_SECRET in the router's environment"):
        authenticator.authenticate("cell", "w2", {})
