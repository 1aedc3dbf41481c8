"""The control plane's port to the realm: the calls it makes to spawners, the events it publishes.

L{ControlPlane} never holds the WAMP session: it is given a L{SpawnerCalls}
built on the session's ``call`` and ``publish`` by the WAMP face (unit tests
give a fake with the same methods).  The procedure URIs, call options and the
translation of a spawner's failures into ``cell.error.*`` are here, once.

Argument names follow the control plane's words: C{owner_session} is the WAMP
session that may call a kernel (the spawner's C{owner}, the name its
procedures and payloads still use).
"""

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions

from components.common import errors, uris
from components.control.kernel_events import kernel_lost_event


class SpawnerCalls:
    """@param call: the WAMP session's C{call}; also used as is by one-shots, status and metrics.
    @param publish: the WAMP session's C{publish}.
    """

    def __init__(self, call, publish):
        self.call = call
        self._publish = publish

    def hold(self, spawner_id, count):
        """Ask C{spawner_id} to hold C{count} ready kernels for us: a Deferred of every kernel it holds for us."""
        return self.call(uris.spawner_procedure(spawner_id, "hold"), count)

    def hand_over(self, spawner_id, kernel_id, owner_session):
        """Tell C{spawner_id} which session a held kernel now belongs to."""
        return self.call(uris.spawner_procedure(spawner_id, "hand_over"), kernel_id, owner_session)

    def start_kernel(self, spawner_id, owner_session, kernel_name, timeout_s):
        """A new kernel of C{kernel_name} for C{owner_session} (a Deferred of its descriptor).

        A spawner's own ``cell.error.*`` passes through; anything else (a timeout, a crash) is L{errors.Capacity}.
        """
        language = () if kernel_name is None else (kernel_name,)
        d = self.call(
            uris.spawner_procedure(spawner_id, "start_kernel"),
            owner_session,
            *language,
            options=CallOptions(timeout=timeout_s * 1000),
        )
        return d.addErrback(_as_capacity)

    def shutdown_kernel(self, spawner_id, kernel_id, reason):
        return self.call(uris.spawner_procedure(spawner_id, "shutdown_kernel"), kernel_id, reason)

    def rebind_kernel(self, spawner_id, kernel_id, token, owner_session):
        """Give a kernel to C{owner_session} if C{token} is its resume token (the spawner checks it)."""
        return self.call(uris.spawner_procedure(spawner_id, "rebind_kernel"), kernel_id, token, owner_session)

    def session_details(self, session_id):
        """A Deferred of the router's details of C{session_id} (``wamp.session.get``), or of None if it is gone."""
        d = self.call(uris.SESSION_GET, session_id)
        return d.addErrback(lambda failure: failure.trap(ApplicationError) and None)

    def announce_lost(self, kernel_id, reason):
        """Tell a kernel's subscribers it is dead (its worker vanished)."""
        event = kernel_lost_event(reason)
        self._publish(uris.kernel_iopub(kernel_id), event)
        self._publish(uris.kernel_jupyter(kernel_id), "iopub", event)  # the Jupyter face's topic


def _as_capacity(failure):
    failure.trap(ApplicationError)
    exc = failure.value
    if exc.error.startswith("cell.error."):
        return failure
    raise errors.Capacity("the worker could not start a kernel: {}".format(exc.error_message() or exc.error))
