"""L{components.control.held_kernels}: each held kernel is offered once."""

import pytest

pytestmark = pytest.mark.unit


def test_held_kernels_are_offered_once_even_when_a_stale_answer_names_them_again():
    from components.control.held_kernels import HeldKernels

    def kernel(name):
        return {"kernel_id": name, "iopub": "cell.kernel.{}.iopub".format(name), "resume_token": "t-" + name}

    held = HeldKernels(2)
    held.replace("w1", [kernel("a"), kernel("b")])
    assert held.spawners_with_kernels() == ["w1"]
    assert held.take("w1")["kernel_id"] == "a"
    held.replace("w1", [kernel("a"), kernel("b"), kernel("c")])  # an answer sent before "a" was handed out
    assert [held.take("w1")["kernel_id"] for _ in range(2)] == ["b", "c"]
    assert held.take("w1") is None and held.spawners_with_kernels() == []
    held.replace("w2", [kernel("d"), kernel("e")])
    held.discard("d")
    assert held.count("w2") == 1
    held.drop_spawner("w2")
    assert held.take("w2") is None
