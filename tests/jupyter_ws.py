"""A Jupyter channels WebSocket client for tests (autobahn), and REST calls to the node's Jupyter face."""

import functools
import http.client
import json
import struct
import urllib.error
import urllib.request
import uuid

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol, connectWS
from twisted.internet import defer, threads

from tests.wamp_client import within

V1 = "v1.kernel.websocket.jupyter.org"


def rest(node, method, path, body=None, token=None, headers=None, source=None):
    """(status, parsed JSON or None) of a call to ``/jupyter`` on C{node} (run it in a thread).

    A body goes as JSON (``Content-Type: application/json``, as Jupyter's clients send it) unless C{headers} say
    otherwise; C{source}: the local address to connect from (another loopback address is another client).
    """
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    host = node if isinstance(node, str) else "127.0.0.1:{}".format(node.port)
    request = urllib.request.Request("http://{}/jupyter{}".format(host, path), method=method, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "token " + token)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    opener = urllib.request.build_opener(_SourceHandler(source)) if source else urllib.request.build_opener()
    try:
        with opener.open(request, timeout=60) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        return exc.code, json.loads(text) if text.startswith("{") else text


class _SourceHandler(urllib.request.HTTPHandler):
    """Connects from a given local address."""

    def __init__(self, source):
        super().__init__()
        self.source = source

    def http_open(self, req):
        return self.do_open(functools.partial(http.client.HTTPConnection, source_address=(self.source, 0)), req)


def call_rest(node, method, path, body=None, token=None, headers=None, source=None):
    return threads.deferToThread(rest, node, method, path, body, token, headers, source)


def message(channel, msg_type, content, session=None, msg_id=None, parent=None):
    return {
        "channel": channel,
        "header": {
            "msg_id": msg_id or uuid.uuid4().hex,
            "msg_type": msg_type,
            "session": session or uuid.uuid4().hex,
            "username": "tester",
            "date": "",
            "version": "5.3",
        },
        "parent_header": parent or {},
        "metadata": {},
        "content": content,
        "buffers": [],
    }


def encode_v1(msg):
    parts = [json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")]
    parts += [bytes(b) for b in msg.get("buffers", [])]
    channel = msg["channel"].encode()
    count = 2 + len(parts)
    offsets = [8 * (1 + count)]
    for piece in [channel] + parts:
        offsets.append(offsets[-1] + len(piece))
    return b"".join([struct.pack("<Q", count)] + [struct.pack("<Q", o) for o in offsets] + [channel] + parts)


def decode_v1(data):
    (count,) = struct.unpack_from("<Q", data)
    offsets = struct.unpack_from("<{}Q".format(count), data, 8)
    parts = [data[a:b] for a, b in zip(offsets, offsets[1:])]
    msg = dict(zip(("header", "parent_header", "metadata", "content"), (json.loads(p) for p in parts[1:5])))
    msg["channel"] = parts[0].decode()
    msg["buffers"] = parts[5:]
    return msg


def encode_legacy_binary(msg):
    """Jupyter's binary frame for a message with buffers when no subprotocol is used (big-endian uint32 offsets)."""
    body = json.dumps({k: v for k, v in msg.items() if k != "buffers"}).encode()
    pieces = [body] + [bytes(b) for b in msg["buffers"]]
    offsets = [4 * (len(pieces) + 1)]
    for piece in pieces[:-1]:
        offsets.append(offsets[-1] + len(piece))
    return struct.pack("!{}I".format(len(pieces) + 1), len(pieces), *offsets) + b"".join(pieces)


def decode_legacy_binary(data):
    (count,) = struct.unpack_from("!I", data)
    offsets = list(struct.unpack_from("!{}I".format(count), data, 4)) + [len(data)]
    parts = [data[a:b] for a, b in zip(offsets, offsets[1:])]
    msg = json.loads(parts[0])
    msg["buffers"] = parts[1:]
    return msg


class _Protocol(WebSocketClientProtocol):
    def onOpen(self):
        self.factory.client._opened(self)

    def onMessage(self, payload, isBinary):
        client = self.factory.client
        if client.protocol == V1:
            msg = decode_v1(payload)
        elif isBinary:
            msg = decode_legacy_binary(payload)
        else:
            msg = json.loads(payload)
        client._received(msg)

    def onClose(self, wasClean, code, reason):
        self.factory.client._closed(code, reason)


class ChannelsClient:
    """One channels connection: C{send(msg)}, C{wait_for(pred)}; C{messages} holds what came."""

    def __init__(self, node, kernel_id, token=None, protocol=None, origin=None, source=None):
        self.node_port = node.port
        self.source = source
        self.protocol = protocol
        self.messages = []
        self.closed = defer.Deferred()
        self._waiters = []
        self._open = defer.Deferred()
        self._conn = None
        headers = {"Authorization": "token " + token} if token else None
        url = "ws://127.0.0.1:{}/jupyter/api/kernels/{}/channels".format(node.port, kernel_id)
        self.factory = WebSocketClientFactory(
            url, headers=headers, protocols=[protocol] if protocol else None, origin=origin
        )
        self.factory.protocol = _Protocol
        self.factory.client = self
        self.session = uuid.uuid4().hex

    def connect(self):
        connectWS(self.factory, bindAddress=(self.source, 0) if self.source else None)
        return within(self._open, 15, "opening the channels WebSocket")

    def _opened(self, conn):
        self._conn = conn
        self._open.callback(self)

    def _closed(self, code, reason):
        if not self._open.called:
            self._open.errback(ConnectionRefusedError("handshake refused: {} {}".format(code, reason)))
        if not self.closed.called:
            self.closed.callback((code, reason))

    def _received(self, msg):
        self.messages.append(msg)
        for pred, d in list(self._waiters):
            if pred(msg):
                self._waiters.remove((pred, d))
                d.callback(msg)

    def send(self, msg):
        msg["header"]["session"] = self.session
        if self.protocol == V1:
            self._conn.sendMessage(encode_v1(msg), isBinary=True)
        elif msg.get("buffers"):
            self._conn.sendMessage(encode_legacy_binary(msg), isBinary=True)
        else:
            self._conn.sendMessage(json.dumps(msg).encode())
        return msg["header"]["msg_id"]

    def send_raw(self, payload, binary=False):
        self._conn.sendMessage(payload, isBinary=binary)

    def wait_for(self, pred, seconds=30, what="a message"):
        for msg in self.messages:
            if pred(msg):
                return defer.succeed(msg)
        d = defer.Deferred()
        self._waiters.append((pred, d))

        def explain(failure):
            seen = [
                "{} {} {}".format(m["channel"], m["header"].get("msg_type"), str(m["content"])[:80])
                for m in self.messages
            ]
            raise AssertionError("{}; the last messages: {}".format(failure.getErrorMessage(), seen[-8:]))

        return within(d, seconds, what).addErrback(explain)

    def reply_to(self, msg_id, seconds=30):
        return self.wait_for(
            lambda m: m["parent_header"].get("msg_id") == msg_id and m["channel"] in ("shell", "control"),
            seconds,
            "the reply to " + msg_id,
        )

    def idle_after(self, msg_id, seconds=30):
        return self.wait_for(
            lambda m: (
                m["channel"] == "iopub"
                and m["parent_header"].get("msg_id") == msg_id
                and m["header"]["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
            ),
            seconds,
            "idle after " + msg_id,
        )

    def outputs(self, msg_id):
        return [
            m
            for m in self.messages
            if m["channel"] == "iopub"
            and m["parent_header"].get("msg_id") == msg_id
            and m["header"]["msg_type"] in ("stream", "execute_result", "display_data", "error")
        ]

    async def execute(self, code, **content):
        msg_id = self.send(message("shell", "execute_request", dict({"code": code, "silent": False}, **content)))
        reply = await self.reply_to(msg_id)
        await self.idle_after(msg_id)
        return reply, self.outputs(msg_id)

    def close(self):
        if self._conn is not None:
            self._conn.sendClose()
        return self.closed
