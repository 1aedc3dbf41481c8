"""The kernels of other languages a worker offers: the kernelspecs it finds, with jupyter_client.

Besides the forked Python kernel (``python3``, always offered), a spawner
offers every Jupyter kernel installed where it looks (or the ones its
``languages`` setting names): the kernel environment's
``<prefix>/share/jupyter/kernels`` (``make setup`` installs bash_kernel's
spec there, ``make languages`` IRkernel's), the system's
``/usr/local/share/jupyter/kernels`` and ``/usr/share/jupyter/kernels``, and
the directories of ``kernelspec_dirs`` first.  Python kernelspecs (an
ipykernel's ``python3``, any spec whose language is Python) are left out:
Python kernels are forked from the warm master instead.  Found once, when
the spawner starts.

With a Sage environment (``sage_python``, ``make sage``), its
``<prefix>/share/jupyter/kernels`` is searched too, after the kernel
environment's: passagemath's GP (``pari_jupyter``), GAP (``gap-4``) and
Singular (``singular``) kernels.  Two of its specs are left out
(L{SAGE_LEFT_OUT}): ``sagemath`` (the spawner forks Sage kernels from a
master of their own) and ``xeus-gp`` (a second GP kernel, which aborts in the
sandbox).  A
kernel found in an environment's directory runs in that environment (an
L{EnvironmentDir}): a bare ``python`` in its ``argv`` is that environment's
interpreter, and its ``PATH`` starts with that environment's programs.
"""

import collections
import glob
import os

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.paths import SYSTEM_JUPYTER_PATH

from components.common import kernelspecs as models
from components.worker.kernel_environment import PROJECT, KernelEnvironment

#: a directory of kernelspecs that belongs to a Python environment: C{python} is its interpreter (unresolved: a
#: virtual environment's is a link), C{left_out} names of kernelspecs the spawner does not launch when it is searched
EnvironmentDir = collections.namedtuple("EnvironmentDir", "path python left_out")

#: the Sage environment's kernelspecs not launched: ``sagemath`` is forked from the Sage master
#: (L{components.worker.sage_offer}); passagemath's ``xeus-gp`` (``sage -sh -c xeus-gp``) aborts at its start in the
#: sandbox ("zmq::error_t: Invalid argument"), and ``pari_jupyter`` is GP already
SAGE_LEFT_OUT = (models.SAGE, "xeus-gp")


def kernels_dir(prefix):
    return os.path.join(prefix, "share", "jupyter", "kernels")


def sage_python(config):
    """The Sage environment's interpreter (C{config.sage_python}, relative to the project), or None when there is none."""
    if not config.sage_python:
        return None
    python = os.path.abspath(os.path.join(PROJECT, config.sage_python))
    return python if os.access(python, os.X_OK) else None


def search_dirs(config, environment):
    """Where C{config}'s spawner looks for kernelspecs, first match winning (see the module docstring)."""
    dirs = list(config.kernelspec_dirs)
    dirs.append(EnvironmentDir(kernels_dir(environment.prefix()), environment.python, ()))
    sage = sage_python(config)
    if sage is not None:
        dirs.append(EnvironmentDir(kernels_dir(KernelEnvironment(sage).prefix()), sage, SAGE_LEFT_OUT))
    dirs.extend(os.path.join(d, "kernels") for d in SYSTEM_JUPYTER_PATH)
    return dirs


def environment_bins(python):
    """The directories of programs of C{python}'s environment, first first: its ``bin``, and before it the programs
    passagemath's wheels bring (``sage_wheels/bin``: ``gap``, ``Singular``, ``gp``; ``sage -sh`` puts them first)."""
    bin_dir = os.path.dirname(python)
    prefix = os.path.dirname(bin_dir)
    wheels = sorted(glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages", "sage_wheels", "bin")))
    return wheels[-1:] + [bin_dir]


def is_python(name, spec):
    return name == models.PYTHON or (spec.language or "").lower().startswith("python")


class Kernelspecs:
    """The kernelspecs a spawner offers besides ``python3``.

    @param dirs: directories of kernelspecs (paths or L{EnvironmentDir}s), first match winning (L{search_dirs}).
    @param wanted: the names to offer (the spawner's C{languages}), or None for every one found.
    @ivar specs: {name: jupyter_client KernelSpec} of the kernels offered.
    @ivar pythons: {name: interpreter} of the offered kernels found in an environment's directory.
    @ivar missing: names in C{wanted} that no directory has (the spawner logs them).
    @ivar manager: the C{KernelSpecManager} that found them; kernel managers read their spec through it.
    """

    def __init__(self, dirs, wanted=None):
        dirs = [d if isinstance(d, EnvironmentDir) else EnvironmentDir(d, None, ()) for d in dirs]
        environments = {os.path.normpath(d.path): d.python for d in reversed(dirs) if d.python}
        left_out = {name for d in dirs for name in d.left_out}
        self.manager = KernelSpecManager(kernel_dirs=[d.path for d in dirs], ensure_native_kernel=False)
        self.specs = {}
        self.pythons = {}
        self.problems = []
        found = {}
        for name in sorted(set(self.manager.find_kernel_specs()) - left_out):
            try:
                spec = self.manager.get_kernel_spec(name)
            except Exception as exc:  # a broken kernel.json must not stop the spawner
                self.problems.append("kernelspec {} is unusable: {}".format(name, exc))
                continue
            if not is_python(name, spec):
                found[name] = spec
        wanted = None if wanted is None else [name for name in wanted if name]
        self.missing = sorted(set(wanted or ()) - set(found) - {models.PYTHON})
        for name, spec in found.items():
            if wanted is None or name in wanted:
                self.specs[name] = spec
                python = environments.get(os.path.dirname(os.path.normpath(spec.resource_dir)))
                if python is not None:
                    self.pythons[name] = python

    def model(self, name):
        """One offered kernelspec in Jupyter's REST shape."""
        spec = self.specs[name]
        return models.rest_model(name, spec.display_name or name, spec.language or name, spec.interrupt_mode, {})

    def models(self):
        """Every kernel offered, ``python3`` included: {name: REST model} (what the spawner announces)."""
        offered = {models.PYTHON: models.PYTHON_MODEL}
        offered.update((name, self.model(name)) for name in self.specs)
        return offered

    def names(self):
        return models.names(self.models())
