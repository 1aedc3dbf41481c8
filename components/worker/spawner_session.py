"""The WAMP face of a worker host: the spawner's procedures, its kernels' registrations, iopub.

L{SpawnerService} survives reconnects (autobahn makes a new session for each);
it registers ``cell.spawner.<id>.*`` for the session router, one prefix
registration ``cell.backend.kernel.<id>.`` per kernel (made while it waits in
the pool), and publishes ``cell.kernel.<id>.iopub`` (WAMP clients) and
``cell.kernel.<id>.jupyter`` (the Jupyter face) for topics someone subscribes to.
"""

import hmac

from autobahn.wamp.types import PublishOptions, RegisterOptions
from twisted.internet import defer
from twisted.logger import Logger

from components.common import arguments, errors, uris
from components.common.kernelspecs import PYTHON
from components.common.metrics import counting_errors, export
from components.worker.death_causes import DeathReason
from components.worker.downloads import TransportFlow
from components.worker.iopub_listeners import IopubListeners
from components.worker.kernel_state import KernelState
from components.worker.procedures import KernelProcedures
from components.worker.spawner import KernelSpawner


class SpawnerService:
    """The WAMP face of a L{KernelSpawner}; survives reconnects (sessions do not)."""

    log = Logger()

    def __init__(self, reactor, config):
        self._reactor = reactor
        self.config = config
        self.session = None
        self.spawner = KernelSpawner(
            reactor,
            config,
            self._publish_iopub,
            self._kernel_ended,
            prepare_kernel=self._prepare_kernel,
            on_jupyter=self._publish_jupyter,
        )
        self._flow = TransportFlow()
        self._procedures = KernelProcedures(config, self._flow, self.spawner.blocking)
        self._registrations = {}
        self._orphaned = None  # the timer that ends our kernels if the router stays away
        self.listeners = IopubListeners()

    def _publish_iopub(self, kernel, msg):
        topic = uris.kernel_iopub(kernel.kernel_id)
        if self.session is not None and self.session.is_attached() and self.listeners.wanted(topic):
            self.session.publish(topic, msg)
        self._publish_jupyter(kernel, "iopub", msg)

    def _publish_jupyter(self, kernel, channel, msg):
        """The Jupyter face's one topic per kernel: iopub, and replies to what came through ``jupyter``."""
        topic = uris.kernel_jupyter(kernel.kernel_id)
        if self.session is not None and self.session.is_attached() and self.listeners.wanted(topic):
            self.session.publish(topic, channel, msg)

    def _prepare_kernel(self, kernel):
        """Register a pool kernel's procedures before anyone asks for it: a start then costs no registration."""
        if self.session is not None and self.session.is_attached():
            return self._register_kernel(kernel)
        return None  # registered when we (re)join

    def _kernel_ended(self, kernel, reason, handed_out):
        """C{handed_out}: the control plane knew the kernel (it was handed out, or held for hand-over)."""
        registration = self._registrations.pop(kernel.kernel_id, None)
        if self.session is None or not self.session.is_attached():
            return
        if registration is not None and registration.active:
            registration.unregister().addErrback(
                self._log_failure, "could not unregister kernel {}".format(kernel.kernel_id)
            )
        if not handed_out:
            return
        self.session.publish(
            uris.SPAWNER_ON_KERNEL_ENDED,
            {"spawner": self.config.spawner_id, "kernel_id": kernel.kernel_id, "owner": kernel.owner, "reason": reason},
            options=PublishOptions(acknowledge=False),
        )

    @defer.inlineCallbacks
    def on_join(self, session, details):
        """(Re)join: register our procedures and every kernel we still run, then announce them."""
        self.session = session
        # Downloads wait while the router connection's buffer is full (autobahn's WAMP protocol is the
        # Twisted protocol of the connection; its transport is where the bytes queue).
        self._flow.attach(getattr(session._transport, "transport", None))
        if self._orphaned is not None and self._orphaned.active():
            self._orphaned.cancel()
        self._orphaned = None
        sid = self.config.spawner_id
        # Taken before the first yield: a pool kernel that gets ready meanwhile registers itself (_prepare_kernel).
        ours = (
            list(self.spawner.kernels.values()) + list(self.spawner.held.values()) + self.spawner.pool.ready_kernels()
        )
        # Meta events are (session id, details) and (session id, subscription id).
        yield session.subscribe(lambda _session, details: self.listeners.created(details), uris.SUBSCRIPTION_ON_CREATE)
        yield session.subscribe(
            lambda _session, subscription_id: self.listeners.deleted(subscription_id), uris.SUBSCRIPTION_ON_DELETE
        )
        register = session.register
        errors_seen = self.spawner.metrics.errors
        yield register(self.start_kernel, uris.spawner_procedure(sid, "start_kernel"))
        yield register(self.shutdown_kernel, uris.spawner_procedure(sid, "shutdown_kernel"))
        yield register(self.rebind_kernel, uris.spawner_procedure(sid, "rebind_kernel"))
        yield register(self.hold, uris.spawner_procedure(sid, "hold"))
        yield register(self.hand_over, uris.spawner_procedure(sid, "hand_over"))
        yield register(
            counting_errors(arguments.endpoint("cell.execute", self.execute_once, with_details=True), errors_seen),
            uris.spawner_procedure(sid, "execute_once"),
            options=RegisterOptions(details_arg="details"),
        )
        yield register(self.info, uris.spawner_procedure(sid, "info"))
        yield register(self.metrics, uris.spawner_procedure(sid, "metrics"))
        for kernel in ours:
            yield self._register_kernel(kernel)
        yield self.listeners.sync(session, list(self.spawner.kernels))
        session.publish(uris.SPAWNER_ON_READY, self.info())
        self.log.info(
            "spawner {sid} joined realm {realm} as session {session} with {n} kernel(s)",
            sid=sid,
            realm=details.realm,
            session=details.session,
            n=len(self.spawner.kernels),
        )

    def on_leave(self, session, details):
        """The router is gone.  Keep our kernels for C{router_grace_s}: a restarted
        router (and the owners' resume tokens) may claim them; past it they end."""
        self.session = None
        self._registrations.clear()
        self.listeners.reset()
        grace = self.config.router_grace_s
        if self.spawner.kernels:
            self.log.warn(
                "lost the router; keeping {n} kernel(s) for {grace} s", n=len(self.spawner.kernels), grace=grace
            )
        if self._orphaned is None or not self._orphaned.active():
            self._orphaned = self._reactor.callLater(grace, self._router_stayed_away)

    def _router_stayed_away(self):
        self._orphaned = None
        for kernel in list(self.spawner.kernels.values()):
            kernel.shutdown(
                DeathReason(
                    "router_lost", "the spawner lost its router connection for {} s".format(self.config.router_grace_s)
                )
            )

    def _log_failure(self, failure, what):
        self.log.warn("{what}: {error}", what=what, error=failure.getErrorMessage())

    def metrics(self):
        """``cell.spawner.<id>.metrics()``: this spawner's families for the node's metrics page."""
        return export(self.spawner.metrics.registry)

    def info(self):
        info = self.spawner.status()
        info["session"] = self.session._session_id if self.session is not None else None
        info["kernel_list"] = [{"kernel_id": k.kernel_id, "owner": k.owner} for k in self.spawner.kernels.values()]
        return info

    @defer.inlineCallbacks
    def _register_kernel(self, kernel):
        """One prefix registration serves all of a kernel's procedures."""

        def procedure(*args, **kwargs):
            details = kwargs.pop("details")
            name = details.procedure[len(uris.kernel_backend_prefix(kernel.kernel_id)) :]
            return self._procedures.call(kernel, name, args, kwargs, details)

        handler = counting_errors(procedure, self.spawner.metrics.errors)

        registration = yield self.session.register(
            handler,
            uris.kernel_backend_prefix(kernel.kernel_id),
            options=RegisterOptions(match="prefix", details_arg="details"),
        )
        if kernel.state == KernelState.DEAD:
            registration.unregister().addErrback(
                self._log_failure, "could not unregister kernel {}".format(kernel.kernel_id)
            )
        else:
            self._registrations[kernel.kernel_id] = registration
        return registration

    def _descriptor(self, kernel):
        return {
            "kernel_id": kernel.kernel_id,
            "iopub": uris.kernel_iopub(kernel.kernel_id),
            "spawner": self.config.spawner_id,
            "resume_token": kernel.resume_token,
        }

    def hold(self, count):
        """``cell.spawner.<id>.hold(count)``: keep C{count} ready kernels for the session router; list them."""
        count = arguments.check_int("count", count)
        return [
            self._descriptor(k)
            for k in self.spawner.hold(min(count, self.config.pool_size))
            if k.kernel_id in self._registrations
        ]

    def hand_over(self, kernel_id, owner):
        """``cell.spawner.<id>.hand_over(kernel_id, owner)``: a held kernel is C{owner}'s now."""
        self.spawner.hand_over(kernel_id, owner)
        return True

    @defer.inlineCallbacks
    def start_kernel(self, owner, kernel_name=PYTHON):
        """``cell.spawner.<id>.start_kernel(owner, kernel_name)``: a ready kernel of that name for C{owner}."""
        kernel_name = arguments.check_str("kernel_name", kernel_name, 256)
        kernel = yield self.spawner.acquire(owner, kernel_name)
        if kernel.kernel_id not in self._registrations:  # forked on demand, not from the pool
            try:
                yield self._register_kernel(kernel)
            except Exception:
                kernel.shutdown(DeathReason("start_failed", "its procedures could not be registered"))
                raise
        if kernel.state == KernelState.DEAD:
            raise errors.KernelDied("the kernel died while starting: {}".format(kernel.dead_reason))
        return {
            "kernel_id": kernel.kernel_id,
            "iopub": uris.kernel_iopub(kernel.kernel_id),
            "spawner": self.config.spawner_id,
            "resume_token": kernel.resume_token,
            "kernel_name": kernel.kernel_name,
        }

    def rebind_kernel(self, kernel_id, token, owner):
        """Give a kernel to a new session that shows its resume token."""
        kernel = self.spawner.kernels.get(kernel_id)
        if (
            kernel is None
            or not isinstance(token, str)
            or not hmac.compare_digest(token.encode(), kernel.resume_token.encode())
        ):
            raise errors.NotFound("no kernel {} can be resumed with this token".format(kernel_id))
        kernel.owner = owner
        kernel.touch()
        return True

    def shutdown_kernel(self, kernel_id, reason="its owner left"):
        kernel = self.spawner.kernels.get(kernel_id)
        if kernel is not None:
            kernel.shutdown(reason)
        return kernel is not None

    def execute_once(
        self,
        details,
        code,
        timeout=None,
        user_expressions=None,
        stop_on_error=True,
        files=None,
        return_files=False,
        kernel_name=PYTHON,
    ):
        """``cell.spawner.<id>.execute_once``: what ``cell.execute`` runs (the session router forwards the caller's arguments)."""
        files = arguments.check_inline_files(files, self.config.max_inline_file_bytes)
        timeout = arguments.check_timeout("timeout", timeout)
        return self.spawner.oneshots.run(
            arguments.check_str("code", code, self.config.max_code_bytes),
            min(timeout or self.config.oneshot_timeout_s, self.config.oneshot_timeout_max_s),
            arguments.check_user_expressions("user_expressions", user_expressions),
            arguments.check_bool("stop_on_error", stop_on_error),
            details.progress or None,
            files,
            arguments.check_bool("return_files", return_files),
            arguments.check_str("kernel_name", kernel_name, 256),
        )
