"""The OpenAPI 3.1 description of the HTTP API (components.router.http_api), as data: served at
``GET /v1/openapi.json``, validated and checked against the node in tests/test_http_api.py."""

from components.router.http_api_wire import MAX_BODY_BYTES

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description, retry_after=False):
    answer = {"description": description, "content": {"application/json": {"schema": _ERROR}}}
    if retry_after:
        answer["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return answer


_OUTPUT = {
    "type": "object",
    "description": "an nbformat output (stream, display_data, execute_result, error), or a clear_output or "
    "update_display_data item, as cell.execute's progressive results",
    "properties": {"output_type": {"type": "string"}},
}

_RESULT = {
    "type": "object",
    "description": "cell.execute's result (docs/api.md), a returned file's data in base64",
    "required": ["status", "outputs"],
    "properties": {
        "status": {"enum": ["ok", "error", "aborted", "timeout"]},
        "execution_count": {"type": ["integer", "null"]},
        "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Output"}},
        "user_expressions": {"type": "object"},
        "ename": {"type": "string"},
        "evalue": {"type": "string"},
        "traceback": {"type": "array", "items": {"type": "string"}},
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "its path in the run's directory"},
                    "size": {"type": "integer"},
                    "data": {"type": "string", "contentEncoding": "base64"},
                    "truncated": {"type": "boolean"},
                },
            },
        },
        "widgets": {"type": "object"},
    },
}

_REQUEST = {
    "type": "object",
    "required": ["code"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "description": "the code; at most the role's max_code_bytes (64 KiB anonymous)"},
        "language": {"type": "string", "description": "a kernelspec name (GET /jupyter/api/kernelspecs); python3"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "description": "seconds; 30 by default, 120 at most"},
        "files": {
            "type": "object",
            "additionalProperties": {"type": "string", "contentEncoding": "base64"},
            "description": "relative path -> its content in base64, written before the code runs (8 MiB in all)",
        },
        "return_files": {"type": "boolean", "description": "return the files the run made, their data in base64"},
        "user_expressions": {"type": "object", "additionalProperties": {"type": "string"}},
        "stop_on_error": {"type": "boolean"},
    },
}

_SECURITY = [{}, {"token": []}]

#: the description (GET /v1/openapi.json)
SPEC = {
    "openapi": "3.1.0",
    "info": {
        "title": "cellserver HTTP API",
        "version": "1.0.0",
        "description": "One-shot code execution over plain HTTP, with cell.execute's limits, quotas and errors. "
        "See docs/http.md.",
    },
    "servers": [{"url": "/v1"}],
    "paths": {
        "/execute": {
            "post": {
                "operationId": "execute",
                "summary": "Run code once in a fresh process; answer JSON, or stream it (SSE or NDJSON) by Accept",
                "security": _SECURITY,
                "requestBody": {
                    "required": True,
                    "description": "at most {} bytes".format(MAX_BODY_BYTES),
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExecuteRequest"}}},
                },
                "responses": {
                    "200": {
                        "description": "the run's result (also when the code raised or timed out: see status)",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Result"}},
                            "text/event-stream": {
                                "schema": {
                                    "type": "string",
                                    "description": "one 'output' event per output, then one 'result' event (or "
                                    "an 'error' event); each event's data is one line of JSON",
                                }
                            },
                            "application/x-ndjson": {
                                "schema": {
                                    "type": "string",
                                    "description": 'one JSON object per line: {"type": "output", "output": {...}}, '
                                    'then {"type": "result", ...the result} (or {"type": "error", ...})',
                                }
                            },
                        },
                    },
                    "400": _error("the body is not the JSON object described (a message names the field)"),
                    "401": _error("the token is not known here"),
                    "403": _error(
                        "a page of an origin this node does not serve, or a service token from an "
                        "origin allowed anonymous use only"
                    ),
                    "404": _error("no such language (the message names those offered)"),
                    "405": _error("another method than POST"),
                    "413": _error("the body or the code is too large"),
                    "415": _error("the body is not labelled application/json"),
                    "429": _error("a quota of the client's address or token (rate or runs at once)", True),
                    "502": _error("the kernel of a run that needed one (files, another language) died"),
                    "503": _error("the node has no room or cannot answer now", True),
                    "504": _error("no answer in time"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {}}}},
                    "405": _error("another method than GET"),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "token": {
                "type": "http",
                "scheme": "bearer",
                "description": "a service secret (the node's CELL_SERVICE_SECRET): the service role's quotas; "
                "'Authorization: token <secret>' works too. Without one: the browser role's, per address.",
            }
        },
        "schemas": {
            "ExecuteRequest": _REQUEST,
            "Result": _RESULT,
            "Output": _OUTPUT,
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string", "pattern": "^cell\\.error\\.[a-z_]+$"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
