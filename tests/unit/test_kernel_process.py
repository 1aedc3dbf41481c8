"""A kernel's uid is not handed to another kernel while a process of it may still come to life."""

import types

import pytest

from components.common import errors
from components.common.config import SpawnerConfig
from components.worker.kernel_process import KernelProcess
from tests.fakes import FakeDisks, FakeQueuedMaster, FakeSandbox

pytestmark = pytest.mark.unit


def process(tmp_path, sandbox, master, monkeypatch):
    monkeypatch.setattr("os.chown", lambda path, uid, gid: None)  # the fake uids own nothing here
    host = types.SimpleNamespace(
        config=SpawnerConfig(),
        sandbox=sandbox,
        master_for=lambda kernel_name: master,
        path_for=lambda kernel_name: "/usr/bin:/bin",
        disks=FakeDisks(),
        runtime_root=str(tmp_path),
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return KernelProcess("k" * 32, host, str(cwd), on_pid=lambda pid: None)


def test_a_start_given_up_while_its_fork_is_queued_keeps_its_uid_until_that_process_is_gone(tmp_path, monkeypatch):
    sandbox, master = FakeSandbox(uids=(100001,)), FakeQueuedMaster()
    proc = process(tmp_path, sandbox, master, monkeypatch)
    forked = proc.fork(niced=False)
    forked.addErrback(lambda failure: None)
    assert proc.uid == 100001

    proc.release()  # the start timed out: the kernel is dead, but the master has not forked it yet
    assert sandbox.released == [], "the uid was freed while a process of it may still come to life"

    master.queued[0].callback(4242)  # the late child: the kernel kills it, and its exit is reported
    assert proc.uid == 100001 and sandbox.released == []
    proc.exited(4242)
    proc.release()
    assert sandbox.released == [100001]


def test_a_queued_fork_that_fails_frees_the_uid_of_a_dead_kernel(tmp_path, monkeypatch):
    sandbox, master = FakeSandbox(uids=(100001,)), FakeQueuedMaster()
    proc = process(tmp_path, sandbox, master, monkeypatch)
    forked = proc.fork(niced=False)
    failures = []
    forked.addErrback(failures.append)
    proc.release()
    assert sandbox.released == []
    master.queued[0].errback(errors.Capacity("the kernel could not be forked"))
    assert failures and sandbox.released == [100001]


def test_a_kernel_that_ran_frees_its_uid_once_its_process_exited(tmp_path, monkeypatch):
    sandbox, master = FakeSandbox(uids=(100001,)), FakeQueuedMaster()
    proc = process(tmp_path, sandbox, master, monkeypatch)
    proc.fork(niced=False)
    master.queued[0].callback(4242)
    proc.release()  # dead, but its process has not been reaped yet
    assert sandbox.released == []
    proc.exited(4242)
    proc.release()
    assert sandbox.released == [100001]
