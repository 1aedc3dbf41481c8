"""The realm authorizer: Crossbar's dynamic authorizer ``cell.authorize``, inside the router.

It runs as a Crossbar *router component* (in the router process, joined
over an in-memory transport), so the router asking it costs no socket round
trip; that is what lets answers about per-kernel URIs go uncached (see
L{components.router.authorization}) without slowing a kernel's first call.  The
rules are L{components.router.authorization}; the one answer that needs state,
whether a session owns the kernel whose topic it subscribes to, comes from
the session router (``cell.backend.kernel_owner``).  Without a session
router, such subscriptions are refused and everything else keeps working.
"""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

from components.common import uris
from components.router import authorization


class RealmAuthorizer(ApplicationSession):
    """See the module docstring."""

    @defer.inlineCallbacks
    def onJoin(self, details):
        yield self.register(self.authorize, uris.AUTHORIZE)
        self.log.info("realm authorizer ready on {uri}", uri=uris.AUTHORIZE)

    def authorize(self, session, uri, action, options=None):
        kernel_id = authorization.owner_needed(session, uri, action)
        if kernel_id is None or authorization.forwarded(options):
            return authorization.decide(session, uri, action, options=options)
        d = self.call(uris.KERNEL_OWNER, kernel_id)
        d.addErrback(self._owner_unknown, kernel_id)
        d.addCallback(lambda owner: authorization.decide(session, uri, action, owner, options))
        return d

    def _owner_unknown(self, failure, kernel_id):
        failure.trap(ApplicationError)
        self.log.warn(
            "cannot tell who owns kernel {kernel_id} ({error}); refusing",
            kernel_id=kernel_id,
            error=failure.value.error,
        )
        return None
