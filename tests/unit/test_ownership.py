"""components.control.ownership: the declared dead are forgotten (on a Clock)."""

import pytest
from twisted.internet.task import Clock

from components.control import ownership as ownership_module
from components.control.ownership import Ownership
from components.control.placement import Placement

pytestmark = pytest.mark.unit


def _parts():
    clock = Clock()
    placement = Placement(4)
    placement.add_spawner("w1", session=100, capacity=8)
    shut, lost = [], []
    ownership = Ownership(clock, placement, 60, lambda *a: shut.append(a[:2]), lambda *a: lost.append(a[0]))
    for kernel_id in ("k1", "k2", "k3"):
        placement.add_kernel(kernel_id, "w1", holder=1)
    return clock, placement, ownership, shut, lost


def test_the_kernels_of_a_worker_that_never_returns_are_forgotten():
    clock, placement, ownership, shut, lost = _parts()
    ownership.worker_left("w1", ["k1", "k2", "k3"])
    assert sorted(lost) == ["k1", "k2", "k3"] and ownership.sizes()["declared_dead_kernels"] == 3
    clock.advance(ownership_module.DECLARED_DEAD_KEPT_S - 1)
    assert ownership.is_declared_dead("k1")
    clock.advance(1)
    assert ownership.sizes() == {"orphaned_kernels": 0, "declared_dead_kernels": 0}
    assert not clock.getDelayedCalls()
    assert ownership.worker_returned("w1", ["k1"]) == set() and shut == []


def test_a_returning_worker_ends_what_it_still_runs_and_the_rest_is_forgotten():
    clock, placement, ownership, shut, _ = _parts()
    ownership.worker_left("w1", ["k1", "k2", "k3"])
    assert ownership.worker_returned("w1", ["k2", "k9"]) == {"k2"}
    assert shut == [("w1", "k2")]
    assert ownership.sizes()["declared_dead_kernels"] == 0 and not clock.getDelayedCalls()


def test_a_worker_leaving_twice_keeps_one_timer_and_all_its_dead():
    clock, placement, ownership, shut, _ = _parts()
    ownership.worker_left("w1", ["k1"])
    clock.advance(100)
    ownership.worker_left("w1", ["k2"])
    assert len(clock.getDelayedCalls()) == 1
    assert ownership.is_declared_dead("k1") and ownership.is_declared_dead("k2")
    clock.advance(ownership_module.DECLARED_DEAD_KEPT_S)
    assert ownership.sizes()["declared_dead_kernels"] == 0


def test_orphans_are_forgotten_when_their_grace_ends():
    clock, placement, ownership, shut, _ = _parts()
    ownership.holder_left(1)
    assert ownership.sizes()["orphaned_kernels"] == 3
    clock.advance(60)
    assert ownership.sizes()["orphaned_kernels"] == 0 and placement.sizes()["kernels"] == 0
    assert placement.sizes() == {
        "kernels": 0,
        "kernel_owners": 0,
        "owners_starting": 0,
        "kernel_addresses": 0,
        "addresses_starting": 0,
    }


def _ownership():
    from twisted.internet.task import Clock

    from components.control.ownership import Ownership

    clock = Clock()
    placement = Placement(4)
    placement.add_spawner("w1", session=100, capacity=8)
    shut, lost = [], []
    ownership = Ownership(
        clock,
        placement,
        60,
        lambda spawner, kernel, reason: shut.append((spawner, kernel, reason)),
        lambda kernel, reason: lost.append((kernel, reason)),
    )
    placement.add_kernel("k1", "w1", holder=1)
    placement.add_kernel("k2", "w1", holder=1)
    return clock, placement, ownership, shut, lost


def test_an_orphan_is_shut_down_after_the_grace_unless_resumed():
    clock, placement, ownership, shut, _ = _ownership()
    ownership.holder_left(1)
    assert ownership.is_orphaned("k1") and ownership.is_orphaned("k2")
    clock.advance(30)
    ownership.resumed("k1", 2)
    clock.advance(29.9)
    assert shut == []
    clock.advance(0.1)
    assert [(s, k) for s, k, _ in shut] == [("w1", "k2")] and "resumed within 60 s" in shut[0][2]
    assert placement.kernels_of(2) == [("k1", "w1")] and "k2" not in placement.kernels
    assert not clock.getDelayedCalls()


def test_a_worker_that_leaves_has_its_kernels_declared_dead_and_ended_when_it_returns():
    clock, placement, ownership, shut, lost = _ownership()
    ownership.holder_left(1)
    ownership.worker_left("w1", ["k1", "k2"])
    assert [k for k, _ in lost] == ["k1", "k2"] and "spawner w1" in lost[0][1]
    assert [call.getTime() for call in clock.getDelayedCalls()] == [3600.0], (
        "an orphan of a vanished worker waits for nothing; its declared dead are remembered for an hour, not for ever"
    )
    assert ownership.worker_returned("w1", ["k1"]) == {"k1"}
    assert ownership.worker_returned("w1", ["k1"]) == set(), "ended once"
    assert [(s, k) for s, k, _ in shut] == [("w1", "k1")]
    assert not ownership.is_declared_dead("k2"), "k2 died with its worker: forgotten when it came back without it"
    assert not clock.getDelayedCalls()


def test_a_kernel_that_ended_is_forgotten_and_its_timer_stops():
    clock, placement, ownership, shut, _ = _ownership()
    ownership.orphan("k1", "w1")
    ownership.ended("k1")
    clock.advance(120)
    assert shut == [] and "k1" not in placement.kernels
