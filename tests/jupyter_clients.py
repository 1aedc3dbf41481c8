"""Jupyter's own clients against a Jupyter gateway: the processes, a channels client, nbclient and the comparison.

A *gateway* speaks Jupyter Kernel Gateway's REST API and channels WebSocket
under a base URL: Kernel Gateway itself at its root, or the node's face at
``http://127.0.0.1:PORT/jupyter``.  The clients (jupyter_server, JupyterLab,
nbclient, Kernel Gateway too) live in ``.jupyter-venv`` (``make test``
builds it from ``tests/jupyter-requirements.txt``): their pins clash with
Crossbar's.  So this module is used twice:

- imported by the tests and the bench (project venv): L{KernelGateway},
  L{NodeFace}, L{JupyterServer}, L{Channels} (tornado, which the project venv
  has), L{compare_notebooks};
- run as a script by the jupyter venv's Python: ``python tests/jupyter_clients.py
  nbclient NOTEBOOK OUT [--gateway-url URL] [--token T]`` executes a notebook with
  nbclient, through ``GatewayKernelManager`` when a gateway is given.

Only the standard library is imported at the top, for both.
"""

import argparse
import base64
import datetime
import functools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JUPYTER_VENV = os.path.join(ROOT, ".jupyter-venv")
JUPYTER_BIN = os.path.join(JUPYTER_VENV, "bin")
JUPYTER_PYTHON = os.path.join(JUPYTER_BIN, "python")
NOTEBOOK = os.path.join(ROOT, "tests", "notebooks", "gateway.ipynb")
THIS = os.path.abspath(__file__)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(tmpdir):
    """An environment for the jupyter venv's programs that reads no user's or machine's Jupyter config or state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "KERNEL_", "IPYTHON"))}
    env.pop("MPLBACKEND", None)
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("IPYTHONDIR", "ipython")):
        env[name] = os.path.join(str(tmpdir), "jupyter-" + sub)
        os.makedirs(env[name], exist_ok=True)
    env["JUPYTER_RUNTIME_DIR"] = os.path.join(env["JUPYTER_DATA_DIR"], "runtime")
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PATH"] = JUPYTER_BIN + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def request_parts(token=None, body=None):
    """C{(data, headers)} of a REST call: C{body} as JSON, C{token} as ``Authorization`` (None: no header)."""
    headers = {} if token is None else {"Authorization": "token " + token}
    if body is None:
        return None, headers
    headers["Content-Type"] = "application/json"
    return json.dumps(body).encode(), headers


def decoded(raw):
    """A response body: its JSON, None when empty, the raw bytes when it is not JSON."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw


def http(method, url, token=None, body=None, timeout=60):
    """C{(status, decoded JSON or raw bytes)}; C{token} None sends no Authorization header."""
    data, headers = request_parts(token, body)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, decoded(raw)


class Server:
    """A server of the jupyter venv as a subprocess in its own process group, its output in a log file.

    L{stop}: SIGTERM (Jupyter's servers shut their kernels down on it; SIGINT would ask
    for a confirmation on a terminal), then SIGKILL to the whole group after a deadline.
    """

    def __init__(self, name, argv, tmpdir, env=None):
        self.name = name
        self.argv = argv
        self.dir = os.path.join(str(tmpdir), name)
        os.makedirs(self.dir, exist_ok=True)
        self.env = env or jupyter_env(tmpdir)
        self.log_path = os.path.join(self.dir, name + ".log")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.dir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_http(self, url, token=None, timeout=60):
        """Until C{url} answers 200 (C{token} as the Authorization header), or the process exits."""
        deadline = time.monotonic() + timeout
        while True:  # poll: a server starting to listen announces it nowhere else
            if self.proc.poll() is not None:
                raise RuntimeError("{} exited with {}:\n{}".format(self.name, self.proc.returncode, self.log()[-5000:]))
            try:
                status, _ = http("GET", url, token, timeout=5)
                if status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("{} did not answer {} within {} s:\n{}".format(self.name, url, timeout, self.log()))
            time.sleep(0.1)  # poll: the server answers its API once it is up

    def stop(self, timeout=20):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group is ours: a kernel left behind goes too
        except ProcessLookupError:
            pass
        self.proc.wait()


# -- gateways ------------------------------------------------------------------------------


class Gateway:
    """A Jupyter gateway under test: C{url} (its base URL), C{token} (None: anonymous), C{pid} (its kernels'
    ancestor process)."""

    kind = None
    url = None
    token = None

    @property
    def ws_url(self):
        return "ws" + self.url[len("http") :]

    def request(self, method, path, body=None, timeout=60):
        return http(method, self.url + path, self.token, body, timeout)

    def kernel_ids(self):
        status, kernels = self.request("GET", "/api/kernels")
        assert status == 200, "GET {}/api/kernels: {} {!r}".format(self.url, status, kernels)
        return {k["id"] for k in kernels}

    def stop(self):
        pass


class KernelGateway(Gateway, Server):
    """Jupyter Kernel Gateway 3 (jupyter venv), on a free port at 127.0.0.1, with C{token} as its auth token (None:
    anonymous), kernel listing on (jupyter_server lists kernels) and only the native ``python3`` kernelspec."""

    kind = "kernel_gateway"

    def __init__(self, tmpdir, token=None, name="kernel-gateway"):
        self.port = free_port()
        self.token = token
        self.url = "http://127.0.0.1:{}".format(self.port)
        argv = [
            os.path.join(JUPYTER_BIN, "jupyter"),
            "kernelgateway",
            "--KernelGatewayApp.ip=127.0.0.1",
            "--KernelGatewayApp.port={}".format(self.port),
            "--KernelGatewayApp.port_retries=0",
            "--JupyterWebsocketPersonality.list_kernels=True",
            "--KernelSpecManager.allowed_kernelspecs=python3",
        ]
        if token:
            argv.append("--KernelGatewayApp.auth_token={}".format(token))
        Server.__init__(self, name, argv, tmpdir)

    def start(self, timeout=60):
        Server.start(self)
        return self.wait_http(self.url + "/api", self.token, timeout)

    def stop(self, timeout=20):
        Server.stop(self, timeout)


class NodeFace(Gateway):
    """The Jupyter face of a node (tests.node.Node) at ``http://127.0.0.1:PORT/jupyter``: with the node's service
    secret as the token, or anonymous (C{token} None). The node belongs to whoever started it."""

    kind = "node"

    def __init__(self, node, token=None):
        self.node = node
        self.token = token
        self.url = "http://127.0.0.1:{}/jupyter".format(node.port)
        self.pid = node.proc.pid

    def anonymous(self):
        return NodeFace(self.node, None)


def descendants(pid):
    import psutil

    return {p.pid for p in psutil.Process(pid).children(recursive=True)}


def assert_kernel_belongs_to_gateway(gateway, kernel_id, kernel_pid=None):
    """The kernel C{kernel_id} (as a client of C{gateway} knows it) is one of C{gateway}'s.

    The gateway lists it (its ``/api/kernels``, with the gateway's own token), and,
    when the kernel's pid is given (``os.getpid()`` run in it), that process runs
    under the gateway's process: under Kernel Gateway, or under the node (crossbar,
    its spawner, the fork master), not in some other server.
    """
    ids = gateway.kernel_ids()
    assert kernel_id in ids, "kernel {} is not among {}'s kernels {}".format(kernel_id, gateway.url, sorted(ids))
    if kernel_pid is not None:
        assert kernel_pid in descendants(gateway.pid), "kernel process {} does not run under {} (pid {})".format(
            kernel_pid, gateway.kind, gateway.pid
        )


# -- jupyter_server and JupyterLab with --gateway-url -------------------------------------------


class JupyterServer(Server):
    """``jupyter server`` (or ``jupyter lab``: C{app}) from the jupyter venv, proxying kernels to C{gateway}.

    Its own token is C{token}; its root directory C{root_dir}.
    """

    def __init__(self, tmpdir, gateway, root_dir, app="server", token=None):
        self.port = free_port()
        self.token = token or uuid.uuid4().hex
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.root_dir = str(root_dir)
        argv = [
            os.path.join(JUPYTER_BIN, "jupyter"),
            app,
            "--gateway-url={}".format(gateway.url),
            "--IdentityProvider.token={}".format(self.token),
            "--ServerApp.ip=127.0.0.1",
            "--port={}".format(self.port),
            "--ServerApp.port_retries=0",
            "--no-browser",
            "--ServerApp.root_dir={}".format(self.root_dir),
        ]
        if gateway.token:
            argv.append("--GatewayClient.auth_token={}".format(gateway.token))
        if os.geteuid() == 0:
            argv.append("--allow-root")  # the tests run as root on CI; the server runs no kernel itself
        if app == "lab":
            # No network here: no news or update checks from the page.
            argv += ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        super().__init__("jupyter-" + app, argv, tmpdir)

    def start(self, timeout=90):
        super().start()
        return self.wait_http(self.url + "/api/status", self.token, timeout)

    def request(self, method, path, body=None, timeout=60):
        return http(method, self.url + path, self.token, body, timeout)

    def channels(self, kernel_id, session_id=None):
        """A L{Channels} on the kernel's channels WebSocket, as JupyterLab opens it (legacy JSON protocol)."""
        url = "ws://127.0.0.1:{}/api/kernels/{}/channels?session_id={}".format(
            self.port, kernel_id, session_id or uuid.uuid4().hex
        )
        return Channels(url, self.token)


# -- a channels WebSocket client (tornado, in the project venv) --------------------------------


def message(msg_type, content, session):
    """A Jupyter message as a client sends it (header date as ISO 8601, UTC)."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "test",
            "session": session,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": content,
        "buffers": [],
    }


class Channels:
    """A kernel's channels WebSocket (legacy JSON frames with a ``channel`` field), synchronous.

    Runs tornado's WebSocket client on a private asyncio loop, driven only while a
    call waits, so it fits synchronous tests and the bench. C{token}: sent as
    ``Authorization: token ...`` (None: no header).
    """

    def __init__(self, url, token=None, subprotocols=None, timeout=30, loop=None):
        """C{loop}: an asyncio loop to share with other connections of this thread (it stays open after L{close});
        None: a loop of its own, closed with the connection."""
        import asyncio

        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        self.url = url
        self.session = uuid.uuid4().hex
        self._own_loop = loop is None
        self.loop = asyncio.new_event_loop() if loop is None else loop
        headers = {"Authorization": "token " + token} if token is not None else {}
        request = HTTPRequest(url, headers=headers, connect_timeout=timeout, request_timeout=timeout)
        self.ws = self._run(
            lambda: websocket_connect(request, subprotocols=subprotocols, resolver=inline_resolver()), timeout
        )
        self.received = []  # every message read, in order

    def _run(self, make, timeout):
        """Run the awaitable C{make()} builds (on this loop: tornado binds futures to the running loop)."""
        import asyncio

        async def run():
            return await asyncio.wait_for(make(), timeout)

        return self.loop.run_until_complete(run())

    def send(self, channel, msg_type, content):
        msg = self._outgoing(channel, msg_type, content)
        self._run(lambda: self.ws.write_message(json.dumps(msg)), 30)
        return msg["header"]["msg_id"]

    def _outgoing(self, channel, msg_type, content):
        msg = message(msg_type, content, self.session)
        msg["channel"] = channel
        return msg

    def recv(self, timeout):
        """The next message (a dict with ``channel``), or TimeoutError."""
        import asyncio

        try:
            return self._run(self._next, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("no message on {} within {} s".format(self.url, timeout)) from None

    async def _next(self):
        frame = await self.ws.read_message()
        if frame is None:
            raise ConnectionError("{} closed: {} {}".format(self.url, self.ws.close_code, self.ws.close_reason))
        if isinstance(frame, bytes):
            msg = decode_legacy_binary(frame)
        else:
            msg = json.loads(frame)
        self.received.append(msg)
        return msg

    def wait_for(self, predicate, timeout, what="a message"):
        """Read until C{predicate(msg)}; return that message."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("{} did not come within {} s on {}".format(what, timeout, self.url))
            msg = self.recv(left)
            if predicate(msg):
                return msg

    def execute(self, code, timeout=30):
        """Run C{code}: C{(execute_reply content, [iopub messages of the request])} once reply and idle are in.

        The request is written and its messages read in one run of the loop, as a browser's page reads a
        connection's messages as they come (one run per message cost this client 0.6 ms per execute)."""
        msg = self._outgoing(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )

        async def executing(state):
            await self.ws.write_message(json.dumps(msg))
            return await self._collecting(msg["header"]["msg_id"], state)

        return self._finish(executing, msg["header"]["msg_id"], timeout)

    def collect(self, msg_id, timeout=30):
        """The reply and iopub messages of request C{msg_id}, until both the reply and the iopub idle came."""
        return self._finish(lambda state: self._collecting(msg_id, state), msg_id, timeout)

    def _finish(self, make, msg_id, timeout):
        import asyncio

        state = {"reply": None, "iopub": [], "idle": False}
        try:
            return self._run(lambda: make(state), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                "request {} not done within {} s (reply {}, idle {})".format(
                    msg_id, timeout, state["reply"], state["idle"]
                )
            ) from None

    async def _collecting(self, msg_id, state):
        while state["reply"] is None or not state["idle"]:
            msg = await self._next()
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["channel"] == "shell":
                state["reply"] = msg["content"]
            elif msg["channel"] == "iopub":
                state["iopub"].append(msg)
                header, content = msg["header"], msg["content"]
                state["idle"] = state["idle"] or (
                    header["msg_type"] == "status" and content["execution_state"] == "idle"
                )
        return state["reply"], state["iopub"]

    def kernel_info(self, timeout=60, every=1.0):
        """Send ``kernel_info_request`` every C{every} s until one is answered on shell and iopub shows the status of
        one of them: the kernel is up and its iopub reaches us (what jupyter_client's ``wait_for_ready`` checks).

        After a restart through Kernel Gateway the iopub subscription to the new process can lag its shell (a
        ZMQ slow joiner): a reply alone would let the next execute's output be lost.
        """
        deadline = time.monotonic() + timeout
        sent = set()
        reply = None
        iopub = False
        while True:  # poll: a restarted kernel answers only once it is up
            sent.add(self.send("shell", "kernel_info_request", {}))
            until = min(deadline, time.monotonic() + every)
            while time.monotonic() < until:
                try:
                    msg = self.recv(until - time.monotonic())
                except TimeoutError:
                    break
                if msg["parent_header"].get("msg_id") not in sent:
                    continue
                if msg["header"]["msg_type"] == "kernel_info_reply":
                    reply = msg["content"]
                elif msg["channel"] == "iopub" and msg["header"]["msg_type"] == "status":
                    iopub = True
                if reply is not None and iopub:
                    return reply
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    "no kernel_info_reply with iopub flowing within {} s on {} (reply: {}, iopub: {})".format(
                        timeout, self.url, reply is not None, iopub
                    )
                )

    def close(self, timeout=10):
        """Close the WebSocket on its own loop (tornado writes the close frame through futures bound to the running
        loop: outside it, after an C{asyncio.run} elsewhere in the process, it raised "There is no current event
        loop"), wait for the server's close (or C{timeout}), then close the loop."""
        import asyncio

        async def closing():
            self.ws.close()
            while await self.ws.read_message() is not None:
                pass  # what was still in flight; None once the connection is closed

        try:
            self._run(closing, timeout)
        except asyncio.TimeoutError:
            pass  # the server did not answer the close: the connection is dropped with the loop
        finally:
            if self._own_loop:
                self.loop.close()


def inline_resolver():
    """A tornado resolver that looks the host up on the loop's own thread (an IP address or ``localhost``, as here:
    answered at once), where tornado's default hands each lookup to a thread, started anew for each connection on a
    new loop (0.4 ms of a WebSocket's opening here; a browser takes an IP address as it is)."""
    return _inline_resolver_class()()


@functools.lru_cache(maxsize=None)
def _inline_resolver_class():
    from tornado.netutil import Resolver  # tornado is imported only by the clients that need it

    class InlineResolver(Resolver):
        async def resolve(self, host, port, family=socket.AF_UNSPEC):
            info = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
            return [(fam, address) for fam, _, _, _, address in info]

    return InlineResolver


def decode_legacy_binary(frame):
    """A binary frame of the legacy protocol: count and offsets (big-endian uint32), the JSON message, buffers."""
    (count,) = struct.unpack("!I", frame[:4])
    offsets = list(struct.unpack("!" + "I" * count, frame[4 : 4 * (count + 1)])) + [len(frame)]
    parts = [frame[offsets[i] : offsets[i + 1]] for i in range(count)]
    msg = json.loads(parts[0].decode())
    msg["buffers"] = parts[1:]
    return msg


def stream_text(iopub, name="stdout"):
    return "".join(
        m["content"]["text"] for m in iopub if m["header"]["msg_type"] == "stream" and m["content"]["name"] == name
    )


# -- nbclient (runs in the jupyter venv) ------------------------------------------------------


def run_notebook(path, out_path, gateway_url=None, token=None, timeout=120, kernel_name="python3"):
    """Execute the notebook at C{path} with nbclient, errors allowed, and write it to C{out_path}.

    Through C{gateway_url} with jupyter_server's C{GatewayKernelManager} (and
    C{GatewayClient.auth_token} = C{token}) when given, else on a local
    ipykernel (the jupyter venv's). Returns the seconds ``execute()`` took:
    kernel start, every cell, kernel shutdown.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    options = dict(timeout=timeout, startup_timeout=60, allow_errors=True, kernel_name=kernel_name)
    if gateway_url:
        from jupyter_server.gateway.gateway_client import GatewayClient
        from jupyter_server.gateway.managers import GatewayKernelManager

        client = GatewayClient.instance()
        client.url = gateway_url
        client.auth_token = token or ""
        options["kernel_manager_class"] = GatewayKernelManager
    workdir = os.path.dirname(os.path.abspath(out_path))
    notebook_client = NotebookClient(nb, resources={"metadata": {"path": workdir}}, **options)
    t0 = time.perf_counter()
    # jupyter_server's GatewayKernelManager takes the kernel's name from start_kernel's kwargs only (else python3);
    # a local KernelManager would hand that keyword to Popen.
    notebook_client.execute(**({"kernel_name": kernel_name} if gateway_url else {}))
    seconds = time.perf_counter() - t0
    nbformat.write(nb, out_path)
    return seconds


def nbclient_subprocess(tmpdir, out_path, gateway=None, notebook=NOTEBOOK, timeout=300, kernel_name="python3"):
    """Run L{run_notebook} in the jupyter venv (from the tests or the bench); the seconds it reported."""
    argv = [JUPYTER_PYTHON, THIS, "nbclient", notebook, out_path, "--kernel-name", kernel_name]
    if gateway is not None:
        argv += ["--gateway-url", gateway.url]
        if gateway.token:
            argv += ["--token", gateway.token]
    result = subprocess.run(
        argv,
        env=jupyter_env(tmpdir),
        cwd=str(tmpdir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            "nbclient ({}) failed with {}:\n{}\n{}".format(
                gateway.url if gateway else "local kernel",
                result.returncode,
                result.stdout[-3000:],
                result.stderr[-8000:],
            )
        )
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


# -- comparing executed notebooks ------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def png_size(data):
    """C{(width, height)} of a base64 PNG, after checking it is one: signature, IHDR first, IEND last."""
    raw = base64.b64decode(data)
    assert raw.startswith(PNG_SIGNATURE), "not a PNG: {!r}".format(raw[:16])
    assert raw[12:16] == b"IHDR", "a PNG starts with its IHDR chunk"
    assert raw[-8:-4] == b"IEND", "a PNG ends with its IEND chunk"
    width, height = struct.unpack("!II", raw[16:24])
    assert width > 0 and height > 0
    return width, height


class _Ids:
    """Widget model ids renamed by what they are: ``<model_name>-<n>``, n counting models of that name in the order
    the kernel opened them; ids met nowhere in the state become ``model-<n>``.

    Ids are random per kernel (uuid4), and the order in which one widget's helper models (its ``LayoutModel`` and
    ``SliderStyleModel``) are opened follows the hash seed of the kernel's process, so neither can be compared.
    """

    def __init__(self, state):
        self.names = {}
        counts = {}
        for model_id, model in state.items():
            kind = model.get("model_name", "model")
            self.names[model_id] = "{}-{}".format(kind, counts.get(kind, 0))
            counts[kind] = counts.get(kind, 0) + 1

    def __call__(self, model_id):
        return self.names.setdefault(model_id, "model-{}".format(len(self.names)))

    def text(self, value):
        """Rename every known id inside a string (``IPY_MODEL_<id>`` references)."""
        for model_id, name in self.names.items():
            value = value.replace(model_id, name)
        return value

    def deep(self, value):
        if isinstance(value, dict):
            return {self.text(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def normalise_output(output, ids):
    """One output, with what legitimately differs between two kernels made comparable.

    - A PNG (``image/png``) is checked to be a valid PNG and replaced by the word
      ``<png>``: its bytes depend on the kernel's matplotlib build, fonts and
      backend, not on the gateway. Its output metadata (sizes) goes with it.
    - A widget view's ``model_id`` is renamed after its model (L{_Ids}): ids are
      random per kernel (uuid4).
    - An error's ``traceback`` is compared by its last line without ANSI colours:
      the frames name the kernel's own files and IPython's formatting of the
      cell header, which differ between IPython versions and environments; the
      ``ename`` and ``evalue`` are compared exactly.

    Everything else (output types and their order, stream names and text,
    every other MIME type and value, ``execution_count`` of results) must be equal.
    """
    out = dict(output)
    if "data" in out:
        data = dict(out["data"])
        if "image/png" in data:
            png_size(data["image/png"])
            data["image/png"] = "<png>"
            out["metadata"] = {k: v for k, v in out.get("metadata", {}).items() if k != "image/png"}
        if WIDGET_VIEW in data:
            view = dict(data[WIDGET_VIEW])
            view["model_id"] = ids(view["model_id"])
            data[WIDGET_VIEW] = view
        out["data"] = data
    if out.get("output_type") == "error":
        lines = [ANSI.sub("", line) for line in out["traceback"]]
        out["traceback"] = "\n".join(lines).strip().splitlines()[-1:]
    return out


def normalise_notebook(nb):
    """C{(cells, widget state)} of an executed notebook (a dict), normalised by L{normalise_output}.

    Cells keep their type, source, ``execution_count`` and outputs; nbclient's
    timing metadata (``metadata.execution``, wall-clock times) is dropped. The
    widget state nbclient stores in the notebook's metadata, and the views in the
    outputs, name models as L{_Ids} does.
    """
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    ids = _Ids(state)
    cells = []
    for cell in nb["cells"]:
        entry = {"cell_type": cell["cell_type"], "source": cell["source"]}
        if cell["cell_type"] == "code":
            entry["execution_count"] = cell.get("execution_count")
            entry["outputs"] = [normalise_output(o, ids) for o in cell.get("outputs", [])]
        cells.append(entry)
    return cells, ids.deep(state)


def compare_notebooks(expected, actual):
    """The differences between two executed notebooks (dicts) after L{normalise_notebook}: [] when they match."""
    expected_cells, expected_state = normalise_notebook(expected)
    actual_cells, actual_state = normalise_notebook(actual)
    problems = []
    if len(expected_cells) != len(actual_cells):
        problems.append("{} cells, expected {}".format(len(actual_cells), len(expected_cells)))
    for i, (e, a) in enumerate(zip(expected_cells, actual_cells)):
        if e != a:
            problems.append("cell {}:\n  expected {}\n  got      {}".format(i, json.dumps(e), json.dumps(a)))
    if expected_state != actual_state:
        problems.append(
            "widget state:\n  expected {}\n  got      {}".format(
                json.dumps(expected_state, sort_keys=True), json.dumps(actual_state, sort_keys=True)
            )
        )
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description="Jupyter clients for the gateway tests (run by the jupyter venv)")
    commands = parser.add_subparsers(dest="command", required=True)
    nb = commands.add_parser("nbclient", help="execute a notebook with nbclient; print {'seconds': ...}")
    nb.add_argument("notebook")
    nb.add_argument("out")
    nb.add_argument("--gateway-url")
    nb.add_argument("--token")
    nb.add_argument("--timeout", type=float, default=120)
    nb.add_argument("--kernel-name", default="python3")
    args = parser.parse_args(argv)
    seconds = run_notebook(args.notebook, args.out, args.gateway_url, args.token, args.timeout, args.kernel_name)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
