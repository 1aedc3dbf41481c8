"""What a run gives back (:class:`Execution`) and how its live outputs reach the caller's callbacks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__all__ = ["Execution", "Callbacks"]

log = logging.getLogger("cellclient")

#: a callback given text (``on_stdout``, ``on_stderr``)
TextCallback = Callable[[str], Any]
#: a callback given an nbformat output dict (``on_display``, ``on_output``)
OutputCallback = Callable[[dict[str, Any]], Any]


@dataclass
class Callbacks:
    """The caller's callbacks for one run; each is called in the order the outputs were made, once per output.

    :ivar on_stdout: text the code printed (a chunk at a time).
    :ivar on_stderr: text written to standard error.
    :ivar on_display: ``display_data``, ``execute_result`` and ``update_display_data`` outputs (nbformat dicts).
    :ivar on_output: every output, whatever its type (``stream``, ``error``, ``clear_output``, ...).
    """

    on_stdout: Optional[TextCallback] = None
    on_stderr: Optional[TextCallback] = None
    on_display: Optional[OutputCallback] = None
    on_output: Optional[OutputCallback] = None

    def deliver(self, output: dict[str, Any]) -> None:
        """Hand one output to the callbacks that want it; a callback that raises is logged, not propagated."""
        kind = output.get("output_type")
        try:
            if self.on_output is not None:
                self.on_output(output)
            if kind == "stream":
                target = self.on_stdout if output.get("name") == "stdout" else self.on_stderr
                if target is not None:
                    target(output.get("text", ""))
            elif kind in ("display_data", "execute_result", "update_display_data") and self.on_display is not None:
                self.on_display(output)
        except Exception:
            log.exception("a cellclient output callback raised")


def _bytes_of(data: Any) -> Optional[bytes]:
    if data is None:
        return None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    return str(data).encode()


@dataclass
class Execution:
    """One run's outcome, as the node answered it (docs/api.md, "Execution result").

    :ivar status: ``"ok"``, ``"error"``, ``"aborted"`` or ``"timeout"``.
    :ivar outputs: the nbformat v4 outputs, in order (stream text of one name merged, as a notebook shows them).
    :ivar result: the ``execute_result``'s data (``{"text/plain": ...}``), or None when the code had no value.
    :ivar error: ``{"ename", "evalue", "traceback"}`` when the code raised, else None.
    :ivar files: files the run made or changed: name -> bytes when the node sent them (a one-shot with
        ``return_files``), else name -> None.
    :ivar execution: the kernel's number for this run (from 1), when the node keeps executions; else None.
    :ivar tag: the tag the client gave this run (how it re-attaches after a reconnect), or None.
    :ivar raw: the whole result the node sent.
    """

    status: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    result: Optional[dict[str, Any]] = None
    error: Optional[dict[str, Any]] = None
    files: dict[str, Optional[bytes]] = field(default_factory=dict)
    execution_count: Optional[int] = None
    execution: Optional[int] = None
    tag: Optional[str] = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def stdout(self) -> str:
        """Everything printed to standard output."""
        return self._stream("stdout")

    @property
    def stderr(self) -> str:
        """Everything written to standard error."""
        return self._stream("stderr")

    @property
    def text(self) -> Optional[str]:
        """The value's ``text/plain`` form, or None."""
        return None if self.result is None else self.result.get("text/plain")

    def _stream(self, name: str) -> str:
        return "".join(
            o.get("text", "") for o in self.outputs if o.get("output_type") == "stream" and o.get("name") == name
        )

    @classmethod
    def from_result(cls, raw: dict[str, Any], tag: Optional[str] = None) -> "Execution":
        """An :class:`Execution` from the node's execution result dict."""
        outputs = list(raw.get("outputs") or [])
        result = None
        for output in outputs:
            if output.get("output_type") == "execute_result":
                result = output.get("data")
        error = None
        if raw.get("status") == "error" or "ename" in raw:
            error = {k: raw.get(k) for k in ("ename", "evalue", "traceback")}
        files: dict[str, Optional[bytes]] = {}
        for entry in raw.get("files") or []:
            files[entry.get("name", "")] = _bytes_of(entry.get("data"))
        return cls(
            status=str(raw.get("status", "")),
            outputs=outputs,
            result=result,
            error=error,
            files=files,
            execution_count=raw.get("execution_count"),
            execution=raw.get("execution"),
            tag=raw.get("tag", tag),
            raw=raw,
        )
