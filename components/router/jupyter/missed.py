"""What a Jupyter client missed while its channels connection was away, kept for its return.

JupyterLab and nbclient reconnect a dropped channels WebSocket with the same
``session_id``; Jupyter Server keeps what the kernel sent meanwhile and
replays it, and a client expects it: without it, a cell's output printed
during a network blip, and its reply, are lost (the cell spins for ever).
Here the face does the same.  When the last connection of a ``session_id``
closes while its kernel lives, an L{Away} stands in for it: it gathers the
kernel's iopub and the replies owed to that session; a connection that comes
back with the same ``session_id`` (the same principal: it had to reach the
kernel) gets them first, in order, then the rest live.

Bounds: L{MAX_AWAY} sessions per kernel (the oldest goes), L{AWAY_S} seconds
away, L{MAX_MISSED_BYTES} per session (the oldest messages go first).
"""

import collections

#: sessions of one kernel kept while away (a client reconnecting with new session ids cannot pile them up)
MAX_AWAY = 4
#: how long a session's messages are kept for its return
AWAY_S = 60.0
#: what one away session keeps (a rough size: its messages' contents as text)
MAX_MISSED_BYTES = 8 * 1024 * 1024


class Away:
    """A session whose connection closed: a stand-in connection that keeps what it is sent."""

    def __init__(self, session_id, since):
        self.session_id = session_id
        self.since = since
        self.messages = collections.deque()
        self.bytes = 0

    def deliver(self, channel, msg):
        size = len(str(msg.get("content")))
        self.messages.append((channel, msg, size))
        self.bytes += size
        while self.bytes > MAX_MISSED_BYTES and self.messages:
            self.bytes -= self.messages.popleft()[2]

    def refuse(self, reason):
        pass  # an error reply is delivered instead (components.router.jupyter.kernels)

    def kernel_gone(self):
        pass


class MissedMessages:
    """One kernel's away sessions, by ``session_id``."""

    def __init__(self, clock):
        self._clock = clock
        self._away = collections.OrderedDict()

    def __len__(self):
        return len(self._away)

    def left(self, connection, open_connections):
        """C{connection} closed: its session's L{Away}, if it was the session's last connection (else None)."""
        self._expire()
        session_id = getattr(connection, "session_id", None)
        if not session_id or any(getattr(c, "session_id", None) == session_id for c in open_connections):
            return None
        away = self._away.pop(session_id, None) or Away(session_id, self._clock.seconds())
        self._away[session_id] = away
        while len(self._away) > MAX_AWAY:
            self._away.popitem(last=False)
        return away

    def returned(self, connection):
        """C{connection} opened: the L{Away} of its session, taken (None if there is none)."""
        self._expire()
        session_id = getattr(connection, "session_id", None)
        return self._away.pop(session_id, None) if session_id else None

    def holds(self, stand_in):
        return isinstance(stand_in, Away) and self._away.get(stand_in.session_id) is stand_in

    def iopub(self, msg):
        """An iopub message: every away session gets it."""
        for away in self._away.values():
            away.deliver("iopub", msg)

    def _expire(self):
        now = self._clock.seconds()
        for session_id, away in list(self._away.items()):
            if now - away.since > AWAY_S:
                del self._away[session_id]
