#!/usr/bin/env python3
"""The audit trail's hash chain and online backup/restore, with the real
wick-server, wick-testagent and wick-agent.

- audit show/verify after real events (join token, attestation, entry
  create, X.509-SVID issuance, the CA's own rotation records);
- the SQLite file changed behind the server's back (a row updated, one
  deleted, two swapped): verify names the first broken seq, and OK again
  once the row is put back;
- CA and key rotations recorded as they happen;
- retention: old events pruned by the server, the chain still verifies
  from the anchor, the prune itself recorded; verify offline (read only)
  on the stopped server;
- backup of a running server while entries are being created, restore
  into a fresh directory on another port ("a new machine"), and a real
  agent that attested to the old server carries on with the new one
  without attesting again.
"""
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_harness as H  # noqa: E402
from server_harness import TD  # noqa: E402

# For H.fetch_x509().
STUBS = H.grpc_stubs("workload.proto", "types.proto", "admin.proto")


def run(srv, *args, check=True):
    """A wick-server admin command against srv's socket (any verb)."""
    cmd = [H.SERVER] + list(args) + ["-socketPath", srv.sock]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" %
                             (" ".join(cmd), p.returncode, p.stdout,
                              p.stderr))
    return p


def events(srv, *filters):
    p = run(srv, "audit", "show", "-output", "json", *filters)
    return json.loads(p.stdout)["events"]


def verify(srv):
    """(exit status, the JSON report) of audit verify."""
    p = run(srv, "audit", "verify", "-output", "json", check=False)
    return p.returncode, json.loads(p.stdout)


def db(srv):
    c = sqlite3.connect(srv.db, timeout=10, isolation_level=None)
    return c


class AuditTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = H.Server(port=H.free_port()).start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))
        cls.tok = cls.srv.token()
        cls.agent_id = H.agent_spiffe_id(cls.tok)
        agent = H.Agent(cls.srv)
        agent.attest(cls.tok, cls.bundle)
        cls.wl = "spiffe://%s/audit/workload" % TD
        cls.eid = cls.srv.create_entry(cls.wl, cls.agent_id, ["unix:uid:7"])
        _, out = agent.run("x509", cls.eid)
        cls.issued = out

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.srv)

    def test_1_events_have_the_minimum_fields(self):
        ev = events(self.srv)
        kinds = [e["kind"] for e in ev]
        # The first CA is prepared and activated in the same instant.
        for k in ("ca.activated", "join_token.create",
                  "agent.attest", "entry.create", "svid.x509"):
            self.assertIn(k, kinds)
        self.assertEqual([e["seq"] for e in ev], list(range(1, len(ev) + 1)))
        for a, b in zip(ev, ev[1:]):
            self.assertEqual(b["prev_hash"], a["hash"])
        # Never a join token in the details or the subject: a hash prefix
        # (the actor is an agent whose token was spent).
        self.assertNotIn(self.tok, json.dumps(
            [[e["detail"], e["subject"]] for e in ev]))
        att = [e for e in ev if e["kind"] == "agent.attest"][0]
        self.assertEqual(att["outcome"], "ok")
        self.assertEqual(att["detail"]["type"], "join_token")
        self.assertIn("serial", att["detail"])
        self.assertIn("selectors", att["detail"])
        self.assertTrue(att["subject"].startswith(
            "spiffe://%s/spire/agent/join_token/" % TD))
        ent = [e for e in ev if e["kind"] == "entry.create"][0]
        self.assertTrue(ent["actor"].startswith("uid:"))
        self.assertEqual(ent["detail"]["entries"][0]["id"], self.eid)
        svid = [e for e in ev if e["kind"] == "svid.x509"][0]
        self.assertEqual(svid["actor"], self.agent_id)
        self.assertEqual(svid["subject"], self.wl)
        item = svid["detail"]["issued"][0]
        self.assertEqual(item["entry_id"], self.eid)
        self.assertRegex(item["serial"], "^[0-9a-f]+$")
        self.assertIn("expires_at", item)
        tokc = [e for e in ev if e["kind"] == "join_token.create"][0]
        self.assertIn("token_sha256_prefix", tokc["detail"])
        self.assertNotIn(self.tok, json.dumps(tokc))
        # Filters: by SPIFFE ID (actor, subject or a value of the details)
        # and by time.
        mine = events(self.srv, "-spiffeID", self.wl)
        self.assertEqual({e["kind"] for e in mine},
                         {"entry.create", "svid.x509"})
        self.assertEqual(events(self.srv, "-since", "1h"), ev)
        self.assertEqual(events(self.srv, "-since",
                                "2999-01-01T00:00:00Z"), [])
        pretty = run(self.srv, "audit", "show", "-spiffeID", self.wl).stdout
        self.assertIn("Kind          : svid.x509", pretty)
        bad = run(self.srv, "audit", "show", "-since", "soon", check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("-since", bad.stderr)

    def test_2_verify_ok(self):
        ev = events(self.srv)
        rc, rep = verify(self.srv)
        self.assertEqual(rc, 0, rep)
        self.assertTrue(rep["ok"])
        self.assertGreaterEqual(rep["count"], len(ev))
        self.assertEqual(rep["bad_seq"], 0)
        self.assertEqual(rep["anchor_seq"], 0)
        p = run(self.srv, "audit", "verify")
        self.assertIn("Audit trail OK", p.stdout)
        # Offline, read only, is for a stopped server.
        p = subprocess.run([H.SERVER, "audit", "verify", "-config",
                            self.srv.conf], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("in use", p.stderr)

    def broken(self, seq, why):
        rc, rep = verify(self.srv)
        self.assertEqual(rc, 1, rep)
        self.assertFalse(rep["ok"])
        self.assertEqual(rep["bad_seq"], seq, rep)
        self.assertIn(why, rep["reason"])
        p = run(self.srv, "audit", "verify", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("Audit trail BROKEN at seq %d" % seq, p.stdout)

    def test_3_tampering_is_found(self):
        c = db(self.srv)
        try:
            n = c.execute("SELECT max(seq) FROM audit").fetchone()[0]
            self.assertGreaterEqual(n, 6)
            # A row changed.
            old = c.execute("SELECT detail FROM audit WHERE seq = 4"
                            ).fetchone()[0]
            c.execute("UPDATE audit SET detail = '{}' WHERE seq = 4")
            self.broken(4, "hash mismatch")
            c.execute("UPDATE audit SET detail = ? WHERE seq = 4", (old,))
            self.assertEqual(verify(self.srv)[0], 0)
            # A row removed.
            row = c.execute("SELECT * FROM audit WHERE seq = 3").fetchone()
            c.execute("DELETE FROM audit WHERE seq = 3")
            self.broken(3, "missing")
            c.execute("INSERT INTO audit VALUES (%s)" %
                      ",".join("?" * len(row)), row)
            self.assertEqual(verify(self.srv)[0], 0)
            # Two rows swapped.
            c.execute("BEGIN")
            c.execute("UPDATE audit SET seq = -1 WHERE seq = 2")
            c.execute("UPDATE audit SET seq = 2 WHERE seq = 5")
            c.execute("UPDATE audit SET seq = 5 WHERE seq = -1")
            c.execute("COMMIT")
            self.broken(2, "broken link")
            c.execute("BEGIN")
            c.execute("UPDATE audit SET seq = -1 WHERE seq = 2")
            c.execute("UPDATE audit SET seq = 2 WHERE seq = 5")
            c.execute("UPDATE audit SET seq = 5 WHERE seq = -1")
            c.execute("COMMIT")
            self.assertEqual(verify(self.srv)[0], 0)
        finally:
            c.close()
        # The server still records events after all this.
        self.srv.token()
        self.assertEqual(verify(self.srv)[0], 0)


class RetentionTest(unittest.TestCase):

    def test_prune_keeps_the_chain_verifiable(self):
        srv = H.Server(port=H.free_port(),
                       extra='    audit_retention = "2s"').start()
        try:
            for _ in range(5):
                srv.token()
            first = events(srv)
            self.assertGreaterEqual(len(first), 7)
            # The 10 s tick prunes what is older than 2 s.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                ev = events(srv)
                if any(e["kind"] == "audit.prune" for e in ev):
                    break
                time.sleep(1)
            self.assertTrue(any(e["kind"] == "audit.prune" for e in ev))
            rc, rep = verify(srv)
            self.assertEqual(rc, 0, rep)
            self.assertGreater(rep["anchor_seq"], 0)
            pr = [e for e in ev if e["kind"] == "audit.prune"][0]
            self.assertEqual(pr["actor"], "server")
            self.assertGreater(pr["detail"]["pruned"], 0)
            # What went before the anchor is gone.
            self.assertNotIn(first[0]["seq"], [e["seq"] for e in ev])
            # No more pruning, so that nothing moves under what follows.
            self.assertEqual(srv.stop(), 0)
            with open(srv.conf) as f:
                conf = f.read()
            with open(srv.conf, "w") as f:
                f.write(conf.replace('audit_retention = "2s"', ''))
            srv.start()
            srv.token()
            srv.token()
            self.assertEqual(verify(srv)[0], 0)
            c = db(srv)
            try:
                a = c.execute("SELECT seq, hash FROM audit_anchor"
                              ).fetchone()
                lo = c.execute("SELECT min(seq) FROM audit").fetchone()[0]
            finally:
                c.close()
            self.assertEqual(lo, a[0] + 1)
            # The first kept event removed: still caught after a prune.
            c = db(srv)
            try:
                row = c.execute("SELECT * FROM audit WHERE seq = ?",
                                (lo,)).fetchone()
                c.execute("DELETE FROM audit WHERE seq = ?", (lo,))
                rc, rep = verify(srv)
                self.assertEqual(rc, 1)
                self.assertEqual(rep["bad_seq"], lo)
                c.execute("INSERT INTO audit VALUES (%s)" %
                          ",".join("?" * len(row)), row)
            finally:
                c.close()
            self.assertEqual(verify(srv)[0], 0)
            rep = verify(srv)[1]
        finally:
            H.stop_cleanly(srv)
        # Stopped: the same walk offline, read only, and the same head.
        p = subprocess.run([H.SERVER, "audit", "verify", "-config",
                            srv.conf, "-output", "json"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        off = json.loads(p.stdout)
        self.assertEqual((off["head_seq"], off["head_hash"],
                          off["anchor_seq"]),
                         (rep["head_seq"], rep["head_hash"],
                          rep["anchor_seq"]))
        c = sqlite3.connect(srv.db, isolation_level=None)
        try:
            c.execute("UPDATE audit SET actor = 'uid:4242' WHERE seq = ?",
                      (off["head_seq"] - 1,))
        finally:
            c.close()
        before = sorted(os.listdir(srv.data))
        p = subprocess.run([H.SERVER, "audit", "verify", "-dataDir",
                            srv.data], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("Audit trail BROKEN at seq %d: hash mismatch" %
                      (off["head_seq"] - 1), p.stdout)
        # Nothing was written beside the database.
        self.assertEqual(sorted(os.listdir(srv.data)), before)


class RotationTest(unittest.TestCase):

    def test_ca_rotation_is_recorded(self):
        # Prepared at half the CA's life, activated at five sixths: with a
        # 60 s CA both happen within a minute (the tick is 10 s).
        srv = H.Server(port=H.free_port(), ca_ttl="60s", x509_ttl="10s")
        srv.start()
        try:
            deadline = time.monotonic() + 120
            seen = set()
            while time.monotonic() < deadline:
                ev = events(srv)
                seen = {(e["kind"], e["detail"]["kind"], e["detail"]["slot"])
                        for e in ev if e["kind"].startswith("ca.")}
                if ("ca.activated", "x509", "B") in seen:
                    break
                time.sleep(2)
            for k in ("x509", "jwt", "wit"):
                self.assertIn(("ca.activated", k, "A"), seen)
            self.assertIn(("ca.prepared", "x509", "B"), seen)
            self.assertIn(("ca.activated", "x509", "B"), seen)
            self.assertIn(("ca.retired", "x509", "A"), seen)
            act = [e for e in ev if e["kind"] == "ca.activated" and
                   e["detail"]["slot"] == "B" and
                   e["detail"]["kind"] == "x509"][0]
            self.assertEqual(act["actor"], "server")
            self.assertRegex(act["detail"]["kid"], "^[0-9a-f]+$")
            self.assertGreater(act["detail"]["not_after"], act["at"])
            self.assertEqual(verify(srv)[0], 0)
        finally:
            H.stop_cleanly(srv)


class BackupRestoreTest(unittest.TestCase):

    def fetch(self, target, want, timeout=60):
        """The Workload API's SVIDs once every ID in want is among them."""
        deadline = time.monotonic() + timeout
        ids = set()
        while time.monotonic() < deadline:
            r = H.fetch_x509(target)
            if r is not None:
                ids = {s.spiffe_id for s in r.svids}
                if want <= ids:
                    return r
            time.sleep(0.3)
        raise AssertionError("no SVIDs for %s (have %s)" % (want, ids))

    def test_backup_under_load_and_restore_elsewhere(self):
        uid = os.getuid()
        srv = H.Server(port=H.free_port()).start()
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        aid = H.agent_spiffe_id(tok)
        before_id = "spiffe://%s/before-backup" % TD
        srv.create_entry(before_id, aid, ["unix:uid:%d" % uid])
        agent = H.AgentDaemon(srv, bundle).start(token=tok)
        target = "unix://" + agent.sock
        srv2 = None
        try:
            first = self.fetch(target, {before_id})
            # Entries are being created while the backup runs.
            stop = threading.Event()
            made = []

            def load():
                i = 0
                while not stop.is_set():
                    srv.create_entry("spiffe://%s/load/%d" % (TD, i),
                                     aid, ["unix:uid:%d" % (100000 + i)])
                    made.append(i)
                    i += 1
            th = threading.Thread(target=load)
            th.start()
            while len(made) < 5:
                time.sleep(0.05)
            bdir = os.path.join(tempfile.mkdtemp(prefix="wick-bk-"), "b1")
            out = json.loads(run(srv, "backup", "-path", bdir, "-output",
                                 "json").stdout)
            n_at_backup = len(made)
            while len(made) < n_at_backup + 3:
                time.sleep(0.05)
            stop.set()
            th.join()
            self.assertEqual(out["path"], bdir)
            self.assertEqual(out["datastore_file"], "datastore.sqlite3")
            self.assertEqual(out["keys_file"], "keys.json")
            self.assertEqual(stat.S_IMODE(os.stat(bdir).st_mode), 0o700)
            for f in ("datastore.sqlite3", "keys.json"):
                self.assertEqual(stat.S_IMODE(
                    os.stat(os.path.join(bdir, f)).st_mode), 0o600)
            self.assertEqual(sorted(os.listdir(bdir)),
                             ["datastore.sqlite3", "keys.json"])
            c = sqlite3.connect("file:%s/datastore.sqlite3?mode=ro" % bdir,
                                uri=True)
            try:
                self.assertEqual(c.execute("PRAGMA integrity_check"
                                           ).fetchone()[0], "ok")
                nb = c.execute("SELECT count(*) FROM entries").fetchone()[0]
            finally:
                c.close()
            # A consistent snapshot: some of the load, not all of it.
            self.assertGreaterEqual(nb, 1 + 5)
            self.assertLessEqual(nb, 1 + len(made))
            sys.stderr.write("backup holds %d entries of %d created\n" %
                             (nb, 1 + len(made)))
            with open(os.path.join(bdir, "keys.json")) as f:
                self.assertTrue(json.load(f)["keys"])
            # Never over an existing directory.
            again = run(srv, "backup", "-path", bdir, check=False)
            self.assertEqual(again.returncode, 1)
            self.assertIn("already exists", again.stderr)
            self.assertEqual(sorted(os.listdir(bdir)),
                             ["datastore.sqlite3", "keys.json"])
            kinds = [e["kind"] for e in events(srv)]
            self.assertIn("server.backup", kinds)
            old_bundle = srv.bundle_spiffe()

            # The old machine is gone.
            self.assertEqual(agent.stop(), 0)
            self.assertEqual(srv.stop(), 0)

            # A new machine: a fresh directory, another port.
            srv2 = H.Server(port=H.free_port())
            p = subprocess.run([H.SERVER, "restore", "-from", bdir,
                                "-config", srv2.conf],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("Audit trail OK", p.stdout)
            self.assertEqual(stat.S_IMODE(os.stat(srv2.data).st_mode),
                             0o700)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(
                srv2.data, "keys.json")).st_mode), 0o600)
            # A second restore would overwrite: refused.
            p = subprocess.run([H.SERVER, "restore", "-from", bdir,
                                "-config", srv2.conf],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 1)
            self.assertIn("-force", p.stderr)
            srv2.start()
            # Never under a running server, even when told to replace.
            p = subprocess.run([H.SERVER, "restore", "-from", bdir,
                                "-config", srv2.conf, "-force"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 1)
            self.assertIn("stop it first", p.stderr)
            self.assertEqual(srv2.bundle_spiffe()["keys"],
                             old_bundle["keys"])
            rc, rep = verify(srv2)
            self.assertEqual(rc, 0, rep)
            self.assertEqual(
                json.loads(run(srv2, "entry", "count", "-output",
                               "json").stdout)["count"], nb)
            agents = json.loads(run(srv2, "agent", "list", "-output",
                                    "json").stdout)
            self.assertIn(aid, json.dumps(agents))
            head = rep["head_seq"]

            # The agent, pointed at the new server, goes on without a
            # token: same identity, new entries arrive, SVIDs issued.
            with open(agent.conf) as f:
                conf = f.read()
            with open(agent.conf, "w") as f:
                f.write(conf.replace('server_port = "%d"' % srv.port,
                                     'server_port = "%d"' % srv2.port))
            after_id = "spiffe://%s/after-restore" % TD
            srv2.create_entry(after_id, aid, ["unix:uid:%d" % uid])
            agent.start()
            got = self.fetch(target, {before_id, after_id}, timeout=90)
            # The same CA: workloads' trust bundle did not change.
            self.assertEqual(got.svids[0].bundle, first.svids[0].bundle)
            ev = [e for e in events(srv2) if e["seq"] > head]
            self.assertNotIn("agent.attest", [e["kind"] for e in ev])
            self.assertTrue(any(e["kind"] == "svid.x509" and
                                e["actor"].startswith(
                                    "spiffe://%s/spire/agent/" % TD)
                                for e in ev), ev)
            self.assertEqual(verify(srv2)[0], 0)
        finally:
            rc = agent.stop()
            srv.stop()
            if srv2 is not None:
                srv2.stop()
        self.assertEqual(rc, 0)
        self.assertIsNone(H.sanitizer_report(agent.all_output()))
        # Stopped, and told to: the backup replaces what is there, and the
        # events recorded since are gone with the rest.
        p = subprocess.run([H.SERVER, "restore", "-from", bdir, "-config",
                            srv2.conf, "-force"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run([H.SERVER, "audit", "verify", "-config",
                            srv2.conf, "-output", "json"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(json.loads(p.stdout)["head_seq"], head)

    def test_batch_too_large_to_detail_is_still_recorded(self):
        """A batch whose details exceed what one event may store (a
        request just under the message limit): the entries are created
        and the event is recorded, with the details' digest."""
        import grpc
        import admin_pb2 as A
        srv = H.Server(port=H.free_port()).start()
        try:
            req = A.BatchCreateEntryRequest()
            parent = "spiffe://%s/parent/%s" % (TD, "b" * 163)
            for i in range(10000):
                e = req.entries.add()
                e.spiffe_id = "spiffe://%s/w/%05d/%s" % (TD, i, "a" * 150)
                e.parent_id = parent
                e.selectors.add(type="unix", value="uid:1")
            self.assertLess(req.ByteSize(), 4 * 1024 * 1024)
            with grpc.insecure_channel(
                    "unix:" + srv.sock, options=[
                        ("grpc.max_receive_message_length", 1 << 26)]) as ch:
                resp = ch.unary_unary(
                    "/wick.admin.Entries/BatchCreateEntry",
                    request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=A.BatchCreateEntryResponse.
                    FromString)(req, timeout=120)
            self.assertEqual(sum(1 for r in resp.results
                                 if r.status.code == 0), 10000)
            ev = [e for e in events(srv) if e["kind"] == "entry.create"]
            self.assertEqual(len(ev), 1, ev)
            self.assertTrue(ev[0]["detail"]["truncated"])
            self.assertGreater(ev[0]["detail"]["detail_bytes"],
                               4 * 1024 * 1024)
            self.assertEqual(verify(srv)[0], 0)
        finally:
            srv.stop()

    def test_show_pages_by_size(self):
        """Large details: a page of events stays under a client's message
        limit (4 MiB for gRPC's defaults, 16 MiB for the CLI), so audit
        show can list them all."""
        srv = H.Server(port=H.free_port()).start()
        try:
            c = db(srv)
            head = c.execute("SELECT max(seq) FROM audit").fetchone()[0]
            detail = json.dumps({"pad": "x" * 40000})
            c.execute("BEGIN IMMEDIATE")
            for i in range(1, 601):
                c.execute("INSERT INTO audit (seq, at, kind, actor,"
                          " subject, ok, detail, prev_hash, hash)"
                          " VALUES (?, ?, 'entry.create', 'uid:0', '', 1,"
                          " ?, ?, ?)", (head + i, int(time.time()), detail,
                                        "0" * 64, "0" * 64))
            c.execute("COMMIT")
            c.close()
            ev = events(srv)
            self.assertEqual(ev[-1]["seq"], head + 600)
            self.assertEqual(len(ev), head + 600)
        finally:
            srv.stop()

    def test_backup_dir_swapped_for_a_symlink(self):
        """The backup directory renamed away and replaced by a symlink
        while the copy runs: the server never writes into, nor deletes
        from, the directory the symlink names."""
        srv = H.Server(port=H.free_port()).start()
        try:
            c = db(srv)
            c.execute("CREATE TABLE pad (b BLOB)")
            for _ in range(48):
                c.execute("INSERT INTO pad VALUES (randomblob(1048576))")
            c.close()
            parent = tempfile.mkdtemp(prefix="wick-bk-")
            bdir = os.path.join(parent, "b")
            victim = tempfile.mkdtemp(prefix="wick-victim-")
            for f in ("datastore.sqlite3", "keys.json"):
                with open(os.path.join(victim, f), "w") as fh:
                    fh.write("victim")
            p = subprocess.Popen([H.SERVER, "backup", "-path", bdir,
                                  "-socketPath", srv.sock],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 30
            while not os.path.isdir(bdir) and time.time() < deadline:
                time.sleep(0.001)
            os.rename(bdir, os.path.join(parent, "moved"))
            os.symlink(victim, bdir)
            out, err = p.communicate(timeout=120)
            sys.stderr.write("backup: %d %s%s" % (p.returncode, out, err))
            for f in ("datastore.sqlite3", "keys.json"):
                with open(os.path.join(victim, f)) as fh:
                    self.assertEqual(fh.read(), "victim", f)
            self.assertEqual(sorted(os.listdir(victim)),
                             ["datastore.sqlite3", "keys.json"])
        finally:
            srv.stop()

    def test_restore_refuses_hostile_backups_and_live_datastores(self):
        """A backup that is not this server's (another trust domain, a key
        file of another CA, a damaged datastore) is refused before anything
        is replaced; so is a datastore some process holds open."""
        a = H.Server(port=H.free_port()).start()
        other_td = "other.example"
        b = H.Server(port=H.free_port())
        with open(b.conf) as f:
            conf = f.read()
        with open(b.conf, "w") as f:
            f.write(conf.replace('trust_domain = "%s"' % TD,
                                 'trust_domain = "%s"' % other_td))
        b.start()
        try:
            good = os.path.join(tempfile.mkdtemp(prefix="wick-bk-"), "a")
            run(a, "backup", "-path", good)
            other = os.path.join(tempfile.mkdtemp(prefix="wick-bk-"), "b")
            run(b, "backup", "-path", other)
        finally:
            a.stop()
            b.stop()

        def hostile(ds_from, keys_from, ds_bytes=None):
            d = tempfile.mkdtemp(prefix="wick-bk-bad-")
            os.chmod(d, 0o700)
            dst = os.path.join(d, "datastore.sqlite3")
            if ds_bytes is not None:
                with open(dst, "wb") as f:
                    f.write(ds_bytes)
            else:
                shutil.copy(os.path.join(ds_from, "datastore.sqlite3"), dst)
            shutil.copy(os.path.join(keys_from, "keys.json"),
                        os.path.join(d, "keys.json"))
            for f in os.listdir(d):
                os.chmod(os.path.join(d, f), 0o600)
            return d

        cases = [
            (hostile(good, other), "does not match"),
            (hostile(other, other), "no bundle of spiffe://%s" % TD),
            (hostile(good, good, b"SQLite format 3\0" + b"\xff" * 4096),
             "restore:"),
        ]
        trig = hostile(good, good)
        c = sqlite3.connect(os.path.join(trig, "datastore.sqlite3"))
        c.execute("CREATE TRIGGER t AFTER INSERT ON audit BEGIN"
                  " DELETE FROM audit WHERE seq = NEW.seq; END")
        c.commit()
        c.close()
        cases.append((trig, "trigger"))
        for bdir, why in cases:
            dest = H.Server(port=H.free_port())
            p = subprocess.run([H.SERVER, "restore", "-from", bdir,
                                "-config", dest.conf],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            sys.stderr.write(p.stderr)
            self.assertIn(why, p.stderr)
            self.assertIsNone(H.sanitizer_report(p.stderr))
            # Nothing half-restored: no key file, no datastore.
            left = os.listdir(dest.data) if os.path.isdir(dest.data) else []
            self.assertEqual(left, [], (why, left))

        # A datastore held open (a server still draining, its socket
        # gone): never replaced, even with -force.
        dest = H.Server(port=H.free_port())
        p = subprocess.run([H.SERVER, "restore", "-from", good, "-config",
                            dest.conf], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        c = sqlite3.connect(os.path.join(dest.data, "datastore.sqlite3"))
        try:
            c.execute("SELECT count(*) FROM audit").fetchone()
            p = subprocess.run([H.SERVER, "restore", "-from", good,
                                "-config", dest.conf, "-force"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("in use", p.stderr)
        finally:
            c.close()
        p = subprocess.run([H.SERVER, "restore", "-from", good, "-config",
                            dest.conf, "-force"], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
