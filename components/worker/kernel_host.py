"""What every kernel of one spawner shares (L{KernelHost}), apart from the kernel itself so that either can grow."""

import dataclasses
from typing import Any, Callable, Optional

from components.child.sandbox import kernel_path
from components.common.kernelspecs import PYTHON
from components.worker.blocking import BlockingWork
from components.worker.kernel_channels import KernelChannels
from components.worker.kernel_disk import KernelDisks
from components.worker.kernel_messages import KernelMessages
from components.worker.metrics import SpawnerMetrics


@dataclasses.dataclass
class ForkedKind:
    """One kind of forked kernel besides python3: the environment its master runs in, and that master now."""

    environment: Any
    master: Any = None


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
    #: forked kernels besides python3 (``sagemath``): {name: L{ForkedKind}}, each with its own fork master
    forked: dict = dataclasses.field(default_factory=dict)

    def forks(self, kernel_name):
        """Whether C{kernel_name}'s kernels are forked (from a master of this host) rather than launched."""
        return kernel_name == PYTHON or kernel_name in self.forked

    def master_for(self, kernel_name):
        """The fork master of C{kernel_name}'s kernels now (None while a Sage master is being replaced)."""
        return self.master if kernel_name == PYTHON else self.forked[kernel_name].master

    def path_for(self, kernel_name):
        """The ``PATH`` of a forked kernel: its environment's ``bin`` first."""
        if kernel_name != PYTHON:
            return self.forked[kernel_name].environment.path
        return self.sandbox.environment.path if self.sandbox is not None else kernel_path()

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
