"""L{components.worker.kernel_channels}: a spawner's context fits its kernels, and a start out of sockets leaks none.

Real ZMQ contexts and sockets (connected to kernels that are not there: ZMQ connects later, which is what a
spawner does before a forked kernel has bound); only the reactor is a stand-in that records readers.
"""

import pytest
import zmq
from twisted.internet.task import Clock

from components.common import errors
from components.worker.kernel_channels import SOCKETS_PER_KERNEL, KernelChannels, context_for

pytestmark = pytest.mark.unit


class Reactor(Clock):
    """A clock that also takes read descriptors (what L{KernelChannels} adds and removes)."""

    def __init__(self):
        super().__init__()
        self.readers = set()

    def addReader(self, reader):
        self.readers.add(reader)

    def removeReader(self, reader):
        self.readers.discard(reader)


def connection(tmp_path, n):
    ports = {
        name: i + 1 for i, name in enumerate(("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"))
    }
    return dict(ports, ip=str(tmp_path / "k{}".format(n)), key="k" * 64, signature_scheme="hmac-sha256")


def channels(reactor, context, tmp_path, n):
    ignore = lambda *args: None  # noqa: E731
    return KernelChannels(reactor, context, connection(tmp_path, n), ignore, ignore, ignore, ignore)


#: every socket a L{RecordingContext} made (a context's attributes are ZMQ options: it keeps none of its own)
MADE = []


class RecordingContext(zmq.Context):
    """A real ZMQ context that remembers every socket it made (in L{MADE})."""

    def socket(self, *args, **kwargs):
        sock = super().socket(*args, **kwargs)
        MADE.append(sock)
        return sock


def test_a_spawner_context_holds_the_channels_of_all_its_kernels(tmp_path):
    """250 kernels (max_kernels 240, a pool of 10): libzmq's default context stops at 204 (1,023 sockets)."""
    reactor = Reactor()
    context = context_for(250)
    opened = [channels(reactor, context, tmp_path, n) for n in range(250)]
    assert len(reactor.readers) == 250 * SOCKETS_PER_KERNEL
    for c in opened:
        c.close()
    assert not reactor.readers
    context.destroy(linger=0)


def test_channels_that_cannot_all_open_fail_at_once_and_leave_no_socket(tmp_path):
    reactor = Reactor()
    context = RecordingContext()
    MADE.clear()
    context.set(zmq.MAX_SOCKETS, SOCKETS_PER_KERNEL + 3)
    first = channels(reactor, context, tmp_path, 0)
    with pytest.raises(errors.Capacity, match="cannot open a kernel's channels"):
        channels(reactor, context, tmp_path, 1)  # gets 3 of its 5 sockets
    assert len(reactor.readers) == SOCKETS_PER_KERNEL, "the failed channels watch nothing"
    failed = MADE[SOCKETS_PER_KERNEL:]
    assert len(failed) == 3
    assert all(sock.closed for sock in failed), "a failed start kept sockets: enough such starts and none could start"
    first.close()
    assert all(sock.closed for sock in MADE)
    context.destroy(linger=0)
