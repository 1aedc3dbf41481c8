"""Files both ways between a kernel's working directory and a client (real node, real kernels)."""

import hashlib
import os

import pytest_twisted
from autobahn.wamp.types import CallOptions

from tests.helpers import call, expect_error, start_kernel
from tests.wamp_client import Recorder, connect, within

CHUNK = 1024 * 1024


async def upload(session, kernel_id, path, data):
    result = None
    for offset in range(0, max(len(data), 1), CHUNK):
        piece = data[offset : offset + CHUNK]
        final = offset + CHUNK >= len(data)
        result = await call(session, kernel_id, "files.put", path, piece, offset=offset, final=final)
    return result


async def download(session, kernel_id, path):
    chunks = Recorder()
    result = await call(session, kernel_id, "files.get", path, deadline=60, options=CallOptions(on_progress=chunks))
    data = b"".join(c["data"] for c in sorted(chunks.events, key=lambda c: c["offset"]))
    return data, result


@pytest_twisted.ensureDeferred
async def test_20_mib_round_trip_keeps_every_byte(node):
    session = await connect(node.url, serializers=["msgpack"])
    kernel_id = await start_kernel(session)
    data = os.urandom(20 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    result = await upload(session, kernel_id, "data/blob.bin", data)
    assert result == {"size": len(data), "sha256": sha}
    inside = await call(
        session, kernel_id, "execute", "import hashlib; hashlib.sha256(open('data/blob.bin', 'rb').read()).hexdigest()"
    )
    assert inside["outputs"][0]["data"]["text/plain"] == repr(sha)
    back, result = await download(session, kernel_id, "data/blob.bin")
    assert result == {"size": len(data), "sha256": sha}
    assert hashlib.sha256(back).hexdigest() == sha
    session.leave()


@pytest_twisted.ensureDeferred
async def test_files_made_by_an_execution_are_announced_and_downloadable(node):
    session = await connect(node.url, serializers=["json"])
    kernel_id = await start_kernel(session)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    code = (
        "import numpy as np, matplotlib.pyplot as plt\n"
        "open('out.csv', 'w').write('a,b\\n1,2\\n')\n"
        "np.save('arr.npy', np.arange(10))\n"
        "plt.plot([1, 2]); plt.savefig('plot.png'); plt.close()"
    )
    result = await call(session, kernel_id, "execute", code)
    assert result["status"] == "ok", result
    assert sorted(f["name"] for f in result["files"]) == ["arr.npy", "out.csv", "plot.png"]
    announced = await events.wait_for(lambda e: e["header"]["msg_type"] == "cell_files")
    assert sorted(f["name"] for f in announced["content"]["files"]) == ["arr.npy", "out.csv", "plot.png"]
    csv, _ = await download(session, kernel_id, "out.csv")
    assert csv == b"a,b\n1,2\n"
    png = await call(session, kernel_id, "files.get", "plot.png")
    assert png["data"].startswith(b"\x89PNG")
    listing = await call(session, kernel_id, "files.list")
    assert {"arr.npy", "out.csv", "plot.png"} <= {e["name"] for e in listing}
    assert all(set(e) == {"name", "size", "mtime", "type"} for e in listing)
    result = await call(session, kernel_id, "execute", "1+1")
    assert result["files"] == [], "unchanged files are not announced again"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_traversal_attempts_are_refused_without_side_effects(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    await call(
        session,
        kernel_id,
        "execute",
        "import os; os.symlink('/', 'root'); os.symlink('/etc/passwd', 'pw'); os.mkfifo('pipe')",
    )
    for path in ("../x", "/etc/passwd", "a/../../x", "root/etc/passwd", "pw", "pipe"):
        await expect_error(call(session, kernel_id, "files.get", path), "cell.error.invalid_argument")
    for path in ("../x", "/tmp/cell-escape", "root/tmp/cell-escape", "pw", "pipe"):
        await expect_error(call(session, kernel_id, "files.put", path, b"boom"), "cell.error.invalid_argument")
    await expect_error(call(session, kernel_id, "files.list", "root"), "cell.error.invalid_argument")
    await expect_error(call(session, kernel_id, "files.list", ".."), "cell.error.invalid_argument")
    assert not os.path.exists("/tmp/cell-escape")
    with open("/etc/passwd", "rb") as f:
        assert b"boom" not in f.read()
    names = {e["name"] for e in await call(session, kernel_id, "files.list")}
    assert names == set(), "symlinks and fifos are not listed: only regular files and directories"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_another_session_cannot_list_or_fetch(node):
    owner = await connect(node.url)
    stranger = await connect(node.url)
    kernel_id = await start_kernel(owner)
    await call(owner, kernel_id, "files.put", "secret.txt", b"mine")
    for name, args in (("files.list", ()), ("files.get", ("secret.txt",)), ("files.put", ("secret.txt", b"theirs"))):
        await expect_error(call(stranger, kernel_id, name, *args), "cell.error.not_found")
    data = await call(owner, kernel_id, "files.get", "secret.txt")
    assert data["data"] == b"mine"
    owner.leave()
    stranger.leave()


@pytest_twisted.ensureDeferred
async def test_upload_limits_and_bad_arguments(node):
    session = await connect(node.url)
    kernel_id = await start_kernel(session)
    await expect_error(call(session, kernel_id, "files.put", "x.bin", b"abc", offset=10), "cell.error.invalid_argument")
    await expect_error(call(session, kernel_id, "files.put", "x.bin", 42), "cell.error.invalid_argument")
    await expect_error(
        call(session, kernel_id, "files.put", "x.bin", b"x", offset=64 * 1024 * 1024), "cell.error.too_large"
    )
    await expect_error(call(session, kernel_id, "files.get", "missing.txt"), "cell.error.not_found")
    await expect_error(call(session, kernel_id, "files.get"), "cell.error.invalid_argument")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_one_shot_takes_input_files_and_returns_made_files(node):
    session = await connect(node.url)
    code = "rows = open('in.csv').read().splitlines()\nopen('count.txt', 'w').write(str(len(rows)))"
    result = await within(session.call("cell.execute", code, files={"in.csv": b"a\nb\nc\n"}, return_files=True), 30)
    assert result["status"] == "ok", result
    made = {f["name"]: f for f in result["files"]}
    assert set(made) == {"count.txt"}
    assert made["count.txt"]["data"] == b"3"
    session.leave()
