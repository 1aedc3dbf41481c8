"""The kernel relay: clients' calls to ``cell.kernel.<id>.*``, carried to the kernel's spawner.

It runs inside the router process (a Crossbar *router component*, joined
over an in-memory transport), so the extra hop costs no serialization and
no socket.  Why it exists at all: when a worker host vanishes, Crossbar
itself answers the calls in flight to it with ``wamp.error.canceled``, and
calls to a kernel nobody registered with ``wamp.error.no_such_procedure``.
Clients are promised ``cell.error.kernel_died`` and ``cell.error.not_found``
with a message they can act on; the relay is the one place that says so.

It is stateless: the spawner registers each kernel under
``cell.backend.kernel.<id>.`` and checks ownership against the original
caller, which the relay passes on as WAMP ``forward_for`` (Crossbar then
discloses the client, not the relay, to the spawner).  Progressive results
are passed through as they come.

The relay tells the router it cannot take INTERRUPT (no ``call_canceling``
in its callee role).  A router component receives messages through
Crossbar's ``RouterApplicationSession``, which has no way to deliver an
INTERRUPT: when a caller left in the middle of a relayed call, the dealer's
INTERRUPT raised inside the router's detach ("Failed to detach session"),
which left that caller's bookkeeping behind.  Now the dealer just forgets
the invocation; a client that cancels gets ``wamp.error.canceled`` at once,
and the kernel finishes (or is stopped with ``interrupt``, its own procedure).
"""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp import role
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, RegisterOptions
from prometheus_client import CollectorRegistry, Counter
from twisted.internet import defer

from components.common import arguments, errors, uris
from components.common.metrics import counting_errors, export

#: Crossbar's answers that the relay turns into the public contract.
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
CANCELED = "wamp.error.canceled"


class KernelRelay(ApplicationSession):
    """See the module docstring."""

    def __init__(self, config=None):
        super().__init__(config)
        roles = dict(self._session_roles)
        roles["callee"] = role.RoleCalleeFeatures(
            caller_identification=True,
            pattern_based_registration=True,
            shared_registration=True,
            progressive_call_results=True,
            registration_revocation=True,
            call_canceling=False,  # see the module docstring
        )
        self._session_roles = roles

    @defer.inlineCallbacks
    def onJoin(self, details):
        self.metrics = CollectorRegistry(auto_describe=True)
        self._errors = Counter("cell_errors", "cell.error.* answers to calls, by URI", ["uri"], registry=self.metrics)
        yield self.register(
            counting_errors(self.relay, self._errors),
            uris.KERNEL_PREFIX,
            options=RegisterOptions(match="prefix", details_arg="details"),
        )
        yield self.register(lambda: export(self.metrics), uris.RELAY_METRICS)
        self.log.info("kernel relay ready on {prefix}*", prefix=uris.KERNEL_PREFIX)

    def relay(self, *args, **kwargs):
        details = kwargs.pop("details")
        kernel_id, name = uris.split_kernel_uri(details.procedure)
        if kernel_id is None:
            raise errors.NotFound(
                "{} is not a kernel procedure; kernels have {}".format(
                    details.procedure, ", ".join(uris.KERNEL_PROCEDURES)
                )
            )
        arguments.check_unicode(args, kwargs)
        if details.caller is None:
            raise errors.InvalidArgument(
                "the router did not disclose the caller; enable 'disclose.caller' for this role"
            )
        options = CallOptions(
            on_progress=details.progress or None,
            forward_for=[
                {
                    "session": details.caller,
                    "authid": details.caller_authid or "",
                    "authrole": details.caller_authrole or "",
                }
            ],
        )
        d = self.call(uris.kernel_backend_prefix(kernel_id) + name, *args, options=options, **kwargs)
        d.addErrback(translate_failure, kernel_id)
        return d


def translate_failure(failure, kernel_id):
    """The router's own errors for a relayed call, said in the public contract's terms."""
    failure.trap(ApplicationError)
    error = failure.value.error
    if error == NO_SUCH_PROCEDURE:
        raise errors.NotFound(
            "no kernel {} is running (it may have been shut down, timed out or died); start a new one with {}".format(
                kernel_id, uris.KERNEL_START
            )
        )
    if error == CANCELED:
        raise errors.KernelDied(
            "the worker running kernel {} went away while this call was in flight; the kernel is gone, start a new one with {}".format(
                kernel_id, uris.KERNEL_START
            )
        )
    return failure
