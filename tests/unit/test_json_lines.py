"""L{components.worker.json_lines}: a child's line that cannot be handled is logged (bounded) and skipped."""

import pytest
from twisted.logger import globalLogPublisher

from components.worker.json_lines import BAD_LINES_LOGGED, JsonLinesProcess

pytestmark = pytest.mark.unit


class Child(JsonLinesProcess):
    def __init__(self):
        super().__init__()
        self.events = []

    def event_received(self, event):
        if event.get("op") == "boom":
            raise KeyError("ref")
        self.events.append(event)


def test_bad_lines_are_skipped_and_logged_a_bounded_number_of_times():
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        child = Child()
        child.outReceived(b'{"op": "a"}\nnot json\n[1]\n{"op": "boom"}\n' + b"x" * 10_000 + b'\n{"op": "b"}\n')
        assert child.events == [{"op": "a"}, {"op": "b"}], "the good lines around the bad ones are handled"
        child.outReceived(b"garbage\n" * 1000)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    bad = [e for e in logged if "could not be handled" in e.get("log_format", "")]
    assert child.bad_lines == 1004
    assert len(bad) == BAD_LINES_LOGGED, "the log is bounded whatever the child writes"
    assert all(len(e["line"]) <= 200 for e in bad)


def test_ended_fires_with_the_reason():
    from twisted.python.failure import Failure

    child = Child()
    child.connectionMade()
    child.processEnded(Failure(RuntimeError("killed")))
    assert not child.running
    assert str(child.ended.result) == "killed"
