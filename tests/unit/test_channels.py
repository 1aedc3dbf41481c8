"""A channels connection that is closing gets nothing more, and nothing fails for it."""

import pytest

from components.router.jupyter.channels import ChannelsProtocol

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("state", ["STATE_CLOSING", "STATE_CLOSED"])
def test_a_message_for_a_connection_already_closing_is_dropped_quietly(state):
    connection = ChannelsProtocol()
    connection.state = getattr(connection, state)
    connection.framing = None
    sent = []
    connection.sendMessage = lambda *args, **kwargs: sent.append(args)  # autobahn raises Disconnected here
    connection.deliver("iopub", {"header": {"msg_type": "stream"}, "content": {"text": "late"}})
    assert sent == []


def test_an_open_connection_gets_its_message():
    connection = ChannelsProtocol()
    connection.state = connection.STATE_OPEN
    connection.framing = None
    sent = []
    connection.sendMessage = lambda payload, isBinary=False: sent.append(payload)
    connection.deliver(
        "iopub", {"header": {"msg_type": "stream"}, "parent_header": {}, "metadata": {}, "content": {"text": "on time"}}
    )
    assert len(sent) == 1 and b"on time" in sent[0]
