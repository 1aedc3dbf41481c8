"""The headers of the Jupyter messages the node writes itself, with the protocol version said once.

Most messages on a kernel's stream come from the kernel, and the spawner
writes its own with ``jupyter_client.session`` (it loads jupyter_client).  The
router (an error reply to a refused request) and the control plane (the last
``status: dead`` of a kernel whose worker vanished) load no jupyter_client, by
rule (tests/test_layout.py): they build theirs here, from the standard library
only.  L{PROTOCOL_VERSION} is the version jupyter_client writes (a unit test
holds the two together), so every header the node writes says the same.
"""

import datetime
import uuid

#: the Jupyter message protocol version of every header the node writes (jupyter_client's ``protocol_version``)
PROTOCOL_VERSION = "5.4"

#: the session and user name of the messages the node writes in its own name
NODE = "cellserver"


def header(msg_type, msg_id=None, session=NODE, username=NODE):
    """A message header in the protocol's shape, dated now (ISO 8601, UTC); a fresh msg_id unless given."""
    return {
        "msg_id": msg_id or uuid.uuid4().hex,
        "msg_type": msg_type,
        "username": username,
        "session": session,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "version": PROTOCOL_VERSION,
    }


def message(msg_type, content, parent_header=None, msg_id=None):
    """A whole message the node sends in its own name: L{header}, C{parent_header} (or none), C{content}."""
    return {
        "header": header(msg_type, msg_id),
        "parent_header": parent_header or {},
        "metadata": {},
        "content": content,
    }
