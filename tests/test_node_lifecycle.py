"""What admins see: the config checks, and stopping a node leaves nothing behind."""

import os
import signal
import subprocess

import psutil
import pytest_twisted

from tests.helpers import call, start_kernel
from tests.node import VENV_BIN, Node, processes_under
from tests.wamp_client import connect


def test_crossbar_check_accepts_the_config(tmp_path):
    node = Node(tmp_path)
    result = subprocess.run(
        [os.path.join(VENV_BIN, "crossbar"), "check", "--cbdir", node.cbdir],
        env=node.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration looks good" in result.stdout


def _descendants(pid):
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _wait_gone(pids, seconds):
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass  # already gone
    gone, alive = psutil.wait_procs(processes, timeout=seconds)
    return {p.pid for p in alive}


async def _kernel_pids(node, n=2):
    session = await connect(node.url)
    pids = []
    for _ in range(n):
        kernel_id = await start_kernel(session)
        result = await call(
            session, kernel_id, "execute", "import os, subprocess; p = subprocess.Popen(['sleep', '600']); os.getpid()"
        )
        pids.append(int(result["outputs"][0]["data"]["text/plain"]))
    return session, pids


@pytest_twisted.ensureDeferred
async def test_sigint_stops_everything_kernels_included(tmp_path):
    node = Node(tmp_path).start()
    try:
        session, kernel_pids = await _kernel_pids(node)
        status = await session.call("cell.status")
        await session.call("cell.execute", "1+1")  # the one-shot template's cgroups too
        everything = _descendants(node.proc.pid)
        assert set(kernel_pids) <= everything
        node.stop()
        assert node.proc.returncode is not None
        assert _wait_gone(everything, 10) == set(), "processes outlived the node"
        if os.geteuid() == 0:  # its memory cgroups (one root per spawner and uid range) go with it
            first = status["spawners"][0]["sandbox"]["uids"][0]
            root = "/sys/fs/cgroup/memory/cellserver-local-{}".format(first)
            assert not os.path.exists(root), os.listdir(root)
    finally:
        node.stop()


@pytest_twisted.ensureDeferred
async def test_sigkilled_spawner_takes_its_kernels_with_it(tmp_path):
    node = Node(tmp_path).start()
    try:
        session, kernel_pids = await _kernel_pids(node)
        spawner = processes_under(node.proc.pid, "components.kernel_spawner")[0]
        doomed = _descendants(spawner.pid)
        assert set(kernel_pids) <= doomed
        os.kill(spawner.pid, signal.SIGKILL)
        assert _wait_gone(doomed, 10) == set(), "kernels outlived their SIGKILLed spawner"
    finally:
        node.stop()


def test_the_start_up_log_has_no_traceback(node):
    """What an admin reads first: the node's log up to the point where it serves, free of tracebacks."""
    log = node.log()
    ready = max(log.index("spawner local joined"), log.index("session router ready"))
    startup = log[:ready]
    assert "Traceback" not in startup, startup[
        max(0, startup.index("Traceback") - 500) : startup.index("Traceback") + 1500
    ]
