"""``cell.status``: what the node's spawners say of themselves, gathered by the session router."""

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions
from twisted.internet import defer

from components.common import uris


@defer.inlineCallbacks
def collect(placement, call):
    """Every spawner's live status (its ``info``), or what the placement knows of one that does not answer."""
    spawners = []
    for info in list(placement.spawners.values()):
        try:
            live = yield call(uris.spawner_procedure(info.spawner_id, "info"), options=CallOptions(timeout=2000))
            info.pool_ready = live.get("pool_ready", info.pool_ready)
            entry = {
                k: live[k]
                for k in (
                    "id",
                    "host",
                    "kernels",
                    "pool_ready",
                    "held",
                    "capacity",
                    "sandbox",
                    "language_pools",
                    "parts",
                )
                if k in live
            }
        except ApplicationError:
            entry = {
                "id": info.spawner_id,
                "host": info.host,
                "kernels": len(info.kernels),
                "pool_ready": info.pool_ready,
                "capacity": info.capacity,
            }
        spawners.append(entry)
    return {"spawners": spawners, "kernels": sum(s["kernels"] for s in spawners)}
