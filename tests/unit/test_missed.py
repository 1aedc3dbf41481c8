"""components.router.jupyter.missed with the face's kernel: a session away gets, on its return, what it missed."""

import pytest
from twisted.internet.task import Clock

from components.router.jupyter.kernels import FaceKernel
from components.router.jupyter.missed import AWAY_S, MAX_AWAY, MAX_MISSED_BYTES, Away
from tests.fakes import FakeChannelsConnection

pytestmark = pytest.mark.unit


def connection(session_id):
    conn = FakeChannelsConnection()
    conn.session_id = session_id
    return conn


def msg(text, parent="req-1"):
    return {"header": {"msg_type": "stream"}, "parent_header": {"msg_id": parent}, "content": {"text": text}}


def test_a_session_that_comes_back_gets_what_it_missed_then_the_rest_and_its_reply():
    clock = Clock()
    kernel = FaceKernel("ab" * 16, "python3", "service", clock)
    first = connection("S")
    kernel.connected(first)
    kernel.routes.add("req-1", first)
    kernel.disconnected(first)
    kernel.missed.iopub(msg("missed\n"))
    back = connection("S")
    kernel.connected(back)
    assert [m["content"]["text"] for _, m in back.delivered] == ["missed\n"]
    assert kernel.routes.pop("req-1") is back, "the reply owed to the session goes to its new connection"
    stranger = connection("T")
    kernel.connected(stranger)
    assert stranger.delivered == []


def test_no_session_id_or_another_open_connection_of_it_keeps_nothing():
    kernel = FaceKernel("ab" * 16, "python3", "service", Clock())
    anonymous = connection(None)
    kernel.connected(anonymous)
    kernel.disconnected(anonymous)
    assert len(kernel.missed) == 0
    a, b = connection("S"), connection("S")
    kernel.connected(a)
    kernel.connected(b)
    kernel.disconnected(a)
    assert len(kernel.missed) == 0, "the session still has a connection"


def test_bounds_time_sessions_and_bytes():
    clock = Clock()
    kernel = FaceKernel("ab" * 16, "python3", "service", clock)
    for i in range(MAX_AWAY + 2):
        c = connection("S%d" % i)
        kernel.connected(c)
        kernel.disconnected(c)
    assert len(kernel.missed) == MAX_AWAY
    clock.advance(AWAY_S + 1)
    back = connection("S%d" % (MAX_AWAY + 1))
    kernel.connected(back)
    assert back.delivered == [] and len(kernel.missed) == 0, "past AWAY_S nothing is kept"
    away = Away("S", 0)
    for _ in range(3):
        away.deliver("iopub", msg("x" * (MAX_MISSED_BYTES // 2)))
    assert away.bytes <= MAX_MISSED_BYTES and len(away.messages) == 1
