"""The states of a L{components.worker.kernel.Kernel}, in a module of their own.

Everything that looks at a kernel's state (the pool, the spawner, its WAMP face,
the metrics) compares against these members rather than strings, and none of
them has to import the kernel for it.
"""

import enum


class KernelState(str, enum.Enum):
    """starting (forked, not yet answering) -> ready (in the pool or handed out) -> dead (for good)."""

    STARTING = "starting"
    READY = "ready"
    DEAD = "dead"
