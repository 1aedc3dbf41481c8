"""Comm messages (what widgets speak) between a WAMP client and a real kernel, with binary buffers."""

import uuid

import pytest_twisted

from tests.helpers import call, expect_error, start_kernel
from tests.wamp_client import Recorder, connect

ECHO_TARGET = """
from comm import get_comm_manager

def echo(comm, open_msg):
    @comm.on_msg
    def received(msg):
        data, buffers = msg["content"]["data"], msg["buffers"]
        comm.send({"echo": data, "sizes": [len(b) for b in buffers]}, buffers=[bytes(reversed(bytes(b))) for b in buffers])

get_comm_manager().register_target("echo", echo)
"""


def comm_msg(kind, comm_id):
    return lambda e: e["header"]["msg_type"] == kind and e["content"].get("comm_id") == comm_id


@pytest_twisted.ensureDeferred
async def test_a_comm_round_trip_carries_binary_buffers_both_ways(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    assert (await call(session, kernel_id, "execute", ECHO_TARGET))["status"] == "ok"
    comm_id = uuid.uuid4().hex
    await call(session, kernel_id, "comm", "comm_open", {"comm_id": comm_id, "target_name": "echo", "data": {}})
    assert (await call(session, kernel_id, "comm_info", target_name="echo")) == {comm_id: {"target_name": "echo"}}
    payload = bytes(range(256)) * 4
    await call(session, kernel_id, "comm", "comm_msg", {"comm_id": comm_id, "data": {"x": 1}}, buffers=[payload, b"ab"])
    reply = await events.wait_for(comm_msg("comm_msg", comm_id), what="the kernel's comm_msg")
    assert reply["content"]["data"] == {"echo": {"x": 1}, "sizes": [1024, 2]}
    assert reply["buffers"] == [payload[::-1], b"ba"]
    await call(session, kernel_id, "comm", "comm_close", {"comm_id": comm_id, "data": {}})
    assert (await call(session, kernel_id, "comm_info")) == {}
    session.leave()


@pytest_twisted.ensureDeferred
async def test_invalid_comm_calls_are_refused_with_a_reason(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    cid = uuid.uuid4().hex
    cases = [
        (("execute_request", {"comm_id": cid}), {}, "cell.error.invalid_argument"),
        (("comm_msg", ["not", "an", "object"]), {}, "cell.error.invalid_argument"),
        (("comm_msg", {"data": {}}), {}, "cell.error.invalid_argument"),
        (("comm_open", {"comm_id": cid}), {}, "cell.error.invalid_argument"),
        (("comm_msg", {"comm_id": cid, "data": []}), {}, "cell.error.invalid_argument"),
        (("comm_msg", {"comm_id": cid}), {"buffers": ["text, not bytes"]}, "cell.error.invalid_argument"),
        (("comm_msg", {"comm_id": cid}), {"metadata": "x"}, "cell.error.invalid_argument"),
        (("comm_msg", {"comm_id": cid}), {"buffers": [b"x" * (9 * 1024 * 1024)]}, "cell.error.too_large"),
        (("comm_msg",), {}, "cell.error.invalid_argument"),
    ]
    for args, kwargs, uri in cases:
        exc = await expect_error(call(session, kernel_id, "comm", *args, **kwargs), uri)
        assert exc.error_message()
    result = await call(session, kernel_id, "execute", "'still here'")
    assert result["outputs"][-1]["data"]["text/plain"] == "'still here'"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_widget_from_a_kernel_opens_its_comm_with_its_state(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    result = await call(session, kernel_id, "execute", "import ipywidgets as w\ns = w.IntSlider(value=7, max=10)\ns")
    assert result["status"] == "ok", result
    view = result["outputs"][-1]["data"]["application/vnd.jupyter.widget-view+json"]
    opened = await events.wait_for(comm_msg("comm_open", view["model_id"]), what="the slider's comm_open")
    assert opened["content"]["target_name"] == "jupyter.widget"
    assert opened["content"]["data"]["state"]["value"] == 7
    # The client moves the slider, as a browser would.
    update = {"method": "update", "state": {"value": 3}, "buffer_paths": []}
    await call(session, kernel_id, "comm", "comm_msg", {"comm_id": view["model_id"], "data": update})
    result = await call(session, kernel_id, "execute", "s.value")
    assert result["outputs"][-1]["data"]["text/plain"] == "3"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_one_shot_returns_its_widgets_with_their_state(node):
    """As nbconvert saves a notebook: the view in the outputs, the models' state beside them."""
    session = await connect(node.url)
    code = "import ipywidgets as w\nw.VBox([w.IntSlider(value=4), w.Image(value=b'\\x89PNG-bytes', format='png')])"
    result = await session.call("cell.execute", code)
    assert result["status"] == "ok", result
    view = result["outputs"][-1]["data"]["application/vnd.jupyter.widget-view+json"]
    state = result["widgets"]["application/vnd.jupyter.widget-state+json"]
    models = state["state"]
    assert view["model_id"] in models and models[view["model_id"]]["model_name"] == "VBoxModel"
    names = sorted(m["model_name"] for m in models.values())
    assert "IntSliderModel" in names and "ImageModel" in names
    image = next(m for m in models.values() if m["model_name"] == "ImageModel")
    assert image["buffers"][0]["path"] == ["value"]
    session.leave()
