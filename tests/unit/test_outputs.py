"""L{components.worker.outputs}: iopub messages folded into nbformat outputs."""

import pytest

from components.worker.outputs import OutputCollector, to_output

pytestmark = pytest.mark.unit


def fold(*messages):
    collector = OutputCollector()
    for msg_type, content in messages:
        collector.add(to_output(msg_type, content))
    return collector.nbformat_outputs()


def test_consecutive_streams_of_one_name_merge():
    assert fold(
        ("stream", {"name": "stdout", "text": "a"}),
        ("stream", {"name": "stdout", "text": "b"}),
        ("stream", {"name": "stderr", "text": "c"}),
        ("stream", {"name": "stdout", "text": "d"}),
    ) == [
        {"output_type": "stream", "name": "stdout", "text": "ab"},
        {"output_type": "stream", "name": "stderr", "text": "c"},
        {"output_type": "stream", "name": "stdout", "text": "d"},
    ]


def test_clear_output_now_and_with_wait():
    assert fold(
        ("stream", {"name": "stdout", "text": "a"}),
        ("clear_output", {"wait": False}),
        ("stream", {"name": "stdout", "text": "b"}),
    ) == [{"output_type": "stream", "name": "stdout", "text": "b"}]
    waited = fold(("stream", {"name": "stdout", "text": "a"}), ("clear_output", {"wait": True}))
    assert waited == [{"output_type": "stream", "name": "stdout", "text": "a"}], (
        "wait=True keeps the output until the next one"
    )
    assert fold(
        ("stream", {"name": "stdout", "text": "a"}),
        ("clear_output", {"wait": True}),
        ("stream", {"name": "stdout", "text": "b"}),
    ) == [{"output_type": "stream", "name": "stdout", "text": "b"}]


def test_update_display_data_replaces_by_display_id():
    out = fold(
        ("display_data", {"data": {"text/plain": "1"}, "metadata": {}, "transient": {"display_id": "p"}}),
        ("display_data", {"data": {"text/plain": "other"}, "metadata": {}}),
        ("update_display_data", {"data": {"text/plain": "2"}, "metadata": {}, "transient": {"display_id": "p"}}),
    )
    assert out == [
        {"output_type": "display_data", "data": {"text/plain": "2"}, "metadata": {}},
        {"output_type": "display_data", "data": {"text/plain": "other"}, "metadata": {}},
    ]


def test_execute_result_and_error_shapes():
    assert to_output("execute_result", {"execution_count": 3, "data": {"text/plain": "2"}, "metadata": {}}) == {
        "output_type": "execute_result",
        "execution_count": 3,
        "data": {"text/plain": "2"},
        "metadata": {},
    }
    assert to_output("error", {"ename": "E", "evalue": "v", "traceback": ["t"]}) == {
        "output_type": "error",
        "ename": "E",
        "evalue": "v",
        "traceback": ["t"],
    }
    assert to_output("status", {"execution_state": "idle"}) is None
