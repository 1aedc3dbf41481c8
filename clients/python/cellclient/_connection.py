"""One WAMP session to a node that comes back by itself: autobahn (asyncio) hidden behind ``call``.

When the connection drops, :class:`Connection` reconnects with backoff, runs the rejoin hooks (the client re-binds
its kernels there) and only then lets calls through again; a call made meanwhile waits for that.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl as ssl_module
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import urlparse

import txaio

txaio.use_asyncio()

from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402 (after choosing txaio's framework)
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import auth  # noqa: E402
from autobahn.wamp.exception import ApplicationError, TransportLost  # noqa: E402
from autobahn.wamp.serializer import MsgPackSerializer  # noqa: E402
from autobahn.wamp.types import CallOptions, ComponentConfig  # noqa: E402

from . import errors  # noqa: E402

log = logging.getLogger("cellclient")

Credential = tuple[str, str]
RejoinHook = Callable[[], Awaitable[None]]

#: for how long after a reconnect (or a call cut by a router going down) a call that reached nothing is tried again
STARTUP_PATIENCE = 30.0


class _Session(ApplicationSession):  # type: ignore[misc]
    """autobahn's session, reporting to its :class:`Connection`."""

    def __init__(self, connection: "Connection", config: ComponentConfig) -> None:
        super().__init__(config)
        self._connection = connection

    def onConnect(self) -> None:
        credential = self._connection.credential
        if credential is not None:
            self.join(self.config.realm, authmethods=["wampcra"], authid=credential[0])
        else:
            self.join(self.config.realm)

    def onChallenge(self, challenge: Any) -> str:
        credential = self._connection.credential
        if credential is None or challenge.method != "wampcra":
            raise errors.NotAuthorized("the node asked for {} and no credential was given".format(challenge.method))
        key = credential[1].encode()
        if "salt" in challenge.extra:
            key = auth.derive_key(
                key, challenge.extra["salt"], challenge.extra.get("iterations"), challenge.extra.get("keylen")
            )
        return auth.compute_wcs(key, challenge.extra["challenge"].encode()).decode()

    def onJoin(self, details: Any) -> None:
        self._connection._joined(self)

    def onLeave(self, details: Any) -> Any:
        self._connection._left(self, details)
        return super().onLeave(details)  # fails the calls in flight, then disconnects

    def onDisconnect(self) -> None:
        super().onDisconnect()
        self._connection._disconnected(self)


class Connection:
    """A WAMP session to C{url} (realm C{realm}) that reconnects until C{reconnect_timeout} seconds have passed.

    :param credential: ``(authid, secret)`` for WAMP-CRA (role ``service``), or None to join anonymously.
    """

    def __init__(
        self,
        url: str,
        realm: str = "cell",
        credential: Optional[Credential] = None,
        connect_timeout: float = 15.0,
        reconnect_timeout: float = 50.0,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
            raise errors.InvalidArgument("the URL must be ws://HOST:PORT/ws or wss://...; got {!r}".format(url))
        self.url = url
        self.realm = realm
        self.credential = credential
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self._host = parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "wss" else 80)
        self._ssl = parsed.scheme == "wss"
        self._session: Optional[_Session] = None
        self._join_waiter: Optional[asyncio.Future[_Session]] = None
        self._ready: Optional[asyncio.Event] = None
        self._failure: Optional[errors.CellError] = None
        self._closing = False
        self._reconnecting: Optional[asyncio.Task[None]] = None
        self._rejoin_hooks: list[RejoinHook] = []
        self._gone: Optional[asyncio.Future[None]] = None
        self._unsettled_until = 0.0  # till then, a call that reached nothing is tried again (a node (re)starting)
        #: how many times the connection was (re)established: a call compares it to know the link changed under it
        self.epoch = 0

    # ---- life cycle

    async def open(self) -> None:
        """Connect and join; raises :class:`errors.Unavailable` (or the refusal) if that fails."""
        # txaio.config.loop stays unset: txaio then uses the loop running in the calling thread, so that clients
        # on several loops (a blocking Client's thread, the program's own) live in one process
        self._ready = asyncio.Event()
        await self._connect_once()
        self._ready.set()

    async def close(self) -> None:
        """Leave the realm and close the connection (no reconnect after this)."""
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        session = self._session
        if session is not None:
            gone = asyncio.get_running_loop().create_future()
            self._gone = gone
            if session.is_attached():
                session.leave()
            elif session._transport is not None:
                session.disconnect()
            try:
                await asyncio.wait_for(gone, 5)
            except asyncio.TimeoutError:  # no answer to GOODBYE: close it from this side
                self.drop()
        self._session = None
        if self._ready is not None:
            self._failure = errors.ConnectionLost("the client was closed")
            self._ready.set()

    def on_rejoin(self, hook: RejoinHook) -> None:
        """Run C{hook} after each reconnect, before calls go through again."""
        self._rejoin_hooks.append(hook)

    def drop(self) -> None:
        """Close the transport underneath, as a network failure would (for tests: the client reconnects)."""
        session = self._session
        if session is not None and session._transport is not None:
            tcp: Any = getattr(session._transport, "transport", None)  # the asyncio transport under the WebSocket
            if tcp is not None:
                tcp.abort()

    @property
    def unsettled(self) -> bool:
        """Whether the node was lately going down or coming back (a reconnect, a call cut by a closing router)."""
        return asyncio.get_running_loop().time() < self._unsettled_until

    @property
    def failed(self) -> bool:
        """Whether the connection is gone for good (closed, or not restored in time)."""
        return self._failure is not None

    @property
    def connected(self) -> bool:
        """Whether a joined session is there now."""
        return self._session is not None

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        self._join_waiter = loop.create_future()
        config = ComponentConfig(realm=self.realm)
        factory = WampWebSocketClientFactory(
            lambda: _Session(self, config), url=self.url, serializers=[MsgPackSerializer()]
        )
        context = ssl_module.create_default_context() if self._ssl else None
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(factory, self._host, self._port, ssl=context), self.connect_timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise errors.Unavailable("cannot connect to {}: {}".format(self.url, exc)) from None
        try:
            session = await asyncio.wait_for(asyncio.shield(self._join_waiter), self.connect_timeout)
        except asyncio.TimeoutError:
            transport.abort()
            raise errors.Unavailable(
                "{} did not let the client join within {} s".format(self.url, self.connect_timeout)
            )
        self._session = session
        self.epoch += 1
        self._unsettled_until = asyncio.get_running_loop().time() + STARTUP_PATIENCE

    # ---- autobahn's reports

    def _joined(self, session: _Session) -> None:
        if self._join_waiter is not None and not self._join_waiter.done():
            self._join_waiter.set_result(session)

    def _left(self, session: _Session, details: Any) -> None:
        if self._join_waiter is not None and not self._join_waiter.done():
            self._join_waiter.set_exception(errors.from_wamp(details.reason or "wamp.close", [details.message or ""]))
        self._lost(session)  # before the calls in flight hear of it: none of them may use this session again

    def _disconnected(self, session: _Session) -> None:
        if self._join_waiter is not None and not self._join_waiter.done():
            self._join_waiter.set_exception(errors.Unavailable("the connection to {} closed".format(self.url)))
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        self._lost(session)

    def _lost(self, session: _Session) -> None:
        """The joined C{session} is gone (the router said goodbye, or the transport closed): reconnect."""
        if session is not self._session:
            return
        self._session = None
        if self._closing or self._ready is None:
            return
        self._ready.clear()
        log.info("cellclient: connection to %s lost; reconnecting", self.url)
        self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        assert self._ready is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        delay = 0.05
        last: Exception = errors.Unavailable("no attempt made")
        while not self._closing:
            try:
                await self._connect_once()
                for hook in self._rejoin_hooks:
                    await hook()
                log.info("cellclient: reconnected to %s", self.url)
                self._ready.set()
                return
            except errors.NotAuthorized as exc:
                last = exc
                break
            except Exception as exc:
                last = exc
                if self._session is not None:  # joined, but a hook failed: start over
                    self.drop()
                    self._session = None
            if loop.time() + delay > deadline:
                break
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
        self._failure = errors.ConnectionLost(
            "lost the connection to {} and could not restore it within {} s: {}".format(
                self.url, self.reconnect_timeout, last
            )
        )
        self._ready.set()

    # ---- calls

    def _starting_up(self, exc: ApplicationError) -> bool:
        """Whether C{exc} says that a part of a node going down or coming back is not there: its authorizer or the
        procedure's callee not registered (the call reached nothing, so trying again is safe). Only asked after a
        reconnect or a call cut by a closing router (C{_unsettled_until})."""
        if exc.error == "wamp.error.no_such_procedure":
            return True
        text = str(exc.args[0]) if exc.args else ""
        return exc.error == "wamp.error.authorization_failed" and "no callee registered" in text

    async def session(self) -> _Session:
        """The joined session, waiting while a reconnect is under way."""
        if self._ready is None:
            raise errors.ConnectionLost("the client is not open")
        await self._ready.wait()
        if self._failure is not None:
            raise self._failure
        assert self._session is not None
        return self._session

    async def call(
        self, procedure: str, *args: Any, on_progress: Optional[Callable[..., None]] = None, **kwargs: Any
    ) -> Any:
        """Call C{procedure}; a WAMP error comes out as the :mod:`cellclient.errors` exception named after it, a
        dropped connection as :class:`errors.ConnectionLost`."""
        return await self._invoke(await self.session(), procedure, args, on_progress, kwargs)

    async def call_while_rejoining(self, procedure: str, *args: Any, **kwargs: Any) -> Any:
        """:meth:`call` for the rejoin hooks: on the new session, before other calls may go through."""
        if self._session is None:
            raise errors.ConnectionLost("the connection dropped again while rejoining")
        return await self._invoke(self._session, procedure, args, None, kwargs)

    async def _invoke(
        self,
        session: _Session,
        procedure: str,
        args: tuple[Any, ...],
        on_progress: Optional[Callable[..., None]],
        kwargs: dict[str, Any],
    ) -> Any:
        loop = asyncio.get_running_loop()
        delay = 0.1
        while True:
            try:
                if on_progress is not None:
                    options = CallOptions(on_progress=on_progress)
                    return await session.call(procedure, *args, options=options, **kwargs)
                return await session.call(procedure, *args, **kwargs)
            except ApplicationError as exc:
                if exc.error.startswith("wamp.close.") and not self._closing:
                    # the router left, the link dropped, or the call's callee went away (a router shutting down)
                    self._unsettled_until = loop.time() + STARTUP_PATIENCE
                    raise errors.ConnectionLost("the connection dropped during {}".format(procedure)) from None
                if self._starting_up(exc) and loop.time() + delay < self._unsettled_until:
                    await asyncio.sleep(delay)  # the call reached nothing: a node starting up; try again
                    delay = min(delay * 2, 1.0)
                    if self._session is None:
                        raise errors.ConnectionLost("the connection dropped during {}".format(procedure)) from None
                    session = self._session
                    continue
                raise errors.from_wamp(exc.error, exc.args, exc.kwargs) from None
            except TransportLost:
                raise errors.ConnectionLost("the connection dropped during {}".format(procedure)) from None
