"""Whether a spawner offers forked Sage kernels (``sagemath``), in which environment, under which kernelspec.

The spawner's ``sage_python`` names the interpreter of a Sage environment
(``make sage`` builds ``.sage-venv`` from ``sage-requirements.txt``).  When it is
set and there, ``sagemath`` kernels are forked from a Sage master of their own
(L{components.child.sage_kernel}); when it is set but missing, the spawner
says once how to get Sage and offers the rest, so ``make run`` works with or
without it.
"""

import json
import os

from components.common import kernelspecs as models
from components.worker.kernel_environment import PROJECT, KernelEnvironment

#: what a spawner configured for Sage but without its environment logs
HOW_TO_GET_SAGE = (
    "Sage is not installed here ({python} is missing): `make sage` installs it (passagemath from PyPI, "
    "about 4.3 GB and a few minutes), then restart the node; until then `sagemath` is not offered"
)


class SageOffer:
    """Found once, when the spawner is made (before its reactor runs: it asks the environment's interpreter).

    @ivar environment: the Sage environment (a L{KernelEnvironment}), or None when Sage is not offered.
    @ivar missing: why Sage is not offered though configured (a message for the log), or None."""

    def __init__(self, sage_python):
        self.environment = None
        self.missing = None
        if not sage_python:
            return
        python = sage_python if os.path.isabs(sage_python) else os.path.join(PROJECT, sage_python)
        if not os.access(python, os.X_OK):
            self.missing = HOW_TO_GET_SAGE.format(python=python)
            return
        self.environment = KernelEnvironment(python)
        self._model = self._read_model()

    @property
    def offered(self):
        return self.environment is not None

    def model(self):
        """The ``sagemath`` kernelspec in Jupyter's REST shape, named as passagemath's own kernelspec names it."""
        return self._model

    def _read_model(self):
        display = "SageMath"
        spec_file = os.path.join(self.environment.prefix(), "share", "jupyter", "kernels", models.SAGE, "kernel.json")
        try:
            with open(spec_file) as f:
                display = json.load(f).get("display_name") or display
        except (OSError, ValueError):
            pass
        return models.rest_model(models.SAGE, display, "sage", "signal", {"debugger": False})
