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

import os
import time

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, RegisterOptions
from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from components.common import arguments, errors, uris
from components.common.config import ConfigError, PermalinkConfig, from_mapping
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
        yield self.register(arguments.endpoint(uris.PERMALINK_SAVE_FOR, self.save_for), uris.PERMALINK_SAVE_FOR)
        self.log.info("permalink service ready ({store})", store=self.store.describe())

    @defer.inlineCallbacks
    def save(self, details, code, language="python"):
        """``cell.permalink.save(code, language="python")`` -> ``{id, url}``; within the caller's address's limits."""
        code = arguments.check_str("code", code, self.settings.max_code_bytes)
        language = arguments.check_str("language", language, 64)
        if details.caller is None:
            raise errors.InvalidArgument("the router did not disclose the caller; enable 'disclose.caller'")
        result = yield self._save_as(uris.CLIENT_ADDRESS, details.caller, code, language)
        return result

    def save_for(self, client, code, language="python"):
        """``cell.backend.permalink.save_for(client, code, language)``: a save for an HTTP client (SageMathCell's
        ``POST /permalink``, components.router.sagecell_service), within its address's limits; C{client}: its
        transport (components.common.addresses.http_client), resolved by the session router."""
        code = arguments.check_str("code", code, self.settings.max_code_bytes)
        language = arguments.check_str("language", language, 64)
        return self._save_as(uris.RESOLVE_CLIENT, client, code, language)

    @defer.inlineCallbacks
    def _save_as(self, resolver, who, code, language):
        try:
            address = yield self.call(resolver, who, options=CallOptions(timeout=5000))
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
