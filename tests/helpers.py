"""What the tests share: starting kernels, calling them, waiting on observable state with a deadline.

Node and client helpers live beside it: L{tests.node} (a real Crossbar node)
and L{tests.wamp_client} (a WAMP client session, L{within}, L{Recorder}).
"""

import psutil
from autobahn.wamp.exception import ApplicationError
from twisted.internet import reactor, task

from tests.wamp_client import within


async def start_kernel(session):
    result = await within(session.call("cell.kernel.start"), 30, "cell.kernel.start")
    assert len(result["kernel_id"]) == 32
    assert result["iopub"] == "cell.kernel.{}.iopub".format(result["kernel_id"])
    return result["kernel_id"]


def call(session, kernel_id, name, *args, deadline=30, options=None, **kwargs):
    d = session.call("cell.kernel.{}.{}".format(kernel_id, name), *args, options=options, **kwargs)
    return within(d, deadline, name)


async def expect_error(d, uri):
    try:
        await d
    except ApplicationError as exc:
        assert exc.error == uri, "expected {}, got {}: {}".format(uri, exc.error, exc.error_message())
        assert exc.error_message(), "an error must carry a message a person can act on"
        return exc
    raise AssertionError("expected the error {}".format(uri))


def kernel_pids():
    """Pids of forked kernels (children of the fork master)."""
    pids = set()
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "components.child.fork_master" in " ".join(proc.info["cmdline"] or []):
                pids.update(child.pid for child in proc.children())
        except psutil.Error:
            pass
    return pids


async def pool_is_full(session, size=4, seconds=30):
    """Wait until the spawner reports its whole warm pool ready (earlier tests took kernels from it)."""
    from twisted.internet import reactor, task

    deadline = reactor.seconds() + seconds
    while True:
        status = await session.call("cell.status")
        if status["spawners"][0]["pool_ready"] >= size:
            return
        if reactor.seconds() > deadline:
            raise AssertionError("the pool did not refill within {} s: {}".format(seconds, status))
        await task.deferLater(reactor, 0.05, lambda: None)  # poll


async def until(predicate, seconds, what):
    """Poll C{predicate} (a check of observable state) every 0.1 s, up to a deadline."""
    for _ in range(int(seconds * 10)):
        if await predicate():
            return
        await task.deferLater(reactor, 0.1, lambda: None)  # poll
    raise AssertionError("{} did not happen within {} s".format(what, seconds))


async def holds(predicate, seconds, what):
    """Poll C{predicate} every 0.1 s for C{seconds}: it must stay true the whole time (proving an absence)."""
    for _ in range(int(seconds * 10)):
        assert await predicate(), "{} stopped holding".format(what)
        await task.deferLater(reactor, 0.1, lambda: None)  # poll
