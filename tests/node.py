"""A real Crossbar node for tests: L{deploy.node.Node}, with the quotas per client address lifted."""

import psutil

import deploy.node
from deploy.node import ROOT, VENV_BIN, free_port  # noqa: F401 (the tests' names for them)


def spawner_processes(pid):
    """The spawners under the node C{pid}: the processes that serve, not the keepers that restart them."""
    return [p for p in processes_under(pid, "components.kernel_spawner") if "--keep-alive" not in p.cmdline()]


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
                role.update(
                    max_kernels_per_address=100000,
                    max_oneshots_per_minute_per_address=10**7,
                    max_concurrent_oneshots_per_address=100000,
                    max_sessions_per_address=100000,
                )
            for component in worker["components"]:
                if component["id"] == "permalinks":
                    component["extra"].update(saves_per_minute_per_address=10**7, max_bytes_per_address_per_day=2**50)


#: kernels the suite's shared node may hand out: its ~250 tests' sessions keep theirs for the resume grace (60 s)
#: after they leave, so with the shipped 32 a burst of tests that start several kernels each could fill it
SUITE_MAX_KERNELS = 96


def spawner_settings(config, **changes):
    """The local spawner's settings in C{config} (its guest worker's ``options.stdin.value``, a dict to edit in
    place), updated with C{changes}: the one way tests and benches change them."""
    guests = [worker for worker in config["workers"] if worker["type"] == "guest"]
    if len(guests) != 1:
        raise LookupError("the config has {} guest workers; the local spawner is the one expected".format(len(guests)))
    settings = guests[0]["options"]["stdin"]["value"]
    settings.update(changes)
    return settings


def room_for_the_suite(config):
    """The local spawner's max_kernels raised to L{SUITE_MAX_KERNELS} (a test of capacity sets its own), and no Sage
    master (its preload and warm-up cost seconds of CPU at every start): the Sage tests ask for it (L{with_sage})."""
    spawner_settings(config, max_kernels=SUITE_MAX_KERNELS, sage_python="")


def with_sage(config):
    """The local spawner forks Sage kernels, as ``make run`` does (``make sage`` built .sage-venv)."""
    spawner_settings(config, sage_python=".sage-venv/bin/python")


class Node(deploy.node.Node):
    """A node as users run it, but for the quotas per client address (L{one_address_for_all}) and room for the
    suite's many users (L{room_for_the_suite})."""

    def __init__(self, tmpdir, edit=None, web_dir=None, env=None):
        def edit_for_tests(config):
            one_address_for_all(config)
            room_for_the_suite(config)
            if edit is not None:
                edit(config)

        super().__init__(tmpdir, edit=edit_for_tests, web_dir=web_dir, env=env)
