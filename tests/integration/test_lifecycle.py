"""Logs, SIGHUP and SIGTERM of the real wick-server and wick-agent.

- log_file: created 0600, one event per line (JSON lines with stable
  keys), renamed away then SIGHUP (logrotate): the old file is complete,
  the new one gets what follows.
- SIGHUP: a changed log_level and default TTLs apply (debug lines appear,
  a new SVID has the new lifetime, checked with `cryptography`); a changed
  option that needs a restart says so; a broken file is reported with its
  line and the daemon keeps serving unchanged.
- SIGTERM: a Python grpcio client holding a FetchX509SVID watch sees a
  clean UNAVAILABLE status (not a reset), a unary call in flight still
  finishes (or, past the grace period, ends with the same clean status),
  the daemon exits 0 within its bound and removes its socket;
  the server's own drain seen from a raw HTTP/2 client (GOAWAY, then the
  call finishes), its SQLite database intact afterwards; a second SIGTERM
  ends the drain at once.
"""
import json
import os
import re
import signal
import socket
import sqlite3
import struct
import sys
import tempfile
import time
import unittest

import grpc
import hpack
from cryptography import x509

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402

TD = H.TD
HDR = (("workload.spiffe.io", "true"),)
STUBS = H.grpc_stubs("workload.proto")
import workload_pb2 as W  # noqa: E402
import workload_pb2_grpc as WG  # noqa: E402

# Bounds, generous: the daemons' own are 5 s (server) and 2 s (agent) of
# grace plus 1 s to write the last statuses.
EXIT_BOUND = 20
JSON_KEYS = ["time", "level", "role"]
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def read(path):
    with open(path, "rb") as f:
        return f.read().decode()


def wait_for(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def wait_in_file(path, needle, timeout=30):
    return wait_for(lambda: os.path.exists(path) and needle in read(path),
                    "%r in %s" % (needle, path), timeout)


def json_lines(test, text, role):
    """Every line of text is one JSON object with the stable keys first;
    returns them."""
    test.assertTrue(text.endswith("\n"), "last line incomplete")
    out = []
    for line in text.splitlines():
        o = json.loads(line)
        test.assertEqual(list(o)[:3], JSON_KEYS, line)
        test.assertEqual(list(o)[-1], "msg", line)
        test.assertRegex(o["time"], TIME_RE)
        test.assertEqual(o["role"], role)
        test.assertIn(o["level"], ("debug", "info", "warning", "error"))
        out.append(o)
    return out


def lifetime(chain):
    """Seconds between notBefore and notAfter of the leaf, the first of
    the concatenated DER certificates."""
    assert chain[0] == 0x30 and chain[1] & 0x80
    nlen = chain[1] & 0x7f
    length = int.from_bytes(chain[2:2 + nlen], "big") + 2 + nlen
    cert = x509.load_der_x509_certificate(chain[:length])
    return (cert.not_valid_after - cert.not_valid_before).total_seconds()


def db_intact(test, db):
    """No WAL left to recover, and SQLite's own check passes."""
    wal = db + "-wal"
    test.assertFalse(os.path.exists(wal) and os.path.getsize(wal) > 0,
                     "%s left with content" % wal)
    con = sqlite3.connect(db)
    try:
        test.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0],
                         "ok")
    finally:
        con.close()


# ---- a raw HTTP/2 client: frames by hand, so that what comes after a GOAWAY
# is seen as sent (libraries close their state machine at GOAWAY) --------

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0, 1, 3, 4, 6, 7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


class RawH2:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                          self.frame(SETTINGS, 0, 0, b""))

    @staticmethod
    def frame(ftype, flags, sid, payload):
        return struct.pack(">I", len(payload))[1:] + \
            bytes([ftype, flags]) + struct.pack(">I", sid) + payload

    def start_call(self, sid, path):
        hdrs = [(":method", "POST"), (":scheme", "http"), (":path", path),
                (":authority", "localhost"),
                ("content-type", "application/grpc"), ("te", "trailers")]
        self.sock.sendall(self.frame(HEADERS, END_HEADERS, sid,
                                     self.enc.encode(hdrs)))

    def send_data(self, sid, data, end=False):
        self.sock.sendall(self.frame(DATA, END_STREAM if end else 0, sid,
                                     data))

    def next_frame(self, timeout):
        """(type, flags, stream, payload), or None at EOF; SETTINGS and
        PING are acknowledged here."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    ftype, flags = self.buf[3], self.buf[4]
                    sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7fffffff
                    payload = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    if ftype == SETTINGS and not flags & ACK:
                        self.sock.sendall(self.frame(SETTINGS, ACK, 0, b""))
                    elif ftype == PING and not flags & ACK:
                        self.sock.sendall(self.frame(PING, ACK, 0, payload))
                    return ftype, flags, sid, payload
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def wait_frame(self, ftype, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            f = self.next_frame(max(0.1, deadline - time.monotonic()))
            if f is None:
                raise AssertionError("connection closed before frame %d" %
                                     ftype)
            if f[0] == ftype:
                return f
            if f[0] == RST_STREAM:
                raise AssertionError("stream reset: error %d" %
                                     struct.unpack(">I", f[3])[0])

    def headers(self, payload):
        return dict(self.dec.decode(payload))

    def close(self):
        self.sock.close()


def pb_string(field, s):
    b = s.encode()
    return H.pb_varint(field << 3 | 2) + H.pb_varint(len(b)) + b


def grpc_frame(msg):
    return b"\x00" + struct.pack(">I", len(msg)) + msg


class LifecycleTest(unittest.TestCase):

    def setUp(self):
        self.daemons = []

    def tearDown(self):
        for d in reversed(self.daemons):
            if d.proc is not None:
                if d.proc.poll() is None:
                    os.kill(d.proc.pid, signal.SIGCONT)
                d.stop()

    def server(self, **kw):
        srv = H.Server(port=H.free_port(), **kw)
        self.daemons.append(srv)
        return srv.start()

    def edit(self, path, *pairs):
        text = read(path)
        for old, new in pairs:
            self.assertIn(old, text)
            text = text.replace(old, new)
        with open(path, "w") as f:
            f.write(text)

    def hup(self, d, log, count):
        """SIGHUP d and wait for the count-th reload summary in log."""
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log().count("read again:") >= count,
                 "reload summary %d" % count)
        return log()

    # ---- server: log_file, JSON lines, rotation ---------------------------

    def test_server_log_file_rotation(self):
        tmp = tempfile.mkdtemp(prefix="wick-life-")
        logf = os.path.join(tmp, "logs", "server.log")
        srv = self.server(tmpdir=tmp, log_level="INFO", extra=(
            '    log_file = "%s"\n    log_format = "json"' % logf))
        wait_in_file(logf, "wick-server started")
        self.assertEqual(os.stat(logf).st_mode & 0o777, 0o600)
        # Nothing goes to stderr any more.
        self.assertNotIn("wick-server started", srv.output())
        srv.token()
        wait_in_file(logf, "join_token")
        # logrotate: rename, then SIGHUP.
        os.rename(logf, logf + ".1")
        srv.token()
        srv.proc.send_signal(signal.SIGHUP)
        wait_in_file(logf, "read again")
        srv.token()
        self.assertEqual(os.stat(logf).st_mode & 0o777, 0o600)
        self.assertEqual(srv.stop(), 0)
        old = json_lines(self, read(logf + ".1"), "server")
        new = json_lines(self, read(logf), "server")
        self.assertTrue(any("wick-server started" in o["msg"] for o in old))
        self.assertFalse(any("read again" in o["msg"] for o in old))
        # The audit lines of the tokens: two before the reopening (one
        # after the rename), one after.
        audit = [o for o in old if o["msg"].startswith("audit: ")]
        self.assertGreaterEqual(len(audit), 2)
        self.assertTrue(any(o["msg"].startswith("audit: ") for o in new))
        self.assertTrue(any("wick-server stopped" in o["msg"] for o in new))
        self.assertEqual(srv.output().strip(), "")

    # ---- server: SIGHUP applies, refuses, reports -------------------------

    def test_server_reload(self):
        srv = self.server(log_level="INFO")
        out = srv.output
        srv.cli("healthcheck")
        self.assertNotIn(" debug: ", out())
        self.edit(srv.conf, ('log_level = "INFO"', 'log_level = "DEBUG"'),
                  ('default_x509_svid_ttl = "1h"',
                   'default_x509_svid_ttl = "30m"'),
                  ('jwt_issuer = "https://issuer.example.org"',
                   'jwt_issuer = "https://other.example.org"'))
        text = self.hup(srv, out, 1)
        self.assertIn("reload: log_level is now debug (was info)", text)
        self.assertIn("reload: default_x509_svid_ttl is now 1800 s (was "
                      "3600 s)", text)
        self.assertIn("reload: jwt_issuer changed: it needs a restart",
                      text)
        self.assertNotIn("trust_domain changed", text)
        # Debug lines appear now.
        srv.cli("healthcheck")
        wait_for(lambda: re.search(r" server debug: call \S+ from .* ended",
                                   out()), "a debug line")
        # A broken file: its line is named, nothing changes, the server
        # serves on.
        good = read(srv.conf)
        with open(srv.conf, "w") as f:
            f.write(good.replace('log_level = "DEBUG"',
                                 'log_level = "DEBUG"\n    bind_port = ['))
        srv.proc.send_signal(signal.SIGHUP)
        m = wait_for(lambda: re.search(r"server error: reload: .*line \d+.*"
                                       r"nothing was changed", out()),
                     "the parse error")
        self.assertIsNotNone(m)
        with open(srv.conf, "w") as f:
            f.write(good.replace('log_level = "DEBUG"',
                                 'log_level = "LOUD"'))
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: 'unknown level "LOUD"' in out(), "the bad level")
        self.assertIsNone(srv.proc.poll())
        srv.cli("healthcheck")
        srv.token()
        self.assertEqual(srv.stop(), 0)

    # ---- agent and server together: TTLs, log file, drains -----------------

    def test_agent_reload_and_drains(self):
        srv = self.server(log_level="INFO")
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        agent_id = H.agent_spiffe_id(tok)
        uid = os.getuid()
        main_id = "spiffe://%s/workload/main" % TD
        eid = srv.create_entry(main_id, agent_id, ["unix:uid:%d" % uid])
        ag = H.AgentDaemon(srv, bundle)
        self.daemons.append(ag)
        alog = os.path.join(ag.tmp, "log", "agent.log")
        self.edit(ag.conf, ('log_level = "DEBUG"',
                            'log_level = "INFO"\n    log_file = "%s"' % alog))
        ag.ready = lambda: os.path.exists(ag.sock) and \
            os.path.exists(alog) and "Workload API listening" in read(alog)
        ag.start(token=tok)
        self.assertEqual(os.stat(alog).st_mode & 0o777, 0o600)
        target = "unix://" + ag.sock

        def svids():
            resp = H.fetch_x509(target)
            return ({s.spiffe_id: s for s in resp.svids} if resp is not None
                    else {})

        before = wait_for(lambda: svids().get(main_id), "the first SVID")
        self.assertAlmostEqual(lifetime(before.x509_svid), 3600, delta=120)

        # The server's default TTL, reloaded, makes the next SVIDs.
        self.edit(srv.conf, ('default_x509_svid_ttl = "1h"',
                             'default_x509_svid_ttl = "20m"'))
        self.hup(srv, srv.output, 1)
        self.assertIn("default_x509_svid_ttl is now 1200 s", srv.output())
        # The agent: debug on, an option that needs a restart.
        self.edit(ag.conf, ('log_level = "INFO"', 'log_level = "DEBUG"'),
                  ('allowed_foreign_jwt_claims = ["team"]',
                   'allowed_foreign_jwt_claims = ["team", "dept"]'))
        text = self.hup(ag, lambda: read(alog), 1)
        self.assertIn("reload: log_level is now debug (was info)", text)
        self.assertIn("reload: allowed_foreign_jwt_claims changed: it needs "
                      "a restart", text)
        new_id = "spiffe://%s/workload/after" % TD
        srv.create_entry(new_id, agent_id, ["unix:uid:%d" % uid])
        after = wait_for(lambda: svids().get(new_id), "the new SVID")
        self.assertAlmostEqual(lifetime(after.x509_svid), 1200, delta=120)
        # Debug lines from the agent now.
        wait_in_file(alog, "X.509-SVIDs issued")

        # logrotate for the agent.
        os.rename(alog, alog + ".1")
        self.hup(ag, lambda: read(alog) if os.path.exists(alog) else "", 1)
        self.assertTrue(read(alog + ".1").endswith("\n"))
        self.assertEqual(read(alog + ".1").count("read again"), 1)
        self.assertEqual(read(alog).count("read again"), 1)

        # ---- the agent's drain: a watch, and a unary call in flight -----
        ch = grpc.insecure_channel(target)
        self.addCleanup(ch.close)
        stub = WG.SpiffeWorkloadAPIStub(ch)
        watch = stub.FetchX509SVID(W.X509SVIDRequest(), metadata=HDR)
        self.assertIn(main_id, [s.spiffe_id for s in next(watch).svids])
        # The server stops answering: a JWT-SVID asked now waits for it.
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            jwt_call = stub.FetchJWTSVID.future(
                W.JWTSVIDRequest(audience=["drain-test"], spiffe_id=main_id),
                metadata=HDR, timeout=60)
            time.sleep(1)
            self.assertFalse(jwt_call.done())
            t0 = time.monotonic()
            ag.proc.send_signal(signal.SIGTERM)
            # The watch ends with a status: clean, not a reset.
            with self.assertRaises(grpc.RpcError) as cm:
                for _ in watch:
                    pass
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(cm.exception.details(), "server shutting down")
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        # The call in flight finishes during the drain.
        resp = jwt_call.result(timeout=30)
        self.assertEqual(resp.svids[0].spiffe_id, main_id)
        self.assertEqual(resp.svids[0].svid.count("."), 2)
        rc = ag.proc.wait(timeout=EXIT_BOUND)
        self.assertLess(time.monotonic() - t0, EXIT_BOUND)
        self.assertEqual(rc, 0)
        ag.stop()
        self.assertFalse(os.path.exists(ag.sock))
        self.assertIn("wick-agent stopped", read(alog))

        # ---- the server's drain: GOAWAY, then the call in flight ends ----
        h2 = RawH2(srv.sock)
        self.addCleanup(h2.close)
        msg = grpc_frame(pb_string(1, eid))
        h2.start_call(1, "/wick.admin.Entries/GetEntry")
        h2.send_data(1, msg[:4])        # the call started, its message not
        time.sleep(0.5)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        goaway = h2.wait_frame(GOAWAY)
        last_sid, code = struct.unpack(">II", goaway[3][:8])
        self.assertEqual(code, 0)               # NO_ERROR
        self.assertGreaterEqual(last_sid & 0x7fffffff, 1)
        self.assertFalse(os.path.exists(srv.sock))  # no new clients
        h2.send_data(1, msg[4:], end=True)
        hdrs = h2.headers(h2.wait_frame(HEADERS)[3])
        self.assertEqual(hdrs.get(":status"), "200")
        data = h2.wait_frame(DATA)[3]
        self.assertIn(eid.encode(), data)
        trailers = h2.headers(h2.wait_frame(HEADERS)[3])
        self.assertEqual(trailers.get("grpc-status"), "0")
        rc = srv.proc.wait(timeout=EXIT_BOUND)
        self.assertLess(time.monotonic() - t0, EXIT_BOUND)
        self.assertEqual(rc, 0)
        out = srv.output()
        srv.stop()
        self.assertIn("wick-server stopped", out)
        self.assertIsNone(H.sanitizer_report(out))
        db_intact(self, srv.db)

    # ---- a call that outlasts the agent's grace period ---------------------

    def test_agent_grace_expires(self):
        main_id = "spiffe://%s/workload/main" % TD
        srv, bundle, ag = H.server_and_agent(
            entries=[(main_id, ["unix:uid:%d" % os.getuid()])],
            log_level="INFO")
        self.daemons += [srv, ag]
        ch = grpc.insecure_channel("unix://" + ag.sock)
        self.addCleanup(ch.close)
        stub = WG.SpiffeWorkloadAPIStub(ch)
        wait_for(lambda: any(s.spiffe_id == main_id for s in next(
            stub.FetchX509SVID(W.X509SVIDRequest(), metadata=HDR,
                               timeout=5)).svids), "the SVID")
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            jwt_call = stub.FetchJWTSVID.future(
                W.JWTSVIDRequest(audience=["grace-test"]), metadata=HDR,
                timeout=60)
            time.sleep(1)
            self.assertFalse(jwt_call.done())
            ag.proc.send_signal(signal.SIGTERM)
            # The server never answers: at the end of the grace period the
            # call ends with a status, not with its connection cut.
            with self.assertRaises(grpc.RpcError) as cm:
                jwt_call.result(timeout=EXIT_BOUND)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(cm.exception.details(), "server shutting down")
            self.assertEqual(ag.proc.wait(timeout=EXIT_BOUND), 0)
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        H.stop_cleanly(ag, srv)
        self.assertFalse(os.path.exists(ag.sock))

    # ---- a second SIGTERM ends the drain at once ---------------------------

    def test_second_sigterm(self):
        srv = self.server(log_level="INFO")
        h2 = RawH2(srv.sock)
        self.addCleanup(h2.close)
        h2.start_call(1, "/wick.admin.Entries/GetEntry")
        h2.send_data(1, grpc_frame(pb_string(1, "x" * 40))[:8])
        time.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        h2.wait_frame(GOAWAY)
        srv.proc.send_signal(signal.SIGTERM)
        # The connection goes without the status the end of the grace
        # period would have sent: the drain was cut short.
        frames = []
        while True:
            f = h2.next_frame(EXIT_BOUND)
            if f is None:
                break
            frames.append(f)
        self.assertNotIn(HEADERS, [f[0] for f in frames])
        self.assertEqual(srv.proc.wait(timeout=EXIT_BOUND), 0)
        out = srv.output()
        srv.stop()
        self.assertIn("second signal: closing every connection now", out)
        self.assertFalse(os.path.exists(srv.sock))
        db_intact(self, srv.db)


if __name__ == "__main__":
    unittest.main(verbosity=2)
