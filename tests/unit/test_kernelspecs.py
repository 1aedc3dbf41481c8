"""L{components.common.kernelspecs}: python3's kernelspec is defined once, and every process answers that one;
L{components.worker.kernelspecs}: where a spawner looks, and which environment a kernel it finds runs in."""

import dataclasses
import json
import os

import pytest

from components.common import kernelspecs
from components.common.config import SpawnerConfig
from components.worker.kernel_environment import PROJECT
from components.worker.kernelspecs import (
    SAGE_LEFT_OUT,
    EnvironmentDir,
    Kernelspecs,
    environment_bins,
    sage_python,
    search_dirs,
)

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


def _spec(directory, name, language, argv=("prog", "{connection_file}")):
    os.makedirs(os.path.join(directory, name))
    with open(os.path.join(directory, name, "kernel.json"), "w") as f:
        json.dump({"argv": list(argv), "display_name": name.upper(), "language": language}, f)


def test_a_kernel_found_in_an_environments_directory_runs_with_that_environments_python(tmp_path):
    plain, sage = str(tmp_path / "plain"), str(tmp_path / "sage")
    _spec(plain, "bash", "bash")
    _spec(sage, "singular", "singular", argv=("python", "-m", "jupyter_kernel_singular", "-f", "{connection_file}"))
    _spec(sage, kernelspecs.SAGE, "sage", argv=("python3", "-m", "sage.repl.ipython_kernel"))
    found = Kernelspecs([plain, EnvironmentDir(sage + "/", "/envs/sage/bin/python", (kernelspecs.SAGE,))])
    assert sorted(found.specs) == ["bash", "singular"], "a name the spawner forks is never launched from its spec"
    assert found.pythons == {"singular": "/envs/sage/bin/python"}, "bash belongs to no environment"
    assert kernelspecs.SAGE not in found.models()
    offered = Kernelspecs([EnvironmentDir(sage, "/envs/sage/bin/python", ())])
    assert kernelspecs.SAGE in offered.specs, "without a fork of it (no Sage master), a sagemath spec is a spec"


def test_the_first_directory_of_a_name_decides_its_environment(tmp_path):
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    _spec(first, "gp", "gp")
    _spec(second, "gp", "gp")
    found = Kernelspecs([first, EnvironmentDir(second, "/envs/sage/bin/python", ())])
    assert found.pythons == {}, "the gp spec offered is the first directory's, which belongs to no environment"


def test_the_sage_environment_is_searched_after_the_kernels_and_before_the_systems(tmp_path):
    sage = tmp_path / "sage-venv" / "bin" / "python"
    sage.parent.mkdir(parents=True)
    sage.write_text("#!/bin/sh\necho {}\n".format(tmp_path / "sage-venv"))  # what sys.prefix is
    sage.chmod(0o755)

    class Environment:
        python = "/envs/kernels/bin/python"

        def prefix(self):
            return "/envs/kernels"

    config = dataclasses.replace(SpawnerConfig(), kernelspec_dirs=("/admin/kernels",), sage_python=str(sage))
    dirs = search_dirs(config, Environment())
    assert dirs[:3] == [
        "/admin/kernels",
        EnvironmentDir("/envs/kernels/share/jupyter/kernels", "/envs/kernels/bin/python", ()),
        EnvironmentDir(str(tmp_path / "sage-venv" / "share" / "jupyter" / "kernels"), str(sage), SAGE_LEFT_OUT),
    ]
    assert all(isinstance(d, str) for d in dirs[3:]), "the system's directories belong to no environment"
    for missing in ("", str(tmp_path / "nowhere" / "python")):
        dirs = search_dirs(dataclasses.replace(config, sage_python=missing), Environment())
        assert not any(isinstance(d, EnvironmentDir) and d.left_out for d in dirs), "no Sage environment, no Sage dir"
    assert sage_python(dataclasses.replace(config, sage_python=".sage-venv/bin/python")) in (
        None,
        os.path.join(PROJECT, ".sage-venv", "bin", "python"),
    ), "relative to the project"


def test_an_environments_programs_are_its_bin_and_passagemaths_wheels(tmp_path):
    wheels = tmp_path / "lib" / "python3.11" / "site-packages" / "sage_wheels" / "bin"
    wheels.mkdir(parents=True)
    python = str(tmp_path / "bin" / "python")
    assert environment_bins(python) == [str(wheels), str(tmp_path / "bin")]
    assert environment_bins("/envs/plain/bin/python") == ["/envs/plain/bin"]
