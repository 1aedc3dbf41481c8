"""Kernel events the control plane itself publishes on a kernel's iopub topic."""

import uuid
from datetime import datetime, timezone


def kernel_lost_event(reason):
    """The last iopub message of a kernel whose worker vanished: ``status: dead`` with a C{reason}.

    Every other message on a kernel's topic comes from the kernel or its
    spawner (built there by ``jupyter_client.session.Session``); this one is
    published by the control plane, which by rule loads no jupyter_client
    (it imports ZMQ), so it is written out here, in the protocol's shape.
    """
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "status",
            "session": "cellserver",
            "username": "cellserver",
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {"execution_state": "dead", "reason": reason},
    }
