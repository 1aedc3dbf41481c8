"""What the session router counts for the node's metrics page (see L{components.common.metrics}).

Starts ("acquisitions") and one-shots are counted here, where every request
arrives, quota refusals included; sessions are asked of the router (WAMP
meta API) at each scrape.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from components.common.metrics import LATENCY_BUCKETS


def table_sizes(*parts, **more):
    """Every table's size, from the parts' C{sizes()} ({table: entries}) and C{more} (name=entries)."""
    sizes = {}
    for part in parts:
        sizes.update(part.sizes())
    sizes.update(more)
    return sizes


#: the roles whose sessions are counted (``cell_sessions{role}``)
SESSION_ROLES = ("browser", "service", "spawner", "backend")


class RouterMetrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.acquisitions = Counter(
            "cell_acquisitions",
            "cell.kernel.start calls, by outcome (ok, or the cell.error.* URI)",
            ["outcome"],
            registry=self.registry,
        )
        self.acquisition_seconds = Histogram(
            "cell_acquisition_seconds",
            "cell.kernel.start, from the call reaching the session router to its answer (seconds)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.oneshots = Counter(
            "cell_oneshots",
            "cell.execute calls, by outcome (ok, or the cell.error.* URI)",
            ["outcome"],
            registry=self.registry,
        )
        self.errors = Counter("cell_errors", "cell.error.* answers to calls, by URI", ["uri"], registry=self.registry)
        self.sessions = Gauge("cell_sessions", "WAMP sessions on the realm, by role", ["role"], registry=self.registry)
        self.spawners = Gauge(
            "cell_spawners", "Spawners (worker hosts) the session router knows", registry=self.registry
        )
        self.tables = Gauge(
            "cell_session_router_table_entries",
            "Entries of each per-session, per-address and per-kernel table of the session router (docs/scaling.md)",
            ["table"],
            registry=self.registry,
        )

    def set_tables(self, sizes):
        """C{sizes}: {table: entries} (L{table_sizes})."""
        for table, entries in sizes.items():
            self.tables.labels(table).set(entries)

    def timed(self, counter, histogram, clock):
        """A callback pair that counts an outcome in C{counter} (and its time in C{histogram}) when a call ends."""
        started = clock.seconds()

        def ok(result):
            counter.labels("ok").inc()
            if histogram is not None:
                histogram.observe(clock.seconds() - started)
            return result

        def failed(failure):
            error = getattr(failure.value, "error", None)
            counter.labels(error if isinstance(error, str) and error.startswith("cell.error.") else "other").inc()
            return failure

        return ok, failed
