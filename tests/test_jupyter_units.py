"""Pure parts of the Jupyter face: the WebSocket framings and the spawner's check of client messages."""

import pytest

from components.common import errors
from components.common.config import SpawnerConfig
from components.router.jupyter import wire
from components.router.jupyter.access import Access, Principal, Refused
from components.router.jupyter.origins import OriginPolicy, form_body
from components.worker import jupyter_messages

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


def test_the_spawner_rebuilds_what_it_signs():
    config = SpawnerConfig()
    msg = {
        "header": {"msg_id": "m1", "msg_type": "execute_request", "session": "s", "username": "u", "evil": 1},
        "content": {"code": "1", "silent": False, "extra": "dropped"},
    }
    checked = jupyter_messages.check("shell", msg, config)
    assert checked.header["msg_id"] == "m1" and "evil" not in checked.header
    assert checked.content == {
        "code": "1",
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": True,
        "stop_on_error": True,
    }


@pytest.mark.parametrize(
    "channel, msg, error",
    [
        ("nowhere", {"header": {"msg_type": "execute_request"}}, errors.InvalidArgument),
        ("shell", {"header": {"msg_type": "shutdown_request", "msg_id": "m", "session": "s"}}, errors.InvalidArgument),
        ("control", {"header": {"msg_type": "execute_request", "msg_id": "m", "session": "s"}}, errors.InvalidArgument),
        ("shell", {"header": {"msg_type": "execute_request", "msg_id": "m" * 200, "session": "s"}}, errors.InvalidArgument),
        ("shell", {"header": {"msg_type": "execute_request", "msg_id": "m", "session": "s"}, "content": {"code": 5}}, errors.InvalidArgument),
        ("shell", {"header": {"msg_type": "execute_request", "msg_id": "m", "session": "s"}, "content": {"code": "x" * 300000}}, errors.TooLarge),
        ("stdin", {"header": {"msg_type": "input_reply", "msg_id": "m", "session": "s"}, "content": {"value": None}}, errors.InvalidArgument),
        ("shell", {"header": {"msg_type": "comm_msg", "msg_id": "m", "session": "s"}, "content": {"data": {}}}, errors.InvalidArgument),
    ],
)  # fmt: skip
def test_the_spawner_refuses_what_is_not_allowed(channel, msg, error):
    with pytest.raises(error):
        jupyter_messages.check(channel, msg, SpawnerConfig())


def test_a_token_names_a_service_principal_and_no_token_an_anonymous_one():
    access = Access({"svc": "SECRET_VAR"}, anonymous=True, environ={"SECRET_VAR": "s3"})
    assert access.principal("token s3", None) == Principal("svc", "service")
    assert access.principal(None, "s3").name == "svc", "?token= on a WebSocket URL"
    anonymous = access.principal(None, None)
    assert anonymous.anonymous and anonymous.role == "browser"
    with pytest.raises(Refused):
        access.principal("token wrong", None)
    with pytest.raises(Refused):
        Access({}, anonymous=False, environ={}).principal(None, None)
    with pytest.raises(ValueError):
        Access({"": "SECRET_VAR"}, environ={})  # "" is how the face names anonymous clients


def test_the_origin_policy_serves_its_own_site_and_the_allowed_origins_only():
    policy = OriginPolicy(["https://notebooks.example.org"])
    assert policy.refusal(None, "cell.example.org", None) is None, "not a browser: served as before"
    assert policy.refusal(None, "cell.example.org", "same-origin") is None
    assert policy.refusal(None, "cell.example.org", "cross-site"), "a navigation or image from another site"
    assert policy.refusal("https://cell.example.org", "cell.example.org", None) is None, "the node's own pages"
    assert policy.refusal("https://notebooks.example.org", "cell.example.org", "cross-site") is None
    for foreign in ("https://evil.example", "null", "https://cell.example.org.evil.example", "file://", "garbage"):
        assert policy.refusal(foreign, "cell.example.org", "cross-site"), foreign
    assert policy.cors_headers("https://notebooks.example.org", "cell.example.org") == {
        "Access-Control-Allow-Origin": "https://notebooks.example.org",
        "Access-Control-Expose-Headers": "Location",
    }
    assert policy.cors_headers("https://cell.example.org", "cell.example.org") == {}, "same origin: no CORS"
    assert policy.preflight("https://evil.example", "cell.example.org", "POST") is None
    assert policy.preflight("https://notebooks.example.org", "cell.example.org", "PUT") is None
    assert (
        "authorization"
        in policy.preflight("https://notebooks.example.org", "x", "POST")["Access-Control-Allow-Headers"]
    )
    for body in ("text/plain", "application/x-www-form-urlencoded; charset=utf-8", "Multipart/Form-Data; boundary=x"):
        assert form_body(body), body
    assert not form_body("application/json") and not form_body(None)
    with pytest.raises(ValueError, match="origins such as"):
        OriginPolicy(["https://example.org/path"])
