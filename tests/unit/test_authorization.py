"""L{components.router.authorization}: what each role may call, register, subscribe and publish."""

import pytest

pytestmark = pytest.mark.unit


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
