"""Turn a kernel's iopub messages into nbformat v4 outputs.

Pure logic, no I/O: an ``OutputCollector`` is fed the iopub messages that
belong to one execute request and keeps the list a notebook would store,
honouring ``clear_output`` (with ``wait``) and ``update_display_data`` and
merging consecutive stream text of the same name.
"""

OUTPUT_MSG_TYPES = frozenset(
    ("stream", "display_data", "execute_result", "error", "clear_output", "update_display_data")
)


def to_output(msg_type, content):
    """The nbformat v4 output for one iopub message, or ``None``.

    ``clear_output`` and ``update_display_data`` have no nbformat form; they
    map to small dicts with those ``output_type`` names so that progressive
    results can carry them to a live view.
    """
    if msg_type == "stream":
        return {"output_type": "stream", "name": content.get("name", "stdout"), "text": content.get("text", "")}
    if msg_type in ("display_data", "update_display_data"):
        out = {
            "output_type": msg_type,
            "data": content.get("data", {}),
            "metadata": content.get("metadata", {}),
        }
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id is not None:
            out["transient"] = {"display_id": display_id}
        return out
    if msg_type == "execute_result":
        return {
            "output_type": "execute_result",
            "execution_count": content.get("execution_count"),
            "data": content.get("data", {}),
            "metadata": content.get("metadata", {}),
        }
    if msg_type == "error":
        return {
            "output_type": "error",
            "ename": content.get("ename", ""),
            "evalue": content.get("evalue", ""),
            "traceback": content.get("traceback", []),
        }
    if msg_type == "clear_output":
        return {"output_type": "clear_output", "wait": bool(content.get("wait", False))}
    return None


class OutputCollector:
    """The outputs of one execution, in order, as a notebook would keep them.

    @ivar outputs: list of nbformat v4 output dicts.
    @ivar output_bytes: approximate size of what was collected so far.
    """

    def __init__(self):
        self.outputs = []
        self.output_bytes = 0
        self._clear_pending = False

    def add(self, output):
        """Fold one output (from L{to_output}) into the list."""
        kind = output["output_type"]
        if kind == "clear_output":
            if output["wait"]:
                self._clear_pending = True
            else:
                self.outputs.clear()
                self._clear_pending = False
            return
        if kind == "update_display_data":
            display_id = output.get("transient", {}).get("display_id")
            for existing in self.outputs:
                if existing.get("transient", {}).get("display_id") == display_id:
                    existing["data"] = output["data"]
                    existing["metadata"] = output["metadata"]
            return
        if self._clear_pending:
            self.outputs.clear()
            self._clear_pending = False
        self.output_bytes += output_size(output)
        last = self.outputs[-1] if self.outputs else None
        if kind == "stream" and last is not None and last["output_type"] == "stream" and last["name"] == output["name"]:
            last["text"] += output["text"]
            return
        self.outputs.append(dict(output))

    def nbformat_outputs(self):
        """The outputs without the transient display ids (nbformat has none)."""
        result = []
        for out in self.outputs:
            if "transient" in out:
                out = {k: v for k, v in out.items() if k != "transient"}
            result.append(out)
        return result


def output_size(output):
    """The size the output caps count for one nbformat output: its text, roughly (binary data counts 64)."""
    kind = output["output_type"]
    if kind == "stream":
        return len(output["text"])
    if kind == "error":
        return sum(len(line) for line in output["traceback"]) + len(output["evalue"])
    return sum(len(v) if isinstance(v, str) else 64 for v in output.get("data", {}).values())
