"""``cell.execute`` in the control plane: whether a one-shot may run now, and on which spawner.

Every one-shot takes the same path: ``cell.execute`` of a WAMP session, and the HTTP API's and SageMathCell's
one-shots of an HTTP client (L{OneShots.for_http}), their arguments bound to ``cell.execute``'s parameters
(L{arguments_of}), then L{OneShots.execute}: the same checks, quotas and spawner call.

L{OneShotAdmission}: its rate per session and per address, and how many run at once per address.
A session's bucket goes when the session leaves, an address's once it is full
again (L{RateLimiter}), an address's count of running one-shots at zero.

The per-minute rates alone did not bound concurrency: one client's plain
sleepers held every child of the one-shot template, and another address's
``1+1`` waited 32 s.  So the one-shots an address runs at once are counted
too (``max_concurrent_oneshots_per_address``), from admission until the
call ends however it ends.  L{OneShots} runs one: a one-shot that needs a kernel (files, returned
files, another language) also counts as a kernel of its session and
address, and of its spawner, while it runs (40 such one-shots from one
session made 44 live kernels on a node allowing 32).
"""

import collections

from autobahn.wamp.types import CallOptions
from twisted.internet import defer

from components.common import arguments, errors, uris
from components.common.kernelspecs import PYTHON
from components.control.quotas import RateLimiter


class OneShotAdmission:
    """@param quotas: {role: L{RoleQuota}}; an unknown role gets the browser's."""

    def __init__(self, clock, quotas):
        self._quotas = quotas
        self._per_session = {role: RateLimiter(clock, q.max_oneshots_per_minute) for role, q in quotas.items()}
        self._per_address = {
            role: RateLimiter(clock, q.max_oneshots_per_minute_per_address) for role, q in quotas.items()
        }
        self._running = collections.Counter()  # address -> one-shots running now

    def _of(self, table, role):
        return table.get(role) or table["browser"]

    def admit(self, session_id, role, address):
        """Admit one one-shot, or raise L{errors.Capacity} naming the limit; call the returned function when it ends."""
        quota = self._of(self._quotas, role)
        if not self._of(self._per_session, role).allow(session_id):
            raise errors.Capacity(
                "too many one-shot executions: this session may run {} per minute; slow down".format(
                    quota.max_oneshots_per_minute
                ),
                limit=quota.max_oneshots_per_minute,
            )
        if not self._of(self._per_address, role).allow(address):
            raise errors.Capacity(
                "too many one-shot executions from your address: it may run {} per minute; slow down".format(
                    quota.max_oneshots_per_minute_per_address
                ),
                limit=quota.max_oneshots_per_minute_per_address,
            )
        cap = quota.max_concurrent_oneshots_per_address
        if cap and self._running[address] >= cap:
            raise errors.Capacity(
                "your address already runs {} one-shot executions at once, the most one address may; wait for one "
                "to finish".format(self._running[address]),
                limit=cap,
            )
        self._running[address] += 1
        ended = []

        def done(result=None):
            if not ended:
                ended.append(True)
                self._running[address] -= 1
                if self._running[address] <= 0:
                    del self._running[address]
            return result

        return done

    def running(self, address):
        return self._running.get(address, 0)

    def forget(self, session_id):
        for limiter in self._per_session.values():
            limiter.forget(session_id)

    def sizes(self):
        """Its tables' sizes (node metrics, the soak): rate buckets not yet full again, addresses running some."""
        return {
            "oneshot_session_buckets": sum(limiter.size() for limiter in self._per_session.values()),
            "oneshot_address_buckets": sum(limiter.size() for limiter in self._per_address.values()),
            "oneshot_running_addresses": len(self._running),
        }


def _parameters(
    code, timeout=None, user_expressions=None, stop_on_error=True, files=None, return_files=False, kernel_name=None
):
    """A one-shot's parameters: ``cell.execute``'s, which the spawner's ``execute_once`` takes too (applying its own
    defaults to None).  Never called: L{arguments_of} binds a call's arguments to this signature."""


def arguments_of(name, args, kwargs):
    """A call's arguments to the one-shot procedure C{name} bound to a one-shot's parameters, as a dict with the
    defaults filled in (what L{OneShots.execute} runs); a call that does not fit is L{errors.InvalidArgument} naming
    what C{name} takes (L{arguments.bind})."""
    return arguments.bind(name, _parameters, args, kwargs)


def endpoint(name, run):
    """The WAMP endpoint of a procedure whose arguments are a one-shot's (``cell.execute``), registered with
    ``details_arg="details"`` as L{arguments.endpoint}'s: it calls C{run(details, call)}, C{call} the arguments
    L{arguments_of}."""

    def handler(*args, **kwargs):
        details = kwargs.pop("details")
        return run(details, arguments_of(name, args, kwargs))

    handler.__name__ = getattr(run, "__name__", name)
    return handler


class OneShots:
    """Runs one-shots: ``cell.execute`` calls of WAMP sessions, and those of HTTP clients (L{for_http}).

    @param placement: the session router's L{Placement} (spawners, kernels counted per session and address).
    @param call: the WAMP session's C{call} (the control plane's L{SpawnerCalls}).
    @param address_of: C{address_of(session_id)} -> Deferred of the session's client address.
    @param resolve: C{resolve(client)} -> an HTTP client's address (the node's one resolver, L{ClientAddresses}).
    """

    def __init__(self, clock, quotas, placement, call, address_of, resolve):
        self.admission = OneShotAdmission(clock, quotas)
        self._quotas = quotas
        self._placement = placement
        self._call = call
        self._address_of = address_of
        self._resolve = resolve

    def forget(self, session_id):
        self.admission.forget(session_id)

    def for_http(self, client, principal, role, progress, call):
        """A one-shot of an HTTP client (components.router.http_api's, SageMathCell's ``POST /service``): as
        ``cell.execute`` of a session of C{role} at the client's address, resolved by the node's one resolver (a
        client's own ``X-Forwarded-For`` counts only from a front in ``trusted_proxies``).  Its rate "per session"
        is counted under ``http:<address>`` for an anonymous client (C{principal} ""), ``http:token:<principal>``
        for a token's principal.  C{client}: the request's transport (components.common.addresses.http_client)."""
        principal = arguments.check_str("principal", principal, 256)
        if role not in self._quotas:
            raise errors.InvalidArgument("unknown role {!r}".format(role))
        address = self._resolve(client)
        caller = "http:" + ("token:" + principal if principal else address)
        return self.execute(caller, role, progress, call, address=address)

    @defer.inlineCallbacks
    def execute(self, caller, role, progress, call, address=None):
        """Quotas here, then the spawner's ``execute_once`` (which applies its own defaults to None) on a spawner
        that offers the call's C{kernel_name} (python3 by default).

        @param caller: the calling session (its quotas); C{role}: its role.
        @param progress: the call's C{progress} callable, or None (the output streams to it as it comes).
        @param call: the one-shot's arguments (L{arguments_of}).
        @param address: the caller's client address when it is no WAMP session (an HTTP client, L{for_http});
            else the session's is asked for.
        """
        kernel_name = arguments.check_kernel_name(call["kernel_name"])
        self._placement.check_offered(kernel_name)
        quota = self._quotas.get(role) or self._quotas["browser"]
        arguments.check_str("code", call["code"], quota.max_code_bytes)
        if address is None:
            address = yield self._address_of(caller)
        done = self.admission.admit(caller, role, address)
        needs_kernel = bool(call["files"]) or bool(call["return_files"]) or kernel_name != PYTHON
        try:
            if needs_kernel:
                spawner = self._placement.reserve(
                    caller,
                    quota.max_kernels_per_session,
                    address=address,
                    address_cap=quota.max_kernels_per_address,
                    kernel_name=kernel_name,
                )
            else:
                spawner = self._placement.choose(kernel_name=kernel_name)
        except Exception:
            done()
            raise
        options = CallOptions(on_progress=progress) if progress else None
        forwarded = {name: value for name, value in call.items() if name not in ("code", "kernel_name")}
        if kernel_name != PYTHON:
            forwarded["kernel_name"] = kernel_name
        try:
            result = yield self._call(
                uris.spawner_procedure(spawner.spawner_id, "execute_once"), call["code"], options=options, **forwarded
            )
        finally:
            done()
            if needs_kernel:
                self._placement.release(caller, spawner.spawner_id, address)
        return result
