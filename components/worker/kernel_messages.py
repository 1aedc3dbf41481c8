"""The iopub messages the spawner itself publishes for a kernel, made with ``jupyter_client.session.Session``.

A client reads one stream of Jupyter messages per kernel; a few of them come
from the spawner, not the kernel: the last ``status: dead`` (with a
``reason``), ``status: restarting``, the output truncation notice on
``stderr``, and ``cell_files`` (files an execution made).  They are built by
the same ``Session.msg`` that builds every request the spawner sends, so
their headers are the protocol's, with dates as ISO strings like the
kernel's own messages after L{components.worker.kernel_channels}.
"""

from jupyter_client.jsonutil import squash_dates
from jupyter_client.session import Session


class KernelMessages:
    """Makes the spawner's own iopub messages for the kernels of one spawner."""

    def __init__(self):
        self._session = Session(username="cellserver", key=b"")

    def _make(self, msg_type, content, parent_id=None, parent_type="execute_request"):
        parent = {"msg_id": parent_id, "msg_type": parent_type} if parent_id else {}
        msg = self._session.msg(msg_type, content=content)
        return {"header": squash_dates(msg["header"]), "parent_header": parent, "metadata": {}, "content": content}

    def reply(self, msg_type, content, parent_header):
        """A reply to a Jupyter client's request that the spawner answers itself (interrupt, shutdown)."""
        msg = self._session.msg(msg_type, content=content)
        return {
            "header": squash_dates(msg["header"]),
            "parent_header": parent_header,
            "metadata": {},
            "content": content,
        }

    def dead(self, reason):
        return self._make("status", {"execution_state": "dead", "reason": reason})

    def restarting(self):
        return self._make("status", {"execution_state": "restarting"})

    def stream(self, name, text, parent_id):
        return self._make("stream", {"name": name, "text": text}, parent_id)

    def files(self, files, parent_id):
        return self._make("cell_files", {"files": files}, parent_id)
