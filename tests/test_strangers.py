"""Strangers against the node and each other (issue 19): each test is an attack that must fail.

A kernel or one-shot reading the node's secrets, an anonymous client speaking
for another session or role.  Next to L{tests.test_kernel_escape} (the
sandbox's walls) and L{tests.test_security} (limits); docs/security.md's
threat table names each test.  The sandbox needs root (CI runs as root).
"""

import json
import os

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, SubscribeOptions

from tests.helpers import call, expect_error, start_kernel
from tests.node import Node
from tests.wamp_client import Recorder, connect, within

sandboxed = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox tests need root (CI runs as root)")

#: a secret in the node's environment, as an admin's database password or spawner secret would be
CANARY_ENV = "CELL_CANARY_SECRET"


@pytest.fixture(scope="module")
def canary_node(tmp_path_factory):
    """A node with a canary secret in its environment, and another in its spawner's own (where a remote
    spawner keeps its WAMP-CRA secret): neither may reach a kernel."""
    canary, spawner_canary = ("canary-" + os.urandom(12).hex() for _ in range(2))

    def plant(config):
        for worker in config["workers"]:
            if worker["type"] == "guest":
                worker["options"]["env"]["vars"][CANARY_ENV] = spawner_canary

    node = Node(tmp_path_factory.mktemp("strangers"), edit=plant, env={CANARY_ENV: canary})
    node.canaries = [canary, spawner_canary, node.service_secret]
    node.start()
    yield node
    node.stop()


def hunt_code(secrets):
    """Code that looks for each secret everywhere a process can read its environment: C{os.environ},
    ``/proc/self/environ``, its parent's, and every readable page of its own memory (where an exec-time
    environment block would still lie).  Each secret is split in two halves that the code never joins, so the
    code's own text cannot be what it finds.  Prints a JSON report."""
    halves = [(s[: len(s) // 2].encode(), s[len(s) // 2 :].encode()) for s in secrets]
    return (
        "import json, os\n"
        "halves = {halves!r}\n"
        "def found(data):\n"
        "    hits = 0\n"
        "    for first, second in halves:\n"
        "        i = data.find(first)\n"
        "        while i >= 0:\n"
        "            if data[i + len(first): i + len(first) + len(second)] == second:\n"
        "                hits += 1\n"
        "            i = data.find(first, i + 1)\n"
        "    return hits\n"
        "report = {{'environ': found(repr(dict(os.environ)).encode()), 'scanned': 0, 'memory': 0}}\n"
        "for path in ('/proc/self/environ', '/proc/%d/environ' % os.getppid()):\n"
        "    try:\n"
        "        report[path] = found(open(path, 'rb').read())\n"
        "    except OSError as exc:\n"
        "        report[path] = 'unreadable: %s' % exc.strerror\n"
        "with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:\n"
        "    for line in maps.read().splitlines():\n"
        "        span, perms = line.split()[:2]\n"
        "        start, end = (int(x, 16) for x in span.split('-'))\n"
        "        if 'r' not in perms or end - start > 1 << 30:\n"
        "            continue\n"
        "        try:\n"
        "            mem.seek(start)\n"
        "            data = mem.read(end - start)\n"
        "        except (OSError, ValueError, OverflowError):\n"
        "            continue\n"
        "        report['scanned'] += len(data)\n"
        "        report['memory'] += found(data)\n"
        "print(json.dumps(report))\n"
    ).format(halves=halves)


def hunt_report(result):
    assert result["status"] == "ok", result
    text = "".join(o.get("text", "") for o in result["outputs"] if o.get("output_type") == "stream")
    return json.loads(text.strip().splitlines()[-1])


def assert_nothing_found(report, where):
    assert report["scanned"] > 10 * 1024 * 1024, "{}: the memory scan read too little to mean anything: {}".format(
        where, report
    )
    leaks = {k: v for k, v in report.items() if k != "scanned" and v not in (0,) and not str(v).startswith("unread")}
    assert not leaks, "{} found the node's secrets: {}".format(where, leaks)


def test_hunt_finds_a_planted_secret():
    """The hunt can fail: in a process whose environment holds the secret, it finds it."""
    import subprocess
    import sys

    secret = "planted-" + os.urandom(8).hex()
    done = subprocess.run(
        [sys.executable, "-c", hunt_code([secret])],
        env=dict(os.environ, PLANTED=secret),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["environ"] >= 1 and report["/proc/self/environ"] >= 1 and report["memory"] >= 1, report


@sandboxed
@pytest_twisted.ensureDeferred
async def test_kernels_and_oneshots_cannot_read_the_nodes_secrets(canary_node):
    session = await connect(canary_node.url)
    try:
        code = hunt_code(canary_node.canaries)
        kernel_id = await start_kernel(session)
        report = hunt_report(await call(session, kernel_id, "execute", code, deadline=120))
        assert_nothing_found(report, "a kernel")
        report = hunt_report(await within(session.call("cell.execute", code, timeout=100), 120, "one-shot"))
        assert_nothing_found(report, "a one-shot")
        with_files = session.call("cell.execute", code, timeout=100, files={"data.txt": b"x"})
        report = hunt_report(await within(with_files, 120, "one-shot with files"))
        assert_nothing_found(report, "a one-shot with files")
    finally:
        session.leave()


def forged(victim_session, role="service"):
    """Options claiming to be the victim's session, with another role."""
    return [{"session": victim_session, "authid": role, "authrole": role}]


@pytest_twisted.ensureDeferred
async def test_a_client_cannot_forge_forward_for(node):
    """A browser that says it calls for another session (or as a service) is refused, on every kind of procedure."""
    victim = await connect(node.url)
    attacker = await connect(node.url)
    try:
        kernel_id = await start_kernel(victim)
        victim_id = victim._session_id
        ff = forged(victim_id)
        attempts = [
            ("cell.kernel.{}.execute".format(kernel_id), ("import os; os.getpid()",), {}),
            ("cell.kernel.{}.files.list".format(kernel_id), (), {}),
            ("cell.kernel.start", (), {}),
            ("cell.kernel.resume", (kernel_id,), {}),
            ("cell.execute", ("x = 1" + " " * 100 * 1024,), {}),  # past the browser's code limit, within a service's
            ("cell.status", (), {}),
            ("cell.kernelspecs", (), {}),
            ("cell.permalink.save", ("1+1",), {}),
            ("cell.backend.kernel.{}.execute".format(kernel_id), ("1",), {}),
            ("cell.spawner.local.status", (), {}),
        ]
        for uri, args, kwargs in attempts:
            d = attacker.call(uri, *args, options=CallOptions(forward_for=ff), **kwargs)
            try:
                await within(d, 30, uri)
            except ApplicationError as exc:
                assert exc.error in ("wamp.error.not_authorized", "wamp.error.authorization_failed"), (uri, exc)
            else:
                raise AssertionError("a forged forward_for was accepted on {}".format(uri))
        # Subscribing to the victim's stream while claiming its session.
        try:
            await attacker.subscribe(
                Recorder(), "cell.kernel.{}.iopub".format(kernel_id), options=SubscribeOptions(forward_for=ff)
            )
        except ApplicationError as exc:
            assert exc.error == "wamp.error.not_authorized", exc
        else:
            raise AssertionError("a forged forward_for subscribed to another session's kernel")
        # Still refused after the same URIs were allowed for this role without forward_for (no cached answer).
        await within(attacker.call("cell.status"), 30, "status")
        await expect_error(
            attacker.call("cell.status", options=CallOptions(forward_for=ff)), "wamp.error.not_authorized"
        )
        # The victim's kernel is untouched, and the attacker's own calls still work.
        result = await call(victim, kernel_id, "execute", "1 + 1")
        assert result["outputs"][-1]["data"]["text/plain"] == "2"
        assert (await within(attacker.call("cell.execute", "2 + 2"), 60, "execute"))["status"] == "ok"
    finally:
        attacker.leave()
        victim.leave()
