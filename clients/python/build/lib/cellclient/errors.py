"""Exceptions of the cellserver client, one per ``cell.error.*`` URI of the node's API (docs/api.md, "Errors").

Every error a node answers arrives as a WAMP error (autobahn's ``ApplicationError``); :func:`from_wamp` is the one
place that turns it into one of these, so callers catch ``errors.Capacity`` rather than compare URIs::

    try:
        client.run(code)
    except errors.Capacity as e:
        print("the node is full:", e.message)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CellError",
    "InvalidArgument",
    "NotFound",
    "Capacity",
    "TooLarge",
    "KernelDied",
    "Timeout",
    "Unavailable",
    "ConnectionLost",
    "NotAuthorized",
    "from_wamp",
]


class CellError(Exception):
    """An error answered by the node (or met on the way to it).

    :ivar uri: the WAMP error URI, e.g. ``"cell.error.capacity"``.
    :ivar message: what went wrong, in words a person can act on (the error's first argument).
    :ivar details: the error's keyword arguments (machine-readable details such as ``limit``).
    """

    uri: str = "cell.error"

    def __init__(self, message: str = "", uri: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if uri is not None:
            self.uri = uri
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return "{}: {}".format(self.uri, self.message) if self.message else self.uri


class InvalidArgument(CellError):
    """``cell.error.invalid_argument``: a missing, unknown or wrongly typed argument, or a path refused."""

    uri = "cell.error.invalid_argument"


class NotFound(CellError):
    """``cell.error.not_found``: an unknown or dead kernel (or one of another session), or a language not offered."""

    uri = "cell.error.not_found"


class Capacity(CellError):
    """``cell.error.capacity``: a cap or quota was reached (kernels per session, one-shots, no worker with room)."""

    uri = "cell.error.capacity"


class TooLarge(CellError):
    """``cell.error.too_large``: code, a file or another argument past its limit."""

    uri = "cell.error.too_large"


class KernelDied(CellError):
    """``cell.error.kernel_died``: the kernel died (or its worker went away) while the call was pending."""

    uri = "cell.error.kernel_died"


class Timeout(CellError):
    """``cell.error.timeout``: a request to the kernel (``complete``, ``inspect``) got no reply in time."""

    uri = "cell.error.timeout"


class Unavailable(CellError):
    """``cell.error.unavailable``: a part of the node does not answer now (also: the client could not reconnect)."""

    uri = "cell.error.unavailable"


class ConnectionLost(Unavailable):
    """The connection dropped during a call that cannot be resumed (a one-shot), or it could not be restored."""

    uri = "cell.client.connection_lost"


class NotAuthorized(CellError):
    """``wamp.error.not_authorized`` (or a refused login): the role may not do this, or the credential is wrong."""

    uri = "wamp.error.not_authorized"


_BY_URI: dict[str, type[CellError]] = {
    cls.uri: cls
    for cls in (InvalidArgument, NotFound, Capacity, TooLarge, KernelDied, Timeout, Unavailable, NotAuthorized)
}
_BY_URI["wamp.error.authentication_failed"] = NotAuthorized
_BY_URI["wamp.error.authorization_failed"] = NotAuthorized
_BY_URI["wamp.error.no_such_role"] = NotAuthorized
_BY_URI["wamp.error.no_such_procedure"] = NotFound


def from_wamp(uri: str, args: tuple[Any, ...] | list[Any] = (), kwargs: dict[str, Any] | None = None) -> CellError:
    """The exception for a WAMP error ``uri`` with its arguments (the node puts its message first)."""
    message = str(args[0]) if args else ""
    cls = _BY_URI.get(uri, CellError)
    return cls(message, uri=uri, details=kwargs)
