"""What a Jupyter client may send a kernel, checked before the spawner signs it.

The node's Jupyter face (components.router.jupyter) passes clients' messages
to a kernel through its ``jupyter`` procedure.  The client and the kernel are
both untrusted, and the kernel believes whatever the spawner signs, so every
message is rebuilt here from what it is allowed to carry: a known type on its
channel, contents of the right types and sizes, a header whose ids the client
chose (its replies must find their way back) but whose signature is ours.
"""

import dataclasses
import json

from jupyter_client.jsonutil import squash_dates
from jupyter_client.session import msg_header

from components.common import errors

#: message types a client may send, by channel
ALLOWED = {
    "shell": (
        "execute_request",
        "inspect_request",
        "complete_request",
        "history_request",
        "is_complete_request",
        "kernel_info_request",
        "comm_info_request",
        "comm_open",
        "comm_msg",
        "comm_close",
    ),
    "control": ("kernel_info_request", "interrupt_request", "shutdown_request"),
    "stdin": ("input_reply",),
}

#: what the comm procedures accept (widgets)
COMM_MSG_TYPES = ("comm_open", "comm_msg", "comm_close")

#: longest id, session or user name a client may put in a header
MAX_ID_CHARS = 128


@dataclasses.dataclass
class ClientMessage:
    channel: str
    msg_type: str
    header: dict
    parent_header: dict
    metadata: dict
    content: dict
    buffers: list


def check(channel, msg, config):
    """A L{ClientMessage} rebuilt from C{msg} (a dict in Jupyter's shape), or L{errors.InvalidArgument}/TooLarge."""
    allowed = ALLOWED.get(channel)
    if allowed is None:
        raise errors.InvalidArgument(
            "channel must be one of {}, not {!r}".format(", ".join(sorted(ALLOWED)), str(channel)[:40])
        )
    if not isinstance(msg, dict):
        raise errors.InvalidArgument("a message must be a JSON object with header, parent_header, metadata, content")
    header = msg.get("header")
    if not isinstance(header, dict):
        raise errors.InvalidArgument("the message has no header")
    msg_type = header.get("msg_type")
    if msg_type not in allowed:
        raise errors.InvalidArgument(
            "{!r} may not be sent on the {} channel; it takes {}".format(
                str(msg_type)[:60], channel, ", ".join(allowed)
            )
        )
    content = msg.get("content", {})
    metadata = msg.get("metadata") or {}
    parent = msg.get("parent_header") or {}
    buffers = msg.get("buffers") or []
    for name, value in (("content", content), ("metadata", metadata), ("parent_header", parent)):
        if not isinstance(value, dict):
            raise errors.InvalidArgument("{} must be a JSON object".format(name))
    if not isinstance(buffers, list) or not all(isinstance(b, (bytes, bytearray)) for b in buffers):
        raise errors.InvalidArgument("buffers must be a list of binary values")
    try:
        size = len(json.dumps([content, metadata, parent])) + sum(len(b) for b in buffers)
    except (TypeError, ValueError):
        raise errors.InvalidArgument("content, metadata and parent_header must be plain JSON") from None
    if size > config.max_comm_bytes:
        raise errors.TooLarge(
            "this message is {} bytes; the limit is {} bytes".format(size, config.max_comm_bytes),
            size=size,
            limit=config.max_comm_bytes,
        )
    content = CONTENT_CHECKS.get(msg_type, _empty)(content, config)
    return ClientMessage(
        channel=channel,
        msg_type=msg_type,
        header=squash_dates(
            msg_header(
                _id("header.msg_id", header.get("msg_id")),
                msg_type,
                _id("header.username", header.get("username", "") or "user", allow_empty=True),
                _id("header.session", header.get("session")),
            )
        ),
        parent_header=parent,
        metadata=metadata,
        content=content,
        buffers=[bytes(b) for b in buffers],
    )


def check_comm(msg_type, content, metadata, buffers, max_bytes):
    """A comm message's parts, checked (shared by the ``comm`` procedure and L{check})."""
    if msg_type not in COMM_MSG_TYPES:
        raise errors.InvalidArgument("msg_type must be one of {}, not {!r}".format(", ".join(COMM_MSG_TYPES), msg_type))
    if not isinstance(content, dict):
        raise errors.InvalidArgument("content must be a JSON object, not {}".format(type(content).__name__))
    comm_id = content.get("comm_id")
    if not isinstance(comm_id, str) or not 0 < len(comm_id) <= MAX_ID_CHARS:
        raise errors.InvalidArgument("content.comm_id must be a string of 1 to {} characters".format(MAX_ID_CHARS))
    if msg_type == "comm_open" and not isinstance(content.get("target_name"), str):
        raise errors.InvalidArgument("a comm_open needs content.target_name (a string)")
    if not isinstance(content.get("data", {}), dict):
        raise errors.InvalidArgument("content.data must be a JSON object")
    if metadata is not None and not isinstance(metadata, dict):
        raise errors.InvalidArgument("metadata must be a JSON object or null")
    buffers = [] if buffers is None else buffers
    if not isinstance(buffers, list) or not all(isinstance(b, (bytes, bytearray)) for b in buffers):
        raise errors.InvalidArgument("buffers must be a list of binary values (msgpack or cbor)")
    try:
        size = len(json.dumps([content, metadata or {}])) + sum(len(b) for b in buffers)
    except (TypeError, ValueError):
        raise errors.InvalidArgument("content and metadata must be plain JSON") from None
    if size > max_bytes:
        raise errors.TooLarge(
            "this comm message is {} bytes; the limit is {} bytes".format(size, max_bytes), size=size, limit=max_bytes
        )
    return content, metadata or {}, [bytes(b) for b in buffers]


def _id(name, value, allow_empty=False):
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS or (not value and not allow_empty):
        raise errors.InvalidArgument("{} must be a string of 1 to {} characters".format(name, MAX_ID_CHARS))
    return value


def _code(content, config, name="code"):
    code = content.get(name, "")
    if not isinstance(code, str):
        raise errors.InvalidArgument("content.{} must be a string".format(name))
    if len(code.encode("utf-8", "surrogatepass")) > config.max_code_bytes:
        raise errors.TooLarge("content.{} is longer than {} bytes".format(name, config.max_code_bytes))
    return code


def _flag(content, name, default):
    value = content.get(name, default)
    if not isinstance(value, bool):
        raise errors.InvalidArgument("content.{} must be true or false".format(name))
    return value


def _int(content, name, default=0, minimum=None):
    value = content.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        raise errors.InvalidArgument("content.{} must be an integer".format(name))
    return value


def _execute(content, config):
    expressions = content.get("user_expressions") or {}
    if not isinstance(expressions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in expressions.items()
    ):
        raise errors.InvalidArgument("content.user_expressions must map names to expression strings")
    return {
        "code": _code(content, config),
        "silent": _flag(content, "silent", False),
        "store_history": _flag(content, "store_history", True),
        "user_expressions": expressions,
        "allow_stdin": _flag(content, "allow_stdin", True),
        "stop_on_error": _flag(content, "stop_on_error", True),
    }


def _cursor(content, config):
    return {"code": _code(content, config), "cursor_pos": _int(content, "cursor_pos", minimum=0)}


def _inspect(content, config):
    result = _cursor(content, config)
    level = _int(content, "detail_level")
    if level not in (0, 1):
        raise errors.InvalidArgument("content.detail_level must be 0 or 1")
    result["detail_level"] = level
    return result


def _history(content, config):
    access = content.get("hist_access_type", "tail")
    if access not in ("range", "tail", "search"):
        raise errors.InvalidArgument("content.hist_access_type must be range, tail or search")
    result = {
        "output": _flag(content, "output", False),
        "raw": _flag(content, "raw", True),
        "hist_access_type": access,
        "session": _int(content, "session"),
        "start": _int(content, "start"),
        "stop": _int(content, "stop"),
        "n": _int(content, "n", 10, minimum=0),
        "unique": _flag(content, "unique", False),
    }
    if "pattern" in content:
        result["pattern"] = _code(content, config, "pattern")
    return result


def _comm_info(content, config):
    target = content.get("target_name")
    if target is None:
        return {}
    if not isinstance(target, str) or len(target) > 256:
        raise errors.InvalidArgument("content.target_name must be a string")
    return {"target_name": target}


def _comm(msg_type):
    def check_content(content, config):
        checked, _, _ = check_comm(msg_type, content, {}, [], config.max_comm_bytes)
        return checked

    return check_content


def _shutdown(content, config):
    return {"restart": _flag(content, "restart", False)}


def _input_reply(content, config):
    return {"value": _code(content, config, "value")}


def _empty(content, config):
    return {}


CONTENT_CHECKS = {
    "execute_request": _execute,
    "inspect_request": _inspect,
    "complete_request": _cursor,
    "is_complete_request": lambda content, config: {"code": _code(content, config)},
    "history_request": _history,
    "comm_info_request": _comm_info,
    "comm_open": _comm("comm_open"),
    "comm_msg": _comm("comm_msg"),
    "comm_close": _comm("comm_close"),
    "shutdown_request": _shutdown,
    "input_reply": _input_reply,
}
