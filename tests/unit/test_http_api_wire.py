"""components.router.http_api_wire: the HTTP API's request body, answer formats and error statuses."""

import base64
import json

import pytest
from autobahn.wamp.exception import ApplicationError

from components.common import uris
from components.router.http_api_wire import (
    JSON,
    NDJSON,
    SSE,
    ApiError,
    answer_format,
    check_content_type,
    chunk,
    dumps,
    execute_arguments,
    from_wamp,
    timed_out,
)

pytestmark = pytest.mark.unit


def test_a_body_becomes_the_calls_arguments():
    body = {
        "code": "print(1)",
        "language": "bash",
        "timeout": 2.5,
        "files": {"a/b.txt": base64.b64encode(b"\x00\xffdata").decode()},
        "return_files": True,
        "user_expressions": {"x": "1+1"},
        "stop_on_error": False,
    }
    assert execute_arguments(json.dumps(body).encode()) == {
        "code": "print(1)",
        "kernel_name": "bash",
        "timeout": 2.5,
        "files": {"a/b.txt": b"\x00\xffdata"},
        "return_files": True,
        "user_expressions": {"x": "1+1"},
        "stop_on_error": False,
    }
    assert execute_arguments(b'{"code": "", "language": null}') == {"code": ""}


@pytest.mark.parametrize(
    "body, word",
    [
        (b"", "JSON"),
        (b"\xff\xfe", "JSON"),
        (b'"code"', "object"),
        (b'{"code": "1", "extra": 1}', "extra"),
        (b'{"code": null}', "code"),
        (b'{"code": "1", "timeout": true}', "timeout"),
        (b'{"code": "1", "timeout": 0}', "timeout"),
        (b'{"code": "1", "language": ""}', "language"),
        (b'{"code": "1", "files": []}', "files"),
        (b'{"code": "1", "files": {"a": "@@@"}}', "base64"),
        (b'{"code": "1", "user_expressions": {"x": 1}}', "user_expressions"),
        (b'{"code": "\\udfff"}', "Unicode"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(body, word):
    with pytest.raises(ApiError) as refused:
        execute_arguments(body)
    assert refused.value.status == 400 and refused.value.error == uris.ERROR_INVALID_ARGUMENT
    assert word in str(refused.value)


def test_a_body_over_the_limit_is_413():
    with pytest.raises(ApiError) as refused:
        execute_arguments(b'{"code": "12345"}', max_bytes=10)
    assert refused.value.status == 413 and "10 bytes" in str(refused.value)


@pytest.mark.parametrize(
    "content_type, refused",
    [
        ("application/json", False),
        ("application/json; charset=utf-8", False),
        ("Application/JSON", False),
        ("application/vnd.api+json", False),
        ("application/x-www-form-urlencoded", True),
        ("multipart/form-data; boundary=x", True),
        ("text/plain", True),
        ("", True),
        (None, True),
    ],
)
def test_only_json_bodies_are_read(content_type, refused):
    if refused:
        with pytest.raises(ApiError) as error:
            check_content_type(content_type)
        assert error.value.status == 415
    else:
        check_content_type(content_type)


def test_the_answer_format_follows_accept():
    assert answer_format(None) == JSON
    assert answer_format("*/*") == JSON
    assert answer_format("text/event-stream") == SSE
    assert answer_format("application/json, application/x-ndjson;q=0.9") == NDJSON
    assert answer_format("text/event-stream, application/x-ndjson") == SSE


def test_streamed_items():
    output = {"output_type": "stream", "name": "stdout", "text": "a\nb\n"}
    assert (
        chunk(SSE, "output", output)
        == b'event: output\ndata: {"output_type":"stream","name":"stdout","text":"a\\nb\\n"}\n\n'
    )
    assert json.loads(chunk(NDJSON, "output", output)) == {"type": "output", "output": output}
    line = chunk(NDJSON, "result", {"status": "ok", "files": [{"name": "f", "data": b"\x01"}]})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"type": "result", "status": "ok", "files": [{"name": "f", "data": "AQ=="}]}
    assert json.loads(dumps({"data": b"hi"})) == {"data": "aGk="}


@pytest.mark.parametrize(
    "error, kwargs, status, uri",
    [
        (uris.ERROR_INVALID_ARGUMENT, {}, 400, uris.ERROR_INVALID_ARGUMENT),
        (uris.ERROR_NOT_FOUND, {}, 404, uris.ERROR_NOT_FOUND),
        (uris.ERROR_TOO_LARGE, {}, 413, uris.ERROR_TOO_LARGE),
        (uris.ERROR_CAPACITY, {"limit": 3}, 429, uris.ERROR_CAPACITY),
        (uris.ERROR_CAPACITY, {}, 503, uris.ERROR_UNAVAILABLE),
        (uris.ERROR_UNAVAILABLE, {}, 503, uris.ERROR_UNAVAILABLE),
        (uris.ERROR_TIMEOUT, {}, 504, uris.ERROR_TIMEOUT),
        (ApplicationError.TIMEOUT, {}, 504, uris.ERROR_TIMEOUT),
        (ApplicationError.NO_SUCH_PROCEDURE, {}, 503, uris.ERROR_UNAVAILABLE),
    ],
)
def test_wamp_errors_become_statuses(error, kwargs, status, uri):
    answer = from_wamp(ApplicationError(error, "what to do", **kwargs))
    assert (answer.status, answer.error) == (status, uri)
    assert ("Retry-After" in answer.headers) == (status in (429, 503))
    assert "what to do" in answer.body()["message"]


def test_a_timed_out_run_is_a_504_with_its_outputs():
    error, body = timed_out({"status": "timeout", "outputs": [{"output_type": "stream"}]})
    assert error.status == 504
    assert body["error"] == uris.ERROR_TIMEOUT and body["outputs"] and body["message"]
