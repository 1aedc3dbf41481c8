"""A kernel's channels WebSocket (``/jupyter/api/kernels/<id>/channels``): one client connection.

The opening handshake decides the principal (as the REST calls do) and the
framing (L{wire}); then each frame becomes a message for the kernel, through
L{FaceKernels.send}, and the kernel's messages come back through L{deliver}.
A frame that is not a Jupyter message closes the connection with code
L{REFUSED} (4400) and a reason; a frame past the size limit is refused by
autobahn (1009).
"""

from autobahn.exception import PayloadExceededError
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny

from components.common import errors
from components.router.jupyter import wire
from components.router.jupyter.access import Refused
from components.router.send_buffers import SendBufferGuard, websocket_bytes_written

#: the close code for a frame the face does not pass on (an application code: 1007 is autobahn's own)
REFUSED = 4400


class ChannelsProtocol(WebSocketServerProtocol):
    kernel = None
    framing = None
    #: the client's ``session_id`` (its query parameter): a connection that comes back with it gets what it missed
    session_id = None

    def onConnect(self, request):
        face = self.factory.face
        parts = [p for p in request.path.split("/") if p]
        try:
            kernel_id = parts[parts.index("kernels") + 1]
        except (ValueError, IndexError):
            raise ConnectionDeny(404, "no kernel id in {}".format(request.path[:100])) from None
        try:
            # (The opening request passed the face's origin policy: JupyterFace.render hands only those over.)
            principal = face.access.principal(
                request.headers.get("authorization"), (request.params.get("token") or [None])[0]
            )
            self.kernel = face.kernels.get(kernel_id, principal)
        except Refused as exc:
            raise ConnectionDeny(exc.code, str(exc)) from None
        except errors.NotFound as exc:
            raise ConnectionDeny(404, exc.message) from None
        self.framing = wire.V1_PROTOCOL if wire.V1_PROTOCOL in request.protocols else None
        self.session_id = ((request.params.get("session_id") or [""])[0] or "")[:128] or None
        return self.framing

    def onOpen(self):
        if self.kernel.execution_state == "dead":
            self.kernel_gone()
            return
        try:
            # A client that stopped reading (Jupyter Server leaves such sockets behind): its backlog would grow
            # in the router's memory.  It goes; the kernel and its other connections carry on.
            SendBufferGuard.install(
                self.transport, websocket_bytes_written(self), self.factory.max_unsent_bytes, self._stopped_reading
            )
        except (RuntimeError, AttributeError) as exc:
            self.factory.face.log.warn("jupyter face: a channels connection's send buffer not guarded ({e})", e=exc)
        self.kernel.connected(self)

    def _stopped_reading(self, backlog):
        self.factory.face.log.warn(
            "jupyter face: dropping a channels connection that stopped reading ({n} bytes since it last caught up)",
            n=backlog,
        )

    def onMessage(self, payload, isBinary):
        try:
            msg = wire.decode(payload, isBinary, self.framing)
        except wire.FrameError as exc:
            self.refuse(str(exc))
            return
        self.factory.face.kernels.send(self.kernel, self, msg)

    def deliver(self, channel, msg):
        if self.state != self.STATE_OPEN:
            return  # closing (the client left, or the guard dropped it): onClose takes it from its kernel
        payload, binary = wire.encode(channel, msg, self.framing)
        try:
            self.sendMessage(payload if binary else payload.encode("utf-8"), isBinary=binary)
        except PayloadExceededError:
            self.factory.face.log.warn(
                "jupyter face: a {type} message of {n} bytes is larger than max_message_bytes; not sent",
                type=msg.get("header", {}).get("msg_type"),
                n=len(payload),
            )

    def refuse(self, reason):
        """Close this connection: what the client sent is not something the node passes on."""
        self.sendClose(REFUSED, ("refused: " + reason)[:120])

    def kernel_gone(self):
        self.sendClose(1000, "the kernel is gone")

    def onClose(self, wasClean, code, reason):
        if self.kernel is not None:
            self.kernel.disconnected(self)


def channels_factory(face, max_message_bytes):
    factory = WebSocketServerFactory()
    factory.protocol = ChannelsProtocol
    factory.face = face
    #: a connection that lets this much wait unread is dropped (4 large messages' worth; send_buffers.py)
    factory.max_unsent_bytes = 4 * max_message_bytes
    factory.setProtocolOptions(
        maxMessagePayloadSize=max_message_bytes,
        maxFramePayloadSize=max_message_bytes,
        autoPingInterval=30,
        autoPingTimeout=30,
    )
    return factory
