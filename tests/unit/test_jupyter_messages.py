"""L{components.worker.jupyter_messages}: the spawner's check of a Jupyter client's messages."""

import pytest

from components.common import errors
from components.common.config import SpawnerConfig
from components.worker import jupyter_messages

pytestmark = pytest.mark.unit


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
