"""How Jupyter messages travel on a kernel's channels WebSocket: the three framings clients use.

- JSON text frames: the message with a ``channel`` field (no binary buffers);
- the legacy binary frame (messages with buffers, when no subprotocol was
  asked for): a count and offsets as big-endian uint32, the JSON message, then
  each buffer;
- ``v1.kernel.websocket.jupyter.org``: a count and offsets as little-endian
  uint64, the channel, then header, parent header, metadata and content as
  JSON, then each buffer.

Jupyter Server defines these (its ``services/kernels/connection/base.py``),
but it cannot be installed beside Crossbar, so they are written out here from
the protocol's description.  Decoding never trusts a length: a frame whose
offsets do not fit raises L{FrameError}.
"""

import json
import struct

#: the binary subprotocol Jupyter Server 2 and JupyterLab 4 offer
V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"

#: most buffers one message may carry
MAX_PARTS = 64


class FrameError(ValueError):
    """A frame that is not a Jupyter message; the text says what is wrong."""


def decode(payload, is_binary, protocol):
    """A message dict (``channel``, ``header``, ``parent_header``, ``metadata``, ``content``, ``buffers``)."""
    if protocol == V1_PROTOCOL:
        if not is_binary:
            raise FrameError("the v1 protocol sends binary frames")
        msg = _decode_v1(payload)
    elif is_binary:
        msg = _decode_legacy_binary(payload)
    else:
        msg = _json(payload, "the message")
        if isinstance(msg, dict):
            msg.setdefault("buffers", [])  # nbclient sends none
    if not isinstance(msg, dict):
        raise FrameError("a message is a JSON object")
    # nbclient's GatewayKernelClient sends no channel (Jupyter Server and Kernel Gateway assume shell, as here).
    msg.setdefault("channel", "shell")
    if not isinstance(msg["channel"], str):
        raise FrameError("a message's channel is a string")
    if not isinstance(msg.get("header"), dict):
        raise FrameError("a message needs a header")
    return msg


def encode(channel, msg, protocol):
    """C{(payload, is_binary)} of C{msg} (from a kernel) for a client that speaks C{protocol}."""
    buffers = list(msg.get("buffers") or ())
    parts = {k: msg.get(k) or {} for k in ("header", "parent_header", "metadata", "content")}
    if protocol == V1_PROTOCOL:
        pieces = [json.dumps(parts[k]).encode() for k in ("header", "parent_header", "metadata", "content")]
        return _frame_v1(channel.encode(), pieces + [bytes(b) for b in buffers]), True
    body = dict(parts, channel=channel, msg_id=parts["header"].get("msg_id"), msg_type=parts["header"].get("msg_type"))
    if not buffers:
        return json.dumps(body), False
    return _frame_legacy([json.dumps(body).encode()] + [bytes(b) for b in buffers]), True


def _json(data, what):
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise FrameError("{} is not JSON".format(what)) from None
    if ("\\u" if isinstance(data, str) else b"\\u") in data:  # an escape, which may make a lone surrogate
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise FrameError("{} has a lone surrogate: not valid Unicode".format(what)) from None
    return value


def _frame_v1(channel, pieces):
    count = 2 + len(pieces)
    offsets = [8 * (1 + count)]
    for piece in [channel] + pieces:
        offsets.append(offsets[-1] + len(piece))
    return b"".join([struct.pack("<Q", count)] + [struct.pack("<Q", o) for o in offsets] + [channel] + pieces)


def _decode_v1(data):
    if len(data) < 8:
        raise FrameError("a v1 frame starts with its offset count")
    (count,) = struct.unpack_from("<Q", data)
    if not 6 <= count <= 6 + MAX_PARTS or len(data) < 8 * (1 + count):
        raise FrameError("a v1 frame has 6 to {} offsets, not {}".format(6 + MAX_PARTS, count))
    offsets = list(struct.unpack_from("<{}Q".format(count), data, 8))
    if offsets[0] != 8 * (1 + count) or offsets != sorted(offsets) or offsets[-1] != len(data):
        raise FrameError("the v1 frame's offsets do not fit the frame")
    parts = [data[a:b] for a, b in zip(offsets, offsets[1:])]
    try:
        channel = parts[0].decode()
    except UnicodeDecodeError:
        raise FrameError("the channel is not UTF-8") from None
    names = ("header", "parent_header", "metadata", "content")
    msg = {name: _json(part, name) for name, part in zip(names, parts[1:5])}
    msg["channel"] = channel
    msg["buffers"] = parts[5:]
    return msg


def _frame_legacy(pieces):
    offsets = [4 * (len(pieces) + 1)]
    for piece in pieces[:-1]:
        offsets.append(offsets[-1] + len(piece))
    return struct.pack("!{}I".format(len(pieces) + 1), len(pieces), *offsets) + b"".join(pieces)


def _decode_legacy_binary(data):
    if len(data) < 4:
        raise FrameError("a binary frame starts with its part count")
    (count,) = struct.unpack_from("!I", data)
    if not 1 <= count <= 1 + MAX_PARTS or len(data) < 4 * (count + 1):
        raise FrameError("a binary frame has 1 to {} parts, not {}".format(1 + MAX_PARTS, count))
    offsets = list(struct.unpack_from("!{}I".format(count), data, 4)) + [len(data)]
    if offsets[0] != 4 * (count + 1) or offsets != sorted(offsets):
        raise FrameError("the binary frame's offsets do not fit the frame")
    parts = [data[a:b] for a, b in zip(offsets, offsets[1:])]
    msg = _json(parts[0], "the message")
    if not isinstance(msg, dict):
        raise FrameError("the message is not a JSON object")
    msg["buffers"] = parts[1:]
    return msg
