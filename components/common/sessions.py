"""How the node's WAMP sessions report a procedure's failure: a caller that left is not an error.

When a caller leaves (or cancels) during a call, the router tells the callee
with INTERRUPT and autobahn cancels the handler's Deferred; autobahn then
reports the CancelledError as a user error, with a traceback, once per such
call (seen in the soak: every dropped one-shot wrote two).  Nothing went
wrong, so it is logged at debug level; every other failure is reported as
autobahn does.

L{quiet_if_router_goes}: at a node's stop, Crossbar's ``restart-always``
starts a container's components again just as the router stops, so their
``onJoin`` fails with ``wamp.close.transport_lost`` and Crossbar logged it as
a fatal error with a traceback (seen in the soak).  That join is simply over.
"""

import functools

from autobahn.twisted.wamp import Session
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

TRANSPORT_LOST = "wamp.close.transport_lost"


def quiet_if_router_goes(on_join):
    """Wrap a component's C{onJoin}: a join the router's going cut short ends it quietly (see the module)."""

    @functools.wraps(on_join)
    def wrapper(self, details):
        def gone(failure):
            failure.trap(ApplicationError)
            if failure.value.error != TRANSPORT_LOST:
                return failure
            self.log.info(
                "the router went away while {name} was joining: the node is stopping", name=type(self).__name__
            )
            return None

        return defer.maybeDeferred(on_join, self, details).addErrback(gone)

    return wrapper


class CallerMayLeave:
    """A mixin for an autobahn session class (before it in the bases)."""

    def onUserError(self, fail, msg):
        if getattr(fail, "check", None) is not None and fail.check(defer.CancelledError):
            self.log.debug("a call ended early: its caller left or cancelled it ({msg})", msg=msg)
            return
        super().onUserError(fail, msg)


class NodeSession(CallerMayLeave, Session):
    """The session class of the node's autobahn Components (the spawner)."""
