"""Prometheus metrics that cross processes: each process counts in its own registry; the node page merges them.

A node is several processes (the router, the session router, one spawner per
worker host, which may be another machine), but Prometheus scrapes one page
per node.  Each process keeps its instruments in its own
``prometheus_client.CollectorRegistry``; L{export} turns a registry into plain
data a WAMP call carries, and L{NodeMetrics} merges what the processes sent
into families with the source's labels (e.g. ``spawner="local"``), which
``prometheus_client`` then renders in its text format (L{render}).
"""

from autobahn.wamp.exception import ApplicationError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from twisted.internet import defer

#: latency buckets, seconds: from a warm start (ms) to a long execution
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

#: the Prometheus text format's content type
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def export(registry):
    """C{registry}'s families as lists and dicts (what a WAMP call can carry)."""
    return [
        {
            "name": family.name,
            "type": family.type,
            "help": family.documentation,
            "unit": family.unit,
            "samples": [[s.name, dict(s.labels), s.value] for s in family.samples],
        }
        for family in registry.collect()
    ]


class NodeMetrics:
    """A collector of families exported by several processes, merged by name (see the module docstring)."""

    def __init__(self):
        self._families = {}

    def add(self, families, **labels):
        """Add one process's L{export}ed families; C{labels} are added to each of its samples."""
        for family in families:
            merged = self._families.get(family["name"])
            if merged is None:
                merged = Metric(family["name"], family["help"], family["type"], family.get("unit", ""))
                self._families[family["name"]] = merged
            elif merged.type != family["type"]:
                continue  # two processes disagree (mixed versions): keep the first one's
            for name, sample_labels, value in family["samples"]:
                merged.add_sample(name, dict(sample_labels, **labels), value)

    def collect(self):
        return list(self._families.values())


def render(collector):
    """The Prometheus text format of C{collector}."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def counting_errors(handler, counter):
    """C{handler}, with every ``cell.error.*`` it raises counted in C{counter} (labelled by URI)."""

    def call(*args, **kwargs):
        d = defer.maybeDeferred(handler, *args, **kwargs)
        d.addErrback(_count, counter)
        return d

    call.__name__ = getattr(handler, "__name__", "call")
    return call


def _count(failure, counter):
    if isinstance(failure.value, ApplicationError) and failure.value.error.startswith("cell.error."):
        counter.labels(failure.value.error).inc()
    return failure
