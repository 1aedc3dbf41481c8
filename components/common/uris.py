"""Every WAMP URI cellserver uses, in one place.

The public contract (documented in ``docs/api.md``) lives under ``cell.``;
the internal surface between the session router and the spawners lives
under ``cell.spawner.``, and kernels' procedures as spawners register them
under ``cell.backend.kernel.``.  Kernel ids are ``uuid4().hex`` so every URI built
from one passes autobahn's strict URI check.
"""

# Public procedures (served by the session router).
KERNEL_START = "cell.kernel.start"
KERNEL_RESUME = "cell.kernel.resume"
EXECUTE_ONCE = "cell.execute"
STATUS = "cell.status"
#: the languages the node offers, in Jupyter's kernelspecs shape
KERNELSPECS = "cell.kernelspecs"

# Permalinks (served by the permalink service).
PERMALINK_SAVE = "cell.permalink.save"
PERMALINK_GET = "cell.permalink.get"

# Realm security (named in .crossbar/config.json): the authorizer is a router
# component, the authenticator is served by the session router.
AUTHORIZE = "cell.authorize"
AUTHENTICATE = "cell.authenticate"

# Prefix of every per-kernel procedure and topic.
KERNEL_PREFIX = "cell.kernel."

# Per-kernel procedure names (the part after ``cell.kernel.<id>.``).
KERNEL_PROCEDURES = (
    "execute",
    "executions",
    "attach",
    "input",
    "interrupt",
    "restart",
    "shutdown",
    "complete",
    "inspect",
    "comm",
    "comm_info",
    "jupyter",
    "files.list",
    "files.get",
    "files.put",
)


def split_kernel_uri(uri):
    """``cell.kernel.<id>.<rest>`` -> C{(id, rest)}, or C{(None, None)} for any other URI."""
    if not uri or not uri.startswith(KERNEL_PREFIX):
        return None, None
    parts = uri[len(KERNEL_PREFIX) :].split(".", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None, None
    return parts[0], parts[1]


def kernel_iopub(kernel_id):
    """The topic on which one kernel's iopub messages are published."""
    return "{}{}.iopub".format(KERNEL_PREFIX, kernel_id)


def kernel_jupyter(kernel_id):
    """The topic of what one kernel's Jupyter clients get: its iopub and its replies (shell, control, stdin) to
    messages sent through its ``jupyter`` procedure, as events ``(channel, message)`` (the router's Jupyter face)."""
    return "{}{}.jupyter".format(KERNEL_PREFIX, kernel_id)


# Internal: where a spawner registers a kernel's procedures; the kernel relay
# (in the router) carries clients' ``cell.kernel.<id>.*`` calls here.
KERNEL_BACKEND_PREFIX = "cell.backend.kernel."


def kernel_backend_prefix(kernel_id):
    """The prefix under which a spawner registers one kernel's procedures."""
    return "{}{}.".format(KERNEL_BACKEND_PREFIX, kernel_id)


#: The session router starts a kernel for a principal of the node's Jupyter face (which owns it).
START_KERNEL_FOR = "cell.backend.start_kernel_for"

#: The session router runs a one-shot for an HTTP client (SageMathCell's POST /service, counted under its address).
EXECUTE_FOR = "cell.backend.execute_for"
#: The session router runs a one-shot for a client of the HTTP API (components.router.http_api): its role, its
#: address, progressive results.
EXECUTE_HTTP = "cell.backend.execute_http"

#: The session router answers who owns a kernel (for the realm authorizer).
KERNEL_OWNER = "cell.backend.kernel_owner"

#: The session router answers a session's client address (its one resolver; for the permalink service's quotas).
CLIENT_ADDRESS = "cell.backend.client_address"
#: The session router answers an HTTP client's address (its transport as components.common.addresses.http_client).
RESOLVE_CLIENT = "cell.backend.resolve_client"
#: The permalink service saves for an HTTP client (SageMathCell's POST /permalink), counted under its address.
PERMALINK_SAVE_FOR = "cell.backend.permalink.save_for"
#: The router closes a client's session and its connection (components.router.client_connections).
SESSION_CLOSE = "cell.backend.session.close"


#: The session router gathers the node's metrics (its own and its spawners') for the router's /metrics page.
NODE_METRICS = "cell.backend.metrics"
#: The kernel relay's own metrics (it runs in the router process).
RELAY_METRICS = "cell.backend.relay.metrics"
#: The sizes of the Jupyter face's tables (kernels, connections, requests owed a reply): what the soak checks.
FACE_TABLES = "cell.backend.jupyter.tables"

# Internal: spawner <-> session router.
SPAWNER_PREFIX = "cell.spawner."
SPAWNER_ON_READY = "cell.spawner.on_ready"
SPAWNER_ON_KERNEL_ENDED = "cell.spawner.on_kernel_ended"


def spawner_procedure(spawner_id, name):
    """A procedure of one spawner: start_kernel, shutdown_kernel, execute_once, info."""
    return "{}{}.{}".format(SPAWNER_PREFIX, spawner_id, name)


# WAMP meta API (Crossbar).
SESSION_ON_LEAVE = "wamp.session.on_leave"
SESSION_GET = "wamp.session.get"
SESSION_COUNT = "wamp.session.count"
SESSION_ON_JOIN = "wamp.session.on_join"
SESSION_LIST = "wamp.session.list"
REGISTRATION_LIST = "wamp.registration.list"
REGISTRATION_GET = "wamp.registration.get"
#: the subscription meta API, which tells a spawner which kernel topics anyone listens to
SUBSCRIPTION_ON_CREATE = "wamp.subscription.on_create"
SUBSCRIPTION_ON_DELETE = "wamp.subscription.on_delete"
SUBSCRIPTION_LOOKUP = "wamp.subscription.lookup"
SUBSCRIPTION_LIST = "wamp.subscription.list"
SUBSCRIPTION_GET = "wamp.subscription.get"

# Error URIs.
ERROR_INVALID_ARGUMENT = "cell.error.invalid_argument"
ERROR_NOT_FOUND = "cell.error.not_found"
ERROR_CAPACITY = "cell.error.capacity"
ERROR_TOO_LARGE = "cell.error.too_large"
ERROR_KERNEL_DIED = "cell.error.kernel_died"
ERROR_TIMEOUT = "cell.error.timeout"
ERROR_UNAVAILABLE = "cell.error.unavailable"
