"""The execution record's logic: numbering, replay from an item, live items after it, bounds, failures."""

import pytest
from twisted.internet import defer

from components.common import errors
from components.worker.execution_record import MAX_LISTENERS, ExecutionRecord, merged

pytestmark = pytest.mark.unit


def out(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


def ended(record, entry, **result):
    d = defer.Deferred()
    record.track(entry, d)
    d.callback(dict({"status": "ok", "execution_count": 1, "outputs": []}, **result))
    return d


def test_replay_from_an_item_then_live_items_then_the_result_in_order_and_once():
    record = ExecutionRecord(8, 1 << 20)
    entry = record.begin("t1")
    d = defer.Deferred()
    record.track(entry, d)
    for i in range(5):
        entry.add(out("line %d\n" % i))
    got = []
    end = record.find("t1").follow(2, got.append)
    entry.add(out("line 5\n"))
    d.callback({"status": "ok", "execution_count": 1, "outputs": []})
    # the missed items 2..4 come as one merged stream, then item 5 live
    assert [(g["seq"], g["next"], g["output"]["text"]) for g in got] == [
        (2, 5, "line 2\nline 3\nline 4\n"),
        (5, 6, "line 5\n"),
    ]
    result = end.result
    assert (result["execution"], result["tag"], result["next"]) == (1, "t1", 6)


def test_streams_of_different_names_and_other_outputs_are_not_merged():
    items = [out("a"), out("b", "stderr"), out("c"), {"output_type": "display_data", "data": {}}, out("d"), out("e")]
    assert [(s, e) for s, e, _ in merged(items)] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6)]


def test_numbers_tags_latest_and_listing():
    record = ExecutionRecord(8, 1 << 20)
    first = record.begin("a")
    ended(record, first)
    second = record.begin()
    third = record.begin()
    assert record.find() is third
    assert record.find(1) is first and record.find("a") is first
    assert [(e["execution"], e["status"]) for e in record.listing()] == [(1, "ok"), (2, "running"), (3, "queued")]
    with pytest.raises(errors.NotFound):
        record.find(9)
    with pytest.raises(errors.InvalidArgument):
        record.find(1.5)
    assert second.number == 2


def test_bounds_forget_the_oldest_ended_executions_never_a_running_one():
    record = ExecutionRecord(2, 1 << 20)
    running = record.begin()
    for _ in range(3):
        ended(record, record.begin())
    numbers = [e["execution"] for e in record.listing()]
    assert numbers == [1, 4]  # 1 still runs; 2 and 3 were forgotten
    with pytest.raises(errors.NotFound, match="keeps its last 2 executions"):
        record.find(2)
    assert running.number == 1

    small = ExecutionRecord(32, 10_000)
    big = small.begin()
    big.add(out("x" * 20_000))
    ended(small, big)
    ended(small, small.begin())
    assert [e["execution"] for e in small.listing()] == [2]


def test_a_died_execution_answers_attach_with_the_same_error():
    record = ExecutionRecord(8, 1 << 20)
    entry = record.begin()
    d = defer.Deferred()
    record.track(entry, d)
    d.addErrback(lambda f: None)
    d.errback(errors.KernelDied("the kernel died: memory", reason="memory"))
    failure = entry.follow(0, None)
    assert isinstance(failure.result.value, errors.KernelDied)
    failure.addErrback(lambda f: None)
    assert record.listing()[0]["status"] == "died"


def test_a_caller_that_leaves_stops_getting_items_and_followers_are_capped():
    record = ExecutionRecord(8, 1 << 20)
    entry = record.begin()
    got = []
    follower = entry.follow(0, got.append)
    follower.cancel()
    follower.addErrback(lambda f: None)
    entry.add(out("after\n"))
    assert got == []
    for _ in range(MAX_LISTENERS):
        entry.follow(0, None)
    with pytest.raises(errors.Capacity):
        entry.follow(0, None)
