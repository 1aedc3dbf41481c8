"""What one spawner counts for the node's metrics page (see L{components.common.metrics}).

L{SpawnerMetrics} holds the instruments its kernels and procedures update;
L{KernelCensus} reads the spawner's kernels at each scrape (by state), so no
gauge can drift from the truth.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from components.common.metrics import LATENCY_BUCKETS
from components.worker.death_causes import cause_of
from components.worker.kernel_state import KernelState
from components.worker.reactor_lag import ReactorLag

#: reactor lag (seconds): a healthy reactor stays in the first buckets; past 0.05 s something blocked it
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SpawnerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.execute_seconds = Histogram(
            "cell_execute_seconds",
            "Kernel executions, from the request reaching the spawner to the reply (seconds)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.deaths = Counter(
            "cell_kernel_deaths", "Kernels that died or were ended, by cause", ["cause"], registry=self.registry
        )
        self.output_bytes_cut = Counter(
            "cell_output_bytes_cut", "Bytes of kernel output dropped by the output caps", registry=self.registry
        )
        self.errors = Counter("cell_errors", "cell.error.* answers to calls, by URI", ["uri"], registry=self.registry)
        self.part_restarts = Counter(
            "cell_spawner_part_restarts",
            "The spawner's own processes started again after they died, by part (spawner, fork_master, oneshot_template)",
            ["part"],
            registry=self.registry,
        )
        for part in ("spawner", "fork_master", "oneshot_template"):
            self.part_restarts.labels(part)  # shown at 0 from the start
        self.reactor_lag = Histogram(
            "cell_spawner_reactor_lag_seconds",
            "How late the spawner's reactor ran a timer asked for every 50 ms (seconds): what blocked it",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self._lag_max = Gauge(
            "cell_spawner_reactor_lag_max_seconds",
            "The largest reactor lag of the spawner in the last one to two minutes (seconds)",
            registry=self.registry,
        )

    def lag_probe(self, clock):
        """A L{ReactorLag} on C{clock} feeding the lag histogram; its recent max shown at each scrape."""
        probe = ReactorLag(clock, self.reactor_lag.observe)
        self._lag_max.set_function(lambda: probe.recent_max)
        return probe

    def died(self, reason):
        self.deaths.labels(cause_of(reason)).inc()

    def watch(self, spawner):
        """Count C{spawner}'s kernels at each scrape."""
        self.registry.register(KernelCensus(spawner))


class KernelCensus:
    """``cell_kernels{state}``, ``cell_pool_ready`` and ``cell_kernel_capacity``, read from the spawner."""

    def __init__(self, spawner):
        self._spawner = spawner

    def describe(self):
        return []

    def collect(self):
        kernels = GaugeMetricFamily(
            "cell_kernels",
            "Kernels of this spawner: pool, held (for the session router), or handed out and idle, busy or starting",
            labels=["state"],
        )
        counts = {"pool": self._spawner.pool.ready_count, "held": len(self._spawner.held)}
        for kernel in list(self._spawner.kernels.values()):
            state = KernelState(kernel.state).value
            if kernel.state == KernelState.READY:
                state = "busy" if kernel.requests.executions else "idle"
            counts[state] = counts.get(state, 0) + 1
        for state, n in sorted(counts.items()):
            kernels.add_metric([state], n)
        yield kernels
        pools = GaugeMetricFamily(
            "cell_pool_ready", "Ready kernels in the warm pools, by kernelspec", labels=["kernel"]
        )
        pools.add_metric(["python3"], self._spawner.pool.ready_count)
        for name, pool in sorted(getattr(self._spawner, "language_pools", {}).items()):
            pools.add_metric([name], pool.ready_count)
        yield pools
        yield GaugeMetricFamily(
            "cell_kernel_capacity", "Kernels this spawner may hand out", value=self._spawner.config.max_kernels
        )
