"""How the node's WAMP sessions report a procedure's failure: a caller that left is not an error.

When a caller leaves (or cancels) during a call, the router tells the callee
with INTERRUPT and autobahn cancels the handler's Deferred; autobahn then
reports the CancelledError as a user error, with a traceback, once per such
call (seen in the soak: every dropped one-shot wrote two).  Nothing went
wrong, so it is logged at debug level; every other failure is reported as
autobahn does.
"""

from autobahn.twisted.wamp import Session
from twisted.internet import defer


class CallerMayLeave:
    """A mixin for an autobahn session class (before it in the bases)."""

    def onUserError(self, fail, msg):
        if getattr(fail, "check", None) is not None and fail.check(defer.CancelledError):
            self.log.debug("a call ended early: its caller left or cancelled it ({msg})", msg=msg)
            return
        super().onUserError(fail, msg)


class NodeSession(CallerMayLeave, Session):
    """The session class of the node's autobahn Components (the spawner)."""
