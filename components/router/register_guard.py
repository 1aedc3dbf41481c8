"""Clients never register: their REGISTER is refused before Crossbar's dealer looks the procedure up.

Crossbar 26.10's dealer (``crossbar/router/dealer.py``, ``processRegister``)
asks the authorizer first, but on a refusal it goes on to look the procedure
up and answers ``wamp.error.procedure_already_exists`` (or an invocation
policy conflict) when someone registered it; only a URI nobody has gets
``wamp.error.not_authorized``.  So a client could learn which procedures
exist (``cell.execute``, a spawner's ``cell.spawner.<id>.``, a live kernel's
``cell.backend.kernel.<id>.``).  This router component wraps its realm's
dealer: a REGISTER from a session whose role registers nothing is answered
``not_authorized`` at once, one answer for every URI, before any lookup.
The authorizer still decides what the registering roles may register.
"""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError

#: the roles that register procedures: the node's own components, remote spawners, Crossbar's own service session
REGISTERING_ROLES = frozenset(("backend", "spawner", "trusted"))


def guard(router):
    """Make C{router}'s dealer refuse every REGISTER from a role outside L{REGISTERING_ROLES} before its lookup."""
    dealer = router._dealer
    process = dealer.processRegister
    if getattr(process, "refuses_clients", False):
        return

    def processRegister(session, register):
        role = session._authrole
        if role is None or role in REGISTERING_ROLES:
            return process(session, register)
        refusal = message.Error(
            message.Register.MESSAGE_TYPE,
            register.request,
            ApplicationError.NOT_AUTHORIZED,
            [
                'role "{}" is not authorized to register procedure "{}": clients call procedures, they never '
                "register any".format(role, str(register.procedure)[:200])
            ],
        )
        router.send(session, refusal)

    processRegister.refuses_clients = True
    dealer.processRegister = processRegister


class RegisterGuard(ApplicationSession):
    """See the module docstring: joins the realm inside the router and guards its dealer."""

    def onJoin(self, details):
        router = getattr(self._transport, "_router", None)
        if router is None or not hasattr(getattr(router, "_dealer", None), "processRegister"):
            # Crossbar's internals moved: fail the node's start rather than run with the leak.
            raise RuntimeError("register guard: this Crossbar's router has no dealer to guard; see the module")
        guard(router)
        self.log.info("register guard: clients' REGISTER is refused before any lookup")
