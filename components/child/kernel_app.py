"""The ``IPKernelApp`` of a forked kernel: configured in code, not from a command line.

A forked child has nothing to parse: its settings are known in the master.
Building traitlets' command-line parser for every configurable class cost
several ms of each kernel's start, so the app takes a ``Config`` object and
skips the parser.  The settings themselves, and why, are in L{config_for}.

The kernel handles its shell channel on its main thread, as ipykernel did
before 7.0, instead of receiving each request on a "shell channel" thread
that hands it to the main thread over an inproc socket (the design that
serves ipykernel's *subshells*, which the cell server does not offer).  That
is one thread less per kernel and two thread hand-offs less per request:
measured here, 0.2 ms of each ``execute`` round trip.

Two start-up steps that would walk every module the master preloaded, and
so copy thousands of its pages into each kernel, are kept from doing it:
see L{_SysWithoutModules}.
"""

import contextlib
import os
import sys
import threading
import types

import zmq
from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp
from ipykernel.zmqshell import ZMQInteractiveShell
from IPython.core.shellapp import InteractiveShellApp
from traitlets import Type
from traitlets.config import Config

from components.child.iopub_sender import DirectIOPubThread
from components.child.output_history import WithoutOutputTee, forget_outputs


class MainThreadShell:
    """What ipykernel finds where its shell channel thread would be.

    False in a boolean test, which is how ipykernel asks whether the thread
    exists; ``parent_thread`` is the one thread that runs shell requests (the
    main thread), which is how ipykernel decides that SIGINT may interrupt
    a running cell.
    """

    def __init__(self):
        self.parent_thread = threading.main_thread()

    def __bool__(self):
        return False


class _SysWithoutModules:
    """``sys``, with no modules, as two start-up steps see it: they would touch every module.

    On Python 3.11 every object a child touches has its reference count
    written, so its page is copied from the master.  Two steps of a kernel's
    start-up walk all ~2,000 modules the master preloaded:

    - C{IPythonKernel.__init__} lists every module's file, for its debugger
      only (forked kernels have none): 4.4 MB per idle kernel (22.6 -> 18.2 MB);
    - IPython's C{init_code} copies every module's name, to know which ones
      C{%reset --aggressive} may drop later: 1.7 MB (18.2 -> 16.5 MB).  The
      master takes that snapshot once instead (L{ForkedKernelApp.init_code}).

    Only the name ``sys`` in those two modules is replaced, and only during
    those steps.
    """

    modules = types.MappingProxyType({})

    def __getattr__(self, name):
        return getattr(sys, name)


@contextlib.contextmanager
def without_modules(module_name):
    """Show C{module_name} a ``sys`` without modules (see L{_SysWithoutModules})."""
    module = sys.modules[module_name]
    module.sys = _SysWithoutModules()
    try:
        yield
    finally:
        module.sys = sys


class ForkedShell(WithoutOutputTee, ZMQInteractiveShell):
    """ipykernel's shell, minus IPython's copy of every output (L{components.child.output_history})."""


class Forked:
    """What every forked kernel class changes (Python's and Sage's): no subshells, no debugger's module list.

    Mixed in before the kernel class (an C{IPythonKernel} or a subclass of it): see the module docstring."""

    def __init__(self, **kwargs):
        with without_modules(IPythonKernel.__module__):
            super().__init__(**kwargs)

    @property
    def _supports_kernel_subshells(self):
        return False


class ForkedKernel(Forked, IPythonKernel):
    """An IPythonKernel without subshells or a debugger's module list: see the module docstring."""

    shell_class = Type(ForkedShell)


class ForkedKernelApp(IPKernelApp):
    """An IPKernelApp whose whole configuration comes from its C{config}."""

    #: the names in C{sys.modules} when the master finished preloading (L{snapshot_modules})
    preloaded_modules = None

    @classmethod
    def snapshot_modules(cls):
        """In the fork master, once every preload is imported."""
        cls.preloaded_modules = frozenset(sys.modules)

    @classmethod
    def forget_outputs(cls):
        """In the fork master: no kernel keeps its outputs (L{components.child.output_history})."""
        forget_outputs()

    @classmethod
    def warm_up(cls, matplotlib_inline, flavour="python", times=10):
        """In the fork master: build the app and drop it, C{times} times.

        CPython 3.11 specialises a function's bytecode after a few calls, and
        traitlets fills its per-class caches on first use; done here once, every
        child starts with both.  Measured: fork-to-ready p50 -3.5 ms.  The only
        trace left is the app's logger, which each child's app configures anew.
        """
        for _ in range(times):
            cls.instance(config=config_for(os.devnull, matplotlib_inline, flavour))
            cls.clear_instance()

    def parse_command_line(self, argv=None):
        self.argv = []

    def init_code(self):
        with without_modules(InteractiveShellApp.__module__):
            super().init_code()
        preloaded = self.preloaded_modules
        if preloaded is not None and len(sys.modules) == len(preloaded):
            # Nothing was imported since the fork (start-up only ever adds modules).
            self.shell._sys_modules_keys = preloaded
        else:
            self.shell._sys_modules_keys = set(sys.modules)

    def init_iopub(self, context):
        """ipykernel's iopub socket, sent on by the thread that has a message (L{DirectIOPubThread})."""
        socket = context.socket(zmq.XPUB)
        socket.linger = 1000
        self.iopub_port = self._bind_socket(socket, self.iopub_port)
        self.configure_tornado_logger()
        self.iopub_thread = DirectIOPubThread(socket, pipe=True, session=self.session)
        self.iopub_thread.start()
        self.iopub_socket = self.iopub_thread.background_socket

    def init_sockets(self):
        super().init_sockets()
        unused, self.shell_channel_thread = self.shell_channel_thread, MainThreadShell()
        unused.io_loop.close(all_fds=False)

    def initialize(self, argv=None):
        super().initialize(argv)
        # traitlets leaves the app's logger at DEBUG and filters in its handler, so every
        # ``log.debug`` in ipykernel's message loop built a LogRecord (5% of an execute).
        self.log.setLevel(self.log_level)
        widgets = sys.modules.get("ipywidgets")
        if widgets is not None:
            # Preloaded in the master, where no kernel existed to register its comm targets with:
            # register them now (``jupyter.widget`` and the control comm that restores a page's widgets).
            widgets.register_comm_target()


#: the kernel class of each flavour of fork master (``fork_master --flavour``)
KERNEL_CLASSES = {
    "python": "components.child.kernel_app.ForkedKernel",
    "sage": "components.child.sage_kernel.ForkedSageKernel",
}


def config_for(connection_file, matplotlib_inline, flavour="python"):
    """The configuration of one forked kernel (of C{flavour}: L{KERNEL_CLASSES})."""
    config = Config()
    config.IPKernelApp.connection_file = connection_file
    config.IPKernelApp.quiet = True
    config.IPKernelApp.kernel_class = KERNEL_CLASSES[flavour]
    # See components.child.kernel_streams: backpressure, no empty flush waits, a cheaper write.
    config.IPKernelApp.outstream_class = "components.child.kernel_streams.KernelOutStream"
    # jupyter_client packs with orjson when it is installed.  Measured: 0.2 ms off an execute,
    # but a print loop then outran the spawner and the kernel passed a 300 MB memory limit
    # (tests/test_security.py); with the standard library's json it stays bounded.
    config.Session.packer = "json"
    config.Session.unpacker = "json"
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
