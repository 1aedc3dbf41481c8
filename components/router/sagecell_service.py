"""SageMathCell's HTTP interface on the node's port: ``POST /service`` and ``/permalink`` (Crossbar ``resource``\\ s).

Programs written for SageMathCell (its ``ServiceHandler`` and ``PermalinkHandler``) work against this node by
changing the host:

    POST /service     code=...[&language=sage][&user_expressions={json}][&accepted_tos=true]
                      -> {"success": bool, "stdout": str, "stderr"?: str, "execute_reply": {...}}
    POST /permalink   code=...[&language=sage] -> {"query": id, "zip": base64url(zlib(code)), "interacts": ...}
    GET  /permalink?q=<id>                      -> [code, language, interacts]

``/service`` runs a one-shot through the session router's ``cell.backend.execute_for``, counted as an
anonymous browser at the HTTP client's address (the node's one resolver: ``X-Forwarded-For`` only from a
trusted front), so it has ``cell.execute``'s limits and quotas: a stranger gets no more one-shots through
HTTP than through WAMP.  Its language is Sage when the node offers it, else Python (``language`` picks another
of SageMathCell's names, mapped by L{LANGUAGES}).  As SageMathCell's, ``stdout`` is what the code printed
(the value of a last expression is not printed); unlike its, ``stdout`` is there even when empty.  Errors are
JSON ``{"success": false, "error", "message"}``: 400 bad input, 413 code over 65,000 characters, 429 a quota,
503 the node cannot answer now, 504 no answer in time.  Every answer allows any origin (CORS ``*``).
"""

import base64
import json
import zlib

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from components.common import uris
from components.common.addresses import http_client
from components.common.kernelspecs import PYTHON, SAGE
from components.router.local_link import LocalLink

#: SageMathCell's language names -> the kernelspec names that serve each here, in order of preference (a
#: kernelspec whose ``language`` is the name serves it too).  The one table: web/static/embedded_sagecell.js
#: has its mirror.  "python" is the forked python3; "html" is rendered by the page, never run.
LANGUAGES = {
    "sage": (SAGE,),
    "python": (PYTHON,),
    "r": ("ir",),
    "gp": ("pari_jupyter", "xeus-gp", "gp"),
    "gap": ("gap", "gap-4"),
    "singular": ("singular",),
    "octave": ("octave",),
    "maxima": ("maxima",),
    "macaulay2": ("macaulay2", "m2"),
}

#: SageMathCell's limit on the code of one request (characters)
MAX_CODE_CHARS = 65000
#: how long /service waits for its one-shot (the one-shot's own timeout, 30 s by default, ends it first)
SERVICE_WAIT_MS = 150000

#: cell.error.* URIs and the HTTP status each becomes
HTTP_STATUS = {
    uris.ERROR_INVALID_ARGUMENT: 400,
    uris.ERROR_NOT_FOUND: 400,
    uris.ERROR_TOO_LARGE: 413,
    uris.ERROR_CAPACITY: 429,
    uris.ERROR_UNAVAILABLE: 503,
    uris.ERROR_TIMEOUT: 504,
}


def http_status(error, kwargs):
    """The HTTP status of a WAMP error: a quota (``cell.error.capacity`` naming its C{limit}) is 429; a node with no
    room now (the same URI without a limit: a fork master restarting, every spawner full) 503, as anything unknown."""
    if error == uris.ERROR_CAPACITY and "limit" not in (kwargs or {}):
        return 503
    return HTTP_STATUS.get(error, 503)


class HttpError(Exception):
    def __init__(self, code, message, error="bad_request"):
        super().__init__(message)
        self.code = code
        self.error = error


def kernel_name_for(language, kernelspecs):
    """The kernelspec (of C{kernelspecs}, the node's ``{name: model}``) that runs SageMathCell's C{language},
    or None."""
    language = str(language).lower()
    for name in LANGUAGES.get(language, ()):
        if name in kernelspecs:
            return name
    for name, model in sorted(kernelspecs.items()):
        if str(((model or {}).get("spec") or {}).get("language", "")).lower() == language:
            return name
    return None


def language_of(kernel_name):
    """SageMathCell's name of a kernelspec (or of a stored permalink's language), for ``GET /permalink``."""
    if kernel_name in (PYTHON, "python"):
        return "python"
    for language, names in LANGUAGES.items():
        if kernel_name in names:
            return language
    return kernel_name


def zipped(text):
    """SageMathCell's encoding of a permalink's code: URL-safe base64 of its zlib deflate (padded, as its own)."""
    return base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8"))).decode("ascii")


def form(request):
    """The request's form fields (query string and urlencoded or multipart body) as {name: [str]}; 400 when a
    value is not UTF-8."""
    fields = {}
    for key, values in (request.args or {}).items():
        try:
            fields[key.decode("utf-8")] = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            raise HttpError(400, "form field values must be UTF-8 text") from None
    return fields


def service_request(fields):
    """C{(code, language or None, user_expressions)} of a ``/service`` form; L{HttpError} for bad input."""
    if "code" not in fields:
        raise HttpError(400, "no code: send the form field 'code' (application/x-www-form-urlencoded or multipart)")
    code = "".join(fields["code"])  # as SageMathCell: several 'code' fields are joined
    if len(code) > MAX_CODE_CHARS:
        raise HttpError(413, "Max code size is {} characters".format(MAX_CODE_CHARS), "too_large")
    language = fields.get("language", [None])[-1] or None
    raw = fields.get("user_expressions", ["{}"])[-1] or "{}"
    try:
        expressions = json.loads(raw)
    except ValueError:
        raise HttpError(400, 'user_expressions must be JSON, e.g. {"x": "2+2"}') from None
    if not isinstance(expressions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in expressions.items()
    ):
        raise HttpError(400, "user_expressions must be a JSON object of names to expression strings")
    return code, language, expressions


def service_reply(result):
    """SageMathCell's ``/service`` answer from a ``cell.execute`` result."""
    streams = {"stdout": ""}
    for output in result.get("outputs") or []:
        if output.get("output_type") == "stream" and output.get("name") in ("stdout", "stderr"):
            text = output.get("text", "")
            streams[output["name"]] = streams.get(output["name"], "") + (
                "".join(text) if isinstance(text, list) else text
            )
    status = result.get("status")
    reply = dict(streams, success=status == "ok")
    if status == "timeout":
        reply["message"] = "the execution timed out: its kernel was stopped"
        return reply
    execute_reply = {
        "status": "abort" if status == "aborted" else status,
        "execution_count": result.get("execution_count"),
        "user_expressions": result.get("user_expressions") or {},
        "payload": [],
    }
    if status == "error":
        execute_reply.update(
            ename=result.get("ename", ""), evalue=result.get("evalue", ""), traceback=result.get("traceback", [])
        )
    reply["execute_reply"] = execute_reply
    return reply


def _client(request):
    peer = request.getClientAddress()
    forwarded = request.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
    return http_client(peer.host, peer.port, ", ".join(h.decode("latin-1") for h in forwarded))


class _JsonPage(resource.Resource):
    """A leaf answering JSON asynchronously, with CORS for any origin; subclasses answer C{(code, body)}."""

    isLeaf = True
    log = Logger()
    methods = b"GET, POST, OPTIONS"

    def __init__(self, extra=None, link=None):
        super().__init__()
        if extra:
            raise ValueError("the page takes no extra settings, got {}".format(sorted(extra)))
        self.link = link or LocalLink.named()

    def render_OPTIONS(self, request):
        self._cors(request)
        request.setHeader(b"access-control-allow-methods", self.methods)
        request.setHeader(b"access-control-allow-headers", b"Content-Type, X-Requested-With")
        request.setHeader(b"access-control-max-age", b"600")
        request.setResponseCode(204)
        return b""

    def _cors(self, request):
        request.setHeader(b"access-control-allow-origin", b"*")

    def _answer(self, request, answer):
        finished = []
        request.notifyFinish().addBoth(finished.append)

        def write(result):
            code, body = result
            if finished:
                return  # the client left
            self._cors(request)
            request.setResponseCode(code)
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            request.setHeader(b"cache-control", b"no-store")
            if code in (429, 503):
                request.setHeader(b"retry-after", b"5")
            request.write(json.dumps(body).encode("utf-8"))
            request.finish()

        d = defer.maybeDeferred(answer)
        d.addErrback(self._failed).addCallback(write)
        return server.NOT_DONE_YET

    def _failed(self, failure):
        if failure.check(HttpError):
            exc = failure.value
            return exc.code, {"success": False, "error": exc.error, "message": str(exc)}
        if failure.check(ApplicationError):
            exc = failure.value
            code = http_status(exc.error, exc.kwargs)
            message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else exc.error
            if code == 503 and exc.error not in HTTP_STATUS:
                message = "the node cannot run this now ({}); try again shortly".format(message)
            return code, {"success": False, "error": exc.error.rsplit(".", 1)[-1], "message": message}
        self.log.failure("sagecell page", failure)
        return 500, {"success": False, "error": "internal", "message": "the node failed to answer; see its log"}


class ServicePage(_JsonPage):
    """``/service``: see the module docstring."""

    methods = b"POST, OPTIONS"

    def render_GET(self, request):
        self._cors(request)
        request.setResponseCode(405)
        request.setHeader(b"allow", b"POST, OPTIONS")
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        message = "POST the form field 'code' (and optionally 'language', 'user_expressions') to run it"
        return json.dumps({"success": False, "error": "method_not_allowed", "message": message}).encode()

    def render_POST(self, request):
        return self._answer(request, lambda: self._run(request))

    @defer.inlineCallbacks
    def _run(self, request):
        code, language, expressions = service_request(form(request))
        specs = (yield self.link.call(uris.KERNELSPECS)).get("kernelspecs") or {}
        if language is None:
            kernel_name = SAGE if SAGE in specs else PYTHON
        else:
            kernel_name = kernel_name_for(language, specs)
            if kernel_name is None:
                offered = sorted(lang for lang in LANGUAGES if kernel_name_for(lang, specs))
                raise HttpError(400, "this node offers no language {!r}; it offers {}".format(language[:64], offered))
        result = yield self.link.call(
            uris.EXECUTE_FOR,
            _client(request),
            code,
            user_expressions=expressions,
            kernel_name=kernel_name,
            timeout_ms=SERVICE_WAIT_MS,
        )
        return 200, service_reply(result)


class PermalinkPage(_JsonPage):
    """``/permalink``: SageMathCell's permalinks on the node's store (``cell.permalink.*``; saves are counted
    against the HTTP client's address as WAMP saves are)."""

    def render_GET(self, request):
        return self._answer(request, lambda: self._get(request))

    def render_POST(self, request):
        return self._answer(request, lambda: self._save(request))

    @defer.inlineCallbacks
    def _get(self, request):
        q = form(request).get("q", [""])[-1]
        if not q:
            raise HttpError(400, "no id: GET /permalink?q=<id>")
        try:
            found = yield self.link.call(uris.PERMALINK_GET, q)
        except ApplicationError as exc:
            if exc.error == uris.ERROR_NOT_FOUND:
                raise HttpError(404, "ID not found in permalink database", "not_found") from None
            raise
        return 200, [found["code"], language_of(found["language"]), "[]"]

    @defer.inlineCallbacks
    def _save(self, request):
        fields = form(request)
        if "code" not in fields:
            raise HttpError(400, "no code: send the form field 'code'")
        code = fields["code"][-1]
        language = fields.get("language", ["sage"])[-1] or "sage"
        if len(code) > MAX_CODE_CHARS:
            raise HttpError(413, "Max code size is {} characters".format(MAX_CODE_CHARS), "too_large")
        names = LANGUAGES.get(language.lower())
        # Stored as the node's own permalinks store a language: "python" for python3, else the kernelspec name.
        stored = "python" if language.lower() == "python" else (names[0] if names else language)
        saved = yield self.link.call(uris.PERMALINK_SAVE_FOR, _client(request), code, stored)
        return 200, {"query": saved["id"], "zip": zipped(code), "interacts": zipped("[]")}
