"""Who may do what on the realm: the rules behind ``cell.authorize``.

Pure decisions, no I/O: Crossbar asks the session router's dynamic
authorizer about each (session, uri, action) it has not cached, and the
router answers with L{decide}.  Kernel ownership comes from L{Placement}.

- ``browser`` and ``service`` sessions may call the public procedures, and
  call or subscribe under ``cell.kernel.<id>.`` only for kernels they own.
  They never register or publish; ``wamp.*`` and ``cell.spawner.*`` are closed.

Crossbar caches an authorizer's answer per (realm, role, uri, action), not
per session, so only answers that hold for a whole role may be cached.
Subscriptions to a kernel's topic are decided per session, uncached.  Calls
under ``cell.kernel.`` are admitted for the role (cached, so the execute
path costs no extra round trip) and ownership is enforced by the callee:
the kernel relay passes the client on as ``forward_for``, the spawner
compares it with the kernel's owner and answers ``cell.error.not_found`` to
anyone else, as the relay does for unknown or dead kernels.
- ``spawner`` sessions (remote workers, authid = spawner id) may register
  under ``cell.spawner.<authid>.`` and ``cell.backend.kernel.``, and publish
  kernel topics and spawner events.  Nobody but the backend calls there.
"""

from components import uris

CLIENT_ROLES = ("browser", "service")

PUBLIC_PROCEDURES = frozenset((uris.KERNEL_START, uris.KERNEL_RESUME, uris.EXECUTE_ONCE, uris.STATUS, uris.PERMALINK_SAVE, uris.PERMALINK_GET))

ALLOW_CACHED = {"allow": True, "disclose": True, "cache": True}
ALLOW_ONCE = {"allow": True, "disclose": True, "cache": False}
DENY = {"allow": False, "disclose": False, "cache": True}
DENY_ONCE = {"allow": False, "disclose": False, "cache": False}


def kernel_of(uri):
    """The kernel id in ``cell.kernel.<id>.<rest>``, or None."""
    if not uri.startswith(uris.KERNEL_PREFIX):
        return None
    parts = uri[len(uris.KERNEL_PREFIX):].split(".", 1)
    if len(parts) != 2 or not parts[1]:
        return None
    return parts[0]


def decide(placement, session, uri, action):
    """Crossbar's authorizer answer for C{session} doing C{action} on C{uri}."""
    role = session.get("authrole")
    if role in CLIENT_ROLES:
        return _client(placement, session.get("session"), uri, action)
    if role == "spawner":
        return _spawner(session.get("authid") or "", uri, action)
    return DENY


def _client(placement, session_id, uri, action):
    if action == "call" and uri in PUBLIC_PROCEDURES:
        return ALLOW_CACHED
    kernel_id = kernel_of(uri)
    if kernel_id is None or action not in ("call", "subscribe"):
        return DENY
    if action == "call":
        return ALLOW_CACHED  # the callee checks ownership (see the module docstring)
    entry = placement.kernels.get(kernel_id)
    return ALLOW_ONCE if entry is not None and entry[1] == session_id else DENY_ONCE


def _spawner(spawner_id, uri, action):
    own = uris.SPAWNER_PREFIX + spawner_id + "."
    if action == "register" and (uri.startswith(own) or uri.startswith(uris.KERNEL_BACKEND_PREFIX)):
        return ALLOW_CACHED
    if action == "publish" and (uri in (uris.SPAWNER_ON_READY, uris.SPAWNER_ON_KERNEL_ENDED) or (kernel_of(uri) is not None and uri.endswith(".iopub"))):
        return ALLOW_CACHED
    return DENY
