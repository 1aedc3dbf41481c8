"""A real node whose one spawner is a remote one (``w3``, its own process, as on another machine), for the tests
that restart the router under a kernel: the spawner, its kernels and their records outlive the router.

    async with remote_spawner_node(tmp_path) as (node, session):
        ...                                    # session: connected once w3 has joined
        node.stop()                            # the whole router goes, w3 and its kernels stay
        session = await router_back(node, kernel)  # it is back and the kernel is resumed by a new session
"""

import contextlib
import os
import signal
import subprocess
import sys

from tests.helpers import until
from tests.node import ROOT, Node
from tests.wamp_client import connect

SPAWNER = "w3"
SECRET_ENV = "CELL_SPAWNER_W3_SECRET"
#: what a node without a local spawner logs once it serves
READY = ("session router ready",)


def remote_only(config):
    """The node's config without its local spawner, and with the remote one's credential; kernels are held 60 s
    for an owner that left (it comes back after the router's restart)."""
    config["workers"] = [w for w in config["workers"] if w["type"] != "guest"]
    for worker in config["workers"]:
        if worker["type"] == "container":
            worker["components"][0]["extra"]["spawners"] = {SPAWNER: SECRET_ENV}
            worker["components"][0]["extra"]["resume_grace_s"] = 60


@contextlib.asynccontextmanager
async def remote_spawner_node(tmp_path):
    """A started node (L{remote_only}) and its spawner ``w3`` (pool of one), with a session connected once ``w3``
    has joined; both end when the block does, however it ends."""
    os.environ[SECRET_ENV] = SPAWNER + "-" + os.urandom(8).hex()
    node = Node(tmp_path, edit=remote_only)
    worker = None
    try:
        node.start(ready=READY)
        arguments = ["--router", node.url, "--id", SPAWNER, "--secret-env", SECRET_ENV, "--config", '{"pool_size": 1}']
        worker = subprocess.Popen(
            [sys.executable, "-m", "components.kernel_spawner", *arguments],
            cwd=ROOT,
            env=node.env(),
            stdout=open(os.path.join(node.dir, SPAWNER + ".log"), "wb"),
            stderr=subprocess.STDOUT,
        )
        session = await connect(node.url)

        async def spawner_joined():
            return [s["id"] for s in (await session.call("cell.status"))["spawners"]] == [SPAWNER]

        await until(spawner_joined, 60, "spawner {} joining".format(SPAWNER))
        yield node, session
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        node.stop()
        del os.environ[SECRET_ENV]


async def router_back(node, kernel):
    """Start the stopped router again; once its rebuilt state lists the kernel (``w3`` told it), a new session
    resumes C{kernel} (``cell.kernel.start``'s answer) with its token.  Returns the session."""
    node.start(ready=READY)
    session = await connect(node.url)

    async def kernel_known():
        return (await session.call("cell.status"))["kernels"] == 1

    await until(kernel_known, 60, "the rebuilt state listing the kernel")
    await session.call("cell.kernel.resume", kernel["kernel_id"], kernel["resume_token"])
    return session
