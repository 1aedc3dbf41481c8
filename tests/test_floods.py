"""Floods from one client that must not take the node (issue 19, item 11), against a real node.

Each test is an attack from one loopback address (127.0.0.2, .3, ...: the suite's other users all come from
127.0.0.1, whose per-address quotas tests/node.py lifts) while another address is served as usual:
permalinks saved as fast as the node answers, 300 sessions opened at once, and a client that asks for big files
in progressive chunks and stops reading them.
"""

import time

import psycopg
import pytest
import pytest_twisted
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.serializer import MsgPackSerializer
from autobahn.wamp.types import CallOptions, ComponentConfig
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from components.common import errors
from components.control.permalink_limits import Charge
from components.control.permalink_postgres import PostgresPermalinkStore
from components.control.permalink_stores import SqlitePermalinkStore
from deploy.postgres import PostgresServer
from tests.helpers import call, expect_error, holds, start_kernel, until
from tests.node import Node, processes_under, spawner_processes
from tests.wamp_client import connect, within

#: the flood node's quotas: small, so that each is reached in a moment
MAX_SESSIONS = 16
SAVES_PER_MINUTE = 20  # bursts of 5
MAX_BYTES_PER_DAY = 100_000
MAX_UNSENT = 32 * 1024 * 1024


def flood_quotas(config):
    for worker in config["workers"]:
        if worker["type"] == "container":
            router, permalinks = worker["components"][0]["extra"], worker["components"][1]["extra"]
            router["roles"]["browser"]["max_sessions_per_address"] = MAX_SESSIONS
            permalinks.update(
                saves_per_minute_per_address=SAVES_PER_MINUTE, max_bytes_per_address_per_day=MAX_BYTES_PER_DAY
            )
        if worker["type"] == "router":
            for component in worker["components"]:
                if component["id"] == "client_connections":
                    component["extra"]["max_unsent_bytes"] = MAX_UNSENT


@pytest.fixture(scope="module")
def flood_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("floods"), edit=flood_quotas)
    node.start()
    yield node
    node.stop()


@pytest_twisted.ensureDeferred
async def test_a_permalink_flood_from_one_address_is_refused_and_another_address_saves(flood_node):
    """Saves as fast as the node answers: past the burst (a quarter of the per-minute rate) they are refused with
    cell.error.capacity naming the limit; another address saves at once; and an address's bytes per day are
    capped whatever its pace (the store counts them, so a restart or another node does not reset them)."""
    url = flood_node.url
    flooder, other, big = [await connect(url, source=source) for source in ("127.0.0.6", "127.0.0.7", "127.0.0.8")]
    saved = 0
    for _ in range(3 * SAVES_PER_MINUTE):
        try:
            await within(flooder.call("cell.permalink.save", "print('spam')"), 15, "a save")
            saved += 1
        except ApplicationError as exc:
            assert exc.error == "cell.error.capacity", exc
            assert "per minute" in exc.error_message() and exc.kwargs["limit"] == SAVES_PER_MINUTE
            break
    assert saved == SAVES_PER_MINUTE // 4, "the burst, then refused"
    saved = await within(other.call("cell.permalink.save", "print('mine')"), 15, "another address's save")
    assert (await within(other.call("cell.permalink.get", saved["id"]), 15))["code"] == "print('mine')"
    code = "x = '{}'".format("a" * 40_000)  # 40 KB: two fit in the day's 100 KB, not three
    for _ in range(2):
        await within(big.call("cell.permalink.save", code), 15, "a save within the day's bytes")
    exc = await expect_error(big.call("cell.permalink.save", code), "cell.error.capacity")
    assert "a day" in exc.error_message() and exc.kwargs["limit"] == MAX_BYTES_PER_DAY
    await within(big.call("cell.permalink.save", "print('small')"), 15, "a save that still fits")
    for session in (flooder, other, big):
        session.leave()


class _Deaf(ApplicationSession):
    """A client that ignores the router's GOODBYE (it never answers, so it stays joined unless its connection goes)."""

    def onJoin(self, details):
        self.config.extra["joined"].callback(self)

    def onMessage(self, msg):
        if isinstance(msg, message.Goodbye):
            self.config.extra["goodbyes"].append(msg)
            return
        super().onMessage(msg)


async def connect_deaf(url, source):
    """A joined L{_Deaf} session from C{source}; its C{config.extra["lost"]} fires when its connection closes."""
    extra = {"joined": defer.Deferred(), "goodbyes": [], "lost": defer.Deferred()}
    factory = WampWebSocketClientFactory(
        lambda: _Deaf(ComponentConfig(realm="cell", extra=extra)), url=url, serializers=[MsgPackSerializer()]
    )
    protocol = await TCP4ClientEndpoint(
        reactor, "127.0.0.1", int(url.split(":")[2].split("/")[0]), bindAddress=(source, 0)
    ).connect(factory)
    lost = protocol.onClose

    def closed(*args):
        if not extra["lost"].called:
            extra["lost"].callback(None)
        return lost(*args)

    protocol.onClose = closed
    return await within(extra["joined"], 15, "joining the realm")


@pytest_twisted.ensureDeferred
async def test_one_address_holds_its_share_of_sessions_and_another_joins(flood_node):
    """300 sessions from one address: past max_sessions_per_address each is closed with cell.error.capacity (a
    client that ignores GOODBYE loses its connection all the same), and another address joins and is served."""
    url = flood_node.url
    kept = [await connect(url, source="127.0.0.2") for _ in range(MAX_SESSIONS)]
    deaf = await connect_deaf(url, "127.0.0.2")
    await within(deaf.config.extra["lost"], 15, "the router closing a session that ignores GOODBYE")
    assert deaf.config.extra["goodbyes"][0].reason == "cell.error.capacity"
    excess = []
    for _ in range(300 - MAX_SESSIONS - 1):
        excess.append(connect(url, source="127.0.0.2"))
    excess = [s for ok, s in await defer.DeferredList(excess, consumeErrors=True) if ok]
    for session in excess:
        details = await within(session.config.extra["left"], 30, "an excess session being closed")
        assert details.reason == "cell.error.capacity"
        assert "sessions" in details.message and str(MAX_SESSIONS) in details.message
    other = await connect(url, source="127.0.0.3")
    assert "python3" in (await within(other.call("cell.kernelspecs"), 15))["kernelspecs"]
    assert not any(s.config.extra["left"].called for s in kept), "the sessions within the quota stay"
    # A session that leaves frees its place: the next one from the address stays.
    kept.pop().leave()
    await kept_session_leaves(kept, url)
    for session in kept + [other]:
        session.leave()


async def kept_session_leaves(kept, url):
    """A new session from the address stays once one of its sessions left.

    The session router learns of the leave by an event: a session that joins before it arrives is still one too
    many and is closed (on a loaded machine, once, it did). So: join, and if the session is closed within a second,
    the leave had not been counted yet: join again, until one stays a whole second (30 s at most)."""

    async def replaced():
        try:
            session = await connect(url, source="127.0.0.2")
        except Exception:
            return False
        try:
            await holds(lambda: defer.succeed(not session.config.extra["left"].called), 1, "the replacement")
        except AssertionError:
            return False
        kept.append(session)
        return True

    deadline = time.monotonic() + 30
    while not await replaced():
        assert time.monotonic() < deadline, "no new session from the address stayed within 30 s of one leaving"


def router_worker(node):
    return next(p for p in processes_under(node.proc.pid, "crossbar.worker.router.RouterController"))


@pytest_twisted.ensureDeferred
async def test_a_client_that_stops_reading_its_downloads_is_dropped_before_the_router_grows(flood_node):
    """8 progressive files.get of a 60 MB file (480 MB offered) by a client that reads none of it: the router holds
    at most max_unsent_bytes for it, then drops it; its memory grows by less than 100 MB, and another user's calls
    answer meanwhile."""
    url = flood_node.url
    router = router_worker(flood_node)
    spawner = spawner_processes(flood_node.proc.pid)[0]
    reader = await connect(url, source="127.0.0.4")
    other = await connect(url, source="127.0.0.5")
    kernel_id = await start_kernel(reader)
    size, calls = 60_000_000, 8
    result = await call(reader, kernel_id, "execute", "open('big', 'wb').write(bytes({}))".format(size), deadline=60)
    assert result["status"] == "ok", result
    rss_before = router.memory_info().rss
    read_before = spawner.io_counters().read_chars
    peer = reader._transport.transport.getHost()
    reader._transport.transport.pauseProducing()  # it stops reading its socket
    options = CallOptions(on_progress=lambda chunk: None)
    downloads = [
        reader.call("cell.kernel.{}.files.get".format(kernel_id), "big", options=options) for _ in range(calls)
    ]
    for d in downloads:
        d.addErrback(lambda failure: None)
    peak = [rss_before]

    async def offered():
        peak[0] = max(peak[0], router.memory_info().rss)
        return spawner.io_counters().read_chars - read_before >= size * calls

    await within(defer.ensureDeferred(other_user_is_served(other)), 60, "another user's execute")
    await until(offered, 120, "the spawner offering every download")
    assert peak[0] - rss_before < 100 * 2**20, "the router grew by {} MB".format((peak[0] - rss_before) >> 20)

    def still_connected():
        return any(c.raddr and (c.raddr.ip, c.raddr.port) == (peer.host, peer.port) for c in router.net_connections())

    async def dropped():
        return not still_connected()

    await until(dropped, 15, "the router dropping the client that stopped reading")
    assert "stopped reading" in flood_node.log()
    reader._transport.transport.resumeProducing()
    await other_user_is_served(other)
    other.leave()


async def other_user_is_served(session):
    result = await within(session.call("cell.execute", "1+1"), 30, "another user's one-shot")
    assert result["outputs"][-1]["data"]["text/plain"] == "2"


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = PostgresServer(tmp_path_factory.mktemp("pg"))
    server.start()
    yield server
    server.close()


def test_an_addresss_bytes_of_the_day_are_counted_once_for_the_nodes_sharing_postgresql(postgres):
    """Two stores on one PostgreSQL database (two nodes behind a front): the address's bytes of the day are counted
    for both, a refused save leaves no row, another address is not charged, and the rows of old days go."""
    first, second = PostgresPermalinkStore(postgres.dsn), PostgresPermalinkStore(postgres.dsn)
    day, code = 20000, "x" * 40  # 46 bytes with its language: two fit in 100, not three
    try:
        first.save(code, "python", Charge("203.0.113.9", day - 5, 46, 100))  # an old day's use
        first.save(code, "python", Charge("203.0.113.9", day, 46, 100))
        second.save(code, "python", Charge("203.0.113.9", day, 46, 100))
        with pytest.raises(errors.Capacity, match="may store 100 a day"):
            first.save(code, "python", Charge("203.0.113.9", day, 46, 100))
        second.save(code, "python", Charge("203.0.113.10", day, 46, 100))
        with psycopg.connect(postgres.dsn) as connection:
            saved = connection.execute("SELECT count(*) FROM permalinks WHERE code = %s", (code,)).fetchone()[0]
            usage = dict(connection.execute("SELECT address || '@' || day, bytes FROM permalink_usage").fetchall())
        assert saved == 4, "the refused save left no row"
        assert usage == {"203.0.113.9@{}".format(day): 92, "203.0.113.10@{}".format(day): 46}
    finally:
        first.close()
        second.close()


@pytest.mark.unit
def test_the_sqlite_store_keeps_an_addresss_bytes_of_the_day_across_a_restart(tmp_path):
    """The default store: the day's use is in the file, so a restarted node does not give an address a new day."""
    path = str(tmp_path / "permalinks.sqlite")
    store = SqlitePermalinkStore(path)
    store.save("y" * 40, "python", Charge("203.0.113.9", 7, 46, 100))
    store.close()
    store = SqlitePermalinkStore(path)
    store.save("y" * 40, "python", Charge("203.0.113.9", 7, 46, 100))
    with pytest.raises(errors.Capacity, match="has stored 92 bytes"):
        store.save("y" * 40, "python", Charge("203.0.113.9", 7, 46, 100))
    assert store.save("y", "python", Charge("203.0.113.9", 8, 7, 100))  # a new day
    store.close()
