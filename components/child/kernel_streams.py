"""A kernel's ``sys.stdout``/``sys.stderr``: ipykernel's ``OutStream`` with two changes, both measured.

Installed through ipykernel's own ``IPKernelApp.outstream_class`` setting.

- **Backpressure.**  ipykernel buffers stream output until its IO thread
  flushes; a tight print loop outruns that thread and one message grows to
  hundreds of MB (measured: 173 MB after 2.3 s).  Flushing synchronously
  every ``backpressure_chars`` keeps messages small and the kernel's memory
  bounded (the iopub socket queues up to its high-water mark of 1000
  messages: at 64 KiB, 64 MB at most).
- **The output cap, in the kernel.**  Past C{output_cap_chars} characters in
  one request (plus a little, so that the spawner sees the cap passed and
  adds its notice), writes are dropped here: whatever the consumer's speed,
  a flood such as ``while True: print("x" * 10000)`` costs the kernel CPU
  time but no memory, and the kernel keeps its state.  The spawner enforces
  the same cap on what it receives (the kernel's code is not trusted to).
- **No empty flushes.**  After every execution ipykernel flushes both
  streams, and each flush waits for a round trip to the IO thread even when
  nothing is buffered: 1.7 ms of a 4.8 ms ``execute("1+1")`` here.  With
  nothing buffered there is nothing to wait for.  (That wait also orders the
  execute reply after iopub messages; the spawner does not rely on it, it
  ends an execution on the reply *and* the iopub ``idle`` status.)
"""

import os
import threading

from ipykernel.iostream import OutStream


class KernelOutStream(OutStream):
    """See the module docstring."""

    #: flush synchronously once this many characters were written since the last such flush
    backpressure_chars = 65536
    #: characters one request may write to this stream before the rest is dropped (0: no cap)
    output_cap_chars = 0
    #: written past the cap before dropping starts, so that the spawner sees the cap passed
    cap_slack_chars = 65536

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._written = 0
        self._last_parent = None
        self._last_key = None
        self._capped_parent = None
        self._allowance = 0

    def write(self, string):
        if self.output_cap_chars and type(string) is str and not self._allowed(len(string)):
            return len(string)
        if (
            type(string) is not str
            or self.echo is not None
            or self.pub_thread is None
            or os.getpid() != self._master_pid
        ):
            written = super().write(string)  # the general case, as ipykernel does it
        else:
            written = self._write_fast(string)
        self._written += len(string)
        if self._written >= self.backpressure_chars:
            self._written = 0
            self.flush()
        return written

    def _allowed(self, chars):
        """Whether C{chars} more characters fit this request's allowance (a new request gets a new one)."""
        parent = self.parent_header
        if parent is not self._capped_parent:
            self._capped_parent = parent
            self._allowance = self.output_cap_chars + self.cap_slack_chars
        if self._allowance <= 0:
            return False
        self._allowance -= chars
        return True

    def _write_fast(self, string):
        """ipykernel's C{write} for the common case, minus the work it repeats for every call.

        It builds a frozenset of the parent header on each write (a print is
        two writes): the key is kept while the parent header stays the same
        object (ipykernel sets a new one per request).  Measured: 100,000
        printed lines 0.64 -> 0.50 s.
        """
        parent = self.parent_header
        if parent is not self._last_parent:
            self._last_parent, self._last_key = parent, frozenset(parent.items())
        with self._buffer_lock:
            self._buffers[self._last_key].write(string)
        if not self._flush_pending:
            self._schedule_flush()
        return len(string)

    def flush(self):
        if threading.current_thread() is threading.main_thread() and self._nothing_buffered():
            return
        super().flush()

    def _nothing_buffered(self):
        with self._buffer_lock:
            return not any(buffer.tell() for buffer in self._buffers.values())
