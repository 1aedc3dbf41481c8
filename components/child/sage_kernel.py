"""Sage kernels forked from a master that imported Sage and ran what a first cell touches.

Sage's reason for a preloaded master is its start: ``import sage.all`` takes
seconds, and Sage loads most of itself lazily besides: the first
``integrate`` starts Maxima (in ECL), the first ``plot`` Matplotlib's Agg
path and fonts, the first ``libgap`` call GAP's workspace, the first
``show`` the LaTeX printers.  A master that only imported ``sage.all`` left
each of those costs (1-5 s each here) to every kernel.  So the Sage master
(``python -m components.child.fork_master --flavour sage``, started in the
Sage environment by the spawner) runs L{preload} once, and every kernel
forked from it starts with all of that done, shared copy-on-write.

The kernel is passagemath's own (C{SageKernel}: the preparser, Sage's rich
output, ``@interact`` on ipywidgets, ``sage.all`` in the namespace) with the
forked Python kernel's changes (L{components.child.kernel_app}): no copy of
every output, no subshells, no debugger's walk of every module.  Nothing
here may be imported by the Python master: it would import Sage.
"""

import io
import os
import sys
import tempfile

from sage.repl.ipython_kernel.kernel import SageKernel, SageZMQInteractiveShell
from traitlets import Type

from components.child.kernel_app import Forked
from components.child.output_history import WithoutOutputTee

#: what the Sage master runs once, so that no kernel pays for it: each line loads one lazy part of Sage
WARM_UP = (
    ("pari", "factor(2^64 + 1)"),
    ("symbolics and maxima", "integrate(sin(x)^2, x); solve(x^2 - 2 == 0, x); limit(sin(x)/x, x=0)"),
    ("latex", "latex(integrate(sin(x)^2, x)); latex(matrix(QQ, 2, [1, 2, 3, 4]))"),
    ("gap", "libgap.SymmetricGroup(5).Size(); SymmetricGroup(4).cardinality()"),
    ("plot", "_warm_up_png(plot(sin(x), (x, 0, pi)))"),
    ("plot3d", "y = var('y'); _warm_up_3d(plot3d(x*y, (x, -1, 1), (y, -1, 1)))"),
    ("polynomials", "R = PolynomialRing(QQ, 'y'); R.gen()^2 - 1; (R.gen()^2 - 1).factor()"),
    ("interact", "import sage.repl.ipython_kernel.all_jupyter"),
)


class ForkedSageShell(WithoutOutputTee, SageZMQInteractiveShell):
    """Sage's notebook shell (preparser, rich output), minus IPython's copy of every output."""


class ForkedSageKernel(Forked, SageKernel):
    """passagemath's C{SageKernel} with the forked kernel's changes (see the module docstring)."""

    shell_class = Type(ForkedSageShell)


def preload():
    """In the Sage master: import Sage and run L{WARM_UP}; return the names of the parts warmed up.

    The warm-up runs in a namespace of its own that is dropped afterwards, with
    Sage's preparser, as a user's cell would; what stays is what Sage caches
    in its modules (Maxima's and GAP's state, fonts, the printers).
    """
    # Sage makes its temporary directory when it is imported: the master's goes into its own private home, not the
    # host's /tmp (where every master would leave one behind); each kernel makes its own (L{in_child}).
    tempfile.tempdir = os.path.join(os.environ.get("HOME") or tempfile.gettempdir(), "tmp")
    os.makedirs(tempfile.tempdir, mode=0o700, exist_ok=True)
    import sage.all  # noqa: F401
    from sage.repl.ipython_kernel import all_jupyter
    from sage.repl.preparse import preparse

    namespace = dict(vars(all_jupyter))
    namespace.update(_warm_up_png=_warm_up_png, _warm_up_3d=_warm_up_3d)
    warmed = []
    for part, code in WARM_UP:
        try:
            exec(compile(preparse(code), "<warm-up {}>".format(part), "exec"), namespace)
        except Exception as exc:  # a part Sage lacks here: its kernels pay for it at first use, nothing breaks
            sys.stderr.write("fork_master: Sage warm-up of {} failed: {!r}\n".format(part, exc))
            continue
        warmed.append(part)
    namespace.clear()
    return warmed


def _warm_up_png(graphics):
    """Render C{graphics} to PNG in memory, as a kernel's first plot does (Agg, fonts, the figure code)."""
    graphics.matplotlib().savefig(io.BytesIO(), format="png")


def _warm_up_3d(graphics):
    """Build the three.js scene Sage's notebook backend sends for a 3D plot (its JSON and templates)."""
    from sage.repl.rich_output import get_display_manager

    manager = get_display_manager()
    try:
        graphics._rich_repr_threejs(manager)
    except Exception:
        graphics.json_repr(graphics.default_render_params())


def in_child(home):
    """In a forked Sage kernel, before its app starts: Sage's per-user paths point into the kernel's own home.

    The master computed them from its own HOME (the spawner's private
    directory, hidden from kernels); the standard library's temporary
    directory is found again from the kernel's ``TMPDIR``, and Sage's own
    temporary directory (made at import, in the master's) is made anew there:
    with the master's, every plot3d failed ("No such file or directory").
    """
    import sage.env
    import sage.misc.temporary_file

    dot_sage = os.path.join(home, ".sage")
    os.environ["DOT_SAGE"] = dot_sage
    sage.env.DOT_SAGE = dot_sage
    sage.env.SAGE_STARTUP_FILE = os.path.join(dot_sage, "init.sage")
    tempfile.tempdir = None
    inherited = sage.misc.temporary_file.TMP_DIR_FILENAME_BASE
    finalizer = getattr(inherited, "_finalizer", None)
    if finalizer is not None:
        finalizer.detach()  # the master's directory is not the kernel's to remove (nor visible to it)
    sage.misc.temporary_file.TMP_DIR_FILENAME_BASE = tempfile.TemporaryDirectory(prefix="sage_")
