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
    GET    /jupyter/api/status                   a reachability ping (thebe's)
    GET    /jupyter/api/sessions                 the caller's sessions (components.router.jupyter.jupyter_sessions)
    POST   /jupyter/api/sessions                 {"path", "name", "type", "kernel": {"name"}} -> 201
    GET    /jupyter/api/sessions/<id>            (PATCH: rename or move it; DELETE: it and its kernel, 204)
    GET    /jupyter/kernelspecs/<name>/<file>    a kernelspec's logo (components.router.jupyter.resources)

Errors are JSON ``{"message", "reason"}`` with the HTTP status Jupyter
clients expect (401, 404, 403 for a quota, 400 for bad input, 503 while the
node cannot answer).  Settings come from the path's ``extra`` (docs/config.md).
Which other sites' pages are served, and as whom, is components.router.jupyter.origins'.
"""

import json

from autobahn.twisted.resource import WebSocketResource
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from components.common import kernelspecs, uris
from components.common.config import FaceConfig, from_mapping
from components.router.http_access import HttpAccess, client, header
from components.router.jupyter import resources
from components.router.jupyter.access import Refused
from components.router.jupyter.channels import channels_factory
from components.router.jupyter.jupyter_sessions import FaceSessions
from components.router.jupyter.kernels import FaceKernels, now
from components.router.jupyter.origins import form_body

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
        self.http = HttpAccess(self.settings, link, refused_preflight="{origin} may not use this face from a browser")
        self.access = self.http.access  # the channels' (components.router.jupyter.channels)
        self.link = self.http.link
        self.kernels = FaceKernels(self.link)
        self.sessions = FaceSessions(self.kernels)
        self.started = now()
        self.link.each_join(self._joined)
        self._channels = WebSocketResource(channels_factory(self, self.settings.max_message_bytes))

    def _joined(self, session):
        """The backend session (re)joined: offer the sizes of the face's tables to the backend (the soak)."""
        d = session.register(self.sizes, uris.FACE_TABLES)
        d.addErrback(lambda failure: self.log.warn("jupyter face: no table sizes: {e}", e=failure.getErrorMessage()))

    def sizes(self):
        """Its tables' sizes (the soak checks they come back to their baseline)."""
        return dict(self.kernels.sizes(), face_sessions=len(self.sessions))

    def render(self, request):
        screened = self.http.screen(request, lambda code, message: self._refuse(request, code, message))
        if screened is not None:
            return screened
        if _carries_token(request) and self.http.anonymous_only(request):
            # A page of anonymous_origins acts as a browser-role principal only: anonymous, or a Binder launch's
            # token (made for such pages); a service token is for the node's own pages and allowed_origins.
            try:
                self.http.principal(request, _query_token(request))
            except Refused as exc:
                return self._refuse(request, exc.code, str(exc))
        path = [p.decode("utf-8", "replace") for p in request.postpath if p]
        if len(path) == 4 and path[:2] == ["api", "kernels"] and path[3] == "channels":
            return self._channels.render(request)
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = defer.maybeDeferred(self._route, request, path)
        d.addCallbacks(self._write, self._failed, callbackArgs=(request, finished), errbackArgs=(request, finished))
        return server.NOT_DONE_YET

    # -- answering --

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
        if isinstance(body, _Raw):
            request.setHeader(b"content-type", body.content_type.encode())
            request.setHeader(b"cache-control", b"public, max-age=86400")
            request.write(body.data)
        else:
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
        principal = self.http.principal(request, _query_token(request))
        if method == "POST" and form_body(header(request, b"content-type"), header(request, b"origin")):
            raise HttpError(
                415,
                "send the body as JSON (Content-Type: application/json): a form's body is what another site's page "
                "can send without asking, so it is refused",
            )
        if path == ["api"] and method == "GET":
            return 200, {"version": API_VERSION}
        if path[:2] == ["api", "kernelspecs"] and method == "GET":
            return self._kernelspecs(path[2:])
        if path[:1] == ["kernelspecs"] and method == "GET":
            return self._logo(request, path[1:])
        if path == ["api", "status"] and method == "GET":
            return 200, self._status(principal)
        if path[:2] == ["api", "sessions"] and len(path) <= 3:
            return self._session_route(request, method, path[2:], principal)
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
        specs = resources.with_resources(specs)
        if not rest:
            return 200, specs
        spec = specs["kernelspecs"].get(rest[0])
        if spec is None or len(rest) > 1:
            raise HttpError(404, "no kernelspec {}".format(rest[0][:64]))
        return 200, spec

    @defer.inlineCallbacks
    def _start(self, request, principal):
        options = _json_body(request)
        kernel = yield self._start_kernel(request, principal, options.get("name"))
        request.setHeader(b"location", "/jupyter/api/kernels/{}".format(kernel.jupyter_id).encode())
        return 201, kernel.model()

    def _start_kernel(self, request, principal, name):
        name = name or kernelspecs.PYTHON
        if not isinstance(name, str) or len(name) > 64:
            raise HttpError(400, "name must be a kernelspec name")
        return self.kernels.start(principal, name, client(request))

    def _status(self, principal):
        """Jupyter Server's ``api/status``, of the caller's own kernels."""
        kernels = self.kernels.of(principal)
        return {
            "started": self.started,
            "last_activity": max([k.last_activity for k in kernels], default=self.started),
            "connections": sum(len(k.connections) for k in kernels),
            "kernels": len(kernels),
        }

    def _session_route(self, request, method, rest, principal):
        def start(name):
            return self._start_kernel(request, principal, name)

        if not rest and method == "GET":
            return 200, [s.model() for s in self.sessions.of(principal)]
        if not rest and method == "POST":
            d = self.sessions.create(principal, _json_body(request), start)
            return d.addCallback(lambda session: self._created(request, session))
        if rest:
            session = self.sessions.get(rest[0], principal)
            if method == "GET":
                return 200, session.model()
            if method == "PATCH":
                d = self.sessions.update(session, principal, _json_body(request), start)
                return d.addCallback(lambda session: (200, session.model()))
            if method == "DELETE":
                return self.sessions.delete(session).addCallback(lambda _: (204, None))
        raise HttpError(404, "{} api/sessions/{} is not part of the Jupyter server API".format(method, "/".join(rest)))

    def _created(self, request, session):
        request.setHeader(b"location", "/jupyter/api/sessions/{}".format(session.session_id).encode())
        return 201, session.model()

    @defer.inlineCallbacks
    def _logo(self, request, rest):
        """A kernelspec's logo, for every kernelspec the node offers (jupyter_server's ``/kernelspecs/<name>/<file>``)."""
        status, specs = yield self._kernelspecs([])
        if len(rest) != 2 or rest[0] not in specs["kernelspecs"] or rest[1] not in resources.CONTENT:
            raise HttpError(404, "no such kernelspec resource: the files are {}".format(", ".join(resources.CONTENT)))
        content_type, data = resources.CONTENT[rest[1]]
        return 200, _Raw(content_type, data)


class _Raw:
    """An answer's body that is not JSON."""

    def __init__(self, content_type, data):
        self.content_type = content_type
        self.data = data


def _json_body(request):
    """A POST's or PATCH's JSON object (an empty body is ``{}``)."""
    body = request.content.read(65536) if request.content is not None else b""
    try:
        options = json.loads(body) if body.strip() else {}
    except ValueError:
        raise HttpError(400, 'the body must be JSON, e.g. {"name": "python3"}') from None
    if not isinstance(options, dict):
        raise HttpError(400, "the body must be a JSON object")
    try:
        json.dumps(options, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): no part of the node can carry it on
        raise HttpError(400, "the body's strings must be valid Unicode (it has a lone surrogate)") from None
    return options


def _query_token(request):
    return (request.args.get(b"token") or [b""])[0].decode("utf-8", "replace") or None


def _carries_token(request):
    """Whether a request names a token (in its Authorization header or ``?token=``)."""
    return bool((header(request, b"authorization") or "").strip() or (request.args.get(b"token") or [b""])[0])
