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

from twisted.internet import defer

from components import arguments, errors, uris
from components.backend_auth import BackendSession
from components.config import from_mapping

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
        self._db.execute("CREATE TABLE IF NOT EXISTS permalinks (id TEXT PRIMARY KEY, code TEXT NOT NULL, language TEXT NOT NULL, created REAL NOT NULL)")

    def save(self, code, language):
        for _ in range(10):
            permalink_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
            try:
                self._db.execute("INSERT INTO permalinks VALUES (?, ?, ?, ?)", (permalink_id, code, language, time.time()))
                return permalink_id
            except sqlite3.IntegrityError:
                continue
        raise RuntimeError("could not find a free permalink id")

    def get(self, permalink_id):
        row = self._db.execute("SELECT code, language FROM permalinks WHERE id = ?", (permalink_id,)).fetchone()
        return row

    def close(self):
        self._db.close()


def _save_signature(code, language="python"):
    pass


def _get_signature(id):
    pass


class PermalinkService(BackendSession):
    """Serves cell.permalink.save(code, language="python") -> {id, url} and cell.permalink.get(id) -> {code, language}."""

    backend_authid = "permalinks"

    @defer.inlineCallbacks
    def onJoin(self, details):
        extra = dict(self.config.extra or {})
        cbdir = extra.pop("cbdir", ".")
        self.settings = from_mapping(PermalinkConfig, extra)
        directory = self.settings.data_dir if os.path.isabs(self.settings.data_dir) else os.path.join(cbdir, self.settings.data_dir)
        self.store = SqlitePermalinkStore(os.path.join(directory, "permalinks.sqlite"))
        yield self.register(self.save, uris.PERMALINK_SAVE)
        yield self.register(self.get, uris.PERMALINK_GET)
        self.log.info("permalink service ready ({path})", path=directory)

    def save(self, *args, **kwargs):
        a = arguments.bind("cell.permalink.save", _save_signature, args, kwargs)
        code = arguments.check_str("code", a["code"], self.settings.max_code_bytes)
        language = arguments.check_str("language", a["language"], 64)
        permalink_id = self.store.save(code, language)
        return {"id": permalink_id, "url": "/?q=" + permalink_id}

    def get(self, *args, **kwargs):
        a = arguments.bind("cell.permalink.get", _get_signature, args, kwargs)
        permalink_id = arguments.check_str("id", a["id"], 64)
        row = self.store.get(permalink_id)
        if row is None:
            raise errors.NotFound("no permalink {!r}".format(permalink_id))
        return {"code": row[0], "language": row[1]}
