"""The MCP server (``cellserver-mcp``, clients/python/cellclient/mcp_server.py) driven by the official MCP client.

The server and the MCP SDK's client (``ClientSession`` over ``stdio_client`` and ``streamable_http_client``) run in
.mcp-venv (``make test`` builds it: mcp's dependencies clash with Crossbar's pins), against the suite's real node.
This file is both the suite's test (run by .venv's pytest) and, run as a script by .mcp-venv's Python, the MCP
client that drives the server and prints what it saw as JSON.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MCP_BIN = os.path.join(ROOT, ".mcp-venv", "bin")


# ---------------------------------------------------------------- the driver (runs in .mcp-venv)


async def drive(session):
    """Use every tool once through C{session}; what each answered, for the suite to check."""
    seen = {}
    await session.initialize()
    seen["tools"] = sorted(t.name for t in (await session.list_tools()).tools)

    async def call(name, **arguments):
        result = await session.call_tool(name, arguments)
        text = "\n".join(getattr(c, "text", "") for c in result.content)
        return {"error": bool(result.is_error), "text": text, "structured": result.structured_content}

    seen["run"] = await call("run_code", code="print(6 * 7)\n'done'")
    seen["run_error"] = await call("run_code", code="print('before')\n1 / 0")
    seen["bad_language"] = await call("run_code", code="x", language="cobol")
    seen["bash"] = await call("run_code", code="echo from-bash", language="bash")
    seen["flood"] = await call("run_code", code="print('x' * 300000)")
    started = await call("start_kernel", language="python")
    seen["start"] = started
    kernel_id = started["structured"]["kernel_id"]
    seen["state"] = [
        await call("run_in_kernel", kernel_id=kernel_id, code="x = 20"),
        await call("run_in_kernel", kernel_id=kernel_id, code="x + 22"),
    ]
    seen["write"] = await call("write_file", kernel_id=kernel_id, path="d/notes.txt", content="héllo")
    seen["list"] = await call("list_files", kernel_id=kernel_id, path="d")
    seen["read"] = await call("read_file", kernel_id=kernel_id, path="d/notes.txt")
    seen["escape"] = await call("read_file", kernel_id=kernel_id, path="../../etc/passwd")
    seen["bad_base64"] = await call("write_file", kernel_id=kernel_id, path="b", content="@@@", is_base64=True)
    seen["interrupt"] = await call("interrupt", kernel_id=kernel_id)
    seen["restart"] = await call("restart", kernel_id=kernel_id)
    seen["after_restart"] = await call("run_in_kernel", kernel_id=kernel_id, code="x")
    seen["shutdown"] = await call("shutdown_kernel", kernel_id=kernel_id)
    seen["after_shutdown"] = await call("run_in_kernel", kernel_id=kernel_id, code="1")
    seen["guessed_kernel"] = await call("run_in_kernel", kernel_id="0" * 32, code="1")
    return seen


async def drive_stdio(url):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=os.path.join(MCP_BIN, "cellserver-mcp"), args=["--url", url])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            return await drive(session)


async def drive_http(endpoint, token):
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": "Bearer " + token}, timeout=httpx2.Timeout(60, read=120))
    async with http:
        async with streamable_http_client(endpoint, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                return await drive(session)


# ---------------------------------------------------------------- the suite's side


def run_driver(*args):
    proc = subprocess.run(
        [os.path.join(MCP_BIN, "python"), os.path.abspath(__file__), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, "the MCP client failed:\n" + proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(seen):
    assert seen["tools"] == sorted(
        [
            "interrupt",
            "list_files",
            "read_file",
            "restart",
            "run_code",
            "run_in_kernel",
            "shutdown_kernel",
            "start_kernel",
            "write_file",
        ]
    )
    assert not seen["run"]["error"] and "42" in seen["run"]["text"] and "'done'" in seen["run"]["text"]
    error = seen["run_error"]
    assert error["error"], "code that raised is a tool error"
    assert "before" in error["text"] and "ZeroDivisionError" in error["text"]
    assert "\x1b[" not in error["text"], "the traceback reaches the model without terminal colours"
    assert seen["bad_language"]["error"] and "python3" in seen["bad_language"]["text"]
    assert not seen["bash"]["error"] and "from-bash" in seen["bash"]["text"]
    flood = seen["flood"]["text"]
    assert len(flood) < 100_200 and flood.endswith("[output cut at 100000 characters]"), "a model's context is spared"
    assert len(seen["start"]["structured"]["kernel_id"]) == 32
    assert "42" in seen["state"][1]["text"]
    assert not seen["write"]["error"]
    assert [f["name"] for f in seen["list"]["structured"]["result"]] == ["notes.txt"]
    assert seen["read"]["structured"]["text"] == "héllo"
    assert seen["escape"]["error"] and "invalid_argument" in seen["escape"]["text"]
    assert seen["bad_base64"]["error"] and "base64" in seen["bad_base64"]["text"]
    assert not seen["interrupt"]["error"] and not seen["restart"]["error"]
    assert seen["after_restart"]["error"] and "NameError" in seen["after_restart"]["text"]
    assert not seen["shutdown"]["error"]
    assert seen["after_shutdown"]["error"] and seen["guessed_kernel"]["error"]
    assert "no kernel" in seen["guessed_kernel"]["text"]


def test_mcp_over_stdio(node):
    check(run_driver("stdio", node.url))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mcp_over_streamable_http(node, tmp_path):
    port = free_port()
    token = os.urandom(16).hex()
    env = dict(os.environ, MCP_TEST_TOKEN=token)
    log = open(tmp_path / "mcp.log", "wb")
    server = subprocess.Popen(
        [
            os.path.join(MCP_BIN, "cellserver-mcp"),
            "--url",
            node.url,
            "--transport",
            "http",
            "--port",
            str(port),
            "--token-env",
            "MCP_TEST_TOKEN",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = "http://127.0.0.1:{}/mcp".format(port)
    try:
        deadline = time.monotonic() + 30
        while True:  # poll: the server listening
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "mcp.log").read_text()
                assert time.monotonic() < deadline, "cellserver-mcp did not listen within 30 s"
                time.sleep(0.1)  # poll
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            request = urllib.request.Request(
                endpoint, data=b"{}", headers=dict(headers, **{"Content-Type": "application/json"})
            )
            try:
                urllib.request.urlopen(request, timeout=10)
                raise AssertionError("a request without the token was served")
            except urllib.error.HTTPError as e:
                assert e.code == 401 and b"Bearer" in e.read()
        check(run_driver("http", endpoint, token))
    finally:
        server.terminate()
        server.wait(20)
        log.close()


if __name__ == "__main__":
    import anyio

    mode = sys.argv[1]
    if mode == "stdio":
        seen = anyio.run(drive_stdio, sys.argv[2])
    else:
        seen = anyio.run(drive_http, sys.argv[2], sys.argv[3])
    print(json.dumps(seen))
