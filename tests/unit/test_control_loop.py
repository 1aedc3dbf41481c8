"""L{components.child.control_loop}: no request ends the loop of the fork master or the one-shot template."""

import errno
import os

import pytest

from components.child.control_loop import ControlLoop

pytestmark = pytest.mark.unit


def test_a_failing_request_is_answered_and_the_next_served(capfd):
    served, answered = [], []

    def on_request(request):
        if request["op"] == "spawn" and request["ref"] == "1":
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")  # what a refused fork raises
        served.append(request)

    r, w = os.pipe()
    try:
        loop = ControlLoop(on_request, lambda: None, stdin_fd=r, on_error=lambda req, exc: answered.append((req, exc)))
        os.write(w, b'{"op": "spawn", "ref": "1"}\nnot json\n[1, 2]\n\n{"op": "spawn", "ref": "2"}\n')
        loop._read_requests()
    finally:
        os.close(r)
        os.close(w)
    assert served == [{"op": "spawn", "ref": "2"}]
    assert [(req["ref"], exc.errno) for req, exc in answered] == [("1", errno.EAGAIN)]
    err = capfd.readouterr().err
    assert "request 'spawn' failed: BlockingIOError" in err and err.count("skipped a request") == 2


def test_an_error_in_a_wake_up_is_logged_and_the_loop_goes_on(capfd):
    def broken():
        raise ValueError("a bug")

    ControlLoop._guarded(broken)
    assert "ValueError: a bug" in capfd.readouterr().err
