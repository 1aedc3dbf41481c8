"""``/jupyter``: Jupyter Kernel Gateway's REST API on the node's port (a Crossbar ``resource`` web service).

    GET    /jupyter/api                          {"version": ...}
    GET    /jupyter/api/kernelspecs              every language the node's spawners offer
    GET    /jupyter/api/kernelspecs/<name>
    GET    /jupyter/api/kernels                  the caller's kernels (a token's; none for anonymous clients)
    POST   /jupyter/api/kernels                  {"name": "python3"} -> 201, a kernel from the warm pool
    GET    /jupyter/api/kernels/<id>
    DELETE /jupyter/api/kernels/<id>             204
    POST   /jupyter/api/kernels/<id>/interrupt   204
    POST   /jupyter/api/kernels/<id>/restart     200
    GET    /jupyter/api/kernels/<id>/channels    the WebSocket (components.router.jupyter.channels)

Errors are JSON ``{"message", "reason"}`` with the HTTP status Jupyter
clients expect (401, 404, 403 for a quota, 400 for bad input, 503 while the
node cannot answer).  Settings come from the path's ``extra`` (docs/config.md).
Requests from other sites' pages are refused (components.router.jupyter.origins).
"""

import json

from autobahn.twisted.resource import WebSocketResource
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from components.common import kernelspecs, uris
from components.common.addresses import http_client
from components.common.config import FaceConfig, from_mapping
from components.router.backend_link import BackendLink
from components.router.jupyter.access import Access, Refused
from components.router.jupyter.channels import channels_factory
from components.router.jupyter.kernels import FaceKernels
from components.router.jupyter.origins import OriginPolicy, form_body

#: what GET /api answers (Jupyter Kernel Gateway's API, as this version of cellserver serves it)
API_VERSION = "cellserver-0.1.0"

#: cell.error.* URIs and the HTTP status each becomes
HTTP_STATUS = {
    uris.ERROR_NOT_FOUND: 404,
    uris.ERROR_CAPACITY: 403,
    uris.ERROR_INVALID_ARGUMENT: 400,
    uris.ERROR_TOO_LARGE: 413,
    uris.ERROR_TIMEOUT: 504,
    uris.ERROR_KERNEL_DIED: 410,
}


class HttpError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class JupyterFace(resource.Resource):
    """See the module docstring."""

    isLeaf = True
    log = Logger()

    def __init__(self, extra=None, link=None):
        super().__init__()
        self.settings = from_mapping(FaceConfig, dict(extra or {}))
        self.access = Access(self.settings.tokens, self.settings.anonymous)
        self.origins = OriginPolicy(self.settings.allowed_origins)
        self.link = link or BackendLink("jupyter_face")
        self.kernels = FaceKernels(self.link)
        self.link.on_join.append(self._joined)
        self._channels = WebSocketResource(channels_factory(self, self.settings.max_message_bytes))

    def _joined(self, session):
        """The backend session (re)joined: offer the sizes of the face's tables to the backend (the soak)."""
        d = session.register(self.kernels.sizes, uris.FACE_TABLES)
        d.addErrback(lambda failure: self.log.warn("jupyter face: no table sizes: {e}", e=failure.getErrorMessage()))

    def render(self, request):
        origin, host = _header(request, b"origin"), _header(request, b"host")
        refusal = self.origins.refusal(origin, host, _header(request, b"sec-fetch-site"))
        if refusal is None and request.method == b"OPTIONS" and request.getHeader(b"access-control-request-method"):
            return self._preflight(request, origin, host)
        if refusal is not None:
            return self._refuse(request, 403, refusal)
        for name, value in self.origins.cors_headers(origin, host).items():
            request.setHeader(name.encode(), value.encode())
        request.setHeader(b"vary", b"Origin")
        path = [p.decode("utf-8", "replace") for p in request.postpath if p]
        if len(path) == 4 and path[:2] == ["api", "kernels"] and path[3] == "channels":
            return self._channels.render(request)
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = defer.maybeDeferred(self._route, request, path)
        d.addCallbacks(self._write, self._failed, callbackArgs=(request, finished), errbackArgs=(request, finished))
        return server.NOT_DONE_YET

    # -- answering --

    def _preflight(self, request, origin, host):
        """A CORS preflight: 204 with what a page of an allowed origin may do; 403 for any other origin."""
        headers = self.origins.preflight(origin, host, _header(request, b"access-control-request-method"))
        if headers is None:
            return self._refuse(request, 403, "{} may not use this face from a browser".format(str(origin)[:100]))
        request.setResponseCode(204)
        for name, value in dict(headers, Vary="Origin").items():
            request.setHeader(name.encode(), value.encode())
        return b""

    def _refuse(self, request, code, message):
        """An answer written at once, before any principal is decided (the origin policy's refusals)."""
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps({"message": message, "reason": message}).encode()

    def _write(self, answer, request, finished):
        code, body = answer
        if finished:
            return
        request.setResponseCode(code)
        request.setHeader(b"cache-control", b"no-store")
        if body is not None:
            request.setHeader(b"content-type", b"application/json")
            request.write(json.dumps(body).encode())
        request.finish()

    def _failed(self, failure, request, finished):
        error = failure.value
        if isinstance(error, Refused):
            code, message = error.code, str(error)
        elif isinstance(error, HttpError):
            code, message = error.code, str(error)
        elif isinstance(error, ApplicationError):
            code = HTTP_STATUS.get(error.error, 503)
            message = str(error.args[0]) if error.args else error.error
        else:
            self.log.failure("jupyter face: {method} {path}", failure, method=request.method, path=request.path)
            code, message = 500, "internal error"
        self._write((code, {"message": message, "reason": message}), request, finished)

    # -- routes --

    def _route(self, request, path):
        method = request.method.decode()
        principal = self.access.principal(
            _header(request, b"authorization"),
            (request.args.get(b"token") or [b""])[0].decode("utf-8", "replace") or None,
        )
        if method == "POST" and form_body(_header(request, b"content-type")):
            raise HttpError(
                415,
                "send the body as JSON (Content-Type: application/json): a form or text/plain body is what another "
                "site's page can send without asking, so it is refused",
            )
        if path == ["api"] and method == "GET":
            return 200, {"version": API_VERSION}
        if path[:2] == ["api", "kernelspecs"] and method == "GET":
            return self._kernelspecs(path[2:])
        if path[:2] == ["kernelspecs"]:
            raise HttpError(404, "kernelspecs have no resource files here")
        if path == ["api", "kernels"]:
            if method == "GET":
                return 200, [k.model() for k in self.kernels.of(principal)]
            if method == "POST":
                return self._start(request, principal)
        if path[:2] == ["api", "kernels"] and len(path) in (3, 4):
            kernel = self.kernels.get(path[2], principal)
            action = path[3] if len(path) == 4 else None
            if action is None and method == "GET":
                return 200, kernel.model()
            if action is None and method == "DELETE":
                return self.kernels.shutdown(kernel).addCallback(lambda _: (204, None))
            if action == "interrupt" and method == "POST":
                return self.kernels.interrupt(kernel).addCallback(lambda _: (204, None))
            if action == "restart" and method == "POST":
                return self.kernels.restart(kernel).addCallback(lambda _: (200, kernel.model()))
        raise HttpError(404, "{} {} is not part of the Jupyter gateway API".format(method, "/".join(path)[:100]))

    @defer.inlineCallbacks
    def _kernelspecs(self, rest):
        try:
            specs = yield self.link.call(uris.KERNELSPECS)
        except ApplicationError as exc:
            if exc.error != "wamp.error.no_such_procedure":
                raise
            specs = kernelspecs.merged(())  # python3 alone, when no spawner has announced its kernels
        if not rest:
            return 200, specs
        spec = specs["kernelspecs"].get(rest[0])
        if spec is None or len(rest) > 1:
            raise HttpError(404, "no kernelspec {}".format(rest[0][:64]))
        return 200, spec

    @defer.inlineCallbacks
    def _start(self, request, principal):
        body = request.content.read(65536) if request.content is not None else b""
        try:
            options = json.loads(body) if body.strip() else {}
        except ValueError:
            raise HttpError(400, 'the body must be JSON, e.g. {"name": "python3"}') from None
        if not isinstance(options, dict):
            raise HttpError(400, "the body must be a JSON object")
        name = options.get("name") or kernelspecs.PYTHON
        if not isinstance(name, str) or len(name) > 64:
            raise HttpError(400, "name must be a kernelspec name")
        peer = request.getClientAddress()
        forwarded = request.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
        client = http_client(peer.host, peer.port, ", ".join(h.decode("latin-1") for h in forwarded))
        kernel = yield self.kernels.start(principal, name, client)
        request.setHeader(b"location", "/jupyter/api/kernels/{}".format(kernel.jupyter_id).encode())
        return 201, kernel.model()


def _header(request, name):
    value = request.getHeader(name)
    return value.decode("latin-1") if isinstance(value, bytes) else value
