"""One cellserver node as a process: a copy of the project's ``.crossbar`` in a directory, ``crossbar start``, SIGINT.

What ``make cluster`` runs for each node and what the tests start (``tests/node.py``
adds their one change).  The cbdir is a copy of the project's, with ``web``
beside it, so the configuration that runs is the one users run; C{edit} may
change the copy before start.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)


def free_port():
    """A port no one listens on, below Linux's ephemeral range (32768-60999): a port the kernel hands out for
    outgoing connections could be taken by one between this check and Crossbar's listen ("Address already in use")."""
    for _ in range(200):
        port = random.randint(10000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found between 10000 and 32000")


class Node:
    """One ``crossbar start`` in C{directory}/node (see the module docstring); C{env}: more environment variables."""

    def __init__(self, tmpdir, edit=None, web_dir=None, env=None):
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
        if edit is not None:
            edit(config)
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        self.port = free_port()
        self.url = "ws://127.0.0.1:{}/ws".format(self.port)
        self.log_path = os.path.join(self.dir, "node.log")
        self.service_secret = "test-secret-" + os.urandom(8).hex()
        self.proc = None
        self.extra_env = dict(env or {})

    def env(self):
        env = dict(os.environ)
        env["CELL_PORT"] = str(self.port)
        env["CELL_SERVICE_SECRET"] = self.service_secret
        env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def start(self, timeout=90, ready=("spawner local joined", "session router ready", "one-shots served")):
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
        if stop_process(self.proc, signal.SIGINT, timeout):
            self._log.close()


def stop_process(proc, signum, timeout):
    """Ask C{proc} (the leader of its own session) to stop with C{signum}; past C{timeout}, SIGKILL its group.

    False if it was not running (never started, or already gone).
    """
    if proc is None or proc.poll() is not None:
        return False
    proc.send_signal(signum)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return True
