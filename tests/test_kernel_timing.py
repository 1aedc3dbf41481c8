"""The kernel's clocks (start, timeouts, heartbeat, idle, lifespan), driven by a fake clock.

The process and the ZMQ channels are replaced by recorders (tests/fakes.py); everything else
is the real L{Kernel}.  Real processes are covered in test_kernels.py.
"""

import signal

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from components.common import errors
from components.common.config import SpawnerConfig
from components.worker.kernel import Kernel, KernelHost
from tests.fakes import FakeChannels, FakeMaster, FakePoolKernel

pytestmark = pytest.mark.unit


class KernelTimingTests(SynchronousTestCase):
    def setUp(self):
        import tempfile

        self.clock = Clock()
        self.master = FakeMaster()
        self.config = SpawnerConfig(
            execute_timeout_s=300,
            interrupt_grace_s=2,
            idle_timeout_s=100,
            max_lifespan_s=1000,
            heartbeat_interval_s=2,
            heartbeat_timeout_s=6,
            start_timeout_s=30,
        )
        self.channels = []
        self.published = []
        self.dead = []
        root = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, root, True)

        def factory(*args, **kwargs):
            channels = FakeChannels(*args, **kwargs)
            self.channels.append(channels)
            return channels

        host = KernelHost(
            self.clock,
            self.config,
            self.master,
            None,
            root,
            root,
            channels_factory=factory,
            run_blocking=lambda f, *args: defer.maybeDeferred(f, *args),
        )
        self.kernel = Kernel(
            host, on_iopub=lambda k, m: self.published.append(m), on_dead=lambda k, r: self.dead.append(r)
        )

    def make_ready(self):
        d = self.kernel.start()
        channels = self.channels[-1]
        probe = channels.last("kernel_info_request")
        channels.iopub(probe, "status", {"execution_state": "idle"})
        self.assertNoResult(d)
        warmup = channels.last("execute_request")
        self.assertFalse(channels.requests[-1][2]["store_history"], "the warm-up leaves no trace in the user's history")
        channels.reply(warmup, "execute_reply", {"status": "ok"})
        self.assertIs(self.successResultOf(d), self.kernel)
        return channels

    def test_ready_only_once_iopub_answers_the_probe(self):
        d = self.kernel.start()
        channels = self.channels[-1]
        self.assertNoResult(d)
        from components.worker.kernel import PROBE_INTERVAL_S

        self.clock.advance(PROBE_INTERVAL_S)
        self.clock.advance(PROBE_INTERVAL_S)
        self.assertEqual(len([r for r in channels.requests if r[1] == "kernel_info_request"]), 3)
        channels.iopub(channels.last("kernel_info_request"), "status", {"execution_state": "busy"})
        channels.reply(channels.last("execute_request"), "execute_reply", {"status": "ok"})
        self.successResultOf(d)
        self.assertEqual(self.kernel.state, "ready")

    def test_start_gives_up_after_start_timeout(self):
        d = self.kernel.start()
        self.clock.advance(self.config.start_timeout_s)
        self.failureResultOf(d, errors.Capacity)
        self.assertEqual(self.kernel.state, "dead")
        self.assertIn((self.master.spawned[0], signal.SIGKILL), self.master.signals)

    def test_execute_finishes_on_reply_and_idle(self):
        channels = self.make_ready()
        self.kernel.assign(owner=1)
        d = self.kernel.execute("print(1)")
        msg_id = channels.last("execute_request")
        channels.iopub(msg_id, "stream", {"name": "stdout", "text": "1\n"})
        channels.reply(msg_id, "execute_reply", {"status": "ok", "execution_count": 1})
        self.assertNoResult(d)
        channels.iopub(msg_id, "status", {"execution_state": "idle"})
        result = self.successResultOf(d)
        self.assertEqual(result["outputs"], [{"output_type": "stream", "name": "stdout", "text": "1\n"}])

    def test_timeout_interrupts_then_replaces_a_stubborn_kernel(self):
        channels = self.make_ready()
        self.kernel.assign(owner=1)
        d = self.kernel.execute("while True: pass", timeout=5)
        self.run_for(5, channels)
        self.assertEqual(self.master.signals[-1], (self.master.spawned[0], signal.SIGINT))
        self.assertNoResult(d)
        self.run_for(self.config.interrupt_grace_s, channels)
        result = self.successResultOf(d)
        self.assertEqual(result["status"], "timeout")
        self.assertTrue(result["kernel_restarted"])
        self.assertEqual(len(self.master.spawned), 2, "a fresh process replaces the stubborn one")
        self.assertIn((self.master.spawned[0], signal.SIGKILL), self.master.signals)
        self.assertTrue(channels.closed)

    def test_timeout_with_a_kernel_that_obeys_the_interrupt(self):
        channels = self.make_ready()
        self.kernel.assign(owner=1)
        d = self.kernel.execute("import time; time.sleep(100)", timeout=5)
        msg_id = channels.last("execute_request")
        self.run_for(5, channels)
        channels.reply(
            msg_id, "execute_reply", {"status": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": []}
        )
        channels.iopub(msg_id, "status", {"execution_state": "idle"})
        self.assertEqual(self.successResultOf(d)["status"], "timeout")
        self.assertEqual(len(self.master.spawned), 1)
        self.assertEqual(self.kernel.state, "ready")

    def run_for(self, seconds, channels):
        """Advance time in steps, with the kernel answering its heartbeat."""
        for _ in range(int(seconds)):
            self.clock.advance(1)
            channels.on_pong()

    def test_a_caller_timeout_cannot_exceed_the_server_limit(self):
        channels = self.make_ready()
        d = self.kernel.execute("x", timeout=10**6)
        self.run_for(self.config.execute_timeout_s - 1, channels)
        self.assertEqual(self.master.signals, [])
        self.run_for(1, channels)
        self.assertEqual(self.master.signals[-1][1], signal.SIGINT)
        d.addErrback(lambda f: None)
        self.kernel.shutdown()

    def test_silent_heartbeat_kills_and_fails_pending_calls(self):
        channels = self.make_ready()
        self.kernel.assign(owner=1)
        d = self.kernel.execute("x")
        for _ in range(2):
            self.clock.advance(self.config.heartbeat_interval_s)
            channels.on_pong()
        self.assertEqual(self.kernel.state, "ready")
        self.clock.advance(self.config.heartbeat_timeout_s + self.config.heartbeat_interval_s)
        self.assertEqual(self.kernel.state, "dead")
        self.failureResultOf(d, errors.KernelDied)
        self.assertEqual(self.published[-1]["content"]["execution_state"], "dead")
        self.assertIn("heartbeat", self.published[-1]["content"]["reason"])
        self.assertEqual(len(self.dead), 1)

    def test_idle_kernel_is_shut_down_but_a_busy_one_is_not(self):
        channels = self.make_ready()
        self.kernel.assign(owner=1)
        d = self.kernel.execute("long()", timeout=500)
        for _ in range(60):  # keep the heartbeat answered for 120 s
            self.clock.advance(2)
            channels.on_pong()
        self.assertEqual(self.kernel.state, "ready", "a running execution is not idleness")
        msg_id = channels.last("execute_request")
        channels.reply(msg_id, "execute_reply", {"status": "ok", "execution_count": 1})
        channels.iopub(msg_id, "status", {"execution_state": "idle"})
        self.successResultOf(d)
        for _ in range(50):
            self.clock.advance(2)
            channels.on_pong()
        self.assertEqual(self.kernel.state, "dead")
        self.assertIn("idle", self.dead[0])

    def test_lifespan_ends_even_a_busy_kernel(self):
        channels = self.make_ready()
        self.kernel.assign(owner=1)
        for _ in range(500):
            self.kernel.touch()
            self.clock.advance(2)
            channels.on_pong()
        self.assertEqual(self.kernel.state, "dead")
        self.assertIn("lifespan", self.dead[0])

    def test_process_exit_kills_the_kernel_once(self):
        self.make_ready()
        self.kernel.assign(owner=1)
        self.kernel.process_exited(self.master.spawned[0], -9, False)
        self.kernel.process_exited(self.master.spawned[0], -9, False)
        self.assertEqual(len(self.dead), 1)
        self.assertIn("SIGKILL", self.dead[0])

    def test_exit_reasons_name_the_limit(self):
        self.make_ready()
        self.assertIn("CPU time limit of 600 s", self.kernel.process.exit_reason(-24, False))
        self.assertIn("memory limit of 1024 MB", self.kernel.process.exit_reason(-9, True))
        self.assertIn("status 3", self.kernel.process.exit_reason(3, False))

    def test_exit_of_a_replaced_process_is_ignored(self):
        self.make_ready()
        self.kernel.assign(owner=1)
        old = self.master.spawned[0]
        self.kernel.restart()
        self.kernel.process_exited(old, -9)
        self.assertEqual(self.dead, [])

    def test_a_jupyter_clients_request_goes_under_its_own_ids_with_its_metadata_and_buffers(self):
        from components.worker import jupyter_messages

        channels = self.make_ready()
        self.kernel.assign(owner=1)
        header = {"msg_id": "client-1", "msg_type": "execute_request", "session": "s1", "username": "u"}
        message = jupyter_messages.check(
            "shell",
            {
                "header": header,
                "parent_header": {"msg_id": "p0"},
                "metadata": {"cellId": "c1"},
                "content": {"code": "1"},
                "buffers": [b"\x00\x01"],
            },
            self.config,
        )
        self.assertEqual(self.kernel.jupyter_send(message), "client-1", "the client's msg_id, not one of ours")
        self.assertEqual(channels.requests[-1][:2], ("shell", "execute_request"))
        sent = channels.sent["client-1"]
        self.assertEqual(sent["header"]["msg_id"], "client-1")
        self.assertEqual(
            (sent["parent"], sent["metadata"], sent["buffers"]), ({"msg_id": "p0"}, {"cellId": "c1"}, [b"\x00\x01"])
        )
        comm = self.kernel.send_comm("comm_msg", {"comm_id": "c", "data": {}}, {"m": 1}, [b"x"])
        self.assertEqual((channels.sent[comm]["metadata"], channels.sent[comm]["buffers"]), ({"m": 1}, [b"x"]))


def test_pool_refills_after_its_delay_and_hands_out_at_once():
    from components.worker.pool import KernelPool

    successResultOf = SynchronousTestCase().successResultOf
    clock = Clock()
    started = []
    pool = KernelPool(clock, 2, lambda: FakePoolKernel(started), room=lambda: 10, refill_delay_s=0.1)
    pool.refill()
    assert len(started) == 2
    for kernel, d in started:
        kernel.state = "ready"
        d.callback(kernel)
    assert pool.ready_count == 2
    got = successResultOf(pool.acquire())
    assert got is started[0][0] and pool.ready_count == 1
    assert len(started) == 2, "no fork while the kernel just handed out starts its work"
    clock.advance(0.05)
    successResultOf(pool.acquire())
    assert len(started) == 2, "one refill is pending, not one per hand-out"
    clock.advance(0.05)
    assert len(started) == 4, "the refill forks once the delay has passed"
    d = pool.acquire()  # pool empty: a start beyond the pool forks at once
    assert len(started) == 5 and not d.called
    pool.close()
    assert not clock.getDelayedCalls(), "closing cancels a pending refill"


class InterruptedBeforeItRanTests(SynchronousTestCase):
    """ipykernel drops a request hit by SIGINT before its code runs: no reply, only idle."""

    setUp = KernelTimingTests.setUp
    make_ready = KernelTimingTests.make_ready

    def interrupted_then_idle(self):
        """An execute, interrupted, whose kernel then says idle (the reply may or may not follow)."""
        channels = self.make_ready()
        self.kernel.assign(owner=1)
        d = self.kernel.execute("while True: pass")
        msg_id = channels.last("execute_request")
        self.kernel.interrupt()
        channels.iopub(msg_id, "status", {"execution_state": "idle"})
        return channels, msg_id, d

    def test_an_interrupted_execution_without_a_reply_ends_as_interrupted(self):
        channels, msg_id, d = self.interrupted_then_idle()
        self.assertNoResult(d)
        self.clock.advance(1.0)
        result = self.successResultOf(d)
        self.assertEqual((result["status"], result["ename"]), ("error", "KeyboardInterrupt"))

    def test_a_reply_that_comes_late_still_wins(self):
        channels, msg_id, d = self.interrupted_then_idle()
        self.clock.advance(0.5)
        channels.reply(
            msg_id,
            "execute_reply",
            {"status": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": ["tb"]},
        )
        self.assertEqual(self.successResultOf(d)["traceback"], ["tb"])
        self.clock.advance(1.0)
