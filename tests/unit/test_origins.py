"""L{components.router.jupyter.origins}: which web pages may use the Jupyter face."""

import pytest

from components.router.jupyter.origins import OriginPolicy, form_body

pytestmark = pytest.mark.unit


def test_the_origin_policy_serves_its_own_site_and_the_allowed_origins_only():
    policy = OriginPolicy(["https://notebooks.example.org"], anonymous_origins=[])
    assert policy.refusal(None, "cell.example.org", None) is None, "not a browser: served as before"
    assert policy.refusal(None, "cell.example.org", "same-origin") is None
    assert policy.refusal(None, "cell.example.org", "cross-site"), "a navigation or image from another site"
    assert policy.refusal("https://cell.example.org", "cell.example.org", None) is None, "the node's own pages"
    assert policy.refusal("https://notebooks.example.org", "cell.example.org", "cross-site") is None
    for foreign in ("https://evil.example", "null", "https://cell.example.org.evil.example", "file://", "garbage"):
        assert policy.refusal(foreign, "cell.example.org", "cross-site"), foreign
    assert policy.cors_headers("https://notebooks.example.org", "cell.example.org") == {
        "Access-Control-Allow-Origin": "https://notebooks.example.org",
        "Access-Control-Expose-Headers": "Location",
    }
    assert policy.cors_headers("https://cell.example.org", "cell.example.org") == {}, "same origin: no CORS"
    assert policy.preflight("https://evil.example", "cell.example.org", "POST") is None
    assert policy.preflight("https://notebooks.example.org", "cell.example.org", "PUT") is None
    assert (
        "authorization"
        in policy.preflight("https://notebooks.example.org", "x", "POST")["Access-Control-Allow-Headers"]
    )
    for body in ("text/plain", "application/x-www-form-urlencoded; charset=utf-8", "Multipart/Form-Data; boundary=x"):
        assert form_body(body), body
    assert not form_body("application/json") and not form_body(None)
    assert not form_body("text/plain;charset=UTF-8", "https://book.example.net"), "what @jupyterlab/services posts"
    assert form_body("multipart/form-data; boundary=x", "https://book.example.net")
    with pytest.raises(ValueError, match="origins such as"):
        OriginPolicy(["https://example.org/path"])


def test_anonymous_origins_serve_any_page_anonymously_and_keep_tokens_to_the_allowed_origins():
    policy = OriginPolicy(["https://notebooks.example.org"])  # anonymous_origins: ["*"], the default
    host = "cell.example.org"
    for page in ("https://book.example.net", "http://localhost:8000"):
        assert policy.refusal(page, host, "cross-site") is None, page
        assert policy.token_refusal(page, host), "a service token is for allowed_origins"
        assert policy.cors_headers(page, host)["Access-Control-Allow-Origin"] == page
        headers = policy.preflight(page, host, "PATCH")
        assert "Access-Control-Allow-Credentials" not in headers and "PATCH" in headers["Access-Control-Allow-Methods"]
        assert "x-forwarded-for" not in headers["Access-Control-Allow-Headers"]
    assert policy.token_refusal("https://notebooks.example.org", host) is None
    assert policy.token_refusal("https://cell.example.org", host) is None, "the node's own pages"
    for foreign in ("null", "file://", "garbage", "https://x.example/path"):
        assert policy.refusal(foreign, host, "cross-site"), "'*' is every http(s) origin, not " + foreign
    assert policy.refusal(None, host, "cross-site"), "no Origin but another site's: a navigation, still refused"
    listed = OriginPolicy([], anonymous_origins=["https://book.example.net", "null"])
    assert listed.refusal("null", host, "cross-site") is None and listed.cors_headers("null", host)
    assert listed.refusal("https://evil.example", host, "cross-site")
    assert listed.cors_headers("https://evil.example", host) == {}, "a page not served reads nothing"
    with pytest.raises(ValueError, match="anonymous_origins lists origins"):
        OriginPolicy([], anonymous_origins=["*.example.org"])
    with pytest.raises(ValueError, match="allowed_origins lists origins"):
        OriginPolicy(["*"])
