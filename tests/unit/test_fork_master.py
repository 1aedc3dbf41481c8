"""L{components.child.fork_master}: what a Sage kernel's address-space limit counts."""

import pytest

from components.child.fork_master import _beyond_inherited

pytestmark = pytest.mark.unit


def own_size_mb():
    import os

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)


def test_a_sage_kernels_address_space_limit_counts_beyond_what_it_inherits():
    spec = {"uid": 100001, "limits": {"address_space_mb": 4096, "cpu_s": 600}}
    before = own_size_mb()
    raised = _beyond_inherited(spec)
    assert before + 4096 <= raised["limits"]["address_space_mb"] <= own_size_mb() + 4096
    assert raised["limits"]["cpu_s"] == 600 and raised["uid"] == 100001
    assert spec["limits"]["address_space_mb"] == 4096, "the request itself is left as it was"


def test_no_address_space_limit_stays_none():
    assert _beyond_inherited({"limits": {"address_space_mb": 0}})["limits"]["address_space_mb"] == 0
    assert _beyond_inherited({"limits": {}})["limits"] == {}
