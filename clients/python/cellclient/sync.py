"""The blocking client: :class:`Client` runs an :class:`~cellclient.aio.AsyncClient` on an event loop of its own
(a daemon thread), so that plain scripts need no asyncio. Callbacks are called on that thread, in order.

Each blocking method is the asyncio method of the same name, made by :func:`_blocking`: same arguments, result,
errors and docstring, without ``await``. What an operation does is written once, in :mod:`cellclient.aio`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from types import TracebackType
from typing import Any, Callable, Concatenate, Coroutine, Generic, Optional, ParamSpec, TypeVar

from . import errors
from .aio import AsyncClient, AsyncFiles, AsyncKernel, _leaving

__all__ = ["Client", "Kernel", "Files"]

T = TypeVar("T")
P = ParamSpec("P")
A = TypeVar("A")


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


class _Blocking(Generic[A]):
    """A blocking face of the asyncio object ``aio``: :meth:`_run` waits for one of its coroutines."""

    _aio: A

    @property
    def aio(self) -> A:
        """The asyncio object underneath (its coroutines run on this client's loop only)."""
        return self._aio

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        raise NotImplementedError


def _blocking(method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> Callable[Concatenate[Any, P], T]:
    """The blocking twin of an asyncio ``method``: it calls ``method`` on ``self.aio`` and waits for it on the client's
    loop thread (same signature and docstring)."""

    @functools.wraps(method)
    def blocking(self: _Blocking[Any], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._aio, *args, **kwargs))

    return blocking


def _arguments_of(
    init: Callable[Concatenate[Any, P], None],
) -> Callable[[Callable[..., None]], Callable[Concatenate[Any, P], None]]:
    """Gives the decorated ``__init__`` the signature of ``init`` (for type checkers, ``inspect`` and ``help``)."""

    def give(method: Callable[..., None]) -> Callable[Concatenate[Any, P], None]:
        return functools.wraps(init)(method)

    return give


class Client(_Blocking[AsyncClient]):
    """A connection to a cellserver node: ``with Client("ws://HOST:8080/ws") as c: c.run("print(1)")``.

    Same arguments and methods as :class:`~cellclient.aio.AsyncClient`, without ``await``.
    """

    @_arguments_of(AsyncClient.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._aio = AsyncClient(*args, **kwargs)
        self._loop: Optional[_Loop] = _Loop()
        try:
            self._loop.run(self._aio.open())
        except BaseException:
            self._loop.stop()
            self._loop = None
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise errors.ConnectionLost("the client is closed")
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

    run = _blocking(AsyncClient.run)
    kernelspecs = _blocking(AsyncClient.kernelspecs)

    def kernel(self, language: Optional[str] = None) -> "Kernel":
        """A kernel of your own, started now; ``with client.kernel() as k:`` shuts it down at the end."""
        return Kernel(self, self._run(self._aio.start_kernel(language)))

    def drop_connection(self) -> None:
        """Cut the connection as a network failure would (the client reconnects and resumes): for tests."""
        assert self._loop is not None
        self._loop.loop.call_soon_threadsafe(self._aio.connection.drop)


class _OfClient(_Blocking[A]):
    """A blocking face of a part of a :class:`Client` (a kernel, its files), run on that client's loop."""

    def __init__(self, client: Client, aio: A) -> None:
        self._client = client
        self._aio = aio

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._client._run(coro)


class Kernel(_OfClient[AsyncKernel]):
    """A kernel of the node: see :class:`~cellclient.aio.AsyncKernel` (same methods, without ``await``)."""

    def __init__(self, client: Client, kernel: AsyncKernel) -> None:
        super().__init__(client, kernel)
        self.id = kernel.id
        self.language = kernel.language
        self.files = Files(client, kernel.files)

    def __enter__(self) -> "Kernel":
        return self

    def __exit__(
        self, kind: Optional[type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        with _leaving(kind):
            self.shutdown()

    run = _blocking(AsyncKernel.run)
    attach = _blocking(AsyncKernel.attach)
    executions = _blocking(AsyncKernel.executions)
    interrupt = _blocking(AsyncKernel.interrupt)
    restart = _blocking(AsyncKernel.restart)
    shutdown = _blocking(AsyncKernel.shutdown)
    complete = _blocking(AsyncKernel.complete)
    inspect = _blocking(AsyncKernel.inspect)
    widgets = _blocking(AsyncKernel.widgets)


class Files(_OfClient[AsyncFiles]):
    """A kernel's working directory: see :class:`~cellclient.aio.AsyncFiles` (same methods, without ``await``)."""

    list = _blocking(AsyncFiles.list)
    read = _blocking(AsyncFiles.read)
    write = _blocking(AsyncFiles.write)
