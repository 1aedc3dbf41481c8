"""What admins see: the config checks, and stopping a node leaves nothing behind."""

import os
import signal
import subprocess

import psutil
import pytest
import pytest_twisted

from tests.helpers import call, start_kernel
from tests.node import VENV_BIN, Node, processes_under, spawner_processes
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
        spawner = spawner_processes(node.proc.pid)[0]
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


@pytest_twisted.ensureDeferred
async def test_a_oneshots_daemon_does_not_outlive_a_node_stopped_just_after_its_template_died(tmp_path):
    """A one-shot leaves a daemon and its template is SIGKILLed mid-run (the daemon, reparented to init, is no
    child of anything of the node's); the node is stopped at once: the daemon goes with it."""
    from twisted.internet import defer, reactor, task

    node = Node(tmp_path).start()
    marker = "outlive-" + os.urandom(6).hex()
    session = await connect(node.url)
    try:
        code = (
            "import os, sys, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(10**6)', {!r}])\n"
            "    os._exit(0)\n"
            "time.sleep(60)\n"
        ).format(marker)
        running = session.call("cell.execute", code, timeout=90)
        running.addErrback(lambda failure: None)  # the template dies under it
        for _ in range(300):
            daemons = [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
            if daemons:
                break
            await task.deferLater(reactor, 0.1, lambda: None)  # poll: the one-shot starts its daemon
        assert daemons, "the one-shot's daemon never started: the test proves nothing"
        template = processes_under(node.proc.pid, "components.child.oneshot")[0]
        template.kill()
        node.stop()
        assert _wait_gone({p.pid for p in daemons}, 10) == set(), "a one-shot's daemon outlived the node"
        await defer.succeed(None)
    finally:
        node.stop()


@pytest.mark.parametrize(
    "worker", ["crossbar.worker.router.RouterController", "crossbar.worker.container.ContainerController"]
)
def test_a_killed_crossbar_worker_ends_the_node_and_all_in_it_for_systemd_to_restart(tmp_path, worker):
    """Crossbar ends the node when one of its workers dies (the router, or the session router's container),
    and does not start that worker again; what a node needs then is its supervisor (systemd's
    ``Restart=always`` in deploy/systemd/cellserver-node.service). So the node must really end: with a
    status that says it failed, and nothing of it left running (kernels included) to meet the next node."""
    node = Node(tmp_path).start()
    try:
        everything = _descendants(node.proc.pid)
        (victim,) = processes_under(node.proc.pid, worker)
        victim.kill()
        node.proc.wait(60)
        assert node.proc.returncode != 0, "a node that lost a worker must not exit as if stopped on purpose"
        assert _wait_gone(everything, 15) == set(), "processes outlived the node"
    finally:
        node.stop()
