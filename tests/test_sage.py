"""Sage kernels forked from the Sage master, against a real node with the Sage environment (``make sage``).

Through WAMP as a page or a service would use them: Sage's preparser, PARI,
symbolics (Maxima), GAP, plots; one-shots; the Sage master replaced when it
is killed; and the strangers' checks run from inside a Sage kernel: its own
uid, no network, none of the node's secrets, nothing left behind.
"""

import json
import os
import signal
import uuid

import psutil
import pytest
import pytest_twisted
from autobahn.wamp.types import CallOptions

from components.common.kernelspecs import SAGE
from tests.helpers import call, until
from tests.node import Node, spawner_processes, with_sage
from tests.test_languages import text_of
from tests.test_strangers import CANARY_ENV
from tests.wamp_client import connect, within

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the kernel sandbox needs a root spawner; CI runs as root")


@pytest.fixture(scope="module")
def sage_node(tmp_path_factory):
    """A node whose spawner forks Sage kernels (as ``make run`` does), a canary secret in its environment."""
    canary = "sage-canary-" + uuid.uuid4().hex
    node = Node(tmp_path_factory.mktemp("sage"), edit=with_sage, env={CANARY_ENV: canary})
    node.canary = canary
    node.start()
    yield node
    node.stop()


async def sage_ready(session, seconds=120):
    """The Sage master imported and warmed up Sage, and a Sage kernel waits in its pool."""

    async def ready():
        status = await session.call("cell.status")
        return status["spawners"][0]["language_pools"].get(SAGE, 0) >= 1

    await until(ready, seconds, "a ready Sage kernel in the pool")


async def sage_kernel(session):
    await sage_ready(session)
    result = await within(session.call("cell.kernel.start", kernel_name=SAGE), 60, "a Sage kernel")
    assert result["kernel_name"] == SAGE
    return result["kernel_id"]


async def run(session, kernel_id, code):
    result = await call(session, kernel_id, "execute", code, deadline=60)
    assert result["status"] == "ok", result
    return result


@pytest_twisted.ensureDeferred
async def test_sage_is_offered_as_a_forked_kernel_of_its_own_language(sage_node):
    session = await connect(sage_node.url)
    specs = await session.call("cell.kernelspecs")
    model = specs["kernelspecs"][SAGE]
    assert model["spec"]["language"] == "sage"
    assert "passagemath" in model["spec"]["display_name"]
    await sage_ready(session)
    status = await session.call("cell.status")
    parts = status["spawners"][0]["parts"]
    assert parts["sagemath_master"]["up"] is True
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_sage_kernel_runs_sage_with_its_preparser(sage_node):
    session = await connect(sage_node.url)
    kernel_id = await sage_kernel(session)
    progress = []
    result = await call(
        session, kernel_id, "execute", "factor(2^64 + 1)", options=CallOptions(on_progress=progress.append)
    )
    assert result["status"] == "ok", result
    assert "274177 * 67280421310721" in text_of(result)
    assert progress, "the output streams as progressive results"
    for code, shown in [
        ("2^10", "1024"),
        ("R.<x> = QQ[]; (x^2 - 1).factor()", "(x - 1) * (x + 1)"),
        ("[1..5]", "[1, 2, 3, 4, 5]"),
        ("integrate(sin(x)^2, x)", "1/2*x - 1/4*sin(2*x)"),
        ("libgap.SymmetricGroup(5).Size()", "120"),
        ("type(1/2)", "sage.rings.rational.Rational"),
    ]:
        assert shown in text_of(await run(session, kernel_id, code)), code
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_sage_plot_comes_as_an_image(sage_node):
    session = await connect(sage_node.url)
    kernel_id = await sage_kernel(session)
    result = await run(session, kernel_id, "plot(sin(x), (x, 0, pi))")
    images = [o["data"]["image/png"] for o in result["outputs"] if "image/png" in o.get("data", {})]
    assert images and len(images[0]) > 1000, result["outputs"]
    # Sage writes a 3D scene through its temporary directory: the kernel's own, not the master's (once: ENOENT).
    result = await run(session, kernel_id, "y = var('y'); plot3d(x*y, (x, -1, 1), (y, -1, 1))")
    assert not [o for o in result["outputs"] if o["output_type"] == "stream" and o["name"] == "stderr"], result
    assert any("text/html" in o.get("data", {}) for o in result["outputs"]), result["outputs"]
    code = "import os, sage.misc.temporary_file as t; print(t.tmp_filename().startswith(os.environ['TMPDIR'] + '/'))"
    assert text_of(await run(session, kernel_id, code)).strip() == "True", "Sage's temporary files are the kernel's"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_sage_one_shot_runs_in_a_fresh_sage_kernel(sage_node):
    session = await connect(sage_node.url)
    await sage_ready(session)
    first = await within(session.call("cell.execute", "a = 2^64 + 1; factor(a)", kernel_name=SAGE), 60, "one-shot")
    assert first["status"] == "ok", first
    assert "274177 * 67280421310721" in text_of(first)
    second = await within(session.call("cell.execute", "print(a)", kernel_name=SAGE), 60, "another one-shot")
    assert second["status"] == "error" and second["ename"] == "NameError", "nothing stays between one-shots"
    session.leave()


def sage_masters():
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if "components.child.fork_master" in (p.info["cmdline"] or []) and "sage" in (p.info["cmdline"] or [])
    ]


@pytest_twisted.ensureDeferred
async def test_a_killed_sage_master_is_replaced_and_its_kernels_reported_dead(sage_node):
    session = await connect(sage_node.url)
    kernel_id = await sage_kernel(session)
    died = []
    await session.subscribe(died.append, "cell.kernel.{}.iopub".format(kernel_id))
    spawner = spawner_processes(sage_node.proc.pid)
    masters = [p for p in sage_masters() if any(p.pid in {c.pid for c in s.children()} for s in spawner)]
    assert len(masters) == 1, masters
    masters[0].send_signal(signal.SIGKILL)

    async def reported_dead():
        return any(e["header"]["msg_type"] == "status" and e["content"]["execution_state"] == "dead" for e in died)

    await until(reported_dead, 30, "the owner told its Sage kernel died with the master")

    async def replaced():
        status = await session.call("cell.status")
        part = status["spawners"][0]["parts"]["sagemath_master"]
        return part["up"] and part["restarts"] >= 1

    await until(replaced, 90, "a new Sage master")
    kernel_id = await sage_kernel(session)
    assert "1024" in text_of(await run(session, kernel_id, "2^10"))
    session.leave()


@needs_root
@pytest_twisted.ensureDeferred
async def test_a_sage_kernel_is_sandboxed_like_every_kernel(sage_node):
    """What a stranger tries from a Sage cell: whose uid, the network, the node's secrets, its own leftovers."""
    session = await connect(sage_node.url)
    kernel_id = await sage_kernel(session)
    port = sage_node.port
    probe = (
        "import os, socket\n"
        "print('uid', os.getuid())\n"
        "s = socket.socket()\n"
        "s.settimeout(3)\n"
        "try:\n"
        "    s.connect(('127.0.0.1', {port})); print('net CONNECTED')\n"
        "except OSError as e:\n"
        "    print('net REFUSED', e)\n"
        "print('env', sorted(os.environ))\n"
        "print('canary' , any({canary!r} in open(f).read() for f in ['/proc/self/environ', '/proc/1/environ'] "
        "if os.access(f, os.R_OK)))\n"
        "print(open('/proc/self/status').read())\n"
        "import subprocess\n"
        "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        "print('pid', os.getpid())\n"
    ).format(port=port, canary=sage_node.canary)
    out = text_of(await run(session, kernel_id, probe))
    uid = int(out.split("uid ")[1].split()[0])
    assert uid >= 100000, "its own uid, not root's or the spawner's: " + out[:200]
    assert "net REFUSED" in out and "net CONNECTED" not in out
    assert sage_node.canary not in out and CANARY_ENV not in out
    assert "canary False" in out
    assert "Seccomp:\t2" in out and "NoNewPrivs:\t1" in out
    await call(session, kernel_id, "shutdown")

    async def nothing_of_its_uid_left():
        return not [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]

    await until(nothing_of_its_uid_left, 30, "the Sage kernel's daemonized sleep killed with it")
    session.leave()


def test_nbclient_runs_a_sage_notebook_through_the_jupyter_face(sage_node, tmp_path):
    """Jupyter's own client, unchanged, through the node's Jupyter face (anonymously: nbclient's channels socket
    carries no token): Sage's preparser, show(), a plot, an error."""
    from tests.jupyter_clients import NodeFace, nbclient_subprocess
    from tests.test_jupyter_clients import wait_for_face

    face = wait_for_face(NodeFace(sage_node))
    out = tmp_path / "sage.ipynb"
    notebook = os.path.join(os.path.dirname(__file__), "notebooks", "sage.ipynb")
    nbclient_subprocess(tmp_path, str(out), face, notebook=notebook, kernel_name=SAGE)
    with open(out) as f:
        cells = json.load(f)["cells"]
    texts = [json.dumps(cell["outputs"]) for cell in cells]
    assert "274177 * 67280421310721" in texts[0]
    assert "(y - 1) * (y + 1)" in texts[1]
    assert "text/html" in texts[2] or "text/latex" in texts[2], "show() gives a typeset form"
    assert "image/png" in texts[3], "a plot is an image"
    assert "[1, 2, 3, 4, 5]" in texts[4]
    assert cells[5]["outputs"][0]["ename"] == "ZeroDivisionError"
