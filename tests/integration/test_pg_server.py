#!/usr/bin/env python3
"""wick-server on a PostgreSQL datastore (database_type = "postgres"),
against a scratch PostgreSQL started by pg.py.

- the configuration: "postgres" accepted, a missing connection_string
  refused naming it;
- a server creates and migrates the database, answers the admin API
  from it (tokens, entries), and finds everything again after a restart;
- two servers started together on a fresh database (the migration runs
  once, under its lock) read the same entries; each keeps its own CA
  (its own key file) and the shared bundle, served by either, holds
  both, so the SVID of each verifies against the other's bundle;
- audit verify reads the stopped server's database; backup says to use
  pg_dump;
- backup and restore: pg_dump of a running server's database and a copy
  of its key file, pg_restore into an empty database on a new server,
  where wick-server restore checks the database against the key file
  (refusing before the database is restored, a key file of another
  server, and replacing keys without -force) and puts the key file in
  place; the restored server has the same CA, entries, agents and audit
  chain, and an agent attested to the old server gets SVIDs from it
  without attesting again;
- the password in the connection string appears in no log line and no
  error, not even when the server cannot be reached.
"""
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_harness as H  # noqa: E402
from pg import PostgresServer, pg_bin  # noqa: E402

SECRET = "s3cret-in-the-conninfo"
SQLITE_DS = """            database_type = "sqlite3"
            connection_string = "%s/datastore.sqlite3\""""


def use_postgres(srv, conninfo):
    """Point srv's configuration at PostgreSQL instead of its SQLite file."""
    with open(srv.conf) as f:
        text = f.read()
    old = SQLITE_DS % srv.data
    assert old in text, text
    text = text.replace(old, '            database_type = "postgres"\n'
                        '            connection_string = "%s"' % conninfo)
    with open(srv.conf, "w") as f:
        f.write(text)


def psql(pg, dbname, sql):
    subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-X",
                    pg.conninfo(dbname), "-c", sql], check=True,
                   capture_output=True, text=True)


class PgServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
            for line in s.all_output().splitlines():
                self.assertNotIn(SECRET, line)
            bad = H.sanitizer_report(s.all_output())
            self.assertIsNone(bad, bad)

    def server(self, dbname):
        s = H.Server()
        use_postgres(s, self.pg.conninfo(dbname) + " password=" + SECRET)
        self.servers.append(s)
        return s

    def test_validate(self):
        s = self.server("none")
        p = subprocess.run([H.SERVER, "validate", "-config", s.conf],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(s.conf) as f:
            text = f.read()
        start = text.index("connection_string")
        end = text.index("\n", start)
        with open(s.conf, "w") as f:
            f.write(text[:start] + text[end:])
        p = subprocess.run([H.SERVER, "validate", "-config", s.conf],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("connection_string", p.stderr)

    def test_no_server(self):
        s = H.Server()
        use_postgres(s, "host=%s/nowhere dbname=x user=wick password=%s" %
                     (self.pg.dir, SECRET))
        self.servers.append(s)
        s.name = "wick-server"
        s.spawn([H.SERVER, "run", "-config", s.conf])
        rc = s.proc.wait(timeout=60)
        self.assertNotEqual(rc, 0)
        out = s.output()
        self.assertIn("cannot connect", out)
        self.assertIn("nowhere", out)
        self.assertNotIn(SECRET, out)

    def test_serve_and_restart(self):
        psql(self.pg, "postgres", "CREATE DATABASE serve")
        s = self.server("serve").start()
        self.assertIn("migrated to schema version", s.output())
        tok = s.token()
        eid = s.create_entry("spiffe://%s/web" % H.TD,
                             "spiffe://%s/spire/agent/join_token/%s" %
                             (H.TD, tok), ["unix:uid:1000"])
        shown = s.cli_json("entry", "show", "-entryID", eid)
        self.assertIn("spiffe://%s/web" % H.TD, str(shown))
        s.stop()
        s.start()
        self.assertIn("spiffe://%s/web" % H.TD,
                      str(s.cli_json("entry", "show", "-entryID", eid)))
        # The token is stored hashed: the table has only its SHA-256.
        out = subprocess.run(["psql", "-X", "-A", "-t",
                              self.pg.conninfo("serve"), "-c",
                              "SELECT token_hash FROM join_tokens"],
                             capture_output=True, text=True, check=True)
        self.assertNotIn(tok, out.stdout)
        self.assertEqual(len(out.stdout.strip()), 64)
        # The audit chain, read offline from the stopped server's
        # database (a read-only session).
        s.stop()
        p = subprocess.run([H.SERVER, "audit", "verify", "-config", s.conf],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn(SECRET, p.stdout + p.stderr)
        # The backup is the database's own (pg_dump): said so, clearly.
        s.start()
        p = subprocess.run([H.SERVER, "backup", "-socketPath", s.sock,
                            "-path", os.path.join(s.tmp, "bk")],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("pg_dump", p.stdout + p.stderr)

    def test_backup_and_restore(self):
        psql(self.pg, "postgres", "CREATE DATABASE orig")
        a = self.server("orig").start()
        bundle = a.bundle_pem(os.path.join(a.tmp, "bundle.pem"))
        tok = a.token()
        agent = H.Agent(a)
        agent.attest(tok, bundle)
        aid = H.agent_spiffe_id(tok)
        eid = a.create_entry("spiffe://%s/kept" % H.TD, aid,
                             ["unix:uid:1234"])
        _, out = agent.run("x509", eid)
        self.assertEqual(out["results"][0]["code"], 0)
        before = a.cli("bundle", "show").stdout
        # wick's own backup names what to save instead.
        p = subprocess.run([H.SERVER, "backup", "-socketPath", a.sock,
                            "-path", os.path.join(a.tmp, "bk0")],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("pg_dump", p.stderr + p.stdout)
        self.assertIn("key file", p.stderr + p.stdout)
        # What the admin saves: the database, with the server running,
        # and the key file, modes kept.
        bk = os.path.join(a.tmp, "backup")
        os.mkdir(bk, 0o700)
        dump = os.path.join(bk, "wick.dump")
        subprocess.run([pg_bin("pg_dump"), "-Fc", "-f", dump,
                        self.pg.conninfo("orig")], check=True,
                       capture_output=True, text=True, timeout=120)
        shutil.copy2(os.path.join(a.data, "keys.json"), bk)
        a.kill9()	# the machine is lost

        # A new machine: another data directory, port and database.
        psql(self.pg, "postgres", "CREATE DATABASE restored")
        b = self.server("restored")
        restore = [H.SERVER, "restore", "-from", bk, "-config", b.conf]
        # Before the database is restored: refused, and nothing is
        # created in it (pg_restore wants it empty).
        p = subprocess.run(restore, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("pg_restore", p.stderr)
        self.assertNotIn(SECRET, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(os.path.join(b.data, "keys.json")))
        tables = subprocess.run(
            ["psql", "-X", "-A", "-t", self.pg.conninfo("restored"), "-c",
             "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"],
            capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(tables, "0")
        subprocess.run([pg_bin("pg_restore"), "--exit-on-error", "-d",
                        self.pg.conninfo("restored"), dump], check=True,
                       capture_output=True, text=True, timeout=120)
        # Another server's key file does not match the database.
        psql(self.pg, "postgres", "CREATE DATABASE scratch")
        c = self.server("scratch").start()
        c.stop()
        other_keys = os.path.join(c.tmp, "elsewhere")
        os.mkdir(other_keys, 0o700)
        shutil.copy2(os.path.join(c.data, "keys.json"), other_keys)
        p = subprocess.run([H.SERVER, "restore", "-from", other_keys,
                            "-config", b.conf], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("does not match", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(b.data, "keys.json")))
        # The saved key file: checked against the restored database and
        # put in place.
        p = subprocess.run(restore, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Audit trail OK", p.stdout)
        self.assertNotIn(SECRET, p.stdout + p.stderr)
        keys = os.path.join(b.data, "keys.json")
        self.assertEqual(os.stat(keys).st_mode & 0o777, 0o600)
        with open(keys) as f, open(os.path.join(bk, "keys.json")) as g:
            self.assertEqual(f.read(), g.read())
        p = subprocess.run(restore, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("-force", p.stderr)
        p = subprocess.run(restore + ["-force"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        b.start()
        self.assertEqual(b.cli("bundle", "show").stdout, before)
        self.assertIn("spiffe://%s/kept" % H.TD,
                      str(b.cli_json("entry", "show", "-entryID", eid)))
        self.assertIn(aid, str(b.cli_json("agent", "show", "-spiffeID",
                                          aid)))
        p = b.cli("audit", "verify")
        self.assertIn("OK", p.stdout)
        # The agent of the old server carries on with the new one: its
        # SVID chains to the same CA and its serial is known.
        moved = H.Agent(b, tmpdir=agent.dir)
        _, out = moved.run("x509", eid)
        self.assertEqual(out["results"][0]["code"], 0)
        self.assertEqual(out["results"][0]["svid"]["spiffe_id"],
                         "spiffe://%s/kept" % H.TD)
        # Still the old server's CA: its bundle verifies the new SVID.
        v = subprocess.run(["openssl", "verify", "-CAfile", bundle,
                            moved.path("svid.0.pem")], capture_output=True,
                           text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_two_servers_one_database(self):
        psql(self.pg, "postgres", "CREATE DATABASE shared")
        a, b = self.server("shared"), self.server("shared")
        a.name = b.name = "wick-server"
        a.spawn([H.SERVER, "run", "-config", a.conf])
        b.spawn([H.SERVER, "run", "-config", b.conf])
        a.wait_ready(60)
        b.wait_ready(60)
        migrated = (a.output() + b.output()).count(
            "migrated to schema version 1")
        self.assertEqual(migrated, 1)
        eid = a.create_entry("spiffe://%s/db" % H.TD,
                             "spiffe://%s/agent" % H.TD, ["unix:uid:7"])
        self.assertIn("spiffe://%s/db" % H.TD,
                      str(b.cli_json("entry", "show", "-entryID", eid)))

        # Both CAs in the bundle from either server: the other's reaches
        # a server's cache on its next tick (10 s).
        def cas(s):
            return s.cli("bundle", "show").stdout.count("BEGIN CERTIFICATE")
        deadline = time.time() + 40
        while time.time() < deadline and (cas(a) < 2 or cas(b) < 2):
            time.sleep(1)
        self.assertEqual(cas(a), 2)
        self.assertEqual(cas(b), 2)
        self.assertEqual(a.cli("bundle", "show").stdout,
                         b.cli("bundle", "show").stdout)
        # Each server's own SVID (signed by its own CA), verified against
        # the bundle the other server serves.
        for s, other in ((a, b), (b, a)):
            p = subprocess.run(
                ["openssl", "s_client", "-connect", s.addr, "-alpn", "h2",
                 "-servername", "localhost"], input="",
                capture_output=True, text=True, timeout=30)
            m = re.search(r"-----BEGIN CERTIFICATE-----.*?"
                          r"-----END CERTIFICATE-----", p.stdout, re.S)
            self.assertIsNotNone(m, p.stdout + p.stderr)
            leaf = os.path.join(s.tmp, "server-svid.pem")
            bundle = os.path.join(s.tmp, "other-bundle.pem")
            with open(leaf, "w") as f:
                f.write(m.group(0) + "\n")
            with open(bundle, "w") as f:
                f.write(other.cli("bundle", "show").stdout)
            v = subprocess.run(["openssl", "verify", "-CAfile", bundle,
                                leaf], capture_output=True, text=True)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
            # Not a CA both happen to share: each server signs its own.
            with open(os.path.join(s.data, "keys.json")) as f:
                self.assertIn("server_id", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
