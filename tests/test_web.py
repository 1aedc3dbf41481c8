"""The page and the embeddable cell in real headless Chromium (Debian's), driven by Playwright, against a real node.

Screenshots of failing states go to tests/artifacts/.
"""

import functools
import http.server
import os
import re
import threading

import pytest

from tests.node import ROOT, Node

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def web_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("web")).start()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """(playwright, browser), running in this thread (no Twisted reactor runs during these tests)."""
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "install Debian's chromium (make test does it when run as root)"
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)  # a fresh profile each launch
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture
def page(chromium, web_node, request):
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(30000)
    from playwright.sync_api import expect

    expect.set_options(
        timeout=20000
    )  # what a slow machine needs for a kernel's reply; a pass comes as soon as it holds
    yield page
    report = getattr(request.node, "rep_call", None)  # set by the hook in conftest.py
    if report is not None and report.failed:
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, request.node.name + ".png"))
    context.close()


def open_page(page, node, query=""):
    page.goto("http://127.0.0.1:{}/{}".format(node.port, query))
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector(".cell-banner", state="hidden")


def run(page, code):
    page.click(".CodeMirror")
    page.evaluate("code => window.cellserverPage.setCode(code)", code)
    page.click(".CodeMirror")
    page.keyboard.press("Shift+Enter")


def test_typed_code_runs_with_shift_enter_and_streams_line_by_line(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    page.click(".CodeMirror")
    page.keyboard.type(
        "import time\nfor i in range(3):\nprint('line', i)\ntime.sleep(1)"
    )  # the editor indents the loop body
    page.keyboard.press("Shift+Enter")
    output = page.locator(".cell-output")
    expect(output).to_contain_text("line 0")
    assert "line 2" not in output.inner_text(), "the first line is shown before the last is printed"
    expect(page.locator(".cell-status")).to_have_class("cell-status running")
    expect(output).to_contain_text("line 2")
    expect(page.locator(".cell-status")).to_have_text("")


def test_plot_traceback_and_math(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(page, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    expect(page.locator(".cell-output img.output-image")).to_have_count(1)
    assert page.get_attribute(".cell-output img.output-image", "src").startswith("data:image/png;base64,")
    expect(page.locator(".cell-status")).to_have_text("")
    run(page, "def f():\n    1/0\nf()")
    error = page.locator(".cell-output .output-error")
    expect(error).to_contain_text("ZeroDivisionError")
    assert "\x1b[" not in error.inner_text() and "[0;" not in error.inner_text(), "ANSI codes are rendered, not shown"
    assert error.locator("span[style*='color']").count() > 0, "the traceback keeps its colours"
    expect(page.locator(".cell-status")).to_have_text("")
    run(page, "from IPython.display import Markdown\nMarkdown('**bold** and $x^2$')")
    expect(page.locator(".output-markdown strong")).to_have_text("bold")
    expect(page.locator(".output-markdown .katex")).to_have_count(1)


def test_input_is_answered_in_the_page(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(page, "name = input('Name? ')\nprint('hello', name)")
    expect(page.locator(".cell-input")).to_be_visible()
    expect(page.locator(".cell-input-prompt")).to_have_text("Name? ")
    page.fill(".cell-input-field", "Ada")
    page.press(".cell-input-field", "Enter")
    expect(page.locator(".cell-output")).to_contain_text("hello Ada")


def test_an_input_the_node_refuses_is_said_in_the_cell_and_can_be_given_again(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(page, "name = input('Name? ')\nprint('hello', name)")
    expect(page.locator(".cell-input")).to_be_visible()
    page.fill(".cell-input-field", "x" * 300_000)  # past the spawner's max_code_bytes (256 KiB): refused
    page.press(".cell-input-field", "Enter")
    expect(page.locator(".cell-output .notice-error")).to_contain_text("Sending input failed")
    expect(page.locator(".cell-input")).to_be_visible()  # the kernel still waits: the box is back
    page.fill(".cell-input-field", "Ada")
    page.press(".cell-input-field", "Enter")
    expect(page.locator(".cell-output")).to_contain_text("hello Ada")


def test_interrupt_stops_an_infinite_loop(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(page, "print('spinning', flush=True)\nwhile True: pass")
    expect(page.locator(".cell-output")).to_contain_text("spinning")
    page.click(".cell-interrupt")
    expect(page.locator(".cell-output .output-error")).to_contain_text("KeyboardInterrupt")
    expect(page.locator(".cell-status")).to_have_text("")


def test_untrusted_html_runs_no_script(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(
        page,
        'from IPython.display import HTML, display\ndisplay(HTML(\'<b id="safe">kept</b><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\'))',
    )
    expect(page.locator(".output-html #safe")).to_have_text("kept")
    expect(page.locator(".cell-status")).to_have_text("")
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".output-html script").count() == 0


def test_share_gives_working_links(page, web_node, chromium):
    from playwright.sync_api import expect

    open_page(page, web_node)
    code = "print('shared ünïcode')"
    page.evaluate("code => window.cellserverPage.setCode(code)", code)
    page.click(".cell-share")
    link_q = page.locator(".share-q")
    expect(link_q).to_have_count(1)
    for selector in (".share-q", ".share-z"):
        href = page.get_attribute(selector, "href")
        other = page.context.new_page()
        other.goto(href)
        other.wait_for_selector("body[data-ready='1']")
        assert other.evaluate("window.cellserverPage.editor.getValue()") == code, selector
        other.close()
    missing = page.context.new_page()
    missing.goto("http://127.0.0.1:{}/?q=nosuchid".format(web_node.port))
    missing.wait_for_selector("body[data-ready='1']")
    expect(missing.locator(".notice-error")).to_contain_text("no permalink")
    missing.close()


def test_embedded_cells_on_a_page_from_another_origin(page, web_node, tmp_path):
    from playwright.sync_api import expect

    host = tmp_path / "host"
    host.mkdir()
    (host / "index.html").write_text(
        "<!doctype html><html><body><h1>Someone else's page</h1><div id='a'></div><div id='b'></div>"
        "<script src='http://127.0.0.1:{port}/embed.js'></script>"
        "<script>cellserver.makeCell({{element: '#a', code: 'x = 6*7\\nprint(x)', autoeval: true, linked: true}});"
        "cellserver.makeCell({{element: '#b', code: 'print(x + 1)', linked: true}});</script></body></html>".format(
            port=web_node.port
        )
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(host))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page.goto("http://127.0.0.1:{}/index.html".format(server.server_address[1]))
        expect(page.locator("#a .cell-output")).to_contain_text("42")
        page.locator("#b .cell-run").click()
        expect(page.locator("#b .cell-output")).to_contain_text("43")
    finally:
        server.shutdown()


def test_upload_a_csv_run_code_on_it_and_download_the_png(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    page.set_input_files(
        ".cell-upload", files=[{"name": "data.csv", "mimeType": "text/csv", "buffer": b"x,y\n1,2\n2,4\n3,9\n"}]
    )
    expect(page.locator(".notice-upload")).to_contain_text("Uploaded data.csv")
    run(
        page,
        "import csv, matplotlib.pyplot as plt\nrows = list(csv.DictReader(open('data.csv')))\nplt.plot([int(r['x']) for r in rows], [int(r['y']) for r in rows])\nplt.savefig('plot.png')\nprint(len(rows), 'rows')",
    )
    expect(page.locator(".cell-output")).to_contain_text("3 rows")
    link = page.locator(".cell-file-link", has_text="plot.png")
    expect(link).to_have_count(1)
    expect(page.locator(".cell-file-image")).to_have_count(1)
    with page.expect_download() as download:
        link.click()
    with open(download.value.path(), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert download.value.suggested_filename == "plot.png"


def test_a_dead_kernel_is_said_and_the_next_run_gets_a_new_one(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(page, "import os\nos._exit(3)")
    expect(page.locator(".notice-dead")).to_contain_text("The kernel died")
    expect(page.locator(".cell-status")).to_have_text("")
    run(page, "print('fresh')")
    expect(page.locator(".cell-output")).to_contain_text("fresh")


INTERACT = """from ipywidgets import interact
import matplotlib.pyplot as plt, numpy as np
@interact(freq=(1, 10), kind=["sin", "cos"])
def show(freq=3, kind="sin"):
    x = np.linspace(0, 2 * np.pi, 400)
    plt.plot(x, getattr(np, kind)(freq * x)); plt.show()
"""


def plot_src(page):
    return page.get_attribute(".cell-output .widget-output img", "src")


def test_interact_redraws_the_plot_as_the_slider_moves_and_the_dropdown_changes(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(page, INTERACT)
    expect(page.locator(".cell-output .widget-slider")).to_have_count(1)
    expect(page.locator(".cell-output .widget-dropdown select")).to_have_count(1)
    expect(page.locator(".cell-output .widget-output img")).to_have_count(1)
    expect(page.locator(".cell-status")).to_have_text("")
    assert page.locator(".cell-output > img.output-image").count() == 0, "the plot is inside the widget, not twice"
    plot = page.locator(".cell-output .widget-output img")
    first = plot_src(page)
    page.focus(".cell-output .widget-slider .noUi-handle")
    page.keyboard.press("ArrowRight")
    expect(plot).not_to_have_attribute("src", first)  # redrawn, within expect's deadline
    moved = plot_src(page)
    page.select_option(".cell-output .widget-dropdown select", "cos")
    expect(plot).not_to_have_attribute("src", moved)
    expect(plot).to_have_count(1)


def test_a_button_appends_to_an_output_and_an_image_widget_shows_kernel_bytes(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    code = (
        "import io, ipywidgets as w, matplotlib.pyplot as plt\n"
        "buf = io.BytesIO(); plt.figure(figsize=(1, 1)); plt.plot([0, 1]); plt.savefig(buf, format='png'); plt.close()\n"
        "out = w.Output()\n"
        "button = w.Button(description='Press me')\n"
        "def pressed(_):\n"
        "    with out:\n"
        "        print('pressed', len(out.outputs) + 1)\n"
        "button.on_click(pressed)\n"
        "w.VBox([button, out, w.Image(value=buf.getvalue(), format='png')])"
    )
    run(page, code)
    button = page.locator(".cell-output button.widget-button")
    expect(button).to_have_text("Press me")
    button.click()
    expect(page.locator(".cell-output .widget-output")).to_contain_text("pressed")
    image = page.locator(".cell-output img.widget-image")
    expect(image).to_have_count(1)
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("i => i.naturalWidth") > 0, "the PNG bytes from the kernel were decoded"


def test_a_progress_counter_with_carriage_returns_shows_one_line(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(
        page,
        "import sys, time\nfor i in range(5):\n    print(f'{i}/4', end='\\r'); sys.stdout.flush(); time.sleep(0.05)\nprint()",
    )
    expect(page.locator(".cell-status")).to_have_text("")
    assert page.inner_text(".cell-output .output-stdout").strip() == "4/4"


def test_the_input_prompt_comes_after_what_was_printed_before_it(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(page, "print('printed first')\nanswer = input('Name? ')\nprint('got', answer)")
    expect(page.locator(".cell-input")).to_be_visible()
    expect(page.locator(".cell-output")).to_contain_text("printed first")
    after = page.locator(".cell-output").evaluate(
        "out => !!(out.compareDocumentPosition(out.getRootNode().querySelector('.cell-input')) & Node.DOCUMENT_POSITION_FOLLOWING)"
    )
    assert after, "the prompt is below the output"
    page.fill(".cell-input-field", "Ada")
    page.press(".cell-input-field", "Enter")
    expect(page.locator(".cell-output")).to_contain_text("got Ada")


def test_the_page_has_a_title_and_an_icon(page, web_node):
    import urllib.request

    open_page(page, web_node)
    assert "cellserver" in page.title()
    icon = page.get_attribute("link[rel=icon]", "href")
    with urllib.request.urlopen("http://127.0.0.1:{}/{}".format(web_node.port, icon)) as response:
        assert response.status == 200 and b"<svg" in response.read()


def open_example(page, node, name):
    page.goto("http://127.0.0.1:{}/examples/{}".format(node.port, name))
    page.wait_for_selector("body[data-ready='1']")


def test_each_embedding_option_has_a_working_example_page(page, web_node):
    from playwright.sync_api import expect

    open_example(page, web_node, "linked.html")
    page.click("#a .cell-run")
    expect(page.locator("#a .cell-status")).to_have_text("")
    page.click("#b .cell-run")
    expect(page.locator("#b .cell-output")).to_contain_text("42")

    open_example(page, web_node, "autoeval.html")
    expect(page.locator("#a .cell-output .katex")).to_have_count(1)  # sympy's result, typeset
    expect(page.locator("#a .cell-output")).to_contain_text("cos")

    open_example(page, web_node, "readonly.html")
    page.click("#a .CodeMirror")
    page.keyboard.type("changed")
    assert "changed" not in page.inner_text("#a .CodeMirror")
    page.click("#a .cell-run")
    expect(page.locator("#a .cell-output")).to_contain_text("the author wrote this")

    open_example(page, web_node, "hide-editor.html")
    expect(page.locator("#a .cell-editor")).to_be_hidden()
    expect(page.locator("#a .cell-output")).to_contain_text("5 squared is 25")
    expect(page.locator("#a .widget-slider")).to_have_count(1)

    open_example(page, web_node, "minimal.html")
    visible = [b for b in page.locator("#a .cell-toolbar button").all() if b.is_visible()]
    assert [b.inner_text() for b in visible] == ["Evaluate"]
    visible[0].click()
    expect(page.locator("#a .cell-output")).to_contain_text("5050")


HOSTILE_PAGE = """<!doctype html><html><head><style>
* {{ color: red !important; font-size: 40px !important; visibility: hidden !important; }}
button, pre, .CodeMirror, .cell-output {{ display: none !important; }}
div {{ transform: rotate(180deg) !important; }}
</style></head><body><p id="own">The host page's own text</p><div id="a"></div>
<script src="http://127.0.0.1:{port}/embed.js"></script>
<script>cellserver.makeCell({{element: '#a', code: 'from IPython.display import HTML\\nHTML("<style>p, body {{ display: none }}</style><b>styled</b>")'}});</script>
</body></html>"""


def test_an_embedded_cell_renders_on_a_hostile_page_and_cannot_restyle_it(page, web_node, tmp_path):
    from playwright.sync_api import expect

    host = tmp_path / "hostile"
    host.mkdir()
    (host / "index.html").write_text(HOSTILE_PAGE.format(port=web_node.port))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(host))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto("http://127.0.0.1:{}/index.html".format(server.server_address[1]))
        run_button = page.locator("#a .cell-run")
        expect(run_button).to_be_visible()  # the page's CSS does not hide or restyle the cell
        expect(page.locator("#a .CodeMirror")).to_be_visible()
        assert (
            page.evaluate(
                "() => getComputedStyle(document.querySelector('#a').shadowRoot.querySelector('.cell-run')).fontSize"
            )
            != "40px"
        )
        run_button.click()
        expect(page.locator("#a .cell-output b")).to_have_text("styled")
        expect(page.locator("#a .cell-output")).to_be_visible()
        # The output's <style> stays inside the cell: the page's own paragraph and body are as they were.
        assert page.evaluate("() => getComputedStyle(document.querySelector('#own')).display") == "block"
        assert page.evaluate("() => getComputedStyle(document.body).display") == "block"
    finally:
        server.shutdown()


def test_widgets_work_again_after_the_connection_comes_back(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    code = (
        "import ipywidgets as w\n"
        "s = w.IntSlider(value=1)\n"
        "out = w.Output()\n"
        "def moved(change):\n"
        "    with out:\n"
        "        print('value', change['new'])\n"
        "s.observe(moved, 'value')\n"
        "w.VBox([s, out])"
    )
    run(page, code)
    expect(page.locator(".cell-output .widget-slider")).to_have_count(1)
    expect(page.locator(".cell-status")).to_have_text("")
    page.evaluate("() => window.cellserver._connection().conn._transport.close()")  # the network drops
    banner = page.locator(".cell-banner")
    expect(banner).to_be_visible()
    expect(banner).to_be_hidden()  # reconnected, the kernel resumed with its token
    page.focus(".cell-output .widget-slider .noUi-handle")
    page.keyboard.press("ArrowRight")
    expect(page.locator(".cell-output .widget-output")).to_contain_text("value 2")


def test_outputs_follow_jupyters_mime_order(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    run(
        page,
        "from IPython.display import display\ndisplay({{'text/html': '<b>rich</b>', 'image/png': '{}', 'text/plain': 'plain'}}, raw=True)".format(
            png
        ),
    )
    expect(page.locator(".cell-output .output-html b")).to_have_text("rich")  # HTML before PNG, as Jupyter ranks them
    assert page.locator(".cell-output img.output-image").count() == 0


def test_jslink_and_interactive_output_and_a_checkbox(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    code = (
        "import ipywidgets as w\n"
        "a, b = w.IntSlider(value=1, description='a'), w.IntSlider(value=1, description='b')\n"
        "w.jslink((a, 'value'), (b, 'value'))\n"
        "flag = w.Checkbox(value=False, description='double')\n"
        "def show(x, double):\n"
        "    print('x is', x * (2 if double else 1))\n"
        "w.VBox([a, b, flag, w.interactive_output(show, {'x': a, 'double': flag})])"
    )
    run(page, code)
    expect(page.locator(".cell-output .widget-slider")).to_have_count(2)
    expect(page.locator(".cell-output .widget-output")).to_contain_text("x is 1")
    page.locator(".cell-output .widget-slider .noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator(".cell-output .widget-readout").nth(1)).to_have_text("2")  # b follows a in the page (jslink)
    expect(page.locator(".cell-output .widget-output")).to_contain_text("x is 2")
    page.locator(".cell-output .widget-checkbox input").check()
    expect(page.locator(".cell-output .widget-output")).to_contain_text("x is 4")


def test_the_language_picker_runs_the_cell_in_bash_and_r_and_shares_the_language(page, web_node):
    from playwright.sync_api import expect

    open_page(page, web_node)
    picker = page.locator("select.cell-language")
    expect(picker.locator("option[value='bash']")).to_have_count(1)  # filled from cell.kernelspecs()
    expect(picker.locator("option[value='ir']")).to_have_count(1)
    assert picker.input_value() == "python3"
    picker.select_option("bash")
    run(page, "echo hello from bash $((6 * 7))")
    expect(page.locator(".cell-output")).to_contain_text("hello from bash 42")
    expect(page.locator(".cell-status")).to_have_text("")
    assert page.locator(".CodeMirror .cm-builtin, .CodeMirror .cm-keyword").count() > 0, "shell highlighting"
    picker.select_option("ir")
    run(page, 'cat("R says", 6 * 7, "\\n")')
    expect(page.locator(".cell-output")).to_contain_text("R says 42")
    expect(page.locator(".cell-status")).to_have_text("")
    page.click(".cell-share")
    link = page.locator(".share-z")
    expect(link).to_have_attribute("href", re.compile(r"&lang=ir$"))
    page.goto(link.get_attribute("href"))  # the link opens the code in R again
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("select.cell-language")).to_have_value("ir")
    page.evaluate("() => window.cellserverPage.run()")
    expect(page.locator(".cell-output")).to_contain_text("R says 42")

    open_example(page, web_node, "languages.html")  # the embedding options language, kernel_name, languagePicker
    expect(page.locator("#a .cell-output")).to_contain_text("R says 42")
    assert page.locator("#a select.cell-language").is_hidden(), "no picker unless asked for"
    expect(page.locator("#b select.cell-language")).to_have_value("bash")
    page.click("#b .cell-run")
    expect(page.locator("#b .cell-output")).to_contain_text("bash says 42")
