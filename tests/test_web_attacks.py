"""Kernel output that tries to run script in the page (issue 19, item 7), in real headless Chromium against a real node.

Each test runs a cell whose output (plain outputs, widgets, an Output widget, a one-shot's widget state, a permalink
opened by a visitor) carries script, in the node's page and in a cell embedded in a page of another origin. A test
passes when the harmless part of the output shows, no element of the output can run script (no ``on*`` handler, no
``<script>``, no frame, no ``javascript:`` URL), the payload's flag stays unset and its request was never made.
"""

import functools
import http.server
import threading

import pytest

from tests import test_web
from tests.test_web import open_page, run

# test_web's fixtures: a real node, Debian's Chromium, a fresh browser context per test.
web_node, chromium, page = test_web.web_node, test_web.chromium, test_web.page

# The payloads set window.__pwned and fetch /__pwned: either shows that script ran.
ACT = "window.__pwned=1;fetch('/__pwned')"
IMG = '<img src=x onerror="{}">'.format(ACT)
HTML_ATTACKS = (
    IMG
    + "<script>{}</script>".format(ACT)
    + '<svg onload="{0}"><script>{0}</script><image href=x onerror="{0}"/></svg>'.format(ACT)
    + '<a class="jslink" href="javascript:{}">jslink</a>'.format(ACT)
    + '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>'
    + '<form><button formaction="javascript:{}">go</button></form>'.format(ACT)
    + '<math><mtext><table><mglyph><style><img src=x onerror="{}">'.format(ACT)
)
MARKDOWN = "[mdlink](javascript:{0}) {1} $\\href{{javascript:{0}}}{{mdtex}}$ kept-md".format(ACT, IMG)
OSC8_LINK = "\x1b]8;;javascript:{}\x1b\\kept-osc-link\x1b]8;;\x1b\\".format(ACT)  # a terminal hyperlink
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20" onload="{0}"><script>{0}</script>'
    '<text x="0" y="15">kept-svg</text></svg>'.format(ACT)
)

# Every element of every cell output (through shadow roots) that could run script.
SCRIPTABLE = """() => {
  const bad = [];
  const urls = ["href", "src", "action", "formaction", "data", "xlink:href"];
  const check = (el) => {
    const tag = el.tagName.toLowerCase();
    if (["script", "iframe", "frame", "object", "embed"].includes(tag)) bad.push(tag);
    for (const attr of el.attributes) {
      const value = attr.value.replace(/[\\s\\u0000-\\u001f]/g, "").toLowerCase();
      if (attr.name.toLowerCase().startsWith("on")) bad.push(tag + " " + attr.name);
      if (urls.includes(attr.name.toLowerCase()) && value.startsWith("javascript:")) bad.push(tag + " " + attr.name);
    }
  };
  const walk = (root, inside) => {
    for (const el of root.querySelectorAll("*")) {
      const output = inside || el.matches(".cell-output, .static-widgets");
      if (output && !inside) { el.querySelectorAll("*").forEach(check); }
      if (el.shadowRoot) walk(el.shadowRoot, output);
    }
  };
  walk(document, false);
  return bad;
}"""


@pytest.fixture
def requests(page):
    """URLs of the payloads' requests the page made."""
    seen = []
    page.on("request", lambda r: seen.append(r.url) if "__pwned" in r.url else None)
    return seen


def assert_no_script_ran(page, requests):
    assert page.evaluate(SCRIPTABLE) == [], "an output element could run script"
    assert page.evaluate("window.__pwned") is None, "a payload ran"
    assert requests == [], "a payload made a request"


def serve(directory):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# Like many sites, it has jQuery and jQuery UI: with them on the page, ipywidgets 7's front end would load.
EMBEDDING_PAGE = """<!doctype html><html><body><p>Someone else's page</p><div id="c"></div>
<script src="http://127.0.0.1:{port}/node_modules/jquery/dist/jquery.min.js"></script>
<script src="http://127.0.0.1:{port}/node_modules/jquery-ui/dist/jquery-ui.min.js"></script>
<script src="http://127.0.0.1:{port}/embed.js"></script>
<script>cellserver.onready = function () {{
  window.cellserverPage = cellserver.makeCell({{element: "#c", code: ""}});
  document.body.setAttribute("data-ready", "1");
}};</script></body></html>"""


@pytest.fixture(params=["page", "embedded"])
def cell_page(request, page, web_node, tmp_path):
    """The node's own page, or a page of another origin embedding a cell (no policy of ours protects it)."""
    if request.param == "page":
        open_page(page, web_node)
        yield page
        return
    (tmp_path / "index.html").write_text(EMBEDDING_PAGE.format(port=web_node.port))
    server = serve(tmp_path)
    try:
        page.goto("http://127.0.0.1:{}/index.html".format(server.server_address[1]))
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_selector(".cell-banner", state="hidden")
        yield page
    finally:
        server.shutdown()


def run_to_end(page, code):
    from playwright.sync_api import expect

    run(page, code)
    expect(page.locator(".cell-status")).to_have_text("")


def test_plain_outputs_run_no_script(cell_page, requests):
    from playwright.sync_api import expect

    page = cell_page
    code = (
        "from IPython.display import display, HTML, SVG, Markdown, Javascript, Latex\n"
        "display(HTML('<b>kept-html</b>' + {html!r}))\n"
        "display(SVG({svg!r}))\n"
        "display(Markdown({md!r}))\n"
        "display(Javascript({act!r}))\n"
        "display({{'application/javascript': {act!r}, 'text/plain': 'kept-js-fallback'}}, raw=True)\n"
        "display(Latex({tex!r}))\n"
        "open('evil.svg', 'w').write({svg!r})\n"
        "print('kept-stream' + {img!r}, {osc!r})\n"
        "raise ValueError('kept-error' + {img!r})\n"
    ).format(
        html=HTML_ATTACKS,
        svg=SVG,
        act=ACT,
        md=MARKDOWN,
        img=IMG,
        osc=OSC8_LINK,
        tex="$\\href{javascript:%s}{texlink}$ kept-tex" % ACT,
    )
    run_to_end(page, code)
    output = page.locator(".cell-output")
    for text in ("kept-html", "kept-md", "kept-js-fallback", "kept-tex", "jslink", "mdlink", "kept-osc-link"):
        expect(output).to_contain_text(text)
    expect(output.locator(".output-stream")).to_contain_text("kept-stream<img src=x")  # text stays text
    expect(output.locator(".output-error")).to_contain_text("kept-error<img src=x")
    expect(page.locator(".cell-output .output-svg svg text")).to_have_text("kept-svg")
    image = page.locator(".cell-file-image")  # the file the run made, shown inline
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("i => i.naturalWidth") > 0
    page.locator(".cell-output .jslink").click()
    page.locator(".cell-output a", has_text="mdlink").click()
    assert_no_script_ran(page, requests)


def test_html_htmlmath_and_html_descriptions_run_no_script(cell_page, requests):
    from playwright.sync_api import expect

    page = cell_page
    code = (
        "import ipywidgets as w\n"
        "w.VBox([w.HTML('<b>kept-widget-html</b>' + {html!r}),\n"
        "        w.HTMLMath('kept-htmlmath $x^2$ ' + {html!r} + '$' + {img!r} + '$'),\n"
        "        w.IntSlider(description='<b>kept-desc</b>' + {img!r}, description_allow_html=True),\n"
        "        w.Checkbox(description='$' + {img!r} + '$ kept-check', description_allow_html=True),\n"
        "        w.Label('kept-label' + {img!r})])\n"
    ).format(html=HTML_ATTACKS, img=IMG)
    run_to_end(page, code)
    output = page.locator(".cell-output")
    expect(output.locator(".widget-html b")).to_have_text("kept-widget-html")
    expect(output.locator(".widget-htmlmath")).to_contain_text("kept-htmlmath")
    expect(output.locator(".widget-slider b")).to_have_text("kept-desc")
    expect(output.locator(".widget-checkbox")).to_contain_text("kept-check")
    expect(output).to_contain_text("kept-label<img")  # a Label's text is text
    page.locator(".cell-output .widget-html .jslink").click()
    assert_no_script_ran(page, requests)


def test_an_output_widget_renders_untrusted(cell_page, requests):
    from playwright.sync_api import expect

    page = cell_page
    code = (
        "import ipywidgets as w\n"
        "from IPython.display import display, HTML, SVG, Markdown, Javascript\n"
        "out = w.Output()\n"
        "display(out)\n"
        "with out:\n"
        "    display(HTML('<b>kept-out-html</b>' + {html!r}))\n"
        "    display(Markdown({md!r}))\n"
        "    display(Javascript({act!r}))\n"
        "    display({{'application/javascript': {act!r}, 'text/plain': 'kept-out-js'}}, raw=True)\n"
        "    display(SVG({svg!r}))\n"
        "    display(w.HTML('<i>kept-nested</i>' + {img!r}))\n"
        "    print('kept-out-stream')\n"
    ).format(html=HTML_ATTACKS, img=IMG, svg=SVG, act=ACT, md=MARKDOWN.replace("kept-md", "kept-out-md"))
    run_to_end(page, code)
    widget = page.locator(".cell-output .widget-output")
    for text in ("kept-out-html", "kept-out-md", "kept-out-js", "kept-nested", "kept-out-stream"):
        expect(widget).to_contain_text(text)
    assert_no_script_ran(page, requests)


def test_widget_traits_and_labels_are_text(cell_page, requests):
    from playwright.sync_api import expect

    page = cell_page
    svg = SVG.replace("kept-svg", "kept-image").encode()
    code = (
        "import ipywidgets as w\n"
        "x, act = {img!r}, {act!r}\n"
        "w.VBox([w.Button(description='kept-button' + x, tooltip='\\\"><b>' + x, icon='x\\\"onmouseover=\\\"' + act),\n"
        "        w.Dropdown(options=['kept-option' + x, x]),\n"
        "        w.ToggleButtons(options=['kept-toggle' + x], tooltips=[x]),\n"
        "        w.Combobox(options=['a' + x], placeholder=x),\n"
        "        w.Tab(children=[w.Label('tab')], titles=['kept-tab' + x]),\n"
        "        w.Image(value={svg!r}, format='svg+xml'),\n"
        "        w.Text('kept-text', layout=w.Layout(width='1px;background:url(javascript:' + act + ')', grid_area=x),\n"
        "               style={{'description_width': x}})],\n"
        "       _dom_classes=['x\\\"onclick=\\\"' + act])\n"
    ).format(img=IMG, act=ACT, svg=svg)
    run_to_end(page, code)
    output = page.locator(".cell-output")
    expect(output.locator("button.widget-button")).to_contain_text("kept-button<img")
    expect(output.locator(".widget-dropdown option").first).to_contain_text("kept-option<img")
    expect(output.locator(".widget-toggle-button")).to_contain_text("kept-toggle<img")
    expect(output.locator(".lm-TabBar-tab")).to_contain_text("kept-tab<img")
    image = output.locator("img.widget-image")
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("i => i.naturalWidth") > 0, "the SVG image shows"
    output.locator("button.widget-button").hover()
    output.locator("button.widget-button").click()
    assert_no_script_ran(page, requests)


def test_old_widget_front_ends_and_error_views_run_no_script(cell_page, requests):
    """ipywidgets 7's front end (which writes descriptions as raw HTML) is not loaded, nor any module by URL; the
    error view shown instead keeps the kernel's names as text, even when clicked open."""
    from playwright.sync_api import expect

    page = cell_page
    old = "_model_module_version='1.5.0', _view_module_version='1.5.0'"
    code = (
        "import ipywidgets as w\n"
        "x = {img!r}\n"
        "w.VBox([w.HTML('kept-v8'), w.HTML('v7' + x, {old}), w.IntSlider(description=x, {old}),\n"
        "        w.Checkbox(description=x, {old}), w.HTML('named', _view_name=x),\n"
        "        w.HTML('remote', _view_module='/__pwned_module.js')])\n"
    ).format(img=IMG, old=old)
    run_to_end(page, code)
    output = page.locator(".cell-output")
    expect(output.locator(".widget-html")).to_have_text("kept-v8")
    errors = output.locator(".jupyter-widgets-error-widget")
    expect(errors).to_have_count(5)
    for i in range(5):
        errors.nth(i).click()
    expect(errors.first).to_contain_text("Failed")
    expect(output).to_contain_text("<img src=x onerror")  # the view's name, shown as text
    assert_no_script_ran(page, requests)


def test_a_one_shots_widget_state_shown_statically_runs_no_script(page, web_node, requests):
    """cell.execute's widget state, rendered by the page's widget manager as a snapshot (no kernel behind it)."""
    from playwright.sync_api import expect

    open_page(page, web_node)
    code = (
        "import ipywidgets as w\n"
        "from IPython.display import display, HTML\n"
        "out = w.Output()\n"
        "out.append_display_data(HTML('<b>kept-static-out</b>' + {html!r}))  # in the state (no page captures)\n"
        "w.VBox([w.HTML('<b>kept-static</b>' + {html!r}), w.HTMLMath('$' + {img!r} + '$'), out])\n"
    ).format(html=HTML_ATTACKS, img=IMG)
    page.evaluate(
        """async (code) => {
          const session = await window.cellserver._connection().ready();
          const result = await session.call("cell.execute", [code]);
          const state = result.widgets["application/vnd.jupyter.widget-state+json"];
          const view = result.outputs.map((o) => o.data && o.data["application/vnd.jupyter.widget-view+json"]).find(Boolean);
          const idle = () => Promise.resolve({});
          const manager = window.CellWidgets.createManager({comm: idle, commInfo: idle});
          await manager.loadState(state);
          const host = document.createElement("div");
          host.className = "static-widgets";
          document.body.appendChild(host);
          await manager.render(view.model_id, host);
        }""",
        code,
    )
    expect(page.locator(".static-widgets b", has_text="kept-static").first).to_be_visible()
    expect(page.locator(".static-widgets .widget-output")).to_contain_text("kept-static-out")
    assert_no_script_ran(page, requests)


PERMALINK_CODE = (
    "import ipywidgets as w\n"
    "from IPython.display import display, HTML\n"
    "out = w.Output()\n"
    "display(w.HTML('<b>kept-link-widget</b>' + {html!r}), out)\n"
    "with out:\n"
    "    display(HTML('<b>kept-link-out</b>' + {html!r}))\n"
    "display(HTML('<b>kept-link-html</b>' + {html!r}))\n"
).format(html=HTML_ATTACKS)


@pytest.mark.parametrize("kind", ["q", "z"])
def test_a_permalink_opened_and_run_by_a_visitor_runs_no_script(page, web_node, chromium, kind):
    """The attacker shares a link; a visitor (a browser of their own) opens it and presses Run."""
    from playwright.sync_api import expect

    open_page(page, web_node)
    page.evaluate("code => window.cellserverPage.setCode(code)", PERMALINK_CODE)
    page.click(".cell-share")
    expect(page.locator(".share-" + kind)).to_have_count(1)
    link = page.get_attribute(".share-" + kind, "href")
    visitor = chromium.new_context()
    try:
        tab = visitor.new_page()
        seen = []
        tab.on("request", lambda r: seen.append(r.url) if "__pwned" in r.url else None)
        tab.goto(link)
        tab.wait_for_selector("body[data-ready='1']")
        assert tab.evaluate("window.cellserverPage.editor.getValue()") == PERMALINK_CODE
        tab.click(".cell-run")
        expect(tab.locator(".cell-status")).to_have_text("", timeout=20000)
        for text in ("kept-link-widget", "kept-link-out", "kept-link-html"):
            expect(tab.locator(".cell-output")).to_contain_text(text, timeout=20000)
        assert_no_script_ran(tab, seen)
    finally:
        visitor.close()


def test_the_nodes_page_runs_no_inline_script_even_unsanitized(page, web_node, requests):
    """Defence in depth on the node's origin: its policy refuses an inline handler that reached the DOM raw."""
    open_page(page, web_node)
    directive = page.evaluate(
        """() => new Promise((resolve) => {
          document.addEventListener("securitypolicyviolation", (e) => resolve(e.effectiveDirective), {once: true});
          const host = document.createElement("div");
          host.innerHTML = '<img src="x" onerror="window.__pwned=1">';
          document.body.appendChild(host);
        })"""
    )
    assert directive.startswith("script-src")
    assert page.evaluate("window.__pwned") is None
