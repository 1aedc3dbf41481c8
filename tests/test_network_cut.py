"""A spawner on its own test host (a network namespace reached over a veth pair) loses its link mid-run."""

import os
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest
import pytest_twisted

from tests.helpers import call, until
from tests.node import ROOT, Node
from tests.wamp_client import Recorder, connect, within

HOST_IP, WORKER_IP = "10.77.0.1", "10.77.0.2"
SECRET_ENV = "CELL_SPAWNER_NS_SECRET"
#: the documented deadline (docs/scaling.md): 3 s WebSocket pings + 3 s to answer, on both ends
HEARTBEAT_DEADLINE_S = 10

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def test_host():
    """A network namespace with an address of its own, linked to this host by a veth pair."""
    name = "cell" + uuid.uuid4().hex[:8]
    host_if, ns_if = "vh" + name[4:], "vn" + name[4:]
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", name)
        sh("ip", "addr", "add", HOST_IP + "/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", name, "ip", "addr", "add", WORKER_IP + "/24", "dev", ns_if)
        sh("ip", "netns", "exec", name, "ip", "link", "set", ns_if, "up")
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name, host_if
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def only_the_remote_spawner(config):
    config["workers"] = [w for w in config["workers"] if w["type"] != "guest"]
    for worker in config["workers"]:
        if worker["type"] == "container":
            worker["components"][0]["extra"]["spawners"] = {"nsworker": SECRET_ENV}


@pytest_twisted.ensureDeferred
async def test_cut_link_declares_kernels_dead_and_they_never_come_back(tmp_path, test_host):
    netns, host_if = test_host
    os.environ[SECRET_ENV] = "ns-" + os.urandom(8).hex()
    node = Node(tmp_path, edit=only_the_remote_spawner)
    worker = None
    try:
        node.start(ready=("session router ready",))
        url = "ws://{}:{}/ws".format(HOST_IP, node.port)
        worker = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                netns,
                sys.executable,
                "-m",
                "components.kernel_spawner",
                "--router",
                url,
                "--id",
                "nsworker",
                "--secret-env",
                SECRET_ENV,
                "--config",
                '{"pool_size": 1}',
            ],
            cwd=ROOT,
            env=node.env(),
            stdout=open(os.path.join(node.dir, "nsworker.log"), "wb"),
            stderr=subprocess.STDOUT,
        )
        session = await connect(node.url)

        async def spawners(ids):
            status = await session.call("cell.status")
            return sorted(s["id"] for s in status["spawners"]) == ids

        await until(lambda: spawners(["nsworker"]), 60, "the worker joining over its veth link")
        kernel = await within(session.call("cell.kernel.start"), 30)
        result = await call(session, kernel["kernel_id"], "execute", "import os; os.getpid()")
        pid = int(result["outputs"][0]["data"]["text/plain"])
        events = Recorder()
        await session.subscribe(events, kernel["iopub"])
        pending = session.call("cell.kernel.{}.execute".format(kernel["kernel_id"]), "import time; time.sleep(120)")
        failures = []
        pending.addErrback(failures.append)

        sh("ip", "link", "set", host_if, "down")  # the cut
        cut_at = time.monotonic()
        dead = await events.wait_for(
            lambda e: e["content"].get("execution_state") == "dead",
            seconds=HEARTBEAT_DEADLINE_S,
            what="the dead event after the cut",
        )
        assert "nsworker" in dead["content"]["reason"]
        await within(
            pending,
            max(0.1, HEARTBEAT_DEADLINE_S - (time.monotonic() - cut_at)),
            "the pending execute failing within the heartbeat deadline",
        )
        assert failures and failures[0].value.error == "cell.error.kernel_died", failures
        assert "went away" in failures[0].value.args[0], failures[0].value.args
        await until(lambda: spawners([]), 5, "the worker leaving cell.status")
        assert psutil.pid_exists(pid), "cut off, not crashed: the kernel process still runs on its host"

        sh("ip", "link", "set", host_if, "up")  # the link returns
        await until(lambda: spawners(["nsworker"]), 60, "the worker rejoining")
        await until(lambda: _gone(pid), 15, "the declared-dead kernel being ended on its host")
        status = await session.call("cell.status")
        assert status["kernels"] == 0, "no ghost kernel came back"
        fresh = await within(session.call("cell.kernel.start"), 30)
        result = await call(session, fresh["kernel_id"], "execute", "1+1")
        assert result["outputs"][0]["data"]["text/plain"] == "2"
        session.leave()
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        node.stop()
        del os.environ[SECRET_ENV]


async def _gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
