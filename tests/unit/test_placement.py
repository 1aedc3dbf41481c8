"""L{components.control.placement}: where a kernel starts, and the caps per session and per address."""

import pytest

from components.common import errors
from components.control.placement import Placement

pytestmark = pytest.mark.unit


def test_placement_prefers_most_free_capacity_and_caps_sessions():
    p = Placement(max_kernels_per_session=2)
    p.add_spawner("a", session=1, capacity=2)
    p.add_spawner("b", session=2, capacity=3)
    first = p.reserve(holder=10)
    assert first.spawner_id == "b"
    second = p.reserve(holder=10)
    assert second.spawner_id in ("a", "b")
    with pytest.raises(errors.Capacity):
        p.reserve(holder=10)
    p.release(10, first.spawner_id)
    p.add_kernel("k1", first.spawner_id, 10)
    with pytest.raises(errors.Capacity):
        p.reserve(holder=10)


def test_placement_reports_no_room():
    p = Placement(max_kernels_per_session=4)
    with pytest.raises(errors.Capacity, match="no kernel can be had"):
        p.reserve(holder=1)
    p.add_spawner("a", session=1, capacity=1)
    p.add_kernel("k", "a", 5)
    with pytest.raises(errors.Capacity):
        p.reserve(holder=1)


def test_a_leaving_spawner_takes_its_kernels_out_of_the_books():
    p = Placement(max_kernels_per_session=4)
    p.add_spawner("a", session=1, capacity=4)
    p.add_kernel("k1", "a", 7)
    p.add_kernel("k2", "a", 8)
    spawner_id, lost = p.remove_spawner_by_session(1)
    assert spawner_id == "a" and sorted(lost) == [("k1", 7), ("k2", 8)]
    assert p.kernels == {} and p.kernels_of(7) == []


def test_a_start_prefers_a_spawner_holding_a_kernel_if_it_has_room():
    placement = Placement(4)
    placement.add_spawner("big", session=1, capacity=10)
    placement.add_spawner("small", session=2, capacity=2)
    assert placement.reserve("s", prefer=["small"]).spawner_id == "small"
    assert placement.reserve("s", prefer=[]).spawner_id == "big"
    placement.add_kernel("k1", "small", "t")
    placement.add_kernel("k2", "small", "t")
    assert placement.choose(prefer=["small"]).spawner_id == "big", "a full spawner is not preferred"


def test_kernels_per_address_count_in_flight_starts_and_follow_resumes():
    placement = Placement(4)
    placement.add_spawner("w", session=1, capacity=10)
    placement.add_kernel("k1", "w", holder="s1", address="a")
    placement.reserve("s2", address="a", address_cap=2)
    with pytest.raises(errors.Capacity):
        placement.reserve("s3", address="a", address_cap=2)
    placement.release("s2", "w", address="a")
    placement.move_kernel("k1", "s9")
    placement.reserve("s3", address="a", address_cap=2)
    placement.forget_kernel("k1")
    placement.release("s3", "w", address="a")
    placement.reserve("s4", address="a", address_cap=1)
