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
- the password in the connection string appears in no log line and no
  error, not even when the server cannot be reached.
"""
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_harness as H  # noqa: E402
from pg import PostgresServer  # noqa: E402

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
