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
"""

import os

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.paths import SYSTEM_JUPYTER_PATH

from components.common import kernelspecs as models


def search_dirs(config, environment):
    """Where C{config}'s spawner looks for kernelspecs, first match winning (see the module docstring)."""
    dirs = list(config.kernelspec_dirs)
    dirs.append(os.path.join(environment.prefix(), "share", "jupyter", "kernels"))
    dirs.extend(os.path.join(d, "kernels") for d in SYSTEM_JUPYTER_PATH)
    return dirs


def is_python(name, spec):
    return name == models.PYTHON or (spec.language or "").lower().startswith("python")


class Kernelspecs:
    """The kernelspecs a spawner offers besides ``python3``.

    @param dirs: directories of kernelspecs, first match winning (L{search_dirs}).
    @param wanted: the names to offer (the spawner's C{languages}), or None for every one found.
    @ivar specs: {name: jupyter_client KernelSpec} of the kernels offered.
    @ivar missing: names in C{wanted} that no directory has (the spawner logs them).
    @ivar manager: the C{KernelSpecManager} that found them; kernel managers read their spec through it.
    """

    def __init__(self, dirs, wanted=None):
        self.manager = KernelSpecManager(kernel_dirs=list(dirs), ensure_native_kernel=False)
        self.specs = {}
        self.problems = []
        found = {}
        for name in sorted(self.manager.find_kernel_specs()):
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
