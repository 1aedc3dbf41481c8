"""L{components.router.jupyter.access}: who a Jupyter client is (a token's service, or anonymous)."""

import pytest

from components.router.jupyter.access import Access, Principal, Refused

pytestmark = pytest.mark.unit


def test_a_token_names_a_service_principal_and_no_token_an_anonymous_one():
    access = Access({"svc": "SECRET_VAR"}, anonymous=True, environ={"SECRET_VAR": "s3"})
    assert access.principal("token s3", None) == Principal("svc", "service")
    assert access.principal(None, "s3").name == "svc", "?token= on a WebSocket URL"
    anonymous = access.principal(None, None)
    assert anonymous.anonymous and anonymous.role == "browser"
    with pytest.raises(Refused):
        access.principal("token wrong", None)
    with pytest.raises(Refused):
        Access({}, anonymous=False, environ={}).principal(None, None)
    with pytest.raises(ValueError):
        Access({"": "SECRET_VAR"}, environ={})  # "" is how the face names anonymous clients
