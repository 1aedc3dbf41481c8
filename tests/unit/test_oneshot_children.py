"""components.child.oneshot_children: the template's ``done`` event does not carry the outputs again.

The outputs went one by one as ``output`` events; the ``done`` event carried
them all a second time (up to 2 x max_output_bytes of JSON a call, which the
spawner ignored).  The real template, run as the spawner runs it, without a
sandbox.
"""

import json
import os
import selectors
import subprocess
import time

import pytest

from tests.node import ROOT

pytestmark = pytest.mark.unit

KERNEL_PYTHON = os.path.join(ROOT, ".kernel-venv", "bin", "python")


def events_until_done(proc, deadline_s):
    """The template's events (JSON lines on its stdout) up to the first ``done``, read with a deadline."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + deadline_s
    events, buf = [], b""
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no done event within {} s: {}".format(deadline_s, events[-3:])
        if not selector.select(left):
            continue
        chunk = os.read(proc.stdout.fileno(), 1 << 16)
        assert chunk, "the template exited: {}".format(events[-3:])
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            events.append((len(line), json.loads(line)))
            if events[-1][1]["op"] == "done":
                return events


def test_the_done_event_carries_the_reply_and_no_output(tmp_path):
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": ROOT, "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [KERNEL_PYTHON, "-m", "components.child.oneshot", "--preload", "", "--max-children", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=str(tmp_path),
    )
    try:
        request = {
            "op": "run",
            "id": "r1",
            "code": "for i in range(200): print('x' * 1000)\n6*7",
            "timeout": 30,
            "user_expressions": {},
            "stop_on_error": True,
            "max_output_bytes": 1 << 20,
        }
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.flush()
        events = events_until_done(proc, 60)
    finally:
        proc.kill()
        proc.wait(10)
    outputs = [event["output"] for _, event in events if event["op"] == "output"]
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert text.count("x" * 1000) == 200 and outputs[-1]["data"]["text/plain"] == "42"
    size, done = events[-1]
    assert done == {"op": "done", "id": "r1", "reply": {"status": "ok", "execution_count": 1}}
    assert size < 200, "the done event is the reply alone, not 200 KB of outputs again"
