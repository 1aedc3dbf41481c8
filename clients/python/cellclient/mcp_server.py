"""``cellserver-mcp``: a Model Context Protocol server whose tools run code in a cellserver node's kernels.

AI assistants and agents (Claude Desktop, IDEs, agent frameworks: any MCP client) get tools to run code once
(``run_code``), to start kernels and run code in them, to read and write their files, and to interrupt, restart or
shut them down. It speaks MCP over stdio (the client starts it) or streamable HTTP (``--transport http``), through
the maintained ``mcp`` SDK (``pip install './clients/python[mcp]'``), and reaches the node with :class:`AsyncClient`.

All of its MCP clients share its one session with the node: the node's quotas for that session (and its role, with
``--credential-env``) hold for all of them together, and a kernel is reachable by the id this server gave out.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import os
import re
import sys
from typing import Any, Optional

from . import errors
from .aio import AsyncClient, AsyncKernel
from .execution import Execution

try:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # pragma: no cover - said at start-up, with what to install
    MCPServer = None  # type: ignore[assignment,misc]
    ToolError = RuntimeError  # type: ignore[assignment,misc]

__all__ = ["CellTools", "build_server", "main"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

#: the most characters of output a tool answers with (an agent's context is precious); the rest is cut, said so
MAX_TEXT = 100_000


def render(ex: Execution) -> str:
    """An execution as text for a model: what it printed, displayed and returned, and how it ended."""
    parts: list[str] = []
    for output in ex.outputs:
        kind = output.get("output_type")
        if kind == "stream":
            text = output.get("text", "")
            parts.append(text if output.get("name") == "stdout" else "[stderr] " + text)
        elif kind in ("display_data", "execute_result"):
            data = output.get("data") or {}
            shown = data.get("text/plain", "")
            others = [m for m in data if m != "text/plain"]
            prefix = "Out: " if kind == "execute_result" else ""
            parts.append(prefix + shown + ("  [also as {}]".format(", ".join(others)) if others else "") + "\n")
    if ex.error is not None:
        traceback = "\n".join(ex.error.get("traceback") or [])
        parts.append(_ANSI.sub("", traceback) or "{}: {}".format(ex.error.get("ename"), ex.error.get("evalue")))
    if ex.status == "timeout":
        parts.append("[the run timed out and was stopped]\n")
    elif ex.status == "aborted":
        parts.append("[the run was aborted]\n")
    if ex.files:
        parts.append("[files made or changed: {}]\n".format(", ".join(sorted(ex.files))))
    text = "".join(parts) or "[no output]"
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n[output cut at {} characters]".format(MAX_TEXT)
    return text


class CellTools:
    """The tools' work, on one :class:`AsyncClient` (connected at the first call, on the server's event loop)."""

    def __init__(self, url: str, credential: Optional[tuple[str, str]] = None) -> None:
        self.url = url
        self.credential = credential
        self._client: Optional[AsyncClient] = None
        self.kernels: dict[str, AsyncKernel] = {}

    async def client(self) -> AsyncClient:
        if self._client is None:
            client = AsyncClient(self.url, credential=self.credential)
            await client.open()
            self._client = client
        return self._client

    def kernel(self, kernel_id: str) -> AsyncKernel:
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            raise ToolError(
                "no kernel {!r} here: start one with start_kernel (kernels: {})".format(
                    kernel_id, ", ".join(self.kernels) or "none"
                )
            )
        return kernel

    @staticmethod
    def answer(ex: Execution) -> str:
        text = render(ex)
        if ex.status == "error":
            raise ToolError(text)
        return text

    async def run_code(self, code: str, language: str, timeout: Optional[float]) -> str:
        client = await self.client()
        return self.answer(await client.run(code, language=language, timeout=timeout))

    async def start_kernel(self, language: str) -> dict[str, Any]:
        client = await self.client()
        kernel = await client.start_kernel(language)
        self.kernels[kernel.id] = kernel
        return {"kernel_id": kernel.id, "language": kernel.language}

    async def run_in_kernel(self, kernel_id: str, code: str, timeout: Optional[float]) -> str:
        return self.answer(await self.kernel(kernel_id).run(code, timeout=timeout))

    async def shutdown_kernel(self, kernel_id: str) -> str:
        kernel = self.kernel(kernel_id)
        self.kernels.pop(kernel_id, None)
        await kernel.shutdown()
        return "kernel {} shut down".format(kernel_id)


def _guarded(fn: Any) -> Any:
    """A tool whose node errors reach the model as tool errors with the node's message."""

    import functools

    @functools.wraps(fn)
    async def tool(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except errors.CellError as exc:
            raise ToolError("{} ({})".format(exc.message or exc.uri, exc.uri)) from None

    return tool


def build_server(tools: CellTools) -> Any:
    """The MCP server with the node's tools (``mcp``'s MCPServer)."""
    if MCPServer is None:
        raise SystemExit("cellserver-mcp needs the mcp package: pip install 'cellserver-client[mcp]'")
    server = MCPServer(
        "cellserver",
        instructions=(
            "Run code in Jupyter kernels of a cellserver node. run_code runs once in a fresh process; for state kept "
            "between runs, start_kernel and run_in_kernel with its kernel_id, and shutdown_kernel when done."
        ),
    )

    @server.tool()
    @_guarded
    async def run_code(code: str, language: str = "python", timeout: Optional[float] = None) -> str:
        """Run code once in a fresh sandboxed process and return what it printed and its value.

        language: python (default), or another the node offers (bash, r, ...). timeout: seconds (default 30).
        """
        return await tools.run_code(code, language, timeout)

    @server.tool()
    @_guarded
    async def start_kernel(language: str = "python") -> dict[str, Any]:
        """Start a kernel (its variables live across run_in_kernel calls); returns its kernel_id."""
        return await tools.start_kernel(language)

    @server.tool()
    @_guarded
    async def run_in_kernel(kernel_id: str, code: str, timeout: Optional[float] = None) -> str:
        """Run code in a kernel started with start_kernel; returns its output and value."""
        return await tools.run_in_kernel(kernel_id, code, timeout)

    @server.tool()
    @_guarded
    async def list_files(kernel_id: str, path: str = "") -> list[dict[str, Any]]:
        """The files of a kernel's working directory (or of its subdirectory path)."""
        return await tools.kernel(kernel_id).files.list(path)

    @server.tool()
    @_guarded
    async def read_file(kernel_id: str, path: str) -> dict[str, Any]:
        """A file of a kernel's directory: as text when it is UTF-8, else base64."""
        data = await tools.kernel(kernel_id).files.read(path)
        try:
            return {"path": path, "size": len(data), "text": data.decode()}
        except UnicodeDecodeError:
            return {"path": path, "size": len(data), "base64": base64.b64encode(data).decode()}

    @server.tool()
    @_guarded
    async def write_file(kernel_id: str, path: str, content: str, is_base64: bool = False) -> dict[str, Any]:
        """Write a file into a kernel's directory (text, or base64 with is_base64); directories are created."""
        try:
            data = base64.b64decode(content, validate=True) if is_base64 else content.encode()
        except binascii.Error:
            raise ToolError("content is not valid base64") from None
        return await tools.kernel(kernel_id).files.write(path, data)

    @server.tool()
    @_guarded
    async def interrupt(kernel_id: str) -> str:
        """Interrupt the code running in a kernel."""
        await tools.kernel(kernel_id).interrupt()
        return "interrupted"

    @server.tool()
    @_guarded
    async def restart(kernel_id: str) -> str:
        """Restart a kernel: its variables are lost, its files kept."""
        await tools.kernel(kernel_id).restart()
        return "restarted"

    @server.tool()
    @_guarded
    async def shutdown_kernel(kernel_id: str) -> str:
        """Shut a kernel down."""
        return await tools.shutdown_kernel(kernel_id)

    return server


class _BearerToken:
    """ASGI middleware: every request must carry ``Authorization: Bearer <token>`` (401 otherwise)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = ("Bearer " + token).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.token):
                body = b'{"error": "unauthorized", "message": "send Authorization: Bearer <the server\'s token>"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _credential(env_name: Optional[str], authid: str) -> Optional[tuple[str, str]]:
    """``(authid, secret)`` with the secret from the environment variable C{env_name}, or None (anonymous)."""
    if not env_name:
        return None
    secret = os.environ.get(env_name)
    if not secret:
        raise SystemExit("cellserver-mcp: --credential-env names {}, which is not set".format(env_name))
    return (authid, secret)


def main(argv: Optional[list[str]] = None) -> None:
    """The ``cellserver-mcp`` command."""
    parser = argparse.ArgumentParser(prog="cellserver-mcp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("CELL_URL", "ws://127.0.0.1:8080/ws"), help="the node")
    parser.add_argument(
        "--credential-env",
        help="an environment variable holding the secret to log in with (WAMP-CRA, as --authid); else anonymous",
    )
    parser.add_argument("--authid", default="service", help="the authid for --credential-env (default: service)")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="http: the address to listen on (default: loopback)")
    parser.add_argument("--port", type=int, default=8765, help="http: the port (default 8765)")
    parser.add_argument("--path", default="/mcp", help="http: the endpoint's path (default /mcp)")
    parser.add_argument(
        "--token-env", help="http: an environment variable holding a token every request must bear (Bearer)"
    )
    args = parser.parse_args(argv)
    tools = CellTools(args.url, _credential(args.credential_env, args.authid))
    server = build_server(tools)
    if args.transport == "stdio":
        server.run("stdio")
        return
    import anyio
    import uvicorn

    app: Any = server.streamable_http_app(streamable_http_path=args.path)
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            raise SystemExit("cellserver-mcp: --token-env names {}, which is not set".format(args.token_env))
        app = _BearerToken(app, token)
    elif args.host not in ("127.0.0.1", "localhost", "::1"):
        print("cellserver-mcp: listening beyond loopback without --token-env: anyone who reaches the port runs code")
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    print("cellserver-mcp: MCP over streamable HTTP at http://{}:{}{}".format(args.host, args.port, args.path))
    sys.stdout.flush()
    anyio.run(uvicorn.Server(config).serve)


if __name__ == "__main__":  # pragma: no cover
    main()
