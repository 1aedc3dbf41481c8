"""The session router: one per router, a Crossbar container component.

It serves ``cell.kernel.start``, ``cell.execute`` and ``cell.status``; keeps the map
session -> kernels (a leaving session's kernels are shut down); places new kernels on the
spawner with the most free capacity; caps kernels per session; and learns spawners as
they join and forgets them as they leave.  Per-kernel calls do not pass through it: the
kernel relay (in the router) carries them to the spawner.
"""

import os

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, RegisterOptions
from twisted.internet import defer

from components.common import arguments, errors, uris
from components.common.addresses import ClientAddresses
from components.common.config import RouterConfig, from_mapping
from components.common.kernelspecs import PYTHON
from components.common.metrics import counting_errors, export
from components.common.node_key import BackendSession
from components.common.sessions import quiet_if_router_goes
from components.control import node_status
from components.control.held_kernels import HeldKernels
from components.control.kernel_events import kernel_lost_event
from components.control.metrics import SESSION_ROLES, RouterMetrics, table_sizes
from components.control.oneshots import OneShots
from components.control.ownership import Ownership
from components.control.placement import Placement
from components.control.session_limits import SessionLimits

#: how soon a spawner whose pool was short is asked again to hold kernels for us (seconds)
HOLD_RETRY_S = 0.5


class SessionRouter(BackendSession):
    """See the module docstring.  Settings come from the component's ``extra``."""

    backend_authid = "session_router"

    @quiet_if_router_goes
    @defer.inlineCallbacks
    def onJoin(self, details):
        extra = dict(self.config.extra or {})
        self.settings = from_mapping(RouterConfig, extra, ignore=("cbdir",))
        self.quotas = self.settings.quotas()
        from twisted.internet import reactor

        self.addresses = ClientAddresses(self.settings.trusted_proxies)
        self.placement = Placement(self.quotas["browser"].max_kernels_per_session)
        self.oneshots = OneShots(reactor, self.quotas, self.placement, self.call, self._address)
        self._reactor = reactor
        self._left = set()
        self.held = HeldKernels(self.settings.held_kernels_per_spawner)
        self._hold_retries = {}  # spawner id -> the timer that asks it to hold kernels again
        self.ownership = Ownership(
            reactor, self.placement, self.settings.resume_grace_s, self._shutdown_kernel, self._announce_lost
        )
        self.metrics = RouterMetrics()
        with_details = RegisterOptions(details_arg="details")
        yield self.register(self.kernel_owner, uris.KERNEL_OWNER)
        yield self.register(self.authenticate, uris.AUTHENTICATE)
        for uri, handler, counter, histogram in (
            (uris.KERNEL_START, self.kernel_start, self.metrics.acquisitions, self.metrics.acquisition_seconds),
            (uris.START_KERNEL_FOR, self.start_kernel_for, self.metrics.acquisitions, self.metrics.acquisition_seconds),
            (uris.KERNEL_RESUME, self.kernel_resume, None, None),
            (uris.EXECUTE_ONCE, self.execute_once, self.metrics.oneshots, None),
        ):
            endpoint = counting_errors(arguments.endpoint(uri, handler, with_details=True), self.metrics.errors)
            if counter is not None:
                endpoint = self._timed(endpoint, counter, histogram)
            yield self.register(endpoint, uri, options=with_details)
        yield self.register(self.status, uris.STATUS)
        yield self.register(self.kernelspecs, uris.KERNELSPECS)
        yield self.register(self.node_metrics, uris.NODE_METRICS)
        yield self.subscribe(self.session_left, uris.SESSION_ON_LEAVE)
        yield self.subscribe(self.addresses.joined, uris.SESSION_ON_JOIN)
        yield self.register(self._address, uris.CLIENT_ADDRESS)
        self.session_limits = SessionLimits(self.quotas, self.addresses)
        yield self.session_limits.attach(self)
        yield self.subscribe(self.spawner_ready, uris.SPAWNER_ON_READY)
        yield self.subscribe(self.kernel_ended, uris.SPAWNER_ON_KERNEL_ENDED)
        yield self.discover_spawners()
        self.log.info("session router ready; {n} spawner(s) known", n=len(self.placement.spawners))

    def _timed(self, endpoint, counter, histogram):
        def call(*args, **kwargs):
            ok, failed = self.metrics.timed(counter, histogram, self._reactor)
            return endpoint(*args, **kwargs).addCallbacks(ok, failed)

        return call

    @defer.inlineCallbacks
    def node_metrics(self):
        """``cell.backend.metrics``: this process's families, then each spawner's (see components.common.metrics)."""
        spawner_ids = list(self.placement.spawners)
        calls = [self.call(uris.SESSION_COUNT, [role]) for role in SESSION_ROLES] + [
            self.call(uris.spawner_procedure(sid, "metrics"), options=CallOptions(timeout=5000)) for sid in spawner_ids
        ]
        results = yield defer.DeferredList(calls, consumeErrors=True)
        for role, (ok, count) in zip(SESSION_ROLES, results):
            if ok:
                self.metrics.sessions.labels(role).set(count)
        self.metrics.spawners.set(len(spawner_ids))
        self.metrics.set_tables(self.table_sizes())
        spawners = {}
        for sid, (ok, families) in zip(spawner_ids, results[len(SESSION_ROLES) :]):
            if ok:
                spawners[sid] = families
            else:
                self._log_failure(families, "spawner {} gave no metrics".format(sid))
        return {"session_router": export(self.metrics.registry), "spawners": spawners}

    def table_sizes(self):
        """Each table's entries (``cell_session_router_table_entries``; the soak checks they return to baseline)."""
        parts = (self.placement, self.ownership, self.oneshots.admission, self.session_limits)
        return table_sizes(*parts, left_while_starting=len(self._left), hold_retries=len(self._hold_retries))

    @defer.inlineCallbacks
    def discover_spawners(self):
        """Find spawners that joined before us, through their ``info`` registrations."""
        listing = yield self.call(uris.REGISTRATION_LIST)
        for registration_id in listing.get("exact", []):
            try:
                registration = yield self.call(uris.REGISTRATION_GET, registration_id)
            except ApplicationError:
                continue
            uri = registration.get("uri", "")
            if uri.startswith(uris.SPAWNER_PREFIX) and uri.endswith(".info"):
                try:
                    info = yield self.call(uri)
                except ApplicationError:
                    continue
                yield self.spawner_ready(info)

    def kernel_owner(self, kernel_id):
        """The session owning a kernel, or None: asked by the realm authorizer about subscriptions."""
        entry = self.placement.kernels.get(kernel_id)
        return entry[1] if entry is not None else None

    def authenticate(self, realm, authid, details):
        """Crossbar's dynamic WAMP-CRA authenticator: services and remote spawners.

        Secrets come from the environment variables named in the config, never from the config itself.
        """
        for role, principals in (("service", self.settings.services), ("spawner", self.settings.spawners)):
            if authid in principals:
                secret = os.environ.get(principals[authid])
                if not secret:
                    raise ApplicationError(
                        "cell.error.not_authorized",
                        "principal {} has no secret: set {} in the router's environment".format(
                            authid, principals[authid]
                        ),
                    )
                return {"secret": secret, "role": role}
        raise ApplicationError("cell.error.not_authorized", "unknown principal {}".format(authid))

    def _quota(self, role):
        return self.quotas.get(role) or self.quotas["browser"]

    @defer.inlineCallbacks
    def spawner_ready(self, info):
        """A spawner (re)joined: adopt the kernels it still runs, end the ones declared dead."""
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
        self._hold_more(spawner_id)
        running = {k["kernel_id"]: k["owner"] for k in info.get("kernel_list", [])}
        for kernel_id in known - set(running):
            self.ownership.ended(kernel_id)  # died while we could not hear about it
        ended = self.ownership.worker_returned(spawner_id, running)
        for kernel_id, owner in running.items():
            if kernel_id in ended:
                continue
            self.placement.add_kernel(kernel_id, spawner_id, owner)
            try:
                yield self.call(uris.SESSION_GET, owner)
            except ApplicationError:
                self.ownership.orphan(kernel_id, spawner_id)

    def _address(self, session_id):
        """The client address of C{session_id} (a Deferred; fired at once when its join was seen)."""
        known = self.addresses.of(session_id)
        if known is not None:
            return defer.succeed(known)
        d = self.call(uris.SESSION_GET, session_id)
        d.addCallback(lambda details: self.addresses.learned(session_id, details))
        d.addErrback(lambda failure: failure.trap(ApplicationError) and "unknown")
        return d

    def _hold_more(self, spawner_id):
        """Ask C{spawner_id} to hold its quota of ready kernels for us again (not waited for)."""
        count = self.settings.held_kernels_per_spawner
        if not count:
            return
        d = self.call(uris.spawner_procedure(spawner_id, "hold"), count)
        d.addCallbacks(
            self._held,
            self._log_failure,
            callbackArgs=(spawner_id, count),
            errbackArgs=("spawner {} holds no kernels for us".format(spawner_id),),
        )

    def _held(self, kernels, spawner_id, count):
        self.held.replace(spawner_id, kernels)
        # Its pool was short (a burst): ask again once it has refilled, or starts stay two hops from now on.
        if len(kernels) < count and spawner_id in self.placement.spawners and spawner_id not in self._hold_retries:
            self._hold_retries[spawner_id] = self._reactor.callLater(HOLD_RETRY_S, self._hold_again, spawner_id)

    def _hold_again(self, spawner_id):
        self._hold_retries.pop(spawner_id, None)
        if spawner_id in self.placement.spawners:
            self._hold_more(spawner_id)

    def _hand_over_failed(self, failure, spawner_id, kernel_id):
        self._log_failure(failure, "kernel {} could not be handed over by spawner {}".format(kernel_id, spawner_id))
        self.ownership.ended(kernel_id)

    def _shutdown_kernel(self, spawner_id, kernel_id, reason):
        d = self.call(uris.spawner_procedure(spawner_id, "shutdown_kernel"), kernel_id, reason)
        d.addErrback(self._log_failure, "could not shut down kernel {} on spawner {}".format(kernel_id, spawner_id))

    def _announce_lost(self, kernel_id, reason):
        self.publish(uris.kernel_iopub(kernel_id), kernel_lost_event(reason))

    def _log_failure(self, failure, what):
        self.log.warn("{what}: {error}", what=what, error=failure.getErrorMessage())

    def kernel_ended(self, event):
        self.ownership.ended(event["kernel_id"])
        if event.get("owner") is None:  # a kernel held for us died: hold another
            self.held.discard(event["kernel_id"])
            self._hold_more(event["spawner"])

    def session_left(self, session_id, *args, **kwargs):
        lost = self.placement.remove_spawner_by_session(session_id)
        if lost is not None:
            spawner_id, kernels = lost
            self.log.warn("spawner {id} left; {n} kernel(s) lost", id=spawner_id, n=len(kernels))
            self.held.drop_spawner(spawner_id)
            self.ownership.worker_left(spawner_id, [kernel_id for kernel_id, _ in kernels])
            return
        self.oneshots.forget(session_id)
        self.addresses.left(session_id)
        self.ownership.owner_left(session_id)
        if self.placement.has_reservation(session_id):
            self._left.add(session_id)

    @defer.inlineCallbacks
    def kernel_start(self, details, kernel_name=None):
        """``cell.kernel.start(kernel_name=None)``: a warm kernel (of that kernelspec; python3 by default) for the
        caller."""
        owner = details.caller
        if owner is None:
            raise errors.InvalidArgument(
                "the router did not disclose the caller; enable 'disclose.caller' for this role"
            )
        kernel_name = arguments.check_kernel_name(kernel_name)
        address = yield self._address(owner)  # known from its join: no round trip
        result = yield self._start(owner, owner, self._quota(details.caller_authrole), address, kernel_name)
        return result

    def kernelspecs(self):
        """``cell.kernelspecs()``: every kernel the spawners offer, in Jupyter's REST shape
        (``{"default": "python3", "kernelspecs": {name: {"name", "spec", "resources"}}}``)."""
        return self.placement.kernelspecs()

    @defer.inlineCallbacks
    def start_kernel_for(self, details, principal, role, client, kernel_name="python3"):
        """``cell.backend.start_kernel_for(principal, role, client)``: a kernel for a principal of the node's
        Jupyter face (components.router.jupyter).  The face's session owns it (its per-kernel calls go through the
        face), while the quotas of C{role} count it against C{principal} ("": anonymous, one per address) and the
        address of C{client} (its transport, resolved here like every session's: one resolver for the node)."""
        principal = arguments.check_str("principal", principal, 256)
        address = self.addresses.resolve(client)
        if role not in self.quotas:
            raise errors.InvalidArgument("unknown role {!r}".format(role))
        kernel_name = arguments.check_kernel_name(kernel_name)
        holder = "jupyter:" + (principal or "anonymous@" + address)
        result = yield self._start(holder, details.caller, self._quota(role), address, kernel_name)
        return result

    @defer.inlineCallbacks
    def _start(self, holder, owner, quota, address, kernel_name=PYTHON):
        """Place a kernel counted against C{holder} (a session, or a face's principal), owned by session C{owner}.

        Python kernels come from the kernels the spawners hold for us when they can (one hop); kernels of other
        languages from a spawner that offers them (L{Placement.reserve} says which do).
        """
        python = kernel_name == PYTHON
        spawner = self.placement.reserve(
            holder,
            quota.max_kernels_per_session,
            prefer=self.held.spawners_with_kernels() if python else (),
            address=address,
            address_cap=quota.max_kernels_per_address,
            kernel_name=kernel_name,
        )
        held = self.held.take(spawner.spawner_id) if python else None
        if held is not None:
            # One hop: the kernel is the caller's from here.  The spawner hears of its owner before the
            # caller can call it (both messages travel the router's connection to the spawner in order).
            self.placement.release(holder, spawner.spawner_id, address)
            self.placement.add_kernel(held["kernel_id"], spawner.spawner_id, holder, address)
            d = self.call(uris.spawner_procedure(spawner.spawner_id, "hand_over"), held["kernel_id"], owner)
            d.addErrback(self._hand_over_failed, spawner.spawner_id, held["kernel_id"])
            self._hold_more(spawner.spawner_id)
            return {
                "kernel_id": held["kernel_id"],
                "iopub": held["iopub"],
                "resume_token": held["resume_token"],
                "kernel_name": PYTHON,
            }
        try:
            d = self.call(
                uris.spawner_procedure(spawner.spawner_id, "start_kernel"),
                owner,
                *(() if python else (kernel_name,)),
                options=CallOptions(timeout=self.settings.start_timeout_s * 1000),
            )
            result = yield d
        except ApplicationError as exc:
            if exc.error.startswith("cell.error."):
                raise
            raise errors.Capacity(
                "the worker could not start a kernel: {}".format(exc.error_message() or exc.error)
            ) from None
        finally:
            self.placement.release(holder, spawner.spawner_id, address)
            owner_left = owner in self._left
            if owner_left and not self.placement.has_reservation(owner):
                self._left.discard(owner)  # forgotten once its last start ended, failed or not
        kernel_id = result["kernel_id"]
        if owner_left:
            self._shutdown_kernel(spawner.spawner_id, kernel_id, "its owner's session ended")
            raise errors.NotFound("the session that asked for this kernel has left")
        self.placement.add_kernel(kernel_id, spawner.spawner_id, holder, address)
        return {
            "kernel_id": kernel_id,
            "iopub": result["iopub"],
            "resume_token": result["resume_token"],
            "kernel_name": kernel_name,
        }

    @defer.inlineCallbacks
    def kernel_resume(self, details, kernel_id, token):
        """``cell.kernel.resume(kernel_id, token)``: re-bind a kernel to the calling session."""
        kernel_id = arguments.check_str("kernel_id", kernel_id, 64)
        token = arguments.check_str("token", token, 256)
        entry = self.placement.kernels.get(kernel_id)
        if entry is None:
            raise errors.NotFound(
                "no kernel {} can be resumed: it was shut down, timed out or never existed".format(kernel_id)
            )
        spawner_id, old_owner = entry
        owner = details.caller
        if old_owner != owner:
            owned = len(self.placement.kernels_of(owner))
            cap = self._quota(details.caller_authrole).max_kernels_per_session
            if owned >= cap:
                raise errors.Capacity(
                    "this session already has {} kernels, the most one session may have".format(owned), limit=cap
                )
        yield self.call(uris.spawner_procedure(spawner_id, "rebind_kernel"), kernel_id, token, owner)
        self.ownership.resumed(kernel_id, owner)
        return {"kernel_id": kernel_id, "iopub": uris.kernel_iopub(kernel_id)}

    def execute_once(
        self,
        details,
        code,
        timeout=None,
        user_expressions=None,
        stop_on_error=True,
        files=None,
        return_files=False,
        kernel_name=None,
    ):
        """``cell.execute``: see L{OneShots.execute}."""
        return self.oneshots.execute(
            details, code, timeout, user_expressions, stop_on_error, files, return_files, kernel_name
        )

    def status(self):
        """``cell.status``: see L{node_status.collect}."""
        return node_status.collect(self.placement, self.call)
