"""L{components.worker.kernel_pools}: one pool per kernel offered; a forked kind's pool waits for its own master."""

import pytest
from twisted.internet.task import Clock

from components.common.config import SpawnerConfig
from components.common.kernelspecs import PYTHON, SAGE
from components.worker.kernel_pools import KernelPools
from tests.fakes import FakePoolKernel

pytestmark = pytest.mark.unit


def pools(masters, launched=("bash",)):
    started = []

    def make_kernel(name):
        kernel = FakePoolKernel(started)
        kernel.kernel_name = name
        return kernel

    config = SpawnerConfig(pool_size=3, sage_pool_size=2, language_pool_size=1, pool_refill_delay_s=0)
    up = {name: (lambda name=name: masters[name]) for name in masters}
    return KernelPools(Clock(), config, make_kernel, lambda: 100, up, launched), started


def names(started):
    return sorted(kernel.kernel_name for kernel, _ in started)


def test_a_sage_pool_forks_nothing_until_its_own_master_is_up():
    masters = {PYTHON: True, SAGE: False}
    kept, started = pools(masters)
    kept.refill()
    assert SAGE not in names(started), "no Sage fork while the Sage master imports Sage"
    assert names(started).count(PYTHON) == 2 and "bash" in names(started), "the others fill meanwhile"
    masters[SAGE] = True
    kept.retry_now(SAGE)
    assert names(started).count(SAGE) == 1, "one Sage start at a time"


def test_a_spawner_without_sage_has_no_sage_pool():
    kept, _ = pools({PYTHON: True})
    assert kept.get(SAGE) is None and kept.get("nothing") is None
    assert kept.get(PYTHON) is kept.python
    assert set(kept.others()) == {"bash"}
    assert kept.most_kept() == 3 + 1


def test_every_pool_counts_toward_the_kernels_kept():
    kept, _ = pools({PYTHON: True, SAGE: True}, launched=("bash", "ir"))
    assert set(kept.others()) == {SAGE, "bash", "ir"}
    assert kept.most_kept() == 3 + 2 + 1 + 1
