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


def test_every_one_shot_procedure_binds_its_arguments_to_cell_executes_parameters():
    from components.common import errors
    from components.control.oneshots import arguments_of, endpoint

    call = arguments_of("cell.execute", ("1+1",), {"kernel_name": "bash"})
    assert call == {
        "code": "1+1",
        "timeout": None,
        "user_expressions": None,
        "stop_on_error": True,
        "files": None,
        "return_files": False,
        "kernel_name": "bash",
    }
    for args, kwargs, why in (
        ((), {}, "missing a required argument: 'code'"),
        (("1", 2), {"timeout": 3}, "multiple values for argument 'timeout'"),
        (("1",), {"colour": "red"}, "unexpected keyword argument 'colour'"),
    ):
        with pytest.raises(errors.InvalidArgument) as refused:
            arguments_of("cell.execute", args, kwargs)
        assert why in str(refused.value) and "it takes cell.execute(code, timeout=None, " in str(refused.value)
    with pytest.raises(errors.InvalidArgument, match="cell.backend.execute_http"):
        arguments_of("cell.backend.execute_http", (), ["code", "1"])  # its arguments come as one object
    runs = []
    handler = endpoint("cell.execute", lambda details, call: runs.append((details, call)))
    handler("print(1)", 5, details="details")
    assert runs == [("details", dict(call, code="print(1)", timeout=5, kernel_name=None))]
