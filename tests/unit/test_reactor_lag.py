"""L{components.worker.reactor_lag} on a fake clock, and L{components.worker.oneshot_files} with inline blocking work."""

import tempfile
import types

import pytest
from prometheus_client import generate_latest
from twisted.internet import defer
from twisted.internet.task import Clock

from components.worker.metrics import SpawnerMetrics
from components.worker.oneshot_files import OneshotFiles
from components.worker.reactor_lag import ReactorLag
from tests.fakes import FakeKernelFiles

pytestmark = pytest.mark.unit


def test_a_timer_on_time_shows_no_lag_and_a_held_reactor_shows_how_long():
    clock, seen = Clock(), []
    probe = ReactorLag(clock, seen.append, interval=0.05, window=60)
    probe.start()
    clock.pump([0.05] * 10)
    assert seen == pytest.approx([0.0] * 10, abs=1e-9) and probe.recent_max == pytest.approx(0.0, abs=1e-9)
    clock.advance(0.75)  # the reactor was held: the timer asked for at +0.05 runs at +0.75
    assert seen[-1] == pytest.approx(0.70) and probe.recent_max == pytest.approx(0.70)
    clock.advance(0.05)
    assert seen[-1] == pytest.approx(0.0, abs=1e-9), "the next one is on time again"
    probe.stop()
    clock.advance(10)
    assert len(seen) == 12, "a stopped probe observes nothing"


def test_the_max_forgets_a_block_two_windows_old():
    clock = Clock()
    probe = ReactorLag(clock, interval=0.05, window=1.0)
    probe.start()
    clock.advance(0.35)
    assert probe.recent_max == pytest.approx(0.30)
    clock.pump([0.05] * 30)  # the next window: the old max still shows
    assert probe.recent_max == pytest.approx(0.30)
    clock.pump([0.05] * 30)  # and the one after: forgotten
    assert probe.recent_max == pytest.approx(0.0, abs=1e-9)


def test_the_spawner_metrics_export_the_histogram_and_the_recent_max():
    clock, metrics = Clock(), SpawnerMetrics()
    metrics.lag_probe(clock).start()
    clock.advance(0.05)
    clock.advance(1.55)
    text = generate_latest(metrics.registry).decode()
    assert 'cell_spawner_reactor_lag_seconds_bucket{le="1.0"} 1.0' in text
    assert 'cell_spawner_reactor_lag_seconds_bucket{le="2.5"} 2.0' in text
    assert "cell_spawner_reactor_lag_max_seconds 1.5" in text


def test_oneshot_files_go_through_the_blocking_seam_and_respect_the_budget():
    calls = []

    def blocking(f, *args):
        calls.append(f.__name__)
        return defer.maybeDeferred(f, *args)

    kernel = types.SimpleNamespace(files=FakeKernelFiles(tempfile.mkdtemp()))
    files = OneshotFiles(blocking, budget=5)
    files.put(kernel, {"a": b"abc", "b": "de"})
    result = {"files": [{"name": "a", "size": 3}, {"name": "b", "size": 2}, {"name": "a", "size": 3}]}
    done = []
    files.collect(kernel, result).addCallback(done.append)
    assert done == [result]
    assert [e.get("data") for e in result["files"]] == [b"abc", b"de", None]
    assert result["files"][2]["truncated"] is True
    assert calls == ["_write_all", "_read_all"], "both the writes and the reads left the reactor"
