"""The asyncio client: :class:`AsyncClient`, its kernels (:class:`AsyncKernel`) and their files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from types import TracebackType
from typing import Any, Callable, ContextManager, Generator, Optional

from . import errors
from ._connection import Connection, Credential
from .execution import Callbacks, Execution, OutputCallback, TextCallback
from .files import AsyncFiles
from .languages import kernel_name_of

__all__ = ["AsyncClient", "AsyncKernel", "AsyncFiles"]

log = logging.getLogger("cellclient")


class AsyncClient:
    """A connection to a cellserver node for asyncio programs; ``async with AsyncClient(url) as c: ...``.

    :param url: the node's WAMP endpoint, ``ws://HOST:PORT/ws`` (``wss://`` behind a TLS front).
    :param credential: ``(authid, secret)`` to log in as a service (WAMP-CRA), or None to join anonymously.
    :param realm: the realm (``"cell"``).
    :param reconnect_timeout: how long to keep trying to reconnect after the connection drops (seconds); the node
        keeps a kernel for 60 s after its session left, so more than that cannot get kernels back.
    """

    def __init__(
        self,
        url: str,
        credential: Optional[Credential] = None,
        realm: str = "cell",
        connect_timeout: float = 15.0,
        reconnect_timeout: float = 50.0,
    ) -> None:
        if credential is not None and (
            not isinstance(credential, tuple) or len(credential) != 2 or not all(isinstance(x, str) for x in credential)
        ):
            raise errors.InvalidArgument("credential must be a tuple (authid, secret) of two strings")
        self.connection = Connection(url, realm, credential, connect_timeout, reconnect_timeout)
        self._kernels: dict[str, AsyncKernel] = {}
        self.connection.on_rejoin(self._rebind_kernels)
        #: how long a kernel the node does not know after a reconnect is tried again (a restarted router learns its
        #: kernels when their workers join it again)
        self.resume_patience = 30.0

    async def __aenter__(self) -> "AsyncClient":
        await self.open()
        return self

    async def __aexit__(
        self, kind: Optional[type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.close()

    async def open(self) -> "AsyncClient":
        """Connect and join the realm (``async with`` does this)."""
        await self.connection.open()
        return self

    async def close(self) -> None:
        """Shut down the kernels this client started and still holds, then leave."""
        for kernel in list(self._kernels.values()):
            try:
                await kernel.shutdown()
            except errors.CellError:
                pass
        await self.connection.close()

    async def run(
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
        """Run C{code} once in a fresh process (``cell.execute``) and return its :class:`Execution`.

        :param language: ``"python"`` (default), or another language the node offers (``"bash"``, ``"r"``, ...).
        :param files: ``{path: bytes}`` written into its directory first (8 MiB in all).
        :param return_files: send back the files the run made (``Execution.files``, name -> bytes).
        :param timeout: seconds (the node's default is 30, its cap 120); past it ``status`` is ``"timeout"``.
        :raises errors.ConnectionLost: when the connection drops during the run (a one-shot cannot be resumed:
            its process ends with the call).
        """
        kwargs: dict[str, Any] = {}
        name = kernel_name_of(language)
        if name is not None:
            kwargs["kernel_name"] = name
        if files:
            kwargs["files"] = {str(k): bytes(v) for k, v in files.items()}
        if return_files:
            kwargs["return_files"] = True
        if timeout is not None:
            kwargs["timeout"] = timeout
        callbacks = Callbacks(on_stdout, on_stderr, on_display, on_output)

        def progress(output: Any, *args: Any, **kw: Any) -> None:
            if isinstance(output, dict):
                callbacks.deliver(output)

        result = await self.connection.call("cell.execute", code, on_progress=progress, **kwargs)
        return Execution.from_result(result)

    async def start_kernel(self, language: Optional[str] = None) -> "AsyncKernel":
        """A kernel of your own (``cell.kernel.start``); call :meth:`AsyncKernel.shutdown` when done, or use
        ``async with client.kernel(...) as k``."""
        name = kernel_name_of(language)
        started = await self.connection.call("cell.kernel.start", kernel_name=name)
        kernel = AsyncKernel(self, started)
        self._kernels[kernel.id] = kernel
        return kernel

    def kernel(self, language: Optional[str] = None) -> "_KernelContext":
        """``async with client.kernel("python") as k:`` a kernel that is shut down on leaving the block
        (``k = await client.kernel()`` also works)."""
        return _KernelContext(self, language)

    async def kernelspecs(self) -> dict[str, Any]:
        """The languages the node offers (``cell.kernelspecs``)."""
        result: dict[str, Any] = await self.connection.call("cell.kernelspecs")
        return result

    async def _rebind_kernels(self) -> None:
        """After a reconnect: take each kernel back with its resume token, before any call goes through.

        A kernel the node does not know yet (after a router restart, until its worker has joined again) is tried
        again in the background for up to C{resume_patience} seconds; calls on it wait for that, others go on.
        """
        for kernel in list(self._kernels.values()):
            if kernel._resuming is not None and not kernel._resuming.done():
                continue
            try:
                await self.connection.call_while_rejoining("cell.kernel.resume", kernel.id, kernel.resume_token)
            except errors.NotFound:
                kernel._bound.clear()
                kernel._resuming = asyncio.ensure_future(self._resume_later(kernel))

    async def _resume_later(self, kernel: "AsyncKernel") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.resume_patience
        delay = 0.25
        while True:
            try:
                await self.connection.call("cell.kernel.resume", kernel.id, kernel.resume_token)
                break
            except errors.NotFound as exc:
                if loop.time() + delay > deadline:
                    log.warning("cellclient: kernel %s could not be resumed: %s", kernel.id, exc.message)
                    kernel._lost = exc
                    self._kernels.pop(kernel.id, None)
                    break
            except errors.ConnectionLost:
                if self.connection.failed:
                    kernel._lost = errors.ConnectionLost("the connection is gone")
                    break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        kernel._bound.set()


def _leaving(kind: Optional[type[BaseException]]) -> ContextManager[None]:
    """Around the shutdown of a kernel whose ``with client.kernel()`` block ends: if the block raised (C{kind}),
    that error goes on and a :class:`errors.CellError` of the shutdown is dropped."""
    return contextlib.suppress(errors.CellError) if kind is not None else contextlib.nullcontext()


class _KernelContext:
    """What :meth:`AsyncClient.kernel` returns: awaitable, and an async context manager."""

    def __init__(self, client: AsyncClient, language: Optional[str]) -> None:
        self._client = client
        self._language = language
        self._kernel: Optional[AsyncKernel] = None

    def __await__(self) -> Generator[Any, None, "AsyncKernel"]:
        return self._client.start_kernel(self._language).__await__()

    async def __aenter__(self) -> "AsyncKernel":
        self._kernel = await self._client.start_kernel(self._language)
        return self._kernel

    async def __aexit__(
        self, kind: Optional[type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if self._kernel is not None:
            with _leaving(kind):
                await self._kernel.shutdown()


class AsyncKernel:
    """A kernel of the node, owned by this client's session (re-bound for you after a reconnect).

    :ivar id: the kernel's id. :ivar language: its kernelspec name. :ivar files: its working directory.
    """

    def __init__(self, client: AsyncClient, started: dict[str, Any]) -> None:
        self._client = client
        self.id: str = started["kernel_id"]
        self.resume_token: str = started["resume_token"]
        self.language: str = started.get("kernel_name", "python3")
        self.iopub: str = started.get("iopub", "")
        self.files = AsyncFiles(self)
        self._lost: Optional[errors.CellError] = None
        self._tags = True  # the node takes run tags (durable executions); False once it said it does not
        self._bound = asyncio.Event()  # cleared while a resume after a reconnect is pending
        self._bound.set()
        self._resuming: Optional[asyncio.Future[None]] = None

    def _uri(self, name: str) -> str:
        return "cell.kernel.{}.{}".format(self.id, name)

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if not self._bound.is_set():
            await self._bound.wait()
        if self._lost is not None:
            raise self._lost
        return await self._client.connection.call(self._uri(name), *args, **kwargs)

    async def __aenter__(self) -> "AsyncKernel":
        return self

    async def __aexit__(
        self, kind: Optional[type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.shutdown()

    async def run(
        self,
        code: str,
        timeout: Optional[float] = None,
        on_stdout: Optional[TextCallback] = None,
        on_stderr: Optional[TextCallback] = None,
        on_display: Optional[OutputCallback] = None,
        on_output: Optional[OutputCallback] = None,
        stop_on_error: bool = True,
    ) -> Execution:
        """Run C{code} in this kernel; callbacks get each output as it comes, in order.

        If the connection drops meanwhile, the client reconnects, re-binds the kernel and re-attaches to this
        run where it left off: the callbacks go on with nothing lost and nothing twice.
        """
        callbacks = Callbacks(on_stdout, on_stderr, on_display, on_output)
        tag = uuid.uuid4().hex if self._tags else None
        state = {"count": 0}

        def progress(output: Any, *args: Any, **kw: Any) -> None:
            if isinstance(output, dict):
                state["count"] += 1
                callbacks.deliver(output)

        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if not stop_on_error:
            kwargs["stop_on_error"] = False
        try:
            if tag is not None:
                result = await self._call("execute", code, on_progress=progress, tag=tag, **kwargs)
            else:
                result = await self._call("execute", code, on_progress=progress, **kwargs)
        except errors.InvalidArgument as exc:
            if tag is None or "tag" not in exc.message:
                raise
            self._tags = False  # a node without durable executions: nothing started, run it untagged
            return await self.run(code, timeout, on_stdout, on_stderr, on_display, on_output, stop_on_error)
        except errors.ConnectionLost:
            if tag is None or self._client.connection.failed:
                raise
            return await self._reattach(code, kwargs, tag, lambda: state["count"], callbacks, progress)
        return Execution.from_result(result, tag)

    async def _reattach(
        self, code: str, kwargs: dict[str, Any], tag: str, count: Callable[[], int], callbacks: Callbacks, progress: Any
    ) -> Execution:
        """After a dropped connection: attach to run C{tag} from the outputs already seen (C{count()}) on, as often
        as it takes."""
        since = count()
        delay = 0.1
        while True:
            try:
                return await self._attach(tag, since, callbacks)
            except _Dropped as dropped:
                if self._client.connection.failed:
                    raise errors.ConnectionLost("lost the connection during run {}".format(tag)) from None
                since = dropped.next
            except errors.NotFound:
                if self._lost is not None:
                    raise
                if self._client.connection.unsettled:  # a router going down or coming back: not its last word
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                if since > 0:
                    raise
                # the node never got the run (the connection dropped before): send it now, under the same tag
                try:
                    result = await self._call("execute", code, on_progress=progress, tag=tag, **kwargs)
                    return Execution.from_result(result, tag)
                except errors.ConnectionLost:
                    if self._client.connection.failed:
                        raise
                    since = count()

    async def attach(
        self,
        execution: Optional[int | str] = None,
        since: int = 0,
        on_stdout: Optional[TextCallback] = None,
        on_stderr: Optional[TextCallback] = None,
        on_display: Optional[OutputCallback] = None,
        on_output: Optional[OutputCallback] = None,
    ) -> Execution:
        """Re-attach to a run of this kernel (``cell.kernel.<id>.attach``): its outputs from number C{since} on
        (replayed, then live), then its result.

        :param execution: the run's number (``Execution.execution``), its tag, or None for the latest.
        :param since: how many of its outputs you already have.
        """
        callbacks = Callbacks(on_stdout, on_stderr, on_display, on_output)
        target: Optional[int | str] = execution
        while True:
            try:
                return await self._attach(target, since, callbacks)
            except _Dropped as dropped:
                if self._client.connection.failed:
                    raise errors.ConnectionLost("lost the connection during attach") from None
                since = dropped.next
                if dropped.execution is not None:
                    target = dropped.execution

    async def _attach(self, execution: Optional[int | str], since: int, callbacks: Callbacks) -> Execution:
        state: dict[str, Any] = {"next": since, "execution": None}

        def progress(item: Any, *args: Any, **kw: Any) -> None:
            if not isinstance(item, dict):
                return
            state["execution"] = item.get("execution", state["execution"])
            start = item.get("seq", state["next"])
            if start < state["next"]:  # already delivered
                return
            output = item.get("output")
            if isinstance(output, dict):
                callbacks.deliver(output)
            state["next"] = item.get("next", start + 1)

        try:
            result = await self._call("attach", execution=execution, since=since, on_progress=progress)
        except errors.ConnectionLost:
            raise _Dropped(state["next"], state["execution"]) from None
        return Execution.from_result(result, execution if isinstance(execution, str) else None)

    async def executions(self) -> list[dict[str, Any]]:
        """This kernel's recorded runs, oldest first: ``[{"execution", "tag", "status", "outputs"}]``."""
        result: list[dict[str, Any]] = await self._call("executions")
        return result

    async def interrupt(self) -> None:
        """Interrupt the running code (SIGINT, or the kernelspec's interrupt request)."""
        await self._call("interrupt")

    async def restart(self) -> None:
        """Restart the kernel: same id and directory, state lost."""
        await self._call("restart")

    async def shutdown(self) -> None:
        """Shut the kernel down (it is dead afterwards)."""
        self._client._kernels.pop(self.id, None)
        if self._lost is None:
            self._lost = errors.NotFound("kernel {} was shut down".format(self.id))
            await self._client.connection.call(self._uri("shutdown"))

    async def complete(self, code: str, cursor_pos: Optional[int] = None) -> dict[str, Any]:
        """The kernel's completions at C{cursor_pos} (default: the end): ``matches``, ``cursor_start``, ..."""
        result: dict[str, Any] = await self._call("complete", code, len(code) if cursor_pos is None else cursor_pos)
        return result

    async def inspect(self, code: str, cursor_pos: Optional[int] = None, detail_level: int = 0) -> dict[str, Any]:
        """What the kernel knows of the name at C{cursor_pos}: ``found``, ``data`` (its help)."""
        pos = len(code) if cursor_pos is None else cursor_pos
        result: dict[str, Any] = await self._call("inspect", code, pos, detail_level=detail_level)
        return result

    async def widgets(self) -> dict[str, Any]:
        """The kernel's open comms, ``{comm_id: {"target_name": ...}}`` (its widgets are ``jupyter.widget``)."""
        result: dict[str, Any] = await self._call("comm_info")
        return result


class _Dropped(Exception):
    """The connection dropped during an attach that had reached output C{next}."""

    def __init__(self, next_: int, execution: Optional[int]) -> None:
        self.next = next_
        self.execution = execution
