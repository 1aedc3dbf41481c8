"""The loop of a process that forks children and is driven by JSON lines on stdin.

The fork master and the one-shot template both: read requests (one JSON
object per line) from stdin, learn of children's exits through SIGCHLD (the
signal only wakes the loop, through a self-pipe: ``signal.set_wakeup_fd``),
reap them, and exit cleanly when stdin closes (the spawner went away) or on
SIGTERM.  They differ in what they do with each request, each wake-up and
each deadline, which they pass in.

Nothing one request does ends the loop: a line that is not a JSON object is
logged and skipped; an exception while handling a request (a failed
``os.fork()``: EAGAIN, ENOMEM) is passed to C{on_error}, which answers that
request, and an exception in a wake-up's work is logged; the loop goes on.
"""

import json
import os
import selectors
import signal
import sys
import traceback

#: how much of a bad line or a traceback goes to stderr (the spawner's log)
LOGGED_CHARS = 2000


def log(text):
    """One bounded message on stderr (the spawner logs the child's stderr)."""
    sys.stderr.write("{}: {}\n".format(os.path.basename(sys.argv[0] or "control_loop"), text[:LOGGED_CHARS]))
    sys.stderr.flush()


class ControlLoop:
    """@param on_request: called with each request dict.
    @param on_shutdown: called (and must not return) when stdin closes or SIGTERM arrives.
    @param on_error: called with C{(request, exception)} when C{on_request} raised: answer that request.
    """

    def __init__(self, on_request, on_shutdown, stdin_fd=0, on_error=None):
        self._on_request = on_request
        self._on_error = on_error
        self._on_shutdown = on_shutdown
        self._stdin = stdin_fd
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def add_reader(self, fd, callback):
        self._selector.register(fd, selectors.EVENT_READ, callback)

    def remove_reader(self, fd):
        self._selector.unregister(fd)

    def run(self, after_wake, timeout=lambda: None):
        """Serve forever: C{after_wake()} after every wake-up; C{timeout()}: seconds until the next deadline, or None."""
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self._on_shutdown())
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.add_reader(self._stdin, self._read_requests)
        self.add_reader(self._wake_r, self._drain_wakeups)
        while True:
            for key, _ in self._selector.select(timeout()):
                self._guarded(key.data)
            self._guarded(after_wake)

    @staticmethod
    def _guarded(work):
        try:
            work()
        except Exception:
            log("went on after an error:\n" + traceback.format_exc()[-LOGGED_CHARS:])

    def _drain_wakeups(self):
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass

    def _read_requests(self):
        chunk = os.read(self._stdin, 1 << 20)
        if not chunk:
            self._on_shutdown()
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.strip():
                self._handle(line)

    def _handle(self, line):
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            log("skipped a request that is not a JSON object ({}): {!r}".format(exc, line[:200]))
            return
        try:
            self._on_request(request)
        except Exception as exc:
            # A refused fork says all in one line; anything else deserves its traceback.
            why = "{}: {}".format(type(exc).__name__, exc) if isinstance(exc, OSError) else traceback.format_exc()
            log("request {!r} failed: {}".format(request.get("op"), why[-LOGGED_CHARS:]))
            if self._on_error is not None:
                self._on_error(request, exc)

    @staticmethod
    def exited_children():
        """Each child that has exited since the last call, as C{(pid, wait status)}, without blocking."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            yield pid, status

    def close_in_child(self):
        """In a freshly forked child: the parent's wake-up pipe and handlers are not its own."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
