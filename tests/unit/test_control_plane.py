"""components.control.control_plane: placement, quotas, hand-over, hold and leaving, on a Clock.

The control plane reaches spawners only through its port (L{SpawnerCalls}); here a fake port
(tests/fakes.py) records each call and answers when the test says (each call's Deferred is kept), so concurrent
starts, failures and late answers happen in the order a test picks.  (The WAMP face and the real
spawners are tested against a real node: tests/test_kernels.py, test_workers.py, test_resume.py.)
"""

import inspect

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet.task import Clock

from components.common import errors
from components.common.addresses import ClientAddresses
from components.common.config import RouterConfig
from components.control import held_kernels
from components.control.control_plane import ControlPlane
from components.control.oneshots import arguments_of
from components.control.spawner_calls import SpawnerCalls
from tests.fakes import FakeSpawners

pytestmark = pytest.mark.unit

SESSION = 7
ADDRESS = "10.0.0.1"


def test_the_fake_port_has_the_real_ports_signatures():
    for name, method in inspect.getmembers(FakeSpawners, inspect.isfunction):
        if name.startswith("_") or name in FakeSpawners.test_only or name == "call":
            continue  # the real port's call is the WAMP session's own
        assert inspect.signature(method) == inspect.signature(getattr(SpawnerCalls, name)), name
    real = {n for n, _ in inspect.getmembers(SpawnerCalls, inspect.isfunction) if not n.startswith("_")}
    assert real <= {n for n, _ in inspect.getmembers(FakeSpawners, inspect.isfunction)} | {"call"}


def _plane(held=0, per_session=4, spawners=(("w1", 100, 8),)):
    clock, port = Clock(), FakeSpawners()
    settings = RouterConfig(held_kernels_per_spawner=held, roles={"browser": {"max_kernels_per_session": per_session}})
    plane = ControlPlane(clock, settings, port, ClientAddresses())
    for spawner_id, session, capacity in spawners:
        plane.placement.add_spawner(spawner_id, session, capacity=capacity)
    return clock, port, plane


def _start(plane, holder=SESSION):
    """A start's outcome: a list that gets its result or failure when it ends."""
    outcome = []
    plane.start(holder, holder, plane.quota("browser"), ADDRESS).addBoth(outcome.append)
    return outcome


def _kernel(kernel_id):
    return {"kernel_id": kernel_id, "iopub": "cell.kernel.{}.iopub".format(kernel_id), "resume_token": "t"}


def test_a_start_goes_to_the_spawner_with_the_most_free_room():
    clock, port, plane = _plane(spawners=(("w1", 100, 4), ("w2", 200, 8)))
    plane.placement.add_kernel("k0", "w2", holder=99)  # w2 still has 7 free, w1 4
    outcome = _start(plane)
    assert port.answer("start_kernel", _kernel("k1")) == ("w2", SESSION, None)
    assert outcome[0]["kernel_id"] == "k1" and plane.holder_of("k1") == SESSION
    assert plane.placement.kernels_on("w2") == {"k0", "k1"}


def test_concurrent_starts_of_one_session_cannot_pass_its_cap():
    clock, port, plane = _plane(per_session=2)
    first, second, third = _start(plane), _start(plane), _start(plane)
    assert isinstance(third[0].value, errors.Capacity), "a third start while two are under way"
    assert len(port.pending("start_kernel")) == 2
    port.answer("start_kernel", _kernel("k1"))
    port.answer("start_kernel", _kernel("k2"))
    assert isinstance(_start(plane)[0].value, errors.Capacity), "two kernels held: still at the cap"
    assert [o[0]["kernel_id"] for o in (first, second)] == ["k1", "k2"]


def test_a_failed_start_frees_its_slot():
    clock, port, plane = _plane(per_session=1)
    outcome = _start(plane)
    port.fail("start_kernel", errors.Capacity("the worker could not start a kernel: timeout"))
    assert isinstance(outcome[0].value, errors.Capacity)
    assert plane.placement.sizes()["owners_starting"] == 0
    _start(plane)
    assert len(port.pending("start_kernel")) == 1


def test_a_start_takes_a_held_kernel_and_a_failed_hand_over_frees_the_slot():
    clock, port, plane = _plane(held=2, per_session=1)
    plane.holding.ask("w1")
    port.answer("hold", [_kernel("h1"), _kernel("h2")])
    outcome = _start(plane)
    assert outcome[0]["kernel_id"] == "h1" and not port.pending("start_kernel"), "one hop: no start on the spawner"
    assert port.pending("hand_over")[0][0] == ("w1", "h1", SESSION)
    assert port.pending("hold"), "the spawner is asked to hold another"
    port.fail("hand_over", ApplicationError("wamp.error.canceled", "the spawner went"))
    assert plane.holder_of("h1") is None and plane.placement.kernels_of(SESSION) == []
    assert _start(plane)[0]["kernel_id"] == "h2", "the slot is free again"


def test_a_spawner_leaving_announces_its_kernels_dead():
    clock, port, plane = _plane(spawners=(("w1", 100, 8), ("w2", 200, 8)))
    for kernel_id, spawner_id in (("k1", "w1"), ("k2", "w1"), ("k3", "w2")):
        plane.placement.add_kernel(kernel_id, spawner_id, SESSION)
    plane.session_left(100)
    assert sorted(port.lost) == ["k1", "k2"] and "w1" not in plane.placement.spawners
    assert plane.placement.kernels_of(SESSION) == [("k3", "w2")]
    assert plane.ownership.is_declared_dead("k1")


def test_a_session_that_leaves_has_its_kernels_shut_down_after_the_grace():
    clock, port, plane = _plane()
    _start(plane)
    port.answer("start_kernel", _kernel("k1"))
    plane.session_left(SESSION)
    clock.advance(plane.settings.resume_grace_s - 1)
    assert not port.pending("shutdown_kernel") and plane.ownership.is_orphaned("k1")
    clock.advance(1)
    assert [args for name, args, _ in port.calls if name == "shutdown_kernel"] == [("w1", "k1")]
    assert plane.sizes()["kernels"] == 0 and plane.sizes()["orphaned_kernels"] == 0


def test_a_resumed_kernel_is_not_shut_down():
    clock, port, plane = _plane()
    _start(plane)
    port.answer("start_kernel", _kernel("k1"))
    plane.session_left(SESSION)
    resumed = []
    plane.kernel_resume(8, "browser", "k1", "t").addBoth(resumed.append)
    assert port.answer("rebind_kernel", None) == ("w1", "k1", "t", 8)
    assert resumed == ["k1"] and plane.holder_of("k1") == 8
    clock.advance(plane.settings.resume_grace_s)
    assert not [c for c in port.calls if c[0] == "shutdown_kernel"]


def test_a_short_hold_is_asked_again_and_an_ended_held_kernel_is_replaced():
    clock, port, plane = _plane(held=2)
    plane.holding.ask("w1")
    port.answer("hold", [_kernel("h1")])  # the pool was short
    assert not port.pending("hold") and plane.sizes()["hold_retries"] == 1
    clock.advance(held_kernels.HOLD_RETRY_S)
    assert port.answer("hold", [_kernel("h1"), _kernel("h2")]) == ("w1", 2)
    assert plane.held.count("w1") == 2 and plane.sizes()["hold_retries"] == 0
    plane.kernel_ended("h1", "w1", was_held=True)
    assert plane.held.count("w1") == 1 and port.pending("hold"), "a held kernel died: another is asked for"


def test_a_spawner_that_leaves_is_no_longer_asked_to_hold():
    clock, port, plane = _plane(held=2)
    plane.holding.ask("w1")
    port.answer("hold", [])
    plane.session_left(100)
    assert plane.sizes()["hold_retries"] == 0 and not clock.getDelayedCalls()


def test_a_returning_spawner_has_its_kernels_adopted_and_those_of_gone_sessions_orphaned():
    clock, port, plane = _plane(spawners=())
    port.gone_sessions.add(9)
    kernels = [{"kernel_id": "k1", "owner": SESSION}, {"kernel_id": "k2", "owner": 9}]
    plane.spawner_ready({"id": "w1", "session": 100, "capacity": 8, "kernel_list": kernels})
    assert plane.holder_of("k1") == SESSION and plane.holder_of("k2") == 9
    assert plane.ownership.is_orphaned("k2") and not plane.ownership.is_orphaned("k1")


def test_a_start_for_a_session_learns_its_address():
    clock, port, plane = _plane()
    outcome = []
    plane.kernel_start(SESSION, "browser").addBoth(outcome.append)
    port.answer("start_kernel", _kernel("k1"))
    assert outcome[0]["kernel_name"] == "python3" and plane.addresses.of(SESSION) == ADDRESS


def test_a_failed_start_of_a_session_that_left_forgets_it():
    clock, port, plane = _plane()
    outcome = _start(plane)
    plane.session_left(SESSION)
    port.fail("start_kernel", ApplicationError("cell.error.capacity", "no room"))
    assert outcome[0].value.error == "cell.error.capacity"
    assert plane.sizes()["left_while_starting"] == 0, "kept for good before: a failed start never took it out"


def test_two_starts_of_a_session_that_left_both_end_their_kernels():
    clock, port, plane = _plane()
    first, second = _start(plane), _start(plane)
    plane.session_left(SESSION)
    port.answer("start_kernel", _kernel("k1"))
    assert isinstance(first[0].value, errors.NotFound) and plane.sizes()["left_while_starting"] == 1
    port.answer("start_kernel", _kernel("k2"))
    assert isinstance(second[0].value, errors.NotFound)
    shut = [args[1] for name, args, _ in port.calls if name == "shutdown_kernel"]
    assert shut == ["k1", "k2"] and plane.sizes()["left_while_starting"] == 0 and plane.sizes()["kernels"] == 0


def test_a_oneshot_with_files_counts_as_a_kernel_of_its_session_while_it_runs():
    clock, port, plane = _plane(per_session=1)
    outcome = []
    files = {"data.txt": b"x"}
    call = arguments_of("cell.execute", ("1+1",), {"files": files})
    plane.oneshots.execute(SESSION, "browser", None, call).addBoth(outcome.append)
    assert isinstance(_start(plane)[0].value, errors.Capacity), "the one-shot's kernel fills the session's cap"
    (procedure, code), d = port.pending("call")[0]
    assert procedure.endswith(".execute_once") and code == "1+1"
    d.callback({"status": "ok"})
    assert outcome == [{"status": "ok"}] and plane.oneshots.admission.running(ADDRESS) == 0
    _start(plane)
    assert len(port.pending("start_kernel")) == 1, "its slot is free again"


def test_a_oneshot_for_an_http_client_counts_under_its_peer_address_whatever_it_forwards():
    from components.common.addresses import http_client

    clock, port, plane = _plane()
    outcomes = []
    for i in range(plane.quota("browser").max_concurrent_oneshots_per_address + 1):
        forged = "10.9.9.{}".format(i)  # this node trusts no front: a client's X-Forwarded-For counts for nothing
        plane.execute_for(http_client("192.0.2.7", 4000 + i, forged), "1+1").addBoth(outcomes.append)
    assert plane.oneshots.admission.running("192.0.2.7") == plane.quota("browser").max_concurrent_oneshots_per_address
    assert len(outcomes) == 1 and isinstance(outcomes[0].value, errors.Capacity), "the one past the cap is refused"
    assert "at once" in outcomes[0].value.args[0]
    calls = port.pending("call")
    for _, d in calls:
        d.callback({"status": "ok"})
    assert plane.oneshots.admission.running("192.0.2.7") == 0


def test_an_http_api_one_shot_runs_in_its_role_at_its_peer_address_and_an_unknown_role_is_refused():
    from components.common.addresses import http_client

    clock, port, plane = _plane()
    call = arguments_of("cell.backend.execute_http", (), {"code": "1+1"})
    with pytest.raises(errors.InvalidArgument, match="unknown role 'root'"):
        plane.oneshots.for_http(http_client("192.0.2.7", 4000, ""), "grader", "root", None, call)
    outcome = []
    plane.oneshots.for_http(http_client("192.0.2.7", 4000, "10.9.9.9"), "grader", "service", None, call).addBoth(
        outcome.append
    )
    assert plane.oneshots.admission.running("192.0.2.7") == 1 and not outcome
    (procedure, code), d = port.pending("call")[0]
    assert procedure.endswith(".execute_once") and code == "1+1"
    d.callback({"status": "ok"})
    assert outcome == [{"status": "ok"}] and plane.oneshots.admission.running("192.0.2.7") == 0
