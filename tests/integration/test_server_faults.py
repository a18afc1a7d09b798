"""wick-server under faults a peer can provoke or run into, against the real
binary: a datastore another process locks or changes under the server, and
join tokens that must never reach the log or the database while they can
still be used.

No request may end the daemon: it answers a status, logs (rate-limited) and
serves again once the fault is gone.  A live join token is named only by its
SHA-256 prefix.
"""
import hashlib
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_harness as H  # noqa: E402

TD = H.TD
# What CLI errors look like: "rpc error: code = Internal desc = ...".
RPC_ERROR = re.compile(r"code = (Internal|Unavailable|ResourceExhausted)")


agent_id = H.agent_spiffe_id


def alive(srv):
    return srv.proc is not None and srv.proc.poll() is None


def db_text(path):
    """Every value of every table of the SQLite file, as text."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = []
        for t in tables:
            for row in con.execute('SELECT * FROM "%s"' % t):
                for v in row:
                    if isinstance(v, bytes):
                        v = v.decode("latin-1")
                    rows.append("%s: %s" % (t, v))
        return rows
    finally:
        con.close()


# ---- the admin API without generated code (a caller-chosen token) ----------

def create_token(srv, token, ttl=600):
    """CreateJoinToken with a caller-chosen value, as any admin client may."""
    req = b"\x08" + H.pb_varint(ttl) + b"\x12" + \
        H.pb_varint(len(token)) + token.encode()
    with grpc.insecure_channel("unix:" + srv.sock) as ch:
        call = ch.unary_unary("/wick.admin.Agents/CreateJoinToken")
        resp = call(req, timeout=30)
    assert dict(H.pb_fields(resp)).get(1) == token.encode()
    return token


# ---- a second process that locks the database ------------------------------

LOCKER = r"""
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("CREATE TABLE IF NOT EXISTS fault_probe (x)")
c.execute("BEGIN IMMEDIATE")
c.execute("INSERT INTO fault_probe VALUES (1)")
print("locked", flush=True)
sys.stdin.readline()
c.execute("ROLLBACK")
c.close()
print("released", flush=True)
"""


class Locker:
    """Holds the database's write lock (a write transaction left open)
    from another process until release()."""

    def __init__(self, db):
        self.proc = subprocess.Popen([sys.executable, "-c", LOCKER, db],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "locked", line

    def release(self):
        if self.proc is None:
            return
        out, _ = self.proc.communicate("\n", timeout=60)
        assert out.strip() == "released", out
        self.proc = None


class Schema:
    """Another process renames a table of the server's database, as a
    newer migration or a careless operator might, and renames it back."""

    def __init__(self, db):
        self.db = db
        self.moved = []

    def _exec(self, sql):
        con = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        try:
            con.execute(sql)
        finally:
            con.close()

    def move(self, table):
        self._exec('ALTER TABLE "%s" RENAME TO "%s_moved"' % (table, table))
        self.moved.append(table)

    def restore(self):
        while self.moved:
            t = self.moved.pop()
            self._exec('ALTER TABLE "%s_moved" RENAME TO "%s"' % (t, t))


class DatastoreFaultTest(unittest.TestCase):
    """Requests that meet a datastore failure get a status; the server lives
    on.  Each case starts a fresh server, so that the statements the
    requests need are still to be prepared (SQLite prepares lazily)."""

    def setUp(self):
        self.srv = H.Server().start()
        self.bundle = self.srv.bundle_pem(os.path.join(self.srv.tmp,
                                                       "bundle.pem"))
        self.schema = Schema(self.srv.db)

    def tearDown(self):
        self.schema.restore()
        if self.srv.proc is not None:
            H.stop_cleanly(self.srv)

    def fails_cleanly(self, p):
        """A CLI call answered with a server-side error status."""
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertRegex(p.stderr + p.stdout, RPC_ERROR)
        self.assertTrue(alive(self.srv), self.srv.output()[-3000:])

    def reload_schema(self):
        """Any read makes the server notice the schema changed (SQLite
        checks the schema cookie when a statement runs), so the next
        prepare sees the table gone."""
        p = self.srv.cli("healthcheck", check=False)
        self.assertTrue(alive(self.srv), self.srv.output()[-3000:])
        return p

    def test_prepare_fails_on_admin_calls(self):
        # token generate prepares its INSERT on first use.
        self.schema.move("join_tokens")
        self.reload_schema()
        p = self.srv.cli("token", "generate", "-ttl", "60", check=False)
        self.fails_cleanly(p)
        self.assertIn("cannot create the token", p.stderr + p.stdout)
        # entry show -selector builds a query of its own for each call;
        # entry create prepares the selector INSERT on first use.
        self.schema.move("entry_selectors")
        self.reload_schema()
        p = self.srv.cli("entry", "show", "-selector", "unix:uid:1",
                         check=False)
        self.fails_cleanly(p)
        p = self.srv.cli("entry", "create", "-spiffeID",
                         "spiffe://%s/faults/a" % TD, "-parentID",
                         "spiffe://%s/node/faults" % TD, "-selector",
                         "unix:uid:1", check=False)
        self.fails_cleanly(p)
        # agent list: the same for the agents table.
        self.schema.move("nodes")
        self.reload_schema()
        self.fails_cleanly(self.srv.cli("agent", "list", check=False))
        # The failures are logged, with what SQLite said.
        out = self.srv.output()
        self.assertIn("no such table", out)
        # Back to normal: everything works, nothing was half written.
        self.schema.restore()
        self.assertTrue(self.srv.token())
        eid = self.srv.create_entry("spiffe://%s/faults/a" % TD,
                                    "spiffe://%s/node/faults" % TD,
                                    ["unix:uid:1"])
        shown = self.srv.cli_json("entry", "show", "-selector", "unix:uid:1")
        self.assertEqual([e["id"] for e in shown["entries"]], [eid])
        self.srv.cli("agent", "list")

    def test_prepare_fails_on_agent_calls(self):
        tok = self.srv.token()
        # AttestAgent reads the agent record first: prepared on first use.
        self.schema.move("nodes")
        self.reload_schema()
        agent = H.Agent(self.srv)
        rc, out = agent.run("attest", "-t", tok, bundle=self.bundle,
                            check=False)
        self.assertTrue(alive(self.srv), self.srv.output()[-3000:])
        self.assertEqual(rc, 2, out)
        self.assertIn(out["code"], (13, 14))     # INTERNAL, UNAVAILABLE
        self.assertIn("datastore", out["message"])
        # The token was not spent on a failure: it works once the table is
        # back.
        self.schema.restore()
        first = agent.attest(tok, self.bundle)
        self.assertEqual(first["svid"]["spiffe_id"], agent_id(tok))
        eid = self.srv.create_entry("spiffe://%s/faults/w" % TD,
                                    agent_id(tok), ["unix:uid:7"])
        # An attested agent's calls fail cleanly as well.
        self.schema.move("nodes")
        self.reload_schema()
        for args in (("sync",), ("x509", eid), ("renew",)):
            rc, out = agent.run(*args, check=False)
            self.assertTrue(alive(self.srv), self.srv.output()[-3000:])
            self.assertEqual(rc, 2, (args, out))
            self.assertIn(out["code"], (13, 14), (args, out))
        self.schema.restore()
        _, out = agent.run("x509", eid)
        self.assertEqual(out["results"][0]["code"], 0)

    def test_batch_delete(self):
        """Two entries gone in one refresh of the entry cache: the first
        one dropped must not break the search for the second (it was a
        NULL dereference, so one admin request ended the daemon)."""
        parent = "spiffe://%s/node/faults" % TD
        for eid in "abcdefgh":
            self.srv.cli("entry", "create", "-entryID", eid, "-spiffeID",
                         "spiffe://%s/faults/%s" % (TD, eid), "-parentID",
                         parent, "-selector", "unix:uid:1")
        path = os.path.join(self.srv.tmp, "ids.json")
        with open(path, "w") as f:
            f.write('{"ids": ["e", "g"]}')
        self.srv.cli("entry", "delete", "-file", path)
        self.assertTrue(alive(self.srv), self.srv.output()[-3000:])
        left = self.srv.cli_json("entry", "show", "-parentID", parent)
        self.assertEqual(sorted(e["id"] for e in left["entries"]),
                         list("abcdfh"))

    def test_exclusive_lock_cannot_shut_out_a_running_server(self):
        """Why the lock below is a write lock: in WAL mode the server keeps
        a shared lock on the database file while it runs, so another
        process in locking_mode=EXCLUSIVE cannot take the file at all (and
        the server, whose schema is loaded, prepares without touching the
        file).  A held write lock makes the server's writes fail after its
        busy timeout instead."""
        con = sqlite3.connect(self.srv.db, isolation_level=None, timeout=1)
        try:
            con.execute("PRAGMA locking_mode=EXCLUSIVE")
            with self.assertRaises(sqlite3.OperationalError) as cm:
                con.execute("BEGIN IMMEDIATE")
                con.execute("CREATE TABLE IF NOT EXISTS fault_probe (x)")
                con.execute("COMMIT")
            self.assertIn("locked", str(cm.exception))
        finally:
            con.close()
        self.assertTrue(alive(self.srv))
        self.srv.cli("healthcheck")

    def test_locked_datastore(self):
        tok = self.srv.token()
        lock = Locker(self.srv.db)
        try:
            # Writes wait for the busy timeout, then fail: UNAVAILABLE.
            # (Every write the server makes waits so, its periodic upkeep
            # too, and all on its one loop: while the lock is held, each
            # call takes seconds.  The attestation goes first, as its
            # client has the shortest deadline.)
            rc, out = H.Agent(self.srv).run("attest", "-t", tok,
                                            bundle=self.bundle, check=False)
            self.assertTrue(alive(self.srv), self.srv.output()[-3000:])
            self.assertEqual((rc, out["code"]), (2, 14), out)
            p = self.srv.cli("token", "generate", "-ttl", "60", check=False)
            self.fails_cleanly(p)
            self.assertIn("Unavailable", p.stderr + p.stdout)
            p = self.srv.cli("entry", "create", "-spiffeID",
                             "spiffe://%s/faults/l" % TD, "-parentID",
                             "spiffe://%s/node/faults" % TD, "-selector",
                             "unix:uid:2", check=False)
            self.fails_cleanly(p)
            # Reads are not blocked in WAL mode.
            self.srv.cli("entry", "show", "-selector", "unix:uid:2")
            self.srv.cli("agent", "list")
        finally:
            lock.release()
        self.assertIn("database is locked", self.srv.output())
        # Serving again; the token survived the failed attestation.
        self.assertTrue(self.srv.token())
        out = H.Agent(self.srv).attest(tok, self.bundle)
        self.assertEqual(out["svid"]["spiffe_id"], agent_id(tok))


class TokenSecrecyTest(unittest.TestCase):
    """A join token is live until an attestation spends it: until then
    neither the log nor the database may hold it."""

    @classmethod
    def setUpClass(cls):
        cls.srv = H.Server().start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.srv)

    def bad_csr(self):
        path = os.path.join(self.srv.tmp, "bad-csr.der")
        with open(path, "wb") as f:
            f.write(b"\x30\x03\x02\x01\x00 this is no CSR")
        return path

    def assert_secret(self, token, since=0):
        out = self.srv.output()[since:]
        self.assertNotIn(token, out)
        for row in db_text(self.srv.db):
            self.assertNotIn(token, row)

    def test_invalid_csr_keeps_the_token_secret(self):
        tok = self.srv.token()
        agent = H.Agent(self.srv)
        rc, out = agent.run("attest", "-t", tok, "-c", self.bad_csr(),
                            bundle=self.bundle, check=False)
        self.assertEqual((rc, out["code"]), (2, 3), out)
        self.assertIn("invalid CSR", out["message"])
        self.assert_secret(tok)
        # The failure is on record, naming the token by its hash prefix.
        tag = hashlib.sha256(tok.encode()).hexdigest()[:16]
        rows = [r for r in db_text(self.srv.db)
                if r.startswith("audit: ") and tag in r]
        self.assertTrue(any("invalid CSR" in r for r in rows), rows)
        self.assertIn(tag, self.srv.output())
        # The token was not spent: it attests now.
        out = agent.attest(tok, self.bundle)
        self.assertEqual(out["svid"]["spiffe_id"], agent_id(tok))

    def test_banned_agent_keeps_the_reissued_token_secret(self):
        # A join-token agent can be banned only once it exists, that is
        # after its token was spent; an admin may then issue the same token
        # value again, and an attestation with it meets the ban before the
        # token is spent.
        tok = create_token(self.srv, "wick-faults-" + secrets.token_hex(8))
        first = H.Agent(self.srv)
        first.attest(tok, self.bundle)
        self.srv.cli("agent", "ban", "-spiffeID", agent_id(tok))
        create_token(self.srv, tok)
        since = len(self.srv.output())
        before = [r for r in db_text(self.srv.db) if tok in r]
        rc, out = H.Agent(self.srv).run("attest", "-t", tok,
                                        bundle=self.bundle, check=False)
        self.assertEqual((rc, out["code"]), (2, 7), out)
        self.assertIn("agent is banned", out["message"])
        # Nothing new names it: not the log, not a row.  The rows that do
        # are the banned agent's own record and its change-log rows; the
        # audit trail names the token by its hash, even where it was spent.
        self.assertNotIn(tok, self.srv.output()[since:])
        after = [r for r in db_text(self.srv.db) if tok in r]
        self.assertEqual(sorted(after), sorted(before))
        self.assertTrue(after)
        for row in after:
            self.assertRegex(row, r"^(nodes|changes): ")
        # The reissued token is still live: once the agent is evicted, it
        # attests.
        self.srv.cli("agent", "evict", "-spiffeID", agent_id(tok))
        out = H.Agent(self.srv).attest(tok, self.bundle)
        self.assertEqual(out["svid"]["spiffe_id"], agent_id(tok))

    def test_admin_calls_on_a_live_token_id(self):
        tok = self.srv.token()
        since = len(self.srv.output())
        for verb in ("show", "ban", "evict"):
            p = self.srv.cli("agent", verb, "-spiffeID", agent_id(tok),
                             check=False)
            self.assertNotEqual(p.returncode, 0, p.stdout)
            self.assertIn("NotFound", p.stderr + p.stdout)
        self.srv.cli("entry", "show", "-parentID", agent_id(tok))
        self.assert_secret(tok, since)
        out = H.Agent(self.srv).attest(tok, self.bundle)
        self.assertEqual(out["svid"]["spiffe_id"], agent_id(tok))

    def test_entry_for_an_agent_before_it_attests(self):
        """As in SPIRE, entries may be made for a join-token agent before
        it attests: the entry holds the agent ID (the agent needs it), the
        audit trail and the log do not."""
        tok = self.srv.token()
        since = len(self.srv.output())
        self.srv.create_entry("spiffe://%s/faults/early" % TD, agent_id(tok),
                              ["unix:uid:11"])
        self.assertNotIn(tok, self.srv.output()[since:])
        rows = [r for r in db_text(self.srv.db) if tok in r]
        self.assertTrue(rows)
        for row in rows:
            self.assertTrue(row.startswith("entries: "), row)
        out = H.Agent(self.srv).attest(tok, self.bundle)
        self.assertEqual(out["svid"]["spiffe_id"], agent_id(tok))

    def test_failed_attestations_rate_limited(self):
        """Anyone can knock: every failure is in the audit table, but the
        log takes only a burst of lines and then says how many it
        dropped."""
        con = sqlite3.connect(self.srv.db, timeout=30)
        try:
            n0 = con.execute("SELECT count(*) FROM audit WHERE kind ="
                             " 'agent.attest' AND ok = 0").fetchone()[0]
        finally:
            con.close()
        since = len(self.srv.output())
        tries = 25
        for i in range(tries):
            rc, out = H.Agent(self.srv).run(
                "attest", "-t", "no-such-token-%d" % i, bundle=self.bundle,
                check=False)
            self.assertEqual((rc, out["code"]), (2, 3), out)
        con = sqlite3.connect(self.srv.db, timeout=30)
        try:
            n1 = con.execute("SELECT count(*) FROM audit WHERE kind ="
                             " 'agent.attest' AND ok = 0").fetchone()[0]
        finally:
            con.close()
        self.assertEqual(n1 - n0, tries)
        lines = [ln for ln in self.srv.output()[since:].splitlines()
                 if "audit: agent.attest failed" in ln]
        self.assertLess(len(lines), tries)
        self.assertLessEqual(len(lines), 10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
