"""Attacks on the node from inside a kernel and a one-shot (docs/security.md, "What a kernel can see and reach").

Each test is something a hostile stranger's code does; each must fail.  The
node here lives where ``make run`` puts it, in a directory other users can
reach (inside the checkout), not in pytest's private temporary directory:
whatever keeps kernels out must be the node's own doing.  The sandbox needs
root (CI runs as root).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import psutil
import pytest
import pytest_twisted

from tests.helpers import call, start_kernel
from tests.node import ROOT, Node, spawner_processes
from tests.wamp_client import connect, within

SNOOP = os.path.join(ROOT, "tests", "attacks", "snoop.py")

sandboxed = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox tests need root (CI runs as root)")


@pytest.fixture(scope="module")
def node():
    """A real node in a directory every user can reach, like a checkout's .crossbar."""
    parent = os.path.join(ROOT, "tests", "artifacts")
    os.makedirs(parent, exist_ok=True)
    where = tempfile.mkdtemp(prefix="exposed-node-", dir=parent)
    os.chmod(parent, 0o755)
    os.chmod(where, 0o755)
    exposed = Node(where)
    os.chmod(exposed.dir, 0o755)
    os.chmod(exposed.cbdir, 0o755)  # as a fresh clone has it: closing it is the node's job
    exposed.start()
    yield exposed
    exposed.stop()
    shutil.rmtree(where, ignore_errors=True)


def node_secrets(node):
    """What the node keeps that a kernel must not read: keys, database, config, log (and the backend socket)."""
    data = os.path.join(node.cbdir, "data")
    return [
        os.path.join(node.cbdir, "key.priv"),
        os.path.join(node.cbdir, "config.json"),
        os.path.join(data, "permalinks.sqlite"),
        os.path.join(data, "permalinks.sqlite-wal"),
        node.log_path,
    ]


def snoop_code(secret, since, paths):
    """Code for a kernel: write the attack script into the working directory and run it, as the reporter did.

    It runs with the server's own Python (readable on disk, and it has autobahn; the kernels' environment has no
    WAMP client): an attacker uses whatever the machine offers.
    """
    with open(SNOOP) as f:
        script = f.read()
    return (
        "import subprocess, sys\n"
        "open('snoop.py', 'w').write({script!r})\n"
        "done = subprocess.run([{python!r}, 'snoop.py', {secret!r}, {since!r}] + {paths!r}, capture_output=True, text=True, timeout=100)\n"
        "print(done.stdout or done.stderr[-3000:])\n"
    ).format(script=script, python=sys.executable, secret=secret.encode().hex(), since=repr(since), paths=paths)


def report_of(result):
    text = "".join(o.get("text", "") for o in result["outputs"] if o.get("output_type") == "stream")
    assert result["status"] == "ok", result
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError("the attack script failed:\n" + text) from None


def assert_nothing_reached(report, node, secret_files_possible=True):
    socket_path = os.path.join(node.cbdir, "backend.sock")
    tried = [key for key in report["attempts"] if key.startswith(socket_path + " ")]
    assert len(tried) == 6, "the node's socket was attacked with three serializers, two ways each"
    joined = {key: outcome for key, outcome in report["attempts"].items() if outcome.startswith("JOINED")}
    assert not joined, "a kernel joined the realm: {}".format(joined)
    assert report["readable"] == [], "a kernel read the node's files"
    assert report["files_with_secret"] == [], "another session's saved code is readable by a kernel"
    assert report["files_checked"] >= 1, "the walk saw at least the script it wrote"


async def saved_secret(node):
    """Another user saves code with a permalink; its text must be nowhere a kernel can read."""
    other = await connect(node.url)
    secret = "saved-by-another-" + os.urandom(8).hex()
    await within(other.call("cell.permalink.save", "print({!r})".format(secret)), 10)
    other.leave()
    return secret


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_kernel_reaches_no_socket_file_or_saved_code_of_the_node(node):
    since = time.time() - 1
    secret = await saved_secret(node)
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    result = await call(
        session,
        kernel_id,
        "execute",
        snoop_code(secret, since, node_secrets(node) + [os.path.join(node.cbdir, "backend.sock")]),
        deadline=150,
    )
    assert_nothing_reached(report_of(result), node)
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_one_shot_reaches_no_socket_file_or_saved_code_of_the_node(node):
    since = time.time() - 1
    secret = await saved_secret(node)
    session = await connect(node.url)
    code = snoop_code(secret, since, node_secrets(node) + [os.path.join(node.cbdir, "backend.sock")])
    result = await within(session.call("cell.execute", code, timeout=110), 150, "cell.execute")
    assert_nothing_reached(report_of(result), node)
    session.leave()


def test_the_backend_socket_admits_only_the_node_key(node):
    """Even where the socket can be reached (here: as the node's own user), it grants nothing without the node key."""
    socket_path = os.path.join(node.cbdir, "backend.sock")
    env = dict(os.environ, PYTHONPATH=ROOT)
    stranger = subprocess.run(
        [sys.executable, SNOOP, "--no-walk", "00", "0", socket_path],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    attempts = json.loads(stranger.stdout)["attempts"]
    assert len(attempts) == 6 and all(outcome.startswith("refused") for outcome in attempts.values()), attempts
    # The control: the same probe signing with the node's key does join, so the refusals above mean something.
    key = os.path.join(node.cbdir, "key.priv")
    owner = subprocess.run(
        [sys.executable, SNOOP, "--no-walk", "--key", key, "00", "0", socket_path],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    attempts = json.loads(owner.stdout)["attempts"]
    assert {outcome for key, outcome in attempts.items() if key.endswith("cryptosign")} == {"JOINED as backend"}
    assert all(outcome.startswith("refused") for key, outcome in attempts.items() if key.endswith("anonymous"))


@sandboxed
def test_the_node_directory_and_database_belong_to_the_node_user(node):
    """What an admin would check with ls -l: no group or other bits on the node's private state."""
    for path in (
        node.cbdir,
        os.path.join(node.cbdir, "data"),
        os.path.join(node.cbdir, "key.priv"),
        os.path.join(node.cbdir, "data", "permalinks.sqlite"),
    ):
        assert os.stat(path).st_mode & 0o077 == 0, "{} is open to other users: {:o}".format(path, os.stat(path).st_mode)


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_kernel_sees_only_its_own_processes_and_cannot_trace_or_unshare(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    spawner = spawner_processes(node.proc.pid)[0]
    code = (
        "import ctypes, errno, json, os, subprocess\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "child = os.fork() or os.execv('/bin/sleep', ['sleep', '30'])  # listed by its parent at once, exec'd or not\n"
        "class Child:\n    pid = child\n    def kill(self): os.kill(self.pid, 9)\n    def wait(self): os.waitpid(self.pid, 0)\n"
        "child = Child()\n"
        "traced = libc.ptrace(16, child.pid, 0, 0)  # PTRACE_ATTACH, on its own child\n"
        "trace_error = os.strerror(ctypes.get_errno())\n"
        "unshared = libc.unshare(0x10000000)  # CLONE_NEWUSER\n"
        "unshare_error = os.strerror(ctypes.get_errno())\n"
        "pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
        "owners = sorted({os.stat('/proc/%d' % p).st_uid for p in pids if os.path.exists('/proc/%d' % p)})\n"
        "child.kill(); child.wait()\n"
        "print(json.dumps([traced, trace_error, unshared, unshare_error, pids, owners, os.getuid(), child.pid]))\n"
    )
    result = await call(session, kernel_id, "execute", code)
    assert result["status"] == "ok", result
    traced, trace_error, unshared, unshare_error, pids, owners, uid, child_pid = json.loads(
        result["outputs"][0]["text"]
    )
    assert traced == -1 and trace_error == "Operation not permitted"
    assert unshared == -1 and unshare_error == "Operation not permitted"
    assert child_pid in pids, "a kernel lists its own processes"
    assert owners == [uid], "a kernel lists only its own uid's processes"
    for outsider in (spawner.pid, node.proc.pid, 1):
        assert outsider not in pids
    assert psutil.pid_exists(spawner.pid)
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_kernel_writes_only_its_directory_and_its_own_tmp(node):
    session = await connect(node.url)
    a, b = await start_kernel(session), await start_kernel(session)
    code = (
        "import json, os\n"
        "def can_write(path):\n"
        "    try:\n        open(path, 'w').write('x')\n        return True\n    except OSError as e:\n        return e.strerror\n"
        "print(json.dumps({{p: can_write(p) for p in ('here.txt', '/tmp/mine.txt', '/dev/shm/mine', '/var/tmp/mine', "
        "'/usr/lib/x.txt', os.path.join(os.path.dirname(os.__file__), 'x.py'), {project!r})}}))\n"
    ).format(project=os.path.join(ROOT, "components", "x.py"))
    outcome = json.loads((await call(session, a, "execute", code))["outputs"][0]["text"])
    assert outcome.pop("here.txt") is True and outcome.pop("/tmp/mine.txt") is True
    assert outcome.pop("/dev/shm/mine") is True and outcome.pop("/var/tmp/mine") is True
    assert set(outcome.values()) == {"Read-only file system"}, outcome
    # The other kernel's /tmp is its own: it does not see what a wrote there.
    seen = (await call(session, b, "execute", "import os; os.path.exists('/tmp/mine.txt')"))["outputs"][0]["data"][
        "text/plain"
    ]
    assert seen == "False"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_kernel_has_a_usable_shell_with_its_own_python(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    venv_bin = os.path.join(ROOT, ".kernel-venv", "bin")  # the kernels' environment, not the server's

    async def run(code):
        result = await call(session, kernel_id, "execute", code, deadline=60)
        text = "".join(o.get("text", "") for o in result["outputs"])
        return result, text

    result, text = await run("import os; print(os.environ['PATH'])")
    path = text.strip().split(os.pathsep)
    assert path[0] == venv_bin, "the kernel's own environment comes first"
    assert all(os.access(d, os.R_OK | os.X_OK) for d in path)
    _, text = await run('!python3 -c "import numpy, sys; print(sys.prefix)"')
    assert text.strip() == os.path.dirname(venv_bin)
    _, text = await run("!pip list 2>/dev/null")
    assert "ipykernel" in text and "numpy" in text
    assert "crossbar" not in text.lower() and "twisted" not in text.lower(), (
        "the server's packages are not the kernels'"
    )
    result, text = await run("import sys\nprint(sys.prefix)\nimport crossbar")
    assert text.strip() == os.path.dirname(venv_bin) and result["ename"] == "ModuleNotFoundError"
    _, text = await run("%%bash\necho from bash $((6*7))")
    assert text.strip() == "from bash 42"
    _, text = await run("%%script python3\nimport sys\nprint(sys.prefix)")
    assert text.strip() == os.path.dirname(venv_bin)
    result, text = await run("%%ruby\nputs 1")
    assert "Couldn't find program: 'ruby'" in text, (result, text)
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_the_sandbox_level_is_reported(node):
    session = await connect(node.url)
    status = await session.call("cell.status")
    sandbox = status["spawners"][0]["sandbox"]
    assert sandbox["level"] == "full"
    assert sandbox["own_filesystem_view"] is True and sandbox["syscall_filter"] is True
    session.leave()
