"""Health checks and Prometheus metrics of the real wick-server and
wick-agent: /live and /ready (not ready before the agent has synced,
ready after), /metrics after real traffic (Python grpcio fetching an
X.509-SVID over the Workload API), checked by Debian's promtool, and
hostile HTTP peers (a slow head, an oversized head, 1,000 connections,
garbage) while a well-behaved client is still served.
"""
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402

TD = H.TD
HDR = (("workload.spiffe.io", "true"),)
STUBS = H.grpc_stubs("workload.proto")
import workload_pb2 as W  # noqa: E402
import workload_pb2_grpc as WG  # noqa: E402

PROMTOOL = shutil.which("promtool")


def health_conf(hport, mport):
    """SPIRE's blocks, at the top level of either daemon's file."""
    return """
health_checks {
    listener_enabled = true
    bind_address = "127.0.0.1"
    bind_port = "%d"
    live_path = "/live"
    ready_path = "/ready"
}
telemetry {
    Prometheus {
        host = "127.0.0.1"
        port = %d
    }
}
""" % (hport, mport)


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def get(port, path, method="GET"):
    """(status, headers, body) from a well-behaved HTTP/1.1 client."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def raw(port, data, timeout=10, half_close=False):
    """Send bytes (then shut down our side if half_close), read until
    the daemon closes; what it answered."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from the text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "bad sample line %r" % line
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"',
                                      m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def total(samples, name, **labels):
    """The sum over every series of name that has these labels."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items()
               if n == name and want <= set(ls))


class HealthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        assert PROMTOOL, "promtool not found: run scripts/setup.sh " \
            "(Debian's prometheus package)"
        cls.uid = os.getuid()
        cls.srv_health, cls.srv_metrics = H.free_port(), H.free_port()
        cls.srv = H.Server(port=H.free_port())
        append(cls.srv.conf, health_conf(cls.srv_health, cls.srv_metrics))
        cls.srv.start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))
        tok = cls.srv.token()
        cls.agent_id = H.agent_spiffe_id(tok)
        cls.spiffe_id = "spiffe://%s/health/workload" % TD
        cls.srv.create_entry(cls.spiffe_id, cls.agent_id,
                             ["unix:uid:%d" % cls.uid])
        # The agent serves health and metrics on one address and port.
        cls.agent_port = H.free_port()
        cls.agent = H.AgentDaemon(cls.srv, cls.bundle)
        append(cls.agent.conf, health_conf(cls.agent_port, cls.agent_port))
        cls.agent.start(token=tok)
        cls.target = "unix://" + cls.agent.sock

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.agent, cls.srv)

    def fetch_svid(self):
        deadline = time.monotonic() + 60
        while True:
            with grpc.insecure_channel(self.target) as ch:
                stub = WG.SpiffeWorkloadAPIStub(ch)
                try:
                    resp = next(stub.FetchX509SVID(W.X509SVIDRequest(),
                                                   metadata=HDR, timeout=5))
                    if any(s.spiffe_id == self.spiffe_id
                           for s in resp.svids):
                        return resp
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
            time.sleep(0.3)

    def scrape(self, port):
        st, hdrs, body = get(port, "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(hdrs["Content-Type"].startswith(
            "text/plain; version=0.0.4"), hdrs)
        return body.decode()

    def promtool(self, text):
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "promtool:\n%s%s" %
                         (p.stdout, p.stderr))

    def wait_metric(self, port, pred, what):
        deadline = time.monotonic() + 30
        while True:
            s = parse_metrics(self.scrape(port))
            if pred(s):
                return s
            if time.monotonic() > deadline:
                self.fail("%s never held:\n%s" % (what, self.scrape(port)))
            time.sleep(0.2)

    # ---- endpoints -------------------------------------------------------

    def test_server_endpoints(self):
        st, _, body = get(self.srv_health, "/live")
        self.assertEqual((st, body), (200, b"live\n"))
        st, _, body = get(self.srv_health, "/ready")
        self.assertEqual((st, body), (200, b"ready\n"))
        st, hdrs, body = get(self.srv_health, "/live", method="HEAD")
        self.assertEqual((st, body, hdrs["Content-Length"]), (200, b"", "5"))
        self.assertEqual(get(self.srv_health, "/nothing")[0], 404)
        self.assertEqual(get(self.srv_health, "/live", method="POST")[0], 405)
        # Health and metrics are separate listeners here.
        self.assertEqual(get(self.srv_health, "/metrics")[0], 404)
        self.assertEqual(get(self.srv_metrics, "/live")[0], 404)

    def test_agent_endpoints_share_a_listener(self):
        self.assertEqual(get(self.agent_port, "/live")[:3:2],
                         (200, b"live\n"))
        self.assertEqual(get(self.agent_port, "/ready")[:3:2],
                         (200, b"ready\n"))
        self.assertIn("wick_agent_entries", self.scrape(self.agent_port))

    def test_metrics_after_traffic(self):
        self.fetch_svid()
        # A failed attestation, for the server's counter of them.
        tester = H.Agent(self.srv)
        rc, _ = tester.run("attest", "-t", "no-such-token",
                           bundle=self.bundle, check=False)
        self.assertNotEqual(rc, 0)
        a = self.wait_metric(
            self.agent_port,
            lambda s: total(s, "wick_agent_workload_api_calls_total",
                            method="FetchX509SVID") >= 1,
            "a FetchX509SVID call counted")
        self.assertGreaterEqual(value(a, "wick_agent_svids_issued_total",
                                      type="x509"), 1)
        self.assertEqual(value(a, "wick_agent_node_attestations_total",
                               type="join_token", result="ok"), 1)
        self.assertGreaterEqual(value(
            a, "wick_agent_workload_attestations_total", result="ok"), 1)
        self.assertGreaterEqual(value(a, "wick_agent_syncs_total",
                                      result="ok"), 1)
        self.assertGreaterEqual(value(a, "wick_agent_entries"), 1)
        self.assertGreater(value(a, "wick_agent_svid_expiry_timestamp_seconds"),
                           time.time())
        self.assertGreater(value(
            a, "wick_agent_workload_svid_expiry_min_timestamp_seconds"),
            time.time())
        self.assertGreaterEqual(value(
            a, "wick_agent_workload_api_call_duration_seconds_count",
            method="FetchX509SVID"), 1)
        self.assertIsNotNone(value(a, "wick_agent_sync_lag_seconds"))
        self.assertIsNotNone(value(a, "wick_agent_event_loop_lag_max_seconds"))
        # The agent turned its loop for the calls above: some CPU time.
        self.assertGreater(value(
            a, "wick_agent_event_loop_turn_cpu_max_seconds"), 0)
        s = parse_metrics(self.scrape(self.srv_metrics))
        self.assertGreaterEqual(value(s, "wick_server_svids_issued_total",
                                      type="x509"), 1)
        self.assertGreaterEqual(value(s, "wick_server_svids_issued_total",
                                      type="agent"), 1)
        self.assertGreaterEqual(value(s, "wick_server_node_attestations_total",
                                      type="join_token", result="ok"), 1)
        self.assertGreaterEqual(value(s, "wick_server_node_attestations_total",
                                      type="join_token", result="failed"), 1)
        self.assertGreaterEqual(value(s, "wick_server_agent_api_calls_total",
                                      method="SyncAuthorized", status="OK"), 1)
        self.assertGreaterEqual(value(
            s, "wick_server_agent_api_calls_total", method="BatchNewX509SVID",
            status="OK"), 1)
        self.assertGreater(value(
            s, "wick_server_datastore_call_duration_seconds_count"), 0)
        self.assertGreaterEqual(value(s, "wick_server_entries"), 1)
        self.assertGreater(value(
            s, "wick_server_event_loop_turn_cpu_max_seconds"), 0)
        self.assertGreaterEqual(value(s, "wick_server_agents"), 1)
        self.assertGreater(value(s, "wick_server_ca_expiry_timestamp_seconds"),
                           time.time())
        self.assertGreaterEqual(value(s, "wick_server_agent_api_connections"),
                                1)
        # Both pass Prometheus's own checker.
        self.promtool(self.scrape(self.agent_port))
        self.promtool(self.scrape(self.srv_metrics))

    def test_reload_names_a_changed_listener(self):
        with open(self.srv.conf) as f:
            before = f.read()
        other = before.replace('bind_port = "%d"' % self.srv_health,
                               'bind_port = "%d"' % H.free_port())
        self.assertNotEqual(other, before)
        try:
            with open(self.srv.conf, "w") as f:
                f.write(other)
            self.srv.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while "reload: health_checks changed" not in self.srv.output():
                self.assertLess(time.monotonic(), deadline,
                                self.srv.output()[-4000:])
                time.sleep(0.1)
        finally:
            with open(self.srv.conf, "w") as f:
                f.write(before)
        # The running listener stays where it was.
        self.assertEqual(get(self.srv_health, "/live")[0], 200)
        self.assertNotIn("reload: telemetry changed", self.srv.output())

    # ---- hostile peers ---------------------------------------------------

    def assert_still_serving(self, port):
        self.assertEqual(get(port, "/live")[0], 200)
        self.assertEqual(self.agent.proc.poll(), None)
        self.assertEqual(self.srv.proc.poll(), None)

    def test_oversized_and_malformed_heads(self):
        port = self.agent_port
        # A client that shuts down its side after the request (nc -N).
        self.assertTrue(raw(port, b"GET /live HTTP/1.0\r\n\r\n",
                            half_close=True).startswith(b"HTTP/1.1 200 "))
        big = b"GET /live HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n"
        self.assertTrue(raw(port, big).startswith(b"HTTP/1.1 431 "))
        self.assertTrue(raw(port, b"GET /live HTTP/1.1\r\nContent-Length: "
                            b"5\r\n\r\nhello").startswith(b"HTTP/1.1 400 "))
        self.assertTrue(raw(port, b"GET /" + b"a" * 2000 +
                            b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 414 "))
        self.assertTrue(raw(port, b"BREW /pot HTTP/1.1\r\n\r\n").startswith(
            b"HTTP/1.1 405 "))
        for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" +
                     os.urandom(200), b"\x00" * 64, b"\r\n\r\n",
                     os.urandom(4096), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
            out = raw(port, junk)
            self.assertTrue(out == b"" or out.startswith(b"HTTP/1.1 4"), out)
        self.assert_still_serving(port)

    def test_slow_head(self):
        port = self.srv_health
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"GET /live HTTP/1.1\r\n")
        closed = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # One header byte at a time, never the end of the head.
            try:
                s.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            self.assertEqual(get(port, "/live")[0], 200)
            s.settimeout(0.5)
            try:
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        s.close()
        self.assertTrue(closed, "the slow head was never cut off")
        self.assert_still_serving(port)

    def test_clients_that_never_read(self):
        # 64 clients take their answer (or start to: a tiny receive
        # window stalls /metrics) and then neither read nor close.  A
        # liveness probe right after is still served, not refused.
        port = self.agent_port
        socks = []
        try:
            for i in range(64):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                s.settimeout(10)
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET %s HTTP/1.1\r\n\r\n" %
                          (b"/metrics" if i % 2 else b"/live"))
                socks.append(s)
            time.sleep(0.1)
            st, _, body = get(port, "/live")
            self.assertEqual((st, body), (200, b"live\n"))
        finally:
            for s in socks:
                s.close()
        self.assert_still_serving(port)

    def test_a_thousand_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (min(hard, 4096), hard))
        port = self.agent_port
        socks = []
        try:
            for _ in range(1000):
                s = socket.socket()
                s.settimeout(10)
                s.connect(("127.0.0.1", port))
                socks.append(s)
            # The newcomer displaces an idle connection and is served.
            st, _, body = get(port, "/live")
            self.assertEqual((st, body), (200, b"live\n"))
            self.assertIn("wick_agent_", self.scrape(port))
        finally:
            for s in socks:
                s.close()
        self.assert_still_serving(port)
        self.fetch_svid()


class ReadinessTest(unittest.TestCase):
    """An agent restarted with its stored SVID while the server is down is
    live but not ready; once the server is back and the agent has synced
    it is ready."""

    def test_not_ready_until_synced(self):
        srv = H.Server(port=H.free_port())
        append(srv.conf, health_conf(H.free_port(), H.free_port()))
        srv.start()
        agent = None
        try:
            bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
            tok = srv.token()
            port = H.free_port()
            agent = H.AgentDaemon(srv, bundle)
            append(agent.conf, health_conf(port, port))
            agent.start(token=tok)
            self.assertEqual(get(port, "/ready")[0], 200)
            H.stop_cleanly(agent)
            self.assertEqual(srv.stop(), 0)
            agent.start(wait=False)
            deadline = time.monotonic() + 30
            while True:
                try:
                    st, _, body = get(port, "/live")
                    break
                except OSError:
                    self.assertLess(time.monotonic(), deadline,
                                    agent.output())
                    time.sleep(0.1)
            self.assertEqual((st, body), (200, b"live\n"))
            st, _, body = get(port, "/ready")
            self.assertEqual(st, 503)
            self.assertIn(b"not synced", body)
            srv.start()
            deadline = time.monotonic() + 120
            while get(port, "/ready")[0] != 200:
                self.assertLess(time.monotonic(), deadline, agent.output())
                time.sleep(0.2)
            s = parse_metrics(get(port, "/metrics")[2].decode())
            self.assertGreaterEqual(value(s, "wick_agent_syncs_total",
                                          result="failed"), 1)
            self.assertGreaterEqual(value(s, "wick_agent_syncs_total",
                                          result="ok"), 1)
        finally:
            if agent is not None and agent.proc is not None:
                H.stop_cleanly(agent)
            if srv.proc is not None:
                H.stop_cleanly(srv)


if __name__ == "__main__":
    unittest.main(verbosity=2)
