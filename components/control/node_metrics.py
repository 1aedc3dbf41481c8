"""``cell.backend.metrics``: the session router's own metric families, then each spawner's.

Sessions are counted by the router (WAMP meta API) and the session router's
tables measured at each scrape; spawners answer with their own families
(see L{components.common.metrics}).  A spawner that does not answer in 5 s is
left out of this scrape and logged.
"""

from autobahn.wamp.types import CallOptions
from twisted.internet import defer
from twisted.logger import Logger

from components.common import uris
from components.common.metrics import export
from components.control.metrics import SESSION_ROLES

log = Logger()


@defer.inlineCallbacks
def collect(call, metrics, spawner_ids, tables):
    """{"session_router": its families, "spawners": {spawner id: families}}.

    @param call: the WAMP session's C{call}.
    @param metrics: the session router's L{RouterMetrics}.
    @param spawner_ids: the spawners to ask.
    @param tables: {table: entries} of the session router now.
    """
    spawner_ids = list(spawner_ids)
    calls = [call(uris.SESSION_COUNT, [role]) for role in SESSION_ROLES] + [
        call(uris.spawner_procedure(sid, "metrics"), options=CallOptions(timeout=5000)) for sid in spawner_ids
    ]
    results = yield defer.DeferredList(calls, consumeErrors=True)
    for role, (ok, count) in zip(SESSION_ROLES, results):
        if ok:
            metrics.sessions.labels(role).set(count)
    metrics.spawners.set(len(spawner_ids))
    metrics.set_tables(tables)
    spawners = {}
    for sid, (ok, families) in zip(spawner_ids, results[len(SESSION_ROLES) :]):
        if ok:
            spawners[sid] = families
        else:
            log.warn("spawner {id} gave no metrics: {error}", id=sid, error=families.getErrorMessage())
    return {"session_router": export(metrics.registry), "spawners": spawners}
