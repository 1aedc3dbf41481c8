"""Pure logic: output folding, placement and quotas, configuration."""

import pytest

from components.common import errors
from components.common.config import ConfigError, RouterConfig, SpawnerConfig, from_mapping
from components.control.placement import Placement
from components.worker.outputs import OutputCollector, to_output

pytestmark = pytest.mark.unit


def fold(*messages):
    collector = OutputCollector()
    for msg_type, content in messages:
        collector.add(to_output(msg_type, content))
    return collector.nbformat_outputs()


def test_consecutive_streams_of_one_name_merge():
    assert fold(
        ("stream", {"name": "stdout", "text": "a"}),
        ("stream", {"name": "stdout", "text": "b"}),
        ("stream", {"name": "stderr", "text": "c"}),
        ("stream", {"name": "stdout", "text": "d"}),
    ) == [
        {"output_type": "stream", "name": "stdout", "text": "ab"},
        {"output_type": "stream", "name": "stderr", "text": "c"},
        {"output_type": "stream", "name": "stdout", "text": "d"},
    ]


def test_clear_output_now_and_with_wait():
    assert fold(
        ("stream", {"name": "stdout", "text": "a"}),
        ("clear_output", {"wait": False}),
        ("stream", {"name": "stdout", "text": "b"}),
    ) == [{"output_type": "stream", "name": "stdout", "text": "b"}]
    waited = fold(("stream", {"name": "stdout", "text": "a"}), ("clear_output", {"wait": True}))
    assert waited == [{"output_type": "stream", "name": "stdout", "text": "a"}], (
        "wait=True keeps the output until the next one"
    )
    assert fold(
        ("stream", {"name": "stdout", "text": "a"}),
        ("clear_output", {"wait": True}),
        ("stream", {"name": "stdout", "text": "b"}),
    ) == [{"output_type": "stream", "name": "stdout", "text": "b"}]


def test_update_display_data_replaces_by_display_id():
    out = fold(
        ("display_data", {"data": {"text/plain": "1"}, "metadata": {}, "transient": {"display_id": "p"}}),
        ("display_data", {"data": {"text/plain": "other"}, "metadata": {}}),
        ("update_display_data", {"data": {"text/plain": "2"}, "metadata": {}, "transient": {"display_id": "p"}}),
    )
    assert out == [
        {"output_type": "display_data", "data": {"text/plain": "2"}, "metadata": {}},
        {"output_type": "display_data", "data": {"text/plain": "other"}, "metadata": {}},
    ]


def test_execute_result_and_error_shapes():
    assert to_output("execute_result", {"execution_count": 3, "data": {"text/plain": "2"}, "metadata": {}}) == {
        "output_type": "execute_result",
        "execution_count": 3,
        "data": {"text/plain": "2"},
        "metadata": {},
    }
    assert to_output("error", {"ename": "E", "evalue": "v", "traceback": ["t"]}) == {
        "output_type": "error",
        "ename": "E",
        "evalue": "v",
        "traceback": ["t"],
    }
    assert to_output("status", {"execution_state": "idle"}) is None


def test_placement_prefers_most_free_capacity_and_caps_sessions():
    p = Placement(max_kernels_per_session=2)
    p.add_spawner("a", session=1, capacity=2)
    p.add_spawner("b", session=2, capacity=3)
    first = p.reserve(owner=10)
    assert first.spawner_id == "b"
    second = p.reserve(owner=10)
    assert second.spawner_id in ("a", "b")
    with pytest.raises(errors.Capacity):
        p.reserve(owner=10)
    p.release(10, first.spawner_id)
    p.add_kernel("k1", first.spawner_id, 10)
    with pytest.raises(errors.Capacity):
        p.reserve(owner=10)


def test_placement_reports_no_room():
    p = Placement(max_kernels_per_session=4)
    with pytest.raises(errors.Capacity, match="no kernel can be had"):
        p.reserve(owner=1)
    p.add_spawner("a", session=1, capacity=1)
    p.add_kernel("k", "a", 5)
    with pytest.raises(errors.Capacity):
        p.reserve(owner=1)


def test_a_leaving_spawner_takes_its_kernels_out_of_the_books():
    p = Placement(max_kernels_per_session=4)
    p.add_spawner("a", session=1, capacity=4)
    p.add_kernel("k1", "a", 7)
    p.add_kernel("k2", "a", 8)
    spawner_id, lost = p.remove_spawner_by_session(1)
    assert spawner_id == "a" and sorted(lost) == [("k1", 7), ("k2", 8)]
    assert p.kernels == {} and p.kernels_of(7) == []


def test_config_refuses_unknown_and_bad_values():
    with pytest.raises(ConfigError, match="pool_sise"):
        from_mapping(SpawnerConfig, {"pool_sise": 3})
    with pytest.raises(ConfigError):
        from_mapping(SpawnerConfig, {"pool_size": -1})
    assert from_mapping(SpawnerConfig, {"preload": "numpy,sympy"}).preload == ("numpy", "sympy")
    router = from_mapping(
        RouterConfig, {"cbdir": "/x", "roles": {"browser": {"max_kernels_per_session": 2}}}, ignore=("cbdir",)
    )
    assert router.quotas()["browser"].max_kernels_per_session == 2
    assert router.quotas()["service"].max_kernels_per_session == 32
    with pytest.raises(ConfigError, match="max_kernals"):
        from_mapping(RouterConfig, {"roles": {"browser": {"max_kernals": 2}}})


def test_authorizer_rules():
    from components.router.authorization import decide, owner_needed

    mine = {"session": 100, "authrole": "browser", "authid": "x"}
    other = {"session": 200, "authrole": "browser", "authid": "y"}
    topic = "cell.kernel.{}.iopub".format("k" * 32)
    assert owner_needed(mine, topic, "subscribe") == "k" * 32
    assert owner_needed(mine, "cell.kernel.{}.execute".format("k" * 32), "call") is None
    assert decide(mine, topic, "subscribe", owner=100)["allow"] is True
    assert decide(mine, topic, "subscribe", owner=100)["cache"] is False, (
        "per-session answers must not be cached per role"
    )
    assert decide(other, topic, "subscribe", owner=100)["allow"] is False
    assert decide(other, topic, "subscribe", owner=None)["allow"] is False, "no such kernel"
    assert decide(other, "cell.kernel.start", "call")["allow"] is True
    assert decide(other, "cell.kernel.start", "call")["disclose"] is True
    assert decide(other, "cell.kernel.start", "call")["cache"] is False, "a client's call: never cached (forward_for)"
    forged = {"forward_for": [{"session": 100, "authid": "service", "authrole": "service"}]}
    assert decide(other, "cell.kernel.start", "call", options=forged)["allow"] is False
    assert decide(other, "cell.kernel.{}.execute".format("k" * 32), "call", options=forged)["allow"] is False
    assert decide(other, topic, "subscribe", owner=200, options=forged)["allow"] is False
    kernel_call = decide(other, "cell.kernel.{}.execute".format("k" * 32), "call")
    assert kernel_call["allow"] and kernel_call["disclose"] and not kernel_call["cache"], (
        "a new URI with every kernel: never cached"
    )
    for uri, action in (
        ("cell.kernel.start", "register"),
        (topic, "publish"),
        ("wamp.session.list", "call"),
        ("cell.spawner.a.start_kernel", "call"),
        ("cell.backend.kernel.{}.execute".format("k" * 32), "call"),
        ("cell.made.up." + "z" * 20, "call"),
    ):
        answer = decide(mine, uri, action, owner=100)
        assert answer["allow"] is False and answer["cache"] is False, (uri, action)
    spawner = {"session": 5, "authrole": "spawner", "authid": "w2"}
    assert decide(spawner, "cell.spawner.w2.start_kernel", "register")["allow"] is True
    assert decide(spawner, "cell.spawner.w1.start_kernel", "register")["allow"] is False
    assert decide(spawner, "cell.backend.kernel.{}.".format("k" * 32), "register")["allow"] is True
    assert decide(spawner, "cell.kernel.{}.".format("k" * 32), "register")["allow"] is False
    assert decide(spawner, topic, "publish")["allow"] is True
    assert decide({"authrole": "stranger"}, "cell.status", "call")["allow"] is False


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


def test_kernel_uris_split_in_one_place():
    from components.common.uris import split_kernel_uri
    from components.router.authorization import kernel_of

    assert split_kernel_uri("cell.kernel.abc.execute") == ("abc", "execute")
    assert split_kernel_uri("cell.kernel.abc.files.get") == ("abc", "files.get")
    assert split_kernel_uri("cell.kernel.abc") == (None, None)
    assert split_kernel_uri("cell.kernel..execute") == (None, None)
    assert split_kernel_uri("cell.status") == (None, None)
    assert kernel_of("cell.kernel.abc.iopub") == "abc" and kernel_of("cell.kernel.abc") is None


def test_relay_says_router_errors_in_the_contracts_terms():
    from autobahn.wamp.exception import ApplicationError
    from twisted.python.failure import Failure

    from components.common import errors
    from components.router.kernel_relay import translate_failure

    def translated(error):
        try:
            translate_failure(Failure(error), "k1")
        except Exception as exc:
            return exc
        raise AssertionError("not translated")

    gone = translated(ApplicationError("wamp.error.canceled", "callee disconnected from in-flight request"))
    assert isinstance(gone, errors.KernelDied) and "k1" in gone.message and "cell.kernel.start" in gone.message
    unknown = translated(ApplicationError("wamp.error.no_such_procedure", "no callee"))
    assert isinstance(unknown, errors.NotFound) and "k1" in unknown.message
    passed_on = translate_failure(Failure(errors.TooLarge("big")), "k1")
    assert isinstance(passed_on.value, errors.TooLarge), "the kernel's own errors reach the client unchanged"


def test_huge_page_ranges_are_private_anonymous_and_aligned():
    from components.child.huge_pages import anonymous_writable_ranges

    maps = "\n".join(
        (
            "55d0c0000000-55d0c0a00000 rw-p 00000000 00:00 0          [heap]",
            "7f0000100000-7f0000700000 rw-p 00000000 00:00 0 ",
            "7f0001000000-7f0001100000 rw-p 00000000 00:00 0 ",  # under 2 MiB once aligned
            "7f0002000000-7f0004000000 rw-s 00000000 00:05 12         /dev/zero (deleted)",  # shared
            "7f0006000000-7f0008000000 r--p 00000000 08:01 3          /usr/lib/libc.so.6",
            "7f000a000000-7f000c000000 rw-p 00000000 08:01 3          /usr/lib/libfoo.so",  # file-backed
        )
    )
    assert list(anonymous_writable_ranges(maps)) == [(0x55D0C0000000, 0x55D0C0A00000), (0x7F0000200000, 0x7F0000600000)]


class FakeMetaSession:
    """Answers the subscription meta calls the way Crossbar does, from a fixed table."""

    def __init__(self, subscriptions, vanished=()):
        self.subscriptions = subscriptions  # id -> details
        self.vanished = list(vanished)  # listed, then gone before they could be read

    def call(self, procedure, *args):
        from autobahn.wamp.exception import ApplicationError
        from twisted.internet import defer

        if procedure == "wamp.subscription.lookup":
            found = [sid for sid, d in self.subscriptions.items() if d["uri"] == args[0] and d["match"] == "exact"]
            return defer.succeed(found[0] if found else None)
        if procedure == "wamp.subscription.list":
            listing = {"exact": [], "prefix": list(self.vanished), "wildcard": []}
            for sid, d in self.subscriptions.items():
                listing[d["match"]].append(sid)
            return defer.succeed(listing)
        if procedure == "wamp.subscription.get":
            if args[0] not in self.subscriptions:
                return defer.fail(ApplicationError("wamp.error.no_such_subscription"))
            return defer.succeed(self.subscriptions[args[0]])
        raise AssertionError(procedure)


def test_iopub_listeners_publish_everything_until_synced_then_only_what_is_subscribed():
    from components.worker.iopub_listeners import IopubListeners

    a, b, c = "cell.kernel.a.iopub", "cell.kernel.b.iopub", "cell.kernel.c.iopub"
    listeners = IopubListeners()
    assert listeners.wanted(a) and listeners.wanted(b), "before the first sync nothing is known: publish"
    session = FakeMetaSession(
        {1: {"id": 1, "uri": a, "match": "exact"}, 2: {"id": 2, "uri": "cell.status", "match": "exact"}}
    )
    listeners.sync(session, [a, b])
    assert listeners.wanted(a) and not listeners.wanted(b) and not listeners.wanted(c)
    listeners.created({"id": 3, "uri": b, "match": "exact"})
    assert listeners.wanted(b)
    listeners.deleted(3)
    assert not listeners.wanted(b), "the last subscriber left"
    listeners.created({"id": 4, "uri": "cell.kernel.", "match": "prefix"})
    assert listeners.wanted(b) and listeners.wanted(c), "a prefix subscription receives every kernel's topic"
    listeners.deleted(4)
    listeners.created({"id": 5, "uri": "cell.kernel..iopub", "match": "wildcard"})
    assert listeners.wanted(c) and not listeners.wanted("cell.kernel.c.other")
    listeners.deleted(5)
    assert not listeners.wanted(c)
    listeners.reset()
    assert listeners.wanted(c), "after leaving the router, publish everything again until the next sync"


def test_iopub_listeners_sync_reads_prefix_subscriptions_and_skips_vanished_ones():
    from components.worker.iopub_listeners import IopubListeners

    session = FakeMetaSession({7: {"id": 7, "uri": "cell.kernel.x", "match": "prefix"}}, vanished=[8])
    listeners = IopubListeners()
    listeners.sync(session, [])
    assert listeners.wanted("cell.kernel.xyz.iopub") and not listeners.wanted("cell.kernel.abc.iopub")


FREE_SLOTS_PROBE = r'''
import gc, json, os, sys
from components.child.free_slots import FreeSlots

def private_kb():
    with open("/proc/self/smaps_rollup") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith("Private_"))

def child_cost():
    """What a forked child's private memory grows by when it allocates 20,000 small objects."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        before = private_kb()
        made = [bytes(40) for _ in range(20000)]
        os.write(w, str(private_kb() - before).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    cost = int(os.read(r, 64))
    os.close(r), os.close(w)
    return cost

# A master whose pools are full of holes: one object in ten of 400,000 freed.
kept = [o for i, o in enumerate([bytes(40) for _ in range(400000)]) if i % 10]
gc.collect()
gc.freeze()
unfilled = child_cost()
slots = FreeSlots().fill()
print(json.dumps({"unfilled_kb": unfilled, "filled_kb": child_cost(), "blocks": slots.blocks, "chunks": slots.chunks}))
'''


def test_free_slots_send_a_forked_childs_allocations_to_fresh_pages():
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", FREE_SLOTS_PROBE], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["blocks"] >= 40000, "the freed objects' blocks were filled"
    assert measured["chunks"] > 0, "glibc's free chunks were filled"
    # Into the holes (about 5 a page), 20,000 objects copy ~4,000 pages; on fresh pages they fill ~400.
    assert measured["unfilled_kb"] > 8000
    assert measured["filled_kb"] < measured["unfilled_kb"] / 4


def test_the_backend_authenticator_admits_only_the_node_key(tmp_path):
    """components.common.node_key, with a node key made by Crossbar's own code."""
    from autobahn.wamp.cryptosign import CryptosignKey
    from autobahn.wamp.exception import ApplicationError
    from crossbar.common.key import _maybe_generate_node_key

    from components.common.node_key import cryptosign_authentication
    from components.router.backend_authenticator import create_authenticator

    _maybe_generate_node_key(str(tmp_path))
    authenticate = create_authenticator({"cbdir": str(tmp_path)})
    node_pubkey = CryptosignKey.from_keyfile(str(tmp_path / "key.priv")).public_key()
    stranger = CryptosignKey.from_bytes(b"\x01" * 32).public_key()
    for extra in ({}, {"pubkey": stranger}):
        with pytest.raises(ApplicationError) as refused:
            authenticate("cell", "spawner_local", {"authextra": extra})
        assert refused.value.error == ApplicationError.AUTHENTICATION_FAILED
    assert authenticate("cell", "spawner_local", {"authextra": {"pubkey": node_pubkey}}) == {
        "pubkey": node_pubkey,
        "role": "backend",
        "authid": "spawner_local",
    }
    # What a backend component presents is that same key.
    credentials = cryptosign_authentication(str(tmp_path), "spawner_local")["cryptosign"]
    assert CryptosignKey.from_bytes(bytes.fromhex(credentials["privkey"])).public_key() == node_pubkey


def test_a_kernels_path_has_its_own_python_first_and_only_usable_directories():
    import os
    import shutil
    import tempfile

    from components.child.sandbox import kernel_path

    root = tempfile.mkdtemp()  # not pytest's tmp_path: that one is closed to other users
    try:
        os.chmod(root, 0o755)
        closed = os.path.join(root, "closed")
        os.mkdir(closed, 0o700)
        assert closed not in kernel_path(closed).split(os.pathsep)
        opened = os.path.join(root, "bin")
        os.mkdir(opened, 0o755)
        path = kernel_path(opened).split(os.pathsep)
        assert path[0] == opened and len(path) == len(set(path))
        assert all(os.stat(d).st_mode & 0o005 == 0o005 for d in path)
    finally:
        shutil.rmtree(root)


def test_ipython_keeps_no_copy_of_outputs():
    from components.child.output_history import DiscardedOutputs

    outputs = DiscardedOutputs()
    outputs[3].append("x" * 1000)
    outputs[3] = ["y"]
    assert 3 not in outputs and outputs[3] == [] and len(outputs) == 0


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
    placement.add_kernel("k1", "w1", owner=1)
    placement.add_kernel("k2", "w1", owner=1)
    return clock, placement, ownership, shut, lost


def test_an_orphan_is_shut_down_after_the_grace_unless_resumed():
    clock, placement, ownership, shut, _ = _ownership()
    ownership.owner_left(1)
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
    ownership.owner_left(1)
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


def test_held_kernels_are_offered_once_even_when_a_stale_answer_names_them_again():
    from components.control.held_kernels import HeldKernels

    def kernel(name):
        return {"kernel_id": name, "iopub": "cell.kernel.{}.iopub".format(name), "resume_token": "t-" + name}

    held = HeldKernels(2)
    held.replace("w1", [kernel("a"), kernel("b")])
    assert held.spawners_with_kernels() == ["w1"]
    assert held.take("w1")["kernel_id"] == "a"
    held.replace("w1", [kernel("a"), kernel("b"), kernel("c")])  # an answer sent before "a" was handed out
    assert [held.take("w1")["kernel_id"] for _ in range(2)] == ["b", "c"]
    assert held.take("w1") is None and held.spawners_with_kernels() == []
    held.replace("w2", [kernel("d"), kernel("e")])
    held.discard("d")
    assert held.count("w2") == 1
    held.drop_spawner("w2")
    assert held.take("w2") is None


def test_a_start_prefers_a_spawner_holding_a_kernel_if_it_has_room():
    placement = Placement(4)
    placement.add_spawner("big", session=1, capacity=10)
    placement.add_spawner("small", session=2, capacity=2)
    assert placement.reserve("s", prefer=["small"]).spawner_id == "small"
    assert placement.reserve("s", prefer=[]).spawner_id == "big"
    placement.add_kernel("k1", "small", "t")
    placement.add_kernel("k2", "small", "t")
    assert placement.choose(prefer=["small"]).spawner_id == "big", "a full spawner is not preferred"


def test_a_clients_address_is_its_peer_or_what_a_trusted_front_says():
    from components.common.addresses import client_address

    assert client_address({"peer": "tcp4:198.51.100.7:5555"}, ()) == "198.51.100.7"
    assert client_address({"peer": "tcp6:::1:5555"}, ()) == "::1"
    assert client_address({"peer": "unix"}, ()) == "local"
    forwarded = {"peer": "tcp4:10.0.0.9:4444", "http_headers_received": {"x-forwarded-for": "1.1.1.1, 203.0.113.5"}}
    assert client_address(forwarded, ("10.0.0.9",)) == "203.0.113.5", "the entry the front added"
    assert client_address(forwarded, ()) == "10.0.0.9", "an untrusted peer's header is ignored"


def test_kernels_per_address_count_in_flight_starts_and_follow_resumes():
    placement = Placement(4)
    placement.add_spawner("w", session=1, capacity=10)
    placement.add_kernel("k1", "w", owner="s1", address="a")
    placement.reserve("s2", address="a", address_cap=2)
    with pytest.raises(errors.Capacity):
        placement.reserve("s3", address="a", address_cap=2)
    placement.release("s2", "w", address="a")
    placement.move_kernel("k1", "s9")
    placement.reserve("s3", address="a", address_cap=2)
    placement.forget_kernel("k1")
    placement.release("s3", "w", address="a")
    placement.reserve("s4", address="a", address_cap=1)
