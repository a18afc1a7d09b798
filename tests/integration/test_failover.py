#!/usr/bin/env python3
"""Two wick-servers on one PostgreSQL database behind a real load balancer
(haproxy in TCP mode on a loopback port), one wick-agent that knows only
the balancer's address, and Python grpcio workloads, each under its own
uid, that keep a FetchX509SVID stream open throughout and record every
answer (x509_watch.py).

Which server the agent reaches is set deterministically through haproxy's
runtime API on a Unix socket: the server not wanted is put in maintenance
("set server servers/x state maint") and its sessions are shut, so the
agent's next connection can only go to the other.  Which server signed an
SVID is read from the certificate: each server has its own CA, server A
keeps one for the whole test (ca_ttl 24h) and server B rotates its CA
every half minute (ca_ttl 1m), so an SVID whose issuer is not A's CA was
signed by B.

In order:
- the agent attests through A; then, routed to B, it renews its own SVID
  through B (signed by B's CA) and syncs there, and entries created
  through A's admin socket reach a workload through B (ten of them,
  timed), while the agent's renewals fail none of its calls in flight;
- routed back to A, then with both servers in service, A is killed with
  SIGKILL while the agent is connected to it (haproxy's health checks
  and redispatch send its next connection to B): the agent goes on renewing
  through B, rotated SVIDs keep arriving at every workload, no stream
  ends and no workload is ever without a valid SVID;
- while A is down a join token and an entry are created through B; A
  restarts with the same CA and serves that entry to an agent attesting
  and syncing through it, and the agent, routed to A, receives an entry
  created through B after the restart with an SVID signed by A;
- B's CA rotations reach the workloads' bundles before any SVID signed by
  the new CA: every SVID chains to the bundle of its own answer and its
  issuer was in a bundle received in an earlier answer.

Timings (change propagation, renewal stall) are printed, not asserted.
"""
import base64
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402
from pg import PostgresServer  # noqa: E402

TD = H.TD
STUBS = H.grpc_stubs("workload.proto")
WATCH = os.path.join(HERE, "x509_watch.py")
UIDS = (23101, 23102, 23103)	# one per workload
# Seconds.  With NotBefore set back 10 s a 20 s SVID is rotated or renewed
# about 5 s after it was issued (at half its life), sooner near the end of
# B's CA, which cuts SVIDs short.
SVID_TTL = "20"
LATENCY_TRIES = 10


def sid(path):
    return "spiffe://%s/%s" % (TD, path)


# ---- certificates ----------------------------------------------------------

def split_der(b):
    """Concatenated DER certificates, one by one."""
    out, i = [], 0
    while i < len(b):
        if b[i] != 0x30 or i + 2 > len(b):
            raise ValueError("not a DER sequence at %d" % i)
        n = b[i + 1]
        if n < 0x80:
            hl, ln = 2, n
        else:
            k = n & 0x7f
            hl, ln = 2 + k, int.from_bytes(b[i + 2:i + 2 + k], "big")
        out.append(x509.load_der_x509_certificate(b[i:i + hl + ln]))
        i += hl + ln
    return out


def aki(cert):
    return cert.extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier).value.key_identifier.hex()


def ski(cert):
    return cert.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest.hex()


def signed_by(leaf, ca):
    pub = ca.public_key()
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(leaf.signature, leaf.tbs_certificate_bytes,
                       ec.ECDSA(leaf.signature_hash_algorithm))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(leaf.signature, leaf.tbs_certificate_bytes,
                       padding.PKCS1v15(), leaf.signature_hash_algorithm)
        else:
            return False
    except Exception:
        return False
    return True


def epoch(dt):
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def server_svid(port):
    """The certificate a server presents on its agent API."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            return x509.load_der_x509_certificate(t.getpeercert(True))


# ---- the load balancer -----------------------------------------------------

HAPROXY_CFG = """
global
    stats socket %(dir)s/admin.sock mode 600 level admin
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    retries 3
    option redispatch 1
frontend wick
    bind 127.0.0.1:%(port)d
    default_backend servers
backend servers
    balance roundrobin
    default-server check inter 300 fall 2 rise 2
    server a 127.0.0.1:%(a)d
    server b 127.0.0.1:%(b)d disabled
"""


class Haproxy:
    """Debian's haproxy in the foreground, its configuration and runtime
    API socket in a scratch directory; ended by its pid."""

    def __init__(self, tmp, a_port, b_port):
        self.bin = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError("haproxy not found: apt-get install haproxy "
                               "(or run scripts/setup.sh)")
        self.dir = os.path.join(tmp, "haproxy")
        os.mkdir(self.dir, 0o700)
        self.port = H.free_port()
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(HAPROXY_CFG % {"dir": self.dir, "port": self.port,
                                   "a": a_port, "b": b_port})
        self.sock = os.path.join(self.dir, "admin.sock")
        self.proc = None

    def start(self):
        subprocess.run([self.bin, "-c", "-q", "-f", self.cfg], check=True,
                       timeout=30)
        self.log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([self.bin, "-db", "-f", self.cfg],
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited %d: %s" %
                                   (self.proc.returncode, self.output()))
            if os.path.exists(self.sock):
                try:
                    if "Name: HAProxy" in self.cmd("show info"):
                        return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy did not start: " + self.output())
            time.sleep(0.05)

    def output(self):
        with open(os.path.join(self.dir, "haproxy.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def cmd(self, line):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    return out.decode()
                out += b

    def admin(self, line):
        out = self.cmd(line).strip()
        if out:
            raise AssertionError("haproxy: %s: %s" % (line, out))

    def status(self, name):
        for row in self.cmd("show stat").splitlines():
            f = row.split(",")
            if len(f) > 17 and f[0] == "servers" and f[1] == name:
                return f[17]
        raise AssertionError("haproxy: no server %s" % name)

    def wait_up(self, name, timeout=60):
        deadline = time.monotonic() + timeout
        while self.status(name) != "UP":
            if time.monotonic() > deadline:
                raise AssertionError("haproxy: server %s is %s" %
                                     (name, self.status(name)))
            time.sleep(0.1)

    def route_to(self, name):
        """Only server name takes connections; the other's are shut."""
        other = "b" if name == "a" else "a"
        self.admin("set server servers/%s state ready" % name)
        self.wait_up(name)
        self.admin("set server servers/%s state maint" % other)
        self.admin("shutdown sessions server servers/%s" % other)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
            self.proc = None


# ---- workloads -------------------------------------------------------------

class Watcher:
    """x509_watch.py under its own uid; every answer parsed as it comes."""

    def __init__(self, sock, uid, tmp):
        self.uid = uid
        self.recs = []		# (t, wall, [(id, leaf, [CA certs])])
        self.end = None
        self.cond = threading.Condition()
        with open(WATCH) as f:
            src = f.read()
        self.err = os.path.join(tmp, "workload-%d.err" % uid)
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                 "--clear-groups", "/usr/bin/python3", "-c", src, sock,
                 STUBS], stdout=subprocess.PIPE, stderr=err,
                env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for line in self.proc.stdout:
            rec = json.loads(line)
            if "end" in rec:
                with self.cond:
                    self.end = rec
                    self.cond.notify_all()
                continue
            svids = []
            for s in rec["svids"]:
                chain = split_der(base64.b64decode(s["chain"]))
                cas = split_der(base64.b64decode(s["bundle"]))
                svids.append((s["id"], chain[0], cas))
            with self.cond:
                self.recs.append((rec["t"], rec["w"], svids))
                self.cond.notify_all()

    def wait(self, what, pred, timeout=60):
        """The first record from index 0 on for which pred is true."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = 0
            while True:
                while i < len(self.recs):
                    if pred(self.recs[i]):
                        return self.recs[i]
                    i += 1
                if self.end is not None:
                    raise AssertionError("workload %d: stream ended %s "
                                         "while waiting for %s" %
                                         (self.uid, self.end, what))
                if self.proc.poll() is not None and \
                        not self.thread.is_alive():
                    with open(self.err) as f:
                        raise AssertionError("workload %d exited %d: %s" %
                                             (self.uid, self.proc.returncode,
                                              f.read()[-3000:]))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("workload %d: no %s within %d s" %
                                         (self.uid, what, timeout))
                self.cond.wait(min(left, 1))

    def snapshot(self):
        with self.cond:
            return list(self.recs), self.end

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(10)
        self.proc.stdout.close()


class SvidFile:
    """Follows the agent's own SVID file: (when, serial, issuer key id) of
    every version it holds."""

    def __init__(self, path):
        self.path = path
        self.seen = []
        self.done = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def poll(self):
        last = None
        while not self.done:
            try:
                with open(self.path, "rb") as f:
                    pem = f.read()
            except OSError:
                pem = None
            if pem and pem != last:
                try:
                    leaf = x509.load_pem_x509_certificate(pem)
                except ValueError:
                    leaf = None	# caught half-written: read again
                if leaf is not None:
                    last = pem
                    with self.lock:
                        self.seen.append((time.monotonic(),
                                          leaf.serial_number, aki(leaf)))
            time.sleep(0.02)

    def since(self, t):
        with self.lock:
            return [s for s in self.seen if s[0] > t]

    def all(self):
        with self.lock:
            return list(self.seen)

    def wait(self, what, pred, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for s in self.seen:
                    if pred(s):
                        return s
            time.sleep(0.05)
        raise AssertionError("agent SVID: no %s within %d s: %s" %
                             (what, timeout, self.all()))

    def stop(self):
        self.done = True
        self.thread.join(10)


def use_postgres(srv, conninfo):
    with open(srv.conf) as f:
        text = f.read()
    text, n = re.subn(r'database_type = "sqlite3"\s*\n\s*'
                      r'connection_string = "[^"]*"',
                      'database_type = "postgres"\n'
                      '            connection_string = "%s"' % conninfo,
                      text)
    assert n == 1, text
    with open(srv.conf, "w") as f:
        f.write(text)


class Balancer:
    """What AgentDaemon needs of a server: the port it dials."""

    def __init__(self, port):
        self.port = port


class FailoverTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wick-failover-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.pg = PostgresServer().start()
        self.addCleanup(self.pg.stop)
        subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-X",
                        self.pg.conninfo("postgres"), "-c",
                        "CREATE DATABASE failover"], check=True,
                       capture_output=True, timeout=60)
        self.daemons = []
        self.watchers = []

    def tearDown(self):
        for w in self.watchers:
            w.stop()
        for d in reversed(self.daemons):
            d.stop()

    def server(self, name, ca_ttl):
        s = H.Server(tmpdir=os.path.join(self.tmp, name), port=H.free_port(),
                     ca_ttl=ca_ttl, x509_ttl="20s",
                     extra='    agent_ttl = "%ss"' % SVID_TTL)
        use_postgres(s, self.pg.conninfo("failover"))
        self.daemons.append(s)
        return s

    def test_failover_behind_haproxy(self):
        os.mkdir(os.path.join(self.tmp, "a"))
        os.mkdir(os.path.join(self.tmp, "b"))
        # B first: A then starts with B's CA already in the shared bundle.
        b = self.server("b", "1m").start(60)
        a = self.server("a", "24h").start(60)
        a_ca = aki(server_svid(a.port))
        self.assertNotEqual(aki(server_svid(b.port)), a_ca)

        lb = Haproxy(self.tmp, a.port, b.port).start()
        self.daemons.insert(0, lb)
        lb.wait_up("a")

        bundle = a.bundle_pem(os.path.join(self.tmp, "bundle.pem"))
        tok = a.token()
        agent_id = H.agent_spiffe_id(tok)
        for i, uid in enumerate(UIDS):
            a.create_entry(sid("wl/%d" % i), agent_id, ["unix:uid:%d" % uid],
                           "-x509SVIDTTL", SVID_TTL)
        agent = H.AgentDaemon(Balancer(lb.port), bundle)
        self.addCleanup(shutil.rmtree, agent.tmp, True)
        self.daemons.append(agent)
        agent.start(token=tok, timeout=90)
        svid = SvidFile(os.path.join(agent.data, "agent_svid.pem"))
        self.addCleanup(svid.stop)
        self.assertIn("node attestation succeeded", agent.output())
        svid.wait("SVID from A", lambda s: s[2] == a_ca)
        self.watchers = [Watcher(agent.sock, uid, self.tmp) for uid in UIDS]
        for i, w in enumerate(self.watchers):
            w.wait("SVID", lambda r, i=i: has(r, sid("wl/%d" % i)))

        # ---- through B ----------------------------------------------------
        # B must trust A's CA (the agent's SVID) first: its next tick.
        deadline = time.monotonic() + 40
        while "as another server stored it" not in b.output():
            self.assertLess(time.monotonic(), deadline, b.output()[-3000:])
            time.sleep(0.2)
        t_switch = time.monotonic()
        lb.route_to("b")
        svid.wait("renewal through B",
                  lambda s: s[0] > t_switch and s[2] != a_ca)
        for i, w in enumerate(self.watchers):
            w.wait("SVID signed by B", lambda r, i=i: r[0] > t_switch and
                   issuer(r, sid("wl/%d" % i)) not in (None, a_ca))
        # Entries created through A reach the agent's workload through B.
        # Meanwhile the agent renews its SVID (every ~5 s) without failing
        # a call: those in flight finish on the old connection.
        mark = len(agent.output())
        lat, lat_ack = [], []
        for n in range(LATENCY_TRIES):
            # A random pause: the creations must not all fall at the same
            # point of the agent's 1 s sync cycle (each waits for the last
            # one's SVID, which comes right after a sync).
            time.sleep(random.uniform(0, 1))
            t0 = time.monotonic()
            a.create_entry(sid("lat/%d" % n), agent_id,
                           ["unix:uid:%d" % UIDS[0]], "-x509SVIDTTL",
                           SVID_TTL)
            t1 = time.monotonic()
            r = self.watchers[0].wait("entry lat/%d" % n,
                                      lambda r, n=n: has(r, sid("lat/%d" % n)))
            self.assertNotEqual(issuer(r, sid("lat/%d" % n)), a_ca)
            lat.append(r[0] - t0)
            lat_ack.append(r[0] - t1)
        quiet = agent.output()[mark:]
        self.assertIn("agent SVID renewed", quiet)
        self.assertNotRegex(quiet, "failed|cannot reach", quiet)

        # ---- A killed while the agent is connected to it -------------------
        t_back = time.monotonic()
        lb.route_to("a")
        svid.wait("renewal through A", lambda s: s[0] > t_back and
                  s[2] == a_ca)
        for i, w in enumerate(self.watchers):
            w.wait("SVID signed by A", lambda r, i=i: r[0] > t_back and
                   issuer(r, sid("wl/%d" % i)) == a_ca)
        lb.admin("set server servers/b state ready")
        lb.wait_up("b")
        b_cas_before = {None, a_ca}
        for i, w in enumerate(self.watchers):
            b_cas_before |= {issuer(r, sid("wl/%d" % i))
                             for r in w.snapshot()[0]}
        t_kill = time.monotonic()
        a.kill9()
        # The agent renews through B, repeatedly; every workload gets
        # SVIDs signed by B, again and again, and sees B's CA rotate.
        svid.wait("renewal through B after the kill",
                  lambda s: s[0] > t_kill and s[2] != a_ca, 60)
        first_b = []
        for i, w in enumerate(self.watchers):
            r = w.wait("SVID through B after the kill", lambda r, i=i:
                       r[0] > t_kill and issuer(r, sid("wl/%d" % i))
                       not in (None, a_ca))
            first_b.append(r[0] - t_kill)
        deadline = time.monotonic() + 120
        while True:
            renewals = [s for s in svid.since(t_kill) if s[2] != a_ca]
            rotated = []
            new_ca = False
            for i, w in enumerate(self.watchers):
                recs, _ = w.snapshot()
                serials = {serial(r, sid("wl/%d" % i)) for r in recs
                           if r[0] > t_kill and
                           issuer(r, sid("wl/%d" % i)) not in (None, a_ca)}
                rotated.append(len(serials))
                new_ca |= any(issuer(r, sid("wl/%d" % i)) not in
                              b_cas_before for r in recs if r[0] > t_kill)
            if len(renewals) >= 3 and min(rotated) >= 3 and new_ca:
                break
            self.assertLess(time.monotonic(), deadline,
                            "after the kill: %d renewals, rotations %s, "
                            "new CA of B seen: %s\n%s" %
                            (len(renewals), rotated, new_ca,
                             agent.output()[-6000:]))
            time.sleep(0.2)
        for w in self.watchers:
            self.assertIsNone(w.snapshot()[1])

        # ---- A down: changes through B; A restarts and catches up ---------
        tok2 = b.token()
        node2 = H.agent_spiffe_id(tok2)
        down_id = b.create_entry(sid("made-while-a-was-down"), node2,
                                 ["unix:uid:4242"], "-x509SVIDTTL", SVID_TTL)
        a.start(60)
        self.assertEqual(aki(server_svid(a.port)), a_ca, "A's CA changed")
        direct = H.Agent(a, os.path.join(self.tmp, "direct-to-a"))
        os.mkdir(direct.dir, 0o700)
        direct.attest(tok2, a.bundle_pem(os.path.join(self.tmp, "a.pem")))
        _, synced = direct.run("sync")
        self.assertEqual([e["id"] for e in synced["entries"]], [down_id])
        _, out = direct.run("x509", down_id)
        self.assertEqual(out["results"][0]["code"], 0, out)
        with open(direct.path("svid.0.pem"), "rb") as f:
            self.assertEqual(aki(x509.load_pem_x509_certificate(f.read())),
                             a_ca)
        t_again = time.monotonic()
        lb.route_to("a")
        svid.wait("renewal through the restarted A",
                  lambda s: s[0] > t_again and s[2] == a_ca)
        b.create_entry(sid("after-restart"), agent_id,
                       ["unix:uid:%d" % UIDS[1]], "-x509SVIDTTL", SVID_TTL)
        r = self.watchers[1].wait("entry made through B after A's restart",
                                  lambda r: has(r, sid("after-restart")))
        self.assertEqual(issuer(r, sid("after-restart")), a_ca)

        # ---- every answer every workload got --------------------------------
        end_wall = time.time()
        b_cas = set()
        for i, w in enumerate(self.watchers):
            recs, end = w.snapshot()
            self.assertIsNone(end, "workload %d's stream ended" % w.uid)
            self.assertEqual(w.proc.poll(), None)
            b_cas |= check_stream(self, recs, sid("wl/%d" % i), end_wall)
        b_cas.discard(a_ca)
        self.assertGreaterEqual(len(b_cas), 2, "no CA rotation of B seen")
        self.assertEqual(agent.stop(), 0)
        self.assertIsNone(H.sanitizer_report(agent.all_output()))
        for s in (a, b):
            self.assertEqual(s.stop(), 0)
            self.assertIsNone(H.sanitizer_report(s.all_output()))

        seen = svid.all()
        normal = [y[0] - x[0] for x, y in zip(seen, seen[1:])
                  if y[0] < t_kill]
        before = max(s[0] for s in seen if s[0] < t_kill)
        after = svid.since(t_kill)[0][0]
        silence = []
        for w in self.watchers:
            ts = [r[0] for r in w.snapshot()[0]]
            silence.append(max(y - x for x, y in zip(ts, ts[1:])
                               if y > t_kill and x < t_kill + 30))
        sys.stderr.write(
            "figures: entry created through A -> its SVID at a workload of "
            "the agent on B: median %.3f s after the CLI's answer (%.3f s "
            "from its start; min %.3f, max %.3f, %d tries)\n"
            "figures: A killed -> agent SVID renewed through B %.3f s "
            "later; renewal gap across the kill %.3f s against a median "
            "%.3f s before; first SVID signed by B at each workload "
            "%s s after the kill; longest silence of a workload's stream "
            "after the kill %.3f s\n" %
            (statistics.median(lat_ack), statistics.median(lat),
             min(lat_ack), max(lat_ack), len(lat), after - t_kill,
             after - before, statistics.median(normal),
             "/".join("%.1f" % x for x in first_b), max(silence)))

def find(rec, spiffe_id):
    for s in rec[2]:
        if s[0] == spiffe_id:
            return s
    return None


def has(rec, spiffe_id):
    return find(rec, spiffe_id) is not None


def issuer(rec, spiffe_id):
    s = find(rec, spiffe_id)
    return aki(s[1]) if s is not None else None


def serial(rec, spiffe_id):
    s = find(rec, spiffe_id)
    return s[1].serial_number if s is not None else None


def check_stream(t, recs, base_id, end_wall):
    """Every answer of one workload's stream: its own SVID always there and
    valid until the next answer came; every SVID signed by a CA of the
    bundle sent with it, and that CA already in an earlier answer's bundle
    (the first answer aside).  Returns the issuers seen."""
    t.assertTrue(recs)
    known = set()		# CA key ids of every bundle received so far
    issuers = set()
    for k, (_, wall, svids) in enumerate(recs):
        s = [x for x in svids if x[0] == base_id]
        t.assertEqual(len(s), 1, "answer %d lacks %s" % (k, base_id))
        until = end_wall if k + 1 == len(recs) else recs[k + 1][1]
        t.assertGreater(epoch(s[0][1].not_valid_after), until,
                        "answer %d: %s expired before the next came" %
                        (k, base_id))
        for spiffe_id, leaf, cas in svids:
            by_ski = {ski(c): c for c in cas}
            a = aki(leaf)
            t.assertIn(a, by_ski, "answer %d: %s signed by a CA not in "
                       "its bundle" % (k, spiffe_id))
            t.assertTrue(signed_by(leaf, by_ski[a]))
            if k > 0:
                t.assertIn(a, known, "answer %d: %s signed by CA %s before "
                           "any bundle had it" % (k, spiffe_id, a))
            issuers.add(a)
        for spiffe_id, leaf, cas in svids:
            known |= {ski(c) for c in cas}
    return issuers


if __name__ == "__main__":
    unittest.main(verbosity=2)
