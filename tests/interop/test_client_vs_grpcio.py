"""OUR gRPC client (wick-testcli) against a Python grpcio server
(py_echo_server.py), over a Unix socket and over TCP with mutual TLS.

Run: WICK_TESTCLI=... WICK_TESTCERTS=... /usr/bin/python3 test_client_vs_grpcio.py
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_harness as H  # noqa: E402

CLI = os.environ.get("WICK_TESTCLI")
CERTS = os.environ.get("WICK_TESTCERTS")
if not CLI or not CERTS:
    sys.exit("set WICK_TESTCLI and WICK_TESTCERTS")
TMP = H.new_tmpdir()
PKI = H.make_pki(CERTS, TMP)
HERE = os.path.dirname(os.path.abspath(__file__))
LIMIT = 4 * 1024 * 1024


class PyServer:
    def __init__(self):
        self.sock = os.path.join(TMP, "py.sock")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "py_echo_server.py"),
             "-u", self.sock, "-t", "127.0.0.1:0",
             "-c", os.path.join(PKI, "server.pem"),
             "-k", os.path.join(PKI, "server.key"),
             "-a", os.path.join(PKI, "ca.pem")], stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("ready"), line
        self.port = int(line.split("tcp=")[1].rsplit(":", 1)[1])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run(target, *args, tls=None, timeout_ms=None, max_recv=None):
    cmd = [CLI, target]
    if tls is not None:
        cmd += ["-c", os.path.join(PKI, tls + ".pem"),
                "-k", os.path.join(PKI, tls + ".key"),
                "-a", os.path.join(PKI, "ca.pem")]
    if timeout_ms is not None:
        cmd += ["-T", str(timeout_ms)]
    if max_recv is not None:
        cmd += ["-m", str(max_recv)]
    cmd += list(args)
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    assert "AddressSanitizer" not in err and "runtime error:" not in err, err
    assert p.returncode in (0, 1), (p.returncode, err)
    return json.loads(p.stdout), p.returncode


class ClientCases:
    def call(self, *args, **kw):
        if self.tls is not None:
            kw.setdefault("tls", self.tls)
        return run(self.target, *args, **kw)[0]

    def test_unary_and_metadata(self):
        r = self.call("unary", "-M", "hello", "-P", "10",
                      "-H", "x-echo-plain=v1", "-H", "x-echo-trailer=tail",
                      "-H", "x-echo-blob-bin=raw\x01bytes", "-H", "other=seen")
        self.assertEqual(r["status"], 0, r)
        self.assertEqual(r["last"]["message"], "hello")
        self.assertEqual(r["last"]["payload_len"], 10)
        self.assertEqual(r["last"]["metadata"]["other"], "seen")
        self.assertEqual(r["headers"]["x-echo-plain"], "v1")
        self.assertEqual(r["headers"]["x-echo-blob-bin"], "raw\x01bytes")
        self.assertEqual(r["trailers"]["x-trailer"], "tail")

    def test_status_codes_and_messages(self):
        for code in range(1, 17):
            msg = "code %d: 100%% näive\nnext" % code
            r = self.call("unary", "-S", str(code), "-E", msg)
            self.assertEqual(r["status"], code)
            self.assertEqual(r["status_message"], msg)

    def test_deadline(self):
        r = self.call("unary", "-D", "3000", timeout_ms=300)
        self.assertEqual(r["status"], 4)
        r = self.call("unary", "-M", "d", timeout_ms=5000)
        self.assertEqual(r["status"], 0)
        self.assertGreater(r["last"]["deadline_ms"], 3000)

    def test_server_stream_and_cancel(self):
        r = self.call("stream", "-n", "1000", "-P", "100")
        self.assertEqual((r["status"], r["messages"]), (0, 1000))
        self.assertEqual(r["last"]["seq"], 999)
        r = self.call("stream", "-n", "3", "-S", "9", "-E", "after three")
        self.assertEqual((r["status"], r["messages"]), (9, 3))
        self.assertEqual(r["status_message"], "after three")
        r = self.call("stream", "-n", "1000", "-i", "20", "-x", "3")
        self.assertEqual((r["status"], r["messages"]), (1, 3))

    def test_bidi(self):
        r = self.call("bidi", "-n", "100", "-P", "32")
        self.assertEqual((r["status"], r["messages"]), (0, 100))
        self.assertEqual(r["last"]["seq"], 99)

    def test_concurrent_100(self):
        r = self.call("concurrent", "-n", "100")
        self.assertEqual(r, {"calls": 100, "ok": 100, "statuses": {"0": 100}})

    def test_receive_limit(self):
        r = self.call("unary", "-R", "5000", max_recv=1000)
        self.assertEqual(r["status"], 8)
        self.assertIn("exceeds the limit", r["status_message"])
        r = self.call("unary", "-R", str(LIMIT - 64))
        self.assertEqual(r["status"], 0)
        self.assertEqual(r["last"]["payload_len"], LIMIT - 64)

    def test_server_limit(self):
        r = self.call("unary", "-P", str(LIMIT + 100))
        self.assertEqual(r["status"], 8)


class UnixTest(ClientCases, unittest.TestCase):
    tls = None

    @classmethod
    def setUpClass(cls):
        cls.server = PyServer()
        cls.target = "unix://" + cls.server.sock

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()


class TlsTest(ClientCases, unittest.TestCase):
    tls = "client"

    @classmethod
    def setUpClass(cls):
        cls.server = PyServer()
        cls.target = "localhost:%d" % cls.server.port

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_refused_by_server_with_foreign_cert(self):
        r, rc = run(self.target, "unary", tls="other-client")
        self.assertEqual(r["status"], 14)
        self.assertEqual(rc, 1)


class NoServerTest(unittest.TestCase):
    def test_no_socket_is_unavailable(self):
        r, rc = run("unix://" + os.path.join(TMP, "absent.sock"), "unary")
        self.assertEqual((r["status"], rc), (14, 1))


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
