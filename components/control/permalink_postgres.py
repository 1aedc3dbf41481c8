"""Permalinks in PostgreSQL: one database for several nodes, kept apart from any node's disk.

psycopg blocks, so every call runs on one of the service's store threads, each
with a connection of its own (C{threading.local}).  PostgreSQL may restart or
vanish while the node runs: a call then fails at once with
L{errors.Unavailable} instead of hanging (connect and statement timeouts, TCP
keepalives), and the next call reconnects by itself.  A connection that broke
since its last use (PostgreSQL restarted) is dropped and the call tried once
more on a fresh one, so the first call after a restart already succeeds.
"""

import threading
import time

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from components.common import errors
from components.control.permalink_stores import (
    CHARGE_USAGE,
    CREATE_USAGE_TABLE,
    FORGET_USAGE,
    UNAVAILABLE,
    PermalinkStore,
    new_id,
)

# Same columns as the SQLite table; "created" holds time.time() (REAL would be PostgreSQL's 4-byte float).
CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS permalinks (id TEXT PRIMARY KEY, code TEXT NOT NULL, language TEXT NOT NULL,"
    " created DOUBLE PRECISION NOT NULL)"
)

#: what a database that no longer answers looks like to psycopg: the connection is dropped
BROKEN = (psycopg.OperationalError, psycopg.InterfaceError)


def connection_parameters(dsn, connect_timeout_s, statement_timeout_s):
    """The DSN's parameters, with the configured connect timeout and TCP settings that notice a dead server.

    The DSN's own keepalive settings win; C{connect_timeout} is always the configured one.
    Raises C{psycopg.ProgrammingError} for a DSN that does not parse.
    """
    params = {
        "keepalives": 1,
        "keepalives_idle": max(1, int(statement_timeout_s)),
        "keepalives_interval": 1,
        "keepalives_count": 3,
        # sent data unacknowledged this long: the server is gone (a cut network sends no reset)
        "tcp_user_timeout": int(statement_timeout_s * 1000),
        "application_name": "cellserver-permalinks",
    }
    params.update(conninfo_to_dict(dsn))
    params["connect_timeout"] = connect_timeout_s
    return params


def check_text(name, value):
    """PostgreSQL text holds no NUL character and only valid UTF-8 (SQLite takes both)."""
    if "\x00" in value:
        raise errors.InvalidArgument("{} must not contain NUL characters".format(name))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise errors.InvalidArgument("{} is not valid Unicode text ({})".format(name, exc.reason)) from None


class PostgresPermalinkStore(PermalinkStore):
    """The permalinks table in a PostgreSQL database (made if missing), C{threads} connections at most."""

    def __init__(self, dsn, threads=4, connect_timeout_s=3, statement_timeout_s=5.0):
        self.threads = threads
        self._params = connection_parameters(dsn, connect_timeout_s, statement_timeout_s)
        self._conninfo = make_conninfo("", **self._params)
        self._statement_timeout_ms = int(statement_timeout_s * 1000)
        # A call: a broken connection noticed (at once when PostgreSQL closed it), a new connection, one
        # statement. The service answers cell.error.unavailable past this, whatever a thread still waits for.
        self.call_timeout_s = connect_timeout_s + statement_timeout_s + 1
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open = set()
        self._forgotten_before = None  # the day before which usage rows were last deleted

    def describe(self):
        p = self._params
        return "PostgreSQL {}@{}:{}/{}".format(
            p.get("user", ""), p.get("host") or p.get("hostaddr") or "", p.get("port", ""), p.get("dbname", "")
        )

    def prepare(self):
        self._run(lambda connection: None)  # a new connection creates the table

    def save(self, code, language, charge=None):
        check_text("code", code)
        check_text("language", language)

        def insert(connection):
            with connection.transaction():  # the charge and the row together, or neither
                if charge is not None:
                    self._charge(connection, charge)
                for _ in range(10):
                    permalink_id = new_id()
                    cursor = connection.execute(
                        "INSERT INTO permalinks (id, code, language, created) VALUES (%s, %s, %s, %s)"
                        " ON CONFLICT (id) DO NOTHING",
                        (permalink_id, code, language, time.time()),
                    )
                    if cursor.rowcount == 1:
                        return permalink_id
                raise RuntimeError("could not find a free permalink id")

        return self._run(insert)

    def _charge(self, connection, charge):
        if self._forgotten_before != charge.day - 1:
            connection.execute(FORGET_USAGE.format(p="%s"), (charge.day - 1,))
            self._forgotten_before = charge.day - 1
        check_text("address", charge.address)
        (used,) = connection.execute(
            CHARGE_USAGE.format(p="%s"), (charge.address, charge.day, charge.nbytes)
        ).fetchone()
        if used > charge.limit:
            raise charge.refusal(used - charge.nbytes)

    def get(self, permalink_id):
        try:
            check_text("id", permalink_id)
        except errors.InvalidArgument:
            return None  # no permalink has such an id
        return self._run(
            lambda connection: connection.execute(
                "SELECT code, language FROM permalinks WHERE id = %s", (permalink_id,)
            ).fetchone()
        )

    def close(self):
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            connection.close()

    def _run(self, work):
        """C{work(connection)} on this thread's connection; once more on a new one if the old one broke."""
        while True:
            connection, fresh = self._connection()
            try:
                return work(connection)
            except pg_errors.QueryCanceled as exc:  # statement_timeout: there, but too slow to wait for
                raise errors.Unavailable(UNAVAILABLE) from exc
            except BROKEN as exc:
                self._drop(connection)
                if fresh:
                    raise errors.Unavailable(UNAVAILABLE) from exc

    def _connection(self):
        """This thread's connection and whether it is new: made (with the table) when there is none."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and not connection.closed:
            return connection, False
        try:
            connection = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:  # refused, timed out, starting up, shutting down, password refused
            raise errors.Unavailable(UNAVAILABLE) from exc
        try:
            connection.execute("SELECT set_config('statement_timeout', %s, false)", (str(self._statement_timeout_ms),))
            for statement in (CREATE_TABLE, CREATE_USAGE_TABLE):
                try:
                    connection.execute(statement)
                except (pg_errors.UniqueViolation, pg_errors.DuplicateTable):
                    pass  # another connection or node created it at the same moment
        except psycopg.Error as exc:
            connection.close()
            raise errors.Unavailable(UNAVAILABLE) from exc
        self._local.connection = connection
        with self._lock:
            self._open.add(connection)
        return connection, True

    def _drop(self, connection):
        self._local.connection = None
        with self._lock:
            self._open.discard(connection)
        connection.close()
