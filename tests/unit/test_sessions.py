"""L{components.common.sessions.quiet_if_router_goes}: a join the router's stop cut short ends quietly, nothing else."""

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from components.common.sessions import TRANSPORT_LOST, quiet_if_router_goes

pytestmark = pytest.mark.unit


class Component:
    log = Logger()

    def __init__(self, error):
        self.error = error

    @quiet_if_router_goes
    def onJoin(self, details):
        return defer.fail(ApplicationError(self.error, "gone"))


class QuietJoinTests(SynchronousTestCase):
    def test_a_lost_router_ends_the_join_quietly(self):
        self.assertIsNone(self.successResultOf(Component(TRANSPORT_LOST).onJoin(None)))

    def test_other_failures_still_fail(self):
        failure = self.failureResultOf(Component("cell.error.capacity").onJoin(None), ApplicationError)
        self.assertEqual(failure.value.error, "cell.error.capacity")
