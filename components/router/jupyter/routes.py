"""Where the reply to each of a face kernel's requests goes: the connection that sent it, kept while it is owed.

A request's route is kept until its reply passes, and it could stay for
good: a kernel does not answer a request type it does not know, and
requests in flight when the kernel restarts or dies are never answered.
So the routes of a kernel are bounded three ways: a connection's routes go
when it closes; a restart drops every route taken before it; and a kernel
holds at most L{MAX_PENDING} of them, past which a new request is refused
(answered with an error reply: dropping the oldest would lose the reply of
a cell still running, the first of a "run all").
"""

#: requests awaiting their reply, per kernel (a "run all" of a long notebook queues one per cell)
MAX_PENDING = 4096


class PendingRequests:
    """msg_id of a client's request -> the connection its reply goes to."""

    def __init__(self, max_pending=MAX_PENDING):
        self.max_pending = max_pending
        self._routes = {}

    def __len__(self):
        return len(self._routes)

    def add(self, msg_id, connection):
        """Route C{msg_id}'s reply to C{connection}; False (and nothing kept) when the kernel already owes too many."""
        if msg_id not in self._routes and len(self._routes) >= self.max_pending:
            return False
        self._routes[msg_id] = connection
        return True

    def peek(self, msg_id):
        """Where C{msg_id}'s messages go, kept (stdin: an input_request comes before the request's reply)."""
        return self._routes.get(msg_id)

    def pop(self, msg_id):
        """Where C{msg_id}'s reply goes, forgotten (the reply is the last message owed to it)."""
        return self._routes.pop(msg_id, None)

    def drop_connection(self, connection):
        """C{connection} closed: nothing it asked can reach it."""
        self._routes = {m: c for m, c in self._routes.items() if c is not connection}

    def reroute(self, old, new):
        """What C{old} is owed goes to C{new} (a session away and back: components.router.jupyter.missed)."""
        self._routes = {m: (new if c is old else c) for m, c in self._routes.items()}

    def snapshot(self):
        """The requests owed now (to drop once a restart is done: the old process answers none of them)."""
        return set(self._routes)

    def drop(self, msg_ids):
        for msg_id in msg_ids:
            self._routes.pop(msg_id, None)
