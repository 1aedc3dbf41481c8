"""Every part of the node's configuration, named and parsed in one place (docs/config.md).

One frozen dataclass per part, each knob with a safe default:

- L{SpawnerConfig}: a kernel spawner (the guest worker's ``options.stdin.value``
  in ``.crossbar/config.json``, or ``--config``/``--config-file`` by hand);
- L{RouterConfig} with a L{RoleQuota} per role: the session router's ``extra``;
- L{ClientConnectionsConfig}: the router component holding clients' connections;
- L{FaceConfig}: the Jupyter face (``/jupyter``), its access settings (L{HttpAccessConfig}) shared with the HTTP API;
- L{PermalinkConfig}: the permalink service.

L{from_mapping} builds one from a dict and refuses unknown keys and values of
the wrong type with a message naming the key, so a typo fails at start-up
instead of being silently ignored.  Two knobs share a name across parts on
purpose, one limit each: ``max_code_bytes`` (docs/config.md, "Which code
limit applies where") and nothing else; ``trusted_proxies`` is the session
router's alone (the node's one address resolver).
"""

import dataclasses
import json
from typing import Optional


class ConfigError(ValueError):
    """A configuration value is unknown or invalid."""


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: what a field's declared type admits from JSON, and how the refusal names it
_KINDS = {
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", _number),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
    tuple: ("a list", lambda v: isinstance(v, (list, tuple))),
    list: ("a list", lambda v: isinstance(v, (list, tuple))),
    dict: ("an object", lambda v: isinstance(v, dict)),
    Optional[tuple]: ("null or a list", lambda v: v is None or isinstance(v, (list, tuple))),
}


def check_types(config):
    """Raise L{ConfigError} naming the first field of C{config} whose value is not of its declared type."""
    for field in dataclasses.fields(config):
        kind, admits = _KINDS[field.type]
        value = getattr(config, field.name)
        if not admits(value):
            raise ConfigError("{} must be {}, not {!r}".format(field.name, kind, value))


def json_settings(text, source):
    """The JSON object in C{text} (settings read from C{source}, named in the refusal)."""
    try:
        settings = json.loads(text)
    except ValueError as exc:
        raise ConfigError("{}: not JSON ({})".format(source, exc)) from None
    if not isinstance(settings, dict):
        raise ConfigError("{}: settings are a JSON object, not {}".format(source, type(settings).__name__))
    return settings


@dataclasses.dataclass(frozen=True)
class SpawnerConfig:
    spawner_id: str = "local"
    realm: str = "cell"
    #: warm kernels kept ready to hand out
    pool_size: int = 4
    #: niceness of pool kernels until they are handed out, so that refilling the pool does not
    #: slow kernels at work (only when the spawner is root: nobody else could undo it); 0 = off
    pool_nice: int = 10
    #: how long after handing out a kernel the pool starts refilling (the CPU goes to that kernel first)
    pool_refill_delay_s: float = 0.1
    #: kernels handed out at once (the warm pool comes on top)
    max_kernels: int = 32
    #: the interpreter of the kernels' Python environment, relative to the project directory unless absolute
    #: ("" = the spawner's own; .crossbar/config.json names .kernel-venv, built by make setup)
    kernel_python: str = ""
    #: modules the fork master imports once for every kernel
    preload: tuple = ("numpy", "scipy", "sympy", "pandas", "matplotlib", "ipywidgets")
    #: where kernels' working directories go (a fresh temporary directory if empty)
    work_root: str = ""
    #: wall-clock limit of one execute when the caller gives none (and the cap on what callers give)
    execute_timeout_s: float = 300.0
    #: wall-clock limit of a one-shot ``cell.execute`` when the caller gives none, and its cap
    oneshot_timeout_s: float = 30.0
    oneshot_timeout_max_s: float = 120.0
    #: after a timeout interrupt, how long the kernel has to stop before it is replaced
    interrupt_grace_s: float = 2.0
    #: a kernel with no call for this long is shut down
    idle_timeout_s: float = 900.0
    #: a kernel is shut down this long after it was handed out, whatever it does
    max_lifespan_s: float = 7200.0
    #: heartbeat ping period, and silence after which a kernel is declared dead
    heartbeat_interval_s: float = 2.0
    heartbeat_timeout_s: float = 10.0
    #: how long a forked kernel may take to answer before it is given up
    start_timeout_s: float = 30.0
    #: how long complete/inspect may take
    request_timeout_s: float = 10.0
    #: one-shot cell.execute runs at once in the template (0: one-shots use pool kernels)
    oneshot_children: int = 16
    #: how long kernels outlive a lost router connection (a restarted router may claim them)
    router_grace_s: float = 60.0
    #: largest code accepted by execute (bytes of UTF-8)
    max_code_bytes: int = 256 * 1024
    #: largest comm message a client may send to a kernel (its JSON content and metadata plus its binary buffers)
    max_comm_bytes: int = 8 * 1024 * 1024
    # -- other languages (docs/config.md, "Languages") --
    #: kernelspec names offered besides the forked python3 (None: every non-Python kernelspec found; (): none)
    languages: Optional[tuple] = None
    #: ready kernels kept per offered language (started from their kernelspec, which is slower than a fork)
    language_pool_size: int = 1
    #: more directories of kernelspecs, searched before the kernel environment's and the system's
    kernelspec_dirs: tuple = ()
    # -- Sage (docs/config.md, "Sage") --
    #: the interpreter of a Sage environment (``make sage`` builds .sage-venv), relative to the project directory
    #: unless absolute: ``sagemath`` kernels are forked from a master of their own that runs in it, with ``sage.all``
    #: imported and warmed up; "" or an interpreter that is not there: no Sage (the spawner logs how to get it)
    sage_python: str = ""
    #: ready Sage kernels kept to hand out (each idle one costs memory: docs/config.md, "Sage")
    sage_pool_size: int = 2
    # -- sandbox (docs/security.md) --
    #: let kernels reach the network (default: a network namespace with loopback only)
    allow_network: bool = False
    #: kernels run as uids of a range of their spawner's own (one uid per live kernel, then its one-shot children's)
    #: when the spawner is root: the ranges are base + k * (count + oneshot_children), k < sandbox_uid_ranges; a
    #: spawner claims the one its id hashes to or the next free (components/worker/uid_range.py); 1 pins it to base
    sandbox_uid_base: int = 100000
    sandbox_uid_count: int = 4096
    sandbox_uid_ranges: int = 64
    #: each kernel in its own mount namespace: system read-only, private /tmp, node state absent, own /proc
    sandbox_filesystem: bool = True
    #: each kernel behind a seccomp filter refusing what no notebook needs (ptrace, mount, namespaces, bpf, ...)
    sandbox_seccomp: bool = True
    #: more directories kernels must not see (the node directory and the spawner's own roots are always hidden)
    hidden_paths: tuple = ()
    #: per-kernel memory (a memory cgroup where the host has one); 0 = none
    memory_limit_mb: int = 1024
    #: per-process rlimits; 0 = none
    limit_cpu_s: int = 600
    limit_address_space_mb: int = 4096
    limit_processes: int = 64
    limit_file_size_mb: int = 64
    limit_open_files: int = 256
    #: bytes and files (inodes) of each of a kernel's writable file systems (its working directory, its runtime
    #: directory with $TMPDIR; tmpfs mounts where the spawner is root: components/worker/kernel_disk.py)
    disk_limit_mb: int = 256
    disk_limit_inodes: int = 20000
    #: output kept and forwarded per execution, and iopub messages per second per kernel
    max_output_bytes: int = 2 * 1024 * 1024
    max_iopub_messages_per_s: int = 200
    #: past the output cap: "truncate" (keep running) or "interrupt"
    on_output_limit: str = "truncate"
    #: what each kernel keeps of its executions for callers who re-attach (docs/api.md, "Durable executions"):
    #: its last record_executions executions and record_bytes of their outputs, oldest forgotten first
    record_executions: int = 32
    record_bytes: int = 8 * 1024 * 1024
    # -- files (docs/api.md, "Files") --
    #: chunk size of files.get progressive results
    file_chunk_bytes: int = 256 * 1024
    #: largest file one upload may make, and largest file a download may fetch
    max_upload_file_bytes: int = 64 * 1024 * 1024
    max_download_bytes: int = 64 * 1024 * 1024
    #: most files in a working directory (uploads past it are refused)
    max_files: int = 1000
    #: files.get without progressive results, and files returned inline by cell.execute, up to this many bytes
    max_inline_file_bytes: int = 8 * 1024 * 1024

    def __post_init__(self):
        check_types(self)
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type in (int, float) and value < 0:
                raise ConfigError("{} must be a non-negative number, not {!r}".format(field.name, value))
        if self.on_output_limit not in ("truncate", "interrupt"):
            raise ConfigError(
                "on_output_limit must be 'truncate' or 'interrupt', not {!r}".format(self.on_output_limit)
            )
        if self.heartbeat_timeout_s <= self.heartbeat_interval_s:
            raise ConfigError("heartbeat_timeout_s must be larger than heartbeat_interval_s")
        if self.languages is not None and not all(isinstance(name, str) for name in self.languages):
            raise ConfigError(
                "languages must be null (every kernelspec found) or a list of kernelspec names, not {!r}".format(
                    self.languages
                )
            )


@dataclasses.dataclass(frozen=True)
class RoleQuota:
    #: kernels one session of this role may own at once
    max_kernels_per_session: int = 4
    #: one-shot ``cell.execute`` calls per session per minute (bursts of a quarter of it are fine)
    max_oneshots_per_minute: int = 900
    #: largest code a session of this role may send to ``cell.execute``
    max_code_bytes: int = 64 * 1024
    #: kernels all sessions from one client address may hold at once (orphans waiting for a resume included)
    max_kernels_per_address: int = 8
    #: one-shots all sessions from one client address may run per minute
    max_oneshots_per_minute_per_address: int = 1800
    #: one-shots all sessions from one client address may run at once (0: no bound)
    max_concurrent_oneshots_per_address: int = 4
    #: sessions of this role one client address may hold at once (a page shares one among its cells)
    max_sessions_per_address: int = 64

    def __post_init__(self):
        check_types(self)


DEFAULT_ROLES = {
    "browser": RoleQuota(),
    "service": RoleQuota(
        max_kernels_per_session=32,
        max_oneshots_per_minute=6000,
        max_code_bytes=256 * 1024,
        max_kernels_per_address=64,
        max_oneshots_per_minute_per_address=12000,
        max_concurrent_oneshots_per_address=16,
        max_sessions_per_address=1024,
    ),
}


@dataclasses.dataclass(frozen=True)
class RouterConfig:
    #: how long placing a kernel on a spawner may take
    start_timeout_s: float = 30.0
    #: a kernel whose owner's session ended is kept this long for cell.kernel.resume
    resume_grace_s: float = 60.0
    #: ready kernels each spawner holds for the session router, so that a start takes one router hop (0: off)
    held_kernels_per_spawner: int = 2
    #: quotas per role: {"browser": {"max_kernels_per_session": 4, ...}, "service": {...}}
    roles: dict = dataclasses.field(default_factory=dict)
    #: WAMP-CRA principals of role "service": {authid: name of the environment variable holding its secret}
    services: dict = dataclasses.field(default_factory=lambda: {"service": "CELL_SERVICE_SECRET"})
    #: WAMP-CRA principals of role "spawner" (remote workers): {spawner id: environment variable name}
    spawners: dict = dataclasses.field(default_factory=dict)
    #: addresses of fronts (e.g. HAProxy) whose X-Forwarded-For names the client; nobody else's is believed.
    #: The node's one address resolver (components.common.addresses): WAMP sessions, the Jupyter face's clients
    #: and permalinks alike ask the session router, so no other part has this knob
    trusted_proxies: list = dataclasses.field(default_factory=list)

    def quotas(self):
        """The L{RoleQuota} of each role, defaults overlaid with the configured values."""
        result = dict(DEFAULT_ROLES)
        for role, values in self.roles.items():
            base = dataclasses.asdict(result.get(role, RoleQuota()))
            unknown = set(values) - set(base)
            if unknown:
                raise ConfigError("unknown quota(s) for role {}: {}".format(role, ", ".join(sorted(unknown))))
            base.update(values)
            try:
                result[role] = RoleQuota(**base)
            except ConfigError as exc:
                raise ConfigError("roles.{}.{}".format(role, exc)) from None
        return result

    def __post_init__(self):
        check_types(self)
        if not all(isinstance(values, dict) for values in self.roles.values()):
            raise ConfigError("roles maps each role to an object of quotas, not {!r}".format(self.roles))
        self.quotas()


@dataclasses.dataclass(frozen=True)
class ClientConnectionsConfig:
    #: bytes the router may hold unsent for one client connection on /ws; past it the connection is dropped
    #: (twice the largest WAMP message /ws carries, 16 MiB: one whole message always fits behind another)
    max_unsent_bytes: int = 32 * 1024 * 1024

    def __post_init__(self):
        limit = self.max_unsent_bytes
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1024 * 1024:
            raise ConfigError("max_unsent_bytes must be an integer of at least 1 MiB, not {!r}".format(limit))


@dataclasses.dataclass(frozen=True)
class HttpAccessConfig:
    """Who may use an HTTP surface of the node, from which sites' pages: the settings the Jupyter face
    (L{FaceConfig}) and the HTTP API (components.router.http_api.ApiConfig) share (components.router.http_access)."""

    #: principal name -> the environment variable holding its token (role service)
    tokens: dict = dataclasses.field(default_factory=lambda: {"service": "CELL_SERVICE_SECRET"})
    #: serve clients without a token (the browser role's limits, per address; a kernel's id is their capability)
    anonymous: bool = True
    #: origins (``https://host[:port]``) whose pages may use it from a browser as any client, besides the node's own
    allowed_origins: list = dataclasses.field(default_factory=list)
    #: origins whose pages may use it as a browser-role principal only (thebe on book pages): "*" every http(s)
    #: origin, "null" sandboxed frames and file: pages
    anonymous_origins: list = dataclasses.field(default_factory=lambda: ["*"])

    def __post_init__(self):
        check_types(self)


@dataclasses.dataclass(frozen=True)
class FaceConfig(HttpAccessConfig):
    """The Jupyter face's (``/jupyter``) path ``extra``: who may use it (L{HttpAccessConfig}), and its own limits."""

    #: largest WebSocket message a client may send (bytes)
    max_message_bytes: int = 16 * 1024 * 1024

    #: keys of other parts, refused here with where they belong
    elsewhere = {
        "trusted_proxies": "the face has no trusted_proxies of its own: the node has one address resolver, set it "
        "in the session router's extra.trusted_proxies (docs/config.md)"
    }


#: the permalink stores
DATABASES = ("sqlite", "postgresql")


@dataclasses.dataclass(frozen=True)
class PermalinkConfig:
    #: where permalinks live: "sqlite" (a file in data_dir) or "postgresql" (the DSN in $dsn_env)
    database: str = "sqlite"
    #: directory of the SQLite file, relative to the node directory (cbdir) unless absolute
    data_dir: str = "data"
    #: largest code that may be stored (bytes of UTF-8)
    max_code_bytes: int = 64 * 1024
    #: the environment variable holding the PostgreSQL DSN: its password never sits in config.json
    dsn_env: str = "CELL_PERMALINK_DSN"
    #: PostgreSQL calls running at once, each on its own thread and connection
    db_threads: int = 4
    #: how long connecting to PostgreSQL may take (libpq's connect_timeout: whole seconds, at least 2)
    connect_timeout_s: int = 3
    #: how long one PostgreSQL statement may run (statement_timeout)
    statement_timeout_s: float = 5.0
    #: saves one client address may make per minute, in bursts of a quarter of it (a Share click is one)
    saves_per_minute_per_address: int = 60
    #: bytes (code and language) one client address may store per day (UTC), on every node sharing the database
    max_bytes_per_address_per_day: int = 16 * 1024 * 1024

    def __post_init__(self):
        if self.database not in DATABASES:
            raise ConfigError("database must be one of {}, not {!r}".format(", ".join(DATABASES), self.database))
        check_types(self)
        if self.db_threads < 1:
            raise ConfigError("db_threads must be an integer >= 1, not {!r}".format(self.db_threads))
        if self.connect_timeout_s < 2:
            raise ConfigError("connect_timeout_s must be at least 2 (libpq's minimum)")
        if self.statement_timeout_s <= 0:
            raise ConfigError(
                "statement_timeout_s must be a positive number, not {!r}".format(self.statement_timeout_s)
            )
        if not self.dsn_env:
            raise ConfigError("dsn_env must name an environment variable")
        for name in ("max_code_bytes", "saves_per_minute_per_address", "max_bytes_per_address_per_day"):
            if getattr(self, name) < 1:
                raise ConfigError("{} must be an integer >= 1, not {!r}".format(name, getattr(self, name)))


def from_mapping(cls, mapping, ignore=()):
    """Build C{cls} from a dict (a component's ``extra``), refusing unknown keys and values of the wrong type."""
    names = {f.name for f in dataclasses.fields(cls)}
    if mapping is not None and not isinstance(mapping, dict):
        raise ConfigError("{} settings are a JSON object, not {!r}".format(cls.__name__, mapping))
    values = {k: v for k, v in (mapping or {}).items() if k not in ignore}
    unknown = sorted(set(values) - names)
    for name in unknown:
        if name in getattr(cls, "elsewhere", {}):
            raise ConfigError(cls.elsewhere[name])
    if unknown:
        raise ConfigError(
            "unknown {} setting(s): {}; known: {}".format(cls.__name__, ", ".join(unknown), ", ".join(sorted(names)))
        )
    for name in ("preload", "hidden_paths", "languages", "kernelspec_dirs"):
        if name in values and isinstance(values[name], (list, str)):
            listed = values[name]
            values[name] = tuple(listed.split(",") if isinstance(listed, str) else listed)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError("{} setting {}".format(cls.__name__, exc)) from None
