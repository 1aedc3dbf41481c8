"""A real Crossbar node for tests: L{deploy.node.Node}, with the quotas per client address lifted."""

import psutil

import deploy.node
from deploy.node import ROOT, VENV_BIN, free_port  # noqa: F401 (the tests' names for them)


def processes_under(pid, marker):
    """Live descendants of C{pid} whose command line contains C{marker}.

    Processes that exit (or sit as zombies, e.g. a kernel just shut down and not
    yet reaped) while the tree is walked are left out rather than raising.
    """
    found = []
    for process in psutil.Process(pid).children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and marker in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def one_address_for_all(config):
    """The suite's many users all connect from 127.0.0.1: lift the quotas per client address (a test of those
    quotas sets its own, and connects from other loopback addresses)."""
    for worker in config["workers"]:
        if worker["type"] == "container":
            for role in worker["components"][0]["extra"]["roles"].values():
                role.update(max_kernels_per_address=100000, max_oneshots_per_minute_per_address=10**7)


class Node(deploy.node.Node):
    """A node as users run it, but for the quotas per client address (L{one_address_for_all})."""

    def __init__(self, tmpdir, edit=None, web_dir=None, env=None):
        def edit_for_tests(config):
            one_address_for_all(config)
            if edit is not None:
                edit(config)

        super().__init__(tmpdir, edit=edit_for_tests, web_dir=web_dir, env=env)
