"""``/build``: BinderHub's launch API on the node, for thebe and other Binder clients (a Crossbar ``resource``).

    GET /build/<provider>/<spec>    text/event-stream: built, launching, ready (at once: nothing is built)

BinderHub builds an image from a repository and starts a Jupyter server for
it; a book page's thebe opens an ``EventSource`` here and waits for
``{"phase": "ready", "url", "token"}``.  This node's kernels are already
running, so the answer comes at once: ``url`` is the node's Jupyter face and
``token`` a launch token (components.router.launch_tokens) that names this
launch and the one kernelspec the repository gets (from the config's
``repos`` patterns, else ``default_kernel``).  A launch starts nothing and
keeps nothing: the kernel starts when the client asks the face for it, under
the face's quotas (the ``browser`` role's, counted per client address), so
launching a thousand times gives a stranger nothing but a thousand tokens of
the same worth.

The providers and their specs are BinderHub's (its docs' "Repository
Providers"): ``gh/<user>/<repo>/<ref>``, ``gist/<user>/<gist id>[/<ref>]``,
``gl/<url-escaped namespace>/<ref>``, ``git/<url-escaped url>/<ref>``,
``ckan/<url-escaped url>/<dataset id>``, and ``zenodo``, ``figshare``,
``hydroshare``, ``dataverse`` followed by a DOI (or a HydroShare resource id).
The repository is never fetched: the spec only chooses the kernelspec.

Any page may open the stream (``Access-Control-Allow-Origin: *``: it carries
no credential and hands out nothing a page could not get again); an unknown
provider is a 404, a malformed spec a 400, both JSON ``{"message"}`` with
the same CORS header.  Settings: the path's ``extra`` (L{LaunchConfig}).
"""

import dataclasses
import fnmatch
import json
import re
from urllib.parse import quote

from twisted.logger import Logger
from twisted.web import resource

from components.common.config import ConfigError, check_types, from_mapping
from components.router import launch_tokens

#: provider prefix -> (the spec's form, for messages; how many segments name the repository; whether a ref follows)
PROVIDERS = {
    "gh": ("gh/<user>/<repo>/<ref>", 2, True),
    "gist": ("gist/<user>/<gist id>[/<ref>]", 2, None),
    "gl": ("gl/<url-escaped namespace>/<ref>", 1, True),
    "git": ("git/<url-escaped url>/<ref>", 1, True),
    "ckan": ("ckan/<url-escaped url>/<dataset id>", 2, False),
    "zenodo": ("zenodo/<DOI>", 0, False),
    "figshare": ("figshare/<DOI>", 0, False),
    "hydroshare": ("hydroshare/<DOI or resource id>", 0, False),
    "dataverse": ("dataverse/<DOI>", 0, False),
}

#: a spec longer than this is no repository's
MAX_SPEC_CHARS = 1024
#: what a Host header may be (the URL of the face in the ready event is built from it)
HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
KERNEL_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class SpecError(ValueError):
    """A request this API cannot answer: C{code} (404 or 400), the text says what to send instead."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    #: the kernelspec a repository gets when no pattern of ``repos`` matches it
    default_kernel: str = "python3"
    #: "<provider>/<repository>" pattern (fnmatch, case-insensitive, first match wins) -> kernelspec name
    repos: dict = dataclasses.field(default_factory=dict)
    #: how long a launch token is accepted by the face
    token_lifetime_s: int = 14400
    #: the face's URL as pages reach it (e.g. "https://cells.example.org/jupyter/"); "": from the request's Host
    face_url: str = ""

    def __post_init__(self):
        check_types(self)
        for pattern, kernel in {"": self.default_kernel, **self.repos}.items():
            if pattern and pattern.split("/", 1)[0] not in PROVIDERS:
                raise ConfigError(
                    "repos: {!r} does not start with a provider ({})".format(pattern, ", ".join(PROVIDERS))
                )
            if not isinstance(kernel, str) or not KERNEL_NAME.match(kernel):
                raise ConfigError("repos and default_kernel name kernelspecs, not {!r}".format(kernel))
        if not 60 <= self.token_lifetime_s <= 7 * 86400:
            raise ConfigError("token_lifetime_s is between 60 and 604800")
        if self.face_url and not re.match(r"^https?://[^/?#]+/([^?#]*/)?$", self.face_url):
            raise ConfigError("face_url is an http(s) URL ending in '/', e.g. https://cells.example.org/jupyter/")

    def kernel_for(self, repository):
        """The kernelspec for C{repository} ("<provider>/<repository>")."""
        for pattern, kernel in self.repos.items():
            if fnmatch.fnmatchcase(repository.lower(), pattern.lower()):
                return kernel
        return self.default_kernel


def parse(segments):
    """C{(provider, repository, ref)} from a request's path after ``/build`` (decoded segments); L{SpecError}."""
    if not segments or not segments[0]:
        raise SpecError(404, "launch with GET /build/<provider>/<spec>; providers: " + ", ".join(PROVIDERS))
    provider, rest = segments[0], segments[1:]
    if provider not in PROVIDERS:
        raise SpecError(404, "no provider {!r} here; providers: {}".format(provider[:40], ", ".join(sorted(PROVIDERS))))
    form, names, has_ref = PROVIDERS[provider]
    if names == 0:
        named, ref = ["/".join(rest)], ""
    else:
        named, tail = rest[:names], rest[names:]
        if has_ref is False and tail:
            named, tail = [*named[:-1], "/".join(rest[names - 1 :])], []
        ref = "/".join(tail) if tail else ("HEAD" if has_ref is None else "")
        if has_ref and not ref:
            named = []
    if len(named) != max(names, 1) or not all(named) or sum(map(len, rest)) > MAX_SPEC_CHARS:
        raise SpecError(400, "a {} spec has the form {}".format(provider, form))
    return provider, provider + "/" + "/".join(named), ref


def event(data):
    return "data: {}\n\n".format(json.dumps(data)).encode("utf-8")


class BuildPage(resource.Resource):
    """See the module docstring."""

    isLeaf = True
    log = Logger()

    def __init__(self, extra=None, tokens=None):
        super().__init__()
        self.settings = from_mapping(LaunchConfig, dict(extra or {}))
        self._tokens = tokens

    @property
    def tokens(self):
        if self._tokens is None:  # keyed at the first launch (the router runs in the node directory by then)
            self._tokens = launch_tokens.LaunchTokens(launch_tokens.node_signing_key())
        return self._tokens

    def render(self, request):
        request.setHeader(b"access-control-allow-origin", b"*")
        request.setHeader(b"cache-control", b"no-store")
        if request.method == b"OPTIONS":
            request.setResponseCode(204)
            request.setHeader(b"access-control-allow-methods", b"GET")
            request.setHeader(b"access-control-max-age", b"600")
            return b""
        try:
            if request.method not in (b"GET", b"HEAD"):
                raise SpecError(405, "the launch API answers GET only (an EventSource)")
            segments = [s.decode("utf-8") for s in request.postpath]
            provider, repository, ref = parse(segments[:-1] if segments[-1:] == [""] else segments)
            face = self.settings.face_url or self._face_url(request)
        except UnicodeDecodeError:
            return self._error(request, SpecError(400, "the spec is not UTF-8"))
        except SpecError as error:
            return self._error(request, error)
        return self._launch(request, provider, repository, ref, face)

    def _face_url(self, request):
        host = (request.getHeader(b"host") or b"").decode("latin-1").strip()
        if not HOST.match(host):
            raise SpecError(400, "send a Host header (the ready event's URL is built from it)")
        forwarded = (request.getHeader(b"x-forwarded-proto") or b"").decode("latin-1").strip().lower()
        scheme = "https" if request.isSecure() or forwarded == "https" else "http"
        return "{}://{}/jupyter/".format(scheme, host)

    def _error(self, request, error):
        request.setResponseCode(error.code)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"message": str(error), "reason": str(error)}).encode()

    def _launch(self, request, provider, repository, ref, face):
        kernel = self.settings.kernel_for(repository)
        launch, token = self.tokens.mint(kernel, self.settings.token_lifetime_s)
        image = "cellserver/" + kernel
        spec = "/".join(quote(s.decode("utf-8"), safe="") for s in request.postpath)
        self.log.info(
            "binder launch {launch}: {repository} gets {kernel}",
            launch=launch.launch_id,
            repository=repository,
            kernel=kernel,
        )
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"x-accel-buffering", b"no")
        built = "{} runs on this node's {} kernels: nothing to build\n".format(repository, kernel)
        ready = {
            "phase": "ready",
            "message": "server running at {}\n".format(face),
            "url": face,
            "token": token,
            "image": image,
            "kernel_name": kernel,
            "repo": repository,
            "ref": ref,
            "expires": launch.expires,
            "binder_launch_host": face.rsplit("/", 2)[0] + "/",
            "binder_request": "v2/" + spec,
            "binder_persistent_request": "v2/" + spec,
        }
        # All at once, and the stream ends (Binder clients close it at "ready").
        return b"".join(
            (
                event({"phase": "built", "imageName": image, "message": built}),
                event({"phase": "launching", "message": "Launching server...\n"}),
                event(ready),
            )
        )
