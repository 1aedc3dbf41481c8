"""L{components.child.free_slots}, in a fresh interpreter: a forked child's allocations go to fresh pages."""

import pytest

pytestmark = pytest.mark.unit


FREE_SLOTS_PROBE = r'''
import gc, json, os, sys
from components.child.free_slots import FreeSlots

def private_kb():
    with open("/proc/self/smaps_rollup") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith("Private_"))

def child_cost():
    """What a forked child's private memory grows by when it allocates 20,000 small objects."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        before = private_kb()
        made = [bytes(40) for _ in range(20000)]
        os.write(w, str(private_kb() - before).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    cost = int(os.read(r, 64))
    os.close(r), os.close(w)
    return cost

# A master whose pools are full of holes: one object in ten of 400,000 freed.
kept = [o for i, o in enumerate([bytes(40) for _ in range(400000)]) if i % 10]
gc.collect()
gc.freeze()
unfilled = child_cost()
slots = FreeSlots().fill()
print(json.dumps({"unfilled_kb": unfilled, "filled_kb": child_cost(), "blocks": slots.blocks, "chunks": slots.chunks}))
'''


def test_free_slots_send_a_forked_childs_allocations_to_fresh_pages():
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
    result = subprocess.run(
        [sys.executable, "-c", FREE_SLOTS_PROBE], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["blocks"] >= 40000, "the freed objects' blocks were filled"
    assert measured["chunks"] > 0, "glibc's free chunks were filled"
    # Into the holes (about 5 a page), 20,000 objects copy ~4,000 pages; on fresh pages they fill ~400.
    assert measured["unfilled_kb"] > 8000
    assert measured["filled_kb"] < measured["unfilled_kb"] / 4
