"""Kernelspecs as clients see them: Jupyter's REST shape (``GET /api/kernelspecs``), pure data.

Each spawner announces the kernels it offers in its ``info``
(L{components.worker.kernelspecs} finds them); the session router merges
what its spawners announce into the answer of ``cell.kernelspecs``.  The
forked Python kernel is ``python3`` on every spawner.  A spec's ``argv`` and
``env`` describe a worker's disk, so they travel empty.
"""

#: the forked Python kernel's name, the default of every start
PYTHON = "python3"
#: the forked Sage kernel's name (as passagemath's own kernelspec names it), offered where a Sage environment is
SAGE = "sagemath"


def rest_model(name, display_name, language, interrupt_mode="signal", metadata=None):
    """One kernelspec in Jupyter's REST shape (``argv`` and ``env`` emptied: they describe the worker)."""
    return {
        "name": name,
        "spec": {
            "display_name": display_name,
            "language": language,
            "argv": [],
            "interrupt_mode": interrupt_mode,
            "env": {},
            "metadata": dict(metadata or {}),
        },
        "resources": {},
    }


#: the forked Python kernel's spec (L{components.child.kernel_app}), the one definition of it: the spawners
#: announce it, the session router lists it, the Jupyter face answers it (no debugger: the sandbox has none)
PYTHON_MODEL = rest_model(PYTHON, "Python 3 (cellserver)", "python", metadata={"debugger": False})


def merged(announced):
    """``cell.kernelspecs()``: the union of what spawners announced (an iterable of {name: model}).

    ``python3`` is always listed and is the default; for a name two spawners
    announce, the first one's spec is kept.
    """
    specs = {PYTHON: PYTHON_MODEL}
    for kernelspecs in announced:
        for name, model in sorted((kernelspecs or {}).items()):
            specs.setdefault(name, model)
    return {"default": PYTHON, "kernelspecs": specs}


def names(kernelspecs):
    """The names of C{kernelspecs} for a message: ``python3`` first, then the others sorted."""
    others = sorted(name for name in kernelspecs if name != PYTHON)
    return ", ".join(([PYTHON] if PYTHON in kernelspecs else []) + others)
