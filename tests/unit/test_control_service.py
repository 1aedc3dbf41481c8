"""components.control.service: a session that left during a start is forgotten once its last start ends.

The WAMP session object is built but never joined; its C{call} is the test's, so each start's answer (or
failure) comes when the test says.  (The rest of the session router is tested against a real node.)
"""

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer

from components.common import errors
from components.common.config import RouterConfig
from components.control.held_kernels import HeldKernels
from components.control.placement import Placement
from components.control.service import SessionRouter

pytestmark = pytest.mark.unit

OWNER = 7


def _router():
    router = SessionRouter(ComponentConfig(realm="cell", extra={}))
    router.settings = RouterConfig()
    router.quotas = router.settings.quotas()
    router.placement = Placement(4)
    router.placement.add_spawner("w1", session=100, capacity=8)
    router.held = HeldKernels(0)  # none held: every start asks the spawner
    router._left = set()
    router.calls = []
    shut = []

    def call(procedure, *args, **kwargs):
        if procedure.endswith("shutdown_kernel"):
            shut.append(args[0])
            return defer.succeed(None)
        d = defer.Deferred()
        router.calls.append(d)
        return d

    router.call = call
    return router, shut


def _start(router):
    """A start's outcome: a list that gets its result or failure when it ends."""
    outcome = []
    router._start(OWNER, OWNER, router.quotas["browser"], "10.0.0.1").addBoth(outcome.append)
    return outcome


def _left(router):
    if router.placement.has_reservation(OWNER):
        router._left.add(OWNER)  # what session_left does for a session with a start in flight


def test_a_failed_start_of_a_session_that_left_forgets_it():
    router, shut = _router()
    outcome = _start(router)
    _left(router)
    router.calls[0].errback(ApplicationError("cell.error.capacity", "no room"))
    assert outcome[0].value.error == "cell.error.capacity"
    assert router._left == set(), "kept for good before: a failed start never took it out"


def test_two_starts_of_a_session_that_left_both_end_their_kernels():
    router, shut = _router()
    first, second = _start(router), _start(router)
    _left(router)
    router.calls[0].callback({"kernel_id": "k1", "iopub": "x", "resume_token": "t"})
    assert isinstance(first[0].value, errors.NotFound) and OWNER in router._left, "one start still under way"
    router.calls[1].callback({"kernel_id": "k2", "iopub": "x", "resume_token": "t"})
    assert isinstance(second[0].value, errors.NotFound)
    assert shut == ["k1", "k2"] and router._left == set() and router.placement.sizes()["kernels"] == 0
