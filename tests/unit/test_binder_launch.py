"""L{components.router.binder_launch}: BinderHub's spec forms, the repos patterns, the event stream and its errors."""

import json

import pytest
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from components.common.config import ConfigError
from components.router.binder_launch import BuildPage, LaunchConfig, SpecError, parse
from components.router.launch_tokens import LaunchTokens, derive

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "segments, expected",
    [
        (["gh", "owner", "repo", "main"], ("gh", "gh/owner/repo", "main")),
        (["gh", "owner", "repo", "feature", "x"], ("gh", "gh/owner/repo", "feature/x")),
        (["gist", "user", "0123abc"], ("gist", "gist/user/0123abc", "HEAD")),
        (["gist", "user", "0123abc", "f00"], ("gist", "gist/user/0123abc", "f00")),
        (["gl", "group/project", "main"], ("gl", "gl/group/project", "main")),
        (["git", "https://example.org/r.git", "HEAD"], ("git", "git/https://example.org/r.git", "HEAD")),
        (["ckan", "https://demo.ckan.org", "dataset-1"], ("ckan", "ckan/https://demo.ckan.org/dataset-1", "")),
        (["zenodo", "10.5281", "zenodo.3242074"], ("zenodo", "zenodo/10.5281/zenodo.3242074", "")),
        (
            ["figshare", "10.6084", "m9.figshare.9782777.v1"],
            ("figshare", "figshare/10.6084/m9.figshare.9782777.v1", ""),
        ),
        (
            ["hydroshare", "b8f6eae9d89241cf8b5904033460af61"],
            ("hydroshare", "hydroshare/b8f6eae9d89241cf8b5904033460af61", ""),
        ),
        (["dataverse", "10.7910", "DVN", "TJCLKP"], ("dataverse", "dataverse/10.7910/DVN/TJCLKP", "")),
    ],
)
def test_binderhubs_spec_forms(segments, expected):
    assert parse(segments) == expected


@pytest.mark.parametrize(
    "segments, code",
    [
        ([], 404),
        (["bitbucket", "o", "r", "main"], 404),
        (["gh", "owner", "repo"], 400),
        (["gh", "owner", "", "main"], 400),
        (["gl", "group"], 400),
        (["zenodo"], 400),
        (["gh", "o", "r", "x" * 2000], 400),
    ],
)
def test_what_is_not_a_spec(segments, code):
    with pytest.raises(SpecError) as error:
        parse(segments)
    assert error.value.code == code and "form" in str(error.value) or "provider" in str(error.value)


def test_repos_patterns_choose_the_kernelspec_first_match_wins():
    config = LaunchConfig(
        default_kernel="python3", repos={"gh/sagemath/*": "sagemath", "gh/*/gap-*": "gap-4", "gh/*": "ir"}
    )
    assert config.kernel_for("gh/SageMath/sage-book") == "sagemath"
    assert config.kernel_for("gh/someone/gap-notes") == "gap-4"
    assert config.kernel_for("gh/someone/else") == "ir"
    assert config.kernel_for("zenodo/10.5281/zenodo.1") == "python3"
    for bad in ({"repos": {"bitbucket/*": "python3"}}, {"repos": {"gh/*": "no spaces"}}, {"token_lifetime_s": 5}):
        with pytest.raises(ConfigError):
            LaunchConfig(**bad)
    with pytest.raises(ConfigError):
        LaunchConfig(face_url="javascript:alert(1)")


def request(path, host=b"node.example:8080", method=b"GET"):
    req = DummyRequest(path.split(b"/"))
    req.method = method
    req.isSecure = lambda: False  # DummyRequest has no transport to ask
    if host is not None:
        req.requestHeaders.setRawHeaders(b"host", [host])
    return req


def events(body):
    return [json.loads(chunk[len("data: ") :]) for chunk in body.decode().split("\n\n") if chunk]


def page(**extra):
    clock = Clock()
    clock.advance(1000)
    tokens = LaunchTokens(derive(b"k" * 32), clock)
    return BuildPage(extra, tokens=tokens), tokens


def test_a_launch_streams_built_launching_ready_with_a_token_for_the_repos_kernel():
    build, tokens = page(repos={"gh/sagemath/*": "sagemath"})
    req = request(b"gh/sagemath/book/main")
    body = build.render(req)
    assert req.responseHeaders.getRawHeaders(b"content-type") == [b"text/event-stream; charset=utf-8"]
    assert req.responseHeaders.getRawHeaders(b"access-control-allow-origin") == [b"*"]
    built, launching, ready = events(body)
    assert (built["phase"], launching["phase"], ready["phase"]) == ("built", "launching", "ready")
    assert ready["url"] == "http://node.example:8080/jupyter/" and ready["kernel_name"] == "sagemath"
    launch = tokens.verify(ready["token"])
    assert launch.kernel_name == "sagemath" and launch.expires == 1000 + 14400
    assert (
        ready["binder_launch_host"] == "http://node.example:8080/"
        and ready["binder_request"] == "v2/gh/sagemath/book/main"
    )
    second = events(build.render(request(b"gh/sagemath/book/main")))[-1]
    assert tokens.verify(second["token"]).launch_id != launch.launch_id


def test_the_face_url_from_config_or_a_front_that_says_https():
    build, _ = page(face_url="https://cells.example.org/jupyter/")
    assert events(build.render(request(b"gh/o/r/main")))[-1]["url"] == "https://cells.example.org/jupyter/"
    build, _ = page()
    req = request(b"gh/o/r/main")
    req.requestHeaders.setRawHeaders(b"x-forwarded-proto", [b"https"])
    assert events(build.render(req))[-1]["url"] == "https://node.example:8080/jupyter/"


@pytest.mark.parametrize(
    "path, host, method, code",
    [
        (b"nope/o/r/main", b"h", b"GET", 404),
        (b"gh/o/r", b"h", b"GET", 400),
        (b"gh/o/r/main", b"evil.example/path?", b"GET", 400),
        (b"gh/o/r/main", None, b"GET", 400),
        (b"gh/o/r/main", b"h", b"POST", 405),
        (b"gh/o/\xff/main", b"h", b"GET", 400),
    ],
)
def test_errors_are_json_with_a_message_and_cors(path, host, method, code):
    build, _ = page()
    req = request(path, host, method)
    body = json.loads(build.render(req))
    assert req.responseCode == code and body["message"]
    assert req.responseHeaders.getRawHeaders(b"access-control-allow-origin") == [b"*"]


def test_a_preflight_is_answered_for_get():
    build, _ = page()
    req = request(b"gh/o/r/main", method=b"OPTIONS")
    assert build.render(req) == b"" and req.responseCode == 204
    assert req.responseHeaders.getRawHeaders(b"access-control-allow-methods") == [b"GET"]
