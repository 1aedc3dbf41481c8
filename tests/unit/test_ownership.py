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
        placement.add_kernel(kernel_id, "w1", owner=1)
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
    ownership.owner_left(1)
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
