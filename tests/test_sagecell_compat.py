"""Pages and programs written for SageMathCell, against a real node (issue 21): its embedding script
(/static/embedded_sagecell.js) on pages of another origin in Debian's Chromium, its permalink forms at /, and its
HTTP service (POST /service, /permalink) from Python's urllib, with the quotas a stranger meets.

The pages are written as SageMathCell's documentation and its own test pages (static/test/linked.html) write them,
unchanged but for the script's host.  The Sage variants need the Sage environment (make sage) and a node that forks
Sage kernels (tests.node.with_sage).
"""

import base64
import functools
import http.client
import http.server
import json
import os
import re
import threading
import time
import urllib.parse
import zlib

import pytest

from tests.node import ROOT, Node, with_sage
from tests.test_web import chromium, page  # noqa: F401 (the browser fixtures, with this module's web_node)

#: this node's one-shot quotas per address (tests/node.py lifts them; these tests need them back, small)
CONCURRENT_PER_ADDRESS = 2
ONESHOTS_PER_MINUTE_PER_ADDRESS = 40  # bursts of 10


SAVES_PER_MINUTE = 20  # bursts of 5


def stranger_quotas(config):
    for worker in config["workers"]:
        if worker["type"] == "container":
            browser = worker["components"][0]["extra"]["roles"]["browser"]
            browser.update(
                max_concurrent_oneshots_per_address=CONCURRENT_PER_ADDRESS,
                max_oneshots_per_minute_per_address=ONESHOTS_PER_MINUTE_PER_ADDRESS,
            )
            for component in worker["components"]:
                if component["id"] == "permalinks":
                    component["extra"]["saves_per_minute_per_address"] = SAVES_PER_MINUTE


@pytest.fixture(scope="module")
def web_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("sagecell"), edit=stranger_quotas).start()
    yield node
    node.stop()


@pytest.fixture
def other_origin(tmp_path):
    """C{serve(html)} -> the URL of a page with that HTML on a server of another origin (another port)."""
    host = tmp_path / "elsewhere"
    host.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(host))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    count = []

    def serve(html):
        count.append(1)
        name = "page{}.html".format(len(count))
        (host / name).write_text(html)
        return "http://127.0.0.1:{}/{}".format(server.server_address[1], name)

    yield serve
    server.shutdown()
    server.server_close()


def sagecell_page(node, head_script, body):
    """A page as SageMathCell's documentation writes one: its script, makeSagecell in <head>, the cells below."""
    return (
        "<!DOCTYPE HTML><html><head><meta charset='utf-8'><title>SageMathCell</title>"
        "<script src='http://127.0.0.1:{port}/static/embedded_sagecell.js'></script>"
        "<script>{script}</script></head><body><h1>Embedded Sage Cells</h1>{body}</body></html>"
    ).format(port=node.port, script=head_script, body=body)


def sagecell_zip(code, padded=False):
    """SageMathCell's own encoder (permalink.py, and its page's share links): URL-safe base64 of zlib's deflate."""
    text = base64.urlsafe_b64encode(zlib.compress(code.encode("utf-8"))).decode("ascii")
    return text if padded else text.rstrip("=")


# -- embedded_sagecell.js -------------------------------------------------------------------------------------------


def test_a_page_written_for_sagecell_runs_its_cells_from_another_origin(page, web_node, other_origin):  # noqa: F811
    from playwright.sync_api import expect

    url = other_origin(
        sagecell_page(
            web_node,
            "sagecell.makeSagecell({inputLocation: '#mycell', template: sagecell.templates.minimal,"
            " evalButtonText: 'Activate'});"
            "window.info = sagecell.makeSagecell({inputLocation: 'div.compute', evalButtonText: 'Evaluate',"
            " languages: sagecell.allLanguages});",
            "<div id='mycell'><script type='text/x-sage'>\nprint(6 * 7)\n</script></div>"
            "<div class='compute'><script type='text/x-sage'>print(sum(range(101)))</script></div>"
            "<div class='compute'><script type='text/x-sage'>print('<b>not html</b>')</script></div>",
        )
    )
    page.goto(url)
    minimal = page.locator("#mycell")
    expect(minimal.locator(".cell-run")).to_have_text("Activate")
    visible = [b.inner_text() for b in minimal.locator(".cell-toolbar button").all() if b.is_visible()]
    assert visible == ["Activate"], "the minimal template: the button, no editor, no share"
    expect(minimal.locator(".cell-editor")).to_be_hidden()
    minimal.locator(".cell-run").click()
    expect(minimal.locator(".cell-output")).to_contain_text("42")

    first, second = page.locator("div.compute").nth(0), page.locator("div.compute").nth(1)
    expect(first.locator(".cell-run")).to_have_text("Evaluate")
    picker = first.locator("select.sagecell_language")
    expect(picker).to_be_visible()  # several languages: SageMathCell's picker, with the ones the node offers
    options = picker.locator("option").all_inner_texts()
    assert {"Sage", "Python", "R", "HTML"} <= set(options), options
    assert picker.input_value() == "sage", "the default language is Sage"
    first.locator(".cell-run").click()
    expect(first.locator(".cell-output")).to_contain_text("5050")
    assert page.evaluate("window.info.array.length") == 2, "makeSagecell's cellInfo, one entry per cell"

    second.locator("select.sagecell_language").select_option("r")
    second.locator(".CodeMirror").click()
    page.evaluate("() => window.info.array[1].cell.setCode('cat(\"R says\", 6 * 7)')")
    second.locator(".cell-run").click()
    expect(second.locator(".cell-output")).to_contain_text("R says 42")
    second.locator("select.sagecell_language").select_option("html")
    page.evaluate(
        '() => window.info.array[1].cell.setCode(\'<i id="it">typeset</i><img src=x onerror="window.__pwned=1">\')'
    )
    second.locator(".cell-run").click()
    expect(second.locator(".cell-output i#it")).to_have_text("typeset")  # shown by the page, sanitized
    assert second.locator(".cell-output img[onerror]").count() == 0 and page.evaluate("window.__pwned") is None


def test_sagecells_own_linked_test_page_shares_one_kernel(page, web_node, other_origin):  # noqa: F811
    from playwright.sync_api import expect

    # static/test/linked.html of sagemath/sagecell, with the script's host changed
    url = other_origin(
        sagecell_page(
            web_node,
            "sagecell.makeSagecell({inputLocation: 'div.sage', linked:true});",
            "Type your own Sage computation below and click &ldquo;Evaluate&rdquo;."
            "<div class='sage'><script type='text/x-sage'>x=3</script></div>"
            "<div class='sage'><script type='text/x-sage'>x</script></div>",
        )
    )
    page.goto(url)
    a, b = page.locator("div.sage").nth(0), page.locator("div.sage").nth(1)
    expect(a.locator(".cell-run")).to_have_text("Evaluate")
    expect(a.locator(".cell-share")).to_be_hidden()  # linked cells have no permalink, as in SageMathCell
    expect(a.locator("select.sagecell_language")).to_be_hidden()  # one language: no picker
    a.locator(".cell-run").click()
    expect(a.locator(".cell-status")).to_have_text("")
    b.locator(".cell-run").click()
    expect(b.locator(".cell-output")).to_contain_text("3")


def test_link_keys_hide_output_location_autoeval_and_delete(page, web_node, other_origin):  # noqa: F811
    from playwright.sync_api import expect

    url = other_origin(
        sagecell_page(
            web_node,
            "sagecell.makeSagecell({inputLocation: '#k1', linkKey: 'one', autoeval: true});"
            "sagecell.makeSagecell({inputLocation: '#k2', linkKey: 'one'});"
            "sagecell.makeSagecell({inputLocation: '#k3', linked: true});"
            "sagecell.makeSagecell({inputLocation: '#quiet', autoeval: true, hide: ['editor', 'evalButton',"
            " 'permalink', 'language', 'fullScreen', 'done', 'sessionFiles', 'messages']});"
            "window.apart = sagecell.makeSagecell({inputLocation: '#in', outputLocation: '#out',"
            " code: 'print(\"over there\")'});"
            "sagecell.init(function () { window.initialized = true; });",
            "<div id='k1'><script type='text/x-sage'>shared = 'one key'</script></div>"
            "<div id='k2'><script type='text/x-sage'>print(shared)</script></div>"
            "<div id='k3'><script type='text/x-sage'>print(shared)</script></div>"
            "<div id='quiet'><script type='text/x-sage'>print('only the output', 2 * 21)</script></div>"
            "<div id='in'></div><p>between</p><div id='out'></div>",
        )
    )
    page.goto(url)
    expect(page.locator("#quiet .cell-output")).to_contain_text("only the output 42")  # autoeval
    for hidden in (".cell-editor", ".cell-run", ".cell-share", "select.sagecell_language"):
        expect(page.locator("#quiet " + hidden)).to_be_hidden()
    expect(page.locator("#k1 .cell-status")).to_have_text("")
    page.locator("#k2 .cell-run").click()
    expect(page.locator("#k2 .cell-output")).to_contain_text("one key")  # k1 ran in the kernel k2 shares
    page.locator("#k3 .cell-run").click()
    expect(page.locator("#k3 .cell-output")).to_contain_text("NameError")  # another key: another kernel
    page.locator("#in .cell-run").click()
    expect(page.locator("#out .cell-output")).to_contain_text("over there")
    assert page.locator("#in .cell-output").count() == 0, "the output is where outputLocation says"
    assert page.evaluate("window.initialized") is True
    page.evaluate("() => sagecell.deleteSagecell(window.apart)")
    expect(page.locator("#in")).to_have_count(0)
    expect(page.locator("#out")).to_have_count(0)


# -- the page's permalink forms ---------------------------------------------------------------------------------------


def open_link(tab, node, query):
    tab.goto("http://127.0.0.1:{}/?{}".format(node.port, query))
    tab.wait_for_selector("body[data-ready='1']")


def test_sagecell_links_open_with_their_code_and_run_unless_autoeval_false(page, web_node):  # noqa: F811
    from playwright.sync_api import expect

    code = "s = 'zipped ünïcode'\nprint(s, 6 * 7)"
    for padded in (False, True):
        open_link(page, web_node, "z={}&lang=python".format(sagecell_zip(code, padded)))
        assert page.evaluate("window.cellserverPage.editor.getValue()") == code
        expect(page.locator("select.cell-language")).to_have_value("python3")  # SageMathCell's name, mapped
        expect(page.locator(".cell-output")).to_contain_text("zipped ünïcode 42")  # autoeval by default

    open_link(page, web_node, "c={}&autoeval=false".format(urllib.parse.quote("print('plain', 1 + 1)")))
    assert page.evaluate("window.cellserverPage.editor.getValue()") == "print('plain', 1 + 1)"
    page.locator(".cell-run").click()  # no lang: Sage where offered; this node has none, so Python
    expect(page.locator(".cell-output")).to_contain_text("plain 2")

    open_link(page, web_node, "z={}&lang=r&autoeval=false".format(sagecell_zip("cat('in R', 6 * 7)")))
    expect(page.locator("select.cell-language")).to_have_value("ir")
    assert page.locator(".cell-output .output-stream").count() == 0, "autoeval=false: nothing ran"

    open_link(page, web_node, "z=not-zlib-at-all")
    expect(page.locator(".notice-error")).to_contain_text("could not be loaded")

    open_link(page, web_node, "c=print(1)&lang=klingon")
    expect(page.locator(".notice-error")).to_contain_text("klingon")


def test_post_permalink_answers_as_sagecell_and_its_query_opens_in_the_page(page, web_node):  # noqa: F811
    from playwright.sync_api import expect

    code = "print('kept by id', 6 * 7)"
    status, headers, body = request(web_node, "POST", "/permalink", {"code": code, "language": "python"})
    assert status == 200 and headers["access-control-allow-origin"] == "*", body
    saved = json.loads(body)
    assert zlib.decompress(base64.urlsafe_b64decode(saved["zip"])).decode() == code
    status, _, body = request(web_node, "GET", "/permalink?q=" + saved["query"])
    assert status == 200 and json.loads(body) == [code, "python", "[]"]
    open_link(page, web_node, "q=" + saved["query"])
    assert page.evaluate("window.cellserverPage.editor.getValue()") == code
    expect(page.locator(".cell-output")).to_contain_text("kept by id 42")
    status, _, body = request(web_node, "GET", "/permalink?q=nosuchid")
    assert status == 404 and "not found" in json.loads(body)["message"]
    status, _, body = request(web_node, "POST", "/permalink", {"language": "python"})
    assert status == 400 and "code" in json.loads(body)["message"]


def test_a_stranger_saving_permalinks_over_http_meets_the_quota_of_its_address(web_node):
    statuses = []
    for i in range(SAVES_PER_MINUTE):
        forged = {"X-Forwarded-For": "10.88.0.{}".format(i)}
        status, headers, body = request(
            web_node, "POST", "/permalink", {"code": "print({})".format(i)}, source="127.0.0.9", headers=forged
        )
        statuses.append(status)
        if status == 429:
            assert "per minute" in json.loads(body)["message"] and headers["retry-after"]
            break
    assert statuses[-1] == 429 and len(statuses) <= SAVES_PER_MINUTE // 4 + 2, statuses
    status, _, body = request(web_node, "POST", "/permalink", {"code": "print('mine')"}, source="127.0.0.10")
    assert status == 200 and json.loads(body)["query"], "another address still saves"
    status, _, body = request(web_node, "GET", "/permalink?q=" + "x" * 200)
    assert status == 413 and "64 bytes" in json.loads(body)["message"], body


# -- POST /service ---------------------------------------------------------------------------------------------------


def request(node, method, path, fields=None, source="127.0.0.1", headers=None, raw=None):
    """(status, headers with lowercase names, body) of one HTTP request from C{source} (a loopback address)."""
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120, source_address=(source, 0))
    body = raw if raw is not None else (urllib.parse.urlencode(fields, doseq=True).encode() if fields else None)
    sent = dict(headers or {})
    if body is not None:
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        conn.close()


def test_service_answers_as_sagecells(web_node):
    status, headers, body = request(
        web_node,
        "POST",
        "/service",
        {
            "code": "import sys\nprint('to stdout', 6 * 7)\nprint('to stderr', file=sys.stderr)",
            "user_expressions": json.dumps({"answer": "6 * 7"}),
            "accepted_tos": "true",
        },
    )
    assert status == 200 and headers["access-control-allow-origin"] == "*", body
    reply = json.loads(body)
    assert reply["success"] is True and reply["stdout"] == "to stdout 42\n" and reply["stderr"] == "to stderr\n"
    assert reply["execute_reply"]["status"] == "ok"
    assert reply["execute_reply"]["user_expressions"]["answer"]["data"]["text/plain"] == "42"

    status, _, body = request(web_node, "POST", "/service", {"code": "1/0"})
    reply = json.loads(body)
    assert status == 200 and reply["success"] is False and reply["stdout"] == ""
    assert reply["execute_reply"]["status"] == "error" and reply["execute_reply"]["ename"] == "ZeroDivisionError"

    status, _, body = request(web_node, "POST", "/service", {"code": "cat('R:', 6 * 7)", "language": "r"})
    assert status == 200 and json.loads(body)["stdout"] == "R: 42", body

    # multipart, as `requests.post(url, files=...)` or a browser's FormData sends it
    boundary = "sagecellboundary"
    multipart = (
        "--{b}\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\nprint('multipart')\r\n--{b}--\r\n".format(
            b=boundary
        )
    ).encode()
    status, _, body = request(
        web_node,
        "POST",
        "/service",
        raw=multipart,
        headers={"Content-Type": "multipart/form-data; boundary=" + boundary},
    )
    assert status == 200 and json.loads(body)["stdout"] == "multipart\n", body

    status, headers, _ = request(web_node, "OPTIONS", "/service", headers={"Origin": "http://elsewhere.example"})
    assert status == 204 and headers["access-control-allow-origin"] == "*"
    assert "POST" in headers["access-control-allow-methods"]


def test_service_refuses_bad_input_with_a_message(web_node):
    cases = [
        ({"code": "x" * 65001}, 413, "65000"),
        ({"nocode": "1"}, 400, "code"),
        ({"code": "1", "user_expressions": "{not json"}, 400, "user_expressions"),
        ({"code": "1", "user_expressions": "[1, 2]"}, 400, "user_expressions"),
        ({"code": "1", "language": "klingon"}, 400, "klingon"),
    ]
    for fields, code, word in cases:
        status, headers, body = request(web_node, "POST", "/service", fields)
        answer = json.loads(body)
        assert status == code and answer["success"] is False and word in answer["message"], (fields, body)
        assert headers["access-control-allow-origin"] == "*"
    status, _, body = request(web_node, "POST", "/service", raw=b"code=%FF%FE", source="127.0.0.1")
    assert status == 400 and "UTF-8" in json.loads(body)["message"]
    status, _, body = request(web_node, "GET", "/service?code=print(1)")
    assert status == 405 and "POST" in json.loads(body)["message"]


def test_a_stranger_hammering_service_gets_429_while_another_address_is_served(web_node):
    """One address's one-shots at once and per minute are capped through HTTP as through WAMP; X-Forwarded-For
    from a client (this node trusts no front) does not make it someone else."""
    # long enough that none of the admitted ones ends before the last hammer is sent, however slow the machine
    sleeper = {"code": "import time\ntime.sleep(12)\nprint('slept')"}
    answers = []

    def hammer(i):
        forged = {"X-Forwarded-For": "10.66.0.{}".format(i)}
        answers.append(request(web_node, "POST", "/service", sleeper, source="127.0.0.5", headers=forged))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(CONCURRENT_PER_ADDRESS + 3)]
    for t in threads:
        t.start()
    # meanwhile another address is served at once
    status, _, body = request(web_node, "POST", "/service", {"code": "print('served')"}, source="127.0.0.6")
    assert status == 200 and json.loads(body)["stdout"] == "served\n", body
    for t in threads:
        t.join(60)
    codes = sorted(status for status, _, _ in answers)
    assert codes.count(200) == CONCURRENT_PER_ADDRESS and codes.count(429) == 3, answers
    refused = [json.loads(body) for status, _, body in answers if status == 429]
    assert all("at once" in r["message"] and r["success"] is False for r in refused), refused

    # and per minute: a burst of quick ones is cut off, forged headers or not
    statuses = []
    for i in range(ONESHOTS_PER_MINUTE_PER_ADDRESS):
        forged = {"X-Forwarded-For": "10.77.0.{}".format(i)} if i % 2 else {}
        status, _, body = request(web_node, "POST", "/service", {"code": "1"}, source="127.0.0.7", headers=forged)
        statuses.append(status)
        if status == 429:
            assert "per minute" in json.loads(body)["message"]
            break
    assert statuses[-1] == 429 and len(statuses) <= ONESHOTS_PER_MINUTE_PER_ADDRESS // 4 + 3, statuses
    status, _, body = request(
        web_node, "POST", "/service", {"code": "1"}, source="127.0.0.7", headers={"X-Forwarded-For": "10.1.2.3"}
    )
    assert status == 429, "a forged X-Forwarded-For does not escape the quota"
    status, _, _ = request(web_node, "POST", "/service", {"code": "1"}, source="127.0.0.8")
    assert status == 200, "another address still is served"


# -- with Sage ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sage_node(tmp_path_factory):
    assert os.path.exists(os.path.join(ROOT, ".sage-venv", "bin", "python")), "make sage builds the Sage environment"
    node = Node(tmp_path_factory.mktemp("sagecell-sage"), edit=with_sage).start()
    try:
        wait_for_sage(node)
        yield node
    finally:
        node.stop()


def wait_for_sage(node, seconds=180):
    """Until the Sage master has warmed up and a Sage kernel waits in its pool (the node's /metrics says so)."""
    pattern = re.compile(r'^cell_pool_ready\{[^}]*kernel="sagemath"[^}]*\} ([0-9.e+]+)$', re.M)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # poll: the master's warm-up announces nothing a test can wait on
        status, _, body = request(node, "GET", "/metrics")
        if status == 200 and any(float(v) >= 1 for v in pattern.findall(body)):
            return
        time.sleep(0.5)  # poll
    raise AssertionError("no ready Sage kernel within {} s".format(seconds))


def test_service_runs_sage_by_default(sage_node):
    status, _, body = request(sage_node, "POST", "/service", {"code": "print(factor(2^64+1))"})
    assert status == 200, body
    reply = json.loads(body)
    assert reply["success"] is True and reply["stdout"] == "274177 * 67280421310721\n", reply


def test_a_sagecell_page_with_an_interact_runs_in_sage(chromium, sage_node, other_origin):  # noqa: F811
    from playwright.sync_api import expect

    context = chromium.new_context()
    try:
        page = context.new_page()  # noqa: F811
        page.set_default_timeout(60000)
        url = other_origin(
            sagecell_page(
                sage_node,
                "sagecell.makeSagecell({inputLocation: 'div.compute', evalButtonText: 'Evaluate'});",
                "<div class='compute'><script type='text/x-sage'>\n@interact\ndef f(n=(1..10), word=input_box('abc', type=str)):\n"
                "    print(2^n, word.upper())\n</script></div>",
            )
        )
        page.goto(url)
        page.locator("div.compute .cell-run").click()
        output = page.locator("div.compute .cell-output")
        expect(output).to_contain_text("ABC", timeout=60000)
        expect(output).to_contain_text("2 ABC")  # n starts at 1
        page.locator("div.compute .widget-slider .noUi-handle").first.focus()
        for _ in range(9):
            page.keyboard.press("ArrowRight")  # to 10
        expect(output).to_contain_text("1024 ABC", timeout=30000)
        box = page.locator("div.compute input[type=text]").first
        box.fill("sage")
        box.press("Enter")
        expect(output).to_contain_text("1024 SAGE", timeout=30000)

        # a link made by SageMathCell's encoder, without lang: Sage's (2^10 is a power in Sage, 8 in Python)
        open_link(page, sage_node, "z=" + sagecell_zip("R.<x> = QQ[]\nprint(2^10, (x^2 - 1).factor())"))
        expect(page.locator("select.cell-language")).to_have_value("sagemath")
        expect(page.locator(".cell-output")).to_contain_text("1024 (x - 1) * (x + 1)")
    finally:
        context.close()
