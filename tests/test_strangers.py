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
from twisted.internet import defer

from tests.helpers import call, expect_error, start_kernel
from tests.node import Node, spawner_settings
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


def marker_daemon_code(marker, hold_pipe=True, extra=""):
    """Code that leaves a daemon behind as a stranger would: a new session, a double fork, an exec'd process
    (named by C{marker}, so the test can look for it) that holds the output pipe (fd 3) unless told not to."""
    return (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        {close}\n"
        "        os.execv(sys.executable, [sys.executable, '-c', 'import time\\n{extra}\\ntime.sleep(10**6)', {marker!r}])\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "print('left a daemon')\n"
    ).format(marker=marker, close="pass" if hold_pipe else "os.closerange(3, 1024)", extra=extra)


def processes_named(marker):
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in (process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


async def gone(marker, seconds, what):
    from tests.helpers import until

    async def none_left():
        return not processes_named(marker)

    await until(none_left, seconds, what)


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_oneshots_daemon_ends_with_the_call(canary_node):
    """A double-forked daemon holding the one-shot's pipe: the call still answers at once, and the daemon is gone."""
    session = await connect(canary_node.url)
    try:
        for hold in (True, False):
            marker = "oneshot-daemon-" + os.urandom(6).hex()
            d = session.call("cell.execute", marker_daemon_code(marker, hold_pipe=hold), timeout=60)
            result = await within(d, 15, "a one-shot whose daemon holds its pipe")
            assert result["status"] == "ok", result
            assert "left a daemon" in result["outputs"][0]["text"]
            await gone(marker, 5, "the one-shot's daemon ending with the call")
    finally:
        session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_kernels_daemon_ends_with_the_kernel(canary_node):
    session = await connect(canary_node.url)
    try:
        kernel_id = await start_kernel(session)
        marker = "kernel-daemon-" + os.urandom(6).hex()
        result = await call(session, kernel_id, "execute", marker_daemon_code(marker))
        assert result["status"] == "ok", result
        assert processes_named(marker), "the daemon never started: the test proves nothing"
        await call(session, kernel_id, "shutdown")
        await gone(marker, 10, "the kernel's daemon ending with the kernel")
    finally:
        session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_leftovers_cannot_take_the_oneshot_service(canary_node):
    """More one-shots than the template has children, each leaving a daemon on its pipe: another client's
    `1+1` still answers promptly (an earlier release waited for the pipes forever)."""
    attacker = await connect(canary_node.url, source="127.0.0.2")
    other = await connect(canary_node.url, source="127.0.0.3")
    marker = "flood-daemon-" + os.urandom(6).hex()
    try:
        calls = [attacker.call("cell.execute", marker_daemon_code(marker), timeout=60) for _ in range(24)]
        results = await within(defer_all(calls), 60, "24 one-shots that leave daemons")
        assert all(r["status"] == "ok" for r in results), results
        result = await within(other.call("cell.execute", "1+1"), 10, "another address's one-shot")
        assert result["outputs"][-1]["data"]["text/plain"] == "2"
        await gone(marker, 10, "every daemon ending with its call")
    finally:
        attacker.leave()
        other.leave()


def defer_all(ds):
    from twisted.internet import defer

    return defer.gatherResults(ds, consumeErrors=True)


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_running_oneshot_cannot_reach_another(canary_node):
    """Two one-shots at once: the first listens on 127.0.0.1 and an abstract unix socket and keeps a SysV
    segment; the second finds none of them, and neither process of the other (its own network and IPC
    namespaces, its own uid)."""
    session = await connect(canary_node.url)
    try:
        listen = (
            "import socket, time, os, ctypes\n"
            "tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "tcp.bind(('127.0.0.1', 5555)); tcp.listen()\n"
            "unix = socket.socket(socket.AF_UNIX); unix.bind('\\0cell-spy'); unix.listen()\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "shm = libc.shmget(0x5eed, 4096, 0o1666)\n"
            "print('listening %d %s' % (os.getuid(), shm >= 0), flush=True)\n"
            "time.sleep(20)\n"
        )
        from twisted.internet import defer

        listening = defer.Deferred()

        def progress(output, *args, **kwargs):
            if "listening" in (output.get("text") or "") and not listening.called:
                listening.callback(output["text"])

        first = session.call("cell.execute", listen, timeout=25, options=CallOptions(on_progress=progress))
        said = await within(listening, 30, "the first one-shot to listen")
        assert "True" in said, "the first one-shot could not make its SysV segment: the test proves nothing"
        probe = (
            "import socket, os, ctypes, json\n"
            "out = {'uid': os.getuid()}\n"
            "for name, family, address in (('tcp', socket.AF_INET, ('127.0.0.1', 5555)), ('unix', socket.AF_UNIX, '\\0cell-spy')):\n"
            "    s = socket.socket(family)\n"
            "    try:\n"
            "        s.connect(address); out[name] = 'connected'\n"
            "    except OSError as exc:\n"
            "        out[name] = exc.strerror\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "out['shm'] = libc.shmget(0x5eed, 0, 0)\n"
            "out['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
            "print(json.dumps(out))\n"
        )
        result = await within(session.call("cell.execute", probe, timeout=20), 30, "the probing one-shot")
        report = json.loads(result["outputs"][0]["text"])
        assert report["tcp"] != "connected" and report["unix"] != "connected", report
        assert report["shm"] == -1, report
        assert len(report["pids"]) <= 2, "a one-shot sees other processes: {}".format(report)
        assert report["uid"] != int(said.split()[1]), report
        first.cancel()
    finally:
        session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_two_nodes_on_one_host_keep_their_kernels_apart(node, canary_node):
    """Two nodes, each with a spawner called "local": disjoint uid ranges, so a kernel of one can neither see nor
    signal the other's kernels (an earlier release gave both first kernels uid 100000)."""
    first, second = await connect(node.url), await connect(canary_node.url)
    try:
        ranges = []
        for session in (first, second):
            status = await within(session.call("cell.status"), 30, "status")
            ranges.append(status["spawners"][0]["sandbox"]["uids"])
        (a0, a1), (b0, b1) = ranges
        assert a1 <= b0 or b1 <= a0, "the two nodes' uid ranges overlap: {}".format(ranges)
        here = await start_kernel(first)
        there = await start_kernel(second)
        who = "import os; (os.getuid(), os.getpid())"
        uid_here, _ = eval((await call(first, here, "execute", who))["outputs"][-1]["data"]["text/plain"])
        uid_there, pid_there = eval((await call(second, there, "execute", who))["outputs"][-1]["data"]["text/plain"])
        assert a0 <= uid_here < a1 and b0 <= uid_there < b1, (uid_here, uid_there, ranges)
        probe = (
            "import os\n"
            "try:\n"
            "    os.kill({pid}, 0); signal = 'delivered'\n"
            "except OSError as exc:\n"
            "    signal = exc.strerror\n"
            "(signal, os.path.exists('/proc/{pid}'))"
        ).format(pid=pid_there)
        result = await call(first, here, "execute", probe)
        signal, visible = eval(result["outputs"][-1]["data"]["text/plain"])
        assert signal == "Operation not permitted" and not visible, (signal, visible)
    finally:
        first.leave()
        second.leave()


def admission_limits(config):
    """Real per-address one-shot bounds (the suite's node lifts them), a spawner allowing 3 kernels of 300 MB."""
    for worker in config["workers"]:
        if worker["type"] == "container":
            browser = worker["components"][0]["extra"]["roles"]["browser"]
            browser.update(max_concurrent_oneshots_per_address=4, max_kernels_per_session=100)
    spawner_settings(config, max_kernels=3, pool_size=2, memory_limit_mb=300)


@pytest.fixture(scope="module")
def admission_node(tmp_path_factory):
    import deploy.node

    node = deploy.node.Node(tmp_path_factory.mktemp("admission"), edit=admission_limits)
    node.start()
    yield node
    node.stop()


async def outcomes(calls):
    """Each call's result, or the URI of the error it got."""
    from twisted.internet import defer

    results = await defer.DeferredList(calls, consumeErrors=True)
    out = []
    for ok, value in results:
        if ok:
            out.append(value["status"])
        else:
            assert isinstance(value.value, ApplicationError), value
            assert value.value.error_message(), "an error must say what to do"
            out.append(value.value.error)
    return out


@pytest_twisted.ensureDeferred
async def test_one_address_cannot_hold_every_oneshot_child(admission_node):
    """Sleepers from one address: at most 4 run at once, the rest are refused at once; another address's
    `1+1` is answered meanwhile (an earlier release let one client hold all 16 children: others waited 32 s)."""
    attacker = await connect(admission_node.url, source="127.0.0.2")
    other = await connect(admission_node.url, source="127.0.0.3")
    try:
        sleepers = [attacker.call("cell.execute", "import time; time.sleep(8)", timeout=20) for _ in range(10)]
        result = await within(other.call("cell.execute", "1+1"), 5, "another address's one-shot")
        assert result["outputs"][-1]["data"]["text/plain"] == "2"
        seen = await within(defer.ensureDeferred(outcomes(sleepers)), 60, "the sleepers")
        assert seen.count("ok") == 4 and seen.count("cell.error.capacity") == 6, seen
        # Its share comes back when its one-shots end.
        again = await within(attacker.call("cell.execute", "1+1"), 30, "the attacker's next one-shot")
        assert again["status"] == "ok"
    finally:
        attacker.leave()
        other.leave()


@pytest_twisted.ensureDeferred
async def test_oneshots_with_files_count_as_kernels(admission_node):
    """One-shots with files run in pool kernels: on a spawner allowing 3 kernels, 3 run and the rest are refused
    (an earlier release let 40 of them make 44 live kernels on a spawner allowing 32)."""
    session = await connect(admission_node.url, source="127.0.0.4")
    try:
        code = "import time; time.sleep(6); open('data.txt').read()"
        calls = [session.call("cell.execute", code, files={"data.txt": b"x"}, timeout=30) for _ in range(4)]
        calls += [session.call("cell.execute", code, files={"data.txt": b"x"}, timeout=30) for _ in range(4)]
        seen = await within(defer.ensureDeferred(outcomes(calls)), 90, "the one-shots with files")
        assert 1 <= seen.count("ok") <= 3 and seen.count("cell.error.capacity") >= 5, seen
        status = await within(session.call("cell.status"), 30, "status")
        assert status["spawners"][0]["kernels"] == 0, status
    finally:
        session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_oneshot_and_what_it_starts_share_one_memory_limit(admission_node):
    """Memory a one-shot's children take counts against the one-shot's own cgroup (an earlier release charged a
    leftover's memory to no limit): past 300 MB the run is stopped and says why, and the next one runs."""
    session = await connect(admission_node.url, source="127.0.0.5")
    try:
        code = (
            "import os, time\n"
            "for _ in range(3):\n"
            "    if os.fork() == 0:\n"
            "        block = bytearray(150 * 2**20)\n"
            "        time.sleep(30)\n"
            "        os._exit(0)\n"
            "time.sleep(30)\n"
        )
        result = await within(session.call("cell.execute", code, timeout=40), 60, "a one-shot past its memory")
        assert result["status"] == "error" and result["ename"] == "MemoryError", result
        assert "300 MB" in result["evalue"], result
        again = await within(session.call("cell.execute", "1+1"), 30, "the next one-shot")
        assert again["status"] == "ok", again
    finally:
        session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_oneshots_directory_is_bounded_in_bytes_and_files(canary_node):
    """A one-shot's working directory is a tmpfs of its own namespace, limited like a kernel's: 30,000 empty files
    and 300 MB are refused at the limits (20,000 files, 256 MB shipped), and the host's directory stays empty."""
    session = await connect(canary_node.url)
    try:
        code = (
            "import os, json\n"
            "made, error = 0, None\n"
            "try:\n"
            "    for made in range(30000):\n"
            "        open('f%d' % made, 'w').close()\n"
            "except OSError as exc:\n"
            "    error = exc.strerror\n"
            "for name in os.listdir('.'):\n"
            "    os.unlink(name)\n"
            "written, big = 0, None\n"
            "try:\n"
            "    with open('big', 'wb') as f:\n"
            "        for _ in range(300):\n"
            "            f.write(b'x' * 2**20); f.flush(); written += 1\n"
            "except OSError as exc:\n"
            "    big = exc.strerror\n"
            "print(json.dumps([made, error, written, big, os.getcwd()]))\n"
        )
        result = await within(session.call("cell.execute", code, timeout=60), 90, "a one-shot filling its directory")
        assert result["status"] == "ok", result
        made, error, written, big, cwd = json.loads(result["outputs"][0]["text"])
        assert error == "No space left on device" and made <= 20000, (made, error)
        assert big in ("No space left on device", "File too large") and written <= 256, (written, big)
        assert not os.path.exists(cwd) or not os.listdir(cwd), "the one-shot's files reached the host's disk"
    finally:
        session.leave()
