"""L{components.worker.exec_kernel_process}: the command and ``PATH`` of a launched kernel of another language."""

import json
import os

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from components.worker.exec_kernel_process import (
    PORT_NAMES,
    SandboxedKernelManager,
    link_colon_addresses,
    path_in_environment,
)

pytestmark = pytest.mark.unit


def _manager(tmp_path, argv, python):
    os.makedirs(tmp_path / "kernels" / "k")
    with open(tmp_path / "kernels" / "k" / "kernel.json", "w") as f:
        json.dump({"argv": argv, "display_name": "K", "language": "k"}, f)
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    manager = SandboxedKernelManager(
        kernel_name="k", kernel_spec_manager=specs, connection_file=str(tmp_path / "connection.json")
    )
    manager.kernel_python = python
    return manager


@pytest.mark.parametrize("bare", ["python", "python3"])
def test_a_bare_python_is_the_kernels_environments(tmp_path, bare):
    manager = _manager(
        tmp_path, [bare, "-m", "jupyter_kernel_singular", "-f", "{connection_file}"], "/envs/sage/bin/python"
    )
    cmd = manager.format_kernel_cmd()
    assert cmd == ["/envs/sage/bin/python", "-m", "jupyter_kernel_singular", "-f", str(tmp_path / "connection.json")]


def test_any_other_program_is_left_as_the_spec_names_it(tmp_path):
    manager = _manager(tmp_path, ["jupyter-kernel-gap", "{connection_file}"], "/envs/sage/bin/python")
    assert manager.format_kernel_cmd() == ["jupyter-kernel-gap", str(tmp_path / "connection.json")]
    other = _manager(tmp_path / "other", ["/usr/bin/python3", "-m", "x"], "/envs/sage/bin/python")
    assert other.format_kernel_cmd()[0] == "/usr/bin/python3", "only a bare name is replaced"


def test_a_kernel_of_another_environment_finds_its_programs_first(tmp_path):
    env = tmp_path / "sage"
    wheels = env / "lib" / "python3.11" / "site-packages" / "sage_wheels" / "bin"
    wheels.mkdir(parents=True)
    (env / "bin").mkdir()
    usual = "/envs/kernels/bin:/usr/bin:/bin"
    python = str(env / "bin" / "python")
    assert path_in_environment(usual, python, "/envs/kernels/bin/python") == ":".join(
        [str(wheels), str(env / "bin"), usual]
    )
    assert path_in_environment(usual, "/envs/kernels/bin/python", "/envs/kernels/bin/python") == usual
    assert path_in_environment(usual, None, "/envs/kernels/bin/python") == usual, "a spec of no environment"
    missing = str(tmp_path / "gone" / "bin" / "python")
    assert path_in_environment(usual, missing, "/x") == usual, "no directory that is not there"


def test_a_kernel_binding_ip_colon_port_is_found_where_the_spawner_connects(tmp_path):
    """GAP's kernel binds ``<ip>:<port>``; the spawner's channels connect to jupyter_client's ``<ip>-<port>``."""
    import socket

    connection = dict(zip(PORT_NAMES, range(1, 6)), ip=str(tmp_path / "k"))
    link_colon_addresses(connection)
    assert sorted(os.listdir(tmp_path)) == ["k-{}".format(port) for port in range(1, 6)]
    with socket.socket(socket.AF_UNIX) as kernel, socket.socket(socket.AF_UNIX) as spawner:
        kernel.bind(str(tmp_path / "k:1"))  # where GAP binds its shell channel
        kernel.listen(1)
        spawner.connect(str(tmp_path / "k-1"))  # through the link
        kernel.accept()[0].close()
