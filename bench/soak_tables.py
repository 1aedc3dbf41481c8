"""The soak's look at the node's tables: what the session router and the Jupyter face keep, by size.

RSS alone hides a slow leak (a few bytes a session) and shows noise (the
allocator).  So the soak reads each per-session, per-address and per-kernel
table of the session router (``cell_session_router_table_entries`` in
``cell.backend.metrics``) and of the face (``cell.backend.jupyter.tables``)
and checks that they come back: after the churn, no table is larger than
after the warm-up; once every session left, each is what it was on the
empty node.  Rate buckets are forgotten once full again (15 s after their
last use), so the soak waits for them, with a deadline.

The churn of the soak's WAMP sessions does not reach the face: L{face_churn}
adds clients of its own (token clients: a kernel, its channels WebSocket, an
execute; every other one leaves with its request unanswered), run in a thread
alongside the churn.
"""

import time

#: the session router's gauge of its tables' sizes
TABLES_FAMILY = "cell_session_router_table_entries"
FACE_TABLES = "cell.backend.jupyter.tables"
NODE_METRICS = "cell.backend.metrics"


async def tables_of(backend):
    """{"session router: <table>" or "face: <table>": entries}."""
    node = await backend.call(NODE_METRICS)
    sizes = {}
    for family in node["session_router"]:
        if family["name"] == TABLES_FAMILY:
            for _, labels, value in family["samples"]:
                sizes["session router: " + labels["table"]] = int(value)
    face = await backend.call(FACE_TABLES)
    sizes.update({"face: " + name: entries for name, entries in face.items()})
    return sizes


def grown(sizes, baseline):
    """The tables larger than in C{baseline} (a table missing from it counts from 0)."""
    return {name: (baseline.get(name, 0), n) for name, n in sizes.items() if n > baseline.get(name, 0)}


def differ(sizes, baseline):
    names = set(sizes) | set(baseline)
    return {
        name: (baseline.get(name, 0), sizes.get(name, 0))
        for name in names
        if sizes.get(name, 0) != baseline.get(name, 0)
    }


async def wait_tables(backend, settled, seconds):
    """Poll the tables until C{settled(sizes)} is empty (what is off), or the deadline; the last sizes and what is off."""
    from twisted.internet import reactor, task

    deadline = time.monotonic() + seconds
    while True:
        sizes = await tables_of(backend)
        off = settled(sizes)
        if not off or time.monotonic() > deadline:
            return sizes, off
        await task.deferLater(reactor, 0.5, lambda: None)  # poll: buckets are forgotten as time passes


def off_text(off):
    return ", ".join("{} {} -> {}".format(name, a, b) for name, (a, b) in sorted(off.items())) or "all back"


def face_churn(node, count):
    """C{count} face clients, one after another (run it in a thread): each starts a kernel, opens its channels
    WebSocket and sends an execute; the even ones wait for the reply, the odd ones close with it unanswered
    (its route is owed); each deletes its kernel.  Returns the errors met."""
    from tests.jupyter_clients import Channels, NodeFace

    face = NodeFace(node, node.service_secret)
    errors = []
    for i in range(count):
        try:
            status, model = face.request("POST", "/api/kernels", {"name": "python3"})
            if status != 201:
                raise AssertionError("POST /api/kernels answered {} {!r}".format(status, model))
            channels = Channels("{}/api/kernels/{}/channels".format(face.ws_url, model["id"]), face.token)
            try:
                if i % 2:
                    channels.send("shell", "execute_request", {"code": "import time; time.sleep(2)", "silent": False})
                else:
                    reply, _ = channels.execute("6*7")
                    if reply.get("status") != "ok":
                        raise AssertionError("unexpected reply {!r}".format(reply)[:300])
            finally:
                channels.close()
            status, _ = face.request("DELETE", "/api/kernels/" + model["id"])
            if status != 204:
                raise AssertionError("DELETE answered {}".format(status))
        except Exception as exc:
            errors.append("face client {}: {!r}".format(i, exc)[:400])
    return errors
