"""components.router.jupyter.kernels and routes: what the face keeps per kernel goes when it is no longer owed."""

import pytest
from autobahn.wamp.exception import ApplicationError

from components.router.jupyter.kernels import FaceKernel, FaceKernels
from components.router.jupyter.routes import PendingRequests
from tests.fakes import FakeChannelsConnection, FakeLink, FakePrincipal

pytestmark = pytest.mark.unit

KERNEL_ID = "ab" * 16


def request(msg_id, msg_type="execute_request"):
    return {"channel": "shell", "header": {"msg_id": msg_id, "msg_type": msg_type}, "content": {}}


def test_a_start_whose_subscription_fails_leaves_no_kernel():
    link = FakeLink(fail_subscribe=True)
    kernels = FaceKernels(link)
    d = kernels.start(FakePrincipal(), "python3", {})
    failure = d.result
    d.addErrback(lambda f: None)
    assert isinstance(failure.value, ApplicationError)
    assert link.session.subscriptions == []
    assert kernels.sizes()["face_kernels"] == 0 and any(c.endswith(".shutdown") for c in link.calls)


def test_the_kernels_topic_carries_iopub_and_replies_to_the_connections():
    kernels = FaceKernels(FakeLink())
    kernel = FaceKernel(KERNEL_ID, "python3", "service")
    connection = FakeChannelsConnection()
    kernel.connections.add(connection)
    kernels.send(kernel, connection, request("m0"))
    idle = {"header": {"msg_type": "status"}, "parent_header": {"msg_id": "m0"}, "content": {"execution_state": "idle"}}
    reply = {"header": {"msg_type": "execute_reply"}, "parent_header": {"msg_id": "m0"}, "content": {}}
    kernels._message(kernel, "shell", reply)
    kernels._message(kernel, "iopub", idle)
    assert connection.delivered == [("shell", reply), ("iopub", idle)]
    assert len(kernel.routes) == 0 and kernel.execution_state == "idle"


def test_the_routes_of_a_closed_connection_go_with_it():
    kernel = FaceKernel(KERNEL_ID, "python3", "service")
    kernels = FaceKernels(FakeLink())
    a, b = FakeChannelsConnection(), FakeChannelsConnection()
    kernel.connections.update((a, b))
    for i in range(10):
        kernels.send(kernel, a, request("a{}".format(i)))
    kernels.send(kernel, b, request("b0"))
    assert len(kernel.routes) == 11
    kernel.disconnected(a)
    assert len(kernel.routes) == 1 and kernel.routes.peek("b0") is b


def test_a_restart_forgets_the_requests_the_old_process_owed():
    link = FakeLink()
    kernels = FaceKernels(link)
    kernel = FaceKernel(KERNEL_ID, "python3", "service")
    connection = FakeChannelsConnection()
    kernel.connections.add(connection)
    kernels.send(kernel, connection, request("before"))
    d = kernels.restart(kernel)
    kernels.send(kernel, connection, request("during"))
    link.pending["restart"].callback({})
    assert d.called and len(kernel.routes) == 1 and kernel.routes.peek("during") is connection


def test_past_the_bound_a_request_is_answered_with_an_error_reply_and_not_kept():
    kernels = FaceKernels(FakeLink())
    kernel = FaceKernel(KERNEL_ID, "python3", "service")
    kernel.routes = PendingRequests(max_pending=3)
    connection = FakeChannelsConnection()
    kernel.connections.add(connection)
    for i in range(4):
        kernels.send(kernel, connection, request("m{}".format(i)))
    assert len(kernel.routes) == 3
    [(channel, reply)] = connection.delivered
    assert channel == "shell" and reply["header"]["msg_type"] == "execute_reply"
    assert reply["parent_header"]["msg_id"] == "m3" and reply["content"]["ename"] == "cell.error.capacity"
    kernels._reply(kernel, "shell", {"parent_header": {"msg_id": "m0"}, "header": {}})
    assert len(kernel.routes) == 2, "a reply frees its route"
