"""Which web pages may use the Jupyter face from a browser, and as whom.

A browser lets any page send requests to any site, and open WebSockets to it
(the same-origin policy only hides the answers, and not even that for a
WebSocket).  Browsers say where a request comes from: ``Origin`` on every
cross-origin request and WebSocket, and on every POST; ``Sec-Fetch-Site`` on
all requests of current browsers.  Clients that are not browsers send
neither header and are served as before.

Two lists in the face's config say which pages of other sites are served:

- ``allowed_origins``: pages that may use the face as any client, tokens
  included (a page that holds a token is then its own to guard);
- ``anonymous_origins`` (default ``["*"]``: every origin): pages that may use
  it *anonymously* only, as thebe on a Jupyter Book page does.  An anonymous
  client proves nothing, has the browser role's limits counted under its own
  visitor's address, and reaches only the kernel and session ids it was given;
  the face sets and reads no cookies and answers CORS without credentials, so a
  page gets nothing its visitor's browser holds.  A request of such a page may
  carry only a token of the ``browser`` role (a Binder launch's); one with a
  service token is refused (403): those are for ``allowed_origins``.

Every other page gets 403 without CORS headers (it reads nothing), and so
does a request without ``Origin`` that a browser marks as coming from another
site.  ``"*"`` stands for every http(s) origin, not ``null`` (sandboxed frames,
``data:`` and ``file:`` pages): list ``"null"`` to serve those.  A POST's body
is JSON: a form's body is refused whatever its origin, and so is a
``text/plain`` one without ``Origin`` (L{form_body}).  Served pages get CORS on
every answer, errors included, so that they can read why they were refused.
"""

from urllib.parse import urlsplit

#: the bodies a page of any origin may POST without a CORS preflight (the CORS-safelisted content types)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")

#: what a served page may do (a preflight's answer); PATCH renames a session
ALLOW_METHODS = "GET, POST, PATCH, DELETE"
#: the headers a served page may send: Jupyter's clients send these (x-xsrftoken when the page has a _xsrf cookie)
ALLOW_HEADERS = "authorization, content-type, x-xsrftoken"

#: the answers a page may read
ANONYMOUS = "anonymous"
ANY = "any"


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


def form_body(content_type, origin=None):
    """Whether a POST's body is refused as a form's: a C{Content-Type} a cross-site form (or ``fetch`` without a
    preflight) can send.  ``text/plain`` is served when the request has an C{origin} (which passed the policy):
    @jupyterlab/services, without a token, posts its JSON with no Content-Type, which fetch labels text/plain
    (thebe's anonymous ``POST api/sessions``).  Without ``Origin`` it may be an old browser's form: refused."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "text/plain" and origin is not None:
        return False
    return media in FORM_TYPES


def _origins(entries, setting, wildcards=()):
    found = []
    for entry in entries:
        if str(entry).strip().lower() in wildcards:
            found.append(str(entry).strip().lower())
            continue
        origin = origin_of(entry)
        if origin is None or origin != str(entry).strip().lower().rstrip("/"):
            raise ValueError(
                "{} lists origins such as 'https://notebooks.example.org'{}, not {!r}".format(
                    setting, "".join(", {!r}".format(w) for w in wildcards), entry
                )
            )
        found.append(origin)
    return frozenset(found)


class OriginPolicy:
    """The face's origin rules (see the module docstring), from its config."""

    def __init__(self, allowed_origins=(), anonymous_origins=("*",)):
        self._allowed = _origins(allowed_origins, "allowed_origins")
        self._anonymous = _origins(anonymous_origins, "anonymous_origins", wildcards=("*", "null"))
        self._any_anonymous = "*" in self._anonymous

    def grant(self, origin, host):
        """What a page of C{origin} may do: L{ANY} (the node's own pages, allowed_origins, and clients that are not
        browsers), L{ANONYMOUS} (anonymous_origins), or None."""
        if origin is None or self.same_origin(origin, host) or origin_of(origin) in self._allowed:
            return ANY
        text = str(origin).strip().lower()
        if text == "null":
            return ANONYMOUS if "null" in self._anonymous else None
        parsed = origin_of(origin)
        if parsed is not None and (self._any_anonymous or parsed in self._anonymous):
            return ANONYMOUS
        return None

    def refusal(self, origin, host, fetch_site):
        """None if a request with these headers may go on (as L{grant} says); otherwise why not (for a 403)."""
        if origin is None:
            if fetch_site is None or fetch_site.strip().lower() in ("same-origin", "none"):
                return None
            return "a request another site's page made is not served here (Sec-Fetch-Site: {})".format(
                fetch_site.strip()[:20]
            )
        if self.grant(origin, host) is not None:
            return None
        return (
            "requests from pages of {} are not served here: only this site's own pages and the origins listed in the "
            "face's allowed_origins or anonymous_origins may use it from a browser".format(str(origin)[:100])
        )

    def token_refusal(self, origin, host):
        """None if a request of C{origin} may carry any token; otherwise why it may not carry a service token."""
        if self.grant(origin, host) == ANY:
            return None
        return (
            "pages of {} may use this face anonymously only: leave the token out (a service token is accepted from "
            "the origins listed in the face's allowed_origins)".format(str(origin)[:100])
        )

    def same_origin(self, origin, host):
        parsed = origin_of(origin)
        return parsed is not None and bool(host) and parsed.split("://", 1)[1] == host.strip().lower()

    def cors_headers(self, origin, host):
        """The headers every answer to a page of C{origin} carries: CORS for a served foreign origin, else none.
        Never ``Access-Control-Allow-Credentials``: the face has no cookies, and a page sends none."""
        if origin is None or self.same_origin(origin, host) or self.grant(origin, host) is None:
            return {}
        return {"Access-Control-Allow-Origin": str(origin).strip(), "Access-Control-Expose-Headers": "Location"}

    def preflight(self, origin, host, method, methods=ALLOW_METHODS, headers=ALLOW_HEADERS):
        """The headers of a CORS preflight's 204, or None to refuse it (an origin not served, or a method not among
        C{methods}, those the surface serves: the face's by default, the HTTP API's its own)."""
        cors = self.cors_headers(origin, host)
        if not cors or (method or "").strip().upper() not in methods.split(", "):
            return None
        return dict(
            cors,
            **{
                "Access-Control-Allow-Methods": methods,
                "Access-Control-Allow-Headers": headers,
                "Access-Control-Max-Age": "600",
            },
        )
