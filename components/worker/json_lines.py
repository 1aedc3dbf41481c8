"""A child process spoken to in JSON lines over its stdin and stdout.

The fork master and the one-shot template both take one JSON object per line
on stdin and answer the same way on stdout, logging on stderr.  This is the
Twisted side they share; subclasses handle each event in C{event_received}.
A line that is not a JSON object is logged (cut short, and only the first few)
and skipped: it never ends the spawner's side of the conversation.
"""

import json

from twisted.internet import defer, protocol
from twisted.logger import Logger

from components.common import surrogates

#: how much of a bad line the log shows, and how many bad lines are logged per process
BAD_LINE_SHOWN = 200
BAD_LINES_LOGGED = 10


class JsonLinesProcess(protocol.ProcessProtocol):
    log = Logger()

    #: how the child's stderr lines are labelled in the log
    name = "child"

    def __init__(self):
        self._buffer = b""
        self.running = False
        self.bad_lines = 0
        #: fires with the reason (a Failure's value) once the process has ended
        self.ended = defer.Deferred()

    def connectionMade(self):
        self.running = True

    def outReceived(self, data):
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            try:
                event = surrogates.loads(line)
                if not isinstance(event, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                self._bad_line(line, exc)
                continue
            try:
                self.event_received(event)
            except Exception as exc:  # an event it did not expect (e.g. a reference it never sent)
                self._bad_line(line, "{}: {}".format(type(exc).__name__, exc))

    def _bad_line(self, line, exc):
        self.bad_lines += 1
        if self.bad_lines <= BAD_LINES_LOGGED:
            self.log.warn(
                "{name} wrote a line that could not be handled ({exc}), skipped: {line!r}{more}",
                name=self.name,
                exc=exc,
                line=line[:BAD_LINE_SHOWN],
                more=" (further ones are not logged)" if self.bad_lines == BAD_LINES_LOGGED else "",
            )

    def errReceived(self, data):
        for line in data.decode(errors="replace").splitlines():
            self.log.info("{name}: {line}", name=self.name, line=line)

    def send(self, request):
        """Write one request line to the child."""
        self.transport.write((json.dumps(request) + "\n").encode())

    def event_received(self, event):
        raise NotImplementedError

    def processEnded(self, reason):
        self.running = False
        self.process_ended(reason)
        self.ended.callback(reason.value)

    def process_ended(self, reason):
        """Fail whatever waits on the process (subclasses)."""
