"""The node's Prometheus page (/metrics) and health page (/health), scraped as Prometheus and HAProxy would."""

import os
import urllib.error
import urllib.request

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import threads

from tests.helpers import call, expect_error, start_kernel
from tests.node import SUITE_MAX_KERNELS
from tests.wamp_client import connect, within


def fetch(url):
    """(status, content type, body) of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, response.headers["content-type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["content-type"], exc.read().decode()


async def scrape(node):
    status, content_type, text = await threads.deferToThread(fetch, "http://127.0.0.1:{}/metrics".format(node.port))
    assert status == 200, text
    assert content_type.startswith("text/plain; version=0.0.4")
    return list(text_string_to_metric_families(text))


def value(families, sample_name, **labels):
    """The sum of the samples called C{sample_name} whose labels include C{labels} (0 when there is none)."""
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@pytest_twisted.ensureDeferred
async def test_the_metrics_move_with_what_users_do(node):
    before = await scrape(node)
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    assert (await call(session, kernel_id, "execute", "1+1"))["status"] == "ok"
    await within(session.call("cell.execute", "print(1)"), 30, "cell.execute")
    await expect_error(session.call("cell.kernel.{}.execute".format("0" * 32), "1"), "cell.error.not_found")
    await expect_error(call(session, kernel_id, "execute", 42), "cell.error.invalid_argument")
    flood = await call(session, kernel_id, "execute", "print('x' * (3 * 1024 * 1024))")
    assert any("output truncated" in o.get("text", "") for o in flood["outputs"])

    during = await scrape(node)
    assert value(during, "cell_kernels", state="idle", spawner="local") >= 1, "our kernel is handed out and idle"
    assert value(during, "cell_pool_ready", spawner="local", kernel="python3") == value(
        during, "cell_kernels", state="pool"
    )
    assert value(during, "cell_kernel_capacity", spawner="local") == SUITE_MAX_KERNELS
    assert value(during, "cell_sessions", role="browser") >= 1
    assert value(during, "cell_spawners") == 1

    doomed = await start_kernel(session)
    await expect_error(call(session, doomed, "execute", "import os; os._exit(3)"), "cell.error.kernel_died")
    await call(session, kernel_id, "shutdown")
    after = await scrape(node)

    def delta(sample_name, **labels):
        return value(after, sample_name, **labels) - value(before, sample_name, **labels)

    assert delta("cell_acquisitions_total", outcome="ok") == 2
    assert delta("cell_acquisition_seconds_count") == 2
    assert 0 < delta("cell_acquisition_seconds_sum") < 2 * 30
    assert delta("cell_oneshots_total", outcome="ok") == 1
    # 1+1, the invalid call never reached the kernel, the flood, the exit (answered by the kernel's death)
    assert delta("cell_execute_seconds_count", spawner="local") == 3
    assert delta("cell_errors_total", uri="cell.error.not_found", process="router") == 1
    assert delta("cell_errors_total", uri="cell.error.invalid_argument", spawner="local") == 1
    assert delta("cell_errors_total", uri="cell.error.kernel_died", spawner="local") == 1
    assert delta("cell_kernel_deaths_total", cause="exited", spawner="local") == 1
    assert delta("cell_kernel_deaths_total", cause="shutdown", spawner="local") == 1
    assert delta("cell_output_bytes_cut_total", spawner="local") > 1024 * 1024
    session.leave()


@pytest_twisted.ensureDeferred
async def test_the_health_page_says_the_node_can_take_kernels(node):
    status, _, body = await threads.deferToThread(fetch, "http://127.0.0.1:{}/health".format(node.port))
    assert status == 200 and body.startswith("ok: 1 spawner(s)"), body


@pytest.mark.skipif(os.geteuid() != 0, reason="kernels get their own network namespace as root (CI runs as root)")
@pytest_twisted.ensureDeferred
async def test_a_kernel_cannot_reach_the_metrics_page(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    code = (
        "import urllib.request\n"
        "try:\n"
        "    urllib.request.urlopen('http://127.0.0.1:{}/metrics', timeout=5).read()\n"
        "    print('REACHED')\n"
        "except Exception as exc:\n"
        "    print('refused:', type(exc).__name__, exc)\n"
    ).format(node.port)
    result = await call(session, kernel_id, "execute", code)
    text = "".join(o.get("text", "") for o in result["outputs"])
    assert text.startswith("refused:") and "REACHED" not in text, text
    session.leave()


#: spellings of /metrics a client may try (Twisted decodes each path segment, so some reach the page)
METRICS_SPELLINGS = (
    "/metrics",
    "/%6detrics",
    "/%6Detrics",
    "/%6D%65%74%72%69%63%73",
    "//metrics",
    "/./metrics",
    "/metrics/",
    "/metrics/x",
    "/METRICS",
    "/%2e/metrics",
    "/%2E%2E/metrics",
    "/health/../metrics",
    "/metrics;x",
    "/metrics?x",
)


def get_raw(port, path, source="127.0.0.1", headers=None):
    """(status, body) of a GET sent with C{path} exactly as written, from the local address C{source}."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


@pytest.fixture(scope="module")
def narrow_metrics_node(tmp_path_factory):
    """A node whose /metrics is for 127.0.0.1 alone: 127.0.0.2 is a peer it must refuse."""
    from tests.node import Node

    def narrow(config):
        config["workers"][0]["transports"][1]["paths"]["metrics"]["extra"]["allow"] = ["127.0.0.1/32"]

    node = Node(tmp_path_factory.mktemp("narrow-metrics"), edit=narrow).start()
    yield node
    node.stop()


def test_no_spelling_of_metrics_is_served_to_a_peer_not_allowed_nor_through_a_proxy(narrow_metrics_node):
    port = narrow_metrics_node.port
    served = [path for path in METRICS_SPELLINGS if "# HELP cell_" in get_raw(port, path)[1]]
    assert {"/metrics", "/%6detrics", "/metrics/", "/metrics?x"} <= set(served), "Twisted routes these to the page"
    for path in METRICS_SPELLINGS:
        status, body = get_raw(port, path, source="127.0.0.2")
        assert "cell_" not in body, (path, status)
        # A front on the node's host connects from loopback: a relayed request is not the front's own.
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP", "Via"):
            status, body = get_raw(port, path, headers={header: "198.51.100.7"})
            assert "cell_" not in body, (path, header, status)
    status, body = get_raw(port, "/health", headers={"X-Forwarded-For": "198.51.100.7"})
    assert status == 200, "the health page is for anyone, relayed or not"
