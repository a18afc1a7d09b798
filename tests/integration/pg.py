#!/usr/bin/python3
"""A scratch PostgreSQL server for the tests, on a Unix socket only.

    pg.py start STATE         initdb in a new scratch directory, start
                              postgres there, record it in the file STATE
    pg.py stop STATE          stop it (SIGINT: fast shutdown), remove the
                              directory and STATE
    pg.py exec STATE -- CMD   run CMD with WICK_TEST_PG set to the
                              connection string of the server in STATE
    pg.py run -- CMD          start a server, run CMD with WICK_TEST_PG,
                              stop it; CMD's exit status

WICK_TEST_PG names the server and a superuser ("host=DIR user=wick"); a
test adds dbname= (the database "postgres" exists to connect to while
creating its own).  The server listens on no TCP address, trusts local
connections (only its own user and root can enter the 0700 directory)
and runs as the "postgres" system user when started by root (postgres
refuses to run as root).  Debian's binaries are used; a missing
PostgreSQL is an error, never a skip.

From Python: `with PostgresServer() as pg: pg.conninfo(...)`.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PG_BIN_DIRS = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
               "/usr/lib/postgresql/14/bin", "/usr/lib/postgresql/13/bin"]
SUPERUSER = "wick"


def pg_bin(name):
    for d in PG_BIN_DIRS:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    found = shutil.which(name)
    if found is None:
        raise RuntimeError("PostgreSQL's %s not found: apt-get install "
                           "postgresql (or run scripts/setup.sh)" % name)
    return found


def _run_as():
    """(uid, gid) to run the server as: postgres's when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pw = pwd.getpwnam("nobody")
    return (pw.pw_uid, pw.pw_gid)


def _demote(ids):
    if ids is None:
        return None

    def fn():
        os.setgroups([])
        os.setgid(ids[1])
        os.setuid(ids[0])
    return fn


class PostgresServer:
    def __init__(self, state=None):
        self.dir = None
        self.pid = None
        self.proc = None	# when started here, not loaded from a state
        self.state = state

    def conninfo(self, dbname=None):
        s = "host=%s user=%s" % (self.dir, SUPERUSER)
        return s + (" dbname=%s" % dbname if dbname else "")

    def start(self):
        ids = _run_as()
        initdb, postgres = pg_bin("initdb"), pg_bin("postgres")
        # Short: the socket path must fit in sun_path.
        self.dir = tempfile.mkdtemp(prefix="wick-pg-", dir="/tmp")
        os.chmod(self.dir, 0o700)
        if ids is not None:
            os.chown(self.dir, ids[0], ids[1])
        data = os.path.join(self.dir, "data")
        log = os.path.join(self.dir, "log")
        with open(log, "w") as f:
            if ids is not None:
                os.chown(log, ids[0], ids[1])
            r = subprocess.run([initdb, "-D", data, "-U", SUPERUSER,
                                "-A", "trust", "-E", "UTF8",
                                "--locale=C.UTF-8", "--no-sync"],
                               stdout=f, stderr=subprocess.STDOUT,
                               preexec_fn=_demote(ids), cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError("initdb failed: %s" % open(log).read()[-2000:])
        logf = open(log, "a")
        # fsync off: the tests kill clients, never the server.
        p = subprocess.Popen([postgres, "-D", data,
                              "-c", "listen_addresses=",
                              "-c", "unix_socket_directories=" + self.dir,
                              "-c", "fsync=off",
                              "-c", "max_connections=100"],
                             stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             preexec_fn=_demote(ids), cwd=self.dir,
                             start_new_session=True)
        logf.close()
        self.proc, self.pid = p, p.pid
        sock = os.path.join(self.dir, ".s.PGSQL.5432")
        isready = pg_bin("pg_isready")
        deadline = time.monotonic() + 60
        while True:
            if p.poll() is not None:
                raise RuntimeError("postgres exited: %s" %
                                   open(log).read()[-2000:])
            if os.path.exists(sock) and subprocess.run(
                    [isready, "-q", "-h", self.dir, "-U", SUPERUSER,
                     "-d", "postgres"]).returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("postgres did not become ready")
            time.sleep(0.05)
        if self.state is not None:
            with open(self.state, "w") as f:
                json.dump({"dir": self.dir, "pid": self.pid}, f)
        return self

    def load(self):
        with open(self.state) as f:
            st = json.load(f)
        self.dir, self.pid = st["dir"], st["pid"]
        return self

    def _alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        # Our own child: reap it; a zombie is gone.
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            return pid == 0
        except ChildProcessError:
            return True

    def stop(self):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)	# fast shutdown
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 30
            while self._alive():
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    deadline += 30
                time.sleep(0.05)
            self.pid = self.proc = None
        if self.dir is not None:
            for _ in range(50):
                shutil.rmtree(self.dir, ignore_errors=True)
                if not os.path.exists(self.dir):
                    break
                time.sleep(0.1)
            self.dir = None
        if self.state is not None and os.path.exists(self.state):
            os.unlink(self.state)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _cmd(argv):
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        sys.exit("pg.py: no command after --")
    return argv[argv.index("--") + 1:]


def main(argv):
    if len(argv) >= 2 and argv[0] == "start":
        PostgresServer(argv[1]).start()
        return 0
    if len(argv) >= 2 and argv[0] == "stop":
        if not os.path.exists(argv[1]):
            return 0
        PostgresServer(argv[1]).load().stop()
        return 0
    if len(argv) >= 2 and argv[0] == "exec":
        if not os.path.exists(argv[1]):
            sys.exit("pg.py: no PostgreSQL server recorded in %s (the "
                     "pg_start fixture did not run?)" % argv[1])
        pg = PostgresServer(argv[1]).load()
        env = dict(os.environ, WICK_TEST_PG=pg.conninfo())
        cmd = _cmd(argv)
        os.execvpe(cmd[0], cmd, env)
    if len(argv) >= 1 and argv[0] == "run":
        with PostgresServer() as pg:
            env = dict(os.environ, WICK_TEST_PG=pg.conninfo())
            return subprocess.run(_cmd(argv), env=env).returncode
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
