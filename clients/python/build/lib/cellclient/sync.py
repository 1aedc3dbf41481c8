"""The blocking client: :class:`Client` runs an :class:`~cellclient.aio.AsyncClient` on an event loop of its own
(a daemon thread), so that plain scripts need no asyncio. Callbacks are called on that thread, in order."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from types import TracebackType
from typing import Any, Coroutine, Optional, TypeVar

from ._connection import Credential
from .aio import AsyncClient, AsyncFiles, AsyncKernel
from .execution import Execution, OutputCallback, TextCallback

__all__ = ["Client", "Kernel", "Files"]

T = TypeVar("T")


class _Loop:
    """An event loop running in a daemon thread; :meth:`run` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="cellclient", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            while True:
                try:  # waits in slices, so that signals (Ctrl-C) reach the calling thread
                    return future.result(0.25)
                except concurrent.futures.TimeoutError:
                    continue
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class Client:
    """A connection to a cellserver node: ``with Client("ws://HOST:8080/ws") as c: c.run("print(1)")``.

    Same arguments and methods as :class:`~cellclient.aio.AsyncClient`, without ``await``.
    """

    def __init__(
        self,
        url: str,
        credential: Optional[Credential] = None,
        realm: str = "cell",
        connect_timeout: float = 15.0,
        reconnect_timeout: float = 50.0,
    ) -> None:
        self._aio = AsyncClient(url, credential, realm, connect_timeout, reconnect_timeout)
        self._loop: Optional[_Loop] = _Loop()
        try:
            self._loop.run(self._aio.open())
        except BaseException:
            self._loop.stop()
            self._loop = None
            raise

    @property
    def aio(self) -> AsyncClient:
        """The asyncio client underneath (its coroutines run on this client's loop only)."""
        return self._aio

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            from .errors import ConnectionLost

            raise ConnectionLost("the client is closed")
        return self._loop.run(coro)

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self, kind: Optional[type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    def close(self) -> None:
        """Shut down this client's kernels and leave."""
        if self._loop is not None:
            try:
                self._loop.run(self._aio.close())
            finally:
                self._loop.stop()
                self._loop = None

    def run(
        self,
        code: str,
        language: Optional[str] = None,
        files: Optional[dict[str, bytes]] = None,
        return_files: bool = False,
        timeout: Optional[float] = None,
        on_stdout: Optional[TextCallback] = None,
        on_stderr: Optional[TextCallback] = None,
        on_display: Optional[OutputCallback] = None,
        on_output: Optional[OutputCallback] = None,
    ) -> Execution:
        """A one-shot run in a fresh process: see :meth:`AsyncClient.run`."""
        return self._run(
            self._aio.run(code, language, files, return_files, timeout, on_stdout, on_stderr, on_display, on_output)
        )

    def kernel(self, language: Optional[str] = None) -> "Kernel":
        """A kernel of your own, started now; ``with client.kernel() as k:`` shuts it down at the end."""
        return Kernel(self, self._run(self._aio.start_kernel(language)))

    def kernelspecs(self) -> dict[str, Any]:
        """The languages the node offers."""
        return self._run(self._aio.kernelspecs())

    def drop_connection(self) -> None:
        """Cut the connection as a network failure would (the client reconnects and resumes): for tests."""
        assert self._loop is not None
        self._loop.loop.call_soon_threadsafe(self._aio.connection.drop)


class Kernel:
    """A kernel of the node: see :class:`~cellclient.aio.AsyncKernel` (same methods, without ``await``)."""

    def __init__(self, client: Client, kernel: AsyncKernel) -> None:
        self._client = client
        self.aio = kernel
        self.id = kernel.id
        self.language = kernel.language
        self.files = Files(client, kernel.files)

    def __enter__(self) -> "Kernel":
        return self

    def __exit__(
        self, kind: Optional[type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        from .errors import CellError

        try:
            self.shutdown()
        except CellError:
            if kind is None:
                raise

    def run(
        self,
        code: str,
        timeout: Optional[float] = None,
        on_stdout: Optional[TextCallback] = None,
        on_stderr: Optional[TextCallback] = None,
        on_display: Optional[OutputCallback] = None,
        on_output: Optional[OutputCallback] = None,
        stop_on_error: bool = True,
    ) -> Execution:
        """Run C{code} in this kernel (resumed across a dropped connection): see :meth:`AsyncKernel.run`."""
        return self._client._run(
            self.aio.run(code, timeout, on_stdout, on_stderr, on_display, on_output, stop_on_error)
        )

    def attach(
        self,
        execution: Optional[int | str] = None,
        since: int = 0,
        on_stdout: Optional[TextCallback] = None,
        on_stderr: Optional[TextCallback] = None,
        on_display: Optional[OutputCallback] = None,
        on_output: Optional[OutputCallback] = None,
    ) -> Execution:
        """Re-attach to run C{execution} (number, tag, or None for the latest) from output C{since} on."""
        return self._client._run(self.aio.attach(execution, since, on_stdout, on_stderr, on_display, on_output))

    def executions(self) -> list[dict[str, Any]]:
        """This kernel's recorded runs, oldest first."""
        return self._client._run(self.aio.executions())

    def interrupt(self) -> None:
        """Interrupt the running code."""
        self._client._run(self.aio.interrupt())

    def restart(self) -> None:
        """Restart the kernel (state lost, same id and files)."""
        self._client._run(self.aio.restart())

    def shutdown(self) -> None:
        """Shut the kernel down."""
        self._client._run(self.aio.shutdown())

    def complete(self, code: str, cursor_pos: Optional[int] = None) -> dict[str, Any]:
        """Completions at C{cursor_pos} (default: the end of C{code})."""
        return self._client._run(self.aio.complete(code, cursor_pos))

    def inspect(self, code: str, cursor_pos: Optional[int] = None, detail_level: int = 0) -> dict[str, Any]:
        """Help on the name at C{cursor_pos}."""
        return self._client._run(self.aio.inspect(code, cursor_pos, detail_level))

    def widgets(self) -> dict[str, Any]:
        """The kernel's open comms (widgets), ``{comm_id: {"target_name": ...}}``."""
        return self._client._run(self.aio.widgets())


class Files:
    """A kernel's working directory: see :class:`~cellclient.aio.AsyncFiles`."""

    def __init__(self, client: Client, files: AsyncFiles) -> None:
        self._client = client
        self._files = files

    def list(self, path: str = "") -> list[dict[str, Any]]:
        """The entries of directory C{path}."""
        return self._client._run(self._files.list(path))

    def read(self, path: str) -> bytes:
        """The file's bytes."""
        return self._client._run(self._files.read(path))

    def write(self, path: str, data: bytes | str) -> dict[str, Any]:
        """Write C{data} to C{path}."""
        return self._client._run(self._files.write(path, data))
