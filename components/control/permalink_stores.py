"""Where permalinks live: the store interface, and the default store, a SQLite file.

A store is plain blocking code: the permalink service runs its calls on a
thread pool of the store's size, so a store says how many of its calls may
run at once (C{threads}) and how long one may take (C{call_timeout_s}; None:
unbounded, as a local file is).  A store whose database cannot be reached
raises L{errors.Unavailable} with L{UNAVAILABLE}, the cause chained for the log.
"""

import os
import secrets
import sqlite3
import string
import time

ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 8

#: what a caller is told when the database cannot be reached (the cause goes to the node's log only)
UNAVAILABLE = "the permalink database is unavailable; try again shortly"


def new_id():
    """A random permalink id: 36**8 (about 2.8e12) of them, so guessing one is hopeless and collisions rare."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


class PermalinkStore:
    """C{save(code, language)} -> id; C{get(id)} -> (code, language) or None; C{prepare()}; C{close()}."""

    #: calls that may run at once (one thread each)
    threads = 1
    #: longest a call may take before the caller is told the database is unavailable (None: no limit)
    call_timeout_s = None

    def prepare(self):
        """Make the storage ready (e.g. create the table); called once at start, on a store thread."""

    def save(self, code, language):
        raise NotImplementedError

    def get(self, permalink_id):
        raise NotImplementedError

    def describe(self):
        """Where the permalinks are, for the log (never a password)."""
        return type(self).__name__

    def close(self):
        """Release connections or files; called at shutdown, after the store's threads have stopped."""


class SqlitePermalinkStore(PermalinkStore):
    """One SQLite file: nothing to run or configure, for a single node (the default)."""

    def __init__(self, path):
        # Other users' code: the directory and every file SQLite makes in it (it gives its -wal
        # and -shm files the database's mode) belong to the node's user alone.
        self.path = path
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
            permalink_id = new_id()
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

    def describe(self):
        return "SQLite {}".format(self.path)

    def close(self):
        self._db.close()
