"""A real, throwaway PostgreSQL server for tests and local clusters (Debian's PostgreSQL, ``make postgresql``).

``PostgresServer(directory)`` makes a cluster with ``initdb``, starts it on a free
port on 127.0.0.1, and creates a ``cellserver`` role (a random password,
scram-sha-256) owning a ``cellserver`` database: C{dsn} is what a node puts in
its ``CELL_PERMALINK_DSN``.  The superuser ``postgres`` is trusted only on the
unix socket, which lives inside the 0700 data directory.  PostgreSQL refuses to
run as root, so under root the server runs as ``nobody``, in a fresh
directory under the system temp dir (``nobody`` cannot pass through pytest's
0700 directories; a link ``DIRECTORY/postgres`` points at it).

As a library (no pytest here)::

    with PostgresServer(directory) as server:   # start() ... close()
        use(server.dsn)
        server.stop(); server.start()          # or server.restart(): the data stays
        server.freeze(); server.thaw()         # a server that holds connections but answers nothing

or from a shell: ``python -m deploy.postgres DIRECTORY`` prints the DSN and runs until Ctrl-C.
"""

import atexit
import glob
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import psutil

from deploy.node import free_port

SUPERUSER = "postgres"
RUN_AS = ("nobody", "nogroup")


def bin_dir():
    """The newest ``/usr/lib/postgresql/N/bin`` with an ``initdb`` (or what ``pg_config --bindir`` names)."""
    found = [os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found.sort(key=lambda d: [int(x) if x.isdigit() else 0 for x in d.split("/")[-2].split(".")])
    if not found:
        try:
            listed = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        except OSError:
            listed = ""
        found = [listed] if listed and os.path.exists(os.path.join(listed, "initdb")) else []
    if not found:
        raise RuntimeError("PostgreSQL's server programs (initdb) are not installed: run 'make postgresql'")
    return found[-1]


class PostgresServer:
    """One PostgreSQL cluster of its own; see the module docstring."""

    def __init__(self, directory, user="cellserver", database="cellserver", port=None, durable=False):
        self.bin = bin_dir()
        self.user = user
        self.database = database
        self.password = secrets.token_hex(16)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.durable = durable
        self.run_as = RUN_AS if os.geteuid() == 0 else None
        directory = os.path.abspath(str(directory))
        os.makedirs(directory, exist_ok=True)
        if self.run_as:
            self.root = tempfile.mkdtemp(prefix="cell-pg-")  # 0700; handed to nobody below
            shutil.chown(self.root, *self.run_as)
            self.link = os.path.join(directory, "postgres")
            if not os.path.lexists(self.link):
                os.symlink(self.root, self.link)
        else:
            self.link = None
            self.root = os.path.join(directory, "postgres")
            os.makedirs(self.root, mode=0o700)
        self.data_dir = os.path.join(self.root, "data")
        if len(os.path.join(self.data_dir, ".s.PGSQL.65535")) > 100:  # a unix socket path holds 107 bytes
            raise RuntimeError(
                "{} is too long a path for PostgreSQL's socket: use a shorter directory".format(self.root)
            )
        self.log_path = os.path.join(self.root, "server.log")
        self._role_made = False
        atexit.register(self.stop)

    @property
    def dsn(self):
        """libpq key/value DSN of the cellserver role over TCP, with its password."""
        return "host={} port={} dbname={} user={} password={}".format(
            self.host, self.port, self.database, self.user, self.password
        )

    @property
    def superuser_dsn(self):
        """The superuser over the unix socket (trusted: only the server's user and root can enter its directory)."""
        return "host={} port={} dbname=postgres user={}".format(self.data_dir, self.port, SUPERUSER)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.close()

    def start(self, timeout=60):
        """Initialise (the first time), start, and wait until the cellserver role can log in over TCP."""
        if not os.path.exists(os.path.join(self.data_dir, "PG_VERSION")):
            self._initdb()
        # pg_ctl -w notices a postmaster that dies at start; the poll below waits for the TCP listener.
        self._ctl("start", "-w", "-t", str(int(timeout)), "-l", self.log_path)
        self._wait_ready(timeout)
        if not self._role_made:
            self._create_role_and_database()
            self._role_made = True
        return self

    def stop(self, mode="fast"):
        """``pg_ctl stop -m MODE`` (fast: sessions are ended, as in a restart), waiting until it is down."""
        if self.running():
            self._ctl("stop", "-m", mode, "-w", "-t", "60")

    def restart(self):
        self.stop()
        return self.start()

    def freeze(self):
        """SIGSTOP the server and its sessions: connections stay open but nothing answers (a hung host)."""
        postmaster = psutil.Process(self.pid())
        postmaster.suspend()  # first: it starts no session while the others stop
        for child in postmaster.children(recursive=True):
            child.suspend()

    def thaw(self):
        postmaster = psutil.Process(self.pid())
        for child in postmaster.children(recursive=True):
            child.resume()
        postmaster.resume()

    def pid(self):
        """The postmaster's pid (each of its children is a session leader of its own: signal them one by one)."""
        with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
            return int(f.readline())

    def running(self):
        return os.path.exists(self.data_dir) and self._ctl("status", check=False).returncode == 0

    def close(self):
        """Stop the server and delete its files."""
        self.stop()
        atexit.unregister(self.stop)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.link and os.path.islink(self.link) and os.readlink(self.link) == self.root:
            os.unlink(self.link)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- the steps --

    def _initdb(self):
        self._run(
            os.path.join(self.bin, "initdb"),
            "-D",
            self.data_dir,
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        )
        settings = {
            "listen_addresses": "'{}'".format(self.host),
            "port": str(self.port),
            "unix_socket_directories": "'{}'".format(self.data_dir),
            "password_encryption": "'scram-sha-256'",
            "shared_buffers": "'16MB'",
            "max_connections": "50",
            "logging_collector": "off",
        }
        if not self.durable:  # a test server: a crash of the machine may lose it
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.write("\n# tests/postgres.py\n")
            f.writelines("{} = {}\n".format(k, v) for k, v in settings.items())
        # Only the socket in the 0700 data directory is trusted; TCP always asks for a scram password.
        with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        isready = [os.path.join(self.bin, "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)]
        while subprocess.run(isready, capture_output=True).returncode != 0:  # poll
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not start within {} s:\n{}".format(timeout, self.log()[-5000:]))
            time.sleep(0.05)

    def _create_role_and_database(self):
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.superuser_dsn, autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self.password)
                )
            )
            connection.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.database), sql.Identifier(self.user))
            )
        # The role logs in over TCP with its password, as a node will.
        with psycopg.connect(self.dsn, connect_timeout=5) as connection:
            connection.execute("SELECT 1")

    def _ctl(self, *args, check=True):
        return self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data_dir, *args, check=check)

    def _run(self, *command, check=True):
        if self.run_as:
            user, group = self.run_as
            command = ("setpriv", "--reuid=" + user, "--regid=" + group, "--clear-groups", "--") + command
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": self.root}
        result = subprocess.run(command, cwd=self.root, env=env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(
                "{} failed ({}):\n{}{}\n{}".format(
                    " ".join(command), result.returncode, result.stdout, result.stderr, self.log()[-3000:]
                )
            )
        return result


def main(argv):
    """``python -m deploy.postgres DIRECTORY``: a server until Ctrl-C (its DSN on stdout)."""
    import signal

    directory = argv[1] if len(argv) > 1 else tempfile.mkdtemp(prefix="cell-postgres-")
    with PostgresServer(directory) as server:
        print(server.dsn, flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: close() runs
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main(sys.argv)
