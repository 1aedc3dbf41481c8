"""Permalinks: the SQLite store, and cell.permalink.save/get on a real node."""

import pytest_twisted

from components.control.permalinks import ID_ALPHABET, SqlitePermalinkStore
from tests.helpers import expect_error
from tests.wamp_client import connect, within


def test_sqlite_store_round_trip_and_persists(tmp_path):
    path = str(tmp_path / "data" / "permalinks.sqlite")
    store = SqlitePermalinkStore(path)
    ids = {store.save("print({})".format(i), "python") for i in range(50)}
    assert len(ids) == 50 and all(len(i) == 8 and set(i) <= set(ID_ALPHABET) for i in ids)
    some = sorted(ids)[0]
    code, language = store.get(some)
    store.close()
    reopened = SqlitePermalinkStore(path)
    assert reopened.get(some) == (code, language)
    assert reopened.get("missing") is None


@pytest_twisted.ensureDeferred
async def test_save_and_get_over_wamp(node):
    session = await connect(node.url, serializers=["json"])
    saved = await within(session.call("cell.permalink.save", "print('ünïcode')"), 10)
    assert saved["url"] == "/?q=" + saved["id"]
    assert await session.call("cell.permalink.get", saved["id"]) == {"code": "print('ünïcode')", "language": "python"}
    await expect_error(session.call("cell.permalink.get", "nosuchid"), "cell.error.not_found")
    await expect_error(session.call("cell.permalink.save", "x" * (65 * 1024)), "cell.error.too_large")
    await expect_error(session.call("cell.permalink.save", 42), "cell.error.invalid_argument")
    await expect_error(session.call("cell.permalink.save"), "cell.error.invalid_argument")
    session.leave()
