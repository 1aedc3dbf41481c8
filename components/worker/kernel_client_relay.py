"""The Jupyter clients' side of one kernel (what the router's Jupyter face sends it).

A Jupyter client (JupyterLab, a notebook server, ``jupyter console``) talks to a
kernel in messages of its own, with its own ids.  L{JupyterClientRelay} sends
them on, remembers which requests wait for a reply so that the reply (and an
``input_request`` of their executions) goes back to the client rather than to
the kernel's own callers, and holds what clients send while the kernel
restarts, as ZMQ would.  Which state allows what stays with the kernel.
"""

from components.common import errors

#: Most Jupyter client messages held while a kernel restarts.
MAX_JUPYTER_WAITING = 64


class JupyterClientRelay:
    """Client requests of one kernel in flight, by msg_id.

    @param on_jupyter: called with C{(channel, msg)} for each message that goes back to the client.
    @param messages: the spawner's L{components.worker.kernel_messages.KernelMessages}, for replies we make.
    @param touch: called when a client's request is answered (activity: the idle clock starts again).
    """

    def __init__(self, on_jupyter, messages, touch):
        self._on_jupyter = on_jupyter
        self._messages = messages
        self._touch = touch
        #: requests a client sent (msg_id -> msg_type), until their reply
        self._pending = {}
        #: their executions still running (the kernel is busy; an input_request of theirs goes to the client)
        self._executing = set()
        #: what clients sent while the kernel restarted, sent when it is ready
        self._waiting = []

    @property
    def busy(self):
        """A client's execution is running (the watchdog does not count the kernel idle)."""
        return bool(self._executing)

    def hold(self, message, kernel_id):
        """Keep C{message} until the restarting kernel is ready; return its msg_id."""
        if len(self._waiting) >= MAX_JUPYTER_WAITING:
            raise errors.Capacity("kernel {} is restarting; try again in a moment".format(kernel_id))
        self._waiting.append(message)
        return message.header["msg_id"]

    def take_held(self):
        """What was held during the restart, in order (the kernel sends it again once ready)."""
        waiting, self._waiting = self._waiting, []
        return waiting

    def send(self, channels, message):
        """Send a client's checked L{ClientMessage} under its own ids (signed by us); return its msg_id."""
        msg_id = channels.request(
            message.channel,
            message.msg_type,
            message.content,
            parent=message.parent_header,
            metadata=message.metadata,
            buffers=message.buffers,
            header=message.header,
        )
        if message.msg_type.endswith("_request"):
            self._pending[msg_id] = message.msg_type
            if message.msg_type == "execute_request":
                self._executing.add(msg_id)
        return msg_id

    def answer(self, message, msg_type, content):
        """Answer a client's request ourselves (interrupt, shutdown): the reply it waits for, on its channel."""
        self._on_jupyter(message.channel, self._messages.reply(msg_type, content, message.header))

    def reply(self, channel, msg):
        """A reply from the kernel: True if it answers a client's request (and went back to the client)."""
        parent_id = msg["parent_header"].get("msg_id")
        if parent_id not in self._pending:
            return False
        del self._pending[parent_id]
        self._executing.discard(parent_id)
        self._touch()
        self._on_jupyter(channel, msg)
        return True

    def input_request(self, msg):
        """An input_request: True if a client's execution asks it (and it went to the client)."""
        if msg["parent_header"].get("msg_id") not in self._executing:
            return False
        self._on_jupyter("stdin", msg)
        return True

    def forget(self, held=True):
        """The kernel restarts (C{held=False}: keep what waits for the new process) or died: no reply will come."""
        self._pending.clear()
        self._executing.clear()
        if held:
            self._waiting.clear()
