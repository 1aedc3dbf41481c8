"""thebe (npm ``thebe`` 0.9.3, which bundles ``thebe-core`` 0.5 and @jupyterlab/services 7) on a page of another
origin, in Chromium, against a real node's Jupyter face: what a Jupyter Book or sphinx-thebe page does.

The page is served by a throwaway HTTP server on another port (another
origin than the node's); thebe runs in local-server mode
(``serverSettings.baseUrl`` the node's ``/jupyter``): its status ping, its
session (``POST api/sessions``), the channels WebSocket with the v1
subprotocol.  Every message thebe receives passes @jupyterlab/services'
validator, or the page would throw ("Kernel message validation error"); the
messages the node writes itself (an error reply, a lost kernel's ``dead``)
are put through that validator in node.js as well.
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

import pytest
import pytest_twisted

from tests import test_web
from tests.jupyter_ws import ChannelsClient, call_rest, message, rest
from tests.node import ROOT, Node

THEBE_DIR = os.path.join(ROOT, "tests", "thebe")
INSTALLED = os.path.join(THEBE_DIR, "node_modules", ".installed")
#: what thebe's widget manager fetches before its first widget (thebe-core's requireJsLoader.ts); a visitor's browser
#: gets it from cdnjs, this one from npm's copy of the same release (the tests have no network)
REQUIREJS_CDN = "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js"
REQUIREJS = os.path.join(THEBE_DIR, "node_modules", "requirejs", "require.js")

chromium = test_web.chromium  # the browser fixture (a real Chromium)

CELLS = [
    "x = 6 * 7\nprint('x is', x)",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()",
    "import ipywidgets as widgets\nslider = widgets.IntSlider(value=5, description='n')\nout = widgets.Output()\n"
    "def moved(change):\n    with out:\n        print('moved to', change['new'])\n"
    "slider.observe(moved, names='value')\ndisplay(slider, out)",
    "import time\nprint('sleeping', flush=True)\ntime.sleep(60)",
    "print('x after', x)",
]


def npm_ci():
    """tests/thebe's locked packages (``make test`` installs them; run here when it did not), one install at a time
    (``npm ci`` empties node_modules first: two at once break each other)."""
    with open(os.path.join(THEBE_DIR, ".npm-ci.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(INSTALLED):
            assert shutil.which("npm"), "npm is needed for the thebe tests (Debian's npm)"
            subprocess.run(
                ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=THEBE_DIR, check=True, timeout=900
            )
            open(INSTALLED, "w").close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A static site on its own port (another origin than any node): thebe's files and the test's pages."""
    npm_ci()
    root = tmp_path_factory.mktemp("book")
    os.symlink(os.path.join(THEBE_DIR, "node_modules", "thebe", "lib"), root / "thebe")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, "http://127.0.0.1:{}".format(server.server_address[1])
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def thebe_node(tmp_path_factory, site):
    """A node whose face lets the site's pages use a token too (allowed_origins); any other origin anonymously."""
    _, origin = site

    def allow(config):
        config["workers"][0]["transports"][1]["paths"]["jupyter"]["extra"]["allowed_origins"] = [origin]

    node = Node(tmp_path_factory.mktemp("thebe"), edit=allow).start()
    yield node
    node.stop()


def write_page(site, name, node, token=""):
    root, origin = site
    face = "http://127.0.0.1:{}/jupyter/".format(node.port)  # thebe appends "api/...": the slash is needed
    config = {
        "bootstrap": True,
        "requestKernel": True,
        "useBinder": False,
        "mountActivateWidget": False,
        "serverSettings": {"baseUrl": face, "wsUrl": face.replace("http:", "ws:"), "token": token, "appendToken": True},
        "kernelOptions": {"kernelName": "python3", "path": "/book/" + name.replace(".html", ".ipynb")},
        "savedSessions": {"enabled": True},
    }
    cells = "\n".join(
        '<pre data-executable="true" data-language="python">{}</pre>'.format(
            code.replace("&", "&amp;").replace("<", "&lt;")
        )
        for code in CELLS
    )
    (root / name).write_text(
        """<!doctype html><html><head><meta charset="utf-8"><title>A book page</title>
<script type="text/x-thebe-config">{config}</script>
<link rel="stylesheet" href="thebe/thebe.css">
<script src="thebe/index.js"></script></head>
<body><h1>A page of a book, on another site</h1>{cells}</body></html>""".format(config=json.dumps(config), cells=cells)
    )
    return "{}/{}".format(origin, name)


def open_book(context, url):
    context.route(
        REQUIREJS_CDN,
        lambda route: route.fulfill(
            path=REQUIREJS, content_type="application/javascript", headers={"Access-Control-Allow-Origin": "*"}
        ),
    )
    page = context.new_page()
    page.set_default_timeout(60000)
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda msg: problems.append(msg.text) if "validation error" in msg.text.lower() else None)
    page.goto(url)
    ready = "window.thebe && window.thebe.session && window.thebe.session.kernel && window.thebe.session.kernel.connectionStatus === 'connected' && window.thebe.session.kernel.status === 'idle'"
    page.wait_for_function(ready)
    return page, problems


def run_cell(page, index):
    page.locator(".thebe-run-button").nth(index).click()


def output(page, index):
    return page.locator(".thebe-cell").nth(index).locator(".thebe-output").first


def test_thebe_runs_cells_plots_and_widgets_from_another_origin_anonymously(chromium, site, thebe_node):
    from playwright.sync_api import expect

    node = thebe_node
    url = write_page(site, "anonymous.html", node)
    context = chromium.new_context()
    asked = []
    context.on("request", lambda request: asked.append(request.url) if "/jupyter/" in request.url else None)
    try:
        page, problems = open_book(context, url)
        kernel_id = page.evaluate("window.thebe.session.kernel.id")
        assert any("/jupyter/api/status?" in u for u in asked), "thebe's reachability ping"
        assert any("/jupyter/api/sessions" in u for u in asked), "thebe asked for a session"
        assert rest(node, "GET", "/api/kernels/" + kernel_id)[0] == 200, "the page's kernel, reached by its id"
        assert rest(node, "GET", "/api/kernels")[1] == [], "listed to nobody"

        run_cell(page, 0)
        expect(output(page, 0)).to_contain_text("x is 42", timeout=30000)
        run_cell(page, 1)
        expect(output(page, 1).locator("img")).to_be_visible(timeout=30000)
        width = output(page, 1).locator("img").evaluate("img => img.naturalWidth")
        assert width > 100, "a matplotlib PNG"

        run_cell(page, 2)
        handle = output(page, 2).locator(".noUi-handle, .widget-slider input, [role=slider]").first
        expect(handle).to_be_visible(timeout=30000)
        handle.focus()
        page.keyboard.press("ArrowRight")
        expect(output(page, 2)).to_contain_text("moved to 6", timeout=20000)
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 120, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        expect(output(page, 2)).to_contain_text(re.compile(r"moved to [1-9][0-9]"), timeout=20000)  # dragged on

        run_cell(page, 3)
        expect(output(page, 3)).to_contain_text("sleeping", timeout=30000)
        page.evaluate("window.thebe.session.kernel.interrupt()")
        expect(output(page, 3)).to_contain_text("KeyboardInterrupt", timeout=30000)

        page.locator(".thebe-restart-button").first.click()
        page.wait_for_function("window.thebe.session.kernel.status === 'idle'")
        run_cell(page, 4)
        expect(output(page, 4)).to_contain_text("NameError", timeout=30000)
        assert page.evaluate("window.thebe.session.kernel.id") == kernel_id, "the same kernel, a fresh process"
        assert not problems, problems
        assert rest(node, "DELETE", "/api/kernels/" + kernel_id)[0] == 204
        page.wait_for_function("window.thebe.session.kernel.connectionStatus !== 'connected'")
    finally:
        context.close()


def test_a_reloaded_page_gets_its_session_back(chromium, site, thebe_node):
    """thebe asks for a session of its page's path at each load; a principal that asks again for the same path gets
    the same session and kernel (Jupyter Server's rule): here a token on an allowed origin.  Anonymous pages get a
    new one each time (a path is no secret), and their old one stays reachable by its id."""
    from playwright.sync_api import expect

    node = thebe_node
    url = write_page(site, "mine.html", node, token=node.service_secret)
    context = chromium.new_context()
    try:
        page, problems = open_book(context, url)
        kernel_id = page.evaluate("window.thebe.session.kernel.id")
        run_cell(page, 0)
        expect(output(page, 0)).to_contain_text("x is 42", timeout=30000)
        page.reload()
        page.wait_for_function(
            "window.thebe && window.thebe.session && window.thebe.session.kernel && "
            "window.thebe.session.kernel.connectionStatus === 'connected'"
        )
        assert page.evaluate("window.thebe.session.kernel.id") == kernel_id, "the same kernel after the reload"
        run_cell(page, 4)
        expect(output(page, 4)).to_contain_text("x after 42", timeout=30000)
        assert not problems, problems
        sessions = rest(node, "GET", "/api/sessions", token=node.service_secret)[1]
        assert [s["kernel"]["id"] for s in sessions if s["path"].endswith("mine.ipynb")] == [kernel_id]
        for session in sessions:
            assert rest(node, "DELETE", "/api/sessions/" + session["id"], token=node.service_secret)[0] == 204
    finally:
        context.close()


def validate(messages):
    """@jupyterlab/services' validateMessage over C{messages}, in node.js: the errors, one per invalid message."""
    script = (
        "const {validateMessage} = require('@jupyterlab/services/lib/kernel/validate');"
        "const msgs = JSON.parse(require('fs').readFileSync(0, 'utf8')); const errors = [];"
        "for (const m of msgs) { try { validateMessage(m); } catch (e) {"
        " errors.push(m.header.msg_type + ': ' + e.message); } }"
        "console.log(JSON.stringify(errors));"
    )
    payload = json.dumps([{k: v for k, v in m.items() if k != "buffers"} for m in messages])
    done = subprocess.run(
        ["node", "-e", script], cwd=THEBE_DIR, input=payload, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout)


@pytest_twisted.ensureDeferred
async def test_every_message_the_node_writes_passes_jupyterlabs_validator(node):
    """The kernel's messages and the node's own: a refused request's error reply, and the dead status of a kernel
    whose process ended."""
    npm_ci()
    status, model = await call_rest(node, "POST", "/api/kernels", {"name": "python3"})
    client = await ChannelsClient(node, model["id"], protocol="v1.kernel.websocket.jupyter.org").connect()
    await client.execute("print('hi'); 1 / 0")
    refused = client.send(message("shell", "evil_request", {}))
    reply = await client.reply_to(refused)
    assert reply["content"]["status"] == "error", "the node's own error reply"
    client.send(message("shell", "execute_request", {"code": "import os; os._exit(1)"}))
    dead = await client.wait_for(
        lambda m: m["header"]["msg_type"] == "status" and m["content"]["execution_state"] == "dead",
        what="the node's dead status",
    )
    assert dead["header"]["username"] and dead["header"]["version"]
    kinds = {m["header"]["msg_type"] for m in client.messages}
    assert {"status", "stream", "error", "execute_reply", "execute_input"} <= kinds, kinds
    assert validate(client.messages) == []
    assert validate([dict(dead, header=dict(dead["header"], username=None))]), "the validator does refuse"
