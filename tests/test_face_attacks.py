"""Strangers against the Jupyter face: anonymous clients sharing an address, and other sites' pages in a browser.

Two origin policies: the strict one (only the node's own pages and allowed_origins, L{origins_node}) and the
shipped one (any page anonymously, as thebe on a book page: the shared node), where a stranger's page is an
anonymous client like any other and gets nothing more.

Each test does what an attacker would, against a real node (its face, its
session router, real kernels), and checks that it fails and that the victim
notices nothing.  The same with two addresses behind the real HAProxy front
is in tests/test_cluster.py.
"""

import functools
import http.client
import http.server
import json
import threading
import uuid

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families

from tests import test_web
from tests.jupyter_ws import ChannelsClient, call_rest, rest
from tests.node import Node

#: a site the face's config allows (its pages get CORS answers), and one nobody allowed
ALLOWED = "https://notebooks.example.org"
EVIL = "http://evil.example"
#: what a form with enctype=multipart/form-data sends
FORM_DATA = b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\npython3\r\n--x--\r\n'

chromium = test_web.chromium  # the browser fixture (a real Chromium)


@pytest.fixture(scope="module")
def origins_node(tmp_path_factory):
    """A node whose face lets pages of L{ALLOWED} use it (and no other site's: anonymous_origins empty, the strict
    setting; the shipped one, every origin anonymously, is the shared node's)."""

    def allow(config):
        extra = config["workers"][0]["transports"][1]["paths"]["jupyter"]["extra"]
        extra.update(allowed_origins=[ALLOWED], anonymous_origins=[])

    node = Node(tmp_path_factory.mktemp("origins"), edit=allow).start()
    yield node
    node.stop()


def raw(node, method, path, headers=None, body=None):
    """(status, headers (lower-case names), body text) of a request to the face, sent exactly as given."""
    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
    try:
        connection.request(method, "/jupyter" + path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


def kernel_starts(node):
    """Kernel starts the node's session router was asked for so far (any outcome), from its metrics."""
    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cell_acquisitions_total"
    )


def guesses(kernel_id):
    """What a stranger could try: the id one digit away, and a fresh random one."""
    flipped = kernel_id[:-1] + ("0" if kernel_id[-1] != "0" else "1")
    return [flipped, str(uuid.uuid4())]


async def new_kernel(node, **kwargs):
    status, model = await call_rest(node, "POST", "/api/kernels", {"name": "python3"}, **kwargs)
    assert status == 201, model
    return model["id"]


@pytest_twisted.ensureDeferred
async def test_anonymous_clients_on_one_address_cannot_see_or_reach_each_others_kernels(node):
    """Two people behind one NAT (here both 127.0.0.1, no front): the face cannot tell them apart, so neither may
    list anonymous kernels; a kernel's id, told only to the client that started it, is what reaches it."""
    alice = await new_kernel(node)
    alices = await ChannelsClient(node, alice).connect()
    await alices.execute("secret = 'alice'")

    # Bob, anonymous at the same address, tries everything the face offers.
    status, listed = await call_rest(node, "GET", "/api/kernels")
    assert status == 200 and listed == [], "an anonymous listing shows nothing to anyone"
    for guess in guesses(alice):
        for method, path in (
            ("GET", "/api/kernels/" + guess),
            ("DELETE", "/api/kernels/" + guess),
            ("POST", "/api/kernels/{}/interrupt".format(guess)),
            ("POST", "/api/kernels/{}/restart".format(guess)),
        ):
            assert (await call_rest(node, method, path))[0] == 404, (method, path)
        with pytest.raises(ConnectionRefusedError, match="404"):
            await ChannelsClient(node, guess).connect()
    # A token's principal lists its own kernels, and reaches no anonymous one, even knowing its id.
    token = node.service_secret
    own = await new_kernel(node, token=token)
    status, listed = await call_rest(node, "GET", "/api/kernels", token=token)
    assert own in [k["id"] for k in listed] and alice not in [k["id"] for k in listed]
    assert (await call_rest(node, "GET", "/api/kernels/" + alice, token=token))[0] == 404
    assert (await call_rest(node, "GET", "/api/kernels/" + own))[0] == 404, "nor an anonymous client a token's"

    # Alice noticed nothing: her kernel and its state are there.
    reply, outputs = await alices.execute("print(secret)")
    assert reply["content"]["status"] == "ok" and outputs[0]["content"]["text"] == "alice\n"
    assert (await call_rest(node, "GET", "/api/kernels/" + alice))[0] == 200, "the id is the capability"
    for kernel_id, kwargs in ((alice, {}), (own, {"token": token})):
        assert (await call_rest(node, "DELETE", "/api/kernels/" + kernel_id, **kwargs))[0] == 204


@pytest_twisted.ensureDeferred
async def test_other_sites_cannot_start_or_touch_kernels_through_a_visitors_browser(origins_node):
    """What a page on another site can make its visitor's browser send: forms, fetch, with or without a token."""
    node = origins_node
    port = node.port
    starts = kernel_starts(node)
    json_body = b'{"name": "python3"}'
    for headers, expected in (
        ({"Origin": EVIL, "Content-Type": "text/plain"}, 403),  # a form with enctype=text/plain
        ({"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"}, 403),
        ({"Origin": EVIL, "Content-Type": "application/json"}, 403),  # fetch() (the preflight is refused too)
        ({"Origin": EVIL, "Content-Type": "application/json", "Authorization": "token " + node.service_secret}, 403),
        ({"Origin": "null", "Content-Type": "application/json"}, 403),  # a sandboxed frame, a data: URL
        ({"Origin": "http://127.0.0.1:{}.evil.example".format(port), "Content-Type": "application/json"}, 403),
        ({"Origin": "http://127.0.0.1:{}@evil.example".format(port), "Content-Type": "application/json"}, 403),
        ({"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, 403),  # no Origin, but a browser's
        ({"Content-Type": "text/plain"}, 415),  # a browser that sends no Origin: still not a form's body
        ({"Content-Type": "multipart/form-data; boundary=x", "body": FORM_DATA}, 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ):
        body = headers.pop("body", json_body)
        status, answer, text = raw(node, "POST", "/api/kernels", headers, body)
        assert status == expected, (headers, status, text)
        assert "access-control-allow-origin" not in answer, headers
    assert kernel_starts(node) == starts, "no kernel start was even asked for"

    victim = await new_kernel(node)  # a client that is not a browser (no Origin): served as before
    client = await ChannelsClient(node, victim).connect()
    await client.execute("alive = True")
    for method, path in (
        ("GET", "/api/kernels"),
        ("GET", "/api/kernels/" + victim),
        ("DELETE", "/api/kernels/" + victim),
        ("POST", "/api/kernels/{}/interrupt".format(victim)),
        ("POST", "/api/kernels/{}/restart".format(victim)),
    ):
        assert raw(node, method, path, {"Origin": EVIL})[0] == 403, (method, path)
    # The channels WebSocket: browsers let any page open one, so the Origin is what tells.
    for origin in (EVIL, "null"):
        with pytest.raises(ConnectionRefusedError, match="403"):
            await ChannelsClient(node, victim, origin=origin).connect()
    reply, _ = await client.execute("alive")
    assert reply["content"]["status"] == "ok" and reply["content"]["execution_count"] == 2, "not restarted"

    # The node's own pages, and those of the allowed site, are served; only the allowed site gets CORS answers.
    own = "http://127.0.0.1:{}".format(port)
    status, answer, text = raw(
        node, "POST", "/api/kernels", {"Origin": own, "Content-Type": "application/json"}, json_body
    )
    assert status == 201 and "access-control-allow-origin" not in answer, text
    made = [victim, json.loads(text)["id"]]
    friendly = await ChannelsClient(node, victim, origin=own).connect()
    assert (await friendly.execute("1 + 1"))[0]["content"]["status"] == "ok"
    status, answer, _ = raw(
        node,
        "OPTIONS",
        "/api/kernels",
        {"Origin": ALLOWED, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    assert status == 204 and answer["access-control-allow-origin"] == ALLOWED
    assert (
        "POST" in answer["access-control-allow-methods"] and "authorization" in answer["access-control-allow-headers"]
    )
    status, answer, _ = raw(node, "OPTIONS", "/api/kernels", {"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert status == 403 and "access-control-allow-origin" not in answer
    status, answer, text = raw(
        node, "POST", "/api/kernels", {"Origin": ALLOWED, "Content-Type": "application/json"}, json_body
    )
    assert status == 201 and answer["access-control-allow-origin"] == ALLOWED, text
    made.append(json.loads(text)["id"])
    allowed = await ChannelsClient(node, victim, origin=ALLOWED).connect()
    assert (await allowed.execute("2 + 2"))[0]["content"]["status"] == "ok"
    for kernel_id in made:
        assert (await call_rest(node, "DELETE", "/api/kernels/" + kernel_id))[0] == 204


def test_a_page_on_another_site_gets_nothing_from_the_face_in_a_real_browser(chromium, origins_node, tmp_path):
    """Chromium on a page of another origin: a text/plain form POST, fetch with and without CORS, and a WebSocket
    to a kernel whose id the page knows.  None starts a kernel or reaches one."""
    node = origins_node
    status, model = rest(node, "POST", "/api/kernels", {"name": "python3"})
    assert status == 201, model
    kernel_id = model["id"]
    starts = kernel_starts(node)
    face = "http://127.0.0.1:{}/jupyter".format(node.port)
    (tmp_path / "index.html").write_text(
        """<!doctype html><html><body><h1>A page on another site</h1>
<iframe name="sink"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink" action="{face}/api/kernels">
<input name='{{"name": "python3", "x": "' value='"}}'></form>
<script>
window.results = {{}};
const done = (what, value) => {{ window.results[what] = value; }};
fetch("{face}/api/kernels", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
                              body: '{{"name": "python3"}}'}})
  .then(r => done("no_cors", r.type), e => done("no_cors", "failed"));
fetch("{face}/api/kernels", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                              body: '{{"name": "python3"}}'}})
  .then(r => done("cors", r.status), e => done("cors", "failed"));
fetch("{face}/api/kernels").then(r => r.json()).then(j => done("list", j), e => done("list", "failed"));
const ws = new WebSocket("{ws}/api/kernels/{kernel}/channels");
ws.onopen = () => done("ws_open", true);
ws.onclose = () => done("ws", "closed");
document.querySelector("iframe").onload = () => done("form", "answered");
document.getElementById("form").submit();
</script></body></html>""".format(face=face, ws=face.replace("http:", "ws:"), kernel=kernel_id)
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto("http://127.0.0.1:{}/index.html".format(server.server_address[1]))
        page.wait_for_function("['no_cors', 'cors', 'list', 'ws', 'form'].every(k => k in window.results)")
        results = page.evaluate("window.results")
    finally:
        context.close()
        server.shutdown()
    assert results["cors"] == "failed" and results["list"] == "failed", "the page read nothing"
    assert "ws_open" not in results, "the WebSocket never opened"
    assert kernel_starts(node) == starts, "neither the form, nor fetch, started a kernel"
    assert rest(node, "GET", "/api/kernels/" + kernel_id)[0] == 200, "the kernel is untouched"
    assert rest(node, "DELETE", "/api/kernels/" + kernel_id)[0] == 204


def cors_of(answer):
    return answer.get("access-control-allow-origin"), answer.get("access-control-allow-credentials")


@pytest_twisted.ensureDeferred
async def test_a_strangers_page_is_an_anonymous_client_and_nothing_more(node):
    """The shipped policy (anonymous_origins ["*"]): any page may use the face anonymously, as thebe does.  What a
    stranger's page would try next: other visitors' kernels and sessions (listing, guessing), a token's kernels,
    a token request's answers, and preflights."""
    json_body = b'{"name": "python3"}'
    page = {"Origin": EVIL, "Content-Type": "application/json"}
    # A visitor's kernel and session (started by a page of another book), and a token's kernel.
    status, visitor = await call_rest(node, "POST", "/api/sessions", {"path": "p.ipynb", "kernel": {"name": "python3"}})
    assert status == 201
    token = node.service_secret
    owned = await new_kernel(node, token=token)
    starts = kernel_starts(node)

    # Served anonymously, with CORS and never credentials, errors included (the page reads why).
    status, answer, text = raw(node, "POST", "/api/kernels", page, json_body)
    assert status == 201 and cors_of(answer) == (EVIL, None), text
    own = json.loads(text)["id"]
    for method, path, expected in (
        ("GET", "/api/kernels", 200),
        ("GET", "/api/sessions", 200),
        ("GET", "/api/status", 200),
        ("GET", "/api/nothing", 404),
        ("GET", "/api/kernels/" + str(uuid.uuid4()), 404),
        ("DELETE", "/api/sessions/" + str(uuid.uuid4()), 404),
    ):
        status, answer, text = raw(node, method, path, {"Origin": EVIL})
        assert status == expected and cors_of(answer) == (EVIL, None), (method, path, status, text)
        if path in ("/api/kernels", "/api/sessions"):
            assert json.loads(text) == [], "the listing shows a page nothing: not the visitor's, not its own"
    # Guessing another visitor's kernel or session, or reaching the token's kernel by its id.
    for kernel_id in guesses(visitor["kernel"]["id"]) + [owned]:
        for method, path in (
            ("GET", "/api/kernels/" + kernel_id),
            ("DELETE", "/api/kernels/" + kernel_id),
            ("POST", "/api/kernels/{}/restart".format(kernel_id)),
            ("POST", "/api/sessions"),  # a session on another's kernel
        ):
            body = json.dumps({"path": "x", "kernel": {"id": kernel_id}}).encode() if "sessions" in path else None
            assert raw(node, method, path, page, body)[0] == 404, (method, path)
        with pytest.raises(ConnectionRefusedError, match="404"):
            await ChannelsClient(node, kernel_id, origin=EVIL).connect()
    for session_id in guesses(visitor["id"]):
        for method in ("GET", "PATCH", "DELETE"):
            assert raw(node, method, "/api/sessions/" + session_id, page, b"{}")[0] == 404, method
    # A token (a leaked one, or one a page hopes the browser adds) is refused from a stranger's page: the answer of a
    # token request is never the page's to read.
    for headers, path in (
        (dict(page, Authorization="token " + token), "/api/kernels"),
        (page, "/api/kernels?token=" + token),
        (dict(page, Authorization="token " + token), "/api/kernels/" + owned),
        (dict(page, Authorization="token " + token), "/api/sessions"),
    ):
        status, answer, text = raw(node, "GET", path, headers)
        assert status == 403 and "anonymously only" in text and owned not in text, (headers, path)
        assert cors_of(answer) == (EVIL, None)
    status, answer, text = raw(node, "POST", "/api/kernels", dict(page, Authorization="token " + token), json_body)
    assert status == 403
    assert raw(node, "GET", "/api/kernels", dict(page, Authorization="token nonsense"))[0] == 401
    with pytest.raises(ConnectionRefusedError, match="403"):
        await ChannelsClient(node, owned, token=token, origin=EVIL).connect()
    # Forms are still refused, whatever the origin; so are a browser's cross-site requests without Origin.
    for form in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, answer, _ = raw(node, "POST", "/api/kernels", dict(page, **{"Content-Type": form}), FORM_DATA)
        assert status == 415 and cors_of(answer) == (EVIL, None), form
    assert raw(node, "GET", "/api/kernels", {"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert (
        raw(node, "POST", "/api/kernels", {"Origin": "null", "Content-Type": "application/json"}, json_body)[0] == 403
    )
    # Preflights: on any path, answered without doing anything, never granting credentials or other headers.
    for path in ("/api/kernels", "/api/sessions/" + visitor["id"], "/nothing/here"):
        status, answer, _ = raw(
            node,
            "OPTIONS",
            path,
            {
                "Origin": EVIL,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "x-forwarded-for",
            },
        )
        assert status == 204 and cors_of(answer) == (EVIL, None), path
        assert "x-forwarded-for" not in answer["access-control-allow-headers"]
    assert raw(node, "OPTIONS", "/api/kernels", {"Origin": EVIL, "Access-Control-Request-Method": "PUT"})[0] == 403
    assert kernel_starts(node) == starts + 1, "one start: the page's own"

    # The visitor and the token noticed nothing.
    assert (await call_rest(node, "GET", "/api/sessions/" + visitor["id"]))[0] == 200
    assert (await call_rest(node, "GET", "/api/kernels/" + owned, token=token))[0] == 200
    assert (await call_rest(node, "DELETE", "/api/sessions/" + visitor["id"]))[0] == 204
    for kernel_id, kwargs in ((own, {}), (owned, {"token": token})):
        assert (await call_rest(node, "DELETE", "/api/kernels/" + kernel_id, **kwargs))[0] == 204


@pytest_twisted.ensureDeferred
async def test_a_strangers_page_cannot_spend_another_addresss_kernel_quota(node):
    """A page's kernels count under its visitor's address: a forged X-Forwarded-For (which a page could only send
    after a preflight that never grants it; a script can) does not move them onto another address."""
    attacker, victim = "127.0.0.57", "127.0.0.58"
    headers = {"Origin": EVIL, "X-Forwarded-For": victim}
    made = []
    while True:
        status, model = await call_rest(
            node, "POST", "/api/kernels", {"name": "python3"}, headers=headers, source=attacker
        )
        if status != 201:
            break
        made.append(model["id"])
        assert len(made) <= 8, "the browser role's quota per address stopped nobody"
    assert status == 403 and "kernel" in model["message"], model
    status, theirs = await call_rest(node, "POST", "/api/kernels", {"name": "python3"}, source=victim)
    assert status == 201, "the victim's address still has its quota"
    for kernel_id in made + [theirs["id"]]:
        assert (await call_rest(node, "DELETE", "/api/kernels/" + kernel_id))[0] == 204
