"""The ZMQ side of one kernel process: its five channels, spoken through
``jupyter_client.session.Session``, integrated into the Twisted reactor.

It knows the wire protocol and nothing about executions or WAMP: requests go
out with L{KernelChannels.request}; replies, iopub and stdin messages come
back through the callbacks given to the constructor, as message dicts whose
dates are ISO strings (ready for any WAMP serializer).
"""

import resource

import zmq
from jupyter_client.jsonutil import squash_dates
from jupyter_client.session import Session, json_unpacker

from components.common import errors, surrogates
from components.worker.zmq_twisted import ZmqReader

#: how long an input request waits for the output printed before it (see _receive)
STDIN_HOLD_S = 0.2

#: We connect before the forked kernel has bound its sockets; ZMQ retries every
#: RECONNECT_IVL (100 ms by default), which alone dominated fork-to-ready.
RECONNECT_IVL_MS = 5


#: sockets per kernel (shell, control, stdin, iopub, heartbeat): what L{context_for} sizes a spawner's context by
SOCKETS_PER_KERNEL = 5


def context_for(kernels):
    """The ZMQ context of a spawner whose channels serve up to C{kernels} kernels at once.

    libzmq's default cap is 1,023 sockets per context, which is 204 kernels: past it every start failed
    (a spawner with C{max_kernels} 200 and its pool), and the descriptors the sockets hold (about two each)
    can pass a soft C{RLIMIT_NOFILE} of 1,024 sooner.  Both are raised to fit, the limit within its hard cap.
    """
    sockets = max(1023, kernels * SOCKETS_PER_KERNEL + 64)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * sockets + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard)
        )
    context = zmq.Context()
    context.set(zmq.MAX_SOCKETS, sockets)
    return context


def _ipc(connection, port_name):
    return "ipc://{}-{}".format(connection["ip"], connection[port_name])


def unpack(raw):
    """jupyter_client's JSON unpacker, with strings a kernel wrote as lone surrogates repaired (they would stop the
    message on the spawner's msgpack link: components.common.surrogates)."""
    value = json_unpacker(raw)
    return surrogates.repaired(value) if surrogates.may_hold(raw) else value


class KernelChannels:
    """Shell, control, stdin, iopub and heartbeat sockets of one kernel.

    @param on_reply: called with C{(channel, msg)} for shell/control replies.
    @param on_iopub: called with each iopub C{msg}.
    @param on_stdin: called with each stdin request C{msg} (``input_request``).
    @param on_pong: called when the heartbeat echoes.
    @param max_iopub_content_bytes: iopub messages with a larger content are
        not parsed; their content becomes C{{"oversized_bytes": n}}.
    """

    def __init__(self, reactor, context, connection, on_reply, on_iopub, on_stdin, on_pong, max_iopub_content_bytes=0):
        self.session = Session(
            key=connection["key"].encode(),
            signature_scheme=connection["signature_scheme"],
            username="cellserver",
            unpack=unpack,
        )
        self._reactor = reactor
        self._on_reply = on_reply
        self._on_iopub = on_iopub
        self._on_stdin = on_stdin
        self._on_pong = on_pong
        self._max_iopub = max_iopub_content_bytes
        identity = self.session.bsession
        made = []

        def socket(kind, port_name, **options):
            sock = context.socket(kind)
            made.append(sock)
            sock.linger = 0
            sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
            for option, value in options.items():
                sock.setsockopt(getattr(zmq, option), value)
            sock.connect(_ipc(connection, port_name))
            return sock

        try:
            sockets = {
                "shell": socket(zmq.DEALER, "shell_port", IDENTITY=identity),
                "control": socket(zmq.DEALER, "control_port", IDENTITY=identity),
                "stdin": socket(zmq.DEALER, "stdin_port", IDENTITY=identity),
                "iopub": socket(zmq.SUB, "iopub_port", SUBSCRIBE=b""),
                "hb": socket(zmq.REQ, "hb_port", REQ_RELAXED=1, REQ_CORRELATE=1),
            }
        except zmq.ZMQError as exc:
            # Out of sockets or descriptors: the ones made so far go too, or every failed start would leak some
            # until the spawner could open no channels at all (its pool then stayed short for good).
            for sock in made:
                sock.close(linger=0)
            raise errors.Capacity("the spawner cannot open a kernel's channels now ({}); try again later".format(exc))
        receivers = {
            "shell": lambda f: self._receive("shell", f),
            "control": lambda f: self._receive("control", f),
            "stdin": lambda f: self._receive("stdin", f),
            "iopub": lambda f: self._receive("iopub", f),
            "hb": lambda f: self._on_pong(),
        }
        self._readers = {name: ZmqReader(reactor, sockets[name], receivers[name], name) for name in sockets}
        self.closed = False

    def request(self, channel, msg_type, content, parent=None, metadata=None, buffers=None, header=None):
        """Send a request on C{channel}; return its msg_id.  C{header}: one made elsewhere (a Jupyter client's ids)."""
        msg = self.session.send(
            self._readers[channel], msg_type, content, parent=parent, metadata=metadata, buffers=buffers, header=header
        )
        return msg["header"]["msg_id"]

    def ping(self):
        """Send one heartbeat ping; L{on_pong} fires when it comes back."""
        self._readers["hb"].send_multipart([b"ping"])

    def _receive(self, channel, frames):
        try:
            _, msg_list = self.session.feed_identities(frames, copy=True)
            msg = self.session.deserialize(msg_list, content=False, copy=True)
            raw = msg["content"]
            buffers = [bytes(b) for b in msg.get("buffers") or ()]
            size = len(raw) + sum(len(b) for b in buffers)
            if channel == "iopub" and self._max_iopub and size > self._max_iopub:
                # A flood can make one message hundreds of MB: never parse it.
                content, buffers = {"oversized_bytes": size}, []
            else:
                content = self.session.unpack(raw)
        except Exception:
            return  # unsigned, badly signed or malformed: dropped, never trusted
        msg = {
            "header": squash_dates(msg["header"]),
            "parent_header": squash_dates(msg["parent_header"]),
            "metadata": msg["metadata"],
            "content": content,
        }
        if buffers:  # binary parts (widgets' bytes): passed on as they are, binary in msgpack and cbor
            msg["buffers"] = buffers
        if channel == "iopub":
            self._on_iopub(msg)
        elif channel == "stdin":
            # The kernel flushed its output to iopub before asking for input, but the two sockets
            # are delivered separately, and under load that output can arrive a little after the
            # request: take what iopub holds now and again after a short hold (a prompt waits for
            # a person anyway), so the caller sees the prompt after the output that preceded it.
            self._readers["iopub"].read_pending()
            self._reactor.callLater(STDIN_HOLD_S, self._deliver_stdin, msg)
        else:
            self._on_reply(channel, msg)

    def _deliver_stdin(self, msg):
        if self.closed:
            return
        self._readers["iopub"].read_pending()
        self._on_stdin(msg)

    def close(self):
        if not self.closed:
            self.closed = True
            for reader in self._readers.values():
                reader.close()
