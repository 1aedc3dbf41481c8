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


def test_a_launch_token_names_a_browser_principal_of_its_launch_with_one_kernelspec():
    from twisted.internet.task import Clock

    from components.router.launch_tokens import LaunchTokens, derive

    clock = Clock()
    launches = LaunchTokens(derive(b"router secret"), clock)
    launch, token = launches.mint("sagemath", 60)
    access = Access({"svc": "SECRET_VAR"}, environ={"SECRET_VAR": "s3"}, launches=launches)
    principal = access.principal("token " + token, None)
    assert principal == Principal("binder:" + launch.launch_id, "browser", "sagemath")
    assert access.principal(None, token) == principal and not principal.anonymous
    principal.check_kernel("sagemath")
    with pytest.raises(Refused, match="starts 'sagemath' kernels only, not 'python3'") as refused:
        principal.check_kernel("python3")
    assert refused.value.code == 403
    Principal("svc", "service").check_kernel("anything")
    with pytest.raises(Refused, match="not valid here") as refused:
        access.principal("token " + token[:-2], None)
    assert refused.value.code == 401
    clock.advance(60)
    with pytest.raises(Refused, match="expired") as refused:
        access.principal("token " + token, None)
    assert refused.value.code == 401
    _, fresh = launches.mint("python3", 60)
    closed = Access({}, anonymous=False, environ={}, launches=launches)
    with pytest.raises(Refused, match="anonymous use is off"):
        closed.principal("token " + fresh, None)
    with pytest.raises(ValueError):
        Access({"binder:x": "SECRET_VAR"}, environ={})  # would share a launch's kernels


def test_an_anonymous_client_reaches_a_launchs_kernel_by_its_id_and_no_other_principal_does():
    from components.router.jupyter.access import ANONYMOUS, reaches

    launch = Principal("binder:" + "a" * 32, "browser", "python3")
    assert reaches(launch, launch.name) and reaches(ANONYMOUS, launch.name) and reaches(ANONYMOUS, "")
    assert not reaches(Principal("binder:" + "b" * 32, "browser", "python3"), launch.name), "another launch"
    assert not reaches(ANONYMOUS, "svc") and not reaches(launch, "svc") and not reaches(launch, "")
    assert not reaches(Principal("svc", "service"), launch.name)
