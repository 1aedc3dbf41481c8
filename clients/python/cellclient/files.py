"""A kernel's working directory, for asyncio (:class:`AsyncFiles`; ``Kernel.files`` wraps it for blocking code)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from . import errors

if TYPE_CHECKING:
    from .aio import AsyncKernel

__all__ = ["AsyncFiles"]

#: bytes per files.put call when writing a file (the node's own chunk for reads is 256 KiB)
WRITE_CHUNK = 1 << 20


class AsyncFiles:
    """A kernel's working directory: paths are relative to it (no ``..``, no absolute paths, no symlinks)."""

    def __init__(self, kernel: "AsyncKernel") -> None:
        self._kernel = kernel

    async def list(self, path: str = "") -> list[dict[str, Any]]:
        """``[{"name", "size", "mtime", "type": "file" | "dir"}]`` of the directory C{path}."""
        result: list[dict[str, Any]] = await self._kernel._call("files.list", path)
        return result

    async def read(self, path: str) -> bytes:
        """The whole file C{path} (fetched in chunks; its checksum checked)."""
        chunks: list[bytes] = []

        def progress(chunk: Any, *args: Any, **kw: Any) -> None:
            if isinstance(chunk, dict) and "data" in chunk:
                chunks.append(bytes(chunk["data"]))

        end = await self._kernel._call("files.get", path, on_progress=progress)
        data = b"".join(chunks) if chunks or "data" not in end else bytes(end["data"])
        if "sha256" in end and hashlib.sha256(data).hexdigest() != end["sha256"]:
            raise errors.CellError(
                "file {} arrived damaged (checksum mismatch)".format(path), uri="cell.client.damaged"
            )
        return data

    async def write(self, path: str, data: bytes | str) -> dict[str, Any]:
        """Write C{data} (bytes, or text as UTF-8) to C{path}, creating directories; returns ``{"size", "sha256"}``."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        offset = 0
        while True:
            chunk = raw[offset : offset + WRITE_CHUNK]
            final = offset + len(chunk) >= len(raw)
            result: dict[str, Any] = await self._kernel._call("files.put", path, chunk, offset=offset, final=final)
            offset += len(chunk)
            if final:
                return result
