"""components.control.oneshots: what admission keeps per session and per address goes with them (on a Clock)."""

import pytest
from twisted.internet.task import Clock

from components.common.config import RouterConfig
from components.control.oneshots import OneShotAdmission

pytestmark = pytest.mark.unit


def test_admission_forgets_sessions_at_leave_and_addresses_once_their_rate_is_full_again():
    clock = Clock()
    admission = OneShotAdmission(clock, RouterConfig().quotas())
    for session_id in range(300):  # 300 sessions from 300 addresses, one one-shot each
        done = admission.admit(session_id, "browser", "10.2.{}.{}".format(session_id // 256, session_id % 256))
        done()
    sizes = admission.sizes()
    assert sizes["oneshot_session_buckets"] == 300 and sizes["oneshot_address_buckets"] == 300
    assert sizes["oneshot_running_addresses"] == 0
    for session_id in range(300):
        admission.forget(session_id)
    assert admission.sizes()["oneshot_session_buckets"] == 0
    clock.advance(3600)
    assert admission.sizes() == {
        "oneshot_session_buckets": 0,
        "oneshot_address_buckets": 0,
        "oneshot_running_addresses": 0,
    }
