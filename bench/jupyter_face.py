"""The node's Jupyter face next to Jupyter Kernel Gateway 3, through the same clients, in one run.

    python -m bench.jupyter_face [--quick]     # bench.run calls it too (make bench)

For each gateway: ``POST /api/kernels`` -> channels WebSocket -> the first
``execute("1+1")`` reply and idle; ``execute("1+1")`` round trips on one channels
WebSocket; and ``tests/notebooks/gateway.ipynb`` executed by nbclient through
``GatewayKernelManager`` (kernel start, every cell, shutdown; nbclient's own
timing, not the interpreter's start). The face is
``http://127.0.0.1:<node port>/jupyter`` on a node started here, with the node's
service secret as the token (nbclient anonymously: it sends no token on its
WebSocket); while the node answers ``GET /jupyter/api`` with 404 the face is
skipped, with a message, and Kernel Gateway alone is measured. Kernel Gateway
runs from ``.jupyter-venv`` (built by ``make test``) without a token, so
nbclient can reach it.

The face's starts are taken with the node's warm pool full (``cell_pool_ready``
on ``/metrics``, as the acquisition figure of bench.run); the first
L{WARMUP_STARTS} starts and L{WARMUP_EXECUTES} executes of each gateway are
warm-up and not counted.
"""

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.client import HTTPConnection, RemoteDisconnected

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.figures import summary, table  # noqa: E402
from tests.jupyter_clients import (  # noqa: E402
    JUPYTER_PYTHON,
    Channels,
    KernelGateway,
    NodeFace,
    decoded,
    http,
    nbclient_subprocess,
    request_parts,
)

WARMUP_STARTS = 2
WARMUP_EXECUTES = 5
#: what a thebe page waits for in Binder mode instead (not measured here: no network)
BINDER_START = (
    "Beside thebe's path above: in Binder mode (mybinder.org) a visitor waits for a build or a cached image's "
    "launch, 30 s to minutes by BinderHub's own documentation, and the server is culled after 10 minutes idle."
)


class Visitor:
    """What a page in a browser holds while it talks to one gateway: a kept-alive HTTP connection for its REST calls
    (a browser's HTTP/1.1 connections are kept alive) and one event loop for its WebSockets.  Both gateways are
    measured through it, so what the client itself costs weighs on neither figure more than a browser's would:
    a new connection per REST call cost this client 0.4 ms each, and a new loop per WebSocket 1 ms per opening."""

    def __init__(self, gateway):
        self.gateway = gateway
        url = urllib.parse.urlsplit(gateway.url)
        self._host, self._port, self._prefix = url.hostname, url.port, url.path
        self._connection = None
        self.loop = asyncio.new_event_loop()

    def request(self, method, path, body=None, timeout=60):
        """C{(status, decoded JSON or None)}, on the kept-alive connection (opened again if the server closed it)."""
        data, headers = request_parts(self.gateway.token, body)
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = HTTPConnection(self._host, self._port, timeout=timeout)
            try:
                self._connection.request(method, self._prefix + path, body=data, headers=headers)
                response = self._connection.getresponse()
                raw = response.read()
                break
            except (RemoteDisconnected, ConnectionError):
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise
        if response.will_close:
            self._connection.close()
            self._connection = None
        return response.status, decoded(raw)

    def channels(self, kernel_id, query=""):
        """The kernel's channels WebSocket, opened on this visitor's loop."""
        url = "{}/api/kernels/{}/channels{}".format(self.gateway.ws_url, kernel_id, query)
        return Channels(url, self.gateway.token, loop=self.loop)

    def close(self):
        if self._connection is not None:
            self._connection.close()
        self.loop.close()


def wait_pool_full(face, ready=4, timeout=20):
    """Until the node's warm pool holds C{ready} kernels (its /metrics), as bench.run's acquisition waits."""
    if not isinstance(face, NodeFace):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # poll: the pool refills in the background and announces it nowhere else
        text = urllib.request.urlopen("http://127.0.0.1:{}/metrics".format(face.node.port), timeout=5).read().decode()
        python_pool = r'^cell_pool_ready\{[^}]*kernel="python3"[^}]*\} (\S+)$'
        if sum(float(v) for v in re.findall(python_pool, text, re.M)) >= ready:
            return
        time.sleep(0.05)


def start_samples(visitor, n):
    """``POST /api/kernels`` until the first execute's reply and idle arrived on its channels WebSocket."""
    samples = []
    for _ in range(n + WARMUP_STARTS):
        wait_pool_full(visitor.gateway)
        t0 = time.perf_counter()
        status, model = visitor.request("POST", "/api/kernels", {"name": "python3"})
        assert status == 201, (status, model)
        channels = visitor.channels(model["id"])
        reply, _ = channels.execute("1+1")
        samples.append(time.perf_counter() - t0)
        assert reply["status"] == "ok", reply
        channels.close()
        visitor.request("DELETE", "/api/kernels/" + model["id"])
    return samples[WARMUP_STARTS:]


def execute_samples(visitor, n):
    """``execute("1+1")`` round trips on one kernel's channels WebSocket (reply and idle)."""
    status, model = visitor.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, (status, model)
    channels = visitor.channels(model["id"])
    samples = []
    try:
        for _ in range(n + WARMUP_EXECUTES):
            t0 = time.perf_counter()
            reply, _ = channels.execute("1+1")
            samples.append(time.perf_counter() - t0)
            assert reply["status"] == "ok", reply
    finally:
        channels.close()
        visitor.request("DELETE", "/api/kernels/" + model["id"])
    return samples[WARMUP_EXECUTES:]


def thebe_samples(visitor, n):
    """What a thebe page does, timed to its first output: ``GET api/status`` (its reachability ping; a 404 is
    fine), ``POST api/sessions``, the channels WebSocket, ``kernel_info_request``, then ``print('hi')`` to the
    stream's arrival."""
    samples = []
    for _ in range(n + WARMUP_STARTS):
        wait_pool_full(visitor.gateway)
        t0 = time.perf_counter()
        status, _ = visitor.request("GET", "/api/status")
        assert status in (200, 404), status
        body = {"name": "page.ipynb", "path": "page.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
        status, session = visitor.request("POST", "/api/sessions", body)
        assert status == 201, (status, session)
        channels = visitor.channels(session["kernel"]["id"], "?session_id=" + session["id"])
        channels.kernel_info()
        msg_id = channels.send(
            "shell",
            "execute_request",
            {"code": "print('hi')", "silent": False, "store_history": True, "user_expressions": {}},
        )
        channels.wait_for(
            lambda m: m["header"]["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id, 30, "hi"
        )
        samples.append(time.perf_counter() - t0)
        channels.close()
        visitor.request("DELETE", "/api/sessions/" + session["id"])
    return samples[WARMUP_STARTS:]


def face_missing(face):
    """Why the node's face cannot be measured (None when it answers ``GET /jupyter/api``)."""
    try:
        status, body = http("GET", face.url + "/api", face.token, timeout=10)
    except OSError as error:
        return "GET {}/api failed: {}".format(face.url, error)
    if status == 404:
        return "the node serves no Jupyter face yet (GET /jupyter/api answered 404)"
    if status != 200:
        return "GET {}/api answered {} {!r}".format(face.url, status, body)
    return None


def measure(quick=False):
    """C{{"kernel_gateway": {...}, "face": {...} or None, "face_skipped": reason or None}}, each with
    ``start``, ``execute`` and ``notebook`` sample lists (seconds); None when the jupyter venv is missing."""
    from tests.node import Node

    if not os.path.exists(JUPYTER_PYTHON):
        print("  (Jupyter face bench skipped: `make .jupyter-venv/.installed` builds its clients)", flush=True)
        return None
    n_start, n_exec, n_notebook = (5, 50, 2) if quick else (20, 300, 5)
    tmp = tempfile.mkdtemp(prefix="cellbench-jupyter-")
    kg = KernelGateway(tmp, token=None).start()
    node = None
    try:
        node = Node(tempfile.mkdtemp(prefix="cellbench-face-")).start()
        face = NodeFace(node, node.service_secret)
        skipped = face_missing(face)
        if skipped:
            print("  Jupyter face: skipped, {}; measuring Kernel Gateway alone".format(skipped), flush=True)
        gateways = {"kernel_gateway": kg} if skipped else {"kernel_gateway": kg, "face": face}
        out = {name: {"start": [], "execute": [], "notebook": [], "thebe": []} for name in gateways}
        for name, gateway in gateways.items():
            visitor = Visitor(gateway)
            print("  {}: POST /api/kernels -> first execute reply x{} ...".format(name, n_start), flush=True)
            out[name]["start"] = start_samples(visitor, n_start)
            print(
                "  {}: thebe's path (status, session, channels, kernel_info, first output) x{} ...".format(
                    name, n_start
                ),
                flush=True,
            )
            out[name]["thebe"] = thebe_samples(visitor, n_start)
            print("  {}: execute('1+1') over the channels WebSocket x{} ...".format(name, n_exec), flush=True)
            out[name]["execute"] = execute_samples(visitor, n_exec)
            visitor.close()
        print("  nbclient: tests/notebooks/gateway.ipynb x{} through each gateway ...".format(n_notebook), flush=True)
        for i in range(n_notebook):  # interleaved, so a noisy moment of the VM does not fall on one gateway only
            for name, gateway in gateways.items():
                anonymous = gateway.anonymous() if isinstance(gateway, NodeFace) else gateway
                out_path = os.path.join(tmp, "{}-{}.ipynb".format(name, i))
                out[name]["notebook"].append(nbclient_subprocess(tmp, out_path, anonymous))
        out.setdefault("face", None)
        out["face_skipped"] = skipped
        return out
    finally:
        if node is not None:
            node.stop()
        kg.stop()


def summarise(result):
    """L{measure}'s samples as bench.figures' summaries (p50, p95, mean, n), ready for results.json and L{report}."""
    if result is None:
        return None
    out = {"face_skipped": result["face_skipped"]}
    for name in ("kernel_gateway", "face"):
        out[name] = None if result[name] is None else {k: summary(v) for k, v in result[name].items()}
    return out


def report(summaries):
    """The figures as Markdown: face vs Kernel Gateway (ratio = KG p50 / face p50), or Kernel Gateway alone."""
    if summaries is None:
        return ""
    kg, face = summaries["kernel_gateway"], summaries["face"]
    names = (
        ("start", "POST /api/kernels -> first execute('1+1') reply (channels WebSocket)"),
        ("execute", "execute('1+1') round trip over the channels WebSocket"),
        ("notebook", "nbclient: tests/notebooks/gateway.ipynb (start, 8 cells, shutdown)"),
        ("thebe", "thebe's path: api/status, POST api/sessions, channels, kernel_info, first output"),
    )
    if face is not None:
        rows = [("Jupyter face: " + text, face[key], "Kernel Gateway 3.0.1", kg[key]) for key, text in names]
        return (
            "Jupyter face (/jupyter) vs Kernel Gateway, the same clients:\n\n"
            + table(rows)
            + "\n\n{}\n".format(BINDER_START)
        )
    lines = [
        "Jupyter face skipped ({}); Kernel Gateway 3.0.1 alone:".format(summaries["face_skipped"]),
        "",
        "| measure | p50 ms | p95 ms | n |",
        "|---|---|---|---|",
    ]
    for key, text in names:
        lines.append("| {} | {:.2f} | {:.2f} | {} |".format(text, kg[key]["p50_ms"], kg[key]["p95_ms"], kg[key]["n"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args(argv)
    print("Jupyter face vs Kernel Gateway ...", flush=True)
    print(report(summarise(measure(args.quick))))


if __name__ == "__main__":
    main()
