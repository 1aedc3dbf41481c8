"""Attacks that must fail, against a real node and real kernels (see docs/security.md).

The node here has tight limits so that each limit is reached in seconds.
The sandbox needs root (uids, network namespaces); CI and these tests run as root.
"""

import json
import os

import psutil
import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions
from twisted.internet import task

from tests.helpers import call, expect_error, start_kernel
from tests.node import Node, spawner_processes, spawner_settings
from tests.wamp_client import Recorder, connect, within

STRICT = {
    "pool_size": 2,
    "max_kernels": 16,
    "limit_cpu_s": 8,
    "memory_limit_mb": 300,
    "limit_file_size_mb": 1,
    "limit_processes": 40,
    "max_output_bytes": 200000,
    "disk_limit_mb": 5,
    "oneshot_timeout_s": 3,
}


def tighten(config):
    spawner_settings(config, **STRICT)


@pytest.fixture(scope="module")
def strict_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("strict"), edit=tighten)
    node.start()
    yield node
    node.stop()


async def run(session, kernel_id, code, **kwargs):
    return await call(session, kernel_id, "execute", code, deadline=60, **kwargs)


def value(result):
    assert result["status"] == "ok", result
    return result["outputs"][-1]["data"]["text/plain"]


async def bystander_is_served(node):
    """A second user's execute answers promptly and correctly while an attack runs."""
    other = await connect(node.url)
    kernel_id = await start_kernel(other)
    result = await call(other, kernel_id, "execute", "1+1", deadline=5)
    assert value(result) == "2"
    other.leave()


async def expect_denied(d):
    try:
        await within(d, 10, "the refused action")
    except ApplicationError as exc:
        assert exc.error in ("wamp.error.not_authorized", "cell.error.not_found"), exc
        return
    raise AssertionError("the action was allowed")


@pytest_twisted.ensureDeferred
async def test_a_stranger_cannot_touch_my_kernel_even_knowing_its_id(node):
    owner = await connect(node.url)
    stranger = await connect(node.url)
    kernel_id = await start_kernel(owner)
    await expect_denied(stranger.subscribe(lambda *a: None, "cell.kernel.{}.iopub".format(kernel_id)))
    await expect_denied(stranger.call("cell.kernel.{}.execute".format(kernel_id), "1"))
    await expect_denied(stranger.call("cell.kernel.{}.shutdown".format(kernel_id)))
    await expect_denied(stranger.call("cell.kernel.{}.input".format(kernel_id), "x"))
    # Nobody, not even the owner, goes around the relay to where the spawner registered the kernel.
    await expect_denied(stranger.call("cell.backend.kernel.{}.execute".format(kernel_id), "1"))
    await expect_denied(owner.call("cell.backend.kernel.{}.execute".format(kernel_id), "1"))
    result = await call(owner, kernel_id, "execute", "'mine'")
    assert value(result) == "'mine'"
    owner.leave()
    stranger.leave()


@pytest_twisted.ensureDeferred
async def test_clients_cannot_register_publish_or_use_meta_procedures(node):
    session = await connect(node.url)
    await expect_denied(
        session.register(lambda: None, "cell.kernel.{}.".format("1" * 32), options=RegisterOptions(match="prefix"))
    )
    await expect_denied(session.register(lambda: None, "cell.anything"))
    await expect_denied(
        session.register(
            lambda: None, "cell.backend.kernel.{}.".format("2" * 32), options=RegisterOptions(match="prefix")
        )
    )
    await expect_denied(
        session.publish("cell.kernel.{}.iopub".format("0" * 32), {}, options=PublishOptions(acknowledge=True))
    )
    await expect_denied(session.call("wamp.session.list"))
    await expect_denied(session.call("cell.spawner.local.start_kernel", 1))
    await expect_denied(session.call("cell.authorize", {"authrole": "backend"}, "x", "call"))
    status = await session.call("cell.status")
    assert status["spawners"], "the node is still up and serving"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_registering_a_uri_that_exists_tells_a_client_nothing(node):
    """Crossbar's dealer looks a refused REGISTER's procedure up anyway and answers procedure_already_exists (or an
    invocation policy conflict) when someone has it: clients must get one not_authorized answer for every URI."""
    browser = await connect(node.url)
    service = await connect(node.url, authid="service", secret=node.service_secret)
    kernel_id = await start_kernel(browser)
    existing = [
        ("cell.execute", "exact"),
        ("cell.kernel.start", "exact"),
        ("cell.backend.kernel.{}.execute".format(kernel_id), "exact"),  # a live kernel's, on its spawner
        ("cell.spawner.local.start_kernel", "exact"),
        ("cell.kernel.", "prefix"),  # the kernel relay's
        ("cell.backend.start_kernel_for", "exact"),
    ]
    missing = [("cell.nothing.here", "exact"), ("cell.backend.kernel.{}.execute".format("0" * 32), "exact")]
    answers = set()
    for client in (browser, service):
        for uri, match in existing + missing:
            for options in (
                RegisterOptions(match=match),
                RegisterOptions(match=match, invoke="roundrobin"),
                RegisterOptions(match=match, force_reregister=True),
            ):
                exc = await expect_error(
                    client.register(lambda: None, uri, options=options), "wamp.error.not_authorized"
                )
                answers.add(exc.error_message().replace(uri, "<uri>").replace('"service"', '"browser"'))
    assert len(answers) == 1, "the same answer whether the URI exists or not: {}".format(answers)
    assert (await call(browser, kernel_id, "execute", "1 + 1"))["status"] == "ok", "the kernel still works"
    result = await within(service.call("cell.execute", "6 * 7"), 30, "cell.execute")
    assert result["outputs"][0]["data"]["text/plain"] == "42", "cell.execute is still the node's"
    browser.leave()
    service.leave()


@pytest_twisted.ensureDeferred
async def test_service_role_authenticates_with_wampcra(node):
    session = await connect(node.url, authid="service", secret=node.service_secret)
    assert session.config.extra["details"].authrole == "service"
    result = await within(session.call("cell.execute", "6*7"), 30)
    assert result["outputs"][0]["data"]["text/plain"] == "42"
    session.leave()
    try:
        await connect(node.url, authid="service", secret="wrong")
    except Exception as exc:
        assert "wamp.error" in str(exc) or "not_authorized" in str(exc) or "authentication" in str(exc), exc
    else:
        raise AssertionError("a wrong secret was accepted")


@pytest_twisted.ensureDeferred
async def test_oversized_one_shot_code_is_refused_and_node_stays_up(node):
    session = await connect(node.url)
    await expect_error(session.call("cell.execute", "x" * (65 * 1024)), "cell.error.too_large")
    await expect_error(session.call("cell.execute", code=["not", "code"]), "cell.error.invalid_argument")
    result = await within(session.call("cell.execute", "1+1"), 30)
    assert value(result) == "2"
    session.leave()


sandboxed = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox tests need root (CI runs as root)")


@sandboxed
@pytest_twisted.ensureDeferred
async def test_kernels_are_distinct_unprivileged_users(strict_node):
    session = await connect(strict_node.url)
    a, b = await start_kernel(session), await start_kernel(session)
    uid_a = int(value(await run(session, a, "import os; os.getuid()")))
    uid_b = int(value(await run(session, b, "import os; os.getuid()")))
    assert uid_a != 0 and uid_b != 0 and uid_a != uid_b
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_no_tcp_connection_leaves_a_kernel(strict_node):
    session = await connect(strict_node.url)
    kernel_id = await start_kernel(session)
    addresses = ["127.0.0.1"] + [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family.name == "AF_INET" and not a.address.startswith("127.")
    ]
    code = (
        "import socket\nfailures = []\n"
        "for host in {!r}:\n"
        "    try:\n"
        "        socket.create_connection((host, {}), timeout=2).close()\n"
        "    except OSError as e:\n"
        "        failures.append(type(e).__name__)\n"
        "len(failures)"
    ).format(addresses, strict_node.port)
    assert int(value(await run(session, kernel_id, code))) == len(addresses), "a kernel reached the router's port"
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_kernel_cannot_kill_others_or_read_their_files(strict_node):
    session = await connect(strict_node.url)
    a, b = await start_kernel(session), await start_kernel(session)
    info = json.loads(
        value(
            await run(
                session,
                a,
                "import os, json; open('secret.txt', 'w').write('s3cret'); json.dumps([os.getpid(), os.getcwd()])",
            )
        )[1:-1]
    )
    pid_a, cwd_a = info
    spawner = spawner_processes(strict_node.proc.pid)[0]
    code = (
        "import os, signal\nblocked = []\n"
        "for pid in ({}, {}, {}):\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n    except PermissionError:\n        blocked.append(pid)\n"
        "for attempt in (lambda: os.listdir({!r}), lambda: open({!r}).read()):\n"
        "    try:\n        attempt()\n    except (PermissionError, FileNotFoundError):  # absent from its view, or closed\n        blocked.append('file')\n"
        "len(blocked)"
    ).format(pid_a, spawner.pid, strict_node.proc.pid, cwd_a, os.path.join(cwd_a, "secret.txt"))
    assert int(value(await run(session, b, code))) == 5
    assert value(await run(session, a, "open('secret.txt').read()")) == "'s3cret'", "kernel a was harmed"
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_memory_hog_gets_memory_error_or_is_stopped_by_name(strict_node):
    session = await connect(strict_node.url)
    kernel_id = await start_kernel(session)
    result = await run(session, kernel_id, "x = bytearray(10**11)")
    assert result["status"] == "error" and result["ename"] == "MemoryError"
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    d = run(session, kernel_id, "x = b'x' * (600 * 1024 * 1024)")
    await bystander_is_served(strict_node)
    try:
        result = await d
        assert result["status"] == "error" and result["ename"] == "MemoryError"
    except Exception as exc:  # the cgroup's OOM killer stopped it
        assert getattr(exc, "error", None) == "cell.error.kernel_died"
        dead = await events.wait_for(lambda e: e["content"].get("execution_state") == "dead")
        assert "memory limit" in dead["content"]["reason"]
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_cpu_limit_stops_a_spinning_kernel_and_names_it(strict_node):
    session = await connect(strict_node.url)
    kernel_id = await start_kernel(session)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    d = run(session, kernel_id, "while True: pass")
    await bystander_is_served(strict_node)
    exc = await expect_error(d, "cell.error.kernel_died")
    assert "CPU time limit of 8 s" in exc.error_message()
    dead = await events.wait_for(lambda e: e["content"].get("execution_state") == "dead", seconds=10)
    assert "CPU time limit" in dead["content"]["reason"]
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_file_size_limit(strict_node):
    session = await connect(strict_node.url)
    kernel_id = await start_kernel(session)
    result = await run(session, kernel_id, "open('big.bin', 'wb').write(b'x' * (2 * 1024 * 1024))")
    assert result["status"] == "error" and "File too large" in result["evalue"]
    assert value(await run(session, kernel_id, "'alive'")) == "'alive'"
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_fork_bomb_is_contained(strict_node):
    session = await connect(strict_node.url)
    kernel_id = await start_kernel(session)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    d = run(session, kernel_id, "import os\nwhile True:\n    os.fork()", timeout=20)
    await bystander_is_served(strict_node)
    try:
        result = await d
        assert result["status"] == "error" and result["ename"] == "BlockingIOError", result
    except Exception as exc:
        assert getattr(exc, "error", None) == "cell.error.kernel_died", exc
        dead = await events.wait_for(lambda e: e["content"].get("execution_state") == "dead")
        # Contained by the process limit or, as forks copy pages, by the memory cgroup: either way named.
        assert "processes" in dead["content"]["reason"] or "memory limit" in dead["content"]["reason"], dead
    session.leave()


FLOODS = ['while True: print("x" * 10000)', 'import sys\nwhile True: sys.stdout.write("x" * 10**6)']


@sandboxed
@pytest.mark.parametrize("flood", FLOODS, ids=["print", "write"])
@pytest_twisted.ensureDeferred
async def test_output_flood_is_cut_with_a_notice_and_the_kernel_lives_on(strict_node, flood):
    """The cap bounds the kernel's own memory: it keeps its state and serves the next execute."""
    session = await connect(strict_node.url)
    kernel_id = await start_kernel(session)
    kernel = psutil.Process(int(value(await run(session, kernel_id, "before = 41; import os; os.getpid()"))))
    baseline = kernel.memory_info().rss
    peak = [baseline]

    def sample():
        peak.append(kernel.memory_info().rss)

    sampler = task.LoopingCall(sample)
    sampler.start(0.05)
    progress = Recorder()
    d = call(session, kernel_id, "execute", flood, timeout=2, deadline=60, options=CallOptions(on_progress=progress))
    try:
        await progress.wait_for(lambda o: "output truncated" in o.get("text", ""), what="the truncation notice")
        await bystander_is_served(strict_node)
        result = await d
    finally:
        sampler.stop()
    assert result["status"] == "timeout"
    text = "".join(o.get("text", "") for o in result["outputs"])
    assert "[output truncated" in text
    assert len(text) <= STRICT["max_output_bytes"] + 20000
    assert max(peak) - baseline < 64 * 1024 * 1024, "the kernel's memory grew by {:.0f} MB during the flood".format(
        (max(peak) - baseline) / 2**20
    )
    assert value(await run(session, kernel_id, "before + 1")) == "42", "the kernel kept its state"
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_directory_past_the_disk_limit_is_refused_at_once_and_the_kernel_lives(strict_node):
    """The working directory is a file system of disk_limit_mb: the write past it fails (tests/test_disk_attacks.py
    has the rest: inodes, fast fills, other file systems, restarts)."""
    session = await connect(strict_node.url)
    kernel_id = await start_kernel(session)
    code = "for i in range(8):\n    open('f%d' % i, 'wb').write(b'x' * 1000000)"
    result = await run(session, kernel_id, code)
    assert result["status"] == "error" and result["ename"] == "OSError", result
    assert "No space left on device" in result["evalue"]
    used = "import os; sum(os.path.getsize(f) for f in os.listdir('.'))"
    assert int(value(await run(session, kernel_id, used))) <= STRICT["disk_limit_mb"] * 2**20
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_environment_is_scrubbed(strict_node):
    session = await connect(strict_node.url)
    kernel_id = await start_kernel(session)
    names = value(await run(session, kernel_id, "import os; sorted(os.environ)"))
    for secret in ("CELL_PORT", "PYTHONUNBUFFERED", "CROSSBAR", "JPY_PARENT_PID"):
        assert secret not in names
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_one_shots_are_sandboxed_and_share_nothing(node):
    session = await connect(node.url)

    async def once(code):
        return await within(session.call("cell.execute", code), 30, "cell.execute")

    assert int(value(await once("import os; os.getuid()"))) != 0
    result = await once("import socket; socket.create_connection(('127.0.0.1', {}), timeout=2)".format(node.port))
    assert result["status"] == "error" and result["ename"] in ("ConnectionRefusedError", "OSError", "TimeoutError")
    await once("x = 'left behind'; open('left.txt', 'w').write('x')")
    result = await once("x")
    assert result["status"] == "error" and result["ename"] == "NameError"
    assert value(await once("import os; os.path.exists('left.txt')")) == "False"
    assert value(await once("import random; random.random() != 0.8444218515250481")) == "True"
    # The template warms itself up on sample cells before forking: none of that shows either.
    assert (
        value(
            await once(
                "(repr(_), Out, [k for k in dir() if not k.startswith('_') and k not in ('In', 'Out', 'exit', 'quit', 'get_ipython', 'open')])"
            )
        )
        == "(\"''\", {}, [])"
    )
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_one_shot_without_a_timeout_gets_the_spawners_default(strict_node):
    """cell.execute without timeout: the spawner's oneshot_timeout_s (3 s here) applies, not a session router default."""
    from twisted.internet import reactor

    session = await connect(strict_node.url)
    started = reactor.seconds()
    result = await within(session.call("cell.execute", "import time; time.sleep(60)"), 30, "cell.execute")
    assert result["status"] == "timeout"
    assert reactor.seconds() - started < 20, "the spawner's 3 s default cut it, not 30 s"
    session.leave()


def per_address_quotas(config):
    for worker in config["workers"]:
        if worker["type"] == "container":
            extra = worker["components"][0]["extra"]
            extra["roles"]["browser"].update(max_kernels_per_address=3, max_oneshots_per_minute_per_address=8)
            extra["trusted_proxies"] = ["127.0.0.3"]


@pytest.fixture(scope="module")
def address_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("addresses"), edit=per_address_quotas)
    node.start()
    yield node
    node.stop()


@pytest_twisted.ensureDeferred
async def test_one_address_takes_its_share_and_another_is_served_at_once(address_node):
    """Quotas per client address (here 3 kernels, one-shots in bursts of 2), on top of those per session."""
    url = address_node.url
    a1, a2 = await connect(url, source="127.0.0.2"), await connect(url, source="127.0.0.2")
    await start_kernel(a1)
    await start_kernel(a1)
    await start_kernel(a2)
    exc = await expect_error(a2.call("cell.kernel.start"), "cell.error.capacity")
    assert "address" in exc.error_message() and exc.kwargs["limit"] == 3
    other = await connect(url, source="127.0.0.4")
    await start_kernel(other)  # a second address gets a kernel at once
    for _ in range(2):
        assert value(await within(a1.call("cell.execute", "1+1"), 30)) == "2"
    exc = await expect_error(a2.call("cell.execute", "1+1"), "cell.error.capacity")
    assert "address" in exc.error_message()
    assert value(await within(other.call("cell.execute", "1+1"), 30)) == "2"
    # Behind the trusted front (127.0.0.3) the client is the one its X-Forwarded-For names; from anyone else the
    # header is ignored, so a client cannot pick an address to escape its quota.
    fronted = await connect(url, source="127.0.0.3", headers={"X-Forwarded-For": "127.0.0.2"})
    await expect_error(fronted.call("cell.kernel.start"), "cell.error.capacity")
    spoofer = await connect(url, source="127.0.0.5", headers={"X-Forwarded-For": "127.0.0.2"})
    await start_kernel(spoofer)
    for session in (a1, a2, other, fronted, spoofer):
        session.leave()
