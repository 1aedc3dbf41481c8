"""Every fake the unit tests put in place of a real class, in one place.

Each fake names the class it stands in for (C{fakes}) and the methods it adds for a test to drive it
(C{test_only}); every other public method has the real method's signature, which
tests/unit/test_fakes.py checks, so a change to the real class breaks that test instead of
leaving a fake that no longer tells the truth.
"""

import os
import uuid

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.protocol import ApplicationSession
from autobahn.wamp.request import Subscription
from twisted.internet import defer

from components.control.spawner_calls import SpawnerCalls
from components.router.jupyter.access import Principal
from components.router.jupyter.channels import ChannelsProtocol
from components.router.local_link import ANSWER_TIMEOUT_MS, LocalLink
from components.worker.death_causes import DeathReason
from components.worker.files import KernelFiles
from components.worker.kernel import Kernel
from components.worker.kernel_channels import KernelChannels
from components.worker.kernel_disk import KernelDisks
from components.worker.kernel_environment import KernelEnvironment
from components.worker.master_client import ForkMasterProtocol
from components.worker.sandbox_policy import SandboxPolicy


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


class FakePart:
    """A started process as the supervisor sees it: C{ready}, C{ended}, C{running}, C{stop()}."""

    fakes = ForkMasterProtocol
    test_only = ("__init__", "come_up", "die")

    def __init__(self):
        self.ready = defer.Deferred()
        self.ended = defer.Deferred()
        self.running = True
        self.stopped = False

    def come_up(self, pid=1):
        self.ready.callback({"op": "ready", "pid": pid})

    def die(self, why="killed by signal 9"):
        self.running = False
        if not self.ready.called:
            self.ready.errback(RuntimeError(why))
        self.ended.callback(why)

    def stop(self):
        self.stopped = True
        self.die("stopped")
        return self.ended


class FakeKernelFiles:
    """A kernel's files in a plain directory (the real L{KernelFiles} calls, without a sandbox)."""

    fakes = KernelFiles
    test_only = ("__init__",)

    def __init__(self, root):
        self.root = root

    def write(self, path, data, offset):
        with open(os.path.join(self.root, path), "r+b" if offset else "wb") as f:
            f.seek(offset)
            f.write(data)

    def open_read(self, path):
        f = open(os.path.join(self.root, path), "rb")
        return f, os.fstat(f.fileno()).st_size


class FakeSubscription:
    fakes = Subscription
    test_only = ("__init__",)

    def __init__(self):
        self.active = True

    def unsubscribe(self):
        self.active = False
        return defer.succeed(None)


class FakeSubscribingSession:
    """The face's backend session: subscriptions work, or fail when told to."""

    fakes = ApplicationSession
    test_only = ("__init__",)

    def __init__(self, fail_subscribe):
        self.fail_subscribe = fail_subscribe
        self.subscriptions = []

    def subscribe(self, handler, topic=None, options=None, check_types=None):
        if self.fail_subscribe:
            return defer.fail(ApplicationError("wamp.error.not_authorized", "no"))
        self.subscriptions.append(FakeSubscription())
        return defer.succeed(self.subscriptions[-1])


class FakeLink:
    """The router's in-process link: records calls; a restart waits for the test (C{pending["restart"]})."""

    fakes = LocalLink
    test_only = ("__init__",)

    def __init__(self, fail_subscribe=False, kernel_id="ab" * 16):
        self.session = FakeSubscribingSession(fail_subscribe)
        self.calls = []
        self.pending = {}
        self.kernel_id = kernel_id

    def call(self, procedure, *args, timeout_ms=ANSWER_TIMEOUT_MS, **kwargs):
        self.calls.append(procedure)
        if procedure.endswith(".restart"):
            self.pending["restart"] = defer.Deferred()
            return self.pending["restart"]
        if procedure.endswith(".jupyter"):
            return defer.succeed(None)
        return defer.succeed({"kernel_id": self.kernel_id})


class FakePrincipal:
    fakes = Principal
    name, role, anonymous = "service", "service", False
    kernel_name = None

    def check_kernel(self, name):
        pass  # a service principal may start any kernelspec


class FakeChannelsConnection:
    """A Jupyter client's channels connection: records what is delivered to it."""

    fakes = ChannelsProtocol
    test_only = ("__init__",)

    def __init__(self):
        self.delivered = []

    def deliver(self, channel, msg):
        self.delivered.append((channel, msg))

    def refuse(self, reason):
        self.delivered.append(("refused", reason))

    def kernel_gone(self):
        pass


class FakeSpawners:
    """The port to the spawners: records every call as (method, args), with a Deferred the test fires."""

    fakes = SpawnerCalls
    test_only = ("__init__", "pending", "answer", "fail", "call")  # call: the WAMP session's own

    def __init__(self, address="10.0.0.1"):
        self.address = address  # every client's, as session_details tells it
        self.calls = []  # [(method name, args, Deferred)]
        self.lost = []
        self.gone_sessions = set()

    def _record(self, name, *args):
        d = defer.Deferred()
        self.calls.append((name, args, d))
        return d

    def pending(self, name):
        """The calls of C{name} not answered yet, oldest first: [(args, Deferred)]."""
        return [(args, d) for n, args, d in self.calls if n == name and not d.called]

    def answer(self, name, result):
        args, d = self.pending(name)[0]
        d.callback(result)
        return args

    def fail(self, name, error):
        args, d = self.pending(name)[0]
        d.errback(error)
        return args

    def call(self, procedure, *args, **kwargs):
        return self._record("call", procedure, *args)

    def hold(self, spawner_id, count):
        return self._record("hold", spawner_id, count)

    def hand_over(self, spawner_id, kernel_id, owner_session):
        return self._record("hand_over", spawner_id, kernel_id, owner_session)

    def start_kernel(self, spawner_id, owner_session, kernel_name, timeout_s):
        return self._record("start_kernel", spawner_id, owner_session, kernel_name)

    def shutdown_kernel(self, spawner_id, kernel_id, reason):
        self._record("shutdown_kernel", spawner_id, kernel_id)
        return defer.succeed(None)

    def rebind_kernel(self, spawner_id, kernel_id, token, owner_session):
        return self._record("rebind_kernel", spawner_id, kernel_id, token, owner_session)

    def session_details(self, session_id):
        if session_id in self.gone_sessions:
            return defer.succeed(None)
        return defer.succeed({"session": session_id, "transport": {"peer": "tcp4:{}:5000".format(self.address)}})

    def announce_lost(self, kernel_id, reason):
        self.lost.append(kernel_id)


class FakeSandbox:
    """The spawner's sandbox policy: hands out uids from a small range, records what it got back."""

    fakes = SandboxPolicy
    test_only = ("__init__",)

    def __init__(self, uids=(100001, 100002)):
        self.free = list(uids)
        self.released = []
        self.environment = KernelEnvironment()

    def allocate(self, kernel_name, uid=None, keep=()):
        if uid is None:
            if not self.free:
                return None
            uid = self.free.pop(0)
        return {"uid": uid, "gid": uid, "limits": {}}

    def release(self, uid):
        self.released.append(uid)
        self.free.append(uid)

    def prepare_dirs(self, spec, *paths):
        pass


class FakeDisks:
    """Kernels' directories as plain directories (no tmpfs)."""

    fakes = KernelDisks
    test_only = ("__init__",)

    def __init__(self):
        self.removed = []

    def make(self, path):
        os.makedirs(path)

    def remove(self, path):
        self.removed.append(path)


class FakeQueuedMaster:
    """A fork master whose forks wait in its queue until the test answers them (C{queued}: their Deferreds)."""

    fakes = ForkMasterProtocol
    test_only = ("__init__",)

    def __init__(self):
        self.queued = []
        self.signals = []

    def spawn(self, connection_file, cwd, env, log_file, sandbox=None, max_output_bytes=0):
        d = defer.Deferred()
        self.queued.append(d)
        return d

    def signal(self, pid, signum):
        self.signals.append((pid, signum))
