"""components.child.process_setup.die_with_parent: a child whose parent died before it asked does not live on."""

import os
import signal

import pytest

from components.child import process_setup

pytestmark = pytest.mark.unit


def child_exit_code(parent_pid_seen_before_fork):
    pid = os.fork()
    if pid == 0:
        try:
            process_setup.die_with_parent(signal.SIGKILL, parent_pid_seen_before_fork)
            os._exit(0)  # its parent is the one it expected: it goes on (here: exits 0 to say so)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_child_of_the_expected_parent_lives_and_one_whose_parent_changed_ends_at_once():
    assert child_exit_code(os.getpid()) == 0
    # As if the parent had died between the fork and the request: the child's parent is not the one it was forked
    # by (here, a pid that is no one's parent of it), so the death signal would never come.
    assert child_exit_code(os.getpid() + 1_000_000) == 1
