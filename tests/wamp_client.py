"""A WAMP client for tests: join the node's realm, wait on events with deadlines."""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig
from autobahn.websocket.util import parse_url
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint


class _Session(ApplicationSession):
    def onConnect(self):
        extra = self.config.extra
        if extra.get("authid"):
            self.join(self.config.realm, authmethods=["wampcra"], authid=extra["authid"])
        else:
            self.join(self.config.realm)

    def onChallenge(self, challenge):
        from autobahn.wamp import auth

        return auth.compute_wcs(self.config.extra["secret"].encode(), challenge.extra["challenge"].encode()).decode()

    def onJoin(self, details):
        self.config.extra["details"] = details
        self.config.extra["joined"].callback(self)

    def onLeave(self, details):
        if not self.config.extra["joined"].called:
            self.config.extra["joined"].errback(Exception("{}: {}".format(details.reason, details.message)))
        self.config.extra["left"].callback(details)
        self.disconnect()


def connect(url, realm="cell", serializers=None, authid=None, secret=None, source=None, headers=None, trust=None):
    """A joined session (Deferred).  ``session.config.extra['left']`` fires when it leaves.

    Anonymous (role ``browser``) unless C{authid}/C{secret} are given (WAMP-CRA).
    C{source}: the local IP to connect from (e.g. ``127.0.0.2``: another client address on loopback);
    C{headers}: extra HTTP headers of the WebSocket opening handshake;
    C{trust}: for ``wss://``, the PEM certificate to trust (a front's self-signed one).
    The handshake's response headers are in ``session._transport.http_headers``.
    """
    from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer

    joined, left = defer.Deferred(), defer.Deferred()
    config = ComponentConfig(realm=realm, extra={"joined": joined, "left": left, "authid": authid, "secret": secret})
    choice = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}
    sers = [choice[s]() for s in (serializers or ["msgpack"])]
    factory = WampWebSocketClientFactory(lambda: _Session(config), url=url, serializers=sers, headers=headers)
    secure, host, port, _, _, _ = parse_url(url)
    bind = (source, 0) if source else None
    if secure:
        from twisted.internet.endpoints import SSL4ClientEndpoint
        from twisted.internet.ssl import Certificate, optionsForClientTLS

        with open(trust, "rb") as f:
            tls = optionsForClientTLS(host, trustRoot=Certificate.loadPEM(f.read()))
        endpoint = SSL4ClientEndpoint(reactor, host, port, tls, bindAddress=bind)
    else:
        endpoint = TCP4ClientEndpoint(reactor, host, port, bindAddress=bind)
    d = endpoint.connect(factory)
    d.addCallback(lambda _: joined)
    return within(d, 15, "joining the realm")


def within(d, seconds, what="the operation"):
    """C{d}, failing with a clear message if it has not fired after C{seconds}."""

    def timed_out(result, timeout):
        raise AssertionError("{} did not finish within {} s".format(what, timeout))

    return d.addTimeout(seconds, reactor, onTimeoutCancel=timed_out)


class Recorder:
    """Collects events of a topic; C{wait_for(pred)} fires when one matches."""

    def __init__(self):
        self.events = []
        self._waiters = []

    def __call__(self, event, *args, **kwargs):
        self.events.append(event)
        for pred, d in list(self._waiters):
            if pred(event):
                self._waiters.remove((pred, d))
                d.callback(event)

    def wait_for(self, pred, seconds=10, what="the event"):
        for event in self.events:
            if pred(event):
                return defer.succeed(event)
        d = defer.Deferred()
        self._waiters.append((pred, d))
        return within(d, seconds, what)

    def msg_types(self):
        return [e["header"]["msg_type"] for e in self.events]
