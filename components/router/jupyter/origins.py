"""Which web pages may use the Jupyter face from a browser: the node's own origin, and those the config allows.

A browser lets any page send requests to any site, and open WebSockets to it
(the same-origin policy only hides the answers, and not even that for a
WebSocket).  So a page on another site could make its visitor's browser start
kernels here as that visitor (an anonymous client counted under the visitor's
address), or talk to a kernel's channels.  Browsers say where a request comes
from: ``Origin`` on every cross-origin request and WebSocket, and on every
POST; ``Sec-Fetch-Site`` on all requests of current browsers.  The face
refuses (403) every request whose ``Origin`` is neither its own (the
``Host`` it was sent to) nor in ``allowed_origins``, and, with no
``Origin``, every request a browser marks as coming from another site.
Clients that are not browsers send neither header and are served as before.
A POST's body must be JSON: a form's or ``text/plain`` body is what another
site's page can send without asking the face first (L{form_body}).  Pages on
an allowed origin get CORS answers (L{OriginPolicy.cors_headers},
L{OriginPolicy.preflight}); there are no cookies, so a page can only use a
token it holds itself.
"""

from urllib.parse import urlsplit

#: the bodies a page of any origin may POST without a CORS preflight (the CORS-safelisted content types)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")

#: what a page on an allowed origin may do (a preflight's answer)
ALLOW_METHODS = "GET, POST, DELETE"
ALLOW_HEADERS = "authorization, content-type"


def origin_of(text):
    """``scheme://host[:port]`` in lower case, or None if C{text} is not an http(s) origin."""
    try:
        parts = urlsplit(str(text).strip().lower())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return "{}://{}".format(parts.scheme, parts.netloc)


def form_body(content_type):
    """Whether a request's C{Content-Type} is one a cross-site form (or ``fetch`` without a preflight) can send."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media in FORM_TYPES


class OriginPolicy:
    """The face's origin rules (see the module docstring); C{allowed_origins} from the face's config."""

    def __init__(self, allowed_origins=()):
        allowed = []
        for entry in allowed_origins:
            origin = origin_of(entry)
            if origin is None or origin != str(entry).strip().lower().rstrip("/"):
                raise ValueError(
                    "allowed_origins lists origins such as 'https://notebooks.example.org', not {!r}".format(entry)
                )
            allowed.append(origin)
        self._allowed = frozenset(allowed)

    def refusal(self, origin, host, fetch_site):
        """None if a request with these headers may go on; otherwise why not (for a 403)."""
        if origin is None:
            if fetch_site is None or fetch_site.strip().lower() in ("same-origin", "none"):
                return None
            return "a request another site's page made is not served here (Sec-Fetch-Site: {})".format(
                fetch_site.strip()[:20]
            )
        if self.same_origin(origin, host) or self.foreign_allowed(origin):
            return None
        return (
            "requests from pages of {} are not served here: only this site's own pages and the origins listed in the "
            "face's allowed_origins may use it from a browser".format(str(origin)[:100])
        )

    def same_origin(self, origin, host):
        parsed = origin_of(origin)
        return parsed is not None and bool(host) and parsed.split("://", 1)[1] == host.strip().lower()

    def foreign_allowed(self, origin):
        return origin_of(origin) in self._allowed

    def cors_headers(self, origin, host):
        """The headers an answer to a page of C{origin} carries: CORS for an allowed foreign origin, else none."""
        if origin is None or self.same_origin(origin, host) or not self.foreign_allowed(origin):
            return {}
        return {"Access-Control-Allow-Origin": origin_of(origin), "Access-Control-Expose-Headers": "Location"}

    def preflight(self, origin, host, method):
        """The headers of a CORS preflight's 204, or None to refuse it (an origin not allowed, or a method the face
        does not serve)."""
        headers = self.cors_headers(origin, host)
        if not headers or (method or "").strip().upper() not in ALLOW_METHODS.split(", "):
            return None
        return dict(
            headers,
            **{
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )
