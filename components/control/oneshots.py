"""``cell.execute`` in the control plane: whether a one-shot may run now, and on which spawner.

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


class OneShots:
    """Runs ``cell.execute`` calls.

    @param placement: the session router's L{Placement} (spawners, kernels counted per session and address).
    @param call: the WAMP session's C{call} (the control plane's L{SpawnerCalls}).
    @param address_of: C{address_of(session_id)} -> Deferred of the session's client address.
    """

    def __init__(self, clock, quotas, placement, call, address_of):
        self.admission = OneShotAdmission(clock, quotas)
        self._quotas = quotas
        self._placement = placement
        self._call = call
        self._address_of = address_of

    def forget(self, session_id):
        self.admission.forget(session_id)

    @defer.inlineCallbacks
    def execute(
        self,
        caller,
        role,
        progress,
        code,
        timeout,
        user_expressions,
        stop_on_error,
        files,
        return_files,
        kernel_name,
        address=None,
    ):
        """Quotas here, then the spawner's ``execute_once`` (which applies its own defaults to None) on a spawner
        that offers C{kernel_name} (python3 by default).

        @param caller: the calling session (its quotas); C{role}: its role.
        @param progress: the call's C{progress} callable, or None (the output streams to it as it comes).
        @param address: the caller's client address when it is no WAMP session (an HTTP client of
            ``/service``, resolved by the control plane); else the session's is asked for.
        """
        kernel_name = arguments.check_kernel_name(kernel_name)
        self._placement.check_offered(kernel_name)
        quota = self._quotas.get(role) or self._quotas["browser"]
        arguments.check_str("code", code, quota.max_code_bytes)
        if address is None:
            address = yield self._address_of(caller)
        done = self.admission.admit(caller, role, address)
        needs_kernel = bool(files) or bool(return_files) or kernel_name != PYTHON
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
        language = {} if kernel_name == PYTHON else {"kernel_name": kernel_name}
        try:
            result = yield self._call(
                uris.spawner_procedure(spawner.spawner_id, "execute_once"),
                code,
                options=options,
                timeout=timeout,
                user_expressions=user_expressions,
                stop_on_error=stop_on_error,
                files=files,
                return_files=return_files,
                **language,
            )
        finally:
            done()
            if needs_kernel:
                self._placement.release(caller, spawner.spawner_id, address)
        return result
