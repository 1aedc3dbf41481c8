"""L{components.router.jupyter.wire}: the Jupyter WebSocket framings, and frames that lie."""

import pytest

from components.router.jupyter import wire

pytestmark = pytest.mark.unit


MSG = {
    "header": {"msg_id": "a1", "msg_type": "comm_msg", "session": "s1", "username": "u", "date": "", "version": "5.3"},
    "parent_header": {},
    "metadata": {"m": 1},
    "content": {"comm_id": "c1", "data": {"x": [1, 2]}},
    "buffers": [b"\x00\x01", b""],
}


@pytest.mark.parametrize("framing", [None, wire.V1_PROTOCOL])
def test_each_framing_carries_a_message_and_its_buffers_both_ways(framing):
    payload, binary = wire.encode("shell", MSG, framing)
    assert binary, "a message with buffers travels in a binary frame"
    decoded = wire.decode(payload, binary, framing)
    assert decoded["channel"] == "shell" and decoded["buffers"] == MSG["buffers"]
    assert {k: decoded[k] for k in ("header", "parent_header", "metadata", "content")} == {
        k: MSG[k] for k in ("header", "parent_header", "metadata", "content")
    }


def test_a_message_without_buffers_is_a_json_text_frame():
    payload, binary = wire.encode("iopub", dict(MSG, buffers=[]), None)
    assert not binary and wire.decode(payload.encode(), False, None)["channel"] == "iopub"


@pytest.mark.parametrize(
    "payload, binary, framing",
    [
        (b"\xff\xff\xff\xff", True, None),  # a count far past the frame
        (b"\x00\x00\x00\x02\x00\x00\x00\x0c\x00\x00\x00\xff", True, None),  # an offset past the end
        (b"\x06" + b"\x00" * 7, True, wire.V1_PROTOCOL),  # too short for its offsets
        (b'{"channel": "shell"}', False, wire.V1_PROTOCOL),  # text under v1
        (b"[1, 2]", False, None),
        (b'{"channel": 5, "header": {}}', False, None),
        (b'{"channel": "shell"}', False, None),  # no header
    ],
)
def test_a_frame_that_lies_about_itself_is_refused(payload, binary, framing):
    with pytest.raises(wire.FrameError):
        wire.decode(payload, binary, framing)
