"""Floods against the real daemons (issue: what a peer can make a daemon
hold): unfinished request messages and idle connections on the agent's
Workload API from an unprivileged uid, and unauthenticated TLS peers on the
server's agent API, while a well-behaved client keeps being served.  The
daemons' resident memory is read from /proc before and during each flood.
"""
import json
import os
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
H.grpc_stubs("workload.proto")
import workload_pb2 as W  # noqa: E402
import workload_pb2_grpc as WG  # noqa: E402

FLOOD = os.path.join(HERE, "h2flood.py")
# Under AddressSanitizer, freed memory waits in a quarantine (256 MiB by
# default) that would count as the daemons' own: keep it small here, so
# that resident memory shows what a peer makes them hold.
os.environ["ASAN_OPTIONS"] = ":".join(
    [o for o in os.environ.get("ASAN_OPTIONS", "").split(":") if o] +
    ["quarantine_size_mb=4", "thread_local_quarantine_size_kb=64"])
NOBODY = 65534
MiB = 1024 * 1024


def rss(pid):
    """Resident memory of a process, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


class Flood:
    """h2flood.py in a child process (as another uid if asked)."""

    def __init__(self, *args, uid=None):
        cmd = [sys.executable, FLOOD] + [str(a) for a in args]
        if uid is not None:
            cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                   "--clear-groups"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise AssertionError("h2flood failed: %s" % (cmd,))
        self.first = json.loads(line)

    def count_open(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["open"]

    def end(self):
        self.proc.stdin.close()
        out = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=30)
        return out


class FloodTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv, cls.bundle, cls.agent = H.server_and_agent([
            ("spiffe://%s/root" % TD, ["unix:uid:0"]),
            ("spiffe://%s/nobody" % TD, ["unix:uid:%d" % NOBODY])])
        cls.target = "unix://" + cls.agent.sock
        cls.fetch_ok()

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.agent, cls.srv)

    @classmethod
    def fetch_ok(cls, timeout=30):
        """A well-behaved workload (root): its SVID, over a new
        connection."""
        deadline = time.monotonic() + timeout
        err = None
        while time.monotonic() < deadline:
            with grpc.insecure_channel(cls.target) as ch:
                stream = WG.SpiffeWorkloadAPIStub(ch).FetchX509SVID(
                    W.X509SVIDRequest(), metadata=HDR, timeout=5)
                try:
                    resp = next(stream)
                    stream.cancel()
                    ids = [s.spiffe_id for s in resp.svids]
                    assert ids == ["spiffe://%s/root" % TD], ids
                    return
                except grpc.RpcError as e:
                    err = e
            time.sleep(0.2)
        raise AssertionError("the workload was not served: %s" % err)

    def attest_ok(self):
        """A new agent attests from 127.0.0.1 and renews (the agent API
        serves a well-behaved peer)."""
        agent = H.Agent(self.srv)
        agent.attest(self.srv.token(), self.bundle)
        rc, out = agent.run("renew")
        self.assertEqual(rc, 0, out)

    # ---- the Workload API ---------------------------------------------

    def test_workload_unfinished_messages(self):
        """3 connections x 100 streams, each declaring a message and
        sending all but its last byte, from uid 65534: the agent holds
        at most that uid's budget, answers RESOURCE_EXHAUSTED naming the
        limit, and keeps serving root."""
        pid = self.agent.proc.pid
        before = rss(pid)
        # Messages over the Workload API's limit: refused at their header.
        big = Flood("--unix", self.agent.sock, "--conns", 3, "--streams",
                    100, "--declare", 4 * MiB - 1, uid=NOBODY)
        # Messages under it: held until the budgets say no.
        small = Flood("--unix", self.agent.sock, "--conns", 3, "--streams",
                      100, "--declare", 60000, uid=NOBODY)
        during = rss(pid)
        # The flood itself stays small (it does not hold the bodies it
        # sends), so that the benchmark can run twenty of them at once.
        for f in (big, small):
            self.assertLess(rss(f.proc.pid), 128 * MiB)
        self.fetch_ok()
        b, s = big.end(), small.end()
        grown = during - before
        sys.stderr.write("agent RSS %.1f MiB -> %.1f MiB with 600 "
                         "unfinished streams from one uid\n" %
                         (before / MiB, during / MiB))
        self.assertLess(grown, 32 * MiB)
        # Every oversized message was refused, saying why.
        self.assertEqual(b["statuses"].get("8"), 300, b)
        self.assertTrue(any("exceeds the limit of 65536" in m
                            for m in b["messages"]), b)
        # The small ones: held back by the flow-control windows (a
        # connection's window is its budget), and the streams that got a
        # message's header in past what the budget allows are refused,
        # saying which budget.
        self.assertGreater(s["statuses"].get("8", 0), 0, s)
        self.assertTrue(any("connection budget" in m
                            for m in s["messages"]), s)
        self.assertIsNone(H.sanitizer_report(self.agent.output()))

    def test_workload_idle_connections(self):
        """1,024 idle connections from uid 65534: root is still served,
        that uid holds at most its share, and connections that start no
        call are closed within seconds."""
        flood = Flood("--unix", self.agent.sock, "--conns", 1024, "--idle",
                      uid=NOBODY)
        held = flood.first["holding"]
        self.fetch_ok()
        self.assertLessEqual(held, 256, flood.first)
        # The first-call timeout (10 s) closes them all.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and flood.count_open() > 0:
            time.sleep(1)
        out = flood.end()
        self.assertEqual(out["closed_by_peer"], out["conns"], out)
        self.fetch_ok()

    # ---- the agent API ------------------------------------------------

    def test_server_unauthenticated_messages(self):
        """2 TLS connections without a client certificate, 100 streams
        each declaring ~4 MiB: only AttestAgent is callable, one call at a
        time and with a small message; the server's memory barely moves
        and an agent still attests."""
        pid = self.srv.proc.pid
        before = rss(pid)
        addr = "127.0.0.1:%d" % self.srv.port
        attest = Flood("--tcp", addr, "--source", "127.0.0.2", "--conns", 2,
                       "--streams", 100, "--declare", 4 * MiB - 1,
                       "--path", "/wick.agent.Node/AttestAgent")
        sync = Flood("--tcp", addr, "--source", "127.0.0.2", "--conns", 2,
                     "--streams", 100, "--declare", 4 * MiB - 1,
                     "--path", "/wick.agent.Node/SyncAuthorized")
        held = Flood("--tcp", addr, "--source", "127.0.0.3", "--conns", 64,
                     "--streams", 1, "--declare", 60000,
                     "--path", "/wick.agent.Node/AttestAgent")
        during = rss(pid)
        self.attest_ok()
        a, s, h = attest.end(), sync.end(), held.end()
        sys.stderr.write("server RSS %.1f MiB -> %.1f MiB with 264 "
                         "unauthenticated streams\n" %
                         (before / MiB, during / MiB))
        self.assertLess(during - before, 32 * MiB)
        # One call at a time per anonymous connection: every stream was
        # reset (refused, or ended after its answer), a few answered.
        self.assertEqual(a["resets"], 200, a)
        self.assertGreaterEqual(a["statuses"].get("8"), 2, a)
        self.assertTrue(any("exceeds the limit of 65536" in m
                            for m in a["messages"]), a)
        # Nothing but AttestAgent before a certificate.
        self.assertGreaterEqual(s["statuses"].get("7"), 2, s)
        self.assertNotIn("8", s["statuses"], s)
        self.assertTrue(any("client certificate" in m
                            for m in s["messages"]), s)
        # One address's unfinished attestations: its budget says no.
        self.assertGreater(h["statuses"].get("8", 0), 0, h)
        self.assertTrue(any("peer budget" in m for m in h["messages"]), h)
        self.assertIsNone(H.sanitizer_report(self.srv.output()))

    def test_server_many_addresses(self):
        """One connection each from 300 addresses that never start TLS:
        the anonymous share is full, yet an agent still attests and
        renews (a newcomer displaces the oldest anonymous connection,
        whoever holds it)."""
        addr = "127.0.0.1:%d" % self.srv.port
        flood = Flood("--tcp", addr, "--source", "127.0.2.1", "--spread",
                      300, "--conns", 300, "--handshake-only")
        try:
            self.attest_ok()
        finally:
            flood.end()
        self.assertIsNone(H.sanitizer_report(self.srv.output()))

    def test_server_handshake_flood(self):
        """1,100 TCP connections from one address that never start TLS:
        that address holds at most its share, an agent elsewhere still
        attests and renews, and the server drops them after its handshake
        timeout (5 s)."""
        addr = "127.0.0.1:%d" % self.srv.port
        flood = Flood("--tcp", addr, "--source", "127.0.0.4", "--conns",
                      1100, "--handshake-only")
        self.attest_ok()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and flood.count_open() > 0:
            time.sleep(1)
        out = flood.end()
        self.assertEqual(out["closed_by_peer"], out["conns"], out)
        self.attest_ok()
        self.assertIsNone(H.sanitizer_report(self.srv.output()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
