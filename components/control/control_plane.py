"""The control plane without WAMP: where kernels go, who holds them, what happens when someone leaves.

L{ControlPlane} is what the session router's WAMP face
(L{components.control.router_session}) drives, as the spawner's face drives
L{components.worker.spawner.KernelSpawner}: it places kernels on the spawner
with the most free capacity, counts them against quotas, hands out the kernels
the spawners hold for us, resumes kernels, and follows spawners and sessions
as they come and go.  It runs on the clock it is given and reaches spawners
only through a L{SpawnerCalls} port, so it is unit-tested on a
``twisted.internet.task.Clock`` with a fake port.

Two words for the two meanings of "owner": the C{holder} of a kernel is the
principal its quotas count it against (a client's session id, or
``jupyter:<principal>`` for a kernel of the Jupyter face); its C{owner_session}
is the WAMP session that may call it (the client's, or the face's).
"""

from twisted.internet import defer
from twisted.logger import Logger

from components.common import arguments, errors, uris
from components.common.kernelspecs import PYTHON
from components.control.held_kernels import HeldKernels, HoldRequests
from components.control.oneshots import OneShots, arguments_of
from components.control.ownership import Ownership
from components.control.placement import Placement


class ControlPlane:
    """@param clock: an C{IReactorTime} (the reactor; a C{Clock} in tests).
    @param settings: the session router's L{RouterConfig}.
    @param spawners: the L{SpawnerCalls} port (or a fake with its methods).
    @param addresses: the node's L{ClientAddresses} (client address of each session).
    """

    log = Logger()

    def __init__(self, clock, settings, spawners, addresses):
        self.settings = settings
        self.quotas = settings.quotas()
        self.addresses = addresses
        self._spawners = spawners
        self.placement = Placement(self.quotas["browser"].max_kernels_per_session)
        self.held = HeldKernels(settings.held_kernels_per_spawner)
        self.holding = HoldRequests(
            clock, self.held, spawners, lambda spawner_id: spawner_id in self.placement.spawners
        )
        self.ownership = Ownership(
            clock, self.placement, settings.resume_grace_s, self._shutdown_kernel, spawners.announce_lost
        )
        self.oneshots = OneShots(clock, self.quotas, self.placement, spawners.call, self.address_of, addresses.resolve)
        self._left = set()  # owner sessions that left while a start of theirs was under way

    def quota(self, role):
        """The L{RoleQuota} of C{role} (an unknown role gets the browser's)."""
        return self.quotas.get(role) or self.quotas["browser"]

    def holder_of(self, kernel_id):
        """The holder of a kernel, or None: asked by the realm authorizer about subscriptions."""
        entry = self.placement.kernels.get(kernel_id)
        return entry[1] if entry is not None else None

    def sizes(self):
        """Its tables' sizes (``cell_session_router_table_entries``; the soak checks they return to baseline)."""
        sizes = {}
        for part in (self.placement, self.ownership, self.oneshots.admission, self.holding):
            sizes.update(part.sizes())
        sizes["left_while_starting"] = len(self._left)
        return sizes

    def address_of(self, session_id):
        """The client address of C{session_id} (a Deferred; fired at once when its join was seen)."""
        known = self.addresses.of(session_id)
        if known is not None:
            return defer.succeed(known)
        d = self._spawners.session_details(session_id)
        return d.addCallback(
            lambda details: "unknown" if details is None else self.addresses.learned(session_id, details)
        )

    @defer.inlineCallbacks
    def spawner_ready(self, info):
        """A spawner (re)joined (its ``info``): adopt the kernels it still runs, end the ones declared dead."""
        spawner_id = info["id"]
        known = self.placement.kernels_on(spawner_id)
        self.placement.add_spawner(
            spawner_id,
            info["session"],
            host=info.get("host", ""),
            capacity=info.get("capacity", 0),
            pool_ready=info.get("pool_ready", 0),
            kernelspecs=info.get("kernelspecs"),
        )
        self.log.info(
            "spawner {id} on {host} available (capacity {capacity})",
            id=spawner_id,
            host=info.get("host"),
            capacity=info.get("capacity"),
        )
        self.holding.ask(spawner_id)
        # The spawner's "owner" is the session that may call the kernel; adopted, it is also its holder.
        running = {k["kernel_id"]: k["owner"] for k in info.get("kernel_list", [])}
        for kernel_id in known - set(running):
            self.ownership.ended(kernel_id)  # died while we could not hear about it
        ended = self.ownership.worker_returned(spawner_id, running)
        for kernel_id, owner_session in running.items():
            if kernel_id in ended:
                continue
            self.placement.add_kernel(kernel_id, spawner_id, owner_session)
            details = yield self._spawners.session_details(owner_session)
            if details is None:
                self.ownership.orphan(kernel_id, spawner_id)

    def kernel_ended(self, kernel_id, spawner_id, was_held):
        """A spawner says a kernel ended; C{was_held}: it was one held for us (then it holds another)."""
        self.ownership.ended(kernel_id)
        if was_held:
            self.held.discard(kernel_id)
            self.holding.ask(spawner_id)

    def session_left(self, session_id):
        """A WAMP session ended: a spawner's (its kernels are declared dead) or a client's (its kernels orphaned)."""
        lost = self.placement.remove_spawner_by_session(session_id)
        if lost is not None:
            spawner_id, kernels = lost
            self.log.warn("spawner {id} left; {n} kernel(s) lost", id=spawner_id, n=len(kernels))
            self.holding.spawner_left(spawner_id)
            self.ownership.worker_left(spawner_id, [kernel_id for kernel_id, _ in kernels])
            return
        self.oneshots.forget(session_id)
        self.addresses.left(session_id)
        self.ownership.holder_left(session_id)
        if self.placement.has_reservation(session_id):
            self._left.add(session_id)

    @defer.inlineCallbacks
    def kernel_start(self, owner_session, role, kernel_name=None):
        """``cell.kernel.start``: a kernel held by the calling session C{owner_session} itself."""
        kernel_name = arguments.check_kernel_name(kernel_name)
        address = yield self.address_of(owner_session)  # known from its join: no round trip
        result = yield self.start(owner_session, owner_session, self.quota(role), address, kernel_name)
        return result

    def start_kernel_for(self, owner_session, principal, role, client, kernel_name):
        """``cell.backend.start_kernel_for``: a kernel for a principal of the Jupyter face, held by
        ``jupyter:<principal>`` ("": anonymous, one per address of C{client}, the face's client transport) and
        called through the face's session C{owner_session}."""
        principal = arguments.check_str("principal", principal, 256)
        address = self.addresses.resolve(client)
        if role not in self.quotas:
            raise errors.InvalidArgument("unknown role {!r}".format(role))
        kernel_name = arguments.check_kernel_name(kernel_name)
        holder = "jupyter:" + (principal or "anonymous@" + address)
        return self.start(holder, owner_session, self.quota(role), address, kernel_name)

    def execute_for(self, client, code, timeout=None, user_expressions=None, kernel_name=None):
        """``cell.backend.execute_for``: a one-shot for an HTTP client (SageMathCell's ``POST /service``,
        components.router.sagecell_service), as ``cell.execute`` of an anonymous browser at C{client}'s address
        (L{OneShots.for_http}).  C{client}: the request's transport (components.common.addresses.http_client)."""
        call = arguments_of(
            uris.EXECUTE_FOR,
            (code,),
            {"timeout": timeout, "user_expressions": user_expressions, "kernel_name": kernel_name},
        )
        return self.oneshots.for_http(client, "", "browser", None, call)

    @defer.inlineCallbacks
    def start(self, holder, owner_session, quota, address, kernel_name=PYTHON):
        """Place a kernel counted against C{holder}, called by session C{owner_session}.

        Python kernels come from the kernels the spawners hold for us when they can (one hop); kernels of other
        languages from a spawner that offers them (L{Placement.reserve} says which do).
        """
        python = kernel_name == PYTHON
        spawner_id = self.placement.reserve(
            holder,
            quota.max_kernels_per_session,
            prefer=self.held.spawners_with_kernels() if python else (),
            address=address,
            address_cap=quota.max_kernels_per_address,
            kernel_name=kernel_name,
        ).spawner_id
        held = self.held.take(spawner_id) if python else None
        if held is not None:
            return self._hand_over(held, holder, owner_session, spawner_id, address)
        try:
            result = yield self._spawners.start_kernel(
                spawner_id, owner_session, None if python else kernel_name, self.settings.start_timeout_s
            )
        finally:
            self.placement.release(holder, spawner_id, address)
            owner_left = owner_session in self._left
            if owner_left and not self.placement.has_reservation(owner_session):
                self._left.discard(owner_session)  # forgotten once its last start ended, failed or not
        kernel_id = result["kernel_id"]
        if owner_left:
            self._shutdown_kernel(spawner_id, kernel_id, "its owner's session ended")
            raise errors.NotFound("the session that asked for this kernel has left")
        self.placement.add_kernel(kernel_id, spawner_id, holder, address)
        return _descriptor(kernel_id, result, kernel_name)

    def _hand_over(self, held, holder, owner_session, spawner_id, address):
        """One hop: the held kernel is the caller's from here.  The spawner hears of its owner session before the
        caller can call it (both messages travel the router's connection to the spawner in order)."""
        kernel_id = held["kernel_id"]
        self.placement.release(holder, spawner_id, address)
        self.placement.add_kernel(kernel_id, spawner_id, holder, address)
        d = self._spawners.hand_over(spawner_id, kernel_id, owner_session)
        d.addErrback(self._hand_over_failed, spawner_id, kernel_id)
        self.holding.ask(spawner_id)
        return _descriptor(kernel_id, held, PYTHON)

    def _hand_over_failed(self, failure, spawner_id, kernel_id):
        self._log_failure(failure, "kernel {} could not be handed over by spawner {}".format(kernel_id, spawner_id))
        self.ownership.ended(kernel_id)

    @defer.inlineCallbacks
    def kernel_resume(self, owner_session, role, kernel_id, token):
        """``cell.kernel.resume``: re-bind a kernel to C{owner_session}, which becomes its holder too."""
        kernel_id = arguments.check_str("kernel_id", kernel_id, 64)
        token = arguments.check_str("token", token, 256)
        entry = self.placement.kernels.get(kernel_id)
        if entry is None:
            raise errors.NotFound(
                "no kernel {} can be resumed: it was shut down, timed out or never existed".format(kernel_id)
            )
        spawner_id, old_holder = entry
        if old_holder != owner_session:
            held = len(self.placement.kernels_of(owner_session))
            cap = self.quota(role).max_kernels_per_session
            if held >= cap:
                raise errors.Capacity(
                    "this session already has {} kernels, the most one session may have".format(held), limit=cap
                )
        yield self._spawners.rebind_kernel(spawner_id, kernel_id, token, owner_session)
        self.ownership.resumed(kernel_id, owner_session)
        return kernel_id

    def _shutdown_kernel(self, spawner_id, kernel_id, reason):
        d = self._spawners.shutdown_kernel(spawner_id, kernel_id, reason)
        d.addErrback(self._log_failure, "could not shut down kernel {} on spawner {}".format(kernel_id, spawner_id))

    def _log_failure(self, failure, what):
        self.log.warn("{what}: {error}", what=what, error=failure.getErrorMessage())


def _descriptor(kernel_id, source, kernel_name):
    """What a start answers: the kernel, its iopub topic, its resume token and its kernelspec."""
    return {
        "kernel_id": kernel_id,
        "iopub": source["iopub"],
        "resume_token": source["resume_token"],
        "kernel_name": kernel_name,
    }
