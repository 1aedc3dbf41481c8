"""Keep IPython from keeping every output a kernel ever printed.

IPython 9 records every cell's outputs for its ``%notebook`` export: each
string written to stdout or stderr (its ``_tee`` wraps the streams' ``write``
during ``run_cell``), each displayed MIME bundle and each result goes into
``HistoryManager.outputs``, a dict shared by the class, kept for the life of
the process.  So a kernel's memory grew with everything it printed: a flood
such as ``while True: print("x" * 10000)`` passed a 300 MB memory limit in
about a tenth of a second, whatever cap the spawner put on what it forwards.

Forked kernels and one-shot children keep none of it: outputs go to the
caller, never into the kernel's memory.  ``%notebook`` exports code only.
"""

import contextlib

from IPython.core.history import HistoryManager


class DiscardedOutputs(dict):
    """A ``HistoryManager.outputs`` that stores nothing: every lookup is a fresh, unkept list."""

    def __missing__(self, execution_count):
        return []

    def __setitem__(self, execution_count, outputs):
        pass


class WithoutOutputTee:
    """Mixin for an ``InteractiveShell`` class: ``run_cell`` leaves the streams' ``write`` alone."""

    @contextlib.contextmanager
    def _tee(self, channel):
        yield


def forget_outputs():
    """In a fork master or one-shot template, before it forks: outputs are never kept."""
    HistoryManager.outputs = DiscardedOutputs()
