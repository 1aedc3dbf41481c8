"""Each spawner's uids: a range no live spawner holds, and what a dead holder left is ended first."""

import pytest

from components.worker import uid_range

pytestmark = pytest.mark.unit

BASE, COUNT, ONESHOTS, RANGES = 100000, 10, 2, 4


def claim(lock_dir, processes=(), reap=None, spawner_id="local"):
    return uid_range.claim(spawner_id, BASE, COUNT, ONESHOTS, RANGES, str(lock_dir), processes, reap)


def test_a_second_spawner_gets_another_range_and_says_why(tmp_path):
    first = claim(tmp_path)
    second = claim(tmp_path)
    assert first.first != second.first
    assert first.first not in second and second.first not in first
    assert second.passed_over and "another spawner holds it" in second.passed_over[0]
    first.release()
    third = claim(tmp_path)  # the range its id hashes to is free again: it keeps that one
    assert third.first == first.first and not third.passed_over


def test_a_range_where_processes_run_is_passed_over(tmp_path):
    home = claim(tmp_path)
    home.release()
    taken = claim(tmp_path, processes=[(4242, home.first + 3)])
    assert taken.first != home.first
    assert "4242" in taken.passed_over[0]


def test_what_a_dead_holder_left_is_reaped_before_the_range_is_checked(tmp_path):
    home = claim(tmp_path)
    home.release()
    left = [(4242, home.first + 3)]
    reaped = []

    def reap(first):
        reaped.append(first)
        left.clear()  # ended

    again = claim(tmp_path, processes=left, reap=reap)
    assert reaped == [home.first] and again.first == home.first


def test_a_keeper_reaps_only_a_range_nobody_holds(tmp_path):
    held = claim(tmp_path)
    reaped = []
    assert not uid_range.reap_if_free(held.first, reaped.append, str(tmp_path))
    held.release()
    assert uid_range.reap_if_free(held.first, reaped.append, str(tmp_path))
    assert reaped == [held.first]
    assert claim(tmp_path).first == held.first  # the keeper let go of the lock
