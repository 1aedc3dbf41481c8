"""components.router.http_access: the origin policy, preflights and principals the Jupyter face and the HTTP API
share, on Twisted's own dummy requests."""

import pytest
from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from components.common.addresses import ClientAddresses
from components.common.config import HttpAccessConfig
from components.router.http_access import HttpAccess, client
from components.router.jupyter.access import Refused
from tests.fakes import FakeLink

pytestmark = pytest.mark.unit

HOST = "cell.example.org"
LAB = "https://lab.example.org"  # allowed_origins: any client, tokens included
BOOK = "https://book.example.net"  # served by anonymous_origins "*": anonymously only


@pytest.fixture
def http(monkeypatch):
    monkeypatch.setenv("CELL_TEST_HTTP_ACCESS_SECRET", "s3cret")
    settings = HttpAccessConfig(tokens={"grader": "CELL_TEST_HTTP_ACCESS_SECRET"}, allowed_origins=[LAB])
    return HttpAccess(settings, FakeLink(), "GET, POST", "authorization", "{origin} may not {method} here")


def request(method=b"GET", **headers):
    req = DummyRequest([b"x"])
    req.method = method
    req.requestHeaders.setRawHeaders(b"host", [HOST.encode()])
    for name, value in headers.items():
        req.requestHeaders.setRawHeaders(name.replace("_", "-").encode(), [value.encode()])
    return req


def screened(http, req):
    refusals = []
    answer = http.screen(req, lambda status, message: refusals.append((status, message)) or b"refused")
    return answer, refusals


def test_the_nodes_own_pages_and_clients_without_origin_go_on_without_cors(http):
    for req in (request(), request(origin="https://" + HOST), request(sec_fetch_site="same-origin")):
        assert screened(http, req) == (None, [])
        assert req.responseHeaders.getRawHeaders(b"access-control-allow-origin") is None
        assert req.responseHeaders.getRawHeaders(b"vary") == [b"Origin"]


def test_a_served_page_of_another_site_gets_cors_and_one_not_served_a_refusal(monkeypatch):
    monkeypatch.setenv("CELL_TEST_HTTP_ACCESS_SECRET", "s3cret")
    only_lab = HttpAccess(HttpAccessConfig(allowed_origins=[LAB], anonymous_origins=[]), FakeLink())
    req = request(origin=LAB)
    assert screened(only_lab, req) == (None, [])
    assert req.responseHeaders.getRawHeaders(b"access-control-allow-origin") == [LAB.encode()]
    for req in (request(origin=BOOK), request(sec_fetch_site="cross-site"), request(b"OPTIONS", origin=BOOK)):
        answer, refusals = screened(only_lab, req)
        assert answer == b"refused" and [status for status, _ in refusals] == [403]
        assert req.responseHeaders.getRawHeaders(b"access-control-allow-origin") is None


def test_a_preflight_is_answered_with_the_surfaces_own_methods_or_refused_naming_the_method(http):
    req = request(b"OPTIONS", origin=BOOK, access_control_request_method="post")
    assert screened(http, req) == (b"", [])
    assert req.responseCode == 204
    assert req.responseHeaders.getRawHeaders(b"access-control-allow-methods") == [b"GET, POST"]
    assert req.responseHeaders.getRawHeaders(b"access-control-allow-headers") == [b"authorization"]
    assert req.responseHeaders.getRawHeaders(b"vary") == [b"Origin"]
    answer, refusals = screened(http, request(b"OPTIONS", origin=BOOK, access_control_request_method="delete"))
    assert answer == b"refused" and refusals == [(403, BOOK + " may not DELETE here")]


def test_a_service_token_is_refused_from_a_page_that_may_use_the_surface_anonymously_only(http):
    token = {"authorization": "Bearer s3cret"}
    assert http.principal(request(**token)).name == "grader", "a client that is no browser"
    assert http.principal(request(origin=LAB, **token)).role == "service"
    assert http.anonymous_only(request(origin=BOOK)) and not http.anonymous_only(request(origin=LAB))
    with pytest.raises(Refused) as refused:
        http.principal(request(origin=BOOK, **token))
    assert refused.value.code == 403 and "anonymously only" in str(refused.value)
    assert http.principal(request(origin=BOOK)).anonymous, "the same page without the token is served"
    with pytest.raises(Refused) as refused:
        http.principal(request(authorization="token wrong"))
    assert refused.value.code == 401
    assert http.principal(request(), query_token="s3cret").name == "grader", "a WebSocket's ?token="


def test_the_client_is_the_peer_and_what_it_forwards_for_the_nodes_resolver():
    req = request(x_forwarded_for="10.9.9.9")
    req.client = IPv4Address("TCP", "192.0.2.7", 4000)
    assert ClientAddresses().resolve(client(req)) == "192.0.2.7", "no trusted front: the forwarded part counts not"
    assert ClientAddresses(["192.0.2.0/24"]).resolve(client(req)) == "10.9.9.9"
