"""``/v1``: the HTTP API, for programs that cannot hold a WebSocket (a Crossbar ``resource`` web service).

    POST /v1/execute        {"code", "language"?, "timeout"?, "files"?, "return_files"?, "user_expressions"?,
                             "stop_on_error"?} -> the one-shot's result as JSON, or streamed by ``Accept``:
                             text/event-stream (SSE) or application/x-ndjson, each output as it comes
    GET  /v1/openapi.json   its OpenAPI 3.1 description (components.router.http_api_openapi)

A one-shot runs through the session router's ``cell.backend.execute_http`` (components.control.oneshots,
L{OneShots.for_http}), as ``cell.execute`` of a session at the HTTP client's address: the same code limit, timeout
and quotas per address.  Without a token it has the browser role's quotas; a service token (``Authorization: Bearer
<secret>`` or ``token <secret>``, the secrets of the path's ``tokens``, as the Jupyter face's) the service role's.
Which other sites' pages are served, and as whom, is the Jupyter face's policy (components.router.jupyter.origins),
from the path's ``allowed_origins`` and ``anonymous_origins``; CORS on every answer to a served page, errors
included.  Tokens and origins are set up as the face's, by components.router.http_access.  A form's body is refused
(415).  Errors are ``{"error": "cell.error.<x>", "message"}`` (components.router.http_api_wire).

A stream's status and headers are written with its first output (or its result), so an error before the run
starts (a quota, bad input) has its own status.  A client that leaves does not stop the run (the in-process
session cannot cancel a call): it ends by its own timeout at the latest, and its outputs are dropped.
"""

import dataclasses
import json

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions
from twisted.logger import Logger
from twisted.web import resource, server

from components.common import uris
from components.common.config import HttpAccessConfig, from_mapping
from components.router.http_access import HttpAccess, client, header
from components.router.http_api_openapi import SPEC
from components.router.http_api_wire import (
    ERROR_FORBIDDEN,
    ERROR_INTERNAL,
    ERROR_METHOD,
    ERROR_NOT_AUTHORIZED,
    JSON,
    MAX_BODY_BYTES,
    ApiError,
    answer_format,
    check_content_type,
    chunk,
    dumps,
    execute_arguments,
    from_wamp,
    timed_out,
    too_large,
)
from components.router.jupyter.access import Refused

#: how long a run is waited for (the one-shot's own timeout, 120 s at most, ends it first)
WAIT_MS = 150000

#: what a served page may do, and send (a preflight's answer)
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "authorization, content-type, accept"


@dataclasses.dataclass(frozen=True)
class ApiConfig(HttpAccessConfig):
    """The path's ``extra`` (docs/http.md): who may use the API (L{HttpAccessConfig}, as the Jupyter face's), and
    the largest body it reads."""

    #: the largest body read (bytes)
    max_body_bytes: int = MAX_BODY_BYTES


class HttpApi(resource.Resource):
    """See the module docstring."""

    isLeaf = True
    log = Logger()

    def __init__(self, extra=None, link=None):
        super().__init__()
        self.settings = from_mapping(ApiConfig, dict(extra or {}))
        self.http = HttpAccess(self.settings, link, ALLOW_METHODS, ALLOW_HEADERS)
        self.link = self.http.link
        self._spec = json.dumps(SPEC, indent=1).encode("utf-8")

    def render(self, request):
        screened = self.http.screen(request, lambda status, message: self._error(request, _refused(status, message)))
        if screened is not None:
            return screened
        try:
            return self._route(request)
        except ApiError as exc:
            return self._error(request, exc)

    def _route(self, request):
        path = "/".join(p.decode("utf-8", "replace") for p in request.postpath)
        method = request.method.decode("latin-1")
        allowed = {"execute": "POST", "openapi.json": "GET"}.get(path)
        if allowed is None:
            raise ApiError(
                404, uris.ERROR_NOT_FOUND, "/v1/{} is not part of this API: see /v1/openapi.json".format(path[:100])
            )
        if method == "OPTIONS":
            request.setResponseCode(204)
            request.setHeader(b"allow", "{}, OPTIONS".format(allowed).encode())
            return b""
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            raise ApiError(
                405,
                ERROR_METHOD,
                "{} /v1/{} is not served: use {}".format(method[:10], path, allowed),
                {"Allow": "{}, OPTIONS".format(allowed)},
            )
        try:
            principal = self.http.principal(request)
        except Refused as exc:
            raise _refused(exc.code, str(exc)) from None
        if path == "openapi.json":
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"cache-control", b"public, max-age=600")
            return self._spec
        return self._execute(request, principal)

    def _execute(self, request, principal):
        check_content_type(header(request, b"content-type"))
        limit = self.settings.max_body_bytes
        length = header(request, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            raise too_large(limit)
        body = request.content.read(limit + 1) if request.content is not None else b""
        arguments = execute_arguments(body, limit)
        kernel_name = arguments.get("kernel_name")
        if principal.kernel_name is not None:  # a Binder launch token's: its one kernelspec
            try:
                principal.check_kernel(kernel_name or "python3")
            except Refused as exc:
                raise _refused(exc.code, str(exc)) from None
        if not self.link.connected:
            raise ApiError(503, uris.ERROR_UNAVAILABLE, "the node is not connected yet; try again shortly")
        run = _Run(request, answer_format(header(request, b"accept")), self.log)
        name = "" if principal.role == "browser" else principal.name  # a launch token is anonymous here
        options = CallOptions(on_progress=run.output if run.streamed else None, timeout=WAIT_MS)
        d = self.link.session.call(uris.EXECUTE_HTTP, client(request), name, principal.role, arguments, options=options)
        d.addCallbacks(run.result, run.failed)
        return server.NOT_DONE_YET

    def _error(self, request, exc):
        request.setResponseCode(exc.status)
        for name, value in exc.headers.items():
            request.setHeader(name.encode(), value.encode())
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return dumps(exc.body()).encode("utf-8")


def _refused(status, message):
    """A refusal of the access set-up (components.router.http_access) as the API's error: 401 for a token (not
    known, or needed), 403 (a page or a token that may not do this)."""
    return ApiError(status, ERROR_NOT_AUTHORIZED if status == 401 else ERROR_FORBIDDEN, message)


class _Run:
    """One ``POST /v1/execute`` under way: its outputs written as they come (a stream), then its result."""

    def __init__(self, request, answer_format, log):
        self.request = request
        self.format = answer_format
        self.streamed = answer_format != JSON
        self.log = log
        self.begun = False  # the status and headers are written
        self.gone = False  # the client left, or the answer is finished
        request.notifyFinish().addBoth(self._gone)

    def _gone(self, _):
        self.gone = True

    def _begin(self, status=200, content_type=None):
        self.begun = True
        self.request.setResponseCode(status)
        self.request.setHeader(b"content-type", (content_type or self.format).encode())
        self.request.setHeader(b"cache-control", b"no-store")
        if self.streamed:
            self.request.setHeader(b"x-accel-buffering", b"no")  # a front (nginx) passes each item on at once

    def output(self, *args, **kwargs):
        if self.gone:
            return
        if not self.begun:
            self._begin()
        self.request.write(chunk(self.format, "output", args[0] if args else kwargs))

    def result(self, result):
        if self.gone:
            return
        if not self.begun and isinstance(result, dict) and result.get("status") == "timeout":
            error, body = timed_out(result)  # nothing streamed yet: the status says it
            self._begin(error.status, JSON)
            self.request.write(dumps(body).encode("utf-8"))
        elif self.streamed:
            if not self.begun:
                self._begin()
            self.request.write(chunk(self.format, "result", result))
        else:
            self._begin()
            self.request.write(dumps(result).encode("utf-8"))
        self._finish()

    def failed(self, failure):
        if failure.check(ApiError):
            error = failure.value
        elif failure.check(ApplicationError):
            error = from_wamp(failure.value)
        else:
            self.log.failure("http api: a run failed", failure)
            error = ApiError(500, ERROR_INTERNAL, "the node failed to answer; see its log")
        if self.gone:
            return
        if self.begun:  # a stream already under way: its last item says why it ended
            self.request.write(chunk(self.format, "error", error.body()))
        else:
            self._begin(error.status, JSON)
            for name, value in error.headers.items():
                self.request.setHeader(name.encode(), value.encode())
            self.request.write(dumps(error.body()).encode("utf-8"))
        self._finish()

    def _finish(self):
        self.gone = True
        self.request.finish()
