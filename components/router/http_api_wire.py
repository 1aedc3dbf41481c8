"""What the HTTP API (components.router.http_api) reads and writes: the request's JSON, the answers, the errors.

No Twisted here: functions of bytes, headers and WAMP errors, unit-tested in tests/unit/test_http_api_wire.py.
"""

import base64
import binascii
import json

from autobahn.wamp.exception import ApplicationError

from components.common import uris

#: the largest body of ``POST /v1/execute`` (bytes): 8 MiB of files in base64 with code and room to spare
MAX_BODY_BYTES = 12 * 1024 * 1024

#: the keys of ``POST /v1/execute``'s body, and what each must be (for the messages)
FIELDS = {
    "code": "a string",
    "language": 'a kernelspec name (a string, e.g. "python3")',
    "timeout": "a number of seconds",
    "files": "an object of relative paths to base64 strings",
    "return_files": "true or false",
    "user_expressions": "an object of names to expression strings",
    "stop_on_error": "true or false",
}

#: the answer's formats, by the media type a client puts in ``Accept``
JSON, SSE, NDJSON = "application/json", "text/event-stream", "application/x-ndjson"

#: cell.error.* URIs and the HTTP status each becomes (capacity: 429 for a quota, 503 for no room now)
HTTP_STATUS = {
    uris.ERROR_INVALID_ARGUMENT: 400,
    uris.ERROR_NOT_FOUND: 404,
    uris.ERROR_TOO_LARGE: 413,
    uris.ERROR_CAPACITY: 429,
    uris.ERROR_TIMEOUT: 504,
    uris.ERROR_UNAVAILABLE: 503,
    uris.ERROR_KERNEL_DIED: 502,
}

#: the errors the API itself answers, besides the cell.error.* of the node
ERROR_NOT_AUTHORIZED = "cell.error.not_authorized"
ERROR_FORBIDDEN = "cell.error.forbidden"
ERROR_METHOD = "cell.error.method_not_allowed"
ERROR_MEDIA_TYPE = "cell.error.unsupported_media_type"
ERROR_INTERNAL = "cell.error.internal"

#: seconds a client is told to wait (``Retry-After``) after a quota's 429 or a 503
RETRY_AFTER_S = 5


class ApiError(Exception):
    """An answer with an HTTP C{status} and ``{"error", "message"}``; C{headers} go with it (``Allow``, ...)."""

    def __init__(self, status, error, message, headers=None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.headers = dict(headers or {})

    def body(self):
        return {"error": self.error, "message": str(self)}


def invalid(message):
    return ApiError(400, uris.ERROR_INVALID_ARGUMENT, message)


def from_wamp(exc):
    """The L{ApiError} of a WAMP error of the node (a ``cell.error.*``, or the router's own ``wamp.error.*``)."""
    error = exc.error
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else error
    if error == uris.ERROR_CAPACITY and "limit" not in (exc.kwargs or {}):
        return ApiError(503, uris.ERROR_UNAVAILABLE, message, {"Retry-After": str(RETRY_AFTER_S)})
    if error in HTTP_STATUS:
        status = HTTP_STATUS[error]
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status in (429, 503) else {}
        return ApiError(status, error, message, headers)
    if error in (ApplicationError.TIMEOUT, "wamp.error.canceled"):
        return ApiError(504, uris.ERROR_TIMEOUT, "the node did not answer in time ({})".format(message))
    return ApiError(
        503,
        uris.ERROR_UNAVAILABLE,
        "the node cannot run this now ({}); try again shortly".format(message),
        {"Retry-After": str(RETRY_AFTER_S)},
    )


def media_type(header):
    return (header or "").split(";")[0].strip().lower()


def check_content_type(header):
    """L{ApiError} (415) unless the body is JSON: a form's (urlencoded, multipart, text/plain) or an unlabelled one
    is what another site's page can send without a CORS preflight."""
    media = media_type(header)
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise ApiError(
        415,
        ERROR_MEDIA_TYPE,
        "send the body as JSON with 'Content-Type: application/json' (not {}): a form's body is what another "
        "site's page can send without asking, so it is refused".format(repr(media) if media else "no Content-Type"),
    )


def answer_format(accept):
    """L{SSE} or L{NDJSON} when the client's ``Accept`` names one (the first of them it names), else L{JSON}."""
    for part in (accept or "").split(","):
        media = media_type(part)
        if media in (SSE, NDJSON):
            return media
    return JSON


def execute_arguments(body, max_bytes=MAX_BODY_BYTES):
    """The keyword arguments of ``cell.backend.execute_http`` from the request's body (bytes); L{ApiError} for a
    body that is not the JSON object of the docs (docs/http.md)."""
    if len(body) > max_bytes:
        raise too_large(max_bytes)
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise invalid('the body must be JSON, e.g. {"code": "print(1)"}') from None
    if not isinstance(request, dict):
        raise invalid('the body must be a JSON object, e.g. {"code": "print(1)"}')
    try:
        json.dumps(request, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise invalid("the body's strings must be Unicode text: a lone surrogate (e.g. \\ud800) is not") from None
    unknown = sorted(set(request) - set(FIELDS))
    if unknown:
        raise invalid("unknown field(s) {}; the fields are {}".format(", ".join(unknown)[:200], ", ".join(FIELDS)))
    if not isinstance(request.get("code"), str):
        raise invalid("code must be a string (the code to run)")
    arguments = {"code": request["code"]}
    checks = {
        "language": lambda v: isinstance(v, str) and 0 < len(v) <= 256,
        "timeout": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        "return_files": lambda v: isinstance(v, bool),
        "stop_on_error": lambda v: isinstance(v, bool),
        "user_expressions": lambda v: (
            isinstance(v, dict) and all(isinstance(k, str) and isinstance(e, str) for k, e in v.items())
        ),
        "files": lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(d, str) for k, d in v.items()),
    }
    for name, check in checks.items():
        value = request.get(name)
        if value is None:
            continue
        if not check(value):
            raise invalid("{} must be {}, not {}".format(name, FIELDS[name], json.dumps(value)[:100]))
        arguments[name] = value
    if "language" in arguments:
        arguments["kernel_name"] = arguments.pop("language")
    if "files" in arguments:
        arguments["files"] = {path: decoded(path, data) for path, data in arguments["files"].items()}
    return arguments


def too_large(max_bytes):
    return ApiError(
        413,
        uris.ERROR_TOO_LARGE,
        "the body is over {} bytes, the most this API reads: send smaller files".format(max_bytes),
    )


def decoded(path, data):
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("files[{}] must be base64 (standard alphabet, padded)".format(json.dumps(path)[:100])) from None


def _plain(value):
    """C{json.dumps}' default: bytes (a returned file's data) as base64."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError("not JSON: {}".format(type(value).__name__))


def dumps(value):
    return json.dumps(value, default=_plain, separators=(",", ":"))


def sse(event, value):
    """One Server-Sent Event (its data one line: JSON never holds a raw newline)."""
    return "event: {}\ndata: {}\n\n".format(event, dumps(value)).encode("utf-8")


def ndjson(value):
    return (dumps(value) + "\n").encode("utf-8")


def chunk(answer_format, kind, value):
    """One streamed item: an ``output``, the ``result`` or an ``error`` (its body), in the answer's format."""
    if answer_format == SSE:
        return sse(kind, value)
    return ndjson({"type": kind, "output": value} if kind == "output" else {"type": kind, **value})


def timed_out(result):
    """The answer of a run that ran out of its time (504): the result so far, with the error's keys."""
    message = "the run took longer than its timeout and was stopped; its outputs so far are in 'outputs'"
    return ApiError(504, uris.ERROR_TIMEOUT, message), dict(result, error=uris.ERROR_TIMEOUT, message=message)
