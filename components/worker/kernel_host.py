"""What every kernel of one spawner shares (L{KernelHost}), apart from the kernel itself so that either can grow."""

import dataclasses
from typing import Any, Callable, Optional

from components.worker.blocking import BlockingWork
from components.worker.kernel_channels import KernelChannels
from components.worker.kernel_disk import KernelDisks
from components.worker.kernel_messages import KernelMessages
from components.worker.metrics import SpawnerMetrics


@dataclasses.dataclass
class KernelHost:
    """What every kernel of one spawner shares: the clock, settings, fork master, directories, sandbox.

    C{run_blocking(f, *args)} runs C{f} off the reactor thread and returns a
    Deferred (the spawner's L{BlockingWork}; tests run it inline).
    """

    clock: Any
    config: Any
    master: Any
    zmq_context: Any
    work_root: str
    runtime_root: str
    sandbox: Any = None
    channels_factory: Callable = KernelChannels
    messages: KernelMessages = dataclasses.field(default_factory=KernelMessages)
    metrics: SpawnerMetrics = dataclasses.field(default_factory=SpawnerMetrics)
    run_blocking: Optional[Callable] = None
    #: the kernelspecs of other languages (L{components.worker.kernelspecs.Kernelspecs}), for non-Python kernels
    kernelspecs: Any = None
    #: the kernels' directories as file systems of their own where the spawner is root and sandboxes (L{KernelDisks})
    disks: Any = None

    def __post_init__(self):
        self.disks = self.disks or KernelDisks.for_host(self)

    def open_channels(self, connection, on_reply, on_iopub, on_stdin, on_pong):
        """The ZMQ channels of one kernel process (iopub messages capped a little above the output cap)."""
        max_output_bytes = self.config.max_output_bytes
        return self.channels_factory(
            self.clock,
            self.zmq_context,
            connection,
            on_reply=on_reply,
            on_iopub=on_iopub,
            on_stdin=on_stdin,
            on_pong=on_pong,
            max_iopub_content_bytes=max_output_bytes + 65536 if max_output_bytes else 0,
        )

    def blocking(self, f, *args):
        if self.run_blocking is None:
            self.run_blocking = BlockingWork(self.clock)
        return self.run_blocking(f, *args)
