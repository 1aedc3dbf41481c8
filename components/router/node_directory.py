"""Close the node directory to other users before any transport listens.

The node directory (Crossbar's cbdir) holds the backend socket, the node key,
the permalinks database and the config.  Kernels run as other uids: they must
not even reach it.  Crossbar starts a router's components before its
transports, and L{PrivateNodeDirectory} is the first of them, so when the
backend socket appears its directory is already mode 0700, however the
directory was made (a fresh clone has 0755).
"""

import os
import stat

from autobahn.twisted.wamp import ApplicationSession


def make_private(path, log=None):
    """Give C{path} (a directory) to its owner only; True if its mode had to change."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077 == 0:
        return False
    os.chmod(path, mode & 0o700)
    if log is not None:
        log.info(
            "node directory {path}: mode {old:o} -> {new:o}, so that kernels (other uids) cannot reach its sockets, keys or data",
            path=path,
            old=mode,
            new=mode & 0o700,
        )
    return True


class PrivateNodeDirectory(ApplicationSession):
    """A router component that makes the router's working directory (the node directory) private."""

    def __init__(self, config=None):
        super().__init__(config)
        make_private(os.getcwd(), self.log)
