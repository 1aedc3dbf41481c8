"""Error classes, each bound to its ``cell.error.*`` URI.

They subclass autobahn's ``ApplicationError`` so that raising one anywhere
in a procedure reaches the caller as a WAMP error with that URI and a
message a person can act on; extra keyword arguments travel as
machine-readable details.
"""

from autobahn.wamp.exception import ApplicationError

from components.common import uris


class CellError(ApplicationError):
    """Base of all errors a cellserver client can receive."""

    uri = None

    def __init__(self, message, **details):
        super().__init__(self.uri, message, **details)
        self.message = message

    def __str__(self):
        return "{}: {}".format(self.uri, self.message)


class InvalidArgument(CellError):
    uri = uris.ERROR_INVALID_ARGUMENT


class NotFound(CellError):
    uri = uris.ERROR_NOT_FOUND


class Capacity(CellError):
    uri = uris.ERROR_CAPACITY


class TooLarge(CellError):
    uri = uris.ERROR_TOO_LARGE


class KernelDied(CellError):
    uri = uris.ERROR_KERNEL_DIED


class Timeout(CellError):
    uri = uris.ERROR_TIMEOUT


class Unavailable(CellError):
    uri = uris.ERROR_UNAVAILABLE
