"""L{DirectIOPubThread} with real ZMQ sockets: sends on the caller's thread, in each thread's order, none lost."""

import threading
import time

import pytest
import zmq

from components.child.iopub_sender import DirectIOPubThread

pytestmark = pytest.mark.unit


@pytest.fixture
def pair():
    """A started L{DirectIOPubThread} on an XPUB socket, and a SUB socket that receives what it sends."""
    context = zmq.Context()
    xpub = context.socket(zmq.XPUB)
    xpub.linger = 0
    port = xpub.bind_to_random_port("tcp://127.0.0.1")
    sub = context.socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect("tcp://127.0.0.1:{}".format(port))
    sender = DirectIOPubThread(xpub)
    sender.start()
    deadline = time.monotonic() + 10
    while not sub.poll(50):  # poll: a SUB socket joins asynchronously; probe until the first message gets through
        assert time.monotonic() < deadline, "the subscriber never joined"
        sender.send_multipart([b"probe"])
    while sub.poll(200):
        sub.recv_multipart()
    yield sender, sub
    sender.stop()
    sender.close()
    sub.close()
    context.term()


def received(sub, n, timeout=10):
    frames = []
    deadline = time.monotonic() + timeout
    while len(frames) < n:
        left = deadline - time.monotonic()
        assert left > 0, "{} of {} messages arrived".format(len(frames), n)
        if sub.poll(int(left * 1000)):
            frames.append(sub.recv_multipart()[0])
    return frames


def test_a_send_goes_out_while_the_iopub_thread_is_busy(pair):
    """The main thread's message does not wait for the IOPub thread (which ipykernel would hand it to)."""
    sender, sub = pair
    busy, release = threading.Event(), threading.Event()
    sender.io_loop.add_callback(lambda: busy.set() or release.wait(10))
    assert busy.wait(10)
    try:
        sender.send_multipart([b"now"])
        assert received(sub, 1, timeout=5) == [b"now"]
    finally:
        release.set()


def test_a_send_waits_behind_what_was_handed_to_the_iopub_thread(pair):
    """Order is kept: what was queued for the IOPub thread earlier (a stream's flush) goes out first."""
    sender, sub = pair
    release = threading.Event()

    def flush():
        release.wait(10)
        sender.send_multipart([b"queued first"])

    sender.schedule(flush)
    sender.send_multipart([b"sent second"])
    release.set()
    assert received(sub, 2) == [b"queued first", b"sent second"]
    sender.send_multipart([b"then direct again"])
    assert received(sub, 1) == [b"then direct again"]


def test_many_threads_at_once_lose_nothing_and_keep_each_ones_order(pair):
    sender, sub = pair
    n_threads, n_each = 8, 300
    start = threading.Barrier(n_threads)

    def send(t):
        start.wait()
        for i in range(n_each):
            if i % 50 == 0:  # some through the IOPub thread too, as a stream's flush would
                sender.schedule(lambda t=t, i=i: sender.send_multipart([b"%d-%d" % (t, i)]))
            else:
                sender.send_multipart([b"%d-%d" % (t, i)])

    threads = [threading.Thread(target=send, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    frames = received(sub, n_threads * n_each, timeout=30)
    for t in range(n_threads):
        mine = [f for f in frames if f.startswith(b"%d-" % t)]
        assert mine == [b"%d-%d" % (t, i) for i in range(n_each)]
