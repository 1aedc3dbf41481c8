"""cellserver's Python client: run code in a node's Jupyter kernels without learning WAMP.

::

    from cellclient import Client, errors

    with Client("ws://127.0.0.1:8080/ws") as c:
        ex = c.run("print(6 * 7)", on_stdout=print)
        with c.kernel("python") as k:
            k.run("x = 1")
            print(k.run("x + 1").text)

:class:`AsyncClient` is the same for asyncio (``async with AsyncClient(url) as c: await c.run(...)``). It uses
autobahn's asyncio flavour: a process that also runs autobahn on Twisted cannot use it (txaio serves one framework).
"""

from . import errors
from .aio import AsyncClient, AsyncFiles, AsyncKernel
from .execution import Callbacks, Execution
from .sync import Client, Files, Kernel

__all__ = [
    "AsyncClient",
    "AsyncFiles",
    "AsyncKernel",
    "Callbacks",
    "Client",
    "Execution",
    "Files",
    "Kernel",
    "errors",
]
__version__ = "0.1.0"
