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

#: each client address's bytes saved per day (components.control.permalink_limits), in both databases
CREATE_USAGE_TABLE = (
    "CREATE TABLE IF NOT EXISTS permalink_usage (address TEXT NOT NULL, day BIGINT NOT NULL, bytes BIGINT NOT NULL,"
    " PRIMARY KEY (address, day))"
)
#: add a save's bytes to its address's day, answering the day's total (SQLite >= 3.35 and PostgreSQL alike)
CHARGE_USAGE = (
    "INSERT INTO permalink_usage (address, day, bytes) VALUES ({p}, {p}, {p}) ON CONFLICT (address, day)"
    " DO UPDATE SET bytes = permalink_usage.bytes + excluded.bytes RETURNING bytes"
)
#: rows of days before yesterday are of no use
FORGET_USAGE = "DELETE FROM permalink_usage WHERE day < {p}"


def new_id():
    """A random permalink id: 36**8 (about 2.8e12) of them, so guessing one is hopeless and collisions rare."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


class PermalinkStore:
    """C{save(code, language, charge=None)} -> id; C{get(id)} -> (code, language) or None; C{prepare()}; C{close()}.

    A C{charge} (L{components.control.permalink_limits.Charge}) is added to its address's use of the day in the
    save's own transaction; past its limit nothing is saved and C{charge.refusal(used_before)} is raised.
    """

    #: calls that may run at once (one thread each)
    threads = 1
    #: longest a call may take before the caller is told the database is unavailable (None: no limit)
    call_timeout_s = None

    def prepare(self):
        """Make the storage ready (e.g. create the table); called once at start, on a store thread."""

    def save(self, code, language, charge=None):
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
        self._db.execute(CREATE_USAGE_TABLE)
        self._forgotten_before = None

    def save(self, code, language, charge=None):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if charge is not None:
                self._charge(charge)
            permalink_id = self._insert(code, language)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return permalink_id

    def _charge(self, charge):
        if self._forgotten_before != charge.day - 1:
            self._db.execute(FORGET_USAGE.format(p="?"), (charge.day - 1,))
            self._forgotten_before = charge.day - 1
        (used,) = self._db.execute(CHARGE_USAGE.format(p="?"), (charge.address, charge.day, charge.nbytes)).fetchone()
        if used > charge.limit:
            raise charge.refusal(used - charge.nbytes)

    def _insert(self, code, language):
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
