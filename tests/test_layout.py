"""The tree shows the processes, and each process loads only what it should.

Each module is imported in a fresh interpreter (nothing else loaded first)
and ``sys.modules`` is checked: what a forked kernel imports never pulls in
Twisted or autobahn (a kernel is a fork of the fork master: whatever the
master loaded is in every kernel), and the control plane never loads ZMQ or
jupyter_client.
"""

import ast
import json
import os
import subprocess
import sys

import pytest

from tests.node import ROOT

pytestmark = pytest.mark.unit

PACKAGES = os.path.join(ROOT, "components")


def modules_of(package):
    names = sorted(
        f[:-3] for f in os.listdir(os.path.join(PACKAGES, package)) if f.endswith(".py") and f != "__init__.py"
    )
    return ["components.{}.{}".format(package, name) for name in names]


#: modules that run in another environment than the server's: the Sage master's (``make sage``)
INTERPRETERS = {"components.child.sage_kernel": os.path.join(ROOT, ".sage-venv", "bin", "python")}


def loaded_by(module):
    code = "import importlib, json, sys; importlib.import_module({!r}); print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))".format(
        module
    )
    python = INTERPRETERS.get(module, sys.executable)
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", modules_of("child"))
def test_what_a_kernel_imports_has_no_twisted_or_autobahn(module):
    assert not loaded_by(module) & {"twisted", "autobahn", "txaio", "crossbar"}


@pytest.mark.parametrize("module", modules_of("control") + ["components.session_router"])
def test_the_control_plane_loads_no_zmq_or_jupyter_client(module):
    assert not loaded_by(module) & {"zmq", "jupyter_client", "ipykernel", "IPython"}


@pytest.mark.parametrize("module", modules_of("common") + modules_of("router"))
def test_common_and_router_modules_load_no_kernel_machinery(module):
    assert not loaded_by(module) & {"zmq", "jupyter_client", "ipykernel", "IPython"}


def test_the_control_plane_and_the_router_import_no_worker_or_child_code():
    for package in ("control", "router", "common"):
        for name in os.listdir(os.path.join(PACKAGES, package)):
            if name.endswith(".py"):
                with open(os.path.join(PACKAGES, package, name)) as f:
                    text = f.read()
                assert "components.worker" not in text.replace("L{components.worker", "") or package == "common", (
                    package,
                    name,
                )
                assert "from components.worker" not in text and "from components.child" not in text, (package, name)


def test_common_code_imports_no_process_specific_package():
    for name in os.listdir(os.path.join(PACKAGES, "common")):
        if name.endswith(".py"):
            with open(os.path.join(PACKAGES, "common", name)) as f:
                text = f.read()
            for package in ("control", "router", "worker", "child"):
                assert "from components.{}".format(package) not in text, (name, package)


#: the largest module and class in components/ (issue 20): a hub that grows past them is split by concern
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250


def _sources():
    for folder, _dirs, files in os.walk(PACKAGES):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def test_no_module_or_class_in_components_is_a_hub():
    too_big = []
    for path in _sources():
        with open(path) as f:
            text = f.read()
        where = os.path.relpath(path, ROOT)
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            too_big.append("{}: {} lines".format(where, lines))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                too_big.append("{}: class {} {} lines".format(where, node.name, node.end_lineno - node.lineno + 1))
    assert not too_big, "split by concern (docs/architecture.md says where each kind of change goes):\n" + "\n".join(
        too_big
    )
