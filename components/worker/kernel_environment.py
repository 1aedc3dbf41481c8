"""The Python environment kernels run in, apart from the server's own.

Admins choose the kernels' packages without touching the server's: the
spawner's ``kernel_python`` names the interpreter of an environment with
ipykernel, pyseccomp and whatever cells should import (the default,
``.kernel-venv``, is built by ``make setup`` from ``kernel-requirements.txt``).
The fork master and the one-shot template run in it; the project's
``components/child/`` (standard library and IPython only) reaches it through
``PYTHONPATH``.  Empty: the spawner's own interpreter.
"""

import json
import os
import subprocess
import sys

from components.child.sandbox import kernel_path

#: the project directory (relative ``kernel_python`` paths are relative to it)
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PATHS = (
    "import json, sys, sysconfig; "
    "print(json.dumps(sorted({sysconfig.get_paths()[n] for n in ('stdlib', 'platstdlib', 'purelib', 'platlib')} | {sys.prefix})))"
)


#: what every process started in the kernels' environment gets besides PATH, PYTHONPATH and HOME
KERNEL_BASE_ENV = {"LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


class KernelEnvironment:
    def __init__(self, python=""):
        if not python:
            python = sys.executable
        elif not os.path.isabs(python):
            python = os.path.join(PROJECT, python)
        # Not resolved through symlinks: a virtual environment's python is a link, and its prefix is where the link is.
        self.python = os.path.abspath(python)
        if not os.access(self.python, os.X_OK):
            raise RuntimeError(
                "kernel_python {} is not an executable Python; run `make setup` or fix the spawner's kernel_python".format(
                    self.python
                )
            )
        self.bin_dir = os.path.dirname(self.python)
        #: the kernels' PATH (checked once here, not at every fork)
        self.path = kernel_path(self.bin_dir)
        self._prefix = None

    def command(self, module, *args):
        """The command line that runs C{module} (one of components.child) in this environment."""
        return [self.python, "-m", module, *args]

    def env(self, home=None):
        """The whole environment of a process started in it (the fork master, the one-shot template, the probe).

        Built, never inherited: whatever a process is exec'd with stays in the memory of every child it forks
        (``/proc/self/environ`` reads it), and those children are strangers' kernels.  So nothing of the spawner's
        environment gets in (its secrets, ``HOME``, the admin's shell variables); C{home}: a directory of the
        spawner's for the process's caches (Matplotlib's font list), hidden from kernels.
        """
        env = dict(KERNEL_BASE_ENV, PATH=self.path, PYTHONPATH=PROJECT)
        if home is not None:
            env.update(HOME=home, MPLCONFIGDIR=os.path.join(home, "matplotlib"))
        return env

    def paths(self):
        """Directories a kernel must be able to read: the environment's library and prefix, and the project."""
        out = subprocess.run([self.python, "-c", _PATHS], capture_output=True, timeout=60, check=True, text=True)
        return sorted(set(json.loads(out.stdout)) | {PROJECT})

    def prefix(self):
        """The environment's ``sys.prefix`` (where ``pip`` and ``--sys-prefix`` installs put kernelspecs)."""
        if self._prefix is None:
            out = subprocess.run(
                [self.python, "-c", "import sys; print(sys.prefix)"],
                capture_output=True,
                timeout=60,
                check=True,
                text=True,
            )
            self._prefix = out.stdout.strip()
        return self._prefix
