"""A second worker host: a spawner joining over TCP with its own WAMP-CRA credentials."""

import os
import signal
import subprocess
import sys

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from tests.node import Node, ROOT
from tests.test_kernels import call, start_kernel
from tests.wamp_client import Recorder, connect, within

SECRET_ENV = "CELL_SPAWNER_W2_SECRET"


def allow_w2(config):
    for worker in config["workers"]:
        if worker["type"] == "container":
            worker["components"][0]["extra"]["spawners"] = {"w2": SECRET_ENV}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    os.environ[SECRET_ENV] = "w2-" + os.urandom(8).hex()
    node = Node(tmp_path_factory.mktemp("workers"), edit=allow_w2).start()
    log = open(os.path.join(node.dir, "w2.log"), "wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "components.kernel_spawner", "--router", node.url, "--id", "w2", "--secret-env", SECRET_ENV, "--config", '{"pool_size": 1, "max_kernels": 32}'],
        cwd=ROOT, env=dict(node.env()), stdout=log, stderr=subprocess.STDOUT,
    )
    yield node, worker
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    node.stop()
    del os.environ[SECRET_ENV]


async def wait_for_spawners(session, ids, seconds=60):
    for _ in range(int(seconds * 10)):
        status = await session.call("cell.status")
        if sorted(s["id"] for s in status["spawners"]) == sorted(ids):
            return status
        await task.deferLater(reactor, 0.1, lambda: None)  # polling the public status, with a deadline
    raise AssertionError("spawners {} did not show up in cell.status: {}".format(ids, status))


@pytest_twisted.ensureDeferred
async def test_remote_spawner_joins_takes_work_and_its_loss_is_reported(two_workers):
    node, worker = two_workers
    session = await connect(node.url)
    await wait_for_spawners(session, ["local", "w2"])
    kernels = [await start_kernel(session) for _ in range(2)]
    status = await session.call("cell.status")
    per_spawner = {s["id"]: s["kernels"] for s in status["spawners"]}
    assert per_spawner == {"local": 1, "w2": 1}, "a new kernel goes to the spawner with the most free capacity"
    hosts = {}
    for kernel_id in kernels:
        result = await call(session, kernel_id, "execute", "import os; os.getppid()")
        hosts[kernel_id] = result["outputs"][0]["data"]["text/plain"]
    events = {k: Recorder() for k in kernels}
    for kernel_id, recorder in events.items():
        await session.subscribe(recorder, "cell.kernel.{}.iopub".format(kernel_id))
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    dead = []
    for kernel_id, recorder in events.items():
        try:
            event = await recorder.wait_for(lambda e: e["content"].get("execution_state") == "dead", seconds=5)
            dead.append((kernel_id, event["content"]["reason"]))
        except AssertionError:
            pass
    assert len(dead) == 1 and "w2" in dead[0][1], dead
    await wait_for_spawners(session, ["local"], seconds=10)
    survivor = next(k for k in kernels if k != dead[0][0])
    result = await call(session, survivor, "execute", "'alive'")
    assert result["outputs"][0]["data"]["text/plain"] == "'alive'"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_spawner_with_a_wrong_secret_is_refused(two_workers):
    node, _ = two_workers
    try:
        await connect(node.url, authid="w2", secret="nope")
    except Exception as exc:
        assert "not_authorized" in str(exc) or "authentication" in str(exc) or "wamp.error" in str(exc), exc
    else:
        raise AssertionError("a spawner principal with a wrong secret joined")
