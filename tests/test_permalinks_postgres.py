"""Permalinks in PostgreSQL: a real server (tests/postgres.py) behind a real node, stopped and started under it.

What a user sees: a saved permalink is a row in the database and opens again;
while PostgreSQL is down, calls fail within seconds with
``cell.error.unavailable`` and the node keeps serving everything else; once
PostgreSQL is back, the same node saves and opens permalinks again, old ones
included, with no restart.
"""

import time

import psycopg
import pytest
import pytest_twisted
from twisted.internet import defer

from components.common import errors
from components.common.config import ConfigError
from components.control.permalink_postgres import PostgresPermalinkStore
from components.control.permalinks import read_config
from deploy.postgres import PostgresServer
from tests.helpers import expect_error
from tests.node import Node
from tests.wamp_client import connect, within

DSN_ENV = "CELL_PERMALINK_DSN"
#: an answer while PostgreSQL is down comes at once (connection refused); this leaves room for a loaded machine
FAIL_FAST_S = 4.0
SETTINGS = {"database": "postgresql", "dsn_env": DSN_ENV, "connect_timeout_s": 2, "statement_timeout_s": 2}
#: the longest a call may wait for a server that answers nothing: connect + statement + 1 s
CALL_LIMIT_S = 5.0


def use_postgresql(config):
    for worker in config["workers"]:
        for component in worker.get("components", []):
            if component.get("id") == "permalinks":
                component["extra"].update(SETTINGS)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = PostgresServer(tmp_path_factory.mktemp("pg"))
    server.start()
    yield server
    server.close()


@pytest.fixture
def running_postgres(postgres):
    """The module's server, running again after a test that stopped it."""
    if not postgres.running():
        postgres.start()
    yield postgres
    if not postgres.running():
        postgres.start()


@pytest.fixture(scope="module")
def pg_node(tmp_path_factory, postgres):
    node = Node(tmp_path_factory.mktemp("cell"), edit=use_postgresql, env={DSN_ENV: postgres.dsn})
    node.start(ready=("spawner local joined", "session router ready", "permalink service ready"))
    yield node
    node.stop()


def row_of(server, permalink_id):
    with psycopg.connect(server.dsn) as connection:
        return connection.execute(
            "SELECT code, language, created FROM permalinks WHERE id = %s", (permalink_id,)
        ).fetchone()


async def unavailable(d, what):
    """C{d} fails with cell.error.unavailable, and soon."""
    started = time.monotonic()
    exc = await expect_error(within(d, 30, what), "cell.error.unavailable")
    took = time.monotonic() - started
    assert took < FAIL_FAST_S, "{} took {:.1f} s to fail".format(what, took)
    assert "unavailable" in exc.error_message()
    return exc


@pytest_twisted.ensureDeferred
async def test_a_saved_permalink_is_a_row_in_postgresql(pg_node, running_postgres):
    session = await connect(pg_node.url, serializers=["json"])
    saved = await within(session.call("cell.permalink.save", "print('ünïcode')", "python"), 10)
    assert saved["url"] == "/?q=" + saved["id"]
    code, language, created = row_of(running_postgres, saved["id"])
    assert (code, language) == ("print('ünïcode')", "python") and abs(created - time.time()) < 600
    got = await within(session.call("cell.permalink.get", saved["id"]), 10)
    assert got == {"code": "print('ünïcode')", "language": "python"}
    # Another node sharing the database wrote this one: it opens here too.
    with psycopg.connect(running_postgres.dsn) as connection:
        connection.execute(
            "INSERT INTO permalinks VALUES ('othernod', 'x = 2', 'python', %s) ON CONFLICT DO NOTHING", (time.time(),)
        )
    assert await session.call("cell.permalink.get", "othernod") == {"code": "x = 2", "language": "python"}
    await expect_error(session.call("cell.permalink.get", "nosuchid"), "cell.error.not_found")
    # PostgreSQL text holds no NUL: said plainly, not as a database error.
    await expect_error(session.call("cell.permalink.save", "a\x00b"), "cell.error.invalid_argument")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_an_outage_fails_fast_and_the_node_recovers_by_itself(pg_node, running_postgres):
    session = await connect(pg_node.url)
    before = await within(session.call("cell.permalink.save", "before = 1"), 10)
    # Every store thread holds a connection, so each of them meets a broken one later.
    await within(defer.gatherResults([session.call("cell.permalink.get", before["id"]) for _ in range(8)]), 10)

    running_postgres.stop()  # pg_ctl stop -m fast: the node's connections are closed under it
    await unavailable(session.call("cell.permalink.save", "during = 1"), "save while PostgreSQL is down")
    await unavailable(session.call("cell.permalink.get", before["id"]), "get while PostgreSQL is down")
    # Many at once: none waits behind another for long.
    await defer.gatherResults(
        [defer.ensureDeferred(unavailable(session.call("cell.permalink.get", before["id"]), "get")) for _ in range(8)]
    )
    status = await within(session.call("cell.status"), 10, "cell.status during the outage")
    assert status["spawners"], status

    running_postgres.start()
    # The first calls after the restart already succeed: broken connections are replaced within the call.
    after = await within(session.call("cell.permalink.save", "after = 2"), 10, "save after the restart")
    assert await within(session.call("cell.permalink.get", after["id"]), 10) == {
        "code": "after = 2",
        "language": "python",
    }
    opened = await within(defer.gatherResults([session.call("cell.permalink.get", before["id"]) for _ in range(8)]), 10)
    assert opened == [{"code": "before = 1", "language": "python"}] * 8
    assert row_of(running_postgres, after["id"])[0] == "after = 2"

    log = pg_node.log()
    assert "permalink database unavailable" in log and "permalink database reachable again" in log
    assert running_postgres.password not in log
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_server_that_answers_nothing_holds_no_call_past_the_deadline(pg_node, running_postgres):
    session = await connect(pg_node.url)
    saved = await within(session.call("cell.permalink.save", "frozen = 1"), 10)
    running_postgres.freeze()  # connections stay open, nothing answers: only the node's own deadline helps
    try:
        started = time.monotonic()
        calls = [session.call("cell.permalink.get", saved["id"]) for _ in range(6)]
        calls.append(session.call("cell.permalink.save", "during = 1"))
        for d in calls:
            await expect_error(within(d, 30), "cell.error.unavailable")
        took = time.monotonic() - started
        assert took < CALL_LIMIT_S + 2, "the calls took {:.1f} s".format(took)
        await within(session.call("cell.status"), 10, "cell.status while PostgreSQL is frozen")
    finally:
        running_postgres.thaw()
    after = await within(session.call("cell.permalink.save", "after = 1"), 10, "save after the thaw")
    assert await within(session.call("cell.permalink.get", saved["id"]), 10) == {
        "code": "frozen = 1",
        "language": "python",
    }
    assert row_of(running_postgres, after["id"])[0] == "after = 1"
    session.leave()


def test_the_store_replaces_a_connection_postgresql_closed(running_postgres):
    """The store alone, on this thread: a restart between two calls costs the second call nothing."""
    store = PostgresPermalinkStore(running_postgres.dsn, threads=1)
    try:
        permalink_id = store.save("y = 3", "python")
        running_postgres.restart()
        assert store.get(permalink_id) == ("y = 3", "python")
        running_postgres.stop()
        started = time.monotonic()
        with pytest.raises(errors.Unavailable):
            store.get(permalink_id)
        assert time.monotonic() - started < FAIL_FAST_S
        running_postgres.start()
        assert store.get(permalink_id) == ("y = 3", "python")
    finally:
        store.close()


def test_postgresql_without_its_dsn_stops_the_node_naming_the_variable(tmp_path):
    node = Node(tmp_path, edit=use_postgresql, env={DSN_ENV: ""})
    with pytest.raises(RuntimeError, match="crossbar exited"):
        node.start(timeout=60)
    assert "$CELL_PERMALINK_DSN is empty or not set" in node.log()


@pytest.mark.unit
def test_the_settings_and_the_dsn():
    extra = {"cbdir": "/nonexistent", "database": "postgresql", "dsn_env": "SOME_DSN"}
    with pytest.raises(ConfigError, match=r"\$SOME_DSN"):
        read_config(extra, environ={})
    settings, _, dsn = read_config(extra, environ={"SOME_DSN": "host=db dbname=cell"})
    assert dsn == "host=db dbname=cell" and settings.db_threads == 4 and settings.connect_timeout_s == 3
    with pytest.raises(ConfigError, match=r"\$SOME_DSN is not a valid PostgreSQL DSN"):
        read_config(extra, environ={"SOME_DSN": "host=db nonsense"})
    assert read_config({}, environ={})[0].database == "sqlite"
    for bad in ({"database": "mysql"}, {"db_threads": 0}, {"connect_timeout_s": 1}, {"statement_timeout_s": 0}):
        with pytest.raises(ConfigError, match=list(bad)[0]):
            read_config(bad, environ={})
