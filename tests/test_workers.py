"""A second worker host: a spawner joining over TCP with its own WAMP-CRA credentials."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from tests.helpers import call, start_kernel
from tests.node import ROOT, SUITE_MAX_KERNELS, Node
from tests.wamp_client import Recorder, connect, within

SECRET_ENV = "CELL_SPAWNER_W2_SECRET"


def allow_w2(config):
    for worker in config["workers"]:
        if worker["type"] == "container":
            worker["components"][0]["extra"]["spawners"] = {"w2": SECRET_ENV}


def start_w2(node):
    """The second worker host's spawner, joining over TCP as principal w2, its settings in a file (as deployed)."""
    log = open(os.path.join(node.dir, "w2.log"), "ab")
    settings = os.path.join(node.dir, "w2.json")
    with open(settings, "w") as f:
        # as much room as the local spawner, so that placement alternates between the two
        json.dump({"pool_size": 1, "max_kernels": SUITE_MAX_KERNELS}, f)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "components.kernel_spawner",
            "--router",
            node.url,
            "--id",
            "w2",
            "--secret-env",
            SECRET_ENV,
            "--config-file",
            settings,
        ],
        cwd=ROOT,
        env=dict(node.env()),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    os.environ[SECRET_ENV] = "w2-" + os.urandom(8).hex()
    node = Node(tmp_path_factory.mktemp("workers"), edit=allow_w2).start()
    workers = [start_w2(node)]
    yield node, workers
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
    node.stop()
    del os.environ[SECRET_ENV]


async def wait_for_spawners(session, ids, seconds=60, warm=False):
    """Until exactly C{ids} are in cell.status (and, if C{warm}, each holds a ready kernel for instant starts:
    a spawner joins once its fork master is ready, and starts go where a kernel is ready first)."""
    for _ in range(int(seconds * 10)):
        status = await session.call("cell.status")
        if sorted(s["id"] for s in status["spawners"]) == sorted(ids) and (
            not warm or all(s["held"] > 0 for s in status["spawners"])
        ):
            return status
        await task.deferLater(reactor, 0.1, lambda: None)  # polling the public status, with a deadline
    raise AssertionError("spawners {} did not show up in cell.status: {}".format(ids, status))


@pytest_twisted.ensureDeferred
async def test_remote_spawner_joins_takes_work_and_its_loss_is_reported(two_workers):
    node, workers = two_workers
    worker = workers[0]
    session = await connect(node.url)
    await wait_for_spawners(session, ["local", "w2"], warm=True)
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
    pending = {k: session.call("cell.kernel.{}.execute".format(k), "import time; time.sleep(120)") for k in kernels}
    failures = {}
    for kernel_id, d in pending.items():
        d.addErrback(lambda f, k=kernel_id: failures.setdefault(k, f.value))
    await events[kernels[0]].wait_for(lambda e: e["content"].get("execution_state") == "busy", seconds=5)
    await events[kernels[1]].wait_for(lambda e: e["content"].get("execution_state") == "busy", seconds=5)
    worker.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    worker.wait(10)
    dead = []
    for kernel_id, recorder in events.items():
        try:
            event = await recorder.wait_for(
                lambda e: e["content"].get("execution_state") == "dead",
                seconds=max(0.1, 5 - (time.monotonic() - killed_at)),
            )
            dead.append((kernel_id, event["content"]["reason"]))
        except AssertionError:
            pass
    assert len(dead) == 1 and "w2" in dead[0][1], dead
    lost = dead[0][0]
    await within(
        pending[lost], max(0.1, 5 - (time.monotonic() - killed_at)), "the pending call on the killed worker failing"
    )
    assert failures[lost].error == "cell.error.kernel_died" and "went away" in failures[lost].args[0], failures[lost]
    await wait_for_spawners(session, ["local"], seconds=10)
    survivor = next(k for k in kernels if k != lost)
    assert survivor not in failures, "the other worker's call is still running"
    await session.call("cell.kernel.{}.interrupt".format(survivor))
    interrupted = await within(pending[survivor], 10)
    assert interrupted["status"] == "error" and interrupted["ename"] == "KeyboardInterrupt"
    result = await call(session, survivor, "execute", "'alive'")
    assert result["outputs"][0]["data"]["text/plain"] == "'alive'"
    newcomer = await start_kernel(session)
    assert (await session.call("cell.status"))["spawners"][0]["kernels"] == 2, "new kernels go to the remaining spawner"

    workers.append(start_w2(node))  # the host comes back
    await wait_for_spawners(session, ["local", "w2"], warm=True)
    again = await start_kernel(session)
    per_spawner = {s["id"]: s["kernels"] for s in (await session.call("cell.status"))["spawners"]}
    assert per_spawner == {"local": 2, "w2": 1}, "the restarted spawner takes work again: {}".format(per_spawner)
    result = await call(session, again, "execute", "import os; os.getppid()")
    assert result["outputs"][0]["data"]["text/plain"] not in hosts.values(), "a kernel of the new w2 process"
    for kernel_id in (survivor, newcomer, again):
        await session.call("cell.kernel.{}.shutdown".format(kernel_id))
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
