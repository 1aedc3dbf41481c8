"""``make cluster`` for real: HAProxy (TLS) in front of two nodes sharing a PostgreSQL, attacked as production is.

The fixture starts the same L{deploy.cluster.Cluster} that ``make cluster``
starts: Debian's HAProxy and PostgreSQL, two ``crossbar start`` nodes with
their spawners and kernels.  Clients connect through the front over TLS,
trusting the certificate made at start; ``Cookie: CELLNODE=<node>`` pins a
client to a node, as the front's own cookie does for a browser.
"""

import http.client
import json
import ssl
import urllib.error
import urllib.request
import uuid

import psutil
import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, reactor, task, threads

from deploy.cluster import Cluster
from tests.helpers import call, expect_error, start_kernel
from tests.node import free_port
from tests.test_metrics import METRICS_SPELLINGS
from tests.wamp_client import connect, within

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"), free_port())
    c.start()
    yield c
    c.stop()


def join(cluster, node=None, **kwargs):
    """A session through the front; C{node} pins it there (the front's cookie)."""
    headers = {"Cookie": "CELLNODE=" + node} if node else None
    return connect(cluster.ws_url, trust=cluster.crt, headers=headers, **kwargs)


def node_cookie(session):
    """The node the front chose for this session, from its Set-Cookie (None if it kept the client's)."""
    cookie = session._transport.http_headers.get("set-cookie", "")
    return cookie.split(";")[0].split("=", 1)[1] if cookie.startswith("CELLNODE=") else None


async def serving_node(session):
    return (await session.call("cell.status"))["spawners"][0]["id"]


def drop(session):
    """The connection goes away without a goodbye (a closed laptop)."""
    session._transport.transport.abortConnection()
    return session.config.extra["left"]


def fetch(url, cafile=None):
    import ssl

    context = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(url, timeout=15, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest_twisted.ensureDeferred
async def test_a_client_through_the_front_over_tls_runs_code(cluster):
    session = await join(cluster)
    assert node_cookie(session) in cluster.nodes, "the front names the node that served us"
    kernel_id = await start_kernel(session)
    result = await call(session, kernel_id, "execute", "print(6 * 7)")
    assert result["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "42\n"}]
    oneshot = await within(session.call("cell.execute", "print('once')"), 30, "cell.execute")
    assert oneshot["outputs"][0]["text"] == "once\n"
    status, page = await threads.deferToThread(fetch, cluster.url, cluster.crt)
    assert status == 200 and "cellserver · run Python in your browser" in page
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_permalink_saved_through_one_node_opens_through_the_other(cluster):
    first, second = await join(cluster, "node1"), await join(cluster, "node2")
    assert (await serving_node(first), await serving_node(second)) == ("node1", "node2")
    saved = await first.call("cell.permalink.save", "print('shared')")
    assert await second.call("cell.permalink.get", saved["id"]) == {"code": "print('shared')", "language": "python"}
    first.leave()
    second.leave()


@pytest_twisted.ensureDeferred
async def test_a_reconnecting_client_resumes_its_kernel_on_the_node_that_holds_it(cluster):
    session = await join(cluster)
    node = node_cookie(session)
    kernel = await session.call("cell.kernel.start")
    await call(session, kernel["kernel_id"], "execute", "x = 5")
    for _ in range(3):  # on each round the front could have picked the other node, were it not sticky
        await drop(session)
        session = await join(cluster, node)
        assert await serving_node(session) == node
        await session.call("cell.kernel.resume", kernel["kernel_id"], kernel["resume_token"])
        result = await call(session, kernel["kernel_id"], "execute", "x")
        assert result["outputs"][0]["data"]["text/plain"] == "5"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_postgresql_restart_gives_clear_errors_then_recovers_by_itself(cluster):
    first, second = await join(cluster, "node1"), await join(cluster, "node2")
    before = await first.call("cell.permalink.save", "before = 1")
    await threads.deferToThread(cluster.postgres.stop)
    started = reactor.seconds()
    error = await expect_error(first.call("cell.permalink.save", "during = 1"), "cell.error.unavailable")
    assert reactor.seconds() - started < 10, "an outage is reported within the connect timeout"
    assert "unavailable" in error.error_message()
    assert (await second.call("cell.status"))["spawners"], "the nodes stay up"
    await threads.deferToThread(cluster.postgres.start)
    after = await second.call("cell.permalink.save", "after = 1")
    assert (await first.call("cell.permalink.get", after["id"]))["code"] == "after = 1"
    assert (await second.call("cell.permalink.get", before["id"]))["code"] == "before = 1"
    first.leave()
    second.leave()


@pytest_twisted.ensureDeferred
async def test_the_front_does_not_serve_metrics_but_each_node_does(cluster):
    status, _ = await threads.deferToThread(fetch, cluster.url + "metrics", cluster.crt)
    assert status == 403
    for name, node in cluster.nodes.items():
        status, text = await threads.deferToThread(fetch, "http://127.0.0.1:{}/metrics".format(node.port))
        assert status == 200
        spawners = {
            sample.labels.get("spawner")
            for family in text_string_to_metric_families(text)
            if family.name == "cell_kernel_capacity"
            for sample in family.samples
        }
        assert spawners == {name}


def through_front(cluster, method, path, source="127.0.0.1", node=None, body=None):
    """(status, body text) of a request through the front (TLS) with C{path} exactly as written, from the local
    address C{source} (another loopback address is another client); C{node} pins it there (the front's cookie)."""
    context = ssl.create_default_context(cafile=cluster.crt)
    connection = http.client.HTTPSConnection(
        "localhost", cluster.port, timeout=60, context=context, source_address=(source, 0)
    )
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if node:
        headers["Cookie"] = "CELLNODE=" + node
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


#: HAProxy's own answer to a request its rules deny (the nodes answer differently)
FRONT_DENIED = "Request forbidden by administrative rules"


@pytest_twisted.ensureDeferred
async def test_no_spelling_of_metrics_passes_the_front(cluster):
    """The front normalizes paths before its rules: /%6detrics, /./metrics, /METRICS, ... are refused by HAProxy
    itself (each node would refuse a relayed request too: tests/test_metrics.py)."""
    absolute = "https://localhost:{}/metrics".format(cluster.port)
    for path in METRICS_SPELLINGS + (absolute, "/%2e%2e/%6d%65trics/"):
        status, body = await threads.deferToThread(through_front, cluster, "GET", path)
        assert status == 403 and FRONT_DENIED in body, (path, status, body[:200])
    status, body = await threads.deferToThread(through_front, cluster, "GET", "/health")
    assert status == 200 and body.startswith("ok"), "the front still passes what it should"


@pytest_twisted.ensureDeferred
async def test_anonymous_jupyter_clients_behind_the_front_are_apart(cluster):
    """Two anonymous Jupyter clients at 127.0.0.2 and 127.0.0.3, both through the front (the nodes see HAProxy's
    127.0.0.1): neither sees the other's kernels, and each address has its own share of the quotas."""

    def face(method, path, source, body=None):
        return threads.deferToThread(through_front, cluster, method, "/jupyter" + path, source, "node1", body)

    start = b'{"name": "python3"}'
    status, text = await face("POST", "/api/kernels", "127.0.0.2", start)
    assert status == 201, text
    alices = [json.loads(text)["id"]]
    status, text = await face("GET", "/api/kernels", "127.0.0.3")
    assert status == 200 and json.loads(text) == [], "Bob lists nothing"
    for guess in (alices[0][:-1] + ("0" if alices[0][-1] != "0" else "1"), str(uuid.uuid4())):
        for method, path in (("GET", "/api/kernels/" + guess), ("DELETE", "/api/kernels/" + guess)):
            assert (await face(method, path, "127.0.0.3"))[0] == 404, (method, path)
    # Alice's address takes its share (the browser role's 4 kernels); Bob's, behind the same front, is untouched.
    while True:
        status, text = await face("POST", "/api/kernels", "127.0.0.2", start)
        if status != 201:
            break
        alices.append(json.loads(text)["id"])
        assert len(alices) <= 8, "the per-address quota held"
    assert status == 403 and len(alices) == 4, (status, text, len(alices))
    status, text = await face("POST", "/api/kernels", "127.0.0.3", start)
    assert status == 201, "another address is served at once: " + text
    bobs = json.loads(text)["id"]
    assert (await face("GET", "/api/kernels/" + alices[0], "127.0.0.2"))[0] == 200, "Alice's kernel is untouched"
    for kernel_id, source in [(k, "127.0.0.2") for k in alices] + [(bobs, "127.0.0.3")]:
        assert (await face("DELETE", "/api/kernels/" + kernel_id, source))[0] == 204


# (Before the test that kills node2: this one needs both nodes.)
def test_a_binder_launch_token_of_one_node_starts_kernels_on_the_other(cluster):
    """The nodes share CELL_LAUNCH_SECRET (deploy.cluster): a page whose launch one node answered may reach the
    other behind the front (thebe's requests carry no cookie cross-origin), and a forged token is refused there."""
    from tests.jupyter_clients import http

    node1, node2 = cluster.nodes["node1"], cluster.nodes["node2"]
    request = urllib.request.Request("http://127.0.0.1:{}/build/gh/owner/repo/main".format(node1.port))
    with urllib.request.urlopen(request, timeout=30) as response:
        events = [
            json.loads(line[len("data: ") :])
            for line in response.read().decode().splitlines()
            if line.startswith("data: ")
        ]
    ready = events[-1]
    assert ready["phase"] == "ready", events
    face2 = "http://127.0.0.1:{}/jupyter".format(node2.port)
    status, model = http("POST", face2 + "/api/kernels", ready["token"], {"name": "python3"})
    assert status == 201, (status, model)
    assert http("DELETE", face2 + "/api/kernels/" + model["id"], ready["token"])[0] == 204
    status, _ = http(
        "POST",
        face2 + "/api/kernels",
        ready["token"][:-1] + ("A" if ready["token"][-1] != "A" else "B"),
        {"name": "python3"},
    )
    assert status == 401


async def keep_working(session, kernel_id, stop, failures, rounds):
    while not stop.called:
        try:
            result = await call(session, kernel_id, "execute", "1+1", deadline=15)
            assert result["status"] == "ok"
            rounds.append(1)
        except Exception as exc:  # noqa: BLE001 (whatever breaks the loop is what a user would notice)
            failures.append(exc)
            return


@pytest_twisted.ensureDeferred
async def test_a_node_killed_under_load_leaves_the_other_serving(cluster):
    """Last: it kills node2 (every process of it, kernels included, as a machine that dies)."""
    survivors = [await join(cluster, "node1") for _ in range(3)]
    victims = [await join(cluster, "node2") for _ in range(2)]
    lost_kernel = await victims[0].call("cell.kernel.start")
    stop, failures, rounds = defer.Deferred(), [], []
    workers = []
    for session in survivors:
        kernel_id = await start_kernel(session)
        workers.append(defer.ensureDeferred(keep_working(session, kernel_id, stop, failures, rounds)))
    for session in victims[1:]:
        kernel_id = await start_kernel(session)
        defer.ensureDeferred(keep_working(session, kernel_id, defer.Deferred(), [], []))

    node2 = cluster.nodes["node2"]
    tree = [psutil.Process(node2.proc.pid)] + psutil.Process(node2.proc.pid).children(recursive=True)
    kernels = [p for p in tree if "components.child" in " ".join(p.cmdline())]
    assert kernels, "node2 runs kernels when it dies"
    worked_before = len(rounds)
    for process in tree:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    killed = reactor.seconds()

    while cluster.front.servers().get("node2") != "DOWN":  # poll: HAProxy's health checks
        assert reactor.seconds() - killed < 10, "the front still routes to the dead node: {}".format(
            cluster.front.servers()
        )
        await task.deferLater(reactor, 0.2, lambda: None)  # poll
    noticed = reactor.seconds() - killed
    assert cluster.front.servers()["node1"] == "UP"

    for _ in range(4):  # new sessions go to the survivor
        newcomer = await join(cluster)
        assert await serving_node(newcomer) == "node1"
        assert (await within(newcomer.call("cell.execute", "1"), 30, "cell.execute"))["status"] == "ok"
        newcomer.leave()
    # A page whose cookie names the dead node lands on the survivor: its kernel is gone, said clearly.
    returning = await join(cluster, "node2")
    assert await serving_node(returning) == "node1"
    await expect_error(
        returning.call("cell.kernel.resume", lost_kernel["kernel_id"], lost_kernel["resume_token"]),
        "cell.error.not_found",
    )
    fresh = await start_kernel(returning)
    assert (await call(returning, fresh, "execute", "1"))["status"] == "ok"
    returning.leave()

    worked_during = len(rounds) - worked_before
    stop.callback(None)
    await defer.DeferredList(workers)
    assert failures == [], "users on the surviving node noticed: {}".format(failures)
    assert worked_during > 10, "the survivors kept working ({} executions)".format(worked_during)
    assert noticed < 10
    for session in survivors:
        session.leave()
