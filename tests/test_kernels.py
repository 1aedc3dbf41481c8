"""The public WAMP API against a real node with real ipykernel kernels."""

import os
import signal

import psutil
import pytest
import pytest_twisted
from autobahn.wamp.types import CallOptions
from twisted.internet import defer

from tests.helpers import call, expect_error, pool_is_full, start_kernel
from tests.node import Node, processes_under, spawner_processes
from tests.wamp_client import Recorder, connect, within


@pytest_twisted.ensureDeferred
async def test_execute_gives_outputs_and_iopub_in_order(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    result = await call(session, kernel_id, "execute", 'print("hi"); 1+1')
    assert result["status"] == "ok"
    assert result["execution_count"] == 1, "the pool's warm-up leaves no trace in the history"
    assert result["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "hi\n"},
        {
            "output_type": "execute_result",
            "execution_count": result["execution_count"],
            "data": {"text/plain": "2"},
            "metadata": {},
        },
    ]
    await events.wait_for(
        lambda e: (
            e["header"]["msg_type"] == "status"
            and e["content"]["execution_state"] == "idle"
            and e["parent_header"].get("msg_type") == "execute_request"
        )
    )
    kinds = [t for t in events.msg_types() if t in ("status", "stream", "execute_result")]
    assert kinds[0] == "status" and events.events[0]["content"]["execution_state"] == "busy"
    assert kinds.index("stream") < kinds.index("execute_result") < len(kinds) - 1
    assert events.events[-1]["content"]["execution_state"] == "idle"
    session.leave()


THREADS_AND_CHILDREN = r"""
import multiprocessing, subprocess, threading
print("first")
def worker(n):
    for i in range(100):
        print("t%d-%d" % (n, i))
threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
child = multiprocessing.get_context("fork").Process(target=print, args=("from a forked child",))
child.start(); child.join()
subprocess.run(["echo", "from a subprocess"])
print("last")
42
"""


@pytest_twisted.ensureDeferred
async def test_output_of_threads_and_child_processes_arrives_whole_and_in_order(node):
    """A kernel sends iopub on the thread that has the message (components/child/iopub_sender.py): output from
    four threads at once, a forked child and a subprocess all arrive, each thread's lines in its order, the main
    thread's first and last line where they were printed (a child's output comes through a pipe, whole but at no fixed
    place, possibly after the result), and the result after every output of the kernel's own threads."""
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    for _ in range(2):  # and the kernel stays usable
        result = await call(session, kernel_id, "execute", THREADS_AND_CHILDREN)
        assert result["status"] == "ok"
        kinds = [o["output_type"] for o in result["outputs"]]
        assert kinds.count("execute_result") == 1, kinds
        after = result["outputs"][kinds.index("execute_result") + 1 :]
        assert all(o["text"].startswith("from a ") for o in after), after
        lines = "".join(o["text"] for o in result["outputs"] if o["output_type"] == "stream").splitlines()
        assert "from a forked child" in lines and "from a subprocess" in lines
        # A child's output comes through a pipe the kernel reads on its own thread: whole, but not at a fixed place.
        own = [line for line in lines if not line.startswith("from a ")]
        assert own[0] == "first" and own[-1] == "last"
        for n in range(4):
            assert [line for line in lines if line.startswith("t%d-" % n)] == ["t%d-%d" % (n, i) for i in range(100)]
        assert len(lines) == 404
    session.leave()


@pytest_twisted.ensureDeferred
async def test_iopub_reaches_whoever_subscribes_later_or_again(node):
    """The spawner publishes only topics someone subscribes to (components/worker/iopub_listeners.py): a subscriber
    arriving after the kernel has run, or leaving and coming back, still gets every message."""
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    topic = "cell.kernel.{}.iopub".format(kernel_id)
    await call(session, kernel_id, "execute", "'nobody listens'")

    def input_of(code):
        return lambda e: e["header"]["msg_type"] == "execute_input" and e["content"]["code"] == code

    for round_ in range(2):
        events = Recorder()
        subscription = await session.subscribe(events, topic)
        code = "'round {}'".format(round_)
        result = await call(session, kernel_id, "execute", code)
        assert result["status"] == "ok"
        await events.wait_for(input_of(code), what="the execute_input of {}".format(code))
        await events.wait_for(
            lambda e: e["header"]["msg_type"] == "execute_result" and e["content"]["data"]["text/plain"] == code,
            what="the result of {}".format(code),
        )
        await subscription.unsubscribe()
        await call(session, kernel_id, "execute", "'nobody listens again'")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_state_persists_within_a_kernel_and_not_across(node):
    session = await connect(node.url)
    a = await start_kernel(session)
    b = await start_kernel(session)
    await call(session, a, "execute", "x = 41")
    result = await call(session, a, "execute", "x + 1")
    assert result["outputs"][0]["data"]["text/plain"] == "42"
    result = await call(session, b, "execute", "x")
    assert result["status"] == "error"
    assert result["ename"] == "NameError"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_each_kernel_draws_its_own_random_numbers_and_has_its_own_environment(node):
    """Forked from one master, kernels must not share random state (random, numpy's global generator, its cached Gaussian)."""
    session = await connect(node.url)
    code = "import os, random, numpy; (random.random(), numpy.random.random(), numpy.random.standard_normal(), os.environ['HOME'] == os.getcwd())"
    draws = []
    for _ in range(2):
        kernel_id = await start_kernel(session)
        result = await call(session, kernel_id, "execute", code)
        draws.append(result["outputs"][0]["data"]["text/plain"])
    first, second = (eval(d) for d in draws)
    assert first[3] and second[3], "HOME is the kernel's own directory"
    assert all(a != b for a, b in zip(first[:3], second[:3])), draws
    session.leave()


@pytest_twisted.ensureDeferred
async def test_top_level_await_and_aggressive_reset_work_in_a_forked_kernel(node):
    """Forked kernels run their shell on the main thread and take IPython's module snapshot from the master."""
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    result = await call(session, kernel_id, "execute", "import asyncio\nawait asyncio.sleep(0.01)\n'awaited'")
    assert result["outputs"][0]["data"]["text/plain"] == "'awaited'"
    await call(session, kernel_id, "execute", "import wave, sys\nassert 'wave' in sys.modules")
    result = await call(session, kernel_id, "execute", "%reset -f --aggressive")
    assert result["status"] == "ok"
    result = await call(session, kernel_id, "execute", "import sys\n('wave' in sys.modules, 'numpy' in sys.modules)")
    assert result["outputs"][0]["data"]["text/plain"] == "(False, True)", (
        "the user's import is dropped, the preloaded ones stay"
    )
    session.leave()


@pytest_twisted.ensureDeferred
async def test_error_has_ename_evalue_traceback(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    result = await call(session, kernel_id, "execute", "1/0")
    assert result["status"] == "error"
    assert result["ename"] == "ZeroDivisionError"
    assert "division by zero" in result["evalue"]
    assert result["traceback"] and any("ZeroDivisionError" in line for line in result["traceback"])
    assert result["outputs"][-1]["output_type"] == "error"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_matplotlib_plot_gives_png(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    result = await call(
        session, kernel_id, "execute", "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    )
    assert result["status"] == "ok", result
    pngs = [o for o in result["outputs"] if o["output_type"] == "display_data" and "image/png" in o["data"]]
    assert len(pngs) == 1
    import base64

    assert base64.b64decode(pngs[0]["data"]["image/png"]).startswith(b"\x89PNG")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_input_round_trips_and_progress_streams(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    progress = Recorder()
    d = call(
        session,
        kernel_id,
        "execute",
        'print("before")\nname = input("Name? ")\nprint("hello", name)',
        allow_stdin=True,
        options=CallOptions(on_progress=progress),
    )
    request = await progress.wait_for(lambda o: o["output_type"] == "input_request", what="the input_request")
    assert request == {"output_type": "input_request", "prompt": "Name? ", "password": False}
    assert progress.events[0] == {"output_type": "stream", "name": "stdout", "text": "before\n"}
    await call(session, kernel_id, "input", "Ada")
    result = await d
    assert result["status"] == "ok"
    assert "".join(o["text"] for o in result["outputs"] if o["output_type"] == "stream") == "before\nhello Ada\n"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_interrupt_stops_an_infinite_loop(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    d = call(session, kernel_id, "execute", "while True: pass")
    await events.wait_for(lambda e: e["header"]["msg_type"] == "execute_input", what="the execution to begin")
    await call(session, kernel_id, "interrupt")
    result = await within(d, 10, "the interrupted execute")
    assert result["status"] == "error" and result["ename"] == "KeyboardInterrupt"
    result = await call(session, kernel_id, "execute", "2*21")
    assert result["outputs"][0]["data"]["text/plain"] == "42"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_timeout_ends_a_long_execution_and_kernel_stays_usable(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    result = await call(session, kernel_id, "execute", "import time\nprint('start')\ntime.sleep(60)", timeout=1.0)
    assert result["status"] == "timeout"
    assert result["outputs"][0]["text"] == "start\n"
    result = await call(session, kernel_id, "execute", "'still here'")
    assert result["outputs"][0]["data"]["text/plain"] == "'still here'"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_complete_and_inspect(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    await call(session, kernel_id, "execute", "import math")
    reply = await call(session, kernel_id, "complete", "math.sq", 7)
    assert "math.sqrt" in reply["matches"] or "sqrt" in reply["matches"]
    reply = await call(session, kernel_id, "inspect", "math.sqrt", 9)
    assert reply["found"] is True
    assert "sqrt" in reply["data"]["text/plain"]
    session.leave()


@pytest_twisted.ensureDeferred
async def test_one_shot_execute_returns_outputs_and_leaves_no_kernel(node):
    session = await connect(node.url)
    before = await session.call("cell.status")
    progress = Recorder()
    result = await within(
        session.call("cell.execute", "print('one'); 6*7", options=CallOptions(on_progress=progress)), 30, "cell.execute"
    )
    assert result["status"] == "ok"
    assert result["outputs"][0] == {"output_type": "stream", "name": "stdout", "text": "one\n"}
    assert result["outputs"][1]["data"]["text/plain"] == "42"
    assert progress.events[0]["output_type"] == "stream"
    after = await session.call("cell.status")
    assert after["kernels"] == before["kernels"]
    result = await within(session.call("cell.execute", "import time; time.sleep(30)", timeout=1), 30, "cell.execute")
    assert result["status"] == "timeout"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_status_reports_the_spawner(node):
    session = await connect(node.url, serializers=["json"])
    status = await session.call("cell.status")
    assert [s["id"] for s in status["spawners"]] == ["local"]
    spawner = status["spawners"][0]
    assert set(spawner) == {
        "id",
        "host",
        "kernels",
        "pool_ready",
        "held",
        "capacity",
        "sandbox",
        "language_pools",
        "parts",
    }
    assert spawner["sandbox"]["level"] in ("full", "reduced")
    assert spawner["capacity"] > 0
    assert spawner["parts"]["fork_master"]["up"] and spawner["parts"]["oneshot_template"]["up"], spawner["parts"]
    session.leave()


@pytest_twisted.ensureDeferred
async def test_sigkilled_kernel_gives_dead_event_and_kernel_died(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    result = await call(session, kernel_id, "execute", "import os; os.getpid()")
    pid = int(result["outputs"][0]["data"]["text/plain"])
    d = call(session, kernel_id, "execute", "import time; time.sleep(60)")
    await events.wait_for(lambda e: e["header"]["msg_type"] == "execute_input" and "sleep" in e["content"]["code"])
    os.kill(pid, signal.SIGKILL)
    await expect_error(within(d, 5, "the pending execute"), "cell.error.kernel_died")
    dead = await events.wait_for(lambda e: e["content"].get("execution_state") == "dead", seconds=5)
    assert dead["header"]["msg_type"] == "status" and dead["content"]["reason"]
    await expect_error(call(session, kernel_id, "execute", "1"), "cell.error.not_found")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_bad_arguments_give_clear_errors(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    await expect_error(call(session, kernel_id, "execute"), "cell.error.invalid_argument")
    await expect_error(call(session, kernel_id, "execute", 42), "cell.error.invalid_argument")
    await expect_error(call(session, kernel_id, "execute", "1", timeout="soon"), "cell.error.invalid_argument")
    await expect_error(call(session, kernel_id, "execute", "1", colour="red"), "cell.error.invalid_argument")
    await expect_error(call(session, kernel_id, "input", "x"), "cell.error.invalid_argument")
    await expect_error(call(session, kernel_id, "execute", "x" * (300 * 1024)), "cell.error.too_large")
    await expect_error(call(session, "0" * 32, "execute", "1"), "cell.error.not_found")
    await expect_error(session.call("cell.execute"), "cell.error.invalid_argument")
    await expect_error(session.call("cell.kernel.start", colour="red"), "cell.error.invalid_argument")
    result = await call(session, kernel_id, "execute", "'fine'")
    assert result["status"] == "ok"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_kernels_per_session_are_capped(node):
    session = await connect(node.url)
    kernels = [await start_kernel(session) for _ in range(4)]
    await expect_error(session.call("cell.kernel.start"), "cell.error.capacity")
    await call(session, kernels[0], "shutdown")
    await start_kernel(session)
    session.leave()


def _niceness(process):
    """A process's niceness, or None if it is exiting (a kernel of an earlier test may still be)."""
    try:
        return process.nice()
    except psutil.Error:
        return None


def _ppid(process):
    try:
        return process.ppid()
    except psutil.Error:
        return None


THREAD_NICENESS = "import os; sorted({int(open('/proc/self/task/%s/stat' % t).read().rsplit(')', 1)[1].split()[16]) for t in os.listdir('/proc/self/task')})"


@pytest.mark.skipif(os.geteuid() != 0, reason="pool kernels are niced only when the spawner is root (CI runs as root)")
@pytest_twisted.ensureDeferred
async def test_pool_kernels_wait_niced_and_a_handed_out_kernel_runs_at_normal_priority(node):
    session = await connect(node.url)
    await pool_is_full(session)  # a kernel still starting has not lowered its priority yet
    spawner = spawner_processes(node.proc.pid)[0]
    kernels = [p for p in processes_under(spawner.pid, "fork_master") if _ppid(p) not in (spawner.pid, None)]
    niced = {p.pid for p in kernels if _niceness(p) == 10}
    assert niced, "pool kernels wait at niceness 10"
    kernel_id = await start_kernel(session)
    result = await call(session, kernel_id, "execute", "import os; os.getpid()")
    assert int(result["outputs"][0]["data"]["text/plain"]) in niced, "the kernel handed out came from the niced pool"
    result = await call(session, kernel_id, "execute", THREAD_NICENESS)
    assert result["outputs"][0]["data"]["text/plain"] == "[0]", (
        "every thread of a handed-out kernel is back at niceness 0"
    )
    session.leave()


@pytest.fixture
def fresh_node(tmp_path):
    """A node of the test's own: nothing another test left running counts against its capacity."""
    node = Node(tmp_path).start()
    yield node
    node.stop()


@pytest_twisted.ensureDeferred
async def test_concurrent_starts_get_distinct_working_kernels_whether_held_pooled_or_forked(fresh_node):
    """More starts at once than the spawner holds and pools: each gets its own kernel, which answers at once."""
    node = fresh_node
    sessions = [await connect(node.url) for _ in range(3)]
    await pool_is_full(sessions[0])
    starts = [defer.ensureDeferred(start_kernel(s)) for s in sessions for _ in range(4)]
    kernel_ids = await within(defer.gatherResults(starts, consumeErrors=True), 60, "12 starts")
    assert len(set(kernel_ids)) == 12
    owners = [s for s in sessions for _ in range(4)]
    results = await defer.gatherResults(
        [defer.ensureDeferred(call(s, k, "execute", "import os; os.getpid()")) for s, k in zip(owners, kernel_ids)],
        consumeErrors=True,
    )
    assert all(r["status"] == "ok" for r in results)
    assert len({r["outputs"][0]["data"]["text/plain"] for r in results}) == 12, "12 processes"
    for s in sessions:
        s.leave()


@pytest_twisted.ensureDeferred
async def test_callers_that_vanish_or_cancel_mid_call_leave_the_router_clean(node):
    """A page closed in the middle of an execute: the router detaches it cleanly, and the kernel is still fine."""
    offset = len(node.log())
    for _ in range(3):
        gone = await connect(node.url)
        kernel_id = await start_kernel(gone)
        events = Recorder()
        await gone.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
        pending = gone.call("cell.kernel.{}.execute".format(kernel_id), "import time; time.sleep(30)")
        pending.addErrback(lambda failure: None)  # its connection is cut on purpose
        await events.wait_for(lambda e: e["header"]["msg_type"] == "execute_input", what="the execution to begin")
        gone._transport.transport.abortConnection()  # no goodbye
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    d = session.call("cell.kernel.{}.execute".format(kernel_id), "import time; time.sleep(30)")
    await events.wait_for(lambda e: e["header"]["msg_type"] == "execute_input", what="the execution to begin")
    d.cancel()  # the caller stops waiting; the kernel goes on until interrupted
    try:
        await within(d, 5, "the cancelled call")
    except Exception:
        pass
    await call(session, kernel_id, "interrupt")
    await events.wait_for(lambda e: e["header"]["msg_type"] == "error", what="the interrupted execution's error")
    for _ in range(50):  # right after an error ipykernel aborts what is queued; a client runs it again
        result = await call(session, kernel_id, "execute", "'usable'")
        if result["status"] != "aborted":
            break
    assert result["outputs"][0]["data"]["text/plain"] == "'usable'"
    session.leave()
    log = node.log()[offset:]
    assert "Failed to detach" not in log and "unhandled message" not in log and "Traceback" not in log, log[-3000:]


@pytest_twisted.ensureDeferred
async def test_a_lone_surrogate_from_a_json_client_gets_a_clear_error_not_a_hung_call(node, monkeypatch):
    """JSON can carry "\\ud800" (a browser's JSON.stringify writes it so); the node's own links (msgpack) cannot,
    so the call once hung for ever and the router logged an unhandled error.  The kernel relay refuses it first."""
    import json

    from autobahn.wamp import serializer

    def as_a_browser_writes_it(obj, use_binary_hex_encoding=False):
        return json.dumps(
            obj,
            separators=(",", ":"),
            ensure_ascii=True,
            use_binary_hex_encoding=use_binary_hex_encoding,
            cls=serializer._WAMPJsonEncoder,
        )

    monkeypatch.setattr(serializer, "_dumps", as_a_browser_writes_it)
    session = await connect(node.url, serializers=["json"])
    kernel = await within(session.call("cell.kernel.start"), 30, "cell.kernel.start")
    for args, kwargs in ((["\ud800"], {}), (["1"], {"user_expressions": {"x": "\udfff"}})):
        await expect_error(
            call(session, kernel["kernel_id"], "execute", *args, **kwargs), "cell.error.invalid_argument"
        )
    result = await call(session, kernel["kernel_id"], "execute", "'\\u00e9t\\u00e9 ok'")
    assert result["outputs"][0]["data"]["text/plain"] == "'été ok'"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_lone_surrogate_from_a_kernel_or_a_one_shot_is_repaired_not_a_hung_call(node):
    """A one-shot that prints "\\ud800", and a kernel that writes its own iopub message holding one as a JSON escape:
    the spawner's msgpack link cannot carry it, so the result was never sent.  It comes back as U+FFFD."""
    session = await connect(node.url)
    result = await within(session.call("cell.execute", "print('\\ud800 half')"), 30, "the one-shot")
    assert result["outputs"][0]["text"] == "\ufffd half\n"
    kernel = await within(session.call("cell.kernel.start"), 30, "cell.kernel.start")
    hostile = (
        "import json\n"
        "k = get_ipython().kernel\n"
        "pack = k.session.pack\n"
        "k.session.pack = lambda o: json.dumps(o, default=str).encode()\n"
        "k.session.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'half \\ud800 pair'}, parent=k.get_parent())\n"
        "k.session.pack = pack\n"
    )
    result = await call(session, kernel["kernel_id"], "execute", hostile)
    assert result["status"] == "ok" and result["outputs"][0]["text"] == "half \ufffd pair", result
    assert (await call(session, kernel["kernel_id"], "execute", "1 + 1"))["status"] == "ok"
    session.leave()
