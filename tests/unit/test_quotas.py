"""components.control.quotas: rate buckets, forgotten once full again (on a Clock)."""

import pytest
from twisted.internet.task import Clock

from components.control.quotas import RateLimiter

pytestmark = pytest.mark.unit


def test_an_idle_keys_bucket_is_forgotten_once_full_again():
    clock = Clock()
    limiter = RateLimiter(clock, per_minute=60)  # 1 a second, bursts of 15: full again 15 s after its last use
    for address in range(1000):
        assert limiter.allow("10.0.{}.{}".format(address // 256, address % 256))
    assert limiter.size() == 1000
    clock.advance(14.9)
    assert limiter.size() == 1000, "not full yet: still counted"
    clock.advance(0.1)
    assert limiter.size() == 0


def test_forgetting_a_full_bucket_gives_no_one_a_fresh_burst():
    clock = Clock()
    limiter = RateLimiter(clock, per_minute=60)
    assert all(limiter.allow("a") for _ in range(15)) and not limiter.allow("a")
    clock.advance(14)  # 14 tokens back, not 15: the bucket stays, its debt with it
    assert limiter.size() == 1
    assert all(limiter.allow("a") for _ in range(14)) and not limiter.allow("a")


def test_idle_buckets_go_as_other_keys_come_without_anyone_asking_the_size():
    clock = Clock()
    limiter = RateLimiter(clock, per_minute=60)
    for second in range(120):  # a new address every second, each used once
        limiter.allow("address-{}".format(second))
        clock.advance(1)
    assert len(limiter._buckets) <= 2 * 15, "an idle bucket lives at most two refill times"


def test_the_rate_still_holds():
    clock = Clock()
    limiter = RateLimiter(clock, per_minute=60)
    assert all(limiter.allow("s") for _ in range(15))
    assert not limiter.allow("s")
    assert limiter.allow("other")
    clock.advance(1)
    assert limiter.allow("s")
    assert not limiter.allow("s")


def test_permalink_rates_per_address_are_forgotten_too():
    from components.control.permalink_limits import PermalinkLimits

    clock = Clock()
    limits = PermalinkLimits(clock, saves_per_minute=60, max_bytes_per_day=1 << 20)
    for i in range(50):
        limits.admit("10.1.0.{}".format(i), "1+1", "python")
    assert limits.addresses() == 50
    clock.advance(15)
    assert limits.addresses() == 0


def test_rate_limiter_admits_bursts_then_the_rate():
    from twisted.internet.task import Clock

    from components.control.quotas import RateLimiter

    clock = Clock()
    limiter = RateLimiter(clock, per_minute=60)  # 1 per second, bursts of 15
    assert all(limiter.allow("s") for _ in range(15))
    assert not limiter.allow("s")
    assert limiter.allow("other")
    clock.advance(1)
    assert limiter.allow("s")
    assert not limiter.allow("s")
