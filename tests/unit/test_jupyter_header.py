"""L{components.common.jupyter_header}: the one header builder of the processes that load no jupyter_client."""

import pytest
from jupyter_client import session

from components.common import jupyter_header
from components.control.kernel_events import kernel_lost_event
from components.router.jupyter.kernels import error_reply

pytestmark = pytest.mark.unit


def test_the_protocol_version_is_jupyter_clients():
    # the spawner writes its headers with jupyter_client.session; the router and the control plane with this module
    assert jupyter_header.PROTOCOL_VERSION == session.protocol_version


def test_a_header_has_the_fields_jupyter_client_writes():
    made = jupyter_header.header("status")
    assert set(made) == set(session.msg_header("x", "status", "u", "s"))
    assert made["version"] == session.protocol_version and made["date"].endswith("+00:00")
    assert made["msg_id"] != jupyter_header.header("status")["msg_id"]


def test_the_control_planes_lost_kernel_event_is_a_dead_status():
    event = kernel_lost_event("its worker left")
    assert event["header"]["msg_type"] == "status" and event["header"]["version"] == jupyter_header.PROTOCOL_VERSION
    assert event["content"] == {"execution_state": "dead", "reason": "its worker left"}
    assert event["parent_header"] == {} and event["metadata"] == {}


def test_the_faces_error_reply_answers_its_request():
    request = {"header": {"msg_id": "m1", "msg_type": "execute_request", "session": "s", "username": "u"}}
    reply = error_reply(request, "cell.error.capacity", "too many")
    assert reply["header"]["msg_type"] == "execute_reply" and reply["header"]["msg_id"] == "cellserver-m1"
    assert reply["parent_header"] is request["header"] and reply["content"]["status"] == "error"
    assert reply["header"]["version"] == jupyter_header.PROTOCOL_VERSION
