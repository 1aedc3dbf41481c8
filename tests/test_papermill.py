"""papermill, unchanged, through jupyter_server's ``GatewayKernelManager`` against the node's Jupyter face (anonymous):
a parameterized notebook executed with injected parameters, its outputs checked, and a failing run's error kept.

papermill runs in ``.jupyter-venv`` (tests/jupyter-requirements.txt), as a subprocess; run only these:
``pytest -m jupyter tests/test_papermill.py``.
"""

import json
import os
import subprocess

import pytest

from tests.jupyter_clients import JUPYTER_PYTHON, NodeFace, jupyter_env
from tests.test_jupyter_clients import wait_for_face

pytestmark = pytest.mark.jupyter

#: papermill's Python API with nbclient's kernel manager class set to the gateway's (its CLI cannot set it)
RUN = """
import json, sys
import papermill
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayKernelManager

GatewayClient.instance().url = sys.argv[1]
GatewayClient.instance().auth_token = ""
try:
    papermill.execute_notebook(
        sys.argv[2], sys.argv[3], parameters=json.loads(sys.argv[4]), kernel_name="python3",
        kernel_manager_class=GatewayKernelManager, start_timeout=60, execution_timeout=60, progress_bar=False,
    )
except papermill.PapermillExecutionError as error:
    print(json.dumps({"failed": error.ename}))
else:
    print(json.dumps({"failed": None}))
"""


def code_cell(source, tags=()):
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": "c{}".format(abs(hash(source)) % 10**8),
        "metadata": {"tags": list(tags)},
        "outputs": [],
        "source": source,
    }


NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        code_cell('n = 2\nname = "default"', tags=["parameters"]),
        code_cell('assert n > 0, "n must be positive"\nprint("{}: {}".format(name, n ** 10))'),
        code_cell("import sys\nprint(sys.executable)"),
        code_cell('{"n": n, "squares": [i * i for i in range(n)]}'),
    ],
}


@pytest.fixture(scope="module")
def face(node):
    return wait_for_face(NodeFace(node, None))


def papermill(face, tmp_path, parameters):
    source, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    source.write_text(json.dumps(NOTEBOOK))
    result = subprocess.run(
        [JUPYTER_PYTHON, "-c", RUN, face.url, str(source), str(out), json.dumps(parameters)],
        env=jupyter_env(tmp_path),
        cwd=str(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-6000:])
    return json.loads(result.stdout.strip().splitlines()[-1])["failed"], json.loads(out.read_text())


def texts(cell):
    return "".join(
        "".join(o.get("text", "")) if o["output_type"] == "stream" else json.dumps(o.get("data", {}))
        for o in cell["outputs"]
    )


def test_papermill_injects_parameters_and_runs_the_notebook_on_the_nodes_kernel(face, tmp_path):
    failed, nb = papermill(face, tmp_path, {"n": 7, "name": "node"})
    assert failed is None
    tags = [c["metadata"].get("tags", []) for c in nb["cells"]]
    assert tags[1] == ["injected-parameters"], tags
    assert "n = 7" in "".join(nb["cells"][1]["source"])
    assert texts(nb["cells"][2]) == "node: 282475249\n"
    executable = texts(nb["cells"][3]).strip()
    assert os.path.join(".kernel-venv", "bin") in executable and ".jupyter-venv" not in executable, executable
    result = nb["cells"][4]["outputs"][0]
    assert result["output_type"] == "execute_result" and "'squares': [0, 1, 4, 9, 16, 25, 36]" in json.dumps(result)
    assert nb["metadata"]["papermill"]["parameters"] == {"n": 7, "name": "node"}
    assert all(c["metadata"]["papermill"]["status"] == "completed" for c in nb["cells"])


def test_a_failing_parameter_stops_the_run_and_the_error_is_in_the_output_notebook(face, tmp_path):
    failed, nb = papermill(face, tmp_path, {"n": -1})
    assert failed == "AssertionError"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    error = [o for o in code[2]["outputs"] if o["output_type"] == "error"]
    assert error and error[0]["evalue"] == "n must be positive", code[2]["outputs"]
    assert code[3]["outputs"] == [] and code[3]["metadata"]["papermill"]["status"] == "pending"
    assert "An Exception was encountered" in json.dumps(nb["cells"][0]), "papermill's marker of the failed cell"
