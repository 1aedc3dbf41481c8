"""Every fake the unit tests put in place of a real class, in one place.

Each fake names the class it stands in for (C{fakes}) and the methods it adds for a test to drive it
(C{test_only}); every other public method has the real method's signature, which
tests/unit/test_fakes.py checks, so a change to the real class breaks that test instead of
leaving a fake that no longer tells the truth.
"""

import uuid

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.protocol import ApplicationSession
from twisted.internet import defer

from components.worker.death_causes import DeathReason
from components.worker.kernel import Kernel
from components.worker.kernel_channels import KernelChannels
from components.worker.master_client import ForkMasterProtocol


class FakeMaster:
    """The fork master: forks nothing, counts pids, records signals."""

    fakes = ForkMasterProtocol
    test_only = ("__init__",)

    def __init__(self):
        self.spawned = []
        self.signals = []
        self._next = 1000

    def spawn(self, connection_file, cwd, env, log_file, sandbox=None, max_output_bytes=0):
        self._next += 1
        self.spawned.append(self._next)
        return defer.succeed(self._next)

    def signal(self, pid, signum):
        self.signals.append((pid, signum))


class FakeChannels:
    """A kernel's ZMQ channels: records requests; the test answers them (L{iopub}, L{reply})."""

    fakes = KernelChannels
    test_only = ("last", "iopub", "reply")

    def __init__(self, reactor, context, connection, on_reply, on_iopub, on_stdin, on_pong, max_iopub_content_bytes=0):
        self.on_reply, self.on_iopub, self.on_stdin, self.on_pong = on_reply, on_iopub, on_stdin, on_pong
        self.requests = []  # (channel, msg_type, content, msg_id)
        self.sent = {}  # msg_id -> the rest of the request: parent, metadata, buffers, header
        self.pings = 0
        self.closed = False

    def request(self, channel, msg_type, content, parent=None, metadata=None, buffers=None, header=None):
        msg_id = header["msg_id"] if header else uuid.uuid4().hex  # a given header is sent as it is
        self.requests.append((channel, msg_type, content, msg_id))
        self.sent[msg_id] = {"parent": parent, "metadata": metadata, "buffers": buffers, "header": header}
        return msg_id

    def ping(self):
        self.pings += 1

    def close(self):
        self.closed = True

    def last(self, msg_type):
        return [r for r in self.requests if r[1] == msg_type][-1][3]

    def iopub(self, parent_id, msg_type, content):
        self.on_iopub(
            {
                "header": {"msg_type": msg_type},
                "parent_header": {"msg_id": parent_id},
                "metadata": {},
                "content": content,
            }
        )

    def reply(self, parent_id, msg_type, content):
        self.on_reply(
            "shell",
            {
                "header": {"msg_type": msg_type},
                "parent_header": {"msg_id": parent_id},
                "metadata": {},
                "content": content,
            },
        )


class FakePoolKernel:
    """A kernel as the pool sees it: C{state}, C{start()} (fired by the test), C{shutdown(reason)}."""

    fakes = Kernel
    test_only = ("__init__",)

    def __init__(self, started):
        self.state = "starting"
        self.shut = None
        self._started = started

    def start(self):
        d = defer.Deferred()
        self._started.append((self, d))
        return d

    def shutdown(self, reason=DeathReason("shutdown", "shut down by its owner")):
        self.shut = reason


class FakeMetaSession:
    """Answers the subscription meta calls the way Crossbar does, from a fixed table."""

    fakes = ApplicationSession
    test_only = ("__init__",)

    def __init__(self, subscriptions, vanished=()):
        self.subscriptions = subscriptions  # id -> details
        self.vanished = list(vanished)  # listed, then gone before they could be read

    def call(self, procedure, *args, **kwargs):
        if procedure == "wamp.subscription.lookup":
            found = [sid for sid, d in self.subscriptions.items() if d["uri"] == args[0] and d["match"] == "exact"]
            return defer.succeed(found[0] if found else None)
        if procedure == "wamp.subscription.list":
            listing = {"exact": [], "prefix": list(self.vanished), "wildcard": []}
            for sid, d in self.subscriptions.items():
                listing[d["match"]].append(sid)
            return defer.succeed(listing)
        if procedure == "wamp.subscription.get":
            if args[0] not in self.subscriptions:
                return defer.fail(ApplicationError("wamp.error.no_such_subscription"))
            return defer.succeed(self.subscriptions[args[0]])
        raise AssertionError(procedure)
