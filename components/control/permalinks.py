"""Permalinks: short ids for shared code (``/?q=<id>``), behind a small storage interface.

``PermalinkStore`` is the interface; ``SqlitePermalinkStore`` keeps them in a
SQLite file in a configurable data directory (another database only needs
the two methods).  ``PermalinkService`` is the WAMP component that serves
``cell.permalink.save`` and ``cell.permalink.get``.
"""

import dataclasses
import os
import secrets
import sqlite3
import string
import time

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from components.common import arguments, errors, uris
from components.common.config import from_mapping
from components.common.node_key import BackendSession

ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 8


@dataclasses.dataclass(frozen=True)
class PermalinkConfig:
    #: directory of the SQLite file, relative to the node directory (cbdir) unless absolute
    data_dir: str = "data"
    #: largest code that may be stored (bytes of UTF-8)
    max_code_bytes: int = 64 * 1024


class PermalinkStore:
    """Where permalinks live: C{save(code, language)} -> id; C{get(id)} -> (code, language) or None."""

    def save(self, code, language):
        raise NotImplementedError

    def get(self, permalink_id):
        raise NotImplementedError


class SqlitePermalinkStore(PermalinkStore):
    def __init__(self, path):
        # Other users' code: the directory and every file SQLite makes in it (it gives its -wal
        # and -shm files the database's mode) belong to the node's user alone.
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS permalinks (id TEXT PRIMARY KEY, code TEXT NOT NULL, language TEXT NOT NULL, created REAL NOT NULL)"
        )

    def save(self, code, language):
        for _ in range(10):
            permalink_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
            try:
                self._db.execute(
                    "INSERT INTO permalinks VALUES (?, ?, ?, ?)", (permalink_id, code, language, time.time())
                )
                return permalink_id
            except sqlite3.IntegrityError:
                continue
        raise RuntimeError("could not find a free permalink id")

    def get(self, permalink_id):
        row = self._db.execute("SELECT code, language FROM permalinks WHERE id = ?", (permalink_id,)).fetchone()
        return row

    def close(self):
        self._db.close()


class PermalinkService(BackendSession):
    """Serves cell.permalink.save(code, language="python") -> {id, url} and cell.permalink.get(id) -> {code, language}."""

    backend_authid = "permalinks"

    @defer.inlineCallbacks
    def onJoin(self, details):
        extra = dict(self.config.extra or {})
        cbdir = extra.pop("cbdir", ".")
        self.settings = from_mapping(PermalinkConfig, extra)
        directory = (
            self.settings.data_dir
            if os.path.isabs(self.settings.data_dir)
            else os.path.join(cbdir, self.settings.data_dir)
        )
        self.store = SqlitePermalinkStore(os.path.join(directory, "permalinks.sqlite"))
        # SQLite blocks: its calls run on a thread of their own, one at a time, never on the reactor.
        from twisted.internet import reactor

        self._reactor = reactor
        self._db_thread = ThreadPool(minthreads=1, maxthreads=1, name="permalinks-sqlite")
        self._db_thread.start()
        reactor.addSystemEventTrigger("during", "shutdown", self._db_thread.stop)
        yield self.register(arguments.endpoint(uris.PERMALINK_SAVE, self.save), uris.PERMALINK_SAVE)
        yield self.register(arguments.endpoint(uris.PERMALINK_GET, self.get), uris.PERMALINK_GET)
        self.log.info("permalink service ready ({path})", path=directory)

    def save(self, code, language="python"):
        """``cell.permalink.save(code, language="python")`` -> ``{id, url}``."""
        code = arguments.check_str("code", code, self.settings.max_code_bytes)
        language = arguments.check_str("language", language, 64)
        d = self._in_db(self.store.save, code, language)
        d.addCallback(lambda permalink_id: {"id": permalink_id, "url": "/?q=" + permalink_id})
        return d

    def get(self, id):  # noqa: A002 (the public argument name)
        """``cell.permalink.get(id)`` -> ``{code, language}``."""
        permalink_id = arguments.check_str("id", id, 64)

        def found(row):
            if row is None:
                raise errors.NotFound("no permalink {!r}".format(permalink_id))
            return {"code": row[0], "language": row[1]}

        return self._in_db(self.store.get, permalink_id).addCallback(found)

    def _in_db(self, f, *args):
        return threads.deferToThreadPool(self._reactor, self._db_thread, f, *args)
