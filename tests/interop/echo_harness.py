"""Shared pieces of the interop tests: start wick-testsvc, make a test PKI,
generate the Echo stubs for Python grpcio.

Only the processes started here are ended, by their pid.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load_stubs(tmpdir):
    """Generate echo_pb2 / echo_pb2_grpc into tmpdir and import them."""
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", HERE,
                    "--python_out", tmpdir, "--grpc_python_out", tmpdir,
                    os.path.join(HERE, "echo.proto")], check=True)
    sys.path.insert(0, tmpdir)
    import echo_pb2
    import echo_pb2_grpc
    return echo_pb2, echo_pb2_grpc


def make_pki(testcerts, tmpdir):
    d = os.path.join(tmpdir, "pki")
    os.mkdir(d)
    subprocess.run([testcerts, d], check=True, stdout=subprocess.DEVNULL)
    return d


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


class Server:
    """A wick-testsvc process with a Unix socket and a TLS listener."""

    def __init__(self, binary, tmpdir, pki=None, extra=()):
        self.sock = os.path.join(tmpdir, "echo-%d.sock" % time.monotonic_ns())
        args = [binary, "-u", self.sock]
        if pki is not None:
            args += ["-t", "127.0.0.1:0", "-c", os.path.join(pki, "server.pem"),
                     "-k", os.path.join(pki, "server.key"),
                     "-a", os.path.join(pki, "ca.pem")]
        args += list(extra)
        self.stderr_path = os.path.join(tmpdir, "svc-%d.err" % time.monotonic_ns())
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError("wick-testsvc did not start: %r %s"
                               % (line, self.errors()))
        self.port = None
        for part in line.split():
            if part.startswith("tcp="):
                self.port = int(part.rsplit(":", 1)[1])

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def errors(self):
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=10):
        """SIGTERM, wait, and return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.stderr.close()
        return rc

    def sanitizer_report(self):
        err = self.errors()
        for needle in ("ERROR: AddressSanitizer", "runtime error:",
                       "ERROR: LeakSanitizer"):
            if needle in err:
                return err
        return None


def binaries():
    """Paths of wick-testsvc and wick-testcerts from argv or the environment."""
    svc = os.environ.get("WICK_TESTSVC")
    certs = os.environ.get("WICK_TESTCERTS")
    if not svc or not certs:
        sys.exit("set WICK_TESTSVC and WICK_TESTCERTS")
    return svc, certs


def new_tmpdir():
    return tempfile.mkdtemp(prefix="wick-interop-")
