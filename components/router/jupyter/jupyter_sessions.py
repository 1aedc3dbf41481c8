"""The face's sessions (``/jupyter/api/sessions``): Jupyter Server's session API, which thebe and JupyterLab use.

A session names a kernel for a document: ``{id, path, name, type, kernel}``.
Here it lives and dies with its kernel: a kernel that dies, is deleted or is
culled ends its sessions (L{FaceSessions.kernel_gone}, called by the kernel
table), and deleting a session deletes its kernel.  A session is its
principal's, as a kernel is: a token's principal lists its own and, as Jupyter
Server does, gets its session back when it asks again for the same ``path``
(thebe's saved sessions reload a page that way); an anonymous client is
shown no session and reuses none by path (a path is no secret: every visitor
of a book page sends the same one), and the session's id, random and told
only to the client that made it, is its capability, as a kernel's id is.

The table is bounded by the kernels' quotas: a session needs a kernel, and a
kernel has at most L{MAX_SESSIONS_PER_KERNEL} of them.
"""

import uuid

from twisted.internet import defer

from components.common import errors

#: sessions one kernel may have (JupyterLab opens a notebook's and a console's on one kernel)
MAX_SESSIONS_PER_KERNEL = 8

#: longest path, name or type a session keeps (characters)
MAX_TEXT = 1024


class FaceSession:
    def __init__(self, principal, path, name, kind, kernel):
        self.session_id = str(uuid.uuid4())
        #: the principal's name ("": anonymous, whoever holds the id)
        self.principal = principal
        self.path = path
        self.name = name
        self.kind = kind
        self.kernel = kernel

    def model(self):
        """Jupyter Server's session model."""
        model = {
            "id": self.session_id,
            "path": self.path,
            "name": self.name,
            "type": self.kind,
            "kernel": self.kernel.model(),
        }
        if self.kind == "notebook":
            model["notebook"] = {"path": self.path, "name": self.name}  # what clients of Notebook 6 read
        return model


def _text(body, key, default=None):
    value = body.get(key, default)
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise errors.InvalidArgument("{} must be a string of at most {} characters".format(key, MAX_TEXT))
    return value


def _kernel_wish(body):
    """(kernel id, kernel name) the request's ``kernel`` asks for; either may be None."""
    kernel = body.get("kernel")
    if kernel is None:
        return None, None
    if not isinstance(kernel, dict):
        raise errors.InvalidArgument('kernel must be an object such as {"name": "python3"}')
    kernel_id, name = kernel.get("id"), kernel.get("name")
    if kernel_id is not None and (not isinstance(kernel_id, str) or len(kernel_id) > 64):
        raise errors.InvalidArgument("kernel.id must be a kernel's id")
    if name is not None and (not isinstance(name, str) or len(name) > 64):
        raise errors.InvalidArgument("kernel.name must be a kernelspec name")
    return kernel_id, name


class FaceSessions:
    """Every session of the face, by id; see the module docstring.  C{kernels}: the face's L{FaceKernels}."""

    def __init__(self, kernels):
        self._kernels = kernels
        self._sessions = {}
        kernels.on_forget.append(self.kernel_gone)

    def __len__(self):
        return len(self._sessions)

    def of(self, principal):
        """What C{principal} may list: a token's principal its sessions; an anonymous client none."""
        if principal.anonymous:
            return []
        return [s for s in self._sessions.values() if s.principal == principal.name]

    def get(self, session_id, principal):
        """The session, if C{principal} holds it; L{errors.NotFound} otherwise (another's looks the same)."""
        session = self._sessions.get(str(session_id).lower())
        if session is None or session.principal != principal.name:
            raise errors.NotFound("no session {} is yours here".format(str(session_id)[:64]))
        return session

    @defer.inlineCallbacks
    def create(self, principal, body, start_kernel):
        """A session for C{body} (``{path, name, type, kernel: {name} or {id}}``); C{start_kernel(name)} starts
        a kernel for C{principal}.  A token's principal gets its session of the same path back."""
        path, name, kind = _text(body, "path", ""), _text(body, "name", ""), _text(body, "type", "")
        kernel_id, kernel_name = _kernel_wish(body)
        if not principal.anonymous:
            for session in self.of(principal):
                if session.path == path:
                    return session
        if kernel_id is not None:
            kernel = self._kernel_for(kernel_id, principal)
        else:
            kernel = yield start_kernel(kernel_name)
        if kernel.execution_state == "dead":  # it died while it started
            raise errors.NotFound("the kernel ended before its session began")
        session = FaceSession(principal.name, path, name, kind, kernel)
        self._sessions[session.session_id] = session
        return session

    @defer.inlineCallbacks
    def update(self, session, principal, body, start_kernel):
        """PATCH: a new path, name or type; ``kernel: {id}`` or ``{name}`` moves the session to another kernel
        (the old one is shut down when no session is left on it, as Jupyter Server does)."""
        changes = {key: _text(body, key) for key in ("path", "name", "type") if key in body}
        kernel_id, kernel_name = _kernel_wish(body)
        old = session.kernel
        if kernel_id is not None and kernel_id.replace("-", "").lower() != old.kernel_id:
            new = self._kernel_for(kernel_id, principal)
        elif kernel_name is not None and kernel_id is None and kernel_name != old.name:
            new = yield start_kernel(kernel_name)
        else:
            new = old
        if session.session_id not in self._sessions:  # its kernel died meanwhile
            raise errors.NotFound("session {} ended".format(session.session_id))
        session.path = changes.get("path", session.path)
        session.name = changes.get("name", session.name)
        session.kind = changes.get("type", session.kind)
        if new is not old:
            session.kernel = new
            if not any(s.kernel is old for s in self._sessions.values()):
                yield self._kernels.shutdown(old)
        return session

    def delete(self, session):
        """End C{session} and its kernel (its other sessions end with it)."""
        self._sessions.pop(session.session_id, None)
        return self._kernels.shutdown(session.kernel)

    def kernel_gone(self, kernel):
        """C{kernel} died or was shut down: its sessions end."""
        for session_id in [i for i, s in self._sessions.items() if s.kernel is kernel]:
            del self._sessions[session_id]

    def _kernel_for(self, kernel_id, principal):
        kernel = self._kernels.get(kernel_id, principal)
        if sum(1 for s in self._sessions.values() if s.kernel is kernel) >= MAX_SESSIONS_PER_KERNEL:
            raise errors.Capacity(
                "kernel {} already has {} sessions, the most one may have".format(kernel_id, MAX_SESSIONS_PER_KERNEL),
                limit=MAX_SESSIONS_PER_KERNEL,
            )
        return kernel
