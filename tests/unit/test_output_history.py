"""L{components.child.output_history}: IPython keeps no copy of outputs."""

import pytest

pytestmark = pytest.mark.unit


def test_ipython_keeps_no_copy_of_outputs():
    from components.child.output_history import DiscardedOutputs

    outputs = DiscardedOutputs()
    outputs[3].append("x" * 1000)
    outputs[3] = ["y"]
    assert 3 not in outputs and outputs[3] == [] and len(outputs) == 0
