"""Checking what callers send, so bad input gets a clear ``cell.error.*``.

Each public procedure declares its arguments once, as a Python signature;
L{bind} matches a call's args/kwargs against it and turns a mismatch into
L{InvalidArgument} naming the procedure and the argument.
"""

import functools
import inspect
import numbers

from components import errors


def bind(name, signature_of, args, kwargs):
    """Bind C{args}/C{kwargs} to the signature of C{signature_of}; return a dict."""
    signature = _signature(signature_of)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise errors.InvalidArgument("{}: {}; expected {}{}".format(name, exc, name, signature)) from None
    bound.apply_defaults()
    return dict(bound.arguments)


@functools.lru_cache(maxsize=None)
def _signature(function):
    """The declared signatures are module-level functions: build each one once, not per call."""
    return inspect.signature(function)


def check_str(name, value, max_bytes=None):
    if not isinstance(value, str):
        raise errors.InvalidArgument("{} must be a string, not {}".format(name, type(value).__name__))
    if max_bytes is not None:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise errors.TooLarge("{} is {} bytes; the limit is {} bytes".format(name, size, max_bytes), size=size, limit=max_bytes)
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
        raise errors.InvalidArgument("{} must be a positive number of seconds{}, not {!r}".format(name, " or null" if allow_none else "", value))
    return float(value)


def check_user_expressions(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise errors.InvalidArgument("{} must map names to expression strings".format(name))
    return value
