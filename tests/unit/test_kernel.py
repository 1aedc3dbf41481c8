"""L{components.worker.kernel}: a start whose channels cannot open fails at once, on a Clock.

The process and the ZMQ channels are replaced by recorders (tests/fakes.py) as in tests/test_kernel_timing.py.
"""

import gc
import signal

import pytest
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from components.common import errors
from tests.test_kernel_timing import KernelTimingTests

pytestmark = pytest.mark.unit


class ChannelsRefusedTests(SynchronousTestCase):
    setUp = KernelTimingTests.setUp

    def test_a_start_without_channels_fails_at_once_and_leaves_no_unhandled_error(self):
        """Seen in a burst of 200 starts: the spawner was out of ZMQ sockets; each such start failed only at its
        30 s timeout, and "Unhandled error in Deferred" was logged."""

        def refuse(*args, **kwargs):
            raise errors.Capacity("the spawner cannot open a kernel's channels now (Too many open files)")

        self.kernel._host.channels_factory = refuse
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        d = self.kernel.start()
        self.failureResultOf(d, errors.Capacity)  # now, not after start_timeout_s
        self.assertEqual(self.kernel.state, "dead")
        self.assertIn((self.master.spawned[0], signal.SIGKILL), self.master.signals, "the forked process is killed")
        del d
        gc.collect()  # an unhandled failure is logged when its Deferred is collected
        self.assertFalse([e for e in logged if "Unhandled error in Deferred" in str(e.get("log_format", ""))])
