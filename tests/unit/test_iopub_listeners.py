"""L{components.worker.iopub_listeners}: a kernel's iopub is published only while someone listens."""

import pytest

from tests.fakes import FakeMetaSession

pytestmark = pytest.mark.unit


def test_iopub_listeners_publish_everything_until_synced_then_only_what_is_subscribed():
    from components.worker.iopub_listeners import IopubListeners

    a, b, c = "cell.kernel.a.iopub", "cell.kernel.b.iopub", "cell.kernel.c.iopub"
    face = "cell.kernel.b.jupyter"
    listeners = IopubListeners()
    assert listeners.wanted(a) and listeners.wanted(b), "before the first sync nothing is known: publish"
    session = FakeMetaSession(
        {
            1: {"id": 1, "uri": a, "match": "exact"},
            2: {"id": 2, "uri": "cell.status", "match": "exact"},
            6: {"id": 6, "uri": face, "match": "exact"},
        }
    )
    listeners.sync(session, ["a", "b"])
    assert listeners.wanted(a) and not listeners.wanted(b) and not listeners.wanted(c)
    assert listeners.wanted(face), "the Jupyter face's subscription, made before the spawner (re)joined, is seen"
    listeners.created({"id": 3, "uri": b, "match": "exact"})
    assert listeners.wanted(b)
    listeners.deleted(3)
    assert not listeners.wanted(b), "the last subscriber left"
    listeners.created({"id": 4, "uri": "cell.kernel.", "match": "prefix"})
    assert listeners.wanted(b) and listeners.wanted(c), "a prefix subscription receives every kernel's topic"
    listeners.deleted(4)
    listeners.created({"id": 5, "uri": "cell.kernel..iopub", "match": "wildcard"})
    assert listeners.wanted(c) and not listeners.wanted("cell.kernel.c.other")
    listeners.deleted(5)
    assert not listeners.wanted(c)
    listeners.reset()
    assert listeners.wanted(c), "after leaving the router, publish everything again until the next sync"


def test_iopub_listeners_sync_reads_prefix_subscriptions_and_skips_vanished_ones():
    from components.worker.iopub_listeners import IopubListeners

    session = FakeMetaSession({7: {"id": 7, "uri": "cell.kernel.x", "match": "prefix"}}, vanished=[8])
    listeners = IopubListeners()
    listeners.sync(session, [])
    assert listeners.wanted("cell.kernel.xyz.iopub") and not listeners.wanted("cell.kernel.abc.iopub")
