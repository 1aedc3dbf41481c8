"""The HTTP API (``/v1``, components.router.http_api) against a real node, from curl and from Python's http.client:
JSON answers, files in and out, SSE and NDJSON streams that flush each output as it comes, every error class, the
origin policy, the OpenAPI description (validated, and each documented status answered), and what a stranger
tries: forged X-Forwarded-For, huge bodies, streams never read, clients that leave mid-run.

Each request comes from its own loopback address unless a test picks one, so the small quotas per address this
node has (for the quota tests) meet only the tests that look for them.
"""

import base64
import http.client
import itertools
import json
import socket
import subprocess
import threading
import time

import jsonschema
import pytest
from openapi_spec_validator import validate

from tests.node import Node, spawner_settings

#: this node's one-shot quotas per address for anonymous clients (tests/node.py lifts them; these need them small)
CONCURRENT_PER_ADDRESS = 2
ONESHOTS_PER_MINUTE_PER_ADDRESS = 120  # bursts of 30
#: kernels the node may run: the 503 test fills them
MAX_KERNELS = 6
#: a page allowed to use the API anonymously, one allowed as any client, one not served
BOOKS, TRUSTED, EVIL = "http://books.example", "http://trusted.example:8080", "http://evil.example"

_addresses = itertools.count(10)


def fresh_address():
    n = next(_addresses)
    return "127.0.{}.{}".format(n // 250, 1 + n % 250)


def api_config(config):
    for worker in config["workers"]:
        if worker["type"] == "container":
            worker["components"][0]["extra"]["roles"]["browser"].update(
                max_concurrent_oneshots_per_address=CONCURRENT_PER_ADDRESS,
                max_oneshots_per_minute_per_address=ONESHOTS_PER_MINUTE_PER_ADDRESS,
            )
        if worker["type"] == "router":
            for transport in worker["transports"]:
                if transport["type"] == "web":
                    transport["paths"]["v1"]["extra"].update(anonymous_origins=[BOOKS], allowed_origins=[TRUSTED])
    spawner_settings(config, max_kernels=MAX_KERNELS, pool_size=2)


@pytest.fixture(scope="module")
def api_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("http-api"), edit=api_config).start()
    yield node
    node.stop()


def request(node, body=None, source=None, headers=None, method="POST", path="/v1/execute", raw=None, timeout=90):
    """C{(status, headers, body)} of one request; C{body}: JSON-encoded (Content-Type set unless C{headers} say)."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", node.port, timeout=timeout, source_address=(source or fresh_address(), 0)
    )
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = {"Content-Type": "application/json"} if data is not None else {}
    sent.update(headers or {})
    conn.request(method, path, body=data, headers={k: v for k, v in sent.items() if v is not None})
    response = conn.getresponse()
    answer = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, answer


def error_of(status, body, expected_status, expected_error):
    answer = json.loads(body)
    assert status == expected_status and answer["error"] == expected_error, (status, body)
    assert isinstance(answer["message"], str) and len(answer["message"]) > 10, body
    return answer["message"]


def b64(data):
    return base64.b64encode(data).decode()


# -- answers ---------------------------------------------------------------------------------------------------------


def test_a_json_run_answers_its_result_with_files_in_and_out(api_node):
    code = (
        "data = open('in.bin', 'rb').read()\n"
        "open('out.bin', 'wb').write(data[::-1] + bytes(range(256)))\n"
        "print(len(data))\n"
        "6 * 7"
    )
    payload = bytes(range(256)) * 4
    status, headers, body = request(
        api_node,
        {"code": code, "files": {"in.bin": b64(payload)}, "return_files": True, "user_expressions": {"x": "2**10"}},
    )
    assert status == 200 and headers["content-type"] == "application/json", body
    result = json.loads(body)
    assert result["status"] == "ok"
    assert result["outputs"][0] == {"output_type": "stream", "name": "stdout", "text": "1024\n"}
    assert result["outputs"][1]["data"]["text/plain"] == "42"
    assert result["user_expressions"]["x"]["data"]["text/plain"] == "1024"
    (made,) = [f for f in result["files"] if f["name"] == "out.bin"]
    assert base64.b64decode(made["data"]) == payload[::-1] + bytes(range(256))


def test_an_error_in_the_code_is_a_200_with_its_traceback(api_node):
    status, _, body = request(api_node, {"code": "1/0"})
    result = json.loads(body)
    assert status == 200 and result["status"] == "error" and result["ename"] == "ZeroDivisionError", body


def test_curl_posts_json_and_gets_json(api_node):
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--interface",
            fresh_address(),
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"code": "print(\'from curl\')", "language": "python3"}',
            "http://127.0.0.1:{}/v1/execute".format(api_node.port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    body, status = out.rsplit("\n", 1)
    assert status == "200" and json.loads(body)["outputs"][0]["text"] == "from curl\n", out


#: prints a line, then runs on for 4 s before its last line: a stream must show the first line long before the end
SLOW = "import time\nprint('first', flush=True)\ntime.sleep(4)\nprint('last')"


def test_curl_reads_an_sse_stream_whose_first_output_comes_before_the_end(api_node):
    started = time.monotonic()
    curl = subprocess.Popen(
        [
            "curl",
            "-sSN",
            "--interface",
            fresh_address(),
            "-H",
            "Accept: text/event-stream",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps({"code": SLOW}),
            "http://127.0.0.1:{}/v1/execute".format(api_node.port),
        ],
        stdout=subprocess.PIPE,
    )
    events, seen = [], {}
    try:
        event = None
        for line in iter(curl.stdout.readline, b""):
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
                seen.setdefault(event, time.monotonic() - started)
    finally:
        curl.wait(60)
    assert [e for e, _ in events][-1] == "result" and events[-1][1]["status"] == "ok", events
    texts = "".join(o["text"] for e, o in events if e == "output")
    assert texts == "first\nlast\n", events
    assert seen["result"] - seen["output"] > 2.5, "the first output came only with the end: {}".format(seen)


def test_an_ndjson_stream_flushes_each_output_as_it_comes(api_node):
    conn = http.client.HTTPConnection("127.0.0.1", api_node.port, timeout=60, source_address=(fresh_address(), 0))
    conn.request(
        "POST",
        "/v1/execute",
        json.dumps({"code": SLOW}),
        {"Content-Type": "application/json", "Accept": "application/x-ndjson"},
    )
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("content-type") == "application/x-ndjson"
    started = time.monotonic()
    first = json.loads(response.readline())
    at_first = time.monotonic() - started
    rest = [json.loads(line) for line in response.read().splitlines()]
    at_end = time.monotonic() - started
    conn.close()
    assert first == {"type": "output", "output": {"output_type": "stream", "name": "stdout", "text": "first"}}, first
    assert rest[-1]["type"] == "result" and rest[-1]["status"] == "ok", rest
    assert all(item["type"] == "output" for item in rest[:-1])
    assert at_end - at_first > 2.5, "the first line came only with the end ({:.1f} s, {:.1f} s)".format(
        at_first, at_end
    )


# -- errors ----------------------------------------------------------------------------------------------------------


def test_bad_input_gets_400_naming_what_is_wrong(api_node):
    cases = [
        (b"{not json", "JSON"),
        (b"[1, 2]", "object"),
        (b'{"nocode": 1}', "unknown field"),
        (b"{}", "code"),
        (b'{"code": 1}', "code"),
        (b'{"code": "1", "timeout": "ten"}', "timeout"),
        (b'{"code": "1", "timeout": -1}', "timeout"),
        (b'{"code": "1", "files": {"a": 3}}', "files"),
        (b'{"code": "1", "files": {"a": "not base64!"}}', "base64"),
        (b'{"code": "1", "return_files": "yes"}', "return_files"),
        (b'{"code": "1", "user_expressions": [1]}', "user_expressions"),
        (b'{"code": "1", "stop_on_error": 0}', "stop_on_error"),
        (b'{"code": "1", "language": 7}', "language"),
        (b'{"code": "\\ud800"}', "Unicode"),
    ]
    for raw, word in cases:
        status, _, body = request(api_node, raw=raw)
        assert word in error_of(status, body, 400, "cell.error.invalid_argument"), (raw, body)


def test_too_large_code_unknown_language_and_timeout(api_node):
    status, _, body = request(api_node, {"code": "#" * 65537})
    error_of(status, body, 413, "cell.error.too_large")
    status, _, body = request(api_node, {"code": "1", "language": "klingon"})
    assert "python3" in error_of(status, body, 404, "cell.error.not_found")
    status, _, body = request(
        api_node, {"code": "import time\nprint('so far', flush=True)\ntime.sleep(60)", "timeout": 1}
    )
    error_of(status, body, 504, "cell.error.timeout")
    result = json.loads(body)
    assert result["status"] == "timeout" and result["outputs"][0]["text"] == "so far\n", body


def test_methods_paths_and_form_bodies_are_refused(api_node):
    status, headers, body = request(api_node, method="GET")
    error_of(status, body, 405, "cell.error.method_not_allowed")
    assert headers["allow"] == "POST, OPTIONS"
    status, _, body = request(api_node, method="GET", path="/v1/nothing")
    error_of(status, body, 404, "cell.error.not_found")
    forms = {
        "application/x-www-form-urlencoded": b"code=1",
        "multipart/form-data; boundary=x": b'--x\r\nContent-Disposition: form-data; name="code"\r\n\r\n1\r\n--x--\r\n',
        "text/plain": b'{"code": "1"}',
        None: b'{"code": "1"}',
    }
    for content_type, raw in forms.items():
        status, _, body = request(api_node, raw=raw, headers={"Content-Type": content_type})
        error_of(status, body, 415, "cell.error.unsupported_media_type")
        status, _, body = request(api_node, raw=raw, headers={"Content-Type": content_type, "Origin": BOOKS})
        error_of(status, body, 415, "cell.error.unsupported_media_type")


def test_tokens_a_bad_one_is_401_a_good_one_has_the_service_quotas(api_node):
    for scheme in ("Bearer", "token"):
        status, _, body = request(api_node, {"code": "1"}, headers={"Authorization": scheme + " wrong"})
        error_of(status, body, 401, "cell.error.not_authorized")
    # the service role's code limit (256 KiB), not the browser's (64 KiB)
    big = {"code": "#" * 100000 + "\nprint('big')"}
    status, _, body = request(api_node, big)
    error_of(status, body, 413, "cell.error.too_large")
    for scheme in ("Bearer", "token"):
        status, _, body = request(api_node, big, headers={"Authorization": scheme + " " + api_node.service_secret})
        assert status == 200 and json.loads(body)["outputs"][0]["text"] == "big\n", body


def test_a_stranger_meets_the_quotas_of_its_address_forged_forwarded_for_or_not(api_node):
    address = fresh_address()
    statuses = []
    for i in range(ONESHOTS_PER_MINUTE_PER_ADDRESS):
        forged = {"X-Forwarded-For": "10.77.0.{}".format(i)}  # were it believed, each would be another client
        status, headers, body = request(api_node, {"code": "1"}, source=address, headers=forged)
        statuses.append(status)
        if status == 429:
            assert "per minute" in error_of(status, body, 429, "cell.error.capacity")
            assert int(headers["retry-after"]) > 0
            break
    assert statuses[-1] == 429 and len(statuses) <= ONESHOTS_PER_MINUTE_PER_ADDRESS // 2, statuses
    status, _, _ = request(api_node, {"code": "1"}, source=address, headers={"X-Forwarded-For": "10.1.2.3"})
    assert status == 429, "a forged X-Forwarded-For does not escape the quota"
    token = {"Authorization": "Bearer " + api_node.service_secret}
    status, _, _ = request(api_node, {"code": "1"}, source=address, headers=token)
    assert status == 200, "a service token runs with the service role's quotas"
    assert request(api_node, {"code": "1"})[0] == 200, "another address is served"


def test_runs_at_once_per_address_are_capped_and_a_stream_left_unread_ends_with_its_timeout(api_node):
    """Slow-loris: streams of endless output that are never read hold the address's runs at once only until the
    one-shots' timeout; then the address is served again, those connections still open."""
    address = fresh_address()
    loud = {"code": "while True:\n    print('x' * 10000, flush=True)", "timeout": 3}
    sockets = []
    for i in range(CONCURRENT_PER_ADDRESS):
        if i:  # one in a forked child, one in a kernel (files need one)
            loud = dict(loud, files={"f": ""})
        s = socket.create_connection(("127.0.0.1", api_node.port), source_address=(address, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = json.dumps(loud).encode()
        s.sendall(
            b"POST /v1/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        sockets.append(s)
    try:
        deadline = time.monotonic() + 20
        status, body = None, b""
        while time.monotonic() < deadline:  # poll: admitted once both are running, served again once they ended
            status, _, body = request(api_node, {"code": "1"}, source=address)
            if status == 429:
                assert "at once" in json.loads(body)["message"]
                break
            time.sleep(0.2)  # poll
        assert status == 429, "two unread streams should hold the address's runs at once: {}".format(body)
        refused_at = time.monotonic()
        while time.monotonic() < deadline:  # poll
            status, _, body = request(api_node, {"code": "1"}, source=address)
            if status == 200:
                break
            time.sleep(0.5)  # poll: each refusal spends the address's rate too
        assert status == 200, "the unread streams' one-shots outlived their timeout: {}".format(body)
        assert time.monotonic() - refused_at < 15
    finally:
        for s in sockets:
            s.close()


def test_clients_that_leave_mid_stream_leave_nothing_running_and_nothing_logged(api_node):
    address = fresh_address()
    offset = len(api_node.log())
    for accept in ("text/event-stream", "application/x-ndjson"):
        conn = http.client.HTTPConnection("127.0.0.1", api_node.port, timeout=30, source_address=(address, 0))
        code = "import time\nfor i in range(100):\n    print(i, flush=True)\n    time.sleep(0.1)"
        conn.request(
            "POST",
            "/v1/execute",
            json.dumps({"code": code, "timeout": 4}),
            {"Content-Type": "application/json", "Accept": accept},
        )
        response = conn.getresponse()
        assert response.status == 200 and response.readline()
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline:  # poll: the address's runs at once come back once the left ones end
        status, _, body = request(api_node, {"code": "print(1)"}, source=address)
        if status == 200:
            break
        time.sleep(0.5)  # poll: each refusal spends the address's rate too
    assert status == 200
    # both at once again: none of the left runs is still counted
    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(request(api_node, {"code": "1"}, source=address)))
        for _ in range(CONCURRENT_PER_ADDRESS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [a[0] for a in answers] == [200] * CONCURRENT_PER_ADDRESS, answers
    logged = api_node.log()[offset:]
    assert "Unhandled" not in logged and "Traceback" not in logged, logged[-3000:]


def test_a_huge_body_is_refused_and_a_body_never_sent_holds_nothing(api_node):
    huge = b'{"code": "1", "files": {"a": "' + b"A" * (13 * 1024 * 1024) + b'"}}'
    status, _, body = request(api_node, raw=huge, timeout=120)
    assert "12582912" in error_of(status, body, 413, "cell.error.too_large")
    # a body announced as huge and never sent: the node serves others meanwhile
    s = socket.create_connection(("127.0.0.1", api_node.port))
    try:
        s.sendall(
            b"POST /v1/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100000000000\r\n\r\n{"code": '
        )
        assert request(api_node, {"code": "print(2)"})[0] == 200
    finally:
        s.close()
    assert request(api_node, {"code": "print(3)"})[0] == 200


# -- origins ---------------------------------------------------------------------------------------------------------


def test_pages_of_other_origins_meet_the_faces_origin_policy_errors_included(api_node):
    token = {"Authorization": "Bearer " + api_node.service_secret}
    # a page allowed anonymous use: served, CORS on the answer and on its errors
    status, headers, body = request(api_node, {"code": "print(1)"}, headers={"Origin": BOOKS})
    assert status == 200 and headers["access-control-allow-origin"] == BOOKS and "Origin" in headers["vary"]
    status, headers, body = request(api_node, raw=b"{bad", headers={"Origin": BOOKS})
    error_of(status, body, 400, "cell.error.invalid_argument")
    assert headers["access-control-allow-origin"] == BOOKS
    # ... but not with a service token
    status, headers, body = request(api_node, {"code": "1"}, headers=dict(token, Origin=BOOKS))
    assert "anonymously" in error_of(status, body, 403, "cell.error.forbidden")
    assert headers["access-control-allow-origin"] == BOOKS
    # a page of allowed_origins may send one
    status, headers, _ = request(api_node, {"code": "1"}, headers=dict(token, Origin=TRUSTED))
    assert status == 200 and headers["access-control-allow-origin"] == TRUSTED
    # the node's own pages
    own = "http://127.0.0.1:{}".format(api_node.port)
    status, headers, _ = request(api_node, {"code": "1"}, headers=dict(token, Origin=own))
    assert status == 200 and "access-control-allow-origin" not in headers
    # any other page: refused, and told nothing it could read
    for headers_sent in ({"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        status, headers, body = request(api_node, {"code": "1"}, headers=headers_sent)
        error_of(status, body, 403, "cell.error.forbidden")
        assert "access-control-allow-origin" not in headers, headers_sent
    status, headers, _ = request(api_node, method="GET", path="/v1/openapi.json", headers={"Origin": EVIL})
    assert status == 403 and "access-control-allow-origin" not in headers


def test_preflights(api_node):
    asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization"}
    for origin in (BOOKS, TRUSTED):
        status, headers, _ = request(api_node, method="OPTIONS", headers=dict(asks, Origin=origin))
        assert status == 204 and headers["access-control-allow-origin"] == origin, headers
        assert "POST" in headers["access-control-allow-methods"]
        assert {"content-type", "authorization", "accept"} <= set(headers["access-control-allow-headers"].split(", "))
    status, headers, body = request(api_node, method="OPTIONS", headers=dict(asks, Origin=EVIL))
    error_of(status, body, 403, "cell.error.forbidden")
    assert "access-control-allow-origin" not in headers
    status, headers, body = request(
        api_node, method="OPTIONS", headers={"Origin": BOOKS, "Access-Control-Request-Method": "DELETE"}
    )
    error_of(status, body, 403, "cell.error.forbidden")
    status, headers, _ = request(api_node, method="OPTIONS")
    assert status == 204 and headers["allow"] == "POST, OPTIONS"


# -- the description -------------------------------------------------------------------------------------------------


def _no_room(node):
    """More runs at once than the node has kernels (files need a kernel each), under the service token: those
    past its kernels are refused for no room (503), not for a quota."""
    hold = {"code": "import time\ntime.sleep(8)", "files": {"f": ""}, "timeout": 10}
    token = {"Authorization": "Bearer " + node.service_secret}
    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(request(node, hold, headers=token)))
        for _ in range(MAX_KERNELS + 3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    refused = [a for a in answers if a[0] != 200]
    assert refused and all(a[0] == 503 for a in refused), [a[0] for a in answers]
    return refused[0]


def _quota(node):
    address = fresh_address()
    for _ in range(ONESHOTS_PER_MINUTE_PER_ADDRESS):
        answer = request(node, {"code": "1"}, source=address)
        if answer[0] != 200:
            return answer
    return answer


#: (path, method, status) -> a request that gets it: every answer the description documents
TRIGGERS = {
    ("/execute", "post", "200"): lambda n: request(n, {"code": "1"}),
    ("/execute", "post", "400"): lambda n: request(n, raw=b"nope"),
    ("/execute", "post", "401"): lambda n: request(n, {"code": "1"}, headers={"Authorization": "Bearer no"}),
    ("/execute", "post", "403"): lambda n: request(n, {"code": "1"}, headers={"Origin": EVIL}),
    ("/execute", "post", "404"): lambda n: request(n, {"code": "1", "language": "nope"}),
    ("/execute", "post", "405"): lambda n: request(n, method="PUT", raw=b"{}"),
    ("/execute", "post", "413"): lambda n: request(n, {"code": "#" * 70000}),
    ("/execute", "post", "415"): lambda n: request(n, raw=b"code=1", headers={"Content-Type": "text/plain"}),
    ("/execute", "post", "429"): _quota,
    ("/execute", "post", "502"): lambda n: request(
        n, {"code": "import os; os.kill(os.getpid(), 9)", "files": {"a": ""}}
    ),
    ("/execute", "post", "503"): _no_room,
    ("/execute", "post", "504"): lambda n: request(n, {"code": "import time; time.sleep(9)", "timeout": 1}),
    ("/openapi.json", "get", "200"): lambda n: request(n, method="GET", path="/v1/openapi.json"),
    ("/openapi.json", "get", "405"): lambda n: request(n, method="POST", path="/v1/openapi.json", raw=b"{}"),
}


def test_the_openapi_description_is_valid_and_every_answer_it_documents_is_given(api_node):
    status, headers, body = request(api_node, method="GET", path="/v1/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    spec = json.loads(body)
    validate(spec)
    documented = {
        (path, method, code)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for code in operation["responses"]
    }
    assert documented == set(TRIGGERS), documented ^ set(TRIGGERS)
    schemas = {"components": spec["components"]}
    for (path, method, code), trigger in sorted(TRIGGERS.items()):
        status, headers, body = trigger(api_node)
        assert str(status) == code, (path, method, code, body[:300])
        described = spec["paths"][path][method]["responses"][code]
        media = headers["content-type"].split(";")[0]
        assert media in described["content"], (path, code, media)
        schema = dict(described["content"][media]["schema"], **schemas)
        jsonschema.validate(json.loads(body), schema)
        for header in described.get("headers", {}):
            assert header.lower() in headers, (path, code, header)
    request_schema = dict(spec["components"]["schemas"]["ExecuteRequest"], **schemas)
    jsonschema.validate({"code": "1", "files": {"a": "AA=="}, "return_files": True}, request_schema)
