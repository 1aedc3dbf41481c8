"""The Python client library (clients/python, ``cellclient``) against a real node.

cellclient runs autobahn on asyncio, and txaio serves one framework per process: the suite's process runs autobahn on
Twisted. So the cases (``case_*``) run in a pytest of their own (a fresh interpreter, ``CELLCLIENT_INNER=1``)
against the suite's node, once per session, and each ``test_client[case]`` of the suite reports its case's outcome.
``make test`` installs the package into .venv with pip, as a user would (the Makefile's ``.client-installed``).
"""

import asyncio
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree

import pytest

INNER = os.environ.get("CELLCLIENT_INNER") == "1"

if INNER:
    from cellclient import AsyncClient, Client, errors


# ---------------------------------------------------------------- the cases (run inside the inner pytest)


@pytest.fixture
def url():
    return os.environ["CELL_URL"]


@pytest.fixture
def service():
    return ("service", os.environ["CELL_SECRET"])


def case_one_shot_prints_and_returns_a_value(url):
    seen = []
    with Client(url) as c:
        ex = c.run("print('hello'); 6 * 7", on_stdout=seen.append)
    assert ex.status == "ok"
    assert ex.stdout == "hello\n"
    assert "".join(seen) == "hello\n"
    assert ex.result == {"text/plain": "42"} and ex.text == "42"
    assert ex.error is None


def case_one_shot_files_in_and_out(url):
    code = "data = open('in/a.bin', 'rb').read()\nopen('out.bin', 'wb').write(data[::-1])\nprint(len(data))"
    payload = bytes(range(256)) * 4
    with Client(url) as c:
        ex = c.run(code, files={"in/a.bin": payload}, return_files=True)
        assert ex.status == "ok", ex.raw
        assert ex.stdout == "1024\n"
        assert ex.files["out.bin"] == payload[::-1]
        plain = c.run(code, files={"in/a.bin": payload})
        assert plain.files == {} or all(v is None for v in plain.files.values()), "files come back only when asked"


def case_one_shot_in_another_language(url):
    with Client(url) as c:
        ex = c.run("echo from-bash", language="bash")
    assert ex.status == "ok" and "from-bash" in ex.stdout


def case_one_shot_error_and_timeout(url):
    with Client(url) as c:
        ex = c.run("1 / 0")
        assert ex.status == "error"
        assert ex.error["ename"] == "ZeroDivisionError"
        assert any("ZeroDivisionError" in line for line in ex.error["traceback"])
        started = time.monotonic()
        slow = c.run("import time\nprint('before', flush=True)\ntime.sleep(60)", timeout=2)
        assert slow.status == "timeout"
        assert slow.stdout == "before\n"
        assert time.monotonic() - started < 30


def case_callbacks_in_order(url):
    code = (
        "import sys\n"
        "for i in range(60):\n"
        "    print('out', i, flush=True)\n"
        "    if i % 7 == 0: print('err', i, file=sys.stderr, flush=True)\n"
        "from IPython.display import display, HTML\n"
        "display(HTML('<b>x</b>'))\n"
        "'last'"
    )
    events = []
    with Client(url) as c:
        ex = c.run(
            code,
            on_stdout=lambda t: events.append(("stdout", t)),
            on_stderr=lambda t: events.append(("stderr", t)),
            on_display=lambda o: events.append((o["output_type"], o["data"])),
        )
    merged = []
    for kind, value in events:
        if merged and kind in ("stdout", "stderr") and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + value)
        else:
            merged.append((kind, value))
    expected = [
        (o["name"], o["text"]) if o["output_type"] == "stream" else (o["output_type"], o["data"]) for o in ex.outputs
    ]
    assert merged == expected, "the callbacks saw the outputs in the order of the result, each once"
    assert "".join(t for k, t in events if k == "stdout") == "".join("out {}\n".format(i) for i in range(60))
    assert [k for k, _ in events][-2:] == ["display_data", "execute_result"]


def case_a_kernel_keeps_state_and_its_tools_work(url):
    with Client(url) as c:
        with c.kernel(language="python") as k:
            assert k.run("x = 20").status == "ok"
            assert k.run("x + 22").text == "42"
            completions = k.complete("import os; os.pat")
            assert "os.path" in completions["matches"] or "path" in completions["matches"]
            help_ = k.inspect("len")
            assert help_["found"] and "text/plain" in help_["data"]
            k.restart()
            after = k.run("x")
            assert after.status == "error" and after.error["ename"] == "NameError"
            assert k.widgets() == {}
            k.run("import ipywidgets as w\ns = w.IntSlider(value=3)\ns")
            widgets = k.widgets()
            assert widgets and all(v["target_name"] == "jupyter.widget" for v in widgets.values())


def case_kernel_files(url):
    big = os.urandom(3 * 1024 * 1024 + 17)  # past one chunk either way
    with Client(url) as c:
        with c.kernel() as k:
            k.files.write("data/big.bin", big)
            k.files.write("note.txt", "héllo")
            assert k.files.read("data/big.bin") == big
            names = {e["name"]: e for e in k.files.list()}
            assert names["data"]["type"] == "dir" and names["note.txt"]["size"] == len("héllo".encode())
            assert [e["name"] for e in k.files.list("data")] == ["big.bin"]
            ex = k.run("print(open('note.txt').read()); open('made.txt', 'w').write('m')")
            assert ex.stdout == "héllo\n"
            assert "made.txt" in ex.files
            assert k.files.read("made.txt") == b"m"
            for path in ("../etc/passwd", "/etc/passwd"):
                with pytest.raises(errors.InvalidArgument):
                    k.files.read(path)


def case_interrupt_a_running_kernel(url):
    async def main():
        async with AsyncClient(url) as c:
            async with c.kernel() as k:
                started = asyncio.Event()
                run = asyncio.ensure_future(
                    k.run("import time\nprint('go', flush=True)\ntime.sleep(60)", on_stdout=lambda t: started.set())
                )
                await asyncio.wait_for(started.wait(), 30)
                await k.interrupt()
                ex = await asyncio.wait_for(run, 30)
                assert ex.status == "error" and ex.error["ename"] == "KeyboardInterrupt"
                assert (await k.run("1 + 1")).text == "2"

    asyncio.run(main())


def case_each_error_class(url, service):
    with Client(url) as c:
        with pytest.raises(errors.NotFound) as e:
            c.run("x", language="cobol")
        assert "python3" in e.value.message and e.value.uri == "cell.error.not_found"
        with pytest.raises(errors.TooLarge):
            c.run("#" * (300 * 1024))
        with pytest.raises(errors.InvalidArgument):
            c.run("1", timeout="soon")
        kernels = [c.kernel() for _ in range(4)]
        with pytest.raises(errors.Capacity) as e:
            c.kernel()
        assert e.value.message
        dying = kernels[0]
        with pytest.raises(errors.KernelDied):
            dying.run("import os; os._exit(3)")
        with pytest.raises(errors.NotFound):
            dying.run("1")
        busy = kernels[1]
        outcome = []
        sleeper = threading.Thread(target=lambda: outcome.append(busy.run("import time; time.sleep(40)")))
        sleeper.start()
        with pytest.raises(errors.Timeout):
            busy.complete("impo")  # the kernel's shell is busy: no reply within request_timeout_s
        busy.interrupt()
        sleeper.join(30)
        assert outcome[0].error["ename"] == "KeyboardInterrupt"
        kernels[2].shutdown()
        with pytest.raises(errors.NotFound):
            kernels[2].run("1")
    with pytest.raises(errors.NotAuthorized):
        Client(url, credential=("service", "not-the-secret"))
    with pytest.raises(errors.Unavailable):
        Client("ws://127.0.0.1:9/ws", connect_timeout=3)
    with pytest.raises(errors.InvalidArgument):
        Client("http://127.0.0.1/ws")
    for error in (errors.NotFound, errors.Capacity, errors.TooLarge, errors.KernelDied, errors.Timeout):
        assert issubclass(error, errors.CellError)


def case_service_credential(url, service):
    with Client(url, credential=service) as c:
        kernels = [c.kernel() for _ in range(5)]  # past the browser role's 4: a service may have more
        assert len({k.id for k in kernels}) == 5
        ex = c.run("#" * (100 * 1024) + "\nprint('big code ok')")
        assert ex.stdout == "big code ok\n"


def case_async_api(url):
    async def main():
        async with AsyncClient(url) as c:
            runs = await asyncio.gather(*(c.run("print({})".format(i)) for i in range(6)))
            assert [r.stdout for r in runs] == ["{}\n".format(i) for i in range(6)]
            k = await c.kernel("python")
            try:
                await k.files.write("a.txt", b"abc")
                assert (await k.run("open('a.txt').read()")).text == "'abc'"
            finally:
                await k.shutdown()
            with pytest.raises(errors.NotFound):
                await k.run("1")

    asyncio.run(main())


def case_resumes_an_idle_kernel_after_a_dropped_connection(url):
    with Client(url) as c:
        with c.kernel() as k:
            k.run("y = 7")
            epoch = c.aio.connection.epoch
            c.drop_connection()
            assert k.run("y * 6").text == "42", "the kernel was re-bound with its resume token"
            assert c.aio.connection.epoch == epoch + 1


def case_a_dropped_connection_mid_run_loses_nothing(url):
    n = 120
    code = "import time\nfor i in range({}):\n    print('line', i, flush=True)\n    time.sleep(0.02)".format(n)
    lines = []
    dropped = threading.Event()
    with Client(url) as c:

        def on_stdout(text):
            lines.append(text)
            if len(lines) == 20 and not dropped.is_set():
                dropped.set()
                c.aio.connection.drop()  # on the client's loop: the transport aborted, as a cut network does

        with c.kernel() as k:
            ex = k.run(code, on_stdout=on_stdout)
            assert dropped.is_set()
            assert ex.status == "ok"
            expected = "".join("line {}\n".format(i) for i in range(n))
            assert "".join(lines) == expected, "every line once, in order, across the reconnect"
            assert ex.stdout == expected
            assert ex.execution is not None and ex.tag
            runs = k.executions()
            assert runs[-1]["tag"] == ex.tag and runs[-1]["status"] == "ok"
            again = []
            replay = k.attach(ex.tag, on_stdout=again.append)
            assert "".join(again) == expected and replay.stdout == expected
            tail = []
            k.attach(ex.execution, since=n - 2, on_stdout=tail.append)
            assert "".join(tail) == "line {}\nline {}\n".format(n - 2, n - 1)


def case_a_one_shot_cut_by_a_dropped_connection_says_so(url):
    with Client(url) as c:

        def cut(_):
            c.aio.connection.drop()

        with pytest.raises(errors.ConnectionLost):
            c.run("import time\nprint('x', flush=True)\ntime.sleep(5)", on_stdout=cut)
        assert c.run("1").text == "1", "the client reconnected"


def _remote_spawner_only(config):
    """The node without its local spawner (which would end with it): spawner w9 joins over TCP, as a worker host's."""
    config["workers"] = [w for w in config["workers"] if w["type"] != "guest"]
    for worker in config["workers"]:
        if worker["type"] == "container":
            worker["components"][0]["extra"]["spawners"] = {"w9": "CELL_SPAWNER_W9_SECRET"}


def case_a_run_goes_on_across_a_router_restart(tmp_path):
    """The whole router process stopped and started again mid-run: the client reconnects, resumes the kernel once
    its worker has joined the new router, and re-attaches: every line once, in order."""
    from tests.node import ROOT, Node

    os.environ["CELL_SPAWNER_W9_SECRET"] = "w9-" + os.urandom(8).hex()
    node = Node(tmp_path, edit=_remote_spawner_only)
    worker = None
    restarter = None
    try:
        node.start(ready=("session router ready",))
        worker = subprocess.Popen(
            [sys.executable, "-m", "components.kernel_spawner", "--router", node.url, "--id", "w9"]
            + ["--secret-env", "CELL_SPAWNER_W9_SECRET", "--config", '{"pool_size": 1}'],
            cwd=ROOT,
            env=node.env(),
            stdout=open(os.path.join(node.dir, "w9.log"), "wb"),
            stderr=subprocess.STDOUT,
        )
        with Client(node.url, reconnect_timeout=90) as c:
            deadline = time.monotonic() + 60
            while True:  # poll: the worker joining the node
                try:
                    k = c.kernel()
                    break
                except errors.Capacity:
                    assert time.monotonic() < deadline, "spawner w9 did not join within 60 s"
                    time.sleep(0.2)  # poll
            restarted = threading.Event()

            def restart():
                node.stop()
                node.start(ready=("session router ready",))
                restarted.set()

            lines = []

            def on_stdout(text):
                nonlocal restarter
                lines.append(text)
                if len(lines) == 10:
                    restarter = threading.Thread(target=restart)
                    restarter.start()

            n = 100
            code = "import time\nfor i in range({}):\n    print('line', i, flush=True)\n    time.sleep(0.1)".format(n)
            ex = k.run(code, on_stdout=on_stdout)
            restarter.join(120)
            assert restarted.is_set(), "the router was restarted during the run"
            expected = "".join("line {}\n".format(i) for i in range(n))
            assert "".join(lines) == expected and ex.stdout == expected and ex.status == "ok"
            assert k.run("21 * 2").text == "42"
    finally:
        if restarter is not None:
            restarter.join(120)
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(30)
        node.stop()


# ---------------------------------------------------------------- the suite's side

CASES = sorted(name for name in dict(globals()) if name.startswith("case_"))


@pytest.fixture(scope="session")
def inner_results(node, tmp_path_factory):
    """Run every case in a fresh interpreter against the suite's node; C{{case: (passed, text)}}."""
    base = tmp_path_factory.mktemp("cellclient")
    report = base / "report.xml"
    env = dict(os.environ, CELLCLIENT_INNER="1", CELL_URL=node.url, CELL_SECRET=node.service_secret)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            os.path.abspath(__file__),
            "-p",
            "no:twisted",
            "-p",
            "no:cacheprovider",
            "-o",
            "python_functions=case_*",
            "-q",
            "--junitxml",
            str(report),
            "--basetemp",  # its own: pytest prunes old numbered temp dirs, another run's included
            str(base / "tmp"),
        ],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    results = {}
    if report.exists():
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
            text = "\n".join((p.get("message") or "") + "\n" + (p.text or "") for p in problems)
            results[case.get("name")] = (not problems, text)
    return results, proc.stdout[-6000:] + proc.stderr[-3000:]


@pytest.mark.timeout(900)  # the first case's setup runs them all
@pytest.mark.parametrize("case", CASES)
def test_client(case, inner_results):
    results, output = inner_results
    assert case in results, "the case did not run; the inner pytest said:\n" + output
    passed, text = results[case]
    assert passed, text
