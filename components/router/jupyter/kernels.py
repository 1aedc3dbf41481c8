"""The face's kernels: which principal holds each, its state, its WebSocket connections, and message routing.

A kernel started through the face belongs to the face's backend session (the
spawner checks calls against it) and, here, to one principal: a token's
principal sees it in its listing and reaches it by id; an anonymous
client's kernel is listed to nobody (anonymous clients prove nothing about
who they are: several share an address behind a NAT or a front), and its id,
random and told only to the client that started it, is the capability that
reaches it.  It outlives its WebSocket connections, as Jupyter clients expect, until
``DELETE``, the spawner's idle timeout or its lifespan.  Its iopub goes to
every open connection; the reply to a client's request goes back to the
connection that sent it.
"""

import datetime
import uuid

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.logger import Logger
from twisted.python.failure import Failure

from components.common import errors, jupyter_header, uris
from components.router.jupyter.access import reaches
from components.router.jupyter.missed import MissedMessages
from components.router.jupyter.routes import PendingRequests

#: the message types Jupyter clients know on iopub (the spawner's own cell_files is not one of them)
IOPUB_TYPES = frozenset(
    (
        "status",
        "stream",
        "display_data",
        "update_display_data",
        "execute_input",
        "execute_result",
        "error",
        "clear_output",
        "comm_open",
        "comm_msg",
        "comm_close",
        "debug_event",
        "shutdown_reply",
    )
)


def now():
    """UTC in the one form Jupyter Server's GatewayClient parses (microseconds and a Z, always)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FaceKernel:
    def __init__(self, kernel_id, name, principal, clock=None):
        self.kernel_id = kernel_id
        self.name = name
        #: the name of the principal that holds it ("": anonymous: whoever holds its id)
        self.principal = principal
        self.execution_state = "idle"
        self.last_activity = now()
        self.connections = set()
        self.routes = PendingRequests()  # msg_id of a client's request -> the connection that sent it
        self.subscriptions = []
        self.missed = MissedMessages(clock or reactor)  # what sessions whose connection dropped are owed

    @property
    def jupyter_id(self):
        """The id Jupyter clients see: a dashed UUID (Jupyter Server routes only those), the node's id underneath."""
        return str(uuid.UUID(hex=self.kernel_id))

    def disconnected(self, connection):
        """C{connection} closed: it gets no more messages; what is owed to its session is kept for its return
        (L{MissedMessages}), or dropped when another connection of the session is still open or it named none."""
        self.connections.discard(connection)
        away = self.missed.left(connection, self.connections)
        if away is None:
            self.routes.drop_connection(connection)
        else:
            self.routes.reroute(connection, away)

    def connected(self, connection):
        """C{connection} opened: first what its session missed while away, in order, then the rest live."""
        away = self.missed.returned(connection)
        if away is not None:
            for channel, msg, _ in away.messages:
                connection.deliver(channel, msg)
            self.routes.reroute(away, connection)
        self.connections.add(connection)

    def reaches(self, connection):
        """Whether a message routed to C{connection} can go: an open connection, or a session away."""
        return connection in self.connections or self.missed.holds(connection)

    def model(self):
        """Jupyter's kernel model."""
        return {
            "id": self.jupyter_id,
            "name": self.name,
            "last_activity": self.last_activity,
            "execution_state": self.execution_state,
            "connections": len(self.connections),
        }


class FaceKernels:
    """Every kernel of the face, by id; see the module docstring."""

    log = Logger()

    def __init__(self, link):
        self._link = link
        self._kernels = {}
        #: called with each kernel the face forgets (it died, or was shut down): its sessions end
        self.on_forget = []

    def of(self, principal):
        """What C{principal} may list: a token's principal its kernels; an anonymous client none (it cannot prove
        which anonymous kernels are its own: it reaches them by the ids it was given)."""
        if principal.anonymous:
            return []
        return [k for k in self._kernels.values() if k.principal == principal.name]

    def get(self, kernel_id, principal):
        """The kernel, if C{principal} reaches it (L{reaches}); L{errors.NotFound} otherwise (another's kernel looks
        the same)."""
        kernel = self._kernels.get(str(kernel_id).replace("-", "").lower())
        if kernel is None or not reaches(principal, kernel.principal):
            raise errors.NotFound("no kernel {} is yours here".format(str(kernel_id)[:64]))
        return kernel

    @defer.inlineCallbacks
    def start(self, principal, name, client):
        """A kernel for C{principal}; C{client}: its transport (components.common.addresses.http_client), whose
        address the session router resolves for the quotas per address."""
        principal.check_kernel(name)  # a Binder launch's token starts its one kernelspec only
        result = yield self._link.call(
            uris.START_KERNEL_FOR, principal.name, principal.role, client, kernel_name=name, timeout_ms=60000
        )
        kernel = FaceKernel(result["kernel_id"], name, principal.name)
        self._kernels[kernel.kernel_id] = kernel
        session = self._link.session
        # One topic carries everything the kernel's clients get: one subscription before the client hears of it.
        try:
            subscription = yield session.subscribe(
                lambda channel, msg: self._message(kernel, channel, msg), uris.kernel_jupyter(kernel.kernel_id)
            )
        except Exception:
            self.shutdown(kernel)
            raise
        kernel.subscriptions = [subscription]
        return kernel

    def sizes(self):
        """Its tables' sizes (the soak checks they come back to their baseline): kernels, their connections,
        requests awaiting a reply, subscriptions."""
        kernels = list(self._kernels.values())
        return {
            "face_kernels": len(kernels),
            "face_connections": sum(len(k.connections) for k in kernels),
            "face_pending_requests": sum(len(k.routes) for k in kernels),
            "face_subscriptions": sum(len(k.subscriptions) for k in kernels),
            "face_sessions_away": sum(len(k.missed) for k in kernels),
        }

    def _call(self, kernel, name, *args, **kwargs):
        """A kernel procedure, called straight at its spawner (the face owns the kernel)."""
        d = self._link.call(uris.kernel_backend_prefix(kernel.kernel_id) + name, *args, **kwargs)

        def gone(failure):
            failure.trap(ApplicationError)
            if failure.value.error == "wamp.error.no_such_procedure":
                self._forget(kernel)
                raise errors.NotFound("kernel {} is gone".format(kernel.kernel_id))
            return failure

        return d.addErrback(gone)

    def shutdown(self, kernel):
        self._forget(kernel)
        d = self._call(kernel, "shutdown")
        d.addErrback(lambda failure: failure.trap(errors.NotFound))
        return d

    def interrupt(self, kernel):
        return self._call(kernel, "interrupt")

    def restart(self, kernel):
        kernel.execution_state = "restarting"
        owed = kernel.routes.snapshot()
        d = self._call(kernel, "restart", timeout_ms=60000)
        # The old process answers nothing more: what it owed is forgotten once the restart is done (or failed).
        d.addBoth(lambda result: kernel.routes.drop(owed) or result)
        return d

    def send(self, kernel, connection, msg):
        """A client's message (decoded) to the kernel; its reply will go back to C{connection}."""
        channel = msg.get("channel")
        msg_id = msg["header"].get("msg_id")
        if isinstance(msg_id, str) and str(msg["header"].get("msg_type", "")).endswith("_request"):
            if not kernel.routes.add(msg_id, connection):
                failure = errors.Capacity(
                    "this kernel already owes replies to {} requests, the most the face keeps; wait for some to "
                    "be answered".format(kernel.routes.max_pending),
                    limit=kernel.routes.max_pending,
                )
                self._refused(Failure(failure), kernel, connection, channel, msg)
                return defer.succeed(None)
        kernel.last_activity = now()
        body = {k: msg.get(k) for k in ("header", "parent_header", "metadata", "content")}
        body["buffers"] = [bytes(b) for b in msg.get("buffers") or ()]
        d = self._call(kernel, "jupyter", channel, body)
        d.addErrback(self._refused, kernel, connection, channel, msg)
        return d

    def _refused(self, failure, kernel, connection, channel, msg):
        """The spawner refused a message (or the kernel is gone): answer the request with an error reply."""
        kernel.routes.pop(msg["header"].get("msg_id"))
        error = getattr(failure.value, "error", "cell.error")
        text = str(failure.value.args[0]) if failure.value.args else str(failure.value)
        self.log.info("jupyter face: a message for kernel {kernel} refused: {text}", kernel=kernel.kernel_id, text=text)
        msg_type = str(msg["header"].get("msg_type", ""))
        if msg_type.endswith("_request") and channel in ("shell", "control"):
            connection.deliver(channel, error_reply(msg, error, text))
        else:
            connection.refuse(text)

    def _message(self, kernel, channel, msg):
        """An event of the kernel's jupyter topic: its iopub, or a reply to a client's request."""
        if channel == "iopub":
            self._iopub(kernel, msg)
        else:
            self._reply(kernel, channel, msg)

    def _iopub(self, kernel, msg):
        msg_type = msg.get("header", {}).get("msg_type")
        kernel.last_activity = now()
        if msg_type == "status":
            kernel.execution_state = msg.get("content", {}).get("execution_state", kernel.execution_state)
        if msg_type in IOPUB_TYPES:
            for connection in list(kernel.connections):
                connection.deliver("iopub", msg)
            kernel.missed.iopub(msg)
        if msg_type == "status" and kernel.execution_state == "dead":
            self._forget(kernel)

    def _reply(self, kernel, channel, msg):
        parent_id = msg.get("parent_header", {}).get("msg_id")
        connection = kernel.routes.peek(parent_id) if channel == "stdin" else kernel.routes.pop(parent_id)
        kernel.last_activity = now()
        if connection is not None and kernel.reaches(connection):
            connection.deliver(channel, msg)

    def _forget(self, kernel):
        if self._kernels.pop(kernel.kernel_id, None) is None:
            return
        kernel.execution_state = "dead"
        for subscription in kernel.subscriptions:
            if subscription.active:
                subscription.unsubscribe().addErrback(lambda failure: None)
        for connection in list(kernel.connections):
            connection.kernel_gone()
        for forgotten in self.on_forget:
            forgotten(kernel)


def error_reply(msg, error, text):
    """A ``*_reply`` with status ``error`` to a request the node refused (Jupyter's way to fail a request)."""
    header = msg["header"]
    reply_type = str(header.get("msg_type", "request"))[: -len("_request")] + "_reply"
    content = {"status": "error", "ename": error, "evalue": text, "traceback": [text]}
    return jupyter_header.message(
        reply_type, content, header, msg_id="cellserver-" + str(header.get("msg_id", ""))[:64]
    )
