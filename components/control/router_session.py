"""The session router's WAMP face: one per node, a Crossbar container component (or its own process).

L{SessionRouter} only joins the realm: it registers ``cell.kernel.start``,
``cell.kernel.resume``, ``cell.execute``, ``cell.status`` and the backend
procedures, subscribes to the meta events (sessions leaving, spawners ready,
kernels ended), and hands each to the parts that do the work, built at join:

- L{ControlPlane} (placement, quotas, held kernels, resumes, who leaves), on
  the reactor and a L{SpawnerCalls} port over this session's call/publish;
- L{ServiceAuthenticator} (WAMP-CRA of services and remote spawners);
- L{SessionLimits} (sessions per client address);
- L{node_metrics} and L{node_status} (what the spawners say, gathered).

Per-kernel calls do not pass through it: the kernel relay (in the router)
carries them to the spawner.
"""

from autobahn.wamp.types import RegisterOptions
from twisted.internet import defer

from components.common import arguments, errors, uris
from components.common.addresses import ClientAddresses
from components.common.config import RouterConfig, from_mapping
from components.common.metrics import counting_errors
from components.common.node_key import BackendSession
from components.common.sessions import quiet_if_router_goes
from components.control import node_metrics, node_status, oneshots
from components.control.authenticator import ServiceAuthenticator
from components.control.control_plane import ControlPlane
from components.control.discovery import spawners_already_there
from components.control.metrics import RouterMetrics
from components.control.session_limits import SessionLimits
from components.control.spawner_calls import SpawnerCalls


class SessionRouter(BackendSession):
    """See the module docstring.  Settings come from the component's ``extra`` (L{RouterConfig})."""

    backend_authid = "session_router"

    @quiet_if_router_goes
    @defer.inlineCallbacks
    def onJoin(self, details):
        from twisted.internet import reactor

        self._reactor = reactor
        settings = from_mapping(RouterConfig, dict(self.config.extra or {}), ignore=("cbdir",))
        addresses = ClientAddresses(settings.trusted_proxies)
        self.control = ControlPlane(reactor, settings, SpawnerCalls(self.call, self.publish), addresses)
        self.authenticator = ServiceAuthenticator(settings.services, settings.spawners)
        self.metrics = RouterMetrics()
        yield self._register()
        yield self.subscribe(self.session_left, uris.SESSION_ON_LEAVE)
        yield self.subscribe(addresses.joined, uris.SESSION_ON_JOIN)
        self.session_limits = SessionLimits(self.control.quotas, addresses)
        yield self.session_limits.attach(self)
        yield self.subscribe(self.control.spawner_ready, uris.SPAWNER_ON_READY)
        yield self.subscribe(self.kernel_ended, uris.SPAWNER_ON_KERNEL_ENDED)
        for info in (yield spawners_already_there(self.call)):
            yield self.control.spawner_ready(info)
        self.log.info("session router ready; {n} spawner(s) known", n=len(self.control.placement.spawners))

    @defer.inlineCallbacks
    def _register(self):
        yield self.register(self.control.holder_of, uris.KERNEL_OWNER)
        yield self.register(self.authenticator.authenticate, uris.AUTHENTICATE)
        with_details = RegisterOptions(details_arg="details")
        metrics = self.metrics
        for uri, handler, counter, histogram in (
            (uris.KERNEL_START, self.kernel_start, metrics.acquisitions, metrics.acquisition_seconds),
            (uris.START_KERNEL_FOR, self.start_kernel_for, metrics.acquisitions, metrics.acquisition_seconds),
            (uris.KERNEL_RESUME, self.kernel_resume, None, None),
            (uris.EXECUTE_ONCE, self.execute_once, metrics.oneshots, None),
            (uris.EXECUTE_FOR, self.execute_for, metrics.oneshots, None),
            (uris.EXECUTE_HTTP, self.execute_http, metrics.oneshots, None),
        ):
            if uri == uris.EXECUTE_ONCE:  # its arguments are a one-shot's, bound into one
                endpoint = oneshots.endpoint(uri, handler)
            else:
                endpoint = arguments.endpoint(uri, handler, with_details=True)
            endpoint = counting_errors(endpoint, metrics.errors)
            if counter is not None:
                endpoint = self._timed(endpoint, counter, histogram)
            yield self.register(endpoint, uri, options=with_details)
        yield self.register(self.status, uris.STATUS)
        yield self.register(self.control.placement.kernelspecs, uris.KERNELSPECS)
        yield self.register(self.node_metrics, uris.NODE_METRICS)
        yield self.register(self.control.address_of, uris.CLIENT_ADDRESS)
        yield self.register(self.control.addresses.resolve, uris.RESOLVE_CLIENT)

    def _timed(self, endpoint, counter, histogram):
        def call(*args, **kwargs):
            ok, failed = self.metrics.timed(counter, histogram, self._reactor)
            return endpoint(*args, **kwargs).addCallbacks(ok, failed)

        return call

    def node_metrics(self):
        """``cell.backend.metrics``: this process's families, then each spawner's (L{node_metrics.collect})."""
        return node_metrics.collect(self.call, self.metrics, self.control.placement.spawners, self.table_sizes())

    def table_sizes(self):
        """Each table's entries (``cell_session_router_table_entries``; the soak checks they return to baseline)."""
        return {**self.control.sizes(), **self.session_limits.sizes()}

    def status(self):
        """``cell.status``: see L{node_status.collect}."""
        return node_status.collect(self.control.placement, self.call)

    def session_left(self, session_id, *args, **kwargs):
        """``wamp.session.on_leave``."""
        self.control.session_left(session_id)

    def kernel_ended(self, event):
        """``cell.spawner.on_kernel_ended``: a kernel with no owner session was one held for us."""
        self.control.kernel_ended(event["kernel_id"], event["spawner"], was_held=event.get("owner") is None)

    def kernel_start(self, details, kernel_name=None):
        """``cell.kernel.start(kernel_name=None)``: a warm kernel (of that kernelspec; python3 by default) for the
        caller."""
        if details.caller is None:
            raise errors.InvalidArgument(
                "the router did not disclose the caller; enable 'disclose.caller' for this role"
            )
        return self.control.kernel_start(details.caller, details.caller_authrole, kernel_name)

    def start_kernel_for(self, details, principal, role, client, kernel_name="python3"):
        """``cell.backend.start_kernel_for(principal, role, client)``: a kernel for a principal of the node's
        Jupyter face (components.router.jupyter), called through the face's session; see
        L{ControlPlane.start_kernel_for}."""
        return self.control.start_kernel_for(details.caller, principal, role, client, kernel_name)

    @defer.inlineCallbacks
    def kernel_resume(self, details, kernel_id, token):
        """``cell.kernel.resume(kernel_id, token)``: re-bind a kernel to the calling session."""
        kernel_id = yield self.control.kernel_resume(details.caller, details.caller_authrole, kernel_id, token)
        return {"kernel_id": kernel_id, "iopub": uris.kernel_iopub(kernel_id)}

    def execute_for(self, details, client, code, timeout=None, user_expressions=None, kernel_name=None):
        """``cell.backend.execute_for(client, code, ...)``: see L{ControlPlane.execute_for}."""
        return self.control.execute_for(client, code, timeout, user_expressions, kernel_name)

    def execute_http(self, details, client, principal, role, call):
        """``cell.backend.execute_http(client, principal, role, call)``: a one-shot of a client of the node's HTTP
        API (components.router.http_api), C{call} its arguments as ``cell.execute``'s keywords; see
        L{OneShots.for_http}."""
        call = oneshots.arguments_of(uris.EXECUTE_HTTP, (), call)
        return self.control.oneshots.for_http(client, principal, role, details.progress, call)

    def execute_once(self, details, call):
        """``cell.execute(code, timeout=None, ...)``, C{call} its arguments (L{oneshots.endpoint}): see
        L{OneShots.execute}."""
        return self.control.oneshots.execute(details.caller, details.caller_authrole, details.progress, call)
