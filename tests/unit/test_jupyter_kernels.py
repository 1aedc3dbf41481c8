"""components.router.jupyter.kernels and routes: what the face keeps per kernel goes when it is no longer owed."""

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

from components.router.jupyter.kernels import FaceKernel, FaceKernels
from components.router.jupyter.routes import PendingRequests

pytestmark = pytest.mark.unit

KERNEL_ID = "ab" * 16


class Subscription:
    def __init__(self):
        self.active = True

    def unsubscribe(self):
        self.active = False
        return defer.succeed(None)


class Session:
    """The face's backend session: the iopub subscription works, the second one fails when told to."""

    def __init__(self, fail_second):
        self.fail_second = fail_second
        self.subscriptions = []

    def subscribe(self, handler, topic):
        if self.fail_second and self.subscriptions:
            return defer.fail(ApplicationError("wamp.error.not_authorized", "no"))
        self.subscriptions.append(Subscription())
        return defer.succeed(self.subscriptions[-1])


class Link:
    def __init__(self, fail_second=False):
        self.session = Session(fail_second)
        self.calls = []
        self.pending = {}

    def call(self, procedure, *args, **kwargs):
        self.calls.append(procedure)
        if procedure.endswith(".restart"):
            self.pending["restart"] = defer.Deferred()
            return self.pending["restart"]
        if procedure.endswith(".jupyter"):
            return defer.succeed(None)
        return defer.succeed({"kernel_id": KERNEL_ID})


class Principal:
    name, role, anonymous = "service", "service", False


class Connection:
    def __init__(self):
        self.delivered = []

    def deliver(self, channel, msg):
        self.delivered.append((channel, msg))

    def refuse(self, reason):
        self.delivered.append(("refused", reason))

    def kernel_gone(self):
        pass


def request(msg_id, msg_type="execute_request"):
    return {"channel": "shell", "header": {"msg_id": msg_id, "msg_type": msg_type}, "content": {}}


def test_a_start_whose_second_subscription_fails_leaves_no_subscription_and_no_kernel():
    link = Link(fail_second=True)
    kernels = FaceKernels(link)
    d = kernels.start(Principal(), "python3", {})
    failure = d.result
    d.addErrback(lambda f: None)
    assert isinstance(failure.value, ApplicationError)
    assert [s.active for s in link.session.subscriptions] == [False], "the first subscription is ended"
    assert kernels.sizes()["face_kernels"] == 0 and any(c.endswith(".shutdown") for c in link.calls)


def test_the_routes_of_a_closed_connection_go_with_it():
    kernel = FaceKernel(KERNEL_ID, "python3", "service")
    kernels = FaceKernels(Link())
    a, b = Connection(), Connection()
    kernel.connections.update((a, b))
    for i in range(10):
        kernels.send(kernel, a, request("a{}".format(i)))
    kernels.send(kernel, b, request("b0"))
    assert len(kernel.routes) == 11
    kernel.disconnected(a)
    assert len(kernel.routes) == 1 and kernel.routes.peek("b0") is b


def test_a_restart_forgets_the_requests_the_old_process_owed():
    link = Link()
    kernels = FaceKernels(link)
    kernel = FaceKernel(KERNEL_ID, "python3", "service")
    connection = Connection()
    kernel.connections.add(connection)
    kernels.send(kernel, connection, request("before"))
    d = kernels.restart(kernel)
    kernels.send(kernel, connection, request("during"))
    link.pending["restart"].callback({})
    assert d.called and len(kernel.routes) == 1 and kernel.routes.peek("during") is connection


def test_past_the_bound_a_request_is_answered_with_an_error_reply_and_not_kept():
    kernels = FaceKernels(Link())
    kernel = FaceKernel(KERNEL_ID, "python3", "service")
    kernel.routes = PendingRequests(max_pending=3)
    connection = Connection()
    kernel.connections.add(connection)
    for i in range(4):
        kernels.send(kernel, connection, request("m{}".format(i)))
    assert len(kernel.routes) == 3
    [(channel, reply)] = connection.delivered
    assert channel == "shell" and reply["header"]["msg_type"] == "execute_reply"
    assert reply["parent_header"]["msg_id"] == "m3" and reply["content"]["ename"] == "cell.error.capacity"
    kernels._reply(kernel, "shell", {"parent_header": {"msg_id": "m0"}, "header": {}})
    assert len(kernel.routes) == 2, "a reply frees its route"
