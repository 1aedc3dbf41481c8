"""Kernels outlive a lost connection for a grace period; restarts of the session
router or the whole router lose no kernel (real nodes, real kernels)."""

import json
import os
import signal
import subprocess
import sys

import psutil
import pytest
import pytest_twisted

from tests.helpers import call, expect_error, holds, kernel_pids, until
from tests.node import ROOT, Node, processes_under
from tests.remote_spawner import remote_spawner_node, router_back
from tests.wamp_client import Recorder, connect, within

GRACE_S = 3


def short_grace(config):
    for worker in config["workers"]:
        if worker["type"] == "container":
            worker["components"][0]["extra"]["resume_grace_s"] = GRACE_S


@pytest.fixture(scope="module")
def grace_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("grace"), edit=short_grace).start()
    yield node
    node.stop()


async def start(session):
    result = await within(session.call("cell.kernel.start"), 30, "cell.kernel.start")
    assert len(result["resume_token"]) >= 32
    return result


@pytest_twisted.ensureDeferred
async def test_a_new_session_resumes_a_kernel_with_its_token(grace_node):
    first = await connect(grace_node.url)
    kernel = await start(first)
    await call(first, kernel["kernel_id"], "execute", "x = 42")
    first.leave()
    await first.config.extra["left"]
    second = await connect(grace_node.url)
    await expect_error(second.call("cell.kernel.resume", kernel["kernel_id"], "not-the-token"), "cell.error.not_found")
    resumed = await second.call("cell.kernel.resume", kernel["kernel_id"], kernel["resume_token"])
    assert resumed == {"kernel_id": kernel["kernel_id"], "iopub": kernel["iopub"]}
    events = Recorder()
    await second.subscribe(events, kernel["iopub"])
    result = await call(second, kernel["kernel_id"], "execute", "x")
    assert result["outputs"][0]["data"]["text/plain"] == "42"
    await events.wait_for(lambda e: e["header"]["msg_type"] == "execute_result")
    pid = int(
        (await call(second, kernel["kernel_id"], "execute", "import os; os.getpid()"))["outputs"][0]["data"][
            "text/plain"
        ]
    )

    async def alive():
        return pid in kernel_pids()

    await holds(alive, GRACE_S + 1, "the resumed kernel's process")
    result = await call(second, kernel["kernel_id"], "execute", "x + 1")
    assert result["outputs"][0]["data"]["text/plain"] == "43", (
        "a resumed kernel is not shut down by the old grace timer"
    )
    second.leave()


@pytest_twisted.ensureDeferred
async def test_a_kernel_not_resumed_within_the_grace_period_is_gone(grace_node):
    session = await connect(grace_node.url)
    kernel = await start(session)
    result = await call(session, kernel["kernel_id"], "execute", "import os; os.getpid()")
    pid = int(result["outputs"][0]["data"]["text/plain"])
    assert pid in kernel_pids()
    session.leave()
    await session.config.extra["left"]

    async def gone():
        return pid not in kernel_pids()

    await until(gone, GRACE_S + 10, "the kernel process ending")
    other = await connect(grace_node.url)
    await expect_error(
        other.call("cell.kernel.resume", kernel["kernel_id"], kernel["resume_token"]), "cell.error.not_found"
    )
    other.leave()


def _process(node, marker):
    return processes_under(node.proc.pid, marker)[0]


def external_session_router(config):
    short_grace(config)
    container = next(w for w in config["workers"] if w["type"] == "container")
    config["workers"].remove(container)
    config["_extra"] = container["components"][0]["extra"]


def run_session_router(node, extra, name):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "components.session_router",
            "--router",
            "unix:" + os.path.join(node.cbdir, "backend.sock"),
            "--extra",
            json.dumps(extra),
        ],
        cwd=ROOT,
        env=node.env(),
        stdout=open(os.path.join(node.dir, name + ".log"), "wb"),
        stderr=subprocess.STDOUT,
    )


@pytest_twisted.ensureDeferred
async def test_session_router_restart_keeps_kernels_and_their_owners(tmp_path):
    """The session router as its own process (python -m components.session_router), killed and replaced."""
    extras = {}

    def edit(config):
        external_session_router(config)
        extras.update(config.pop("_extra"))

    node = Node(tmp_path, edit=edit)
    routers = []
    try:
        node.start(ready=("spawner local joined",))
        routers.append(run_session_router(node, extras, "router1"))
        session = await connect(node.url)

        async def router_serving():
            try:
                status = await session.call("cell.status")
                return bool(status["spawners"])
            except Exception:
                return False

        await until(router_serving, 60, "the session router serving")
        kernel = await start(session)
        await call(session, kernel["kernel_id"], "execute", "y = 7")
        routers[0].send_signal(signal.SIGKILL)
        routers[0].wait(10)
        result = await call(session, kernel["kernel_id"], "execute", "y * 6")
        assert result["outputs"][0]["data"]["text/plain"] == "42", (
            "kernels keep working while the session router is away"
        )
        routers.append(run_session_router(node, extras, "router2"))

        async def kernel_known():
            try:
                status = await session.call("cell.status")
                return status["kernels"] == 1
            except Exception:
                return False

        await until(kernel_known, 60, "the new session router rebuilding its state")
        events = Recorder()
        await session.subscribe(events, kernel["iopub"])  # ownership was rebuilt from the spawner
        await call(session, kernel["kernel_id"], "execute", "print('after')")
        await events.wait_for(lambda e: e["header"]["msg_type"] == "stream")
        stranger = await connect(node.url)
        try:
            await stranger.subscribe(lambda *a: None, kernel["iopub"])
        except Exception as exc:
            assert "not_authorized" in str(exc)
        else:
            raise AssertionError("a stranger subscribed after the rebuild")
        stranger.leave()
        session.leave()
    finally:
        try:
            for i, router in enumerate(routers):
                stop_session_router(router, os.path.join(node.dir, "router{}.log".format(i + 1)))
        finally:
            node.stop()


def stop_session_router(router, log):
    """SIGINT, as an admin stops it; it must end (60 s: on a machine loaded far past its cores, once, 30 s did not
    suffice), else the failure shows the end of its log rather than a bare timeout."""
    if router.poll() is not None:
        return
    router.send_signal(signal.SIGINT)
    try:
        router.wait(60)
    except subprocess.TimeoutExpired:
        router.kill()
        with open(log, errors="replace") as f:
            tail = f.read()[-4000:]
        raise AssertionError("the session router did not end within 60 s of SIGINT; its log ends:\n" + tail) from None


@pytest_twisted.ensureDeferred
async def test_router_restart_loses_no_kernel_and_the_owner_resumes(tmp_path):
    async with remote_spawner_node(tmp_path) as (node, session):
        kernel = await start(session)
        result = await call(session, kernel["kernel_id"], "execute", "import os; z = 5; os.getpid()")
        pid = int(result["outputs"][0]["data"]["text/plain"])
        node.stop()
        await session.config.extra["left"]
        assert psutil.pid_exists(pid), "the kernel survives the router's absence"
        session = await router_back(node, kernel)
        result = await call(session, kernel["kernel_id"], "execute", "z * 2")
        assert result["outputs"][0]["data"]["text/plain"] == "10"
        session.leave()
