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

    A subclass names its URI in its class line, ``class Capacity(CellError, uri="cell.error.capacity")``, and with
    ``also=`` the other URIs that :func:`from_wamp` turns into it; ``answered=False`` for one the client makes itself.
    """

    uri: str = "cell.error"

    def __init_subclass__(
        cls, uri: str | None = None, also: tuple[str, ...] = (), answered: bool = True, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if uri is None:
            return
        cls.uri = uri
        cls.__doc__ = "``{}``: {}".format(uri, cls.__doc__ or "")
        for name in ((uri,) if answered else ()) + also:
            _BY_URI[name] = cls

    def __init__(self, message: str = "", uri: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if uri is not None:
            self.uri = uri
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return "{}: {}".format(self.uri, self.message) if self.message else self.uri


#: the class of each URI the node answers (filled by the classes below)
_BY_URI: dict[str, type[CellError]] = {}


class InvalidArgument(CellError, uri="cell.error.invalid_argument"):
    """a missing, unknown or wrongly typed argument, or a path refused."""


class NotFound(CellError, uri="cell.error.not_found", also=("wamp.error.no_such_procedure",)):
    """an unknown or dead kernel (or one of another session), or a language not offered."""


class Capacity(CellError, uri="cell.error.capacity"):
    """a cap or quota was reached (kernels per session, one-shots, no worker with room)."""


class TooLarge(CellError, uri="cell.error.too_large"):
    """code, a file or another argument past its limit."""


class KernelDied(CellError, uri="cell.error.kernel_died"):
    """the kernel died (or its worker went away) while the call was pending."""


class Timeout(CellError, uri="cell.error.timeout"):
    """a request to the kernel (``complete``, ``inspect``) got no reply in time."""


class Unavailable(CellError, uri="cell.error.unavailable"):
    """a part of the node does not answer now (also: the client could not reconnect)."""


class ConnectionLost(Unavailable, uri="cell.client.connection_lost", answered=False):
    """the connection dropped during a call that cannot be resumed (a one-shot), or it could not be restored."""


class NotAuthorized(
    CellError,
    uri="wamp.error.not_authorized",
    also=("wamp.error.authentication_failed", "wamp.error.authorization_failed", "wamp.error.no_such_role"),
):
    """the role may not do this, or the credential is wrong (also: a refused login)."""


def from_wamp(uri: str, args: tuple[Any, ...] | list[Any] = (), kwargs: dict[str, Any] | None = None) -> CellError:
    """The exception for a WAMP error ``uri`` with its arguments (the node puts its message first)."""
    message = str(args[0]) if args else ""
    cls = _BY_URI.get(uri, CellError)
    return cls(message, uri=uri, details=kwargs)
