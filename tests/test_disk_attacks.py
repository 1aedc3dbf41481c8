"""Disk attacks that must fail (issue 19, items 9 and 10), against a real node and real kernels.

Each of a kernel's writable file systems is a tmpfs of its own (its working and runtime directories mounted by
the spawner, components/worker/kernel_disk.py; its private /tmp, /var/tmp, /dev/shm): a write past
``disk_limit_mb`` or ``disk_limit_inodes`` fails at once with ENOSPC and the kernel keeps running, and nothing of
it is walked or deleted on the spawner's reactor.  The sandbox needs root; these tests run as root.
"""

import errno
import json
import os
import shutil
import subprocess
import tempfile
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads

from components.child import filesystem_view
from components.common.config import SpawnerConfig
from components.worker.kernel_disk import SOURCE, KernelDisks, detach_stale, register_roots
from tests.helpers import call, expect_error, start_kernel, until
from tests.node import Node, spawner_processes, spawner_settings
from tests.wamp_client import connect, within

MB = 2**20
LIMITS = {"disk_limit_mb": 16, "disk_limit_inodes": 100000}
LIMIT_BYTES = LIMITS["disk_limit_mb"] * MB
#: a bystander's ``1+1`` must come back within this, whatever the attacker does (the issue saw 10 s stalls)
BYSTANDER_BOUND_S = 5.0

sandboxed = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


def set_limits(config):
    spawner_settings(config, **LIMITS)


@pytest.fixture(scope="module")
def disk_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("disk"), edit=set_limits)
    node.start()
    yield node
    node.stop()


async def run(session, kernel_id, code, deadline=120):
    result = await call(session, kernel_id, "execute", code, deadline=deadline)
    assert result["status"] == "ok", result
    return result


async def printed(session, kernel_id, code, deadline=120):
    """What C{code} printed, as JSON."""
    result = await run(session, kernel_id, code, deadline)
    return json.loads("".join(o.get("text", "") for o in result["outputs"] if o.get("name") == "stdout"))


def disk_mounts(source=SOURCE + "-"):
    """Mount points of every kernel file system on this host (the test runs in the host's namespace)."""
    return [point for point, _, found in filesystem_view.mounts() if found.startswith(source)]


class Bystander:
    """Another user, asking its own kernel ``1+1`` again and again, timing each answer."""

    def __init__(self, session, kernel_id):
        self.session, self.kernel_id = session, kernel_id
        self.latencies = []
        self._asking = True
        self._loop = None

    def start(self):
        self._loop = defer.ensureDeferred(self._ask())

    async def _ask(self):
        while self._asking:
            started = reactor.seconds()
            result = await call(self.session, self.kernel_id, "execute", "1+1", deadline=60)
            self.latencies.append(reactor.seconds() - started)
            assert result["outputs"][-1]["data"]["text/plain"] == "2", result
            await task.deferLater(reactor, 0.05, lambda: None)  # poll: the sampling pace, not a synchronisation

    async def stop(self):
        self._asking = False
        await self._loop
        assert self.latencies, "the bystander was never answered"
        return max(self.latencies)


async def bystander(node):
    session = await connect(node.url)
    helper = Bystander(session, await start_kernel(session))
    helper.start()
    return helper


FILL_WITH_EMPTY_FILES = """
import json, os
def fill(directory, most=300000):
    made = 0
    try:
        while made < most:
            os.close(os.open(os.path.join(directory, 'e%d' % made), os.O_CREAT | os.O_WRONLY, 0o600))
            made += 1
    except OSError as exc:
        return made, exc.errno
    return made, 0
print(json.dumps({name: fill(directory) for name, directory in
                  [('cwd', '.'), ('tmpdir', os.environ['TMPDIR']), ('tmp', '/tmp'), ('shm', '/dev/shm')]}))
"""


@sandboxed
@pytest_twisted.ensureDeferred
async def test_300k_empty_files_are_refused_at_the_inode_limit_and_stall_nobody(disk_node):
    log_start = len(disk_node.log())
    other = await bystander(disk_node)
    session = await connect(disk_node.url)
    kernel_id = await start_kernel(session)
    cwd = await printed(session, kernel_id, "import json, os; print(json.dumps(os.getcwd()))")
    assert cwd in disk_mounts(), "the working directory is a file system of its own"
    made = await printed(session, kernel_id, FILL_WITH_EMPTY_FILES, deadline=300)
    limit = LIMITS["disk_limit_inodes"]
    # The root directory is an inode too; the runtime directory and /tmp hold a few of the kernel's own.
    assert made["cwd"] == [limit - 1, errno.ENOSPC], made
    for name in ("tmpdir", "tmp", "shm"):
        count, error = made[name]
        assert error == errno.ENOSPC and limit - 100 < count < limit, (name, made)
    assert (await run(session, kernel_id, "len(os.listdir('.'))"))["outputs"][-1]["data"]["text/plain"] == str(
        limit - 1
    ), "the kernel refused at its limit keeps running"
    # Its end: ~400,000 files go, and the spawner answers everybody meanwhile and after.
    await call(session, kernel_id, "shutdown")
    await until(lambda: defer.succeed(not os.path.exists(cwd)), 60, "the attacker's directory to go")
    answered = len(other.latencies)
    await until(lambda: defer.succeed(len(other.latencies) >= answered + 10), 60, "ten more answers to the bystander")
    worst = await other.stop()
    assert worst < BYSTANDER_BOUND_S, "another user's 1+1 took {:.1f} s".format(worst)
    await run(other.session, other.kernel_id, "1+1")
    assert "stopped answering its heartbeat" not in disk_node.log()[log_start:], "a kernel was declared dead"
    session.leave()
    other.session.leave()


FAST_FILL = """
import json, os, subprocess, time
def fill(path):
    written, started, error = 0, time.monotonic(), None
    chunk = b'\\0' * (1 << 20)
    try:
        with open(path, 'wb', buffering=0) as f:
            while written < 1 << 32:
                written += f.write(chunk)
    except OSError as exc:
        error = exc.errno
    return {'written': written, 'size': os.path.getsize(path), 'error': error, 's': time.monotonic() - started}
found = {'cwd': fill('big'), 'tmp': fill('/tmp/big'), 'shm': fill('/dev/shm/big')}
dd = subprocess.run(['dd', 'if=/dev/zero', 'of=' + os.path.join(os.environ['TMPDIR'], 'dd'), 'bs=1M', 'count=4096'],
                    capture_output=True, text=True)
found['dd'] = {'returncode': dd.returncode, 'stderr': dd.stderr[-300:],
               'size': os.path.getsize(os.path.join(os.environ['TMPDIR'], 'dd'))}
print(json.dumps(found))
"""


class Sampler:
    """Samples, from the host, the bytes used on a kernel's working directory's file system, as fast as it can."""

    def __init__(self, path):
        self.path, self.most, self.samples = path, 0, 0
        self._stop = threading.Event()

    def run(self):
        while not self._stop.is_set():
            st = os.statvfs(self.path)
            self.most = max(self.most, (st.f_blocks - st.f_bfree) * st.f_frsize)
            self.samples += 1

    def stop(self):
        self._stop.set()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_fast_disk_fill_stops_at_the_byte_limit_at_once_and_the_kernel_lives(disk_node):
    session = await connect(disk_node.url)
    kernel_id = await start_kernel(session)
    cwd = await printed(session, kernel_id, "import json, os; print(json.dumps(os.getcwd()))")
    st = os.statvfs(cwd)
    assert (st.f_blocks * st.f_frsize, st.f_files) == (LIMIT_BYTES, LIMITS["disk_limit_inodes"]), "the limits hold"
    sampler = Sampler(cwd)
    sampling = threads.deferToThread(sampler.run)
    try:
        found = await printed(session, kernel_id, FAST_FILL)
    finally:
        sampler.stop()
        await sampling
    for name in ("cwd", "tmp", "shm"):
        fill = found[name]
        assert fill["error"] == errno.ENOSPC, (name, fill)
        assert fill["written"] <= LIMIT_BYTES and fill["size"] <= LIMIT_BYTES, (name, fill)
        assert fill["size"] > LIMIT_BYTES - 2 * MB, ("it was the limit that stopped it", name, fill)
    assert found["dd"]["returncode"] != 0 and "No space left on device" in found["dd"]["stderr"], found["dd"]
    assert found["dd"]["size"] <= LIMIT_BYTES, found["dd"]
    assert sampler.samples > 0 and sampler.most <= LIMIT_BYTES, "the host saw {} bytes used".format(sampler.most)
    # Not a death: the kernel answers, and room made is room to write again.
    result = await run(session, kernel_id, "os.remove('big'); open('again', 'wb').write(b'x' * 1000000)")
    assert result["outputs"][-1]["data"]["text/plain"] == "1000000"
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_uploads_into_a_full_directory_are_refused_with_a_clear_error(disk_node):
    session = await connect(disk_node.url)
    kernel_id = await start_kernel(session)
    # Directories are inodes but not files (the upload's own count of files does not see them).
    code = "n = 0\ntry:\n    while True:\n        os.mkdir('d%d' % n); n += 1\nexcept OSError as e:\n    print(n, e)"
    result = await run(session, kernel_id, "import os\n" + code, deadline=300)
    assert "No space left on device" in result["outputs"][-1]["text"], result
    exc = await expect_error(call(session, kernel_id, "files.put", "new.txt", b"hello"), "cell.error.too_large")
    assert "full" in exc.error_message() and str(LIMITS["disk_limit_inodes"]) in exc.error_message()
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_the_limits_hold_across_restarts_and_the_directory_stays(disk_node):
    session = await connect(disk_node.url)
    kernel_id = await start_kernel(session)
    fill = (
        "import os\ntry:\n    with open('fill%d' % len(os.listdir('.')), 'wb') as f:\n"
        "        while True: f.write(b'x' * 65536)\nexcept OSError as e:\n    print(e.errno)"
    )
    await run(
        session, kernel_id, "import os; open('keep.txt', 'w').write('kept'); open(os.environ['TMPDIR'] + '/t', 'w')"
    )
    await run(session, kernel_id, fill)
    await call(session, kernel_id, "restart", deadline=60)
    result = await run(session, kernel_id, fill)
    assert result["outputs"][-1]["text"].strip() == str(errno.ENOSPC)
    sizes = await printed(
        session,
        kernel_id,
        "import json, os; print(json.dumps([open('keep.txt').read(), sum(os.path.getsize(f) for f in os.listdir('.')),"
        " os.listdir(os.environ['TMPDIR'])]))",
    )
    assert sizes[0] == "kept" and sizes[1] <= LIMIT_BYTES and sizes[2] == [], sizes
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_one_shot_with_files_is_bounded_too(disk_node):
    session = await connect(disk_node.url)
    code = (
        "import os\nprint(open('in.txt').read())\n"
        "with open('out.bin', 'wb') as f:\n    while True: f.write(b'x' * 65536)"
    )
    result = await within(session.call("cell.execute", code, files={"in.txt": b"given"}, return_files=True), 60)
    assert result["status"] == "error" and "No space left on device" in result["evalue"], result
    assert result["outputs"][0]["text"] == "given\n"
    made = {entry["name"]: entry for entry in result["files"]}
    assert made["out.bin"]["size"] <= LIMIT_BYTES, made
    session.leave()


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_kernel_keeps_no_other_kernels_file_systems(disk_node, node):
    """A new mount namespace starts as a copy of the host's: it must drop other kernels' disks, this spawner's and
    another node's on the same host (``make cluster`` runs two), or keep them in memory after those kernels end."""
    other = await connect(node.url)
    await start_kernel(other)  # the other node's kernels have file systems too
    session = await connect(disk_node.url)
    kernels = [await start_kernel(session) for _ in range(2)]
    owners = {source for _, _, source in filesystem_view.mounts() if source.startswith(SOURCE + "-")}
    assert len(owners) >= 2 and len(disk_mounts()) > 4, "two spawners' kernels have file systems on this host"
    look = (
        "import json, os\n"
        "print(json.dumps([[l.split()[4], l.split(' - ')[1].split()[1]] for l in open('/proc/self/mountinfo')\n"
        "    if l.split(' - ')[1].split()[1].startswith('cellserver-disk')] + [[os.getcwd(), os.environ['TMPDIR']]]))"
    )
    for kernel_id in kernels:
        await call(session, kernel_id, "restart", deadline=60)  # a namespace made now, with all of them about
        seen = await printed(session, kernel_id, look)
        cwd, tmpdir = seen.pop()
        assert sorted(point for point, _ in seen) == sorted([cwd, os.path.dirname(tmpdir)]), seen
    session.leave()
    other.leave()


@pytest.mark.unit
@pytest_twisted.ensureDeferred
async def test_without_mounts_the_walk_and_the_delete_run_off_the_reactor():
    """A spawner that cannot mount (not root) measures and removes directories in threads: its reactor keeps
    turning while 30,000 files are walked and deleted."""
    root = tempfile.mkdtemp()
    try:
        config = SpawnerConfig(disk_limit_mb=1, disk_limit_inodes=1000)
        disks = KernelDisks(config, lambda f, *args: threads.deferToThread(f, *args), mount=False)
        path = os.path.join(root, "kernel")
        disks.make(path)
        for n in range(30000):
            os.close(os.open(os.path.join(path, str(n)), os.O_CREAT | os.O_WRONLY))
        gaps, last = [], [reactor.seconds()]

        def tick():
            gaps.append(reactor.seconds() - last[0])
            last[0] = reactor.seconds()

        ticker = task.LoopingCall(tick)
        ticker.start(0.01)
        reason = await disks.check(path)
        assert reason is not None and reason.cause == "disk_limit" and "1000 files" in str(reason)
        await disks.remove(path)
        ticker.stop()
        assert not os.path.exists(path)
        assert max(gaps) < 1.0, "the reactor stood still {:.2f} s".format(max(gaps))
        await disks.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@sandboxed
@pytest_twisted.ensureDeferred
async def test_a_stopped_node_leaves_no_mount_behind(disk_node):
    """Run last on this module's node: it stops it."""
    session = await connect(disk_node.url)
    kernel_id = await start_kernel(session)
    where = await printed(session, kernel_id, "import json, os; print(json.dumps([os.getcwd(), os.environ['TMPDIR']]))")
    roots = [os.path.dirname(where[0]), os.path.dirname(os.path.dirname(where[1]))]
    (spawner,) = spawner_processes(disk_node.proc.pid)
    source = "{}-{}".format(SOURCE, spawner.pid)
    assert disk_mounts(source) and all(root in [p for p, _, _ in filesystem_view.mounts()] for root in roots)
    session.leave()
    await threads.deferToThread(disk_node.stop)
    assert disk_mounts(source) == [], "the kernels' file systems are unmounted"
    left = [point for point, _, _ in filesystem_view.mounts() if any(point.startswith(root) for root in roots)]
    assert left == [] and not any(os.path.exists(root) for root in roots), left


@pytest.mark.unit
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_killed_spawners_file_systems_are_unmounted_by_the_next():
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now: a spawner that was killed
    root = tempfile.mkdtemp()
    try:
        stale_root, mine = os.path.join(root, "stale-root"), os.path.join(root, "mine")
        stale = os.path.join(stale_root, "kernel")
        os.makedirs(stale)
        os.mkdir(mine)
        filesystem_view.bind_onto_itself(stale_root)
        register_roots(gone.pid, [stale_root])
        filesystem_view.mount_disk(stale, 1, 10, "{}-{}".format(SOURCE, gone.pid))
        filesystem_view.mount_disk(mine, 1, 10, "{}-{}".format(SOURCE, os.getpid()))
        assert detach_stale() >= 1
        points = [point for point, _, _ in filesystem_view.mounts()]
        assert stale not in points and not os.path.exists(stale), "the dead spawner's file system is gone"
        assert stale_root not in points, "and the root it bound onto itself"
        assert mine in points, "a live spawner's file systems are left alone"
        filesystem_view.detach(mine)
    finally:
        shutil.rmtree(root, ignore_errors=True)
