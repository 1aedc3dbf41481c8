"""thebe (npm ``thebe`` 0.9.3) in **Binder mode** in Chromium, on a page of another origin: the page's Binder settings
with ``binderUrl`` changed to the node launch at the node's ``/build`` (components/router/binder_launch.py), and
thebe runs cells on the kernel its launch token starts through the face.

The node is the suite's shared one, with the shipped origin policy: the book's site is in no ``allowed_origins``,
so its page uses the face as a browser-role principal (``anonymous_origins``), which a launch token is.  The site
and the page helpers are tests/test_thebe.py's.
"""

import json
from urllib.parse import parse_qs, urlsplit

from tests.jupyter_clients import http
from tests.jupyter_ws import rest
from tests.test_thebe import CELLS, chromium, open_book, output, run_cell, site  # noqa: F401 (fixtures)


def write_binder_page(book, name, node, repo="my-org/my-book", ref="main"):
    """A page written for mybinder.org, with binderUrl the node (what docs/jupyter.md tells a book to change)."""
    root, origin = book
    config = {
        "bootstrap": True,
        "requestKernel": True,
        "useBinder": True,
        "mountActivateWidget": False,
        "binderOptions": {
            "binderUrl": "http://127.0.0.1:{}".format(node.port),
            "repo": repo,
            "ref": ref,
            "repoProvider": "github",
        },
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
        """<!doctype html><html><head><meta charset="utf-8"><title>A book page launched on Binder</title>
<script type="text/x-thebe-config">{config}</script>
<link rel="stylesheet" href="thebe/thebe.css">
<script src="thebe/index.js"></script></head>
<body><h1>A page of a book, on another site</h1>{cells}</body></html>""".format(config=json.dumps(config), cells=cells)
    )
    return "{}/{}".format(origin, name)


def test_thebe_in_binder_mode_launches_at_the_node_and_runs_a_cell(chromium, site, node):  # noqa: F811
    from playwright.sync_api import expect

    url = write_binder_page(site, "binder.html", node)
    context = chromium.new_context()
    launches, face = [], []
    context.on("request", lambda r: launches.append(r.url) if "/build/" in r.url else None)
    context.on("request", lambda r: face.append(r) if "/jupyter/api/" in r.url else None)
    try:
        page, problems = open_book(context, url)
        assert launches == ["http://127.0.0.1:{}/build/gh/my-org/my-book/main".format(node.port)], launches
        tokens = {r.headers.get("authorization", "").partition(" ")[2] for r in face} | {
            token for r in face for token in parse_qs(urlsplit(r.url).query).get("token", [])
        }
        tokens = [t for t in tokens if t.startswith("cbl1.")]
        assert len(tokens) == 1, ("thebe used the launch token", tokens)
        kernel_id = page.evaluate("window.thebe.session.kernel.id")
        face_url = "http://127.0.0.1:{}/jupyter".format(node.port)
        assert [k["id"] for k in http("GET", face_url + "/api/kernels", tokens[0])[1]] == [kernel_id], "its own"
        run_cell(page, 0)
        expect(output(page, 0)).to_contain_text("x is 42", timeout=30000)
        assert not problems, problems
        # Listed to the launch's token alone.
        assert kernel_id not in [k["id"] for k in rest(node, "GET", "/api/kernels", token=node.service_secret)[1]]
        # A reload reuses the saved Binder session (thebe checks it with GET api/kernels?token=...): no new launch.
        console = []
        page.on("console", lambda msg: console.append(msg.text))
        face.clear()
        page.reload()
        try:
            page.wait_for_function(
                "window.thebe && window.thebe.session && window.thebe.session.kernel && "
                "window.thebe.session.kernel.connectionStatus === 'connected'"
            )
        except Exception:
            raise AssertionError((console[-30:], [(r.method, r.url) for r in face])) from None
        assert len(launches) == 1, launches
        assert page.evaluate("window.thebe.session.kernel.id") == kernel_id, "the same kernel after the reload"
        run_cell(page, 4)
        expect(output(page, 4)).to_contain_text("x after 42", timeout=30000)
        assert not problems, problems
        assert http("DELETE", face_url + "/api/kernels/" + kernel_id, tokens[0])[0] == 204
    finally:
        context.close()
