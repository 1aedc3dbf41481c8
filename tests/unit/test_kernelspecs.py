"""L{components.common.kernelspecs}: python3's kernelspec is defined once, and every process answers that one."""

import pytest

from components.common import kernelspecs
from components.worker.kernelspecs import Kernelspecs

pytestmark = pytest.mark.unit


def test_python3_has_one_spec_whoever_answers(tmp_path):
    announced = Kernelspecs([str(tmp_path)]).models()  # what a spawner with no other language announces
    assert announced == {kernelspecs.PYTHON: kernelspecs.PYTHON_MODEL}
    assert kernelspecs.merged([announced])["kernelspecs"][kernelspecs.PYTHON] == kernelspecs.PYTHON_MODEL
    assert kernelspecs.merged(())["kernelspecs"] == {kernelspecs.PYTHON: kernelspecs.PYTHON_MODEL}  # the face's
    spec = kernelspecs.PYTHON_MODEL["spec"]
    assert spec["display_name"] == "Python 3 (cellserver)" and spec["language"] == "python"


def test_a_spec_in_rest_shape_tells_nothing_of_the_workers_disk():
    model = kernelspecs.rest_model("bash", "Bash", "bash", "message", {"x": 1})
    assert model["spec"]["argv"] == [] and model["spec"]["env"] == {} and model["spec"]["metadata"] == {"x": 1}


def test_merged_keeps_python3_first_and_the_first_spawners_spec():
    one = {"bash": kernelspecs.rest_model("bash", "Bash one", "bash")}
    two = {"bash": kernelspecs.rest_model("bash", "Bash two", "bash")}
    merged = kernelspecs.merged([one, two, None])
    assert merged["default"] == "python3" and merged["kernelspecs"]["bash"]["spec"]["display_name"] == "Bash one"
    assert kernelspecs.names(merged["kernelspecs"]) == "python3, bash"
