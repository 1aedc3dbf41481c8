"""How a forked child makes itself a process of its own, before any user code runs.

Shared by kernels (L{components.child.fork_master}) and one-shot children
(L{components.child.oneshot}): its own stdio, no inherited fds, death with
its parent, fresh random state, an environment of its own, one malloc arena.
"""

import os
import shutil
import signal
import sys

from components.child.libc import LIBC

PR_SET_PDEATHSIG = 1
M_ARENA_MAX = -8  # glibc's mallopt parameter


def die_with_parent(signum=signal.SIGKILL, parent_pid=None):
    """Ask Linux to send C{signum} to this process when its parent exits.

    A parent that died before the request (between the fork and here) sends nothing: with C{parent_pid}, the
    parent's pid taken *before* the fork, that case is caught and this process ends now.  (A kernel whose node was
    killed while its fork master was forking it lived on, adopted by init.)
    """
    LIBC.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def redirect_stdio(log_file):
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def close_fds_from(lowest):
    """Close every inherited fd from C{lowest} up (one ``close_range`` call on Linux 5.9+)."""
    os.closerange(lowest, 2**31 - 1)


def reseed():
    """Forked children share the master's random state: give each its own.

    The ``random`` module reseeds itself in every forked child (its own
    ``os.register_at_fork`` hook), so only numpy's global generator is left.
    It gets a whole Mersenne Twister state from the OS (624 words): the same
    entropy as ``numpy.random.seed()``'s, without the Python-level seeding
    machinery it runs (0.17 MB of copied pages per kernel).
    """
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        import numpy

        key = numpy.frombuffer(os.urandom(624 * 4), dtype=numpy.uint32)
        numpy_random.set_state(("MT19937", key, 624))


def one_malloc_arena():
    """Have every thread the kernel starts allocate from glibc's main arena.

    ipykernel and ZMQ start seven threads; each would get an arena of its own
    (measured: 0.15 MB of a kernel's 15.3).  Allocation mostly happens under the
    GIL anyway, so the lock the threads now share is hardly contended.
    """
    LIBC.mallopt(M_ARENA_MAX, 1)


def replace_environ(env):
    """Make C{os.environ} exactly C{env}, touching only the entries that differ.

    Clearing and refilling it copied 0.13 MB more per kernel (every entry's
    objects freed and made again on the master's pages).
    """
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def fork_with_pipe(directory):
    """A pipe and C{os.fork()}: C{(pid, read end, write end)}.

    When the fork is refused (EAGAIN, ENOMEM), the pipe is closed and C{directory}
    (the run's) removed before the error is raised: the caller answers that run and goes on.
    """
    r, w = os.pipe()
    try:
        return os.fork(), r, w
    except OSError:
        os.close(r)
        os.close(w)
        shutil.rmtree(directory, ignore_errors=True)
        raise
