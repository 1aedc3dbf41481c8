"""Jupyter's own clients, unchanged, against a Jupyter gateway: jupyter_server, nbclient and JupyterLab in Chromium.

The gateway is Jupyter Kernel Gateway 3 (the reference: the tests were proven
against it) or the node's Kernel Gateway-compatible face at
``http://127.0.0.1:PORT/jupyter`` (token: the node's service secret). L{GATEWAYS}
picks which. The clients run from ``.jupyter-venv`` (``make test`` builds
it), as subprocesses; ``tests/jupyter_clients.py`` has the processes, a channels
client and the notebook comparison.

Run only these: ``pytest -m jupyter``.
"""

import json
import os
import re
import time
import uuid

import pytest

from tests.jupyter_clients import (
    JUPYTER_PYTHON,
    NOTEBOOK,
    WIDGET_VIEW,
    JupyterServer,
    KernelGateway,
    NodeFace,
    assert_kernel_belongs_to_gateway,
    compare_notebooks,
    nbclient_subprocess,
    stream_text,
)
from tests.node import ROOT

pytestmark = pytest.mark.jupyter

#: The gateways the tests run against. "node": the node's /jupyter face (the shared node of tests/conftest.py), what
#: `make test` checks. "kernel_gateway": Jupyter Kernel Gateway 3.0.1, started here, the reference the tests were
#: proven against: CELL_TEST_GATEWAYS=node,kernel_gateway pytest -m jupyter
GATEWAYS = ["node"]
GATEWAYS = os.environ.get("CELL_TEST_GATEWAYS", ",".join(GATEWAYS)).split(",")

ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")


@pytest.fixture(scope="module", autouse=True)
def jupyter_venv():
    assert os.path.exists(JUPYTER_PYTHON), "the Jupyter clients' venv is missing: run `make .jupyter-venv/.installed`"


def wait_for_face(face, timeout=30):
    """Until the node's face answers ``GET /jupyter/api`` (a 404 means the node serves no face: fail at once)."""
    deadline = time.monotonic() + timeout
    while True:  # poll: the face comes up with the router, which announces it nowhere a test can wait on
        try:
            status, body = face.request("GET", "/api", timeout=5)
        except OSError as error:
            status, body = None, error
        if status == 200:
            return face
        assert status != 404, "the node serves no Jupyter face: GET {}/api answered 404".format(face.url)
        assert time.monotonic() < deadline, "GET {}/api: {} {!r}".format(face.url, status, body)
        time.sleep(0.1)  # poll: the face answers once the node serves it


@pytest.fixture(scope="module", params=GATEWAYS)
def gateway(request, tmp_path_factory):
    """The gateway under test, reached with its token (Kernel Gateway's auth token, or the node's service secret)."""
    if request.param == "kernel_gateway":
        kg = KernelGateway(tmp_path_factory.mktemp("kg"), token=uuid.uuid4().hex).start()
        yield kg
        kg.stop()
    else:
        node = request.getfixturevalue("node")
        yield wait_for_face(NodeFace(node, node.service_secret))


@pytest.fixture(scope="module")
def anonymous_gateway(gateway, tmp_path_factory):
    """The same kind of gateway reached with no token: a second Kernel Gateway without an auth token, or the node's
    face anonymously (the browser role's limits)."""
    if gateway.kind == "kernel_gateway":
        kg = KernelGateway(tmp_path_factory.mktemp("kg-anonymous"), token=None, name="kernel-gateway-anonymous").start()
        yield kg
        kg.stop()
    else:
        yield gateway.anonymous()


# -- a. jupyter_server with --gateway-url -------------------------------------------------------


@pytest.fixture(scope="module")
def server(gateway, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jupyter-server")
    root = tmp / "root"
    (root / "sub").mkdir(parents=True)
    server = JupyterServer(tmp, gateway, root).start()
    yield server
    server.stop()


@pytest.fixture
def session(server):
    """A notebook session on C{server}: C{(kernel_id, Channels)}; deleted (and its kernel with it) afterwards."""
    path = "sub/{}.ipynb".format(uuid.uuid4().hex[:8])
    status, model = server.request(
        "POST", "/api/sessions", {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}
    )
    assert status == 201, (status, model)
    kernel_id = model["kernel"]["id"]
    channels = server.channels(kernel_id)
    channels.kernel_info(timeout=60)
    yield kernel_id, channels
    channels.close()
    server.request("DELETE", "/api/sessions/" + model["id"])


def run_ok(channels, code, timeout=30):
    reply, iopub = channels.execute(code, timeout)
    assert reply["status"] == "ok", reply
    return stream_text(iopub)


def kernel_pid(channels):
    return int(run_ok(channels, "import os; print(os.getpid())"))


def test_jupyter_server_runs_a_cell_on_the_gateways_kernel(server, gateway, session):
    kernel_id, channels = session
    reply, iopub = channels.execute("print(1+1)")
    assert reply["status"] == "ok" and reply["execution_count"] == 1, reply
    assert stream_text(iopub) == "2\n"
    kinds = [m["header"]["msg_type"] for m in iopub]
    assert kinds[0] == "status" and kinds[-1] == "status" and "execute_input" in kinds, kinds
    assert_kernel_belongs_to_gateway(gateway, kernel_id, kernel_pid(channels))
    status, kernels = server.request("GET", "/api/kernels")
    assert status == 200 and kernel_id in [k["id"] for k in kernels], kernels


def test_interrupt_stops_a_sleep(server, session):
    kernel_id, channels = session
    msg_id = channels.send(
        "shell",
        "execute_request",
        {
            "code": "import time; time.sleep(30)",
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    )
    channels.wait_for(
        lambda m: m["header"]["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == msg_id,
        30,
        "the sleep's execute_input",
    )
    t0 = time.monotonic()
    status, body = server.request("POST", "/api/kernels/{}/interrupt".format(kernel_id))
    assert status == 204, (status, body)
    reply, iopub = channels.collect(msg_id, timeout=10)
    assert time.monotonic() - t0 < 10
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    assert any(m["header"]["msg_type"] == "error" and m["content"]["ename"] == "KeyboardInterrupt" for m in iopub)
    assert run_ok(channels, "print('still here')") == "still here\n"


def test_restart_loses_the_kernels_state(server, gateway, session):
    kernel_id, channels = session
    assert run_ok(channels, "x = 41\nprint(x + 1)") == "42\n"
    before = kernel_pid(channels)
    status, model = server.request("POST", "/api/kernels/{}/restart".format(kernel_id))
    assert status == 200 and model["id"] == kernel_id, (status, model)
    channels.kernel_info(timeout=60)  # as JupyterLab does after a restart, on the same WebSocket
    assert run_ok(channels, "print('x' in globals())") == "False\n"
    after = kernel_pid(channels)
    assert after != before, "a restart replaces the kernel's process"
    assert_kernel_belongs_to_gateway(gateway, kernel_id, after)


def test_deleted_kernel_is_gone(server, gateway, session):
    kernel_id, channels = session
    run_ok(channels, "1")
    status, body = server.request("DELETE", "/api/kernels/{}".format(kernel_id))
    assert status == 204, (status, body)
    status, kernels = server.request("GET", "/api/kernels")
    assert status == 200 and kernel_id not in [k["id"] for k in kernels], kernels
    deadline = time.monotonic() + 10
    while kernel_id in gateway.kernel_ids():  # poll: a gateway may finish a shutdown after answering the DELETE
        assert time.monotonic() < deadline, "the gateway still lists kernel {} 10 s after its DELETE".format(kernel_id)
        time.sleep(0.1)  # poll
    status, _ = gateway.request("GET", "/api/kernels/{}".format(kernel_id))
    assert status == 404


# -- b. nbclient with GatewayKernelManager -----------------------------------------------------


def outputs_of(nb):
    return [o for cell in nb["cells"] for o in cell.get("outputs", [])]


def assert_exercised(nb):
    """The executed notebook really shows each feature (so two equally empty runs cannot match)."""
    outputs = outputs_of(nb)
    texts = json.dumps(outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs), "a plot"
    assert any(WIDGET_VIEW in o.get("data", {}) for o in outputs), "a widget view"
    assert any(o["output_type"] == "error" and o["ename"] == "ZeroDivisionError" for o in outputs), "the error cell"
    assert "**second**" in texts and "**first**" not in texts, "the display was updated in place"
    assert "after the clear" in texts and "to be cleared" not in texts, "clear_output() cleared"
    assert "42" in texts, "the widget's value was set from the kernel"


@pytest.fixture(scope="module")
def local_notebook(tmp_path_factory):
    """The notebook as nbclient executes it on a plain local ipykernel (the jupyter venv's)."""
    tmp = tmp_path_factory.mktemp("nbclient-local")
    out = str(tmp / "local.ipynb")
    nbclient_subprocess(tmp, out)
    with open(out) as f:
        nb = json.load(f)
    assert_exercised(nb)
    return nb


def run_through(gateway, tmp_path, local_notebook):
    before = gateway.kernel_ids()
    out = str(tmp_path / "gateway.ipynb")
    nbclient_subprocess(tmp_path, out, gateway)
    with open(out) as f:
        nb = json.load(f)
    assert_exercised(nb)
    problems = compare_notebooks(local_notebook, nb)
    assert not problems, "outputs through {} differ from a local kernel's:\n{}".format(gateway.url, "\n".join(problems))
    assert gateway.kernel_ids() <= before, "nbclient shuts its kernel down when done"


def test_nbclient_through_the_gateway_matches_a_local_kernel(anonymous_gateway, tmp_path, local_notebook):
    """Anonymously: nbclient opens the channels WebSocket without the token it sends on REST (jupyter_server's
    GatewayKernelClient sends no Authorization header there), so a gateway with a token refuses it (KG: 401)."""
    run_through(anonymous_gateway, tmp_path, local_notebook)


# -- c. JupyterLab in headless Chromium ---------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    from tests.test_web import ARGS, CHROMIUM

    assert os.path.exists(CHROMIUM), "install Debian's chromium (make test does it when run as root)"
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    yield browser
    browser.close()
    pw.stop()


LAB_CELL = (
    "import os\n"
    "import matplotlib.pyplot as plt\n"
    "print('hello from JupyterLab, pid', os.getpid())\n"
    "plt.plot([1, 3, 2])\n"
    "plt.show()"
)


def lab_notebook(path):
    with open(NOTEBOOK) as f:
        nb = json.load(f)
    cell = {"cell_type": "code", "id": "lab-cell", "execution_count": None, "metadata": {}, "outputs": []}
    cell["source"] = LAB_CELL
    nb["cells"] = [cell]
    with open(path, "w") as f:
        json.dump(nb, f)


def test_jupyterlab_runs_a_cell_through_the_gateway(gateway, tmp_path, chromium, request):
    root = tmp_path / "lab-root"
    root.mkdir()
    lab_notebook(str(root / "lab.ipynb"))
    lab = JupyterServer(tmp_path, gateway, root, app="lab").start()
    try:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            run_lab_cell(page, lab, gateway)
        except BaseException:
            os.makedirs(ARTIFACTS, exist_ok=True)
            page.screenshot(path=os.path.join(ARTIFACTS, request.node.name + ".png"))
            raise
        finally:
            context.close()
    finally:
        lab.stop()


def run_lab_cell(page, lab, gateway):
    """Open the notebook in JupyterLab, wait for its kernel, run the cell, see its text and its plot."""
    from playwright.sync_api import expect

    page.set_default_timeout(60000)
    expect.set_options(timeout=60000)  # the first start of JupyterLab's page on a 2-core machine is slow
    page.goto("{}/lab/tree/lab.ipynb?token={}".format(lab.url, lab.token))
    # The notebook names the python3 kernelspec, so JupyterLab starts that kernel itself; if it asks which
    # kernel to use instead, accept its choice.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-Dialog")
    if page.locator(".jp-Dialog").count():
        page.click(".jp-Dialog .jp-mod-accept")
    # Connected: the status bar shows the kernel's state only once its channels WebSocket is open (the toolbar's
    # indicator says idle before that, and a cell run then is dropped).
    connected = page.get_by_text(re.compile(r"^.+ \| Idle$")).first
    try:
        expect(connected).to_be_visible(timeout=20000)
    except AssertionError:
        if gateway.kind != "kernel_gateway":
            raise
        # Kernel Gateway's known race: the browser's first channels attempt (offering the v1 subprotocol, which
        # jupyter_server refuses) leaves jupyter_server's WebSocket to the gateway orphaned; the retry uses the
        # same session_id, KG replaces the "stale" socket and buffers the kernel's messages away from the live
        # one: "| Unknown" forever. A user reconnects; so does this test (on KG only).
        page.get_by_role("menuitem", name="Kernel", exact=True).click()
        page.get_by_role("menuitem", name="Reconnect to Kernel").click()
        expect(connected).to_be_visible()
    page.click(".jp-Cell .jp-InputArea-editor")
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-OutputArea-output").first
    expect(output).to_contain_text("hello from JupyterLab, pid")
    image = page.locator(".jp-OutputArea-output img")
    expect(image).to_have_count(1)
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute("data-status", "idle")
    pid = int(re.search(r"pid (\d+)", output.inner_text()).group(1))
    status, kernels = lab.request("GET", "/api/kernels")
    assert status == 200 and len(kernels) == 1, kernels
    assert_kernel_belongs_to_gateway(gateway, kernels[0]["id"], pid)
