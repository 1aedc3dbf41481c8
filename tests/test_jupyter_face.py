"""The node's Jupyter face (/jupyter): Kernel Gateway's REST API and channels WebSocket, spoken as clients do.

Jupyter's own clients (jupyter_server's GatewayClient, nbclient, JupyterLab)
are driven in tests/test_jupyter_clients.py; here the protocol itself is
exercised from the test process, including what a hostile client sends.
"""

import http.client
import json
import os
import socket
import uuid

import pytest
import pytest_twisted

from tests.helpers import kernel_pids
from tests.jupyter_ws import V1, ChannelsClient, call_rest, message
from tests.node import Node


async def new_kernel(node, token=None):
    status, model = await call_rest(node, "POST", "/api/kernels", {"name": "python3"}, token)
    assert status == 201, model
    return model["id"]


@pytest_twisted.ensureDeferred
async def test_the_rest_api_starts_lists_and_deletes_the_nodes_own_kernels(node):
    assert (await call_rest(node, "GET", "/api"))[0] == 200
    status, specs = await call_rest(node, "GET", "/api/kernelspecs")
    assert status == 200 and specs["default"] == "python3"
    assert specs["kernelspecs"]["python3"]["spec"]["language"] == "python"
    assert (await call_rest(node, "GET", "/api/kernelspecs/python3"))[1]["name"] == "python3"

    kernel_id = await new_kernel(node)
    assert str(uuid.UUID(kernel_id)) == kernel_id, "a dashed UUID, the only kind Jupyter Server routes"
    status, kernels = await call_rest(node, "GET", "/api/kernels")
    assert status == 200 and kernel_id not in [k["id"] for k in kernels], "anonymous kernels are listed to nobody"
    status, model = await call_rest(node, "GET", "/api/kernels/" + kernel_id)
    assert status == 200 and set(model) >= {"id", "name", "last_activity", "execution_state", "connections"}

    client = await ChannelsClient(node, kernel_id).connect()
    _, outputs = await client.execute("import os; print(os.getpid())")
    assert int(outputs[0]["content"]["text"]) in kernel_pids(), "a forked kernel of the node's spawner"
    assert (await call_rest(node, "GET", "/api/kernels/" + kernel_id))[1]["connections"] == 1

    assert (await call_rest(node, "DELETE", "/api/kernels/" + kernel_id))[0] == 204
    assert (await client.closed)[0] == 1000
    assert (await call_rest(node, "GET", "/api/kernels/" + kernel_id))[0] == 404
    assert kernel_id not in [k["id"] for k in (await call_rest(node, "GET", "/api/kernels"))[1]]


@pytest.mark.parametrize("protocol", [None, V1], ids=["json", "v1"])
@pytest_twisted.ensureDeferred
async def test_the_channels_websocket_speaks_jupyters_protocol(node, protocol):
    kernel_id = await new_kernel(node)
    client = await ChannelsClient(node, kernel_id, protocol=protocol).connect()
    info_id = client.send(message("shell", "kernel_info_request", {}))
    info = await client.reply_to(info_id)
    assert info["header"]["msg_type"] == "kernel_info_reply"
    assert info["content"]["language_info"]["name"] == "python"

    reply, outputs = await client.execute("print(1 + 1)\n6 * 7")
    assert reply["content"]["status"] == "ok" and reply["content"]["execution_count"] == 1
    assert [o["header"]["msg_type"] for o in outputs] == ["stream", "execute_result"]
    assert outputs[0]["content"]["text"] == "2\n"
    assert outputs[1]["content"]["data"]["text/plain"] == "42"

    reply, outputs = await client.execute("1 / 0")
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "ZeroDivisionError"
    assert outputs[0]["header"]["msg_type"] == "error"

    complete_id = client.send(message("shell", "complete_request", {"code": "import o", "cursor_pos": 8}))
    assert "os" in (await client.reply_to(complete_id))["content"]["matches"]
    # A widget's bytes travel as buffers (binary framing) in both directions.
    reply, _ = await client.execute(
        "from ipykernel.comm import Comm\n"
        "got = []\n"
        "c = Comm(target_name='echo', data={})\n"
        "c.on_msg(lambda m: (got.append(bytes(m['buffers'][0])), c.send({'n': len(got)}, buffers=[b'back'])))\n"
        "c.comm_id"
    )
    assert reply["content"]["status"] == "ok"
    result = [o for o in client.outputs(reply["parent_header"]["msg_id"]) if "data" in o["content"]]
    comm_id = result[0]["content"]["data"]["text/plain"].strip("'")
    msg = message("shell", "comm_msg", {"comm_id": comm_id, "data": {}})
    msg["buffers"] = [b"\x00\x01binary"]
    client.send(msg)
    echoed = await client.wait_for(lambda m: m["header"]["msg_type"] == "comm_msg" and m["channel"] == "iopub")
    assert echoed["buffers"] == [b"back"]
    _, outputs = await client.execute("got")
    assert outputs[-1]["content"]["data"]["text/plain"] == "[b'\\x00\\x01binary']"
    await call_rest(node, "DELETE", "/api/kernels/" + kernel_id)


@pytest_twisted.ensureDeferred
async def test_a_kernel_outlives_its_websockets_and_serves_several(node):
    kernel_id = await new_kernel(node)
    first = await ChannelsClient(node, kernel_id).connect()
    await first.execute("x = 5")
    await first.close()
    second, third = await ChannelsClient(node, kernel_id).connect(), await ChannelsClient(node, kernel_id).connect()
    reply, outputs = await second.execute("print(x)")
    assert outputs[0]["content"]["text"] == "5\n"
    msg_id = reply["parent_header"]["msg_id"]
    await third.idle_after(msg_id)  # every connection sees the kernel's iopub
    assert third.outputs(msg_id)[0]["content"]["text"] == "5\n"
    assert not [m for m in third.messages if m["channel"] == "shell"], "a reply goes to the connection that asked"
    await call_rest(node, "DELETE", "/api/kernels/" + kernel_id)


@pytest_twisted.ensureDeferred
async def test_interrupt_restart_and_input_through_the_face(node):
    kernel_id = await new_kernel(node)
    client = await ChannelsClient(node, kernel_id).connect()
    await client.execute("y = 1")
    sleeping = client.send(
        message(
            "shell",
            "execute_request",
            # stop_on_error: ipykernel would abort what comes right behind the interrupted cell
            {"code": "import time\nprint('sleeping', flush=True)\ntime.sleep(60)", "stop_on_error": False},
        )
    )
    # Interrupted before its code runs, ipykernel drops a request without a reply (with any client): wait until it runs.
    await client.wait_for(lambda m: m["header"]["msg_type"] == "stream", what="the sleep to start")
    assert (await call_rest(node, "POST", "/api/kernels/{}/interrupt".format(kernel_id)))[0] == 204
    reply = await client.reply_to(sleeping, seconds=15)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"

    asking = client.send(
        message("shell", "execute_request", {"code": "print('hi', input('name? '))", "allow_stdin": True})
    )
    request = await client.wait_for(lambda m: m["channel"] == "stdin", what="the input request")
    assert request["header"]["msg_type"] == "input_request" and request["content"]["prompt"] == "name? "
    client.send(message("stdin", "input_reply", {"value": "Ada"}, parent=request["header"]))
    assert (await client.reply_to(asking))["content"]["status"] == "ok"
    await client.idle_after(asking)
    assert client.outputs(asking)[0]["content"]["text"] == "hi Ada\n"

    status, model = await call_rest(node, "POST", "/api/kernels/{}/restart".format(kernel_id))
    assert status == 200 and model["id"] == kernel_id
    reply, _ = await client.execute("y")
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "NameError", "a fresh process"
    await call_rest(node, "DELETE", "/api/kernels/" + kernel_id)


@pytest_twisted.ensureDeferred
async def test_each_principal_sees_only_its_own_kernels(node):
    mine = await new_kernel(node, token=node.service_secret)
    assert mine in [k["id"] for k in (await call_rest(node, "GET", "/api/kernels", token=node.service_secret))[1]]
    assert (await call_rest(node, "GET", "/api/kernels/" + mine))[0] == 404, "anonymous clients do not see it"
    assert mine not in [k["id"] for k in (await call_rest(node, "GET", "/api/kernels"))[1]]
    assert (await call_rest(node, "DELETE", "/api/kernels/" + mine))[0] == 404
    assert (await call_rest(node, "POST", "/api/kernels/{}/interrupt".format(mine)))[0] == 404
    with pytest.raises(ConnectionRefusedError, match="404"):
        await ChannelsClient(node, mine).connect()
    status, body = await call_rest(node, "GET", "/api/kernels", token="not-the-secret")
    assert status == 401 and "token" in body["message"]
    client = await ChannelsClient(node, mine, token=node.service_secret).connect()
    assert (await client.execute("1"))[0]["content"]["status"] == "ok"
    await call_rest(node, "DELETE", "/api/kernels/" + mine, token=node.service_secret)


@pytest_twisted.ensureDeferred
async def test_bad_input_gets_clear_errors_and_harms_nobody(node):
    for method, path in (
        ("GET", "/api/kernels/nonexistent"),
        ("DELETE", "/api/kernels/" + "0" * 32),
        ("POST", "/api/kernels/{}/restart".format("0" * 32)),
        ("GET", "/api/kernelspecs/cobol"),
        ("GET", "/api/nothing"),
    ):
        status, body = await call_rest(node, method, path)
        assert status == 404 and body["message"], (method, path, body)
    assert (await call_rest(node, "POST", "/api/kernels", b"{not json"))[0] == 400
    status, body = await call_rest(node, "POST", "/api/kernels", b'{"name": "\\ud800"}')  # a lone surrogate
    assert status == 400 and "surrogate" in body["message"], (status, body)
    with pytest.raises(ConnectionRefusedError, match="404"):
        await ChannelsClient(node, "0" * 32).connect()

    kernel_id = await new_kernel(node)
    client = await ChannelsClient(node, kernel_id).connect()
    evil = client.send(message("shell", "evil_request", {}))
    refused = await client.reply_to(evil)
    assert refused["content"]["status"] == "error" and "may not be sent" in refused["content"]["evalue"]
    big = client.send(message("shell", "execute_request", {"code": "x" * (300 * 1024)}))
    assert "longer than" in (await client.reply_to(big))["content"]["evalue"]
    assert (await client.execute("1 + 1"))[0]["content"]["status"] == "ok", "the connection still works"

    for payload, reason in (
        (b"{not json", "not JSON"),
        (json.dumps(message("nowhere", "execute_request", {"code": "1"})).encode(), "channel"),
        (json.dumps({"channel": "shell"}).encode(), "header"),
        (json.dumps({"channel": 7, "header": {}}).encode(), "channel"),
        # a lone surrogate: no part of the node could carry it on (it hung the request once)
        (
            b'{"channel": "shell", "header": {"msg_type": "execute_request"}, "content": {"code": "\\uD800"}}',
            "surrogate",
        ),
    ):
        bad = await ChannelsClient(node, kernel_id).connect()
        bad.send_raw(payload)
        code, text = await bad.closed
        assert code == 4400 and reason in text, (code, text)
    oversized = await ChannelsClient(node, kernel_id).connect()
    oversized.send_raw(b"x" * (16 * 1024 * 1024 + 1))
    # The face fails the connection (1009) as soon as the frame's length is read; the client, still sending the
    # rest, may see the TCP reset before that close frame (1006).  Either way the frame went nowhere.
    assert (await oversized.closed)[0] in (1009, 1006)

    assert (await client.execute("print('still here')"))[1][0]["content"]["text"] == "still here\n"
    other_id = await new_kernel(node)
    other = await ChannelsClient(node, other_id).connect()
    assert (await other.execute("2 + 2"))[1][0]["content"]["data"]["text/plain"] == "4", "others did not notice"
    for done in (kernel_id, other_id):
        await call_rest(node, "DELETE", "/api/kernels/" + done)


def test_the_face_is_on_by_default_and_documented():
    with open(os.path.join(os.path.dirname(__file__), "..", ".crossbar", "config.json")) as f:
        paths = json.load(f)["workers"][0]["transports"][1]["paths"]
    assert paths["jupyter"]["classname"] == "components.router.jupyter.face.JupyterFace"


@pytest.mark.parametrize("name, code, expected", [("bash", "echo hi", "hi"), ("ir", "1 + 1", "[1] 2")])
@pytest_twisted.ensureDeferred
async def test_bash_and_r_through_the_face(node, name, code, expected):
    status, specs = await call_rest(node, "GET", "/api/kernelspecs")
    assert name in specs["kernelspecs"], "make languages installs bash_kernel and IRkernel"
    status, model = await call_rest(node, "POST", "/api/kernels", {"name": name})
    assert status == 201 and model["name"] == name, model
    client = await ChannelsClient(node, model["id"]).connect()
    info = await client.reply_to(client.send(message("shell", "kernel_info_request", {})), seconds=60)
    assert info["content"]["language_info"]["name"] in ("bash", "R")
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok"
    shown = "".join(o["content"].get("text", "") or o["content"].get("data", {}).get("text/plain", "") for o in outputs)
    assert shown.strip() == expected
    await call_rest(node, "DELETE", "/api/kernels/" + model["id"])


@pytest.fixture(scope="module")
def small_messages_node(tmp_path_factory):
    """A node whose face takes messages of 64 KiB at most (so it drops a stalled connection after 256 KiB)."""

    def small_messages(config):
        config["workers"][0]["transports"][1]["paths"]["jupyter"]["extra"]["max_message_bytes"] = 65536

    node = Node(tmp_path_factory.mktemp("small"), edit=small_messages).start()
    yield node
    node.stop()


@pytest_twisted.ensureDeferred
async def test_a_connection_that_stops_reading_is_dropped_and_the_kernel_serves_on(small_messages_node):
    """Jupyter Server leaves such sockets behind; their backlog must not grow in the router's memory."""
    node = small_messages_node
    kernel_id = await new_kernel(node)
    stalled = socket.create_connection(("127.0.0.1", node.port))  # opens the WebSocket, then never reads
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(
        "GET /jupyter/api/kernels/{}/channels HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".format(
            kernel_id
        ).encode()
    )
    assert stalled.recv(12) == b"HTTP/1.1 101"
    reader = await ChannelsClient(node, kernel_id).connect()
    for _ in range(40):  # 2 MB per execution: past the socket buffers, then the face's 256 KiB
        reply, _ = await reader.execute("for _ in range(40): print('x' * 50_000, flush=True)")
        assert reply["content"]["status"] == "ok"
        if "stopped reading" in node.log():
            break
    assert "stopped reading" in node.log(), "the face dropped the connection that stopped reading"
    reply, outputs = await reader.execute("print('on')")
    # ipykernel may send "on" and "\n" as two stream messages (a flush between print's writes, under load).
    printed = "".join(o["content"].get("text", "") for o in outputs if o["header"]["msg_type"] == "stream")
    assert reply["content"]["status"] == "ok" and printed == "on\n", outputs
    stalled.settimeout(30)
    with pytest.raises(ConnectionResetError):  # aborted by the face (what it had sent before, then the reset)
        while stalled.recv(1 << 20):
            pass
    stalled.close()


async def gone(node, path, token=None, seconds=30):
    """Whether GET C{path} answers 404 within C{seconds}."""
    from twisted.internet import reactor, task

    for _ in range(seconds * 10):  # poll: the face hears of a death on the kernel's iopub, at once but not in step
        if (await call_rest(node, "GET", path, token=token))[0] == 404:
            return True
        await task.deferLater(reactor, 0.1, lambda: None)  # poll
    return False


@pytest_twisted.ensureDeferred
async def test_sessions_live_and_die_with_their_kernels(node):
    """Jupyter Server's session API, as thebe and JupyterLab use it: a session per document, on its kernel."""
    status, ping = await call_rest(node, "GET", "/api/status")
    assert status == 200 and set(ping) >= {"started", "last_activity", "connections", "kernels"}
    wish = {"path": "book/intro.ipynb", "name": "intro.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    status, first = await call_rest(node, "POST", "/api/sessions", wish)
    assert status == 201, first
    assert {k: first[k] for k in ("path", "name", "type")} == {k: wish[k] for k in ("path", "name", "type")}
    assert first["kernel"]["name"] == "python3" and str(uuid.UUID(first["id"])) == first["id"]
    assert (await call_rest(node, "GET", "/api/kernels/" + first["kernel"]["id"]))[0] == 200
    assert (await call_rest(node, "GET", "/api/sessions"))[1] == [], "an anonymous listing shows nothing"
    status, second = await call_rest(node, "POST", "/api/sessions", wish)
    assert status == 201 and second["id"] != first["id"], "a path is no secret: anonymous sessions are never shared"
    assert second["kernel"]["id"] != first["kernel"]["id"]

    client = await ChannelsClient(node, first["kernel"]["id"]).connect()
    assert (await client.execute("x = 6 * 7; x"))[1][0]["content"]["data"]["text/plain"] == "42"
    status, renamed = await call_rest(node, "PATCH", "/api/sessions/" + first["id"], {"path": "book/renamed.ipynb"})
    assert (
        status == 200 and renamed["path"] == "book/renamed.ipynb" and renamed["kernel"]["id"] == first["kernel"]["id"]
    )
    status, moved = await call_rest(
        node, "PATCH", "/api/sessions/" + second["id"], {"kernel": {"id": first["kernel"]["id"]}}
    )
    assert status == 200 and moved["kernel"]["id"] == first["kernel"]["id"], "moved onto another kernel of its own"
    assert await gone(node, "/api/kernels/" + second["kernel"]["id"]), "its old kernel, left without a session, ended"

    # Deleting a session deletes its kernel, and the kernel's other sessions end with it.
    assert (await call_rest(node, "DELETE", "/api/sessions/" + first["id"]))[0] == 204
    assert (await client.closed)[0] == 1000
    for path in (
        "/api/kernels/" + first["kernel"]["id"],
        "/api/sessions/" + first["id"],
        "/api/sessions/" + second["id"],
    ):
        assert (await call_rest(node, "GET", path))[0] == 404, path

    # A kernel deleted, or one that dies, ends its session.
    status, third = await call_rest(node, "POST", "/api/sessions", wish)
    assert (await call_rest(node, "DELETE", "/api/kernels/" + third["kernel"]["id"]))[0] == 204
    assert (await call_rest(node, "GET", "/api/sessions/" + third["id"]))[0] == 404
    status, fourth = await call_rest(node, "POST", "/api/sessions", wish)
    dying = await ChannelsClient(node, fourth["kernel"]["id"]).connect()
    dying.send(message("shell", "execute_request", {"code": "import os; os._exit(1)"}))
    assert await gone(node, "/api/sessions/" + fourth["id"]), "the kernel died: its session ended"


@pytest_twisted.ensureDeferred
async def test_a_tokens_sessions_are_its_own_and_come_back_by_path(node):
    token = node.service_secret
    wish = {"path": "thebe.ipynb", "name": "thebe.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    status, mine = await call_rest(node, "POST", "/api/sessions", wish, token=token)
    assert status == 201
    status, again = await call_rest(node, "POST", "/api/sessions", wish, token=token)
    assert status == 201 and again["id"] == mine["id"], "as Jupyter Server: the same path, the same session"
    assert mine["id"] in [s["id"] for s in (await call_rest(node, "GET", "/api/sessions", token=token))[1]]
    assert (await call_rest(node, "GET", "/api/sessions/" + mine["id"]))[0] == 404, "not an anonymous client's"
    status, anonymous = await call_rest(node, "POST", "/api/sessions", wish)
    assert (await call_rest(node, "GET", "/api/sessions/" + anonymous["id"], token=token))[0] == 404
    assert (await call_rest(node, "DELETE", "/api/sessions/" + anonymous["id"], token=token))[0] == 404
    assert anonymous["id"] not in [s["id"] for s in (await call_rest(node, "GET", "/api/sessions", token=token))[1]]
    for bad in ({"path": 7}, {"path": "x", "kernel": "python3"}, {"path": "x" * 5000}, [1]):
        status, error = await call_rest(node, "POST", "/api/sessions", bad)
        assert status == 400 and error["message"], bad
    status, error = await call_rest(node, "POST", "/api/sessions", {"path": "y", "kernel": {"name": "cobol"}})
    assert 400 <= status < 500 and error["message"], error
    assert (await call_rest(node, "DELETE", "/api/sessions/" + mine["id"], token=token))[0] == 204
    assert (await call_rest(node, "DELETE", "/api/sessions/" + anonymous["id"]))[0] == 204


@pytest_twisted.ensureDeferred
async def test_kernelspec_logos_are_served_as_jupyter_server_serves_them(node):
    status, specs = await call_rest(node, "GET", "/api/kernelspecs")
    resources = specs["kernelspecs"]["python3"]["resources"]
    assert set(resources) == {"logo-svg", "logo-32x32", "logo-64x64"}
    for key, url in resources.items():
        connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
        connection.request("GET", url)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        assert response.status == 200, url
        if key == "logo-svg":
            assert response.getheader("content-type") == "image/svg+xml" and data.startswith(b"<svg")
        else:
            assert response.getheader("content-type") == "image/png" and data.startswith(b"\x89PNG\r\n\x1a\n")
    for missing in ("/kernelspecs/nope/logo-64x64.png", "/kernelspecs/python3/kernel.json", "/kernelspecs/python3"):
        assert (await call_rest(node, "GET", missing))[0] == 404, missing
