"""Why a kernel died, in two forms: the sentence a person reads, and a cause from a fixed set.

Reasons are written where a kernel's death is decided (a limit, a clock, its
owner) and travel as plain text to logs, callers and the kernel's iopub.
Metrics need a label with few values, so each reason also carries its
L{CAUSES} entry; a reason given as plain text (e.g. the session router's, over
WAMP) counts as C{released}: the control plane let the kernel go.
"""

#: every cause a kernel death is counted under (the ``cause`` label of ``cell_kernel_deaths_total``)
CAUSES = (
    "shutdown",  # its owner shut it down
    "released",  # the session router ended it (its owner left and did not resume)
    "idle_timeout",
    "lifespan",
    "execute_timeout",
    "memory_limit",
    "cpu_limit",
    "file_size_limit",
    "process_limit",
    "disk_limit",
    "heartbeat",  # stopped answering
    "killed",  # a signal nobody here sent as a limit
    "exited",
    "start_failed",
    "oneshot_done",
    "router_lost",  # the spawner lost its router for longer than router_grace_s
    "spawner_stopping",
)


class DeathReason(str):
    """A reason (its text) with its C{cause}."""

    __slots__ = ("cause",)

    def __new__(cls, cause, text):
        if cause not in CAUSES:
            raise ValueError("unknown cause of death {!r}".format(cause))
        reason = super().__new__(cls, text)
        reason.cause = cause
        return reason


def cause_of(reason):
    return getattr(reason, "cause", "released")
