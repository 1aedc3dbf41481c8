"""The ``IPKernelApp`` of a forked kernel: configured in code, not from a command line.

A forked child has nothing to parse: its settings are known in the master.
Building traitlets' command-line parser for every configurable class cost
several ms of each kernel's start, so the app takes a ``Config`` object and
skips the parser.  The settings themselves, and why, are in L{config_for}.
"""

from ipykernel.kernelapp import IPKernelApp
from traitlets.config import Config


class ForkedKernelApp(IPKernelApp):
    """An IPKernelApp whose whole configuration comes from its C{config}."""

    def parse_command_line(self, argv=None):
        self.argv = []


def config_for(connection_file, matplotlib_inline):
    """The configuration of one forked kernel."""
    config = Config()
    config.IPKernelApp.connection_file = connection_file
    config.IPKernelApp.quiet = True
    # See components.kernel_streams: backpressure, no empty flush waits, a cheaper write.
    config.IPKernelApp.outstream_class = "components.kernel_streams.KernelOutStream"
    # No sqlite history database and no history thread per kernel.
    config.HistoryManager.enabled = False
    # ipykernel sleeps 0.5 ms before each execute reply, a guard for clients that end an
    # execution on the reply alone; the spawner waits for the iopub idle status as well.
    config.IPythonKernel._execute_sleep = 0.0
    if matplotlib_inline:
        # pyplot was imported before any shell existed, so the inline
        # backend's hooks must be installed now, in the kernel's shell.
        config.IPKernelApp.matplotlib = "inline"
    return config
