"""The node's own pages on its web port: ``/metrics`` for Prometheus, ``/health`` for the front's checks.

Crossbar serves them as ``resource`` web services, inside the router process
(no second web server), and builds each with its path's ``extra``.  Each page
holds the router's in-process L{LocalLink} (components.router.local_link), through
which it asks the session router (which asks the spawners, wherever they run) at each request.

``/metrics`` answers only clients in ``allow`` (default: loopback), and
never a request a proxy relayed (one carrying ``X-Forwarded-For``,
``Forwarded``, ``X-Real-IP`` or ``Via``): a front on the node's host connects
from loopback, so its peer address says nothing of the client behind it.
Whatever spelling of the path Twisted routes here (``/%6detrics``,
``/metrics/``, ``/metrics?x``), the check is the page's own, so it holds for
all.  A front must not forward it anyway (deploy/haproxy.py), and kernels, in
their own network namespace, cannot reach the node's port at all (see
docs/security.md).
"""

import ipaddress

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from components.common import uris
from components.common.metrics import CONTENT_TYPE, NodeMetrics, render
from components.router.local_link import LocalLink

#: who may read /metrics unless a path's extra says otherwise
DEFAULT_ALLOW = ("127.0.0.0/8", "::1/128")

#: headers a proxy adds: a request carrying one was relayed for someone whose address the peer's is not
RELAYED_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip", b"via")


class _Page(resource.Resource):
    """A leaf page answered asynchronously from the node's processes."""

    isLeaf = True
    log = Logger()

    def __init__(self, extra=None, link=None):
        super().__init__()
        extra = dict(extra or {})
        unknown = set(extra) - {"allow"}
        if unknown:
            raise ValueError("unknown keys {} in the page's extra; it knows: allow".format(sorted(unknown)))
        self._allow = [ipaddress.ip_network(net) for net in extra.get("allow", self.default_allow)]
        self._link = link or LocalLink.named()

    default_allow = DEFAULT_ALLOW
    #: whether a request a proxy relayed is answered (its peer is the proxy, not the client)
    serve_relayed = False

    def _allowed(self, request):
        if not self.serve_relayed and any(request.requestHeaders.hasHeader(h) for h in RELAYED_HEADERS):
            return False
        try:
            address = ipaddress.ip_address(request.getClientAddress().host)
        except (AttributeError, ValueError):
            return False
        return any(address in net for net in self._allow)

    def render_GET(self, request):
        if not self._allowed(request):
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return (
                b"this page is not served to your address, nor through a proxy (see the node's config: the page's "
                b"extra.allow)\n"
            )
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = defer.maybeDeferred(self.answer)

        def write(answer):
            code, content_type, body = answer
            if finished:
                return  # the client left
            request.setResponseCode(code)
            request.setHeader(b"content-type", content_type.encode())
            request.setHeader(b"cache-control", b"no-store")
            request.write(body)
            request.finish()

        def failed(failure):
            self.log.warn("{page}: {error}", page=type(self).__name__, error=failure.getErrorMessage())
            return 503, "text/plain; charset=utf-8", "unavailable: {}\n".format(failure.getErrorMessage()).encode()

        d.addErrback(failed).addCallback(write)
        return server.NOT_DONE_YET

    def answer(self):
        raise NotImplementedError


class MetricsPage(_Page):
    """``/metrics``: the node's metrics in Prometheus' text format (every process's, merged)."""

    @defer.inlineCallbacks
    def answer(self):
        node, relay = yield defer.gatherResults(
            [self._link.call(uris.NODE_METRICS), self._link.call(uris.RELAY_METRICS)], consumeErrors=True
        ).addErrback(lambda failure: failure.value.subFailure)
        merged = NodeMetrics()
        merged.add(node["session_router"], process="session_router")
        for spawner_id, families in sorted(node["spawners"].items()):
            merged.add(families, process="spawner", spawner=spawner_id)
        merged.add(relay, process="router")
        return 200, CONTENT_TYPE, render(merged)


class HealthPage(_Page):
    """``/health``: 200 while the session router answers and some spawner has room; 503 otherwise.

    For a front's health check (HAProxy ``option httpchk``): a node whose
    session router or spawners are gone leaves the rotation.  It says no more
    than that, so it is served to anyone.
    """

    default_allow = ("0.0.0.0/0", "::/0")
    serve_relayed = True

    @defer.inlineCallbacks
    def answer(self):
        status = yield self._link.call(uris.STATUS)
        spawners = status.get("spawners", [])
        room = sum(max(0, s.get("capacity", 0) - s.get("kernels", 0)) for s in spawners)
        body = "{} spawner(s), {} kernel(s), room for {}\n".format(len(spawners), status.get("kernels", 0), room)
        if not spawners or room <= 0:
            return 503, "text/plain; charset=utf-8", ("not ready: " + body).encode()
        return 200, "text/plain; charset=utf-8", ("ok: " + body).encode()
