"""Kernel events the control plane itself publishes on a kernel's iopub topic."""

from components.common import jupyter_header


def kernel_lost_event(reason):
    """The last iopub message of a kernel whose worker vanished: ``status: dead`` with a C{reason}.

    Every other message on a kernel's topic comes from the kernel or its
    spawner (built there by ``jupyter_client.session.Session``); this one is
    published by the control plane, which by rule loads no jupyter_client
    (it imports ZMQ), so its header comes from L{components.common.jupyter_header}.
    """
    return jupyter_header.message("status", {"execution_state": "dead", "reason": reason})
