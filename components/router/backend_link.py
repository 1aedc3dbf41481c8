"""A WAMP session from inside the router process to the node's own backend socket, signed with the node key.

What the router's web resources (the node pages, the Jupyter face) use to
reach the session router and the spawners: they are built by Crossbar with
only their path's ``extra``, outside any WAMP session, so each makes its own.
"""

import os

from autobahn.twisted.component import Component
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions
from twisted.internet import defer, reactor
from twisted.logger import Logger

from components.common import uris
from components.common.node_key import cryptosign_authentication
from components.common.transports import transport_for

#: how long a call waits for the node's processes
ANSWER_TIMEOUT_MS = 5000


class BackendLink:
    """A backend session from inside the router process, kept connected (autobahn L{Component} retries)."""

    log = Logger()

    def __init__(self, authid, cbdir=None, realm="cell"):
        cbdir = cbdir or os.getcwd()  # the router worker runs in the node directory
        transport = transport_for("unix:" + os.path.join(cbdir, "backend.sock"))
        transport["max_retry_delay"] = 5
        self.session = None
        self._component = Component(
            transports=[transport], realm=realm, authentication=cryptosign_authentication(cbdir, authid)
        )
        self.on_join = []  # called with each new session
        self._component.on("join", self._joined)
        self._component.on("leave", self._left)
        # The web transport may start before the backend transport listens: the component retries.
        reactor.callWhenRunning(self._component.start, reactor)

    def _joined(self, session, details):
        self.session = session
        for callback in self.on_join:
            callback(session)

    def _left(self, session, details):
        self.session = None

    @property
    def connected(self):
        return self.session is not None and self.session.is_attached()

    def call(self, procedure, *args, timeout_ms=ANSWER_TIMEOUT_MS, **kwargs):
        if not self.connected:
            return defer.fail(ApplicationError(uris.ERROR_CAPACITY, "the node's backend session is not connected yet"))
        return self.session.call(procedure, *args, options=CallOptions(timeout=timeout_ms), **kwargs)
