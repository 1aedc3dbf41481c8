"""Permalinks: short ids for shared code (``/?q=<id>``), served over WAMP.

``PermalinkService`` (the classname in ``.crossbar/config.json``) serves
``cell.permalink.save`` and ``cell.permalink.get``.  The store is SQLite by
default (nothing to run) or PostgreSQL (``"database": "postgresql"``, for
several nodes); both block, so their calls run on a bounded thread pool, never
on the reactor, and a call the database cannot answer in time fails with
``cell.error.unavailable`` instead of holding the caller.  Saves are limited per
client address, in rate and in bytes per day (L{permalink_limits}); the
session router, the node's one address resolver, says whose address a caller is.
"""

import dataclasses
import os
import time

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, RegisterOptions
from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from components.common import arguments, errors, uris
from components.common.config import ConfigError, from_mapping
from components.common.node_key import BackendSession
from components.common.sessions import quiet_if_router_goes
from components.control.permalink_limits import PermalinkLimits
from components.control.permalink_stores import (
    ID_ALPHABET,
    ID_LENGTH,
    UNAVAILABLE,
    PermalinkStore,
    SqlitePermalinkStore,
)

__all__ = ["ID_ALPHABET", "ID_LENGTH", "PermalinkConfig", "PermalinkService", "PermalinkStore", "SqlitePermalinkStore"]

DATABASES = ("sqlite", "postgresql")


@dataclasses.dataclass(frozen=True)
class PermalinkConfig:
    #: where permalinks live: "sqlite" (a file in data_dir) or "postgresql" (the DSN in $dsn_env)
    database: str = "sqlite"
    #: directory of the SQLite file, relative to the node directory (cbdir) unless absolute
    data_dir: str = "data"
    #: largest code that may be stored (bytes of UTF-8)
    max_code_bytes: int = 64 * 1024
    #: the environment variable holding the PostgreSQL DSN: its password never sits in config.json
    dsn_env: str = "CELL_PERMALINK_DSN"
    #: PostgreSQL calls running at once, each on its own thread and connection
    db_threads: int = 4
    #: how long connecting to PostgreSQL may take (libpq's connect_timeout: whole seconds, at least 2)
    connect_timeout_s: int = 3
    #: how long one PostgreSQL statement may run (statement_timeout)
    statement_timeout_s: float = 5.0
    #: saves one client address may make per minute, in bursts of a quarter of it (a Share click is one)
    saves_per_minute_per_address: int = 60
    #: bytes (code and language) one client address may store per day (UTC), on every node sharing the database
    max_bytes_per_address_per_day: int = 16 * 1024 * 1024

    def __post_init__(self):
        if self.database not in DATABASES:
            raise ConfigError("database must be one of {}, not {!r}".format(", ".join(DATABASES), self.database))
        if isinstance(self.db_threads, bool) or not isinstance(self.db_threads, int) or self.db_threads < 1:
            raise ConfigError("db_threads must be an integer >= 1, not {!r}".format(self.db_threads))
        if isinstance(self.connect_timeout_s, bool) or not isinstance(self.connect_timeout_s, int):
            raise ConfigError("connect_timeout_s must be whole seconds, not {!r}".format(self.connect_timeout_s))
        if self.connect_timeout_s < 2:
            raise ConfigError("connect_timeout_s must be at least 2 (libpq's minimum)")
        if not isinstance(self.statement_timeout_s, (int, float)) or self.statement_timeout_s <= 0:
            raise ConfigError(
                "statement_timeout_s must be a positive number, not {!r}".format(self.statement_timeout_s)
            )
        if not self.dsn_env:
            raise ConfigError("dsn_env must name an environment variable")
        for name in ("saves_per_minute_per_address", "max_bytes_per_address_per_day"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError("{} must be an integer >= 1, not {!r}".format(name, value))


def read_config(extra, environ=os.environ):
    """C{(settings, cbdir, dsn)} from the component's ``extra``; the DSN only for PostgreSQL.

    Raises L{ConfigError} for unknown keys, bad values, or PostgreSQL without its DSN in the environment.
    """
    extra = dict(extra or {})
    cbdir = extra.pop("cbdir", ".")
    settings = from_mapping(PermalinkConfig, extra)
    dsn = None
    if settings.database == "postgresql":
        dsn = environ.get(settings.dsn_env)
        if not dsn:
            raise ConfigError(
                "permalinks use PostgreSQL but ${} is empty or not set: put the DSN (e.g. 'host=... dbname=... "
                "user=... password=...') in the node's environment".format(settings.dsn_env)
            )
        # Imported here: a node on SQLite never loads libpq.
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise ConfigError("${} is not a valid PostgreSQL DSN: {}".format(settings.dsn_env, exc)) from None
    return settings, cbdir, dsn


def open_store(settings, cbdir, dsn):
    """The store the settings name (no connection is made here)."""
    if settings.database == "postgresql":
        from components.control.permalink_postgres import PostgresPermalinkStore

        return PostgresPermalinkStore(
            dsn,
            threads=settings.db_threads,
            connect_timeout_s=settings.connect_timeout_s,
            statement_timeout_s=settings.statement_timeout_s,
        )
    directory = settings.data_dir if os.path.isabs(settings.data_dir) else os.path.join(cbdir, settings.data_dir)
    return SqlitePermalinkStore(os.path.join(directory, "permalinks.sqlite"))


class PermalinkService(BackendSession):
    """Serves cell.permalink.save(code, language="python") -> {id, url} and cell.permalink.get(id) -> {code, language}."""

    backend_authid = "permalinks"

    @classmethod
    def check_config(cls, personality, extra):
        """Crossbar calls this before starting the component: a bad setting or a missing DSN stops the start."""
        read_config(extra)

    @quiet_if_router_goes
    @defer.inlineCallbacks
    def onJoin(self, details):
        self.settings, cbdir, dsn = read_config(self.config.extra)
        self.store = open_store(self.settings, cbdir, dsn)
        from twisted.internet import reactor

        self._reactor = reactor
        self.limits = PermalinkLimits(
            reactor, self.settings.saves_per_minute_per_address, self.settings.max_bytes_per_address_per_day
        )
        self._unavailable = False
        self._db_threads = ThreadPool(minthreads=1, maxthreads=self.store.threads, name="permalinks-db")
        self._db_threads.start()
        reactor.addSystemEventTrigger("during", "shutdown", self._stop_store)
        try:
            yield self._in_db(self.store.prepare)
        except errors.Unavailable:
            pass  # logged by _in_db: calls fail with cell.error.unavailable until the database answers
        yield self.register(
            arguments.endpoint(uris.PERMALINK_SAVE, self.save, with_details=True),
            uris.PERMALINK_SAVE,
            options=RegisterOptions(details_arg="details"),
        )
        yield self.register(arguments.endpoint(uris.PERMALINK_GET, self.get), uris.PERMALINK_GET)
        self.log.info("permalink service ready ({store})", store=self.store.describe())

    @defer.inlineCallbacks
    def save(self, details, code, language="python"):
        """``cell.permalink.save(code, language="python")`` -> ``{id, url}``; within the caller's address's limits."""
        code = arguments.check_str("code", code, self.settings.max_code_bytes)
        language = arguments.check_str("language", language, 64)
        if details.caller is None:
            raise errors.InvalidArgument("the router did not disclose the caller; enable 'disclose.caller'")
        try:
            address = yield self.call(uris.CLIENT_ADDRESS, details.caller, options=CallOptions(timeout=5000))
        except ApplicationError as exc:
            raise errors.Unavailable("the node cannot tell your address now; try again shortly") from exc
        charge = self.limits.admit(address, code, language)
        permalink_id = yield self._in_db(self.store.save, code, language, charge)
        return {"id": permalink_id, "url": "/?q=" + permalink_id}

    def get(self, id):  # noqa: A002 (the public argument name)
        """``cell.permalink.get(id)`` -> ``{code, language}``."""
        permalink_id = arguments.check_str("id", id, 64)

        def found(row):
            if row is None:
                raise errors.NotFound("no permalink {!r}".format(permalink_id))
            return {"code": row[0], "language": row[1]}

        return self._in_db(self.store.get, permalink_id).addCallback(found)

    def _in_db(self, f, *args):
        """C{f(*args)} on a store thread; past the store's C{call_timeout_s}, L{errors.Unavailable}.

        A call that waited its turn past the deadline is not started (its caller has had its answer), and
        a thread that still waits for a vanished server no longer holds the caller.
        """
        limit = self.store.call_timeout_s
        deadline = None if limit is None else time.monotonic() + limit

        def run():
            if deadline is not None and time.monotonic() > deadline:
                raise errors.Unavailable(UNAVAILABLE)
            return f(*args)

        d = threads.deferToThreadPool(self._reactor, self._db_threads, run)
        if limit is not None:
            d.addTimeout(limit, self._reactor, onTimeoutCancel=self._timed_out)
        d.addCallbacks(self._answered, self._failed)
        return d

    def _timed_out(self, result, timeout):
        raise errors.Unavailable(UNAVAILABLE) from TimeoutError("no answer within {} s".format(timeout))

    def _answered(self, result):
        if self._unavailable:
            self._unavailable = False
            self.log.info("permalink database reachable again ({store})", store=self.store.describe())
        return result

    def _failed(self, failure):
        """Log the first failure of an outage with its cause (callers only hear that it is unavailable)."""
        if failure.check(errors.Unavailable) and not self._unavailable:
            self._unavailable = True
            self.log.warn(
                "permalink database unavailable ({store}): {cause}; calls fail with {uri} until it answers",
                store=self.store.describe(),
                cause=failure.value.__cause__ or failure.value.message,
                uri=uris.ERROR_UNAVAILABLE,
            )
        return failure

    def _stop_store(self):
        self._db_threads.stop()
        self.store.close()
