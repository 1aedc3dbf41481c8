"""A Jupyter client whose channels connection drops mid-run and comes back with its session_id gets what it missed,
then the rest live, each message once, as Jupyter Server does (real node, real kernel, tornado's WebSocket client)."""

import uuid

from tests.jupyter_clients import Channels, NodeFace

LINES = 40
LOOP = "import time\nfor i in range({}):\n    print('line', i, flush=True)\n    time.sleep(0.05)".format(LINES)


def channels(face, kernel_id, session_id):
    return Channels("{}/api/kernels/{}/channels?session_id={}".format(face.ws_url, kernel_id, session_id), face.token)


def stdout_of(messages, msg_id):
    return "".join(
        m["content"]["text"]
        for m in messages
        if m.get("channel") == "iopub"
        and m["header"]["msg_type"] == "stream"
        and m["parent_header"].get("msg_id") == msg_id
    )


def test_a_dropped_channels_connection_gets_what_it_missed_on_return(node):
    face = NodeFace(node, node.service_secret)
    status, model = face.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, model
    session = uuid.uuid4().hex
    first = channels(face, model["id"], session)
    try:
        msg_id = first.send(
            "shell",
            "execute_request",
            {"code": LOOP, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False},
        )
        first.wait_for(lambda m: "line 3" in m.get("content", {}).get("text", ""), 30, "line 3")
        seen = list(first.received)
        first.close()
        back = channels(face, model["id"], session)
        try:
            reply, _ = back.collect(msg_id, timeout=60)
            assert reply["status"] == "ok", "the reply owed to the session reached its new connection"
            text = stdout_of(seen, msg_id) + stdout_of(back.received, msg_id)
            assert text == "".join("line {}\n".format(i) for i in range(LINES)), "every line once, in order"
        finally:
            back.close()
    finally:
        face.request("DELETE", "/api/kernels/" + model["id"])
