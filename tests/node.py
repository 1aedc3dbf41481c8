"""A real Crossbar node for tests: its own cbdir copy, a free port, SIGINT to stop."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)


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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One ``crossbar start`` in a temporary directory.

    The cbdir is a copy of the project's ``.crossbar`` with ``web`` beside it,
    so the configuration under test is the one users run, but for the quotas
    per client address (L{one_address_for_all}); C{edit} may change the copy
    (e.g. spawner settings) before start.
    """

    def __init__(self, tmpdir, edit=None, web_dir=None):
        self.dir = os.path.join(str(tmpdir), "node")
        os.makedirs(self.dir)
        self.cbdir = os.path.join(self.dir, ".crossbar")
        shutil.copytree(
            os.path.join(ROOT, ".crossbar"),
            self.cbdir,
            ignore=shutil.ignore_patterns("*.sock", "node.*", "*.log", "key.*"),
        )
        os.symlink(web_dir or os.path.join(ROOT, "web"), os.path.join(self.dir, "web"))
        path = os.path.join(self.cbdir, "config.json")
        with open(path) as f:
            config = json.load(f)
        one_address_for_all(config)
        if edit is not None:
            edit(config)
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        self.port = free_port()
        self.url = "ws://127.0.0.1:{}/ws".format(self.port)
        self.log_path = os.path.join(self.dir, "node.log")
        self.service_secret = "test-secret-" + os.urandom(8).hex()
        self.proc = None

    def env(self):
        env = dict(os.environ)
        env["CELL_PORT"] = str(self.port)
        env["CELL_SERVICE_SECRET"] = self.service_secret
        env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, timeout=90, ready=("spawner local joined", "session router ready")):
        self._log_offset = len(self.log()) if os.path.exists(self.log_path) else 0
        # The node's log is the node's: readable by its user only, as a deployment's journal is.
        self._log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(VENV_BIN, "crossbar"), "start", "--cbdir", self.cbdir, "--color", "false"],
            cwd=self.dir,
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("crossbar exited with {}:\n{}".format(self.proc.returncode, self.log()))
            text = self.log()[self._log_offset :]
            if all(marker in text for marker in ready):
                return self
            time.sleep(0.1)  # polling a log file for start-up, not synchronising a test
        self.stop()
        raise RuntimeError("node did not start within {} s:\n{}".format(timeout, self.log()[-5000:]))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()
