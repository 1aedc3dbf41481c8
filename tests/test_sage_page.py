"""Sage's rich output in the page and in embedded cells (issue 21), in Debian's Chromium against a real node with Sage.

Sage's preparser, ``show()`` typeset by KaTeX, a plot image, a 3D plot drawn by Sage's viewer in a sandboxed frame
with Three.js from the node (no request to any other host), Sage's ``@interact`` controls driven by keyboard and
mouse in the page and in a cell embedded in a page of another origin; and a forged 3D viewer whose script tries to
reach the page, its cookies and its WAMP session, and to send what it finds elsewhere.
"""

import functools
import http.server
import json
import os
import threading
import time
import urllib.parse

import pytest

from tests import test_web
from tests.node import ROOT, Node, with_sage
from tests.test_web import ARGS, ARTIFACTS, CHROMIUM, run

SAGE_TIMEOUT = 60000  # a Sage kernel's first integrate or plot on a busy 2-core machine; a pass comes at once


@pytest.fixture(scope="module")
def sage_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("sage-web"), edit=with_sage).start()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium; WebGL from SwiftShader (the machine has no GPU), as Sage's 3D viewer needs it."""
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "install Debian's chromium (make test does it when run as root)"
    pw = sync_playwright().start()
    browser = pw.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=ARGS + ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
    )
    yield browser
    browser.close()
    pw.stop()


class Hosts:
    """Every URL the browser asked for (pages, frames, scripts, images, WebSockets), of every frame, and those that
    were answered (a request a policy blocks is asked for, then fails without reaching the network)."""

    def __init__(self, context):
        self.urls = []
        self.answered = []
        context.on("request", lambda request: self.urls.append(request.url))
        context.on("requestfinished", lambda request: self.answered.append(request.url))

    def watch(self, page):
        page.on("websocket", lambda ws: self.urls.append(ws.url))

    def foreign(self, *allowed):
        """The URLs to hosts other than C{allowed} (host:port), but for data: and blob: URLs."""
        return [
            url
            for url in self.urls
            if urllib.parse.urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urllib.parse.urlsplit(url).netloc not in allowed
        ]


@pytest.fixture
def browser_page(chromium, sage_node, request):
    from playwright.sync_api import expect

    context = chromium.new_context()
    hosts = Hosts(context)
    page = context.new_page()
    hosts.watch(page)
    page.set_default_timeout(SAGE_TIMEOUT)
    expect.set_options(timeout=SAGE_TIMEOUT)
    yield page, hosts
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, request.node.name + ".png"))
    context.close()


def node_host(node):
    return "127.0.0.1:{}".format(node.port)


SAGE_READY = """async () => {
  const status = await window.cellserver._connection().session.call("cell.status");
  return status.spawners.some(spawner => (spawner.language_pools || {}).sagemath >= 1);
}"""


def open_sage(page, node):
    """The node's page, its language picker set to Sage, once a Sage kernel waits in the pool (the Sage master
    takes tens of seconds to import and warm up Sage after the node starts)."""
    test_web.open_page(page, node)
    page.wait_for_function(SAGE_READY, polling=500, timeout=180000)
    page.wait_for_selector(".cell-language option[value='sagemath']", state="attached")
    page.select_option(".cell-language", "sagemath")


def finished(page):
    from playwright.sync_api import expect

    expect(page.locator(".cell-status")).to_have_text("")


def test_preparser_show_and_plot(browser_page, sage_node):
    from playwright.sync_api import expect

    page, hosts = browser_page
    open_sage(page, sage_node)
    run(page, "show(integrate(sin(x)^2, x))")
    math = page.locator(".cell-output .output-sage-math")
    expect(math.locator(".katex")).to_have_count(1)
    expect(math).to_contain_text("sin")
    assert math.locator(".katex-error").count() == 0, "Sage's TeX is typeset, not shown as an error"
    assert math.locator(".katex-mathml").count() == 1 and "frac" in math.locator("annotation").text_content()
    finished(page)

    # Sage's \newcommand{\Bold} in each formula, and its macros: a bold Q, then F_7
    run(page, "show(QQ); show(GF(7)); show('x<y')")
    expect(page.locator(".cell-output .output-sage-math .katex")).to_have_count(3)
    assert page.locator(".cell-output .katex-error").count() == 0
    assert page.locator(".cell-output .output-sage-math .mathbf").count() == 2, "\\Bold{Q} and \\Bold{F} in bold"
    assert "x<y" in page.locator(".cell-output .output-sage-math .katex-html").nth(2).inner_text(), "&lt; unescaped"
    finished(page)

    # TeX KaTeX cannot typeset (Young diagrams: \multicolumn) shows its text form
    run(page, "show(Partition([2, 1]))")
    expect(page.locator(".cell-output .output-sage-math-text")).to_contain_text("[2, 1]")
    finished(page)

    run(page, "plot(sin(x), (x, 0, pi))")
    image = page.locator(".cell-output img.output-image")
    expect(image).to_have_count(1)
    expect(image).to_have_js_property("complete", True)
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("i => i.naturalWidth") > 100
    finished(page)

    run(page, "print(2^10)\nR.<t> = QQ[]\nprint(R)\nprint([1..10])\nprint((t + 1)^2)")
    out = page.locator(".cell-output")
    expect(out).to_contain_text("1024")
    expect(out).to_contain_text("Univariate Polynomial Ring in t over Rational Field")
    expect(out).to_contain_text("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")
    expect(out).to_contain_text("t^2 + 2*t + 1")
    assert hosts.foreign(node_host(sage_node)) == []


DRAWN = """() => {
  const canvas = document.querySelector("canvas");
  if (!canvas || !canvas.width) return 0;
  const copy = document.createElement("canvas");
  copy.width = canvas.width; copy.height = canvas.height;
  const g = copy.getContext("2d");
  g.drawImage(canvas, 0, 0);
  const px = g.getImageData(0, 0, copy.width, copy.height).data;
  let drawn = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] < 200 || px[i + 1] < 200 || px[i + 2] < 200) drawn++;
  return drawn;
}"""
PICTURE = "() => document.querySelector('canvas').toDataURL()"
IS_DRAWN = "() => (" + DRAWN + ")() > 2000"  # the surface is drawn: thousands of coloured pixels


def frame_until(inner, function, arg=None, seconds=60, what="the viewer's frame"):
    """Until C{function} (JavaScript) is true in the sandboxed frame C{inner}.

    Not Playwright's C{wait_for_function}: its polling evaluates the predicate with C{eval} inside the frame, which
    the frame's own policy forbids (no 'unsafe-eval'), so it failed whenever the first check was not already true
    (a slow draw). C{evaluate} runs through the debugger protocol, outside the page's policy."""
    from playwright.sync_api import Error

    deadline = time.monotonic() + seconds
    while True:
        try:
            if inner.evaluate(function, arg):
                return
            why = "not yet"
        except Error as exc:  # the frame's document is still loading (no body yet): not yet either
            why = str(exc).splitlines()[0]
        assert time.monotonic() < deadline, "{} within {} s (last: {})".format(what, seconds, why)
        time.sleep(0.1)  # poll


def viewer_frame(page, within=".cell-output"):
    """The 3D viewer's frame element and its frame, once shown; what the kernel wrote to stderr instead, if it did
    (Sage says there why it could not make the viewer's page)."""
    frame = page.locator(within + " iframe.output-sage3d")
    page.locator("{0} iframe.output-sage3d, {0} .output-stderr".format(within)).first.wait_for()
    if not frame.count():
        pytest.fail("no 3D viewer; the kernel said: " + page.locator(within + " .output-stderr").first.inner_text())
    return frame, frame.element_handle().content_frame()


def test_a_3d_plot_draws_in_a_sandboxed_frame_with_three_js_from_the_node(browser_page, sage_node):
    from playwright.sync_api import expect

    page, hosts = browser_page
    open_sage(page, sage_node)
    run(page, "var('y')\nplot3d(sin(x*y), (x, -2, 2), (y, -2, 2), color='blue')")
    frame, inner = viewer_frame(page)
    assert frame.get_attribute("sandbox") == "allow-scripts", "an opaque origin: no allow-same-origin"
    assert frame.get_attribute("src") == "http://{}/sage3d/frame.html".format(node_host(sage_node))
    frame_until(inner, IS_DRAWN, what="the surface drawn")
    assert inner.evaluate("() => typeof THREE.OrbitControls") == "function"
    assert inner.evaluate("() => window.origin") == "null"
    finished(page)

    # interactive: dragging on the canvas turns the scene (the picture changes)
    before = inner.evaluate(PICTURE)
    box = frame.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2 + 40, steps=8)
    page.mouse.up()
    frame_until(inner, "before => document.querySelector('canvas').toDataURL() !== before", before, what="turned")

    # the same inside a Sage @interact (its Output widget)
    run(page, "@interact\ndef g(k=(1..3)):\n    show(plot3d(k*x*y, (x, -1, 1), (y, -1, 1)))")
    frame = page.locator(".cell-output .widget-output iframe.output-sage3d")
    frame.wait_for()
    assert frame.get_attribute("sandbox") == "allow-scripts"
    frame_until(frame.element_handle().content_frame(), IS_DRAWN, what="the interact's surface drawn")

    assert any(url.endswith("/sage3d/dist/three.js") for url in hosts.urls), "Three.js came from the node"
    assert hosts.foreign(node_host(sage_node)) == [], "no request to a CDN or any other host"
    expect(page.locator(".cell-output .output-html")).to_have_count(0)


STDOUT = "[data-mime-type='application/vnd.jupyter.stdout']"  # what the function printed, in its Output widget
SAGE_INTERACT = """@interact
def f(n=(1..10), t=input_box(2, label='t'), s=slider(1, 20, 1, 5), c=selector(['red', 'green']), b=checkbox(True)):
    print('n=%s t=%s s=%s c=%s b=%s' % (n, t, s, c, b))
    show(x^n)
"""


def test_sage_interact_controls_drive_the_function_by_keyboard_and_mouse(browser_page, sage_node):
    from playwright.sync_api import expect

    page, hosts = browser_page
    open_sage(page, sage_node)
    run(page, SAGE_INTERACT)
    shown = page.locator(".cell-output .widget-output " + STDOUT)
    typeset = page.locator(".cell-output .widget-output .output-sage-math")
    expect(shown).to_have_text("n=1 t=2 s=5 c=red b=True")
    sliders = page.locator(".cell-output .widget-slider")
    expect(sliders).to_have_count(2)
    finished(page)

    # keyboard: the range slider n=(1..10) one step right, the input box typed into (Sage evaluates it: 3^2)
    sliders.nth(0).locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    expect(shown).to_have_text("n=2 t=2 s=5 c=red b=True")
    expect(typeset.locator("annotation")).to_have_text("\\displaystyle x^{2}")  # show() inside it, typeset
    assert typeset.locator(".katex-error").count() == 0
    field = page.locator(".cell-output .widget-text input")
    field.click()
    field.press("Control+a")
    page.keyboard.type("3^2")
    page.keyboard.press("Enter")
    expect(shown).to_have_text("n=2 t=9 s=5 c=red b=True")

    # mouse: a click at the right end of the slider's track, the checkbox, the selector
    track = sliders.nth(1).locator(".noUi-target").bounding_box()
    page.mouse.click(track["x"] + track["width"] - 2, track["y"] + track["height"] / 2)
    expect(shown).to_have_text("n=2 t=9 s=20 c=red b=True")
    page.locator(".cell-output .widget-checkbox input").click()
    expect(shown).to_have_text("n=2 t=9 s=20 c=red b=False")
    page.select_option(".cell-output .widget-dropdown select", "green")
    expect(shown).to_have_text("n=2 t=9 s=20 c=green b=False")
    assert hosts.foreign(node_host(sage_node)) == []


class OtherOrigin:
    """A page of another origin (another port) that embeds cells, and what was asked of it."""

    def __init__(self, tmp_path, body):
        (tmp_path / "index.html").write_text(body)
        hits = self.hits = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                hits.append(self.path)

        handler = functools.partial(Handler, directory=str(tmp_path))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def embedding(port, code, language, more=""):
    """A course page embedding a cell #a (and #b running C{more}, if given) that runs at once."""
    cells = [("a", code)] + ([("b", more)] if more else [])
    calls = "".join(
        "cellserver.makeCell({{element: '#{}', code: {}, autoeval: true, language: '{}'}});".format(
            name, json.dumps(source).replace("<", "\\u003c"), language
        )
        for name, source in cells
    )
    divs = "".join("<div id='{}'></div>".format(name) for name, _ in cells)
    return (
        "<!doctype html><html><body><p>A course page</p>{}<script src='http://127.0.0.1:{}/embed.js'></script>"
        "<script>{}</script></body></html>".format(divs, port, calls)
    )


def test_embedded_cells_on_another_origin_run_a_sage_interact_and_a_3d_plot(browser_page, sage_node, tmp_path):
    from playwright.sync_api import expect

    page, hosts = browser_page
    plot = "plot3d(lambda u, v: u^2 - u*v, (-1, 1), (-1, 1), color='red')"
    other = OtherOrigin(tmp_path, embedding(sage_node.port, SAGE_INTERACT, "sage", more=plot))
    try:
        page.goto("http://127.0.0.1:{}/index.html".format(other.port))
        shown = page.locator("#a .cell-output .widget-output " + STDOUT)
        expect(shown).to_have_text("n=1 t=2 s=5 c=red b=True")
        page.locator("#a .cell-output .widget-slider .noUi-handle").first.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        expect(shown).to_have_text("n=3 t=2 s=5 c=red b=True")
        track = page.locator("#a .cell-output .widget-slider .noUi-target").nth(1).bounding_box()
        page.mouse.click(track["x"] + 2, track["y"] + track["height"] / 2)
        expect(shown).to_have_text("n=3 t=2 s=1 c=red b=True")
        frame, inner = viewer_frame(page, "#b .cell-output")
        assert frame.get_attribute("sandbox") == "allow-scripts"
        assert frame.get_attribute("src") == "http://{}/sage3d/frame.html".format(node_host(sage_node))
        frame_until(inner, IS_DRAWN, what="the embedded surface drawn")
        assert hosts.foreign(node_host(sage_node), "127.0.0.1:{}".format(other.port)) == []
    finally:
        other.close()


# A forged "3D viewer": Sage's <iframe srcdoc> shape with a script that tries what a stranger would. It records in
# its own document what each attempt gave (so the test sees that it ran, and waits until each is decided).
FORGED_SCRIPT = """
var tried = [], body = document.body;
function attempt(name, f) { try { f(); tried.push(name + ':reached'); } catch (e) { tried.push(name + ':blocked'); } }
attempt('document', function () { parent.document.title = 'pwned'; });
attempt('flag', function () { parent.__pwned = 1; if (parent.__pwned !== 1) throw 0; });
attempt('cookie', function () { if (document.cookie.indexOf('secret') < 0) throw 0; });
attempt('storage', function () { localStorage.setItem('k', 'v'); });
attempt('session', function () { parent.cellserver._connection().session.call('cell.kernel.start'); });
try { top.location.href = 'http://127.0.0.1:OTHER/__pwned_top'; } catch (e) {}
try { window.open('http://127.0.0.1:OTHER/__pwned_popup'); } catch (e) {}
body.setAttribute('data-tried', tried.join(' '));
var image = new Image();
image.onload = function () { body.setAttribute('data-image', 'reached'); };
image.onerror = function () { body.setAttribute('data-image', 'blocked'); };
image.src = 'http://127.0.0.1:OTHER/__pwned_image';
fetch('http://127.0.0.1:OTHER/__pwned_fetch').then(function () { body.setAttribute('data-fetch', 'reached'); },
                                                   function () { body.setAttribute('data-fetch', 'blocked'); });
try {
  var ws = new WebSocket('ws://127.0.0.1:NODE/ws');
  ws.onopen = function () { body.setAttribute('data-ws', 'reached'); };
  ws.onerror = function () { body.setAttribute('data-ws', 'blocked'); };
} catch (e) { body.setAttribute('data-ws', 'blocked'); }
window.leave = function () { location.href = 'http://127.0.0.1:OTHER/__pwned_navigate'; };
"""
FORGERY = (
    "import html\n"
    "from IPython.display import HTML\n"
    "page = ('<!DOCTYPE html><html><body>forged THREE viewer'\n"
    "        '<script src=\"/nbextensions/threejs-sage/r122/three.min.js\"></script><script>' + {script!r} + '</script>')\n"
    'HTML(\'<iframe srcdoc="%s" width="100%%" height="200"></iframe>\' % html.escape(page))\n'
)
DECIDED = "() => ['data-tried', 'data-image', 'data-fetch', 'data-ws'].every(a => document.body.hasAttribute(a))"
OUTCOMES = "() => ['data-tried', 'data-image', 'data-fetch', 'data-ws'].map(a => document.body.getAttribute(a))"


def forgery(other_port, node_port):
    script = FORGED_SCRIPT.replace("OTHER", str(other_port)).replace("NODE", str(node_port))
    return FORGERY.format(script=script)


def check_forgery_failed(page, root, other, hosts, sage_node):
    """The forged viewer ran in its frame and reached nothing: not the page, its cookies, storage or session, no
    host (not even the node's WebSocket), no top-level navigation, no popup."""
    frame = page.locator(root + " .cell-output iframe.output-sage3d")
    frame.wait_for()
    assert frame.get_attribute("sandbox") == "allow-scripts"
    inner = frame.element_handle().content_frame()
    frame_until(inner, DECIDED, what="every attempt of the forged viewer decided")
    tried, image, fetched, ws = inner.evaluate(OUTCOMES)
    assert tried.split() == [
        "document:blocked",
        "flag:blocked",
        "cookie:blocked",
        "storage:blocked",
        "session:blocked",
    ], tried
    assert (image, fetched, ws) == ("blocked", "blocked", "blocked")
    assert page.evaluate("() => window.__pwned") is None
    assert page.title() != "pwned"
    assert len(page.context.pages) == 1, "no popup"
    assert "__pwned" not in page.url
    assert [hit for hit in other.hits if "__pwned" in hit] == [], other.hits
    assert not any("__pwned" in url for url in hosts.answered), [url for url in hosts.answered if "__pwned" in url]
    sockets = [url for url in hosts.urls if url.startswith("ws")]
    assert sockets == ["ws://{}/ws".format(node_host(sage_node))], "only the page's own WebSocket: " + repr(sockets)
    return inner


def test_a_forged_3d_viewer_cannot_reach_the_page_its_cookies_or_its_session(browser_page, sage_node, tmp_path):
    from playwright.sync_api import expect

    page, hosts = browser_page
    other = OtherOrigin(tmp_path, "<!doctype html><p>elsewhere</p>")
    try:
        page.context.add_cookies([{"name": "secret", "value": "s3", "url": "http://{}/".format(node_host(sage_node))}])
        test_web.open_page(page, sage_node)  # a Python cell: any kernel can send this HTML
        run(page, forgery(other.port, sage_node.port))
        inner = check_forgery_failed(page, "", other, hosts, sage_node)
        # nor can it take its frame to another host (the page's frame-src 'self'; Chromium shows its error page)
        with page.expect_event("framenavigated", predicate=lambda f: f == inner):
            inner.evaluate("() => { setTimeout(leave, 0); }")
        assert not inner.url.startswith("http://127.0.0.1:{}".format(other.port)), inner.url
        assert [hit for hit in other.hits if "__pwned" in hit] == [], other.hits
        run(page, "print('after', 6*7)")  # and the page still works
        expect(page.locator(".cell-output")).to_contain_text("after 42")
    finally:
        other.close()


def test_a_forged_3d_viewer_in_an_embedded_cell_cannot_reach_the_embedding_page(browser_page, sage_node, tmp_path):
    page, hosts = browser_page
    other = OtherOrigin(tmp_path, "")
    try:
        (tmp_path / "index.html").write_text(embedding(sage_node.port, forgery(other.port, sage_node.port), "python3"))
        page.context.add_cookies([{"name": "secret", "value": "s3", "url": "http://127.0.0.1:{}/".format(other.port)}])
        page.goto("http://127.0.0.1:{}/index.html".format(other.port))
        check_forgery_failed(page, "#a", other, hosts, sage_node)
    finally:
        other.close()


def test_the_node_serves_the_three_js_release_sage_asks_for():
    """web/package.json's three is the release passagemath's viewer names (threejs-version.txt), so the viewer's
    script finds the API it was written for."""
    import glob

    (version_file,) = glob.glob(
        os.path.join(
            ROOT, ".sage-venv", "lib", "python3*", "site-packages", "sage", "ext_data", "threejs", "threejs-version.txt"
        )
    )
    wanted = open(version_file).read().strip()
    with open(os.path.join(ROOT, "web", "node_modules", "three", "package.json")) as f:
        shipped = json.load(f)["version"]
    assert wanted == "r" + shipped.split(".")[1], (wanted, shipped)
    assert os.path.getsize(os.path.join(ROOT, "web", "sage3d", "dist", "three.js")) > 100000, "npm run build made it"
