"""Who may do what on the realm: the rules behind ``cell.authorize``.

Pure decisions, no I/O.  Crossbar asks the realm authorizer (a router
component, L{components.router.realm_authorizer}) about each (session, uri, action)
it has not cached, and the authorizer answers with L{decide}.  The one
answer that depends on state, a subscription to a kernel's topic, takes the
kernel's owner, which the authorizer asks the session router for.

- ``browser`` and ``service`` sessions may call the public procedures, and
  call or subscribe under ``cell.kernel.<id>.`` only for kernels they own.
  They never register or publish; ``wamp.*``, ``cell.spawner.*`` and
  ``cell.backend.*`` are closed.

Crossbar caches an answer per (realm, role, uri, action), not per session,
and never forgets one.  So only answers about a fixed set of URIs are
cached (a spawner's): answers about a kernel's URIs (new ones with every kernel),
refusals (any URI a client makes up) and every client call (see below) are
not, which keeps the router's cache bounded; the authorizer runs in the router
process, so asking it costs no socket round trip.  Calls under
``cell.kernel.`` are admitted for the role and ownership is enforced by the
callee: the kernel relay passes the client on as ``forward_for``, the
spawner compares it with the kernel's owner and answers
``cell.error.not_found`` to anyone else, as the relay does for unknown or
dead kernels.
- A client's CALL or SUBSCRIBE that carries WAMP ``forward_for`` is refused.
  Crossbar's dealer takes ``forward_for[0]`` of a CALL as the caller it
  discloses to the callee, whoever sent it; only the router's own hops (the
  kernel relay, a router component) may forward.  So every callee can trust
  ``details.caller`` and ``caller_authrole``: they are what the router saw.
  That is why clients' calls are never cached, public procedures included:
  a cached answer would skip this check for every later call.
- ``spawner`` sessions (remote workers, authid = spawner id) may register
  under ``cell.spawner.<authid>.`` and ``cell.backend.kernel.``, and publish
  kernel topics and spawner events.  Nobody but the backend calls there.
  They may also follow the subscription meta API (``wamp.subscription.on_create``,
  ``on_delete``, ``lookup``, ``list``, ``get``), to publish only the kernel
  topics someone subscribes to (L{components.worker.iopub_listeners}).
"""

from components.common import uris

CLIENT_ROLES = ("browser", "service")

PUBLIC_PROCEDURES = frozenset(
    (
        uris.KERNEL_START,
        uris.KERNEL_RESUME,
        uris.EXECUTE_ONCE,
        uris.STATUS,
        uris.KERNELSPECS,
        uris.PERMALINK_SAVE,
        uris.PERMALINK_GET,
    )
)

ALLOW_CACHED = {"allow": True, "disclose": True, "cache": True}
ALLOW_ONCE = {"allow": True, "disclose": True, "cache": False}
DENY = {"allow": False, "disclose": False, "cache": False}


def kernel_of(uri):
    """The kernel id in ``cell.kernel.<id>.<rest>``, or None."""
    return uris.split_kernel_uri(uri)[0]


def owner_needed(session, uri, action):
    """The kernel whose owner decides this request (a client subscribing to its topic), or None."""
    if session.get("authrole") in CLIENT_ROLES and action == "subscribe":
        return kernel_of(uri)
    return None


def forwarded(options):
    """Whether a request's options (as Crossbar passes them to the authorizer) speak for someone else."""
    return bool((options or {}).get("forward_for"))


def decide(session, uri, action, owner=None, options=None):
    """Crossbar's authorizer answer for C{session} doing C{action} on C{uri}.

    @param owner: the session owning the kernel that L{owner_needed} named (None: no such kernel).
    @param options: the request's options (a client's C{forward_for} is refused: see the module docstring).
    """
    role = session.get("authrole")
    if role in CLIENT_ROLES:
        if forwarded(options):
            return DENY
        return _client(session.get("session"), uri, action, owner)
    if role == "spawner":
        return _spawner(session.get("authid") or "", uri, action)
    return DENY


def _client(session_id, uri, action, owner):
    if action == "call" and uri in PUBLIC_PROCEDURES:
        return ALLOW_ONCE  # never cached: a cached answer would not see the next call's forward_for
    kernel_id = kernel_of(uri)
    if kernel_id is None or action not in ("call", "subscribe"):
        return DENY
    if action == "call":
        return ALLOW_ONCE  # the callee checks ownership (see the module docstring)
    return ALLOW_ONCE if owner is not None and owner == session_id else DENY


def _spawner(spawner_id, uri, action):
    own = uris.SPAWNER_PREFIX + spawner_id + "."
    if action == "register" and uri.startswith(own):
        return ALLOW_CACHED
    if action == "register" and uri.startswith(uris.KERNEL_BACKEND_PREFIX):
        return ALLOW_ONCE
    if action == "publish" and uri in (uris.SPAWNER_ON_READY, uris.SPAWNER_ON_KERNEL_ENDED):
        return ALLOW_CACHED
    if action == "publish" and kernel_of(uri) is not None and uri.endswith((".iopub", ".jupyter")):
        return ALLOW_ONCE
    if action == "subscribe" and uri in (uris.SUBSCRIPTION_ON_CREATE, uris.SUBSCRIPTION_ON_DELETE):
        return ALLOW_CACHED
    if action == "call" and uri in (uris.SUBSCRIPTION_LOOKUP, uris.SUBSCRIPTION_LIST, uris.SUBSCRIPTION_GET):
        return ALLOW_CACHED
    return DENY
