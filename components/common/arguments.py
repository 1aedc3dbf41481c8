"""Checking what callers send, so bad input gets a clear ``cell.error.*``.

Each procedure's arguments are its handler's own parameters: L{bind}
matches a call's args/kwargs against the handler's signature (after the
parameters the server fills in, such as the kernel and the call details) and
turns a mismatch into L{InvalidArgument} naming the procedure and what it
takes.  The C{check_*} functions then check each value's type and size.
"""

import functools
import inspect
import numbers

from components.common import errors


def bind(name, handler, args, kwargs, skip=0, defaults=True):
    """Bind C{args}/C{kwargs} to C{handler}'s parameters after its first C{skip}; return a dict.

    A bound method's own C{self} is not counted in C{skip}.  With
    C{defaults=False} only what the caller passed is returned (for a
    procedure that forwards the call, so the callee applies its own defaults).
    """
    function = getattr(handler, "__func__", handler)
    signature = _signature(function, skip + (1 if hasattr(handler, "__self__") else 0))
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise errors.InvalidArgument("{}: {}; it takes {}{}".format(name, exc, name, signature)) from None
    if defaults:
        bound.apply_defaults()
    return dict(bound.arguments)


@functools.lru_cache(maxsize=None)
def _signature(function, skip):
    """The callers' part of C{function}'s signature, built once per handler rather than per call."""
    signature = inspect.signature(function)
    return signature.replace(parameters=list(signature.parameters.values())[skip:])


def check_str(name, value, max_bytes=None):
    if not isinstance(value, str):
        raise errors.InvalidArgument("{} must be a string, not {}".format(name, type(value).__name__))
    if max_bytes is not None:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise errors.TooLarge(
                "{} is {} bytes; the limit is {} bytes".format(name, size, max_bytes), size=size, limit=max_bytes
            )
    return value


def check_bool(name, value):
    if not isinstance(value, bool):
        raise errors.InvalidArgument("{} must be true or false, not {!r}".format(name, value))
    return value


def check_int(name, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise errors.InvalidArgument("{} must be an integer >= {}, not {!r}".format(name, minimum, value))
    return value


def check_timeout(name, value, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise errors.InvalidArgument(
            "{} must be a positive number of seconds{}, not {!r}".format(name, " or null" if allow_none else "", value)
        )
    return float(value)


def check_user_expressions(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise errors.InvalidArgument("{} must map names to expression strings".format(name))
    return value


def endpoint(name, handler, with_details=False):
    """A WAMP endpoint for C{handler}: the call's arguments bound to its own signature (L{bind}).

    With C{with_details} (register with ``details_arg="details"``), the call's
    details come first, and the rest are the caller's.
    """

    def call(*args, **kwargs):
        if with_details:
            details = kwargs.pop("details")
            return handler(details, **bind(name, handler, args, kwargs, skip=1))
        return handler(**bind(name, handler, args, kwargs))

    call.__name__ = getattr(handler, "__name__", name)
    return call


def check_kernel_name(value):
    """A start's or one-shot's C{kernel_name} argument: a kernelspec name, python3 when None."""
    if value is None:
        return "python3"
    return check_str("kernel_name", value, 256)


def check_inline_files(value, max_bytes):
    """A one-shot's C{files} argument: {relative path: bytes or str}, C{max_bytes} in all ({} when None)."""
    files = value or {}
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, (bytes, bytearray, str)) for k, v in files.items()
    ):
        raise errors.InvalidArgument("files must map relative paths to bytes")
    if sum(len(v) for v in files.values()) > max_bytes:
        raise errors.TooLarge("input files are limited to {} bytes in all".format(max_bytes))
    return files


def check_unicode(args, kwargs):
    """Refuse a lone surrogate anywhere in a call's arguments (a JSON client can send ``"\\ud800"``).

    The router passes such a string on to the node's processes over msgpack, which cannot encode it: the call
    would never be answered.  So the first hop that reads a client's arguments refuses it with a clear error.
    """
    pending = [args, kwargs]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise errors.InvalidArgument(
                    "a string argument has a lone surrogate ({!r}...): send valid Unicode".format(value[:20])
                ) from None
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
