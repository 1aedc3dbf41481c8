"""L{components.worker.kernel_execution} on a fake clock, through the L{Kernel} calls that reach it.

The process and the ZMQ channels are the fakes of tests/fakes.py; what a
caller of C{execute}, C{input} and C{shell_request} sees is asserted.
"""

import shutil
import signal
import tempfile

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from components.common import errors
from components.common.config import SpawnerConfig
from components.worker.kernel import Kernel, KernelHost
from components.worker.kernel_execution import INTERRUPTED_REPLY_GRACE_S
from components.worker.kernel_state import KernelState
from tests.fakes import FakeChannels, FakeMaster

pytestmark = pytest.mark.unit

RESULT = {"status": "ok", "execution_count": 1}
IDLE = {"execution_state": "idle"}


class ExecutionTests(SynchronousTestCase):
    def setUp(self):
        self.clock, self.master, self.channels, self.published = Clock(), FakeMaster(), [], []
        self.config = SpawnerConfig(
            execute_timeout_s=60,
            interrupt_grace_s=2,
            request_timeout_s=5,
            max_output_bytes=100,
            # nothing answers the heartbeat here: that is the watchdog's, tested in tests/test_kernel_timing.py
            heartbeat_interval_s=600,
            heartbeat_timeout_s=1200,
        )
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root, True)
        host = KernelHost(
            self.clock,
            self.config,
            self.master,
            None,
            root,
            root,
            channels_factory=lambda *a, **kw: self.channels.append(FakeChannels(*a, **kw)) or self.channels[-1],
            run_blocking=lambda f, *args: defer.maybeDeferred(f, *args),
        )
        self.kernel = Kernel(host, on_iopub=lambda k, m: self.published.append(m), on_dead=lambda k, r: None)
        self.ready()
        self.kernel.assign(owner=1)

    def ready(self):
        d = self.kernel.start() if not self.channels else defer.succeed(None)
        channels = self.channels[-1]
        channels.iopub(channels.last("kernel_info_request"), "status", IDLE)
        channels.reply(channels.last("execute_request"), "execute_reply", RESULT)  # the warm-up
        self.successResultOf(d)
        return channels

    def answer(self, channels, msg_id, reply=RESULT):
        channels.reply(msg_id, "execute_reply", reply)
        channels.iopub(msg_id, "status", IDLE)

    def test_a_result_needs_both_reply_and_idle_and_carries_the_outputs_seen_as_they_came(self):
        channels, seen = self.channels[-1], []
        d = self.kernel.execute("print(1)", progress=seen.append)
        msg_id = channels.last("execute_request")
        channels.iopub(msg_id, "stream", {"name": "stdout", "text": "1\n"})
        assert seen == [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
        channels.iopub(msg_id, "status", IDLE)
        self.assertNoResult(d)
        channels.reply(msg_id, "execute_reply", RESULT)
        result = self.successResultOf(d)
        assert result["status"] == "ok" and result["outputs"] == seen and result["files"] == []
        assert self.published[-1]["header"]["msg_type"] == "status", "the owner saw the kernel's iopub too"

    def test_past_its_timeout_the_kernel_is_interrupted_then_replaced_if_it_ignores_that(self):
        channels = self.channels[-1]
        d = self.kernel.execute("while True: pass", timeout=10)
        self.clock.advance(10)
        assert self.master.signals[-1][1] == signal.SIGINT
        self.assertNoResult(d)
        self.clock.advance(self.config.interrupt_grace_s)
        result = self.successResultOf(d)
        assert result["status"] == "timeout" and result["kernel_restarted"] is True
        assert len(self.master.spawned) == 2 and self.kernel.state == KernelState.STARTING, (
            "a fresh process replaces it"
        )
        assert self.published[-1]["content"] == {"execution_state": "restarting"}
        assert channels.closed and self.ready() is not channels
        assert self.kernel.state == KernelState.READY

    def test_a_one_shot_past_its_timeout_is_killed_at_once(self):
        d = self.kernel.execute("while True: pass", timeout=10, kill_on_timeout=True)
        self.clock.advance(10)
        assert self.successResultOf(d)["status"] == "timeout"
        assert self.kernel.state == KernelState.DEAD and "time limit" in self.kernel.dead_reason

    def test_an_interrupted_execution_that_goes_idle_without_a_reply_ends_as_interrupted(self):
        channels = self.channels[-1]
        d = self.kernel.execute("x")
        self.kernel.interrupt()
        channels.iopub(channels.last("execute_request"), "status", IDLE)
        self.clock.advance(INTERRUPTED_REPLY_GRACE_S)
        result = self.successResultOf(d)
        assert (result["status"], result["ename"]) == ("error", "KeyboardInterrupt")

    def test_cancelling_an_execution_detaches_its_caller_and_the_code_runs_on_into_the_record(self):
        channels, seen = self.channels[-1], []
        signals = len(self.master.signals)
        d = self.kernel.execute("print('later')", progress=seen.append, tag="t")
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        assert len(self.master.signals) == signals, "the kernel is not interrupted"
        msg_id = channels.last("execute_request")
        channels.iopub(msg_id, "stream", {"name": "stdout", "text": "later\n"})
        self.answer(channels, msg_id)
        assert seen == [], "nothing more goes to the caller that left"
        result = self.successResultOf(self.kernel.executions.record.find("t").follow(0, None))
        assert result["status"] == "ok" and result["outputs"][0]["text"] == "later\n"

    def test_output_past_the_cap_is_cut_once_with_a_notice(self):
        channels = self.channels[-1]
        d = self.kernel.execute("print('x' * 1000)")
        msg_id = channels.last("execute_request")
        for _ in range(3):
            channels.iopub(msg_id, "stream", {"name": "stdout", "text": "x" * 80})
        self.answer(channels, msg_id)
        outputs = self.successResultOf(d)["outputs"]
        notices = [o for o in outputs if "output truncated" in o.get("text", "")]
        assert len(notices) == 1 and sum(len(o["text"]) for o in outputs if o["name"] == "stdout") <= 100

    def test_input_answers_the_pending_input_request_and_only_that(self):
        channels, seen = self.channels[-1], []
        with pytest.raises(errors.InvalidArgument, match="no input is pending"):
            self.kernel.input("nobody asked")
        self.kernel.execute("input('name? ')", allow_stdin=True, progress=seen.append)
        msg_id = channels.last("execute_request")
        request = {"header": {"msg_type": "input_request", "msg_id": "ask"}, "parent_header": {"msg_id": msg_id}}
        channels.on_stdin({**request, "content": {"prompt": "name? "}})
        assert seen == [{"output_type": "input_request", "prompt": "name? ", "password": False}]
        self.kernel.input("Ada")
        assert channels.requests[-1][:3] == ("stdin", "input_reply", {"value": "Ada"})
        assert channels.sent[channels.requests[-1][3]]["parent"]["msg_id"] == "ask"
        with pytest.raises(errors.InvalidArgument):
            self.kernel.input("twice")

    def test_a_shell_request_gets_the_reply_content_or_times_out(self):
        channels = self.channels[-1]
        d = self.kernel.shell_request("complete_request", {"code": "pri", "cursor_pos": 3})
        channels.reply(channels.last("complete_request"), "complete_reply", {"matches": ["print"]})
        assert self.successResultOf(d) == {"matches": ["print"]}
        d = self.kernel.shell_request("inspect_request", {"code": "x", "cursor_pos": 1})
        self.clock.advance(self.config.request_timeout_s)
        self.failureResultOf(d, errors.Timeout)

    def test_a_restart_or_death_fails_what_is_pending(self):
        d = self.kernel.execute("x")
        self.kernel.restart()
        assert "restarted" in str(self.failureResultOf(d, errors.KernelDied).value)
        self.ready()
        d = self.kernel.shell_request("inspect_request", {})
        self.kernel.shutdown()
        self.failureResultOf(d, errors.KernelDied)
        with pytest.raises(errors.NotFound, match="is dead"):
            self.kernel.execute("x")
