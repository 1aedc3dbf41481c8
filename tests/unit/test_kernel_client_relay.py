"""L{components.worker.kernel_client_relay}: which of a kernel's answers go back to a Jupyter client."""

import types
import uuid

import pytest

from components.common import errors
from components.worker.kernel_client_relay import MAX_JUPYTER_WAITING, JupyterClientRelay
from components.worker.kernel_messages import KernelMessages
from tests.fakes import FakeChannels

pytestmark = pytest.mark.unit


def _channels():
    return FakeChannels(*[None] * 7)


def _message(msg_type, channel="shell"):
    header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": "s", "username": "u"}
    return types.SimpleNamespace(
        channel=channel,
        msg_type=msg_type,
        content={},
        parent_header={},
        metadata={},
        buffers=[],
        header=header,
    )


def _from_kernel(msg_type, parent_id):
    return {"header": {"msg_type": msg_type}, "parent_header": {"msg_id": parent_id}, "content": {}}


def _relay():
    back, touched = [], []
    relay = JupyterClientRelay(
        lambda channel, msg: back.append((channel, msg)), KernelMessages(), lambda: touched.append(1)
    )
    return relay, back, touched


def test_a_clients_reply_goes_back_to_it_once_and_the_kernels_own_replies_do_not():
    relay, back, touched = _relay()
    channels = _channels()
    execute = _message("execute_request")
    msg_id = relay.send(channels, execute)
    assert msg_id == execute.header["msg_id"], "the client's own ids travel"
    assert relay.busy, "its execution keeps the kernel busy (the idle clock does not run)"
    assert not relay.reply("shell", _from_kernel("execute_reply", "not the client's")), "ours stay ours"
    assert relay.reply("shell", _from_kernel("execute_reply", msg_id))
    assert [c for c, _ in back] == ["shell"] and touched == [1] and not relay.busy
    assert not relay.reply("shell", _from_kernel("execute_reply", msg_id)), "a second reply is not the client's"


def test_an_input_request_of_a_clients_execution_goes_to_the_client_on_stdin():
    relay, back, _ = _relay()
    msg_id = relay.send(_channels(), _message("execute_request"))
    assert not relay.input_request(_from_kernel("input_request", "someone else's"))
    assert relay.input_request(_from_kernel("input_request", msg_id))
    assert back[-1][0] == "stdin"


def test_a_comm_message_is_sent_but_waits_for_no_reply():
    relay, _, _ = _relay()
    msg_id = relay.send(_channels(), _message("comm_msg"))
    assert not relay.reply("shell", _from_kernel("comm_msg", msg_id)) and not relay.busy


def test_while_restarting_messages_are_held_in_order_up_to_a_limit():
    relay, _, _ = _relay()
    held = [_message("kernel_info_request") for _ in range(MAX_JUPYTER_WAITING)]
    for message in held:
        relay.hold(message, "k1")
    with pytest.raises(errors.Capacity, match="restarting"):
        relay.hold(_message("kernel_info_request"), "k1")
    relay.forget(held=False)  # the restart itself keeps them for the new process
    assert relay.take_held() == held and relay.take_held() == []


def test_a_dead_kernel_forgets_everything_pending_and_held():
    relay, back, _ = _relay()
    msg_id = relay.send(_channels(), _message("execute_request"))
    relay.hold(_message("kernel_info_request"), "k1")
    relay.forget()
    assert not relay.busy and relay.take_held() == []
    assert not relay.reply("shell", _from_kernel("execute_reply", msg_id)) and back == []


def test_a_request_we_answer_ourselves_gets_its_reply_on_its_channel():
    relay, back, _ = _relay()
    interrupt = _message("interrupt_request", channel="control")
    relay.answer(interrupt, "interrupt_reply", {"status": "ok"})
    ((channel, msg),) = back
    assert channel == "control" and msg["parent_header"]["msg_id"] == interrupt.header["msg_id"]
    assert msg["header"]["msg_type"] == "interrupt_reply" and msg["content"] == {"status": "ok"}
