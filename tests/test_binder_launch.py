"""Binder's launch API on a real node: ``GET /build/...`` read as an event stream by a plain HTTP client, its token
used through the Jupyter face (a kernel started, code run), and what a stranger does with tokens and launches.

The Jupyter clients' helpers (tests/jupyter_clients.py) run here in the project's venv: ``http`` and the tornado
``Channels`` client need nothing of the Jupyter venv.
"""

import base64
import json
import os
import time
import urllib.error
import urllib.request

import pytest
from twisted.internet.task import Clock

from components.router.launch_tokens import PREFIX, LaunchTokens, node_signing_key
from tests.jupyter_clients import Channels, http, stream_text
from tests.node import Node


def launch(node, path="gh/owner/repo/main", headers=None, timeout=30):
    """C{(status, headers, events or JSON body)} of C{GET /build/<path>}."""
    url = "http://127.0.0.1:{}/build/{}".format(node.port, path)
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, got, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())
    events = []
    for block in raw.decode().split("\n\n"):
        data = [line[len("data: ") :] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            events.append(json.loads("\n".join(data)))
    return status, got, events


@pytest.fixture(scope="module")
def face(node):
    """The node's face, once it answers (the first launch waits for it)."""
    base = "http://127.0.0.1:{}/jupyter".format(node.port)
    deadline = time.monotonic() + 60
    while http("GET", base + "/api", timeout=5)[0] != 200:  # poll: the face announces itself nowhere a test can wait on
        assert time.monotonic() < deadline, "the node's face did not answer"
        time.sleep(0.1)  # poll
    return base


def ready(node, path="gh/owner/repo/main"):
    status, headers, events = launch(node, path)
    assert status == 200, (status, events)
    assert events[-1]["phase"] == "ready", events
    return events[-1]


def start(face, token, name="python3"):
    return http("POST", face + "/api/kernels", token, {"name": name})


def forge(token, **changes):
    body, mac = token[len(PREFIX) :].split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    return PREFIX + base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode() + "." + mac


def test_a_launch_streams_binderhubs_events_and_its_token_runs_code_through_the_face(node, face):
    status, headers, events = launch(node)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream"), headers
    assert [e["phase"] for e in events] == ["built", "launching", "ready"], events
    assert all(e["message"] for e in events)
    got = events[-1]
    assert got["url"] == face + "/" and got["token"].startswith(PREFIX) and got["image"] == "cellserver/python3"
    token = got["token"]

    status, kernel = start(face, token)
    assert status == 201, kernel
    channels = Channels("ws{}api/kernels/{}/channels?token={}".format(got["url"][4:], kernel["id"], token))
    try:
        channels.kernel_info(timeout=60)
        reply, iopub = channels.execute("print(6 * 7)")
        assert reply["status"] == "ok" and stream_text(iopub) == "42\n", (reply, iopub)
    finally:
        channels.close()
    # Its kernels are listed to it (thebe's saved sessions check the listing), and to nobody else.
    assert [k["id"] for k in http("GET", face + "/api/kernels", token)[1]] == [kernel["id"]]
    assert http("GET", face + "/api/kernels", None)[1] == []
    # Its id alone reaches it, as an anonymous kernel's does: thebe reusing a saved Binder session opens the
    # channels WebSocket without the token.
    channels = Channels("ws{}api/kernels/{}/channels".format(got["url"][4:], kernel["id"]))
    try:
        reply, iopub = channels.execute("print(7 * 7)")
        assert reply["status"] == "ok" and stream_text(iopub) == "49\n", (reply, iopub)
    finally:
        channels.close()
    other = ready(node)["token"]
    assert http("GET", face + "/api/kernels", other)[1] == []
    status, body = http("GET", face + "/api/kernels/" + kernel["id"], other)
    assert status == 404 and body["message"], body
    assert http("DELETE", face + "/api/kernels/" + kernel["id"], token)[0] == 204


def test_a_repo_gets_the_kernelspec_the_config_names_and_a_token_starts_no_other(node, face):
    got = ready(node, "gist/someone/0123abcd")
    assert got["kernel_name"] == "python3" and got["ref"] == "HEAD"
    status, body = start(face, got["token"], "sagemath")
    assert status == 403 and "starts 'python3' kernels only, not 'sagemath'" in body["message"], (status, body)


@pytest.mark.parametrize(
    "path",
    [
        "gh/owner/repo/feature/branch",
        "gl/group%2Fproject/main",
        "git/https%3A%2F%2Fexample.org%2Fr.git/HEAD",
        "zenodo/10.5281/zenodo.3242074",
        "figshare/10.6084/m9.figshare.9782777.v1",
        "hydroshare/b8f6eae9d89241cf8b5904033460af61",
        "dataverse/10.7910/DVN/TJCLKP",
        "ckan/https%3A%2F%2Fdemo.ckan.org/dataset-1",
    ],
)
def test_every_binderhub_provider_launches(node, face, path):
    assert ready(node, path)["url"] == face + "/"


def test_forged_altered_expired_and_made_up_tokens_are_refused_with_a_message(node, face):
    token = ready(node)["token"]
    for bad in (
        forge(token, k="sagemath"),
        forge(token, x=2**40),
        forge(token, l="0" * 32),
        token[:-3],
        PREFIX + "e30.AAAA",
    ):
        status, body = start(face, bad)
        assert status == 401 and "not valid here" in body["message"], (bad, status, body)
        status, body = http("GET", face + "/api/kernels", bad)
        assert status == 401, (status, body)
    # A token the node's own key signed, expired: the node keys its tokens as documented (node key, or the secret).
    past = Clock()
    past.advance(time.time() - 3600)
    _, expired = LaunchTokens(node_signing_key(node.cbdir, node.env()), past).mint("python3", 60)
    assert start(face, expired)[0] == 401
    status, body = http("GET", face + "/api/kernels", expired)
    assert status == 401 and "expired at" in body["message"] and "launch again" in body["message"], body
    # The same key minting a live token is accepted: the refusal above was the expiry.
    _, live = LaunchTokens(node_signing_key(node.cbdir, node.env())).mint("python3", 60)
    assert http("GET", face + "/api/kernels", live) == (200, [])
    # On the channels WebSocket too.
    with pytest.raises(Exception) as refused:
        Channels(
            "ws{}/api/kernels/{}/channels?token={}".format(face[4:], "0" * 32, forge(token, k="sagemath")), timeout=10
        )
    assert "401" in str(refused.value), refused.value


def test_cors_on_the_stream_and_its_errors(node):
    origin = {"Origin": "https://book.example.org"}
    status, headers, events = launch(node, headers=origin)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*" and events[-1]["phase"] == "ready"
    for path, code, words in (
        ("bitbucket/o/r/main", 404, "no provider 'bitbucket' here; providers: ckan, dataverse"),
        ("gh/owner/repo", 400, "a gh spec has the form gh/<user>/<repo>/<ref>"),
        ("", 404, "launch with GET /build/<provider>/<spec>"),
    ):
        status, headers, body = launch(node, path, headers=origin)
        assert status == code and words in body["message"], (path, status, body)
        assert headers["Access-Control-Allow-Origin"] == "*", headers
    request = urllib.request.Request(
        "http://127.0.0.1:{}/build/gh/o/r/main".format(node.port),
        method="OPTIONS",
        headers=dict(origin, **{"Access-Control-Request-Method": "GET"}),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == "*"


def capped(config):
    """The browser role's per-address kernel cap back (3), and a repos pattern for Sage repositories."""
    for worker in config["workers"]:
        if worker["type"] == "container":
            worker["components"][0]["extra"]["roles"]["browser"]["max_kernels_per_address"] = 3
        for transport in worker.get("transports", []):
            if "build" in transport.get("paths", {}):
                transport["paths"]["build"]["extra"]["repos"] = {"gh/sagemath/*": "sagemath"}


#: what the nodes behind one front share (docs/api.md): their launch tokens' key
SHARED_SECRET = "launch-secret-" + os.urandom(8).hex()


@pytest.fixture(scope="module")
def capped_node(tmp_path_factory):
    """A node of its own (the shared one lifts the quotas per address for the suite), with CELL_LAUNCH_SECRET."""
    node = Node(tmp_path_factory.mktemp("binder-capped"), edit=capped, env={"CELL_LAUNCH_SECRET": SHARED_SECRET})
    node.start()
    yield node
    node.stop()


def test_nodes_sharing_the_launch_secret_accept_each_others_tokens_and_no_other_nodes(
    capped_node, node, face, tmp_path_factory
):
    """Behind one front a page's launch and its next requests may reach different nodes: a token minted by one
    node with CELL_LAUNCH_SECRET works on another with the same secret; one keyed by a node key does not."""
    twin = Node(tmp_path_factory.mktemp("binder-twin"), env={"CELL_LAUNCH_SECRET": SHARED_SECRET})
    twin.start()
    try:
        twin_face = "http://127.0.0.1:{}/jupyter".format(twin.port)
        token = ready(capped_node)["token"]
        status, kernel = start(twin_face, token)
        assert status == 201, kernel
        assert [k["id"] for k in http("GET", twin_face + "/api/kernels", token)[1]] == [kernel["id"]]
        assert http("DELETE", twin_face + "/api/kernels/" + kernel["id"], token)[0] == 204
        status, body = http("GET", twin_face + "/api/kernels", ready(node)["token"])
        assert status == 401 and "not valid here" in body["message"], (status, body)
        status, body = http("GET", face + "/api/kernels", token)
        assert status == 401 and "not valid here" in body["message"], (status, body)
    finally:
        twin.stop()


def test_a_stranger_launching_in_a_loop_gets_tokens_of_the_same_worth(capped_node):
    """Launches keep nothing and start nothing: two hundred give two hundred tokens, and the kernels their tokens
    start are counted under the one client address, whose cap (3 here) holds across launches."""
    node = capped_node
    face = "http://127.0.0.1:{}/jupyter".format(node.port)
    tokens = [ready(node)["token"] for _ in range(200)]
    assert len(set(tokens)) == 200
    started, refused = [], []
    for token in tokens[:5]:
        status, body = start(face, token)
        (started if status == 201 else refused).append((token, status, body))
    try:
        assert len(started) == 3, (started, refused)
        assert [status for _, status, _ in refused] == [403, 403], refused
        assert all(body["message"] for _, _, body in refused), refused
    finally:
        for token, _, kernel in started:
            http("DELETE", face + "/api/kernels/" + kernel["id"], token)


def test_the_configured_repos_pattern_gives_its_kernelspec(capped_node):
    got = ready(capped_node, "gh/SageMath/some-book/main")
    assert got["kernel_name"] == "sagemath" and got["image"] == "cellserver/sagemath", got
    assert ready(capped_node, "gh/someone/else/main")["kernel_name"] == "python3"
