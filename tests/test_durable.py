"""Durable executions: what a kernel's execution printed while its caller was away is kept by the spawner and
replayed, then the rest live, with nothing lost and nothing twice (real nodes, real kernels).

What a stranger would try, and what these tests keep trying: attaching to another session's kernel, naming an
execution with a wrong type or an oversized tag, following one execution from many sessions at once."""

import pytest_twisted
from autobahn.wamp.types import CallOptions
from twisted.internet import defer

from tests.helpers import call, expect_error, until
from tests.remote_spawner import remote_spawner_node, router_back
from tests.test_resume import start
from tests.wamp_client import connect

LINES = 150


def printing_loop(lines, pause_s):
    return "import time\nfor i in range({}):\n    print('line', i, flush=True)\n    time.sleep({})\n".format(
        lines, pause_s
    )


def text_of(items):
    return "".join(item["text"] for item in items if item.get("output_type") == "stream")


def expected(lines):
    return "".join("line {}\n".format(i) for i in range(lines))


def drop(session):
    """The connection vanishes under the session (no goodbye): what a closed laptop lid does."""
    session._transport.transport.abortConnection()


async def run_until_items(session, kernel_id, code, tag, at_least):
    """Start C{code} with C{tag}; C{(items received, the call's Deferred)} once C{at_least} progressive items came."""
    items = []
    enough = defer.Deferred()

    def progress(item):
        items.append(item)
        if len(items) == at_least and not enough.called:
            enough.callback(None)

    d = session.call(
        "cell.kernel.{}.execute".format(kernel_id), code, tag=tag, options=CallOptions(on_progress=progress)
    )
    d.addErrback(lambda failure: None)  # the connection is dropped under it
    await enough
    return items, d


async def attach(session, kernel_id, execution, since):
    items = []
    result = await call(
        session,
        kernel_id,
        "attach",
        execution,
        since=since,
        options=CallOptions(on_progress=items.append),
        deadline=60,
    )
    return [item["output"] for item in items], items, result


@pytest_twisted.ensureDeferred
async def test_a_dropped_connection_resumes_mid_run_with_nothing_lost_or_twice(node):
    first = await connect(node.url)
    kernel = await start(first)
    seen, _ = await run_until_items(first, kernel["kernel_id"], printing_loop(LINES, 0.01), "run-1", 5)
    drop(first)
    seen = list(seen)  # every item delivered before the drop: the next one is number `count`
    count = len(seen)
    second = await connect(node.url)
    await second.call("cell.kernel.resume", kernel["kernel_id"], kernel["resume_token"])
    rest, raw, result = await attach(second, kernel["kernel_id"], "run-1", count)
    assert raw[0]["seq"] == count and all(a["next"] == b["seq"] for a, b in zip(raw, raw[1:]))
    assert text_of(seen) + text_of(rest) == expected(LINES), "every line once, in order"
    assert result["status"] == "ok" and result["tag"] == "run-1" and result["next"] == raw[-1]["next"]
    assert text_of(result["outputs"]) == expected(LINES)
    listing = await call(second, kernel["kernel_id"], "executions")
    assert [(e["execution"], e["tag"], e["status"]) for e in listing] == [(result["execution"], "run-1", "ok")]
    second.leave()


@pytest_twisted.ensureDeferred
async def test_executions_are_numbered_and_attach_after_the_end_gives_the_result(node):
    session = await connect(node.url)
    kernel = await start(session)
    kid = kernel["kernel_id"]
    one = await call(session, kid, "execute", "print('one')")
    two = await call(session, kid, "execute", "1/0", tag="boom")
    assert (one["execution"], two["execution"], two["tag"]) == (1, 2, "boom")
    again = await call(session, kid, "attach", 1)
    assert again["outputs"] == one["outputs"] and again["execution"] == 1 and again["next"] == 1
    latest = await call(session, kid, "attach")
    assert latest["status"] == "error" and latest["ename"] == "ZeroDivisionError"
    assert [e["status"] for e in await call(session, kid, "executions")] == ["ok", "error"]
    await expect_error(call(session, kid, "attach", 99), "cell.error.not_found")
    await expect_error(call(session, kid, "attach", "no-such-tag"), "cell.error.not_found")
    await expect_error(call(session, kid, "attach", [1]), "cell.error.invalid_argument")
    await expect_error(call(session, kid, "attach", 1, since=-1), "cell.error.invalid_argument")
    await expect_error(call(session, kid, "execute", "1", tag="x" * 200), "cell.error.too_large")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_another_session_can_neither_list_nor_attach(node):
    owner = await connect(node.url)
    stranger = await connect(node.url)
    kernel = await start(owner)
    await call(owner, kernel["kernel_id"], "execute", "secret = 'owner only'; print(secret)", tag="mine")
    for name, args in (("executions", ()), ("attach", ("mine",)), ("attach", (1,))):
        await expect_error(call(stranger, kernel["kernel_id"], name, *args), "cell.error.not_found")
    owner.leave()
    stranger.leave()


@pytest_twisted.ensureDeferred
async def test_one_execution_takes_a_bounded_number_of_followers(node):
    session = await connect(node.url)
    kernel = await start(session)
    kid = kernel["kernel_id"]
    running = session.call("cell.kernel.{}.execute".format(kid), "import time; time.sleep(30)", tag="slow")
    running.addErrback(lambda failure: None)

    async def listed():
        return [e["status"] for e in await call(session, kid, "executions")] == ["running"]

    await until(listed, 30, "the execution running")
    followers = [session.call("cell.kernel.{}.attach".format(kid), "slow") for _ in range(8)]
    for d in followers:
        d.addErrback(lambda failure: None)
    await expect_error(call(session, kid, "attach", "slow"), "cell.error.capacity")
    await call(session, kid, "interrupt")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_run_survives_a_router_restart_and_its_owner_gets_what_it_missed(tmp_path):
    """The spawner holds the record: the whole router goes away mid-run and comes back."""
    async with remote_spawner_node(tmp_path) as (node, session):
        kernel = await start(session)
        lines = 400  # about 8 s of printing: the router is away for part of it
        seen, _ = await run_until_items(session, kernel["kernel_id"], printing_loop(lines, 0.02), "long", 3)
        seen = list(seen)  # what reached us before the router went (the old connection may still deliver some)
        count = len(seen)
        node.stop()
        session = await router_back(node, kernel)
        rest, _, result = await attach(session, kernel["kernel_id"], "long", count)
        assert result["status"] == "ok", (result, count, rest[:3])
        assert text_of(seen) + text_of(rest) == expected(lines)
        session.leave()
