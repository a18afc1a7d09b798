#!/usr/bin/env python3
"""wick-server killed with SIGKILL at random moments under load, on SQLite
(WICK_CRASH_DATASTORE=sqlite3, the default) or on a scratch PostgreSQL
(WICK_CRASH_DATASTORE=postgres, pg.py).

While the server is killed and restarted ten times (at seeded random
moments, the seed printed; WICK_CRASH_SEED repeats the moments, not the
threads' interleaving), now and then killed again while starting, clients
keep working it:

- two admin clients (Python grpcio on the admin socket) create entries
  (one at a time and in batches), update them (alone and in batches),
  delete them (alone and in batches), make join tokens, evict and ban
  agents, and set and delete federated bundles;
- two agent clients (wick-testagent over the real TLS agent API) ask for
  X.509-SVIDs (batches) and JWT-SVIDs;
- one client makes join tokens and attests new agents with them, which the
  admin clients later evict or ban.

Every operation whose answer the client saw is recorded; one cut off by a
kill may or may not have happened, and what it touched is left alone
afterwards.  After the last round:

- every acknowledged entry, update, delete, token, attestation, eviction,
  ban and bundle change is there, and nothing acknowledged as deleted is;
- every acknowledged SVID has its audit record;
- integrity: PRAGMA integrity_check and foreign_key_check (SQLite, after
  every kill and at the end), or the schema's constraints checked with
  queries (PostgreSQL): no child row without its entry or node, every
  entry whole, every entry's revision the last change of it, revisions
  below the sequence, and each bundle change with its audit record;
- audit verify passes on the stopped server's datastore;
- the CA and the JWT and WIT keys (the bundle's authorities) and the key
  file's public keys and server ID are the same after every restart.
"""
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_harness as H  # noqa: E402

STUBS = H.grpc_stubs("admin.proto", "types.proto")
import grpc  # noqa: E402
import admin_pb2 as A  # noqa: E402
import admin_pb2_grpc as AG  # noqa: E402
import types_pb2 as T  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

TD = H.TD
DATASTORE = os.environ.get("WICK_CRASH_DATASTORE", "sqlite3")
ROUNDS = 10
TARGET_OPS = 3000
ABSENT = "absent"


def fed_ca(n):
    """A self-signed CA certificate (DER) for federated bundle n."""
    import datetime
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME,
                                         "fed-%d" % n)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(n + 1)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False,
                                         True, True, False, False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def key_file_public(path):
    """The key file's server ID and the public part of every key."""
    with open(path) as f:
        doc = json.load(f)
    pubs = {}
    for kid, pem in doc["keys"].items():
        k = serialization.load_pem_private_key(pem.encode(), None)
        pubs[kid] = k.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
    return doc.get("server_id"), pubs


class Ledger:
    """What the clients saw acknowledged, and what a kill left open.

    Each thing (an entry by its SPIFFE ID, a token, an agent, a federated
    trust domain) has one owner thread at a time (an agent passes from the
    thread that attested it to one that may evict or ban it), so its
    acknowledged state is the last one its owner saw.  A thing an unanswered call touched is
    retired: it may be in its old or its new state, never anything else.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = {}	# spiffe_id -> (state, {possible states})
        self.tokens = set()
        self.agents = {}	# spiffe_id -> (state, {possible})
        self.bundles = {}	# td -> (state, {possible})
        self.serials = set()
        self.jwts = {}		# entry id -> count
        self.counts = {}

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    @staticmethod
    def acked(table, key, state):
        table[key] = (state, {state})

    @staticmethod
    def unsure(table, key, old, new):
        table[key] = (old, {old, new})


class Server:
    """The server under test, its clients' view of it, and its restarts."""

    def __init__(self, pg):
        self.srv = H.Server(port=H.free_port(), log_level="INFO")
        self.pg = pg
        if pg is not None:
            from test_pg_server import psql, use_postgres
            psql(pg, "postgres", "CREATE DATABASE crash")
            use_postgres(self.srv, pg.conninfo("crash"))
        self.up = threading.Event()
        self.gen = 0

    def start(self):
        self.srv.start(timeout=60)
        self.gen += 1
        self.up.set()


class CrashTest(unittest.TestCase):

    def setUp(self):
        seed = os.environ.get("WICK_CRASH_SEED")
        self.seed = int(seed) if seed else int.from_bytes(os.urandom(4),
                                                          "big")
        print("integration_crash: datastore %s, seed %d (WICK_CRASH_SEED="
              "%d repeats it)" % (DATASTORE, self.seed, self.seed),
              flush=True)
        self.pg = None
        if DATASTORE == "postgres":
            from pg import PostgresServer
            self.pg = PostgresServer().start()
        elif DATASTORE != "sqlite3":
            raise SystemExit("WICK_CRASH_DATASTORE: sqlite3 or postgres")
        self.s = Server(self.pg)
        self.L = Ledger()
        self.stop = threading.Event()
        self.errors = []

    def tearDown(self):
        self.stop.set()
        if self.s.srv.proc is not None:
            self.s.srv.stop()
        out = self.s.srv.all_output() if self.s.srv.logs else ""
        if self.pg is not None:
            self.pg.stop()
        bad = H.sanitizer_report(out)
        self.assertIsNone(bad, bad)

    # ---- clients -----------------------------------------------------------

    def channel(self):
        """A channel with connections of its own.  grpcio otherwise shares
        one connection among every channel of the process to the same
        target (its global subchannel pool); after a kill -9 that nobody's
        call was waiting on, nothing reads the dead connection's end of
        file until grpcio's backup poller runs (every 5 s), and a channel
        opened after the restart would send its first call there (cut
        with "Broken pipe", never reaching the new server)."""
        return grpc.insecure_channel("unix://" + self.s.srv.sock, options=[
            ("grpc.use_local_subchannel_pool", 1)])

    def worker(self, fn, *args):
        """Run fn(*args) in a thread; an exception fails the test."""
        def body():
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001
                import traceback
                self.errors.append("%s: %s\n%s" % (fn.__name__, e,
                                                   traceback.format_exc()))
                self.stop.set()
        t = threading.Thread(target=body, daemon=True)
        t.start()
        return t

    def wait_up(self):
        while not self.s.up.is_set():
            if self.stop.is_set():
                return False
            self.s.up.wait(0.1)
        return not self.stop.is_set()

    def entry_msg(self, sid, parent, st, eid=""):
        sel, ttl, dns = st
        return T.Entry(id=eid, spiffe_id=sid, parent_id=parent,
                       selectors=[T.Selector(type="unix", value=v)
                                  for v in sel],
                       x509_svid_ttl=ttl, dns_names=list(dns))

    def admin_client(self, w, seed, fed):
        """Entries, tokens, evictions, bans and bundles, owned by w."""
        rng = random.Random(seed)
        L = self.L
        parent = "spiffe://%s/crash/node/%d" % (TD, w)
        live = {}	# spiffe_id -> (entry id, state): acknowledged, ours
        n = 0
        gen, ch = None, None
        while not self.stop.is_set():
            if not self.wait_up():
                break
            if gen != self.s.gen:
                if ch is not None:
                    ch.close()
                gen, ch = self.s.gen, self.channel()
                E, Ag, B = (AG.EntriesStub(ch), AG.AgentsStub(ch),
                            AG.BundlesStub(ch))
            op = rng.random()
            try:
                if op < 0.35 or len(live) < 5:
                    k = 1 if rng.random() < 0.5 else rng.randint(2, 20)
                    batch = []
                    for _ in range(k):
                        n += 1
                        sid = "spiffe://%s/crash/%d/%d" % (TD, w, n)
                        st = (("uid:%d" % n,), 0, ())
                        batch.append((sid, st))
                        with L.lock:
                            L.unsure(L.entries, sid, ABSENT, st)
                    r = E.BatchCreateEntry(A.BatchCreateEntryRequest(
                        entries=[self.entry_msg(sid, parent, st)
                                 for sid, st in batch]), timeout=30)
                    for (sid, st), res in zip(batch, r.results):
                        if res.status.code != 0:
                            raise AssertionError("create %s: %s" %
                                                 (sid, res.status))
                        live[sid] = (res.entry.id, st)
                        with L.lock:
                            L.acked(L.entries, sid, st)
                    L.count("entry.create", k)
                elif op < 0.55:
                    k = 1 if rng.random() < 0.5 else rng.randint(2, 10)
                    sids = rng.sample(sorted(live), min(k, len(live)))
                    batch = []
                    for sid in sids:
                        eid, old = live.pop(sid)
                        n += 1
                        st = (tuple(sorted(["uid:%d" % n, "gid:%d" % n])),
                              rng.randint(60, 7200),
                              ("h%d.example.org" % n,))
                        batch.append((sid, eid, st))
                        with L.lock:
                            L.unsure(L.entries, sid, old, st)
                    r = E.BatchUpdateEntry(A.BatchUpdateEntryRequest(
                        entries=[self.entry_msg(sid, parent, st, eid)
                                 for sid, eid, st in batch]), timeout=30)
                    for (sid, eid, st), res in zip(batch, r.results):
                        if res.status.code != 0:
                            raise AssertionError("update %s: %s" %
                                                 (sid, res.status))
                        live[sid] = (eid, st)
                        with L.lock:
                            L.acked(L.entries, sid, st)
                    L.count("entry.update", len(batch))
                elif op < 0.70:
                    k = 1 if rng.random() < 0.5 else rng.randint(2, 10)
                    sids = rng.sample(sorted(live), min(k, len(live)))
                    batch = []
                    for sid in sids:
                        eid, old = live.pop(sid)
                        batch.append((sid, eid))
                        with L.lock:
                            L.unsure(L.entries, sid, old, ABSENT)
                    r = E.BatchDeleteEntry(A.BatchDeleteEntryRequest(
                        ids=[eid for _, eid in batch]), timeout=30)
                    for (sid, eid), res in zip(batch, r.results):
                        if res.status.code != 0:
                            raise AssertionError("delete %s: %s" %
                                                 (sid, res.status))
                        with L.lock:
                            L.acked(L.entries, sid, ABSENT)
                    L.count("entry.delete", len(batch))
                elif op < 0.80:
                    tok = Ag.CreateJoinToken(A.CreateJoinTokenRequest(
                        ttl=3600), timeout=30).token
                    with L.lock:
                        L.tokens.add(tok)
                    L.count("token")
                elif op < 0.90:
                    with L.lock:
                        mine = [a for a, (st, pos) in L.agents.items()
                                if st == "present" and len(pos) == 1 and
                                hash(a) % 2 == w]
                    if not mine:
                        continue
                    aid = rng.choice(mine)
                    ban = rng.random() < 0.5
                    new = "banned" if ban else ABSENT
                    with L.lock:
                        L.unsure(L.agents, aid, "present", new)
                    req = A.GetAgentRequest(spiffe_id=aid)
                    (Ag.BanAgent if ban else Ag.EvictAgent)(req, timeout=30)
                    with L.lock:
                        L.acked(L.agents, aid, new)
                    L.count("agent.ban" if ban else "agent.evict")
                else:
                    with L.lock:
                        tds = [td for td in fed if
                               len(L.bundles[td][1]) == 1]
                    if not tds:
                        continue
                    td = rng.choice(tds)
                    with L.lock:
                        old = L.bundles[td][0]
                    if old != ABSENT and rng.random() < 0.3:
                        new = ABSENT
                        with L.lock:
                            L.unsure(L.bundles, td, old, new)
                        B.DeleteFederatedBundle(
                            A.DeleteFederatedBundleRequest(
                                trust_domain=td), timeout=30)
                        L.count("bundle.delete")
                    else:
                        new = rng.randrange(len(self.fed_cas))
                        with L.lock:
                            L.unsure(L.bundles, td, old, new)
                        B.SetFederatedBundle(T.Bundle(
                            trust_domain=td, x509_authorities=[
                                self.fed_cas[new]]), timeout=30)
                        L.count("bundle.set")
                    with L.lock:
                        L.acked(L.bundles, td, new)
            except grpc.RpcError as e:
                # Cut off by a kill (or not yet reconnected): what the
                # call touched stays retired in its two possible states.
                if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                    grpc.StatusCode.DEADLINE_EXCEEDED,
                                    grpc.StatusCode.CANCELLED,
                                    grpc.StatusCode.UNKNOWN,
                                    grpc.StatusCode.INTERNAL):
                    raise
                L.count("cut off")
                time.sleep(0.05)
        if ch is not None:
            ch.close()

    def agent_client(self, agent, eids, seed):
        """X.509-SVIDs in batches and JWT-SVIDs, through the agent API."""
        rng = random.Random(seed)
        L = self.L
        while not self.stop.is_set():
            if not self.wait_up():
                break
            if rng.random() < 0.6:
                ids = rng.sample(eids, rng.randint(1, len(eids)))
                rc, out = agent.run("x509", *ids, check=False)
                if rc != 0 or out is None:
                    L.count("cut off")
                    time.sleep(0.05)
                    continue
                for r in out["results"]:
                    if r["code"] != 0:
                        raise AssertionError("x509: %s" % r)
                    with L.lock:
                        L.serials.add(r["svid"]["serial"].lower()
                                      .lstrip("0"))
                L.count("svid.x509", len(out["results"]))
            else:
                eid = rng.choice(eids)
                rc, out = agent.run("jwt", eid, "crash-aud", check=False)
                if rc != 0 or out is None or "token" not in out:
                    L.count("cut off")
                    time.sleep(0.05)
                    continue
                with L.lock:
                    L.jwts[eid] = L.jwts.get(eid, 0) + 1
                L.count("svid.jwt")

    def attest_client(self, seed):
        """New agents, attested with fresh join tokens."""
        rng = random.Random(seed)
        L = self.L
        gen, ch = None, None
        while not self.stop.is_set():
            if not self.wait_up():
                break
            if gen != self.s.gen:
                if ch is not None:
                    ch.close()
                gen, ch = self.s.gen, self.channel()
                Ag = AG.AgentsStub(ch)
            try:
                tok = Ag.CreateJoinToken(A.CreateJoinTokenRequest(
                    ttl=3600), timeout=30).token
            except grpc.RpcError:
                L.count("cut off")
                time.sleep(0.05)
                continue
            aid = H.agent_spiffe_id(tok)
            with L.lock:
                L.unsure(L.agents, aid, ABSENT, "present")
            agent = H.Agent(self.s.srv)
            rc, out = agent.run("attest", "-t", tok, bundle=self.bundle,
                                check=False)
            if rc == 0 and out is not None and "svid" in out:
                with L.lock:
                    L.acked(L.agents, aid, "present")
                L.count("agent.attest")
            else:
                L.count("cut off")
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 0.2))
        if ch is not None:
            ch.close()

    # ---- what must hold ----------------------------------------------------

    def identity(self):
        """The bundle's authorities and the key file's public parts."""
        with self.channel() as ch:
            b = AG.BundlesStub(ch).GetBundle(A.Empty(), timeout=30)
        auth = (sorted(b.x509_authorities),
                sorted((k.key_id, k.public_key) for k in b.jwt_authorities),
                sorted((k.key_id, k.public_key) for k in b.wit_authorities))
        return auth, key_file_public(os.path.join(self.s.srv.data,
                                                  "keys.json"))

    def check_sqlite_file(self):
        con = sqlite3.connect(self.s.srv.db, timeout=30)
        try:
            self.assertEqual(con.execute(
                "PRAGMA integrity_check").fetchone()[0], "ok")
            self.assertEqual(con.execute(
                "PRAGMA foreign_key_check").fetchall(), [])
        finally:
            con.close()

    def query(self, sql):
        """Rows of a query on the stopped server's datastore (sqlite3
        module, or psql), as lists of strings."""
        if self.pg is None:
            con = sqlite3.connect(self.s.srv.db, timeout=30)
            try:
                return [[str(c) for c in row]
                        for row in con.execute(sql).fetchall()]
            finally:
                con.close()
        p = subprocess.run(["psql", "-X", "-A", "-t", "-F", "\t",
                            "-v", "ON_ERROR_STOP=1",
                            self.pg.conninfo("crash"), "-c", sql],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [line.split("\t") for line in p.stdout.splitlines() if line]

    def check_constraints(self):
        """The schema's rules, with the same queries on both engines."""
        empty = {
            "selector rows without their entry":
            "SELECT entry FROM entry_selectors WHERE entry NOT IN "
            "(SELECT id FROM entries)",
            "DNS name rows without their entry":
            "SELECT entry FROM entry_dns_names WHERE entry NOT IN "
            "(SELECT id FROM entries)",
            "federates_with rows without their entry":
            "SELECT entry FROM entry_federates_with WHERE entry NOT IN "
            "(SELECT id FROM entries)",
            "node selector rows without their node":
            "SELECT node FROM node_selectors WHERE node NOT IN "
            "(SELECT id FROM nodes)",
            "entries without a selector":
            "SELECT entry_id FROM entries WHERE id NOT IN "
            "(SELECT entry FROM entry_selectors)",
            "entries whose revision is not their last change":
            "SELECT e.entry_id FROM entries e WHERE e.change_rev <> "
            "(SELECT max(c.revision) FROM changes c WHERE c.kind = 1 AND "
            "c.object = e.entry_id) OR NOT EXISTS (SELECT 1 FROM changes c "
            "WHERE c.revision = e.change_rev AND c.op IN (1, 2))",
            "entries whose last change is a delete":
            "SELECT object FROM changes c WHERE kind = 1 AND op = 3 AND "
            "revision = (SELECT max(revision) FROM changes d WHERE "
            "d.kind = 1 AND d.object = c.object) AND object IN "
            "(SELECT entry_id FROM entries)",
            "nodes whose last change is a delete":
            "SELECT object FROM changes c WHERE kind = 2 AND op = 3 AND "
            "revision = (SELECT max(revision) FROM changes d WHERE "
            "d.kind = 2 AND d.object = c.object) AND object IN "
            "(SELECT spiffe_id FROM nodes)",
            "audit events without their place in the chain":
            "SELECT id FROM audit WHERE seq IS NULL OR hash IS NULL OR "
            "prev_hash IS NULL",
        }
        for what, sql in empty.items():
            self.assertEqual(self.query(sql), [], what)
        if self.pg is not None:
            rows = self.query("SELECT (SELECT coalesce(max(revision), 0) "
                              "FROM changes) <= (SELECT last_value FROM "
                              "changes_revision)")
            self.assertEqual(rows, [["t"]], "a revision beyond the "
                             "sequence that draws them")
        # Audit seqs are dense from the anchor on.
        lo, hi, n = self.query("SELECT min(seq), max(seq), count(*) FROM "
                               "audit")[0]
        self.assertEqual(int(hi) - int(lo) + 1, int(n), "gaps in the "
                         "audit chain's seqs")
        # Each federated bundle change has its audit record, both in or
        # both out (a kill between them would leave one alone).
        changes = {}
        for td, op, k in self.query(
                "SELECT object, op, count(*) FROM changes WHERE kind = 3 "
                "AND object LIKE 'spiffe://fed%' GROUP BY object, op"):
            key = (td, "bundle.delete" if op == "3" else "bundle.set")
            changes[key] = changes.get(key, 0) + int(k)
        recorded = {}
        for kind, detail in self.query(
                "SELECT kind, detail FROM audit WHERE kind IN "
                "('bundle.set', 'bundle.delete') AND ok = 1"):
            key = (json.loads(detail)["trust_domain"], kind)
            recorded[key] = recorded.get(key, 0) + 1
        diff = {"%s %s" % k: (changes.get(k, 0), recorded.get(k, 0))
                for k in set(changes) | set(recorded)
                if changes.get(k, 0) != recorded.get(k, 0)}
        self.assertEqual(diff, {}, "federated bundle changes without their "
                         "audit records, or records without their change "
                         "(changes, records)")

    def check_acknowledged(self):
        L = self.L
        with self.channel() as ch:
            E, Ag, B = (AG.EntriesStub(ch), AG.AgentsStub(ch),
                        AG.BundlesStub(ch))
            have = {}
            for w in (0, 1):
                tok = ""
                while True:
                    r = E.ListEntries(A.ListEntriesRequest(
                        by_parent_id="spiffe://%s/crash/node/%d" % (TD, w),
                        page_size=500, page_token=tok), timeout=60)
                    for e in r.entries:
                        self.assertNotIn(e.spiffe_id, have)
                        have[e.spiffe_id] = (
                            tuple(sorted(s.value for s in e.selectors)),
                            e.x509_svid_ttl, tuple(e.dns_names))
                    tok = r.next_page_token
                    if not tok:
                        break
            for sid, (st, pos) in L.entries.items():
                got = have.pop(sid, ABSENT)
                self.assertIn(got, pos, "entry %s: %s, acknowledged %s" %
                              (sid, got, st))
            self.assertEqual(have, {}, "entries no client made")
            for aid, (st, pos) in L.agents.items():
                try:
                    a = Ag.GetAgent(A.GetAgentRequest(spiffe_id=aid),
                                    timeout=30)
                    got = "banned" if a.banned else "present"
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
                    got = ABSENT
                self.assertIn(got, pos, "agent %s: %s, acknowledged %s" %
                              (aid, got, st))
            fed = {}
            tok = ""
            while True:
                r = B.ListFederatedBundles(A.ListFederatedBundlesRequest(
                    page_size=100, page_token=tok), timeout=30)
                for b in r.bundles:
                    fed[b.trust_domain] = list(b.x509_authorities)
                tok = r.next_page_token
                if not tok:
                    break
            for td, (st, pos) in L.bundles.items():
                got = fed.get(td)
                got = ABSENT if got is None else \
                    self.fed_cas.index(got[0]) if len(got) == 1 and \
                    got[0] in self.fed_cas else got
                self.assertIn(got, pos, "bundle %s: %s, acknowledged %s" %
                              (td, got, st))
            # Every acknowledged SVID has its audit record.
            serials, jwts = set(), {}
            tok = ""
            while True:
                r = AG.AuditStub(ch).ListAuditEvents(
                    A.ListAuditEventsRequest(page_size=1000,
                                             page_token=tok), timeout=60)
                for ev in r.events:
                    d = json.loads(ev.detail_json)
                    if ev.kind == "svid.x509":
                        for i in d["issued"]:
                            serials.add(i["serial"].lower().lstrip("0"))
                    elif ev.kind == "svid.jwt":
                        jwts[d["entry_id"]] = jwts.get(d["entry_id"], 0) + 1
                tok = r.next_page_token
                if not tok:
                    break
            self.assertEqual(L.serials - serials, set(),
                             "X.509-SVIDs issued without their record")
            for eid, k in L.jwts.items():
                self.assertGreaterEqual(jwts.get(eid, 0), k, eid)

    def check_tokens(self):
        rows = {r[0] for r in self.query("SELECT token_hash FROM "
                                         "join_tokens")}
        lost = [t for t in self.L.tokens
                if hashlib.sha256(t.encode()).hexdigest() not in rows]
        self.assertEqual(lost, [], "acknowledged join tokens lost")

    # ---- the test ----------------------------------------------------------

    def test_kill9_under_mixed_load(self):
        rng = random.Random(self.seed)
        s, L = self.s, self.L
        t0 = time.monotonic()
        s.start()
        self.bundle = s.srv.bundle_pem(os.path.join(s.srv.tmp, "bundle.pem"))
        self.fed_cas = [fed_ca(i) for i in range(3)]
        fed = ["spiffe://fed%d.example" % i for i in range(6)]
        for td in fed:
            Ledger.acked(L.bundles, td, ABSENT)
        # Two agents to issue SVIDs through, each with three entries.
        issuers = []
        for i in range(2):
            tok = s.srv.token()
            agent = H.Agent(s.srv)
            agent.attest(tok, self.bundle)
            eids = [s.srv.create_entry("spiffe://%s/issue/%d/%d" %
                                       (TD, i, j), H.agent_spiffe_id(tok),
                                       ["unix:uid:%d" % (1000 + j)])
                    for j in range(3)]
            issuers.append((agent, eids))
        ident = self.identity()
        # Killed while no call waits on a connection of ours (one stays
        # open, idle, as a load client's can): the read after the restart
        # goes to the new server at once (channel() says why it might not).
        with self.channel() as idle:
            AG.BundlesStub(idle).GetBundle(A.Empty(), timeout=30)
            s.up.clear()
            s.srv.kill9()
            s.start()
            self.assertEqual(self.identity(), ident,
                             "the CA, JWT keys or key file changed")
        threads = [self.worker(self.admin_client, w, rng.random(),
                               fed[w::2]) for w in (0, 1)]
        threads += [self.worker(self.agent_client, a, e, rng.random())
                    for a, e in issuers]
        threads.append(self.worker(self.attest_client, rng.random()))
        def acked():
            with L.lock:
                return sum(v for k, v in L.counts.items()
                           if k not in ("cut off", "killed while starting"))
        # Ten rounds, and more on a slow machine until thousands of
        # operations were acknowledged (within a bound on the time).
        rnd = 0
        while rnd < ROUNDS or (acked() < TARGET_OPS and
                               time.monotonic() - t0 < 100):
            rnd += 1
            if self.stop.wait(rng.uniform(1.0, 5.0)):
                break
            s.up.clear()
            s.srv.kill9()
            print("round %d: killed at %.1f s, %s" %
                  (rnd, time.monotonic() - t0,
                   json.dumps(L.counts, sort_keys=True)), flush=True)
            if self.pg is None:
                self.check_sqlite_file()
            if rng.random() < 0.3:
                # Killed again while starting (opening, migrating,
                # loading the CA), before it answers.
                s.srv.name = "wick-server"
                s.srv.spawn([H.SERVER, "run", "-config", s.srv.conf])
                time.sleep(rng.uniform(0.0, 0.3))
                s.srv.kill9()
                L.count("killed while starting")
            s.start()
            self.assertEqual(self.identity(), ident,
                             "the CA, JWT keys or key file changed")
        # A last stretch under load, then everything stops.
        self.stop.wait(rng.uniform(0.5, 2.0))
        self.stop.set()
        for t in threads:
            t.join(120)
        self.assertEqual(self.errors, [], "\n".join(self.errors))
        total = acked()
        print("acknowledged operations: %d in %d rounds %s" %
              (total, rnd, json.dumps(L.counts, sort_keys=True)),
              flush=True)
        self.assertGreater(total, 1000)
        self.check_acknowledged()
        self.assertEqual(self.identity(), ident)
        self.assertEqual(s.srv.stop(), 0)
        p = subprocess.run([H.SERVER, "audit", "verify", "-config",
                            s.srv.conf], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        print(p.stdout.strip())
        if self.pg is None:
            self.check_sqlite_file()
        self.check_constraints()
        self.check_tokens()
        print("wall time %.1f s" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
