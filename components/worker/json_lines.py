"""A child process spoken to in JSON lines over its stdin and stdout.

The fork master and the one-shot template both take one JSON object per line
on stdin and answer the same way on stdout, logging on stderr.  This is the
Twisted side they share; subclasses handle each event in C{event_received}.
"""

import json

from twisted.internet import protocol
from twisted.logger import Logger


class JsonLinesProcess(protocol.ProcessProtocol):
    log = Logger()

    #: how the child's stderr lines are labelled in the log
    name = "child"

    def __init__(self):
        self._buffer = b""
        self.running = False

    def connectionMade(self):
        self.running = True

    def outReceived(self, data):
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self.event_received(json.loads(line))

    def errReceived(self, data):
        for line in data.decode(errors="replace").splitlines():
            self.log.info("{name}: {line}", name=self.name, line=line)

    def send(self, request):
        """Write one request line to the child."""
        self.transport.write((json.dumps(request) + "\n").encode())

    def event_received(self, event):
        raise NotImplementedError
