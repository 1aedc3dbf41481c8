"""The JavaScript client (clients/js) against a real node: under Node.js (the scripts in tests/client_js, run with
``node``, each printing one JSON line of what it saw) and in Chromium (a page of the node's origin importing the
module the node serves at ``/client/cellclient.js``).
"""

import fcntl
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.request

import pytest

from tests.node import ROOT, Node
from tests.test_web import chromium  # noqa: F401 (the browser fixture)

CLIENT_DIR = os.path.join(ROOT, "clients", "js")
SCRIPTS = os.path.join(ROOT, "tests", "client_js")
INSTALLED = os.path.join(CLIENT_DIR, "node_modules", ".installed")


def npm_ci():
    """clients/js's locked packages (``make test`` installs them; run here when it did not), one install at a time."""
    with open(os.path.join(CLIENT_DIR, ".npm-ci.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(INSTALLED):
            assert shutil.which("npm"), "npm is needed for the JavaScript client's tests (Debian's npm)"
            subprocess.run(
                ["npm", "ci", "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=CLIENT_DIR,
                check=True,
                timeout=900,
            )
            open(INSTALLED, "w").close()


@pytest.fixture(scope="module")
def js_node(tmp_path_factory):
    assert shutil.which("node"), "Node.js is needed for the JavaScript client's tests (Debian's nodejs)"
    npm_ci()
    node = Node(tmp_path_factory.mktemp("clientjs")).start()
    yield node
    node.stop()


def run_script(name, *args, timeout=180):
    """Run tests/client_js/<name> with node; what it reported (its last line of output, JSON)."""
    proc = subprocess.run(
        ["node", os.path.join(SCRIPTS, name), *args], capture_output=True, text=True, timeout=timeout, cwd=CLIENT_DIR
    )
    assert proc.returncode == 0, "{} failed ({}):\n{}\n{}".format(name, proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stdout.strip().splitlines()
    assert lines, "{} reported nothing:\n{}".format(name, proc.stderr)
    return json.loads(lines[-1])


def test_a_one_shot_with_files_and_callbacks(js_node):
    r = run_script("oneshot.mjs", js_node.url)
    assert r["status"] == "ok"
    assert r["stdout"] == "hello from a file\n" and r["stderr"] == "warn\n"
    assert r["text"] == "256"
    assert r["events"] == [
        ["stdout", "hello from a file\n"],
        ["stderr", "warn\n"],
        ["display", "display_data", ["text/html", "text/plain"]],
        ["display", "execute_result", ["text/plain"]],
    ] or r["events"] == [  # stdout and stderr are separate pipes: the kernel may flush them in either order
        ["stderr", "warn\n"],
        ["stdout", "hello from a file\n"],
        ["display", "display_data", ["text/html", "text/plain"]],
        ["display", "execute_result", ["text/plain"]],
    ]
    assert r["outputs"] == ["stream", "stream", "display_data", "execute_result"]
    assert r["files"] == ["out.bin"], "the files the run made come back, not the ones it was given"
    assert r["out_is_uint8array"] and r["out_reversed"]
    assert r["plain"] == ["ok", "42\n", None]


def test_a_kernel_runs_with_callbacks_in_order_and_keeps_its_state(js_node):
    r = run_script("kernel.mjs", js_node.url)
    assert r["status"] == "ok" and r["text"] == "42" and r["execution"] == 1 and r["tag"].startswith("js-")
    expected = []
    for i in range(3):
        expected += [["stdout", "out {}\n".format(i)], ["output", "stream"]]
        expected += [["stderr", "err {}\n".format(i)], ["output", "stream"]]
    expected += [["display", "display_data"], ["output", "display_data"]]
    expected += [["display", "execute_result"], ["output", "execute_result"]]
    assert r["events"] == expected, "each output once, in the order the kernel made them"
    assert r["stdout"] == "out 0\nout 1\nout 2\n" and r["stderr"] == "err 0\nerr 1\nerr 2\n"
    assert r["state"] == "41"
    assert r["raised"] == ["error", "ZeroDivisionError"]
    assert r["asked"] == "hello Ada (Name? , false)\n", "onInput answered input()"
    assert r["asked_by_hand"] == ["got 42\n", ["Age? "], "TooLarge"], "allowStdin: the caller answers, again if refused"
    assert "os" in r["completion"] and r["help_found"] is True
    assert r["wrote"]["size"] == 2_500_000 and r["read_ok"], "a file of several chunks went and came back whole"
    assert r["text_back"] == "über"
    assert r["listing"] == [["dir", "dir"], ["note.txt", "file"]]
    assert r["made_files"] == {"made.txt": None}, "a kernel run names the files it made (their bytes: files.read)"
    assert r["interrupted"] == ["error", "KeyboardInterrupt"]
    assert [e["execution"] for e in r["executions"]] == list(range(1, len(r["executions"]) + 1))
    assert r["executions"][0] == {"execution": 1, "tag": r["tag"], "status": "ok", "outputs": 8}
    assert r["attached"] == ["ok", 1, 8, "out 0\nout 1\nout 2\n"]
    assert r["replay"] == [
        "stream:stdout",
        "stream:stderr",
        "stream:stdout",
        "stream:stderr",
        "display_data:",
        "execute_result:",
    ], "attach from output 2 replays outputs 2..7 and no earlier one"
    assert r["by_tag"] == [1, "42"]
    assert r["after_restart"] == "False", "restart threw the state away"


def test_errors_come_as_classes_named_after_the_uris(js_node):
    r = run_script("errors.mjs", js_node.url, js_node.service_secret)

    def check(key, cls, uri, words):
        e = r[key]
        assert e is not None, key + " did not fail"
        assert (e["class"], e["uri"], e["cell"]) == (cls, uri, True), (key, e)
        assert re.search(words, e["message"]), (key, e["message"])

    check("unknown_language", "NotFound", "cell.error.not_found", "cobol.*offered are python3")
    check("too_large", "TooLarge", "cell.error.too_large", "limit")
    check("not_code", "InvalidArgument", "cell.error.invalid_argument", "code must be a string")
    check("traversal", "InvalidArgument", "cell.error.invalid_argument", r"\.\.")
    check("absolute", "InvalidArgument", "cell.error.invalid_argument", "relative")
    check("long_tag", "TooLarge", "cell.error.too_large", "tag")
    check("unknown_execution", "NotFound", "cell.error.not_found", "424242")
    check("bad_execution", "InvalidArgument", "cell.error.invalid_argument", "execution must be")
    check("wrong_token", "NotFound", "cell.error.not_found", "token")
    check("made_up_kernel", "NotFound", "cell.error.not_found", "resumed")
    check("strangers_call", "NotFound", "cell.error.not_found", "not|no kernel")
    check("capacity", "Capacity", "cell.error.capacity", "4 kernels")
    assert r["capacity"]["started"] == 4
    assert r["callback"]["class"] == "TypeError" and r["callback"]["message"] == "the caller's bug"
    assert r["after_callback"] == "still here\n"
    check("died", "KernelDied", "cell.error.kernel_died", "exited")
    check("after_close", "ConnectionLost", "cell.error.unavailable", "closed")
    check("wrong_secret", "NotAuthorized", "wamp.error.not_authorized", "signature")
    check("unknown_principal", "NotAuthorized", "cell.error.not_authorized", "mallory")
    assert r["service_run"] == "as a service\n"
    check("unreachable", "ConnectionLost", "cell.error.unavailable", "could not connect")


def test_every_error_uri_of_the_node_has_its_class():
    """Each ``ERROR_*`` of components/common/uris.py maps to the class named after it (``not_found`` -> NotFound)."""
    from components.common import uris

    names = {
        v: "".join(p.title() for p in v.rsplit(".", 1)[1].split("_"))
        for k, v in vars(uris).items()
        if k.startswith("ERROR_")
    }
    script = (
        "import { errorClass } from './src/errors.js';"
        "const uris = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(Object.fromEntries(uris.map((u) => [u, errorClass(u).name]))));"
    )
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps(sorted(names))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=CLIENT_DIR,
        check=True,
    )
    assert json.loads(proc.stdout) == names


def test_a_dropped_connection_is_resumed_mid_run_with_nothing_lost_or_doubled(js_node):
    r = run_script("resume.mjs", js_node.url)
    assert r["cuts"] == [
        "mid-run at line 15",
        "mid-run at line 40",
        "just after execute was sent",
        "idle",
        "mid quiet run",
    ]
    assert r["events"] == ["disconnected", "reconnected"] * 5
    assert r["lines"] == ["line {}".format(i) for i in range(60)], "every line once, in order, across two drops"
    assert r["stdout"] == "".join("line {}\n".format(i) for i in range(60)) and r["status"] == "ok"
    assert r["once"] == ["ok", "ran\n"] and r["runs"] == "run\n", "a run cut as it was sent ran exactly once"
    assert r["state"] == "'kept'", "the kernel resumed is the same kernel"
    assert r["quiet"] == "".join("q {}\n".format(i) for i in range(20))


def test_a_drop_the_client_cannot_mend_fails_what_waits_with_a_class_that_says_so(js_node):
    r = run_script("giveup.mjs", js_node.url)
    gone = r["kernel_gone"]
    assert (gone["class"], gone["uri"]) == ("NotFound", "cell.error.not_found"), gone
    assert "could not be resumed" in gone["message"], "the run says its kernel was gone when the connection came back"
    assert r["kernel_gone_then"]["class"] == "NotFound", "and so does the next use of that kernel"
    lost = r["unreachable_run"]
    assert (lost["class"], lost["uri"]) == ("ConnectionLost", "cell.error.unavailable") and lost["cell"], lost
    assert "did not come back" in lost["message"]
    assert r["unreachable_events"] == [["disconnected"], ["closed", "ConnectionLost"]], "one drop, then the end"
    assert r["unreachable_then"]["class"] == "ConnectionLost"


# -- in Chromium ------------------------------------------------------------------------------------------------

IN_PAGE = """async (node) => {
  const { connect, errors } = await import(node + "/client/cellclient.js");
  const c = await connect(node.replace("http", "ws") + "/ws");
  const seen = [];
  const once = await c.run("print('one-shot', 6 * 7)\\nopen('f.txt', 'w').write('x')", {
    files: { "in.txt": new Uint8Array([104, 105]) }, returnFiles: true, onStdout: (t) => seen.push(t) });
  const k = await c.kernel();
  const lines = [];
  const run = await k.run("for i in range(3): print('k', i, flush=True)\\n'done'", { onStdout: (t) => lines.push(t) });
  await k.files.write("b.bin", new Uint8Array([0, 255, 7]));
  const back = Array.from(await k.files.read("b.bin"));
  let error = null;
  try { await k.files.read("../x"); } catch (e) { error = [e.constructor.name, e instanceof errors.CellError, e.uri]; }
  await c.close();
  return { once: [once.status, once.stdout, seen, Object.entries(once.files).map(([name, data]) => [name, Array.from(data)])],
           run: [run.status, run.text, lines.join(""), run.execution], back, error,
           autobahn: typeof window.autobahn };
}"""


def test_the_node_serves_the_module_it_is_made_of(js_node):
    for name in ("cellclient.js", "kernel.js", "errors.js", "execution.js", "autobahn.js"):
        with urllib.request.urlopen("http://127.0.0.1:{}/client/{}".format(js_node.port, name), timeout=10) as r:
            assert r.headers.get_content_type() in ("application/javascript", "text/javascript"), name
            with open(os.path.join(CLIENT_DIR, "src", name), "rb") as f:
                assert r.read() == f.read(), name


def test_the_served_directory_gives_nothing_beside_the_module(js_node):
    """web/client links to clients/js/src: a stranger climbing out of it (raw paths, escaped dots) gets 404s."""
    import http.client

    with open(os.path.join(CLIENT_DIR, "package.json"), "rb") as f:
        package = f.read()
    for path in (
        "/client/../../clients/js/package.json",
        "/client/%2e%2e/package.json",
        "/client/%2e%2e/%2e%2e/clients/js/package.json",
        "/client/..%2f..%2fclients/js/package.json",
        "/client/../node_modules/autobahn/package.json",
    ):
        conn = http.client.HTTPConnection("127.0.0.1", js_node.port, timeout=10)
        conn.request("GET", path)  # sent as written: http.client does not resolve dots
        answer = conn.getresponse()
        body = answer.read()
        conn.close()
        assert answer.status == 404 and body != package and b'"autobahn"' not in body, path


def test_a_page_imports_the_client_from_the_node_and_runs_code(chromium, js_node):  # noqa: F811
    context = chromium.new_context()
    try:
        page = context.new_page()
        # Any page of the node's origin will do: its 404 page has no script of its own, so the module must load
        # autobahn-browser itself. (A page Playwright makes up is refused the WebSocket by Chromium's checks of
        # local network access: a real answer of the node is needed.)
        page.goto("http://127.0.0.1:{}/client/".format(js_node.port))
        assert page.evaluate("typeof window.autobahn") == "undefined"
        r = page.evaluate(IN_PAGE, "http://127.0.0.1:{}".format(js_node.port))
    finally:
        context.close()
    check_page_runs(r)


def check_page_runs(r):
    assert r["once"] == ["ok", "one-shot 42\n", ["one-shot 42\n"], [["f.txt", [120]]]]
    assert r["run"][:3] == ["ok", "'done'", "k 0\nk 1\nk 2\n"] and r["run"][3] == 1
    assert r["back"] == [0, 255, 7]
    assert r["error"] == ["InvalidArgument", True, "cell.error.invalid_argument"]
    assert r["autobahn"] == "object", "autobahn-browser's build, loaded from the node next to the module"


@pytest.fixture
def other_site(tmp_path):
    """A page of another origin (its own port): what a site that embeds the node's cells is."""
    (tmp_path / "index.html").write_text("<!doctype html><title>another site</title><p>a page of another origin</p>")
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:{}/".format(server.server_address[1])
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_page_of_another_site_imports_the_client_from_the_node(chromium, js_node, other_site):  # noqa: F811
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(other_site)
        r = page.evaluate(IN_PAGE, "http://127.0.0.1:{}".format(js_node.port))
    finally:
        context.close()
    check_page_runs(r)
