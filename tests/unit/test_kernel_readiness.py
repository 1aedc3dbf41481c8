"""L{components.worker.kernel_readiness} on a fake clock: what a starting kernel is asked, and when it counts ready."""

import types

import pytest
from twisted.internet.task import Clock

from components.common import errors
from components.worker.kernel_readiness import LAUNCHED_PROBE_INTERVAL_S, PROBE_INTERVAL_S, KernelReadiness
from tests.fakes import FakeChannels

pytestmark = pytest.mark.unit


def _channels():
    return FakeChannels(*[None] * 7)


def _ids(channels, msg_type):
    return [r[3] for r in channels.requests if r[1] == msg_type]


def _readiness(kernel_name="python3", start_timeout_s=30):
    clock, events = Clock(), []
    readiness = KernelReadiness(
        clock,
        types.SimpleNamespace(start_timeout_s=start_timeout_s),
        kernel_name == "python3",
        on_ready=lambda: events.append("ready"),
        on_failed=events.append,
    )
    return readiness, clock, events


def test_a_python_kernel_is_probed_until_iopub_shows_an_answer_then_warmed_up_then_ready():
    readiness, clock, events = _readiness()
    channels = _channels()
    readiness.begin()
    readiness.probe(channels)
    assert len(_ids(channels, "kernel_info_request")) == 1, "the probe is sent as soon as the channels are open"
    clock.pump([PROBE_INTERVAL_S] * 4)
    probes = _ids(channels, "kernel_info_request")
    assert len(probes) == 5, "asked again every interval while iopub shows nothing"
    readiness.iopub("someone else's", "status")
    assert not _ids(channels, "execute_request"), "only the status of one of our probes shows that iopub flows"
    readiness.iopub(probes[0], "status")  # a late answer to the first probe is as good as the last
    (warmup,) = channels.requests[-1:]
    assert warmup[1] == "execute_request" and warmup[2]["store_history"] is False, "a warm-up outside the history"
    clock.advance(PROBE_INTERVAL_S * 10)
    assert len(_ids(channels, "kernel_info_request")) == 5, "no more probes once iopub flows"
    assert events == [], "not ready before the warm-up's reply"
    readiness.reply("another", "execute_reply")
    assert events == []
    readiness.reply(warmup[3], "execute_reply")
    assert events == ["ready"]
    clock.advance(60)
    assert events == ["ready"], "the start timeout was stopped"


def test_a_start_that_never_answers_fails_with_capacity_after_the_timeout_and_probes_stop():
    readiness, clock, events = _readiness(start_timeout_s=5)
    channels = _channels()
    readiness.begin()
    readiness.probe(channels)
    clock.pump([PROBE_INTERVAL_S] * int(4.9 / PROBE_INTERVAL_S))
    assert events == []
    clock.advance(0.2)
    (failure,) = events
    assert isinstance(failure, errors.Capacity) and "did not start within 5 s" in str(failure)
    readiness.stop()  # what the kernel does when it dies of it
    sent = len(channels.requests)
    clock.advance(10)
    assert len(channels.requests) == sent and len(events) == 1, "nothing is sent or reported after the start ended"


def test_the_timeout_runs_from_the_fork_even_before_the_channels_open():
    readiness, clock, events = _readiness(start_timeout_s=5)
    readiness.begin()
    clock.advance(5)
    assert len(events) == 1 and isinstance(events[0], errors.Capacity)


def test_a_launched_kernel_is_ready_on_iopub_without_a_warm_up_and_reasked_after_a_shell_answer():
    readiness, clock, events = _readiness(kernel_name="ir")
    channels = _channels()
    readiness.begin()
    readiness.probe(channels)
    clock.advance(PROBE_INTERVAL_S * 5)
    (first,) = _ids(channels, "kernel_info_request")
    readiness.reply(first, "kernel_info_reply")  # shell answered; iopub did not show it (the slow joiner)
    clock.advance(PROBE_INTERVAL_S)
    assert len(_ids(channels, "kernel_info_request")) == 2
    clock.advance(LAUNCHED_PROBE_INTERVAL_S)
    assert len(_ids(channels, "kernel_info_request")) == 3
    readiness.iopub(first, "status")
    assert events == ["ready"] and not _ids(channels, "execute_request")


def test_a_new_start_forgets_the_probes_of_the_last_one():
    readiness, clock, events = _readiness()
    old = _channels()
    readiness.begin()
    readiness.probe(old)
    readiness.begin()  # a restart: a new process, new channels
    new = _channels()
    readiness.probe(new)
    readiness.iopub(_ids(old, "kernel_info_request")[0], "status")
    assert not _ids(new, "execute_request"), "an answer to the old process's probe says nothing of the new one"
    readiness.iopub(_ids(new, "kernel_info_request")[0], "status")
    assert _ids(new, "execute_request")
