"""How a backend process reaches the router: one autobahn transport config per ``--router`` form."""

import os


def transport_for(router):
    """An autobahn transport config for C{--router}: ``ws://…``, ``rs://…`` or ``unix:PATH``."""
    if router.startswith("unix:"):
        path = os.path.abspath(router[len("unix:") :])
        return {
            "type": "rawsocket",
            "url": "rs://localhost",
            "endpoint": {"type": "unix", "path": path},
            "serializer": "msgpack",
        }
    if router.startswith("rs://"):
        return {"type": "rawsocket", "url": router, "serializer": "msgpack"}
    # Ping the router so that a silent network cut is noticed (and the spawner reconnects) within seconds.
    return {
        "type": "websocket",
        "url": router,
        "serializers": ["msgpack"],
        "options": {"auto_ping_interval": 3, "auto_ping_timeout": 3},
    }
