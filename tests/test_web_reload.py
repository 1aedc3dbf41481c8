"""A page reloaded while its cell runs shows what ran meanwhile, then the rest live, every line once (real
Chromium, real node: durable executions, docs/api.md)."""

from tests.test_web import chromium, open_page, page, run, web_node  # noqa: F401  (fixtures)

LINES = 100
LOOP = "import time\nfor i in range({}):\n    print('line', i, flush=True)\n    time.sleep(0.2)".format(LINES)


def shown_lines(page):  # noqa: F811
    return [line for line in page.locator(".cell-output").inner_text().splitlines() if line.strip()]


def test_a_reload_in_the_middle_of_a_20_second_loop_shows_every_line_once(page, web_node):  # noqa: F811
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(page, LOOP)
    expect(page.locator(".cell-output")).to_contain_text("line 10")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".cell-status")).to_have_class("cell-status running")  # it shows the run going on
    assert "line 0" in page.locator(".cell-output").inner_text(), "what ran before the reload is shown again"
    assert page.evaluate("window.cellserverPage.editor.getValue()") == LOOP
    expect(page.locator(".cell-output")).to_contain_text("line {}".format(LINES - 1), timeout=60000)
    expect(page.locator(".cell-status")).to_have_text("")
    assert shown_lines(page) == ["line {}".format(i) for i in range(LINES)]
    # The kernel is the same one: what the run defined is there.
    run(page, "print('i is', i)")
    expect(page.locator(".cell-output")).to_have_text("i is {}".format(LINES - 1))


def test_a_connection_dropped_mid_run_comes_back_to_the_rest_of_the_run(page, web_node):  # noqa: F811
    from playwright.sync_api import expect

    lines = 40
    open_page(page, web_node)
    run(page, LOOP.replace(str(LINES), str(lines)).replace("0.2", "0.1"))
    expect(page.locator(".cell-output")).to_contain_text("line 5")
    page.evaluate("() => window.cellserver._connection().conn._transport.close()")  # the network drops
    expect(page.locator(".cell-banner")).to_be_visible()
    expect(page.locator(".cell-banner")).to_be_hidden()  # reconnected, the kernel resumed
    expect(page.locator(".cell-status")).to_have_text("", timeout=60000)
    assert shown_lines(page) == ["line {}".format(i) for i in range(lines)]


def test_another_tab_gets_nothing_and_a_forged_token_resumes_nothing(page, web_node, chromium):  # noqa: F811
    from playwright.sync_api import expect

    open_page(page, web_node)
    run(page, "secret = 'mine'\nprint(secret)")
    expect(page.locator(".cell-output")).to_have_text("mine")
    saved = page.evaluate(
        "Object.keys(sessionStorage).filter(k => k.startsWith('cellserver:')).map(k => [k, sessionStorage[k]])"
    )
    kernels = [(k, v) for k, v in saved if k.startswith("cellserver:kernel:")]
    runs = [(k, v) for k, v in saved if k.startswith("cellserver:run:")]
    assert len(kernels) == 1 and len(runs) == 1, saved
    other = chromium.new_context()
    try:
        stranger = other.new_page()
        open_page(stranger, web_node)
        assert stranger.locator(".cell-output").inner_text().strip() == "", "a new tab starts empty"
        # A stranger who forges the stored kernel (the right id, a wrong token) gets no kernel and sees nothing.
        stranger.evaluate(
            "([kernel, run]) => { const k = JSON.parse(kernel[1]); k.token = 'forged'; "
            "sessionStorage.setItem(kernel[0], JSON.stringify(k)); sessionStorage.setItem(run[0], run[1]); }",
            [kernels[0], runs[0]],
        )
        stranger.reload()
        stranger.wait_for_selector("body[data-ready='1']")
        run(stranger, "print(globals().get('secret', 'not here'))")
        expect(stranger.locator(".cell-output")).to_have_text("not here")
        forged = stranger.evaluate("key => sessionStorage.getItem(key)", kernels[0][0])
        assert forged is None or "forged" not in forged, "a token the node refused is not kept"
    finally:
        other.close()
