"""The node's own parts die (issue 20): each is replaced by itself and users are served again, with a quiet log.

The fork master, the one-shot template and the spawner itself are SIGKILLed
as the OOM killer would; a fork is refused (EAGAIN) as when a host runs out of processes.  Each
test uses its node of its own (the module's), a real ``crossbar start``.
"""

import os

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import reactor, threads

from tests.helpers import call, expect_error, start_kernel, until
from tests.node import Node, processes_under, spawner_processes
from tests.test_metrics import fetch
from tests.test_strangers import marker_daemon_code, processes_named
from tests.wamp_client import Recorder, connect, within

#: the kill-to-served deadline issue 20 sets
SERVED_AGAIN_S = 30
#: lines about a dead part the node may log (one per change of state: died, back, the kernels that died with it)
LOG_LINES_ALLOWED = 20


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("faults"))
    n.start()
    yield n
    n.stop()


def part_process(node, marker):
    """The node's one process running C{marker} (a module), not the children it forked (they share its command)."""
    found = processes_under(node.proc.pid, marker)
    pids = {p.pid for p in found}
    parts = [p for p in found if p.ppid() not in pids]
    assert len(parts) == 1, "expected one {} process, found {}".format(marker, [p.pid for p in parts])
    return parts[0]


async def parts_status(session):
    status = await session.call("cell.status")
    return status["spawners"][0]["parts"]


def restarts_on_metrics_page(node, part):
    _, _, text = fetch("http://127.0.0.1:{}/metrics".format(node.port))
    line = 'cell_spawner_part_restarts_total{{part="{}",spawner="local"}}'.format(part)
    for row in text.splitlines():
        if row.startswith("cell_spawner_part_restarts_total{") and 'part="{}"'.format(part) in row:
            return float(row.rsplit(" ", 1)[1])
    raise AssertionError("no {} on the metrics page".format(line))


def new_log_lines(node, offset, *words):
    return [line for line in node.log()[offset:].splitlines() if any(w in line for w in words)]


async def served_again(session, started_at):
    """A kernel start and its execute, and a one-shot, answered; how long after C{started_at} they all were."""
    kernel_id = await within(session.call("cell.kernel.start"), SERVED_AGAIN_S, "cell.kernel.start")
    kernel_id = kernel_id["kernel_id"]
    result = await call(session, kernel_id, "execute", "6 * 7", deadline=SERVED_AGAIN_S)
    assert result["outputs"][0]["data"]["text/plain"] == "42"
    once = await within(session.call("cell.execute", "print(6 * 7)"), SERVED_AGAIN_S, "cell.execute")
    assert once["outputs"][0]["text"] == "42\n", once
    await session.call("cell.kernel.{}.shutdown".format(kernel_id))
    return reactor.seconds() - started_at


@pytest_twisted.ensureDeferred
async def test_a_killed_fork_master_is_replaced_and_its_kernels_reported_dead(node):
    session = await connect(node.url)
    try:
        owned = await start_kernel(session)
        events = Recorder()
        await session.subscribe(events, "cell.kernel.{}.iopub".format(owned))
        pending = call(session, owned, "execute", "import time; time.sleep(60)", deadline=SERVED_AGAIN_S)
        await events.wait_for(lambda e: e["header"]["msg_type"] == "execute_input")
        master = part_process(node, "components.child.fork_master")
        offset = len(node.log())
        killed_at = reactor.seconds()
        master.kill()  # SIGKILL, as the OOM killer would

        # Its kernel died with it (PR_SET_PDEATHSIG): its owner hears so, the call waiting on it fails.
        await expect_error(pending, "cell.error.kernel_died")
        dead = await events.wait_for(lambda e: e["content"].get("execution_state") == "dead", seconds=10)
        assert "fork master died" in dead["content"]["reason"]
        await expect_error(call(session, owned, "execute", "1"), "cell.error.not_found")

        took = await served_again(session, killed_at)
        assert took < SERVED_AGAIN_S, took
        new_master = part_process(node, "components.child.fork_master")
        assert new_master.pid != master.pid
        parts = await parts_status(session)
        assert parts["fork_master"] == {"up": True, "restarts": 1}, parts
        assert await threads.deferToThread(restarts_on_metrics_page, node, "fork_master") == 1
        about = new_log_lines(node, offset, "fork master", "pool kernel", "failed to start")
        assert len(about) < LOG_LINES_ALLOWED, "\n".join(about)
    finally:
        session.leave()


@pytest_twisted.ensureDeferred
async def test_a_killed_oneshot_template_is_replaced(node):
    session = await connect(node.url)
    try:
        template = part_process(node, "components.child.oneshot")
        before = (await parts_status(session))["oneshot_template"]["restarts"]
        # The run leaves a daemon (its own session, double-forked) in its uid's cgroup, then waits.
        marker = "template-daemon-" + os.urandom(6).hex()
        code = marker_daemon_code(marker, hold_pipe=False) + "import time; time.sleep(60)\n"
        running = session.call("cell.execute", code, timeout=90)
        await until(lambda: threads.deferToThread(lambda: bool(processes_named(marker))), 10, "the daemon")
        await until(lambda: threads.deferToThread(lambda: bool(template.children())), 10, "the one-shot's child")
        offset = len(node.log())
        killed_at = reactor.seconds()
        template.kill()
        await expect_error(within(running, 10, "the running one-shot"), "cell.error.kernel_died")

        async def back():
            return (await parts_status(session))["oneshot_template"] == {"up": True, "restarts": before + 1}

        await until(back, SERVED_AGAIN_S, "a new one-shot template")
        if os.geteuid() == 0:  # uids and cgroups per run: the next visitor with that uid must not meet the daemon
            assert not processes_named(marker), "a killed template's daemon outlived it into the new template"
        took = await served_again(session, killed_at)
        assert took < SERVED_AGAIN_S, took
        assert part_process(node, "components.child.oneshot").pid != template.pid
        assert await threads.deferToThread(restarts_on_metrics_page, node, "oneshot_template") == before + 1
        about = new_log_lines(node, offset, "one-shot template", "oneshot")
        assert len(about) < LOG_LINES_ALLOWED, "\n".join(about)
    finally:
        session.leave()


def refuse_forks(pid):
    """Put process C{pid} in a pids cgroup that allows nothing new: its fork() fails with EAGAIN.

    RLIMIT_NPROC would do the same for another uid, but the kernel exempts root from it.  Returns the cgroup.
    """
    root = "/sys/fs/cgroup/pids" if os.path.isdir("/sys/fs/cgroup/pids") else "/sys/fs/cgroup"
    path = os.path.join(root, "cell-fault-test-{}".format(os.getpid()))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "pids.max"), "w") as f:
        f.write("0")  # a process moved in is not refused; anything it would start (process or thread) is
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(pid))
    return path


def allow_forks(pid, path):
    with open(os.path.join(os.path.dirname(path), "cgroup.procs"), "w") as f:
        f.write(str(pid))
    os.rmdir(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="moving the fork master between cgroups needs root (CI runs as root)")
@pytest_twisted.ensureDeferred
async def test_a_refused_fork_is_answered_and_the_master_goes_on(node):
    session = await connect(node.url)
    try:
        master = part_process(node, "components.child.fork_master")
        before = (await parts_status(session))["fork_master"]["restarts"]
        # Kernels forked earlier (the warm pool, those held for the session router) are handed out first:
        # take them (and shut each down) until a start must fork.
        # (Kernels still starting when the forks stop join them: a bound, not an exact count.)
        status = (await session.call("cell.status"))["spawners"][0]
        earlier = status["pool_ready"] + status["held"] + 8
        cgroup = await threads.deferToThread(refuse_forks, master.pid)
        taken, error = 0, None
        try:
            while error is None:
                assert taken <= earlier, "a start past the kernels forked earlier was not refused"
                try:
                    kernel_id = await start_kernel(session)
                except ApplicationError as exc:
                    error = exc
                else:
                    taken += 1
                    await session.call("cell.kernel.{}.shutdown".format(kernel_id))
            assert error.error == "cell.error.capacity", (error.error, error.error_message())
            assert "could not be forked" in error.error_message(), error.error_message()
        finally:
            await threads.deferToThread(allow_forks, master.pid, cgroup)
        assert part_process(node, "components.child.fork_master").pid == master.pid, "the same master serves"
        took = await served_again(session, reactor.seconds())
        assert took < SERVED_AGAIN_S, took
        assert (await parts_status(session))["fork_master"]["restarts"] == before
    finally:
        session.leave()


@pytest_twisted.ensureDeferred
async def test_the_master_skips_a_request_that_is_not_json(node):
    """What reaches the master's stdin that it cannot read is logged and skipped; the next request is served."""
    master = part_process(node, "components.child.fork_master")
    session = await connect(node.url)
    try:
        offset = len(node.log())
        with open("/proc/{}/fd/0".format(master.pid), "wb", buffering=0) as stdin:
            stdin.write(b"this is not json\n[1, 2]\n")
        await until(
            lambda: threads.deferToThread(lambda: len(new_log_lines(node, offset, "not a JSON object")) == 2),
            10,
            "the bad lines logged",
        )
        await served_again(session, reactor.seconds())
        assert part_process(node, "components.child.fork_master").pid == master.pid
    finally:
        session.leave()


@pytest.mark.skipif(os.geteuid() != 0, reason="moving the template between cgroups needs root (CI runs as root)")
@pytest_twisted.ensureDeferred
async def test_a_refused_oneshot_fork_is_answered_and_the_template_goes_on(node):
    session = await connect(node.url)
    try:
        template = part_process(node, "components.child.oneshot")
        before = (await parts_status(session))["oneshot_template"]["restarts"]
        cgroup = await threads.deferToThread(refuse_forks, template.pid)
        try:
            error = await expect_error(
                within(session.call("cell.execute", "print(1)"), SERVED_AGAIN_S, "a one-shot that must fork"),
                "cell.error.capacity",
            )
            assert "could not be started" in error.error_message(), error.error_message()
        finally:
            await threads.deferToThread(allow_forks, template.pid, cgroup)
        once = await within(session.call("cell.execute", "print(6 * 7)"), SERVED_AGAIN_S, "cell.execute")
        assert once["outputs"][0]["text"] == "42\n", once
        assert part_process(node, "components.child.oneshot").pid == template.pid, "the same template serves"
        assert (await parts_status(session))["oneshot_template"]["restarts"] == before
    finally:
        session.leave()


@pytest_twisted.ensureDeferred
async def test_launched_kernels_killed_from_outside_are_replaced(node):
    """A bash kernel is launched, not forked: each is its own launcher.  SIGKILL every one (the pool's and an
    owned one, as the OOM killer would): the owner is told, the pool launches new ones, a start is served."""
    session = await connect(node.url)
    try:
        owned = (await within(session.call("cell.kernel.start", kernel_name="bash"), 60, "a bash kernel"))["kernel_id"]
        events = Recorder()
        await session.subscribe(events, "cell.kernel.{}.iopub".format(owned))
        offset = len(node.log())
        killed_at = reactor.seconds()
        for process in processes_under(node.proc.pid, "bash_kernel"):
            process.kill()
        dead = await events.wait_for(lambda e: e["content"].get("execution_state") == "dead", seconds=10)
        assert "SIGKILL" in dead["content"]["reason"]
        started = await within(
            session.call("cell.kernel.start", kernel_name="bash"), SERVED_AGAIN_S, "a bash kernel again"
        )
        result = await call(session, started["kernel_id"], "execute", "echo again", deadline=SERVED_AGAIN_S)
        assert "again" in "".join(o.get("text", "") for o in result["outputs"]), result
        assert reactor.seconds() - killed_at < SERVED_AGAIN_S
        await session.call("cell.kernel.{}.shutdown".format(started["kernel_id"]))
        about = new_log_lines(node, offset, "fail", "launch")
        assert len(about) < LOG_LINES_ALLOWED, "\n".join(about)
    finally:
        session.leave()


@pytest_twisted.ensureDeferred
async def test_a_killed_spawner_is_replaced_its_kernels_reported_dead_and_its_leftovers_reaped(node):
    """The spawner process itself SIGKILLed (last in this module: its node gets a new spawner).  Its keeper
    starts another; the owner of a kernel it ran hears that kernel died; a one-shot's daemon it left in a
    cgroup is ended; users are served again within 30 s."""
    session = await connect(node.url)
    try:
        (spawner,) = spawner_processes(node.proc.pid)
        owned = await start_kernel(session)
        events = Recorder()
        await session.subscribe(events, "cell.kernel.{}.iopub".format(owned))
        marker = "spawner-daemon-" + os.urandom(6).hex()
        running = session.call(
            "cell.execute", marker_daemon_code(marker, hold_pipe=False) + "import time; time.sleep(60)"
        )
        await until(lambda: threads.deferToThread(lambda: bool(processes_named(marker))), 10, "the daemon")
        offset = len(node.log())
        killed_at = reactor.seconds()
        spawner.kill()

        with pytest.raises(ApplicationError):
            await within(running, 10, "the one-shot running when its spawner died")
        dead = await events.wait_for(lambda e: e["content"].get("execution_state") == "dead", seconds=10)
        assert "went away" in dead["content"]["reason"], dead["content"]

        async def spawner_back():  # meanwhile a start is refused with "try again later" (cell.error.capacity)
            return bool((await session.call("cell.status"))["spawners"])

        await until(spawner_back, SERVED_AGAIN_S, "a new spawner")
        took = await served_again(session, killed_at)
        assert took < SERVED_AGAIN_S, took
        (new_spawner,) = spawner_processes(node.proc.pid)
        assert new_spawner.pid != spawner.pid
        status = (await session.call("cell.status"))["spawners"][0]
        assert status["parts"]["spawner"] == {"up": True, "restarts": 1}, status["parts"]
        assert await threads.deferToThread(restarts_on_metrics_page, node, "spawner") == 1
        if os.geteuid() == 0:
            assert not processes_named(marker), "a one-shot's daemon outlived its SIGKILLed spawner"
        about = new_log_lines(node, offset, "spawner died", "spawner failed", "the spawner is back")
        assert 1 <= len(about) < LOG_LINES_ALLOWED, "\n".join(about)
    finally:
        session.leave()
