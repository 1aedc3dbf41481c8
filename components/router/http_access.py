"""Who may use an HTTP surface of the node, and from which sites' pages: the set-up the Jupyter face
(components.router.jupyter.face) and the HTTP API (components.router.http_api) share.

L{HttpAccess} holds a surface's L{Access} (its tokens: whom a request comes from), its L{OriginPolicy} (which other
sites' pages are served, and as whom) and its link to the node (the in-process WAMP session, L{LocalLink}), built
from the surface's settings (L{HttpAccessConfig}).  A request goes through L{HttpAccess.screen} first (a page not
served is refused, a CORS preflight answered, a served page's answer given its CORS headers); L{HttpAccess.principal}
then says as whom it is served.  How a refusal is written is each surface's own: a Jupyter client's
``{"message", "reason"}``, the HTTP API's ``{"error", "message"}``.
"""

from components.common.addresses import http_client
from components.router.jupyter.access import Access, Refused
from components.router.jupyter.origins import ALLOW_HEADERS, ALLOW_METHODS, OriginPolicy
from components.router.local_link import LocalLink


def header(request, name):
    """A request header's value as text (latin-1, as HTTP carries it), or None."""
    value = request.getHeader(name)
    return value.decode("latin-1") if isinstance(value, bytes) else value


def client(request):
    """The request's transport, for the node's one address resolver (components.common.addresses.http_client): its
    peer, and the ``X-Forwarded-For`` it carries (which counts only from a front in ``trusted_proxies``)."""
    peer = request.getClientAddress()
    forwarded = request.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
    return http_client(peer.host, peer.port, ", ".join(h.decode("latin-1") for h in forwarded))


class HttpAccess:
    """@param settings: the surface's L{HttpAccessConfig} (or a subclass of it).
    @param link: the node's in-process session (L{LocalLink.named} when None).
    @param methods: the methods a served page may use, C{headers} the headers it may send (a preflight's answer).
    @param refused_preflight: why a preflight is refused, formatted with its C{origin} and C{method}.
    """

    def __init__(
        self,
        settings,
        link=None,
        methods=ALLOW_METHODS,
        headers=ALLOW_HEADERS,
        refused_preflight="{origin} may not {method} here from a browser",
    ):
        self.access = Access(settings.tokens, settings.anonymous)
        self.origins = OriginPolicy(settings.allowed_origins, settings.anonymous_origins)
        self.link = link or LocalLink.named()
        self._methods = methods
        self._headers = headers
        self._refused_preflight = refused_preflight

    def screen(self, request, refuse):
        """The origin policy on C{request}, before anything else: None when it goes on (a served page of another
        site gets its CORS headers, on every answer); else the answer's body: a CORS preflight's 204, or
        C{refuse(status, message)} for a page that is not served."""
        origin, host = header(request, b"origin"), header(request, b"host")
        refusal = self.origins.refusal(origin, host, header(request, b"sec-fetch-site"))
        if refusal is not None:
            return refuse(403, refusal)
        if request.method == b"OPTIONS" and request.getHeader(b"access-control-request-method"):
            return self._preflight(request, origin, host, refuse)
        for name, value in self.origins.cors_headers(origin, host).items():
            request.setHeader(name.encode(), value.encode())
        request.setHeader(b"vary", b"Origin")
        return None

    def _preflight(self, request, origin, host, refuse):
        method = header(request, b"access-control-request-method")
        headers = self.origins.preflight(origin, host, method, self._methods, self._headers)
        if headers is None:
            method = (method or "").strip().upper()[:10]
            return refuse(403, self._refused_preflight.format(origin=str(origin)[:100], method=method))
        request.setResponseCode(204)
        for name, value in dict(headers, Vary="Origin").items():
            request.setHeader(name.encode(), value.encode())
        return b""

    def principal(self, request, query_token=None):
        """The L{Principal} C{request} is served as (L{Access}: its ``Authorization`` header, else C{query_token}).
        L{Refused}: 401 for a token that is not known (or none where one is needed), 403 for a service token on a
        page that may use the surface anonymously only (L{anonymous_only})."""
        principal = self.access.principal(header(request, b"authorization"), query_token)
        if principal.role != "browser" and self.anonymous_only(request):
            raise Refused(403, self.origins.token_refusal(header(request, b"origin"), header(request, b"host")))
        return principal

    def anonymous_only(self, request):
        """Whether C{request}'s page may use the surface as a browser-role principal only: anonymously, or with a
        Binder launch's token (L{OriginPolicy.token_refusal})."""
        return self.origins.token_refusal(header(request, b"origin"), header(request, b"host")) is not None
