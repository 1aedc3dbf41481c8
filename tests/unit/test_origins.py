"""L{components.router.jupyter.origins}: which web pages may use the Jupyter face."""

import pytest

from components.router.jupyter.origins import OriginPolicy, form_body

pytestmark = pytest.mark.unit


def test_the_origin_policy_serves_its_own_site_and_the_allowed_origins_only():
    policy = OriginPolicy(["https://notebooks.example.org"])
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
    with pytest.raises(ValueError, match="origins such as"):
        OriginPolicy(["https://example.org/path"])
