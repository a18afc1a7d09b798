"""wick-server end to end: its CLI over the admin socket, and its agent API
through wick-testagent; every issued certificate checked with Python
`cryptography` and `openssl verify`, every JWT with PyJWT.
"""
import base64
import datetime
import http.client
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import grpc
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_harness as H  # noqa: E402

TD = H.TD
SERVER_ID = "spiffe://%s/spire/server" % TD


def load_pems(data):
    """Every certificate of a PEM blob (works with cryptography 38)."""
    end = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(part + end)
            for part in data.split(end) if b"-----BEGIN" in part]


def load_chain(path):
    with open(path, "rb") as f:
        return load_pems(f.read())


def uris(cert):
    san = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def openssl_verify(bundle, chain_path):
    chain = load_chain(chain_path)
    leaf = os.path.join(os.path.dirname(chain_path), "leaf-only.pem")
    with open(leaf, "wb") as f:
        f.write(chain[0].public_bytes(serialization.Encoding.PEM))
    args = ["openssl", "verify", "-CAfile", bundle]
    if len(chain) > 1:
        inter = os.path.join(os.path.dirname(chain_path), "inter.pem")
        with open(inter, "wb") as f:
            for c in chain[1:]:
                f.write(c.public_bytes(serialization.Encoding.PEM))
        args += ["-untrusted", inter]
    return subprocess.run(args + [leaf], capture_output=True, text=True)


def jwks_of(bundle_doc, use):
    keys = [k for k in bundle_doc["keys"] if k.get("use") == use]
    return {k["kid"]: k for k in keys}


def b64url_json(part):
    part += "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(part))


class ServerTest(unittest.TestCase):
    """One server for the read-mostly cases."""

    @classmethod
    def setUpClass(cls):
        cls.srv = H.Server().start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.srv)

    def attested(self):
        tok = self.srv.token()
        agent = H.Agent(self.srv)
        out = agent.attest(tok, self.bundle)
        return agent, tok, out

    # ---- admin socket and CLI ----------------------------------------------

    def test_healthcheck(self):
        p = self.srv.cli("healthcheck")
        self.assertIn("Server is healthy.", p.stdout)

    def test_admin_socket_modes(self):
        st = os.stat(self.srv.sock)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        st = os.stat(os.path.dirname(self.srv.sock))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        st = os.stat(self.srv.data)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        for name in ("keys.json", "datastore.sqlite3"):
            st = os.stat(os.path.join(self.srv.data, name))
            self.assertEqual(stat.S_IMODE(st.st_mode) & 0o077, 0, name)

    def test_admin_uid_checked(self):
        # Open the socket's file modes and check that the server still
        # refuses a uid that is neither root, its own, nor in admin_uids.
        d = os.path.dirname(self.srv.sock)
        os.chmod(self.srv.tmp, 0o755)
        os.chmod(d, 0o755)
        os.chmod(self.srv.sock, 0o666)
        try:
            p = self.srv.cli("entry", "count", user=65534, check=False)
        finally:
            os.chmod(self.srv.sock, 0o600)
            os.chmod(d, 0o700)
            os.chmod(self.srv.tmp, 0o700)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("may not use the admin API", p.stderr + p.stdout)

    def test_token_generate(self):
        tok = self.srv.token(ttl=60)
        self.assertRegex(tok, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                         r"[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        # The token is stored hashed: its text is nowhere in the database.
        for name in os.listdir(self.srv.data):
            with open(os.path.join(self.srv.data, name), "rb") as f:
                self.assertNotIn(tok.encode(), f.read(), name)
        self.assertNotIn(tok, self.srv.output())

    def test_token_bad_ttl(self):
        p = self.srv.cli("token", "generate", "-ttl", "0", check=False)
        self.assertNotEqual(p.returncode, 0)

    def test_entry_lifecycle(self):
        parent = "spiffe://%s/node/lifecycle" % TD
        eid = self.srv.create_entry(
            "spiffe://%s/web" % TD, parent, ["unix:uid:1000", "unix:gid:50"],
            "-x509SVIDTTL", "600", "-jwtSVIDTTL", "60", "-dns",
            "web.example.org", "-dns", "www.example.org", "-hint", "web",
            "-admin", "-downstream", "-storeSVID")
        shown = self.srv.cli("entry", "show", "-entryID", eid).stdout
        for want in ("spiffe://%s/web" % TD, parent, "unix:uid:1000",
                     "unix:gid:50", "web.example.org", "www.example.org"):
            self.assertIn(want, shown)
        js = self.srv.cli_json("entry", "show", "-parentID", parent)
        [e] = js["entries"]
        self.assertEqual(e["id"], eid)
        self.assertEqual(e["x509_svid_ttl"], 600)
        self.assertEqual(e["jwt_svid_ttl"], 60)
        self.assertEqual(e["hint"], "web")
        self.assertTrue(e["admin"] and e["downstream"] and e["store_svid"])
        self.assertEqual(sorted(e["dns_names"]),
                         ["web.example.org", "www.example.org"])
        # A duplicate (same SPIFFE ID, parent and selectors) is refused.
        p = self.srv.cli("entry", "create", "-spiffeID",
                         "spiffe://%s/web" % TD, "-parentID", parent,
                         "-selector", "unix:gid:50", "-selector",
                         "unix:uid:1000", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("similar entry already exists", p.stdout + p.stderr)
        # Update bumps the revision.
        self.srv.cli("entry", "update", "-entryID", eid, "-spiffeID",
                     "spiffe://%s/web2" % TD, "-parentID", parent,
                     "-selector", "unix:uid:1001")
        [e] = self.srv.cli_json("entry", "show", "-entryID", eid)["entries"]
        self.assertEqual(e["spiffe_id"], "spiffe://%s/web2" % TD)
        self.assertEqual(e["revision_number"], 1)
        count = self.srv.cli("entry", "count", "-parentID", parent).stdout
        self.assertRegex(count, r"\b1\b")
        p = self.srv.cli("entry", "delete", "-entryID", eid)
        self.assertIn("Deleted entry with ID: " + eid, p.stdout)
        p = self.srv.cli("entry", "show", "-entryID", eid, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not found", p.stderr + p.stdout)

    def test_entry_bad_input(self):
        parent = "spiffe://%s/node/bad" % TD
        cases = [
            (["-spiffeID", "spiffe://other.org/x", "-parentID", parent,
              "-selector", "unix:uid:1"], "trust domain"),
            (["-spiffeID", "spiffe://%s/spire/x" % TD, "-parentID", parent,
              "-selector", "unix:uid:1"], "reserved"),
            (["-spiffeID", "spiffe://%s/a//b" % TD, "-parentID", parent,
              "-selector", "unix:uid:1"], "empty"),
            (["-spiffeID", "spiffe://%s/ok" % TD, "-parentID", parent,
              "-selector", "unix:uid:1", "-dns", "bad..name"], "DNS"),
            (["-spiffeID", "spiffe://%s/ok" % TD, "-parentID", parent,
              "-selector", "unix:uid:1", "-federatesWith",
              "spiffe://nobundle.org"], "bundle"),
            (["-spiffeID", "spiffe://%s/ok" % TD, "-parentID", parent,
              "-selector", "nocolon"], "selector"),
        ]
        for args, needle in cases:
            p = self.srv.cli(*(["entry", "create"] + args), check=False)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(needle.lower(), (p.stdout + p.stderr).lower(),
                          args)
        self.assertIsNone(H.sanitizer_report(self.srv.output()))

    def test_entry_data_file_and_filters(self):
        parent = "spiffe://%s/node/data" % TD
        entries = [{"spiffe_id": "spiffe://%s/batch/%d" % (TD, i),
                    "parent_id": parent,
                    "selectors": [{"type": "unix", "value": "uid:%d" % i},
                                  {"type": "unix", "value": "gid:7"}]}
                   for i in range(30)]
        path = os.path.join(self.srv.tmp, "entries.json")
        with open(path, "w") as f:
            json.dump({"entries": entries}, f)
        self.srv.cli("entry", "create", "-data", path)
        js = self.srv.cli_json("entry", "show", "-parentID", parent)
        self.assertEqual(len(js["entries"]), 30)
        js = self.srv.cli_json("entry", "show", "-parentID", parent,
                               "-selector", "unix:uid:3",
                               "-matchSelectorsOn", "superset")
        self.assertEqual([e["spiffe_id"] for e in js["entries"]],
                         ["spiffe://%s/batch/3" % TD])
        js = self.srv.cli_json("entry", "show", "-parentID", parent,
                               "-selector", "unix:uid:3", "-selector",
                               "unix:gid:7", "-matchSelectorsOn", "exact")
        self.assertEqual(len(js["entries"]), 1)
        js = self.srv.cli_json("entry", "show", "-parentID", parent,
                               "-selector", "unix:gid:7",
                               "-matchSelectorsOn", "any")
        self.assertEqual(len(js["entries"]), 30)

    def test_bundle_show_formats(self):
        pem = self.srv.cli("bundle", "show").stdout
        certs = load_pems(pem.encode())
        self.assertGreaterEqual(len(certs), 1)
        ca = certs[0]
        self.assertEqual(uris(ca), ["spiffe://%s" % TD])
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertTrue(bc.value.ca and bc.critical)
        ku = ca.extensions.get_extension_for_class(x509.KeyUsage)
        self.assertTrue(ku.critical and ku.value.key_cert_sign)
        names = {a.oid._name: a.value for a in ca.subject}
        self.assertEqual(names.get("organizationName"), "Wick Test")
        self.assertEqual(names.get("commonName"), "wick-test-ca")
        doc = self.srv.bundle_spiffe()
        self.assertGreaterEqual(doc["spiffe_sequence"], 1)
        uses = sorted({k["use"] for k in doc["keys"]})
        self.assertEqual(uses, ["jwt-svid", "wit-svid", "x509-svid"])
        for k in doc["keys"]:
            if k["use"] == "x509-svid":
                self.assertNotIn("kid", k)
                self.assertEqual(len(k["x5c"]), 1)
            else:
                self.assertEqual(len(k["kid"]), 32)

    def test_federated_bundles(self):
        # A foreign trust domain's CA, made with cryptography.
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME,
                                             "fed")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(key.public_key())
                .serial_number(7).not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                               critical=True)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier("spiffe://fed.org")]),
                    critical=False)
                .sign(key, hashes.SHA256()))
        path = os.path.join(self.srv.tmp, "fed.pem")
        with open(path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self.srv.cli("bundle", "set", "-id", "spiffe://fed.org", "-path",
                     path)
        listed = self.srv.cli("bundle", "list").stdout
        self.assertIn("spiffe://fed.org", listed)
        p = self.srv.cli("bundle", "set", "-id", "spiffe://%s" % TD, "-path",
                         path, check=False)
        self.assertNotEqual(p.returncode, 0)
        # An entry federating with it, and the agent receives the bundle.
        agent, tok, _ = self.attested()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        self.srv.create_entry("spiffe://%s/fedwork" % TD, aid,
                              ["unix:uid:4242"], "-federatesWith",
                              "spiffe://fed.org")
        _, out = agent.run("sync")
        self.assertIn("spiffe://fed.org", out["federated"])
        # Deleting a bundle entries still use is refused.
        p = self.srv.cli("bundle", "delete", "-id", "spiffe://fed.org",
                         check=False)
        self.assertNotEqual(p.returncode, 0)

    # ---- agent API ---------------------------------------------------------

    def test_attest_and_agent_svid(self):
        agent, tok, out = self.attested()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        self.assertEqual(out["svid"]["spiffe_id"], aid)
        self.assertFalse(out["reattestable"])
        chain = load_chain(agent.path("agent.pem"))
        self.assertEqual(uris(chain[0]), [aid])
        v = openssl_verify(agent.path("bundle.pem"), agent.path("agent.pem"))
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # The token is single use.
        agent2 = H.Agent(self.srv)
        rc, out = agent2.run("attest", "-t", tok, bundle=self.bundle,
                             check=False)
        self.assertEqual(rc, 2)
        self.assertEqual(out["code"], 3)
        self.assertIn("does not exist or has already been used",
                      out["message"])
        # The agent is listed.
        shown = self.srv.cli("agent", "show", "-spiffeID", aid).stdout
        self.assertIn(aid, shown)
        self.assertIn("join_token", shown)

    def test_sync_unchanged(self):
        """An agent that says it understands it is told "unchanged", with
        no entry and no ID, when nothing changed since its revision; any
        change (here a new entry elsewhere) brings the full answer."""
        agent, tok, _ = self.attested()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        for i in range(3):
            self.srv.create_entry("spiffe://%s/idle%d" % (TD, i), aid,
                                  ["unix:uid:%d" % (5000 + i)])
        _, full = agent.run("sync")
        self.assertEqual(len(full["entries"]), 3)
        rev = str(full["revision"])
        _, same = agent.run("sync", "-r", rev, "-u", "-q",
                            str(full["bundle_sequence"]))
        self.assertTrue(same["unchanged"])
        self.assertEqual((same["entries"], same["unchanged_ids"]), ([], []))
        self.assertEqual(same["revision"], full["revision"])
        # Without -u the same request lists every ID, as before.
        _, old = agent.run("sync", "-r", rev)
        self.assertFalse(old["unchanged"])
        self.assertEqual(len(old["unchanged_ids"]), 3)
        # A change anywhere: the full answer again.
        self.srv.create_entry("spiffe://%s/elsewhere" % TD,
                              "spiffe://%s/spire/agent/x" % TD,
                              ["unix:uid:6000"])
        _, moved = agent.run("sync", "-r", rev, "-u")
        self.assertFalse(moved["unchanged"])
        self.assertEqual(len(moved["unchanged_ids"]), 3)
        self.assertGreater(moved["revision"], full["revision"])

    def test_attest_failures(self):
        agent = H.Agent(self.srv)
        rc, out = agent.run("attest", "-t", "no-such-token",
                            bundle=self.bundle, check=False)
        self.assertEqual((rc, out["code"]), (2, 3))
        tok = self.srv.token(ttl=1)
        time.sleep(2.2)
        rc, out = agent.run("attest", "-t", tok, bundle=self.bundle,
                            check=False)
        self.assertEqual((rc, out["code"]), (2, 3))
        self.assertIn("join token expired", out["message"])
        rc, out = agent.run("attest", "-t", "x", "-y", "tpm",
                            bundle=self.bundle, check=False)
        self.assertEqual((rc, out["code"]), (2, 3))
        self.assertIn("unsupported attestation type", out["message"])
        # Without an agent SVID no other call works.
        rc, out = agent.run("sync", bundle=self.bundle, check=False)
        self.assertNotEqual(rc, 0)

    def test_x509_svids(self):
        agent, tok, _ = self.attested()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        e1 = self.srv.create_entry("spiffe://%s/svc/one" % TD, aid,
                                   ["unix:uid:1001"], "-dns",
                                   "one.example.org", "-dns", "alt.example.org",
                                   "-x509SVIDTTL", "120")
        e2 = self.srv.create_entry("spiffe://%s/svc/two" % TD, aid,
                                   ["unix:uid:1002"])
        other = self.srv.create_entry("spiffe://%s/svc/other" % TD,
                                      "spiffe://%s/elsewhere" % TD,
                                      ["unix:uid:1003"])
        _, out = agent.run("x509", e1, e2, other)
        res = {r["entry_id"]: r for r in out["results"]}
        self.assertEqual(res[e1]["code"], 0)
        self.assertEqual(res[e2]["code"], 0)
        self.assertEqual(res[other]["code"], 5)  # NOT_FOUND: not authorized
        one = load_chain(agent.path("svid.0.pem"))[0]
        two = load_chain(agent.path("svid.1.pem"))[0]
        self.assertEqual(uris(one), ["spiffe://%s/svc/one" % TD])
        san = one.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        self.assertEqual(sorted(san.get_values_for_type(x509.DNSName)),
                         ["alt.example.org", "one.example.org"])
        cn = one.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
        self.assertEqual(cn[0].value, "one.example.org")
        bc = one.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertFalse(bc.value.ca)
        ku = one.extensions.get_extension_for_class(x509.KeyUsage)
        self.assertTrue(ku.critical)
        self.assertTrue(ku.value.digital_signature)
        self.assertFalse(ku.value.key_cert_sign)
        eku = one.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, eku.value)
        self.assertIn(ExtendedKeyUsageOID.CLIENT_AUTH, eku.value)
        life = one.not_valid_after - one.not_valid_before
        self.assertEqual(life.total_seconds(), 130)  # TTL + 10 s backdate
        life = two.not_valid_after - two.not_valid_before
        self.assertEqual(life.total_seconds(), 3610)  # server default 1h
        self.assertLessEqual(len(str(one.serial_number)), 39)
        # The private key written beside it matches the certificate.
        with open(agent.path("svid.0.key"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        self.assertEqual(
            key.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo),
            one.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo))
        for i in (0, 1):
            v = openssl_verify(self.bundle, agent.path("svid.%d.pem" % i))
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # Issuance is audited, with the serial.
        con = sqlite3.connect(self.srv.db)
        try:
            rows = con.execute("SELECT actor, detail FROM audit WHERE "
                               "kind = 'svid.x509'").fetchall()
        finally:
            con.close()
        self.assertTrue(any(aid == a and "%x" % one.serial_number in d
                            for a, d in rows), rows)

    def test_x509_bad_csr(self):
        agent, tok, _ = self.attested()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        eid = self.srv.create_entry("spiffe://%s/svc/csr" % TD, aid,
                                    ["unix:uid:1010"])
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(
                   x509.oid.NameOID.COMMON_NAME, "evil")]))
               .add_extension(x509.SubjectAlternativeName(
                   [x509.UniformResourceIdentifier(
                       "spiffe://%s/admin" % TD)]), critical=False)
               .sign(key, hashes.SHA256()))
        der = csr.public_bytes(serialization.Encoding.DER)
        good = os.path.join(agent.dir, "good.der")
        with open(good, "wb") as f:
            f.write(der)
        # Names in the CSR are ignored: the entry decides.
        _, out = agent.run("x509-csr", eid, good)
        [r] = out["results"]
        self.assertEqual(r["code"], 0)
        self.assertEqual(r["svid"]["spiffe_id"], "spiffe://%s/svc/csr" % TD)
        for name, data in (("trunc", der[:-20]), ("garbage", b"\x30\x03abc"),
                           ("tampered", der[:-5] + bytes([der[-5] ^ 1]) +
                            der[-4:])):
            path = os.path.join(agent.dir, name + ".der")
            with open(path, "wb") as f:
                f.write(data)
            _, out = agent.run("x509-csr", eid, path)
            [r] = out["results"]
            self.assertEqual(r["code"], 3, name)
            self.assertIn("CSR", r["message"], name)
        self.assertIsNone(H.sanitizer_report(self.srv.output()))

    def test_malformed_agent_requests(self):
        """Garbage from an agent, attested or not: INVALID_ARGUMENT (or
        PERMISSION_DENIED before authorisation), and the server lives."""
        agent, tok, _ = self.attested()
        # Truncated varints and lengths past the end (an unknown but
        # well-formed field would be skipped, as protobuf requires).
        junk = ["ffffff", "0affffffff0f", "1205" + "61" * 2,
                "0a" + "80" * 12, "2a0b" + "00" * 3]
        for method in ("RenewAgent", "SyncAuthorized", "BatchNewX509SVID",
                       "NewJWTSVID", "NewWITSVID", "AttestAgent"):
            for hexbytes in junk:
                rc, out = agent.run("raw", "/wick.agent.Node/" + method,
                                    hexbytes, check=False)
                self.assertEqual(rc, 2, (method, hexbytes, out))
                self.assertEqual(out["code"], 3, (method, hexbytes, out))
        # A valid but empty AttestAgent (no attestation data).
        rc, out = H.Agent(self.srv).run("raw", "/wick.agent.Node/AttestAgent",
                                        "", bundle=self.bundle, check=False)
        self.assertEqual((rc, out["code"]), (2, 3))
        # Without an SVID, the authorised calls are refused before parsing.
        rc, out = H.Agent(self.srv).run("raw",
                                        "/wick.agent.Node/SyncAuthorized",
                                        "ffff", bundle=self.bundle,
                                        check=False)
        self.assertEqual((rc, out["code"]), (2, 7))
        # Too many CSRs in one batch.
        one = "0a06" + "0a0178" + "1201" + "00"     # params{entry_id, csr}
        rc, out = agent.run("raw", "/wick.agent.Node/BatchNewX509SVID",
                            one * 501, check=False)
        self.assertEqual((rc, out["code"]), (2, 3))
        self.assertIn("limit", out["message"])
        self.srv.cli("healthcheck")
        self.assertIsNone(H.sanitizer_report(self.srv.output()))

    def test_jwt_svid(self):
        agent, tok, _ = self.attested()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        eid = self.srv.create_entry("spiffe://%s/svc/jwt" % TD, aid,
                                    ["unix:uid:1020"], "-jwtSVIDTTL", "90")
        _, out = agent.run("jwt", eid, "aud-a", "aud-b")
        token = out["token"]
        hdr = jwt.get_unverified_header(token)
        self.assertEqual(hdr["typ"], "JWT")
        self.assertEqual(hdr["alg"], "ES256")
        keys = jwks_of(self.srv.bundle_spiffe(), "jwt-svid")
        self.assertIn(hdr["kid"], keys)
        pub = jwt.PyJWK(keys[hdr["kid"]], algorithm="ES256").key
        claims = jwt.decode(token, pub, algorithms=["ES256"],
                            audience="aud-b",
                            issuer="https://issuer.example.org")
        self.assertEqual(claims["sub"], "spiffe://%s/svc/jwt" % TD)
        self.assertEqual(claims["aud"], ["aud-a", "aud-b"])
        self.assertEqual(claims["exp"] - claims["iat"], 90)
        with self.assertRaises(jwt.InvalidAudienceError):
            jwt.decode(token, pub, algorithms=["ES256"], audience="other")
        rc, out = agent.run("jwt", eid, check=False)
        self.assertEqual((rc, out["code"]), (2, 3))

    def test_wit_svid(self):
        agent, tok, _ = self.attested()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        eid = self.srv.create_entry("spiffe://%s/svc/wit" % TD, aid,
                                    ["unix:uid:1030"])
        _, out = agent.run("wit", eid)
        token = out["token"]
        hdr = jwt.get_unverified_header(token)
        self.assertEqual(hdr["typ"], "wit+jwt")
        self.assertEqual(len(hdr["kid"]), 32)
        keys = jwks_of(self.srv.bundle_spiffe(), "wit-svid")
        self.assertIn(hdr["kid"], keys)
        self.assertNotIn(hdr["kid"],
                         jwks_of(self.srv.bundle_spiffe(), "jwt-svid"))
        pub = jwt.PyJWK(keys[hdr["kid"]], algorithm=hdr["alg"]).key
        claims = jwt.decode(token, pub, algorithms=[hdr["alg"]],
                            options={"verify_aud": False})
        self.assertEqual(claims["sub"], "spiffe://%s/svc/wit" % TD)
        self.assertNotIn("aud", claims)
        self.assertEqual(claims["cnf"]["jwk"], out["public_jwk"])
        self.assertEqual(claims["cnf"]["jwk"]["alg"], "ES256")
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        # Bad workload keys are refused with a reason.
        for jwk_text, needle in (
                ('{"kty":"EC","crv":"P-256"}', "x or y"),
                (json.dumps(dict(out["public_jwk"], alg="RS256")), "alg"),
                (json.dumps(out["private_jwk"]), "private"),
                ("not json", "JSON")):
            rc, res = agent.run("wit", eid, jwk_text, check=False)
            self.assertEqual((rc, res["code"]), (2, 3), jwk_text)
            self.assertIn(needle, res["message"], jwk_text)

    def test_sync_authorized(self):
        agent, tok, _ = self.attested()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        direct = self.srv.create_entry("spiffe://%s/sync/direct" % TD, aid,
                                       ["unix:uid:1"])
        child = self.srv.create_entry("spiffe://%s/sync/child" % TD,
                                      "spiffe://%s/sync/direct" % TD,
                                      ["unix:uid:2"])
        self.srv.create_entry("spiffe://%s/sync/unrelated" % TD,
                              "spiffe://%s/someone-else" % TD,
                              ["unix:uid:3"])
        _, full = agent.run("sync")
        ids = {e["id"] for e in full["entries"]}
        self.assertEqual(ids, {direct, child})
        self.assertEqual(full["unchanged_ids"], [])
        self.assertGreaterEqual(full["bundle_sequence"], 1)
        # Incremental: nothing changed -> IDs only, no bundle.
        _, inc = agent.run("sync", "-r", str(full["revision"]), "-q",
                           str(full["bundle_sequence"]))
        self.assertEqual(inc["entries"], [])
        self.assertEqual(set(inc["unchanged_ids"]), {direct, child})
        self.assertEqual(inc["bundle_sequence"], -1)
        # A change comes back in full; a deletion drops the ID.
        self.srv.cli("entry", "update", "-entryID", child, "-spiffeID",
                     "spiffe://%s/sync/child" % TD, "-parentID",
                     "spiffe://%s/sync/direct" % TD, "-selector",
                     "unix:uid:22")
        self.srv.cli("entry", "delete", "-entryID", direct)
        _, inc2 = agent.run("sync", "-r", str(full["revision"]))
        self.assertEqual([e["id"] for e in inc2["entries"]], [])
        self.assertEqual(inc2["unchanged_ids"], [])  # child orphaned too
        # Paging: 25 entries in pages of 10.
        for i in range(25):
            self.srv.create_entry("spiffe://%s/page/%d" % (TD, i), aid,
                                  ["unix:uid:%d" % (5000 + i)])
        _, paged = agent.run("sync", "-p", "10")
        self.assertEqual(paged["pages"], 3)
        self.assertEqual(len({e["id"] for e in paged["entries"]}), 25)

    def test_token_alias_entry(self):
        tok = self.srv.token(spiffe_id="spiffe://%s/node/alias1" % TD)
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        agent = H.Agent(self.srv)
        agent.attest(tok, self.bundle)
        wl = self.srv.create_entry("spiffe://%s/aliased" % TD,
                                   "spiffe://%s/node/alias1" % TD,
                                   ["unix:uid:77"])
        _, out = agent.run("sync")
        ids = {e["id"] for e in out["entries"]}
        self.assertIn(wl, ids)
        # Evicting the agent removes the alias entry made with its token.
        self.srv.cli("agent", "evict", "-spiffeID", aid)
        js = self.srv.cli_json("entry", "show", "-parentID", aid)
        self.assertEqual(js.get("entries") or [], [])

    def test_renew_ban_evict(self):
        agent, tok, first = self.attested()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        old_pem = open(agent.path("agent.pem")).read()
        old_key = open(agent.path("agent.key")).read()
        _, renewed = agent.run("renew")
        self.assertNotEqual(renewed["svid"]["serial"], first["svid"]["serial"])
        # The new SVID works, and from then on the old one does not.
        agent.run("sync")
        with open(agent.path("agent.pem"), "w") as f:
            f.write(old_pem)
        with open(agent.path("agent.key"), "w") as f:
            f.write(old_key)
        rc, out = agent.run("sync", check=False)
        self.assertEqual((rc, out["code"]), (2, 7))
        self.assertIn("AGENT_NOT_ACTIVE", out["message"])
        # Back to the current one; ban; evict.
        agent2 = H.Agent(self.srv)
        tok2 = self.srv.token()
        agent2.attest(tok2, self.bundle)
        aid2 = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok2)
        p = self.srv.cli("agent", "ban", "-spiffeID", aid2)
        self.assertIn("Agent banned successfully", p.stdout)
        rc, out = agent2.run("sync", check=False)
        self.assertEqual((rc, out["code"]), (2, 7))
        self.assertIn("AGENT_BANNED", out["message"])
        p = self.srv.cli("agent", "evict", "-spiffeID", aid2)
        self.assertIn("Agent evicted successfully", p.stdout)
        rc, out = agent2.run("sync", check=False)
        self.assertEqual((rc, out["code"]), (2, 7))
        self.assertIn("AGENT_NOT_ATTESTED", out["message"])
        listed = self.srv.cli("agent", "list").stdout
        self.assertNotIn(aid2, listed)
        self.assertIn(aid, listed)

    def test_audit_trail(self):
        tok = self.srv.token()
        unused = self.srv.token()
        H.Agent(self.srv).run("attest", "-t", "wrong", bundle=self.bundle,
                              check=False)
        H.Agent(self.srv).attest(tok, self.bundle)
        con = sqlite3.connect(self.srv.db)
        try:
            rows = con.execute("SELECT kind, ok, detail FROM audit").fetchall()
        finally:
            con.close()
        kinds = {(k, ok) for k, ok, _ in rows}
        self.assertIn(("join_token.create", 1), kinds)
        self.assertIn(("agent.attest", 1), kinds)
        self.assertIn(("agent.attest", 0), kinds)
        # A live token is never recorded (a used one is part of the
        # agent's SPIFFE ID, as in SPIRE, and worthless).
        for k, _, d in rows:
            self.assertNotIn(unused, d)
            if k == "join_token.create":
                self.assertNotIn(tok, d)
        self.assertNotIn(unused, self.srv.output())
        self.assertIn("audit: agent.attest", self.srv.output())


class IdleSyncTest(unittest.TestCase):
    """Idle syncs the server answers on its event loop, without the state
    thread (agent_api_on_loop()): only on a connection whose agent the
    state thread found good at the current revision.  What changes after
    such an answer (an entry, a ban, an eviction), made through the admin
    API at once, reaches the agent's next sync on that same connection."""

    def setUp(self):
        self.mport = H.free_port()
        self.srv = H.Server()
        with open(self.srv.conf, "a") as f:
            f.write('telemetry {\n    Prometheus {\n        host = '
                    '"127.0.0.1"\n        port = %d\n    }\n}\n' %
                    self.mport)
        self.srv.start()
        self.bundle = self.srv.bundle_pem(os.path.join(self.srv.tmp,
                                                       "bundle.pem"))
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.stdin.close()
            p.wait(timeout=30)
            rep = H.sanitizer_report(p.stderr.read())
            p.stderr.close()
            p.stdout.close()
            self.assertIsNone(rep, rep)
        H.stop_cleanly(self.srv)

    def on_loop(self):
        """Syncs answered on the loop so far (the server's metric)."""
        c = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=10)
        try:
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
        finally:
            c.close()
        m = re.search(r"^wick_server_agent_syncs_on_loop_total (\S+)$", text,
                      re.M)
        self.assertIsNotNone(m, text)
        return float(m.group(1))

    def admin(self, path, req, resp):
        with grpc.insecure_channel("unix:" + self.srv.sock) as ch:
            return ch.unary_unary(
                path, request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=resp.FromString)(req, timeout=20)

    def connection(self, agent):
        """Syncs on one connection: ask(rev, seq) -> the answer."""
        p = subprocess.Popen([H.TESTAGENT, "-s", self.srv.addr, "-T", TD,
                              "-d", agent.dir, "syncs"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)

        def ask(rev, seq):
            p.stdin.write("%d %d\n" % (rev, seq))
            p.stdin.flush()
            line = p.stdout.readline()
            self.assertTrue(line, "wick-testagent syncs ended")
            return json.loads(line)
        return ask

    def agent_with_entry(self):
        tok = self.srv.token()
        agent = H.Agent(self.srv)
        agent.attest(tok, self.bundle)
        aid = H.agent_spiffe_id(tok)
        self.srv.create_entry("spiffe://%s/idle/%s" % (TD, tok), aid,
                              ["unix:uid:7000"])
        _, full = agent.run("sync")
        self.assertEqual(len(full["entries"]), 1)
        return agent, aid, full["revision"], full["bundle_sequence"]

    def until_on_loop(self, ask, rev, seq):
        """Idle syncs until one is answered on the loop (the first on a
        connection never is: the state thread has not seen it yet)."""
        before = self.on_loop()
        for _ in range(50):
            a = ask(rev, seq)
            self.assertEqual((a["unchanged"], a["revision"], a["entries"]),
                             (True, rev, []), a)
            if self.on_loop() > before:
                return
        self.fail("no sync was answered on the loop")

    def test_change_and_ban_after_loop_answers(self):
        stubs = H.grpc_stubs("types.proto", "admin.proto")
        import admin_pb2 as A
        import types_pb2 as T
        self.assertTrue(stubs)
        agent, aid, rev, seq = self.agent_with_entry()
        ask = self.connection(agent)
        self.until_on_loop(ask, rev, seq)
        # A new entry for this agent, and at once the same question on
        # the same connection: the answer brings it.
        res = self.admin("/wick.admin.Entries/BatchCreateEntry",
                         A.BatchCreateEntryRequest(entries=[T.Entry(
                             spiffe_id="spiffe://%s/idle/new" % TD,
                             parent_id=aid,
                             selectors=[T.Selector(type="unix",
                                                   value="uid:7001")])]),
                         A.BatchCreateEntryResponse)
        new_id = res.results[0].entry.id
        self.assertTrue(new_id)
        a = ask(rev, seq)
        self.assertFalse(a["unchanged"], a)
        self.assertIn(new_id, a["entries"])
        self.assertGreater(a["revision"], rev)
        rev = a["revision"]
        # Idle again, and answered on the loop again.
        self.until_on_loop(ask, rev, seq)
        # Banned: the very next sync on the connection is refused.
        self.admin("/wick.admin.Agents/BanAgent",
                   A.GetAgentRequest(spiffe_id=aid), A.Empty)
        a = ask(rev, seq)
        self.assertEqual(a.get("code"), 7, a)
        self.assertIn("AGENT_BANNED", a["message"])
        # And stays refused.
        self.assertEqual(ask(rev, seq).get("code"), 7)

    def test_evicted_after_loop_answers(self):
        stubs = H.grpc_stubs("types.proto", "admin.proto")
        import admin_pb2 as A
        self.assertTrue(stubs)
        agent, aid, rev, seq = self.agent_with_entry()
        ask = self.connection(agent)
        self.until_on_loop(ask, rev, seq)
        # Another agent's sync between (the state thread answers it and
        # publishes again) changes nothing for this one.
        other, _, rev2, seq2 = self.agent_with_entry()
        _, same = other.run("sync", "-r", str(rev2), "-u", "-q", str(seq2))
        self.assertTrue(same["unchanged"])
        a = ask(rev2, seq2)
        self.assertTrue(a["unchanged"], a)
        self.admin("/wick.admin.Agents/EvictAgent",
                   A.GetAgentRequest(spiffe_id=aid), A.Empty)
        a = ask(rev2, seq2)
        self.assertEqual(a.get("code"), 7, a)
        self.assertIn("AGENT_NOT_ATTESTED", a["message"])


class RestartTest(unittest.TestCase):

    def test_restart_keeps_ca_entries_and_agents(self):
        srv = H.Server().start()
        try:
            bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
            before = srv.bundle_spiffe()
            tok = srv.token()
            agent = H.Agent(srv)
            agent.attest(tok, bundle)
            aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
            eid = srv.create_entry("spiffe://%s/persist" % TD, aid,
                                   ["unix:uid:9"])
            self.assertEqual(srv.stop(), 0)
            srv.start()
            after = srv.bundle_spiffe()
            self.assertEqual(before["keys"], after["keys"])
            _, out = agent.run("x509", eid)
            self.assertEqual(out["results"][0]["code"], 0)
        finally:
            rc = srv.stop()
        self.assertEqual(rc, 0)
        self.assertIsNone(H.sanitizer_report(srv.all_output()))


class CrashTest(unittest.TestCase):

    def test_kill9_during_entry_creation(self):
        """kill -9 during 1,000 creations: no entry the CLI reported is lost."""
        srv = H.Server().start()
        reported = set()
        try:
            parent = "spiffe://%s/node/crash" % TD
            batches = []
            for b in range(50):
                entries = [{"spiffe_id": "spiffe://%s/crash/%d" % (TD, b * 20 + i),
                            "parent_id": parent,
                            "selectors": [{"type": "unix",
                                           "value": "uid:%d" % (b * 20 + i)}]}
                           for i in range(20)]
                path = os.path.join(srv.tmp, "crash-%d.json" % b)
                with open(path, "w") as f:
                    json.dump({"entries": entries}, f)
                batches.append(path)
            procs = []
            for path in batches:
                procs.append(subprocess.Popen(
                    [H.SERVER, "entry", "create", "-socketPath", srv.sock,
                     "-data", path, "-output", "json"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True))
            # Kill the server as soon as one CLI has its answer, while
            # the others are still in flight (however slow the machine).
            deadline = time.monotonic() + 60
            while not any(p.poll() == 0 for p in procs) and \
                    time.monotonic() < deadline:
                time.sleep(0.005)
            srv.kill9()
            for p in procs:
                out, _ = p.communicate(timeout=60)
                if p.returncode != 0 or not out.strip():
                    continue
                for r in json.loads(out).get("results", []):
                    if r.get("status", {}).get("code", 0) == 0:
                        reported.add(r["entry"]["id"])
            self.assertGreater(len(reported), 0)
            con = sqlite3.connect(srv.db)
            try:
                self.assertEqual(con.execute(
                    "PRAGMA integrity_check").fetchone()[0], "ok")
                self.assertEqual(con.execute(
                    "PRAGMA foreign_key_check").fetchall(), [])
            finally:
                con.close()
            srv.start()
            js = srv.cli_json("entry", "show", "-parentID", parent)
            have = {e["id"] for e in js.get("entries") or []}
            self.assertEqual(reported - have, set())
            # Every entry that exists is whole: one selector each.
            for e in js.get("entries") or []:
                self.assertEqual(len(e["selectors"]), 1)
        finally:
            if srv.proc is not None:
                srv.stop()


class ConfigTest(unittest.TestCase):

    def validate(self, text):
        d = tempfile.mkdtemp(prefix="wick-conf-")
        path = os.path.join(d, "server.conf")
        with open(path, "w") as f:
            f.write(text)
        return subprocess.run([H.SERVER, "validate", "-config", path],
                              capture_output=True, text=True)

    SPIRE_CONF = """
server {
    bind_address = "0.0.0.0"
    bind_port = "8081"
    socket_path = "/tmp/spire-server/private/api.sock"
    trust_domain = "example.org"
    data_dir = "/opt/spire/data/server"
    log_level = "DEBUG"
    log_format = "json"
    ca_key_type = "ec-p384"
    ca_ttl = "168h"
    default_x509_svid_ttl = "2h"
    default_jwt_svid_ttl = "10m"
    jwt_issuer = "https://oidc.example.org"
    ca_subject {
        country = ["DE"]
        organization = ["Example"]
        common_name = ""
    }
    audit_log_enabled = true
    federation {
        bundle_endpoint { address = "0.0.0.0" port = 8443 }
    }
}
plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "/opt/spire/data/server/datastore.sqlite3"
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
    KeyManager "disk" {
        plugin_data {
            keys_path = "/opt/spire/data/server/keys.json"
        }
    }
}
health_checks {
    listener_enabled = true
    bind_address = "0.0.0.0"
    bind_port = "8080"
}
"""

    def test_spire_config_validates_with_warnings(self):
        p = self.validate(self.SPIRE_CONF)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("valid", p.stdout)
        self.assertIn("federation", p.stderr)
        # health_checks is implemented: taken without a warning.
        self.assertNotIn("health_checks", p.stderr)

    def test_unknown_option_named_with_line(self):
        p = self.validate(self.SPIRE_CONF.replace(
            'log_format = "json"', 'log_format = "json"\n    colour = "blue"'))
        self.assertEqual(p.returncode, 1)
        self.assertIn('"colour"', p.stderr)
        self.assertRegex(p.stderr, r"line 10\b")

    def test_unsupported_plugin_and_bad_values(self):
        for old, new, needle in (
                ('NodeAttestor "join_token"', 'NodeAttestor "aws_iid"',
                 "aws_iid"),
                ('ca_key_type = "ec-p384"', 'ca_key_type = "dsa"',
                 "ca_key_type"),
                ('ca_ttl = "168h"', 'ca_ttl = "forever"', "ca_ttl"),
                ('trust_domain = "example.org"',
                 'trust_domain = "Bad Domain"', "trust_domain"),
                ('database_type = "sqlite3"', 'database_type = "oracle"',
                 "database_type")):
            p = self.validate(self.SPIRE_CONF.replace(old, new))
            self.assertEqual(p.returncode, 1, new)
            self.assertIn(needle, p.stderr, new)


if __name__ == "__main__":
    unittest.main(verbosity=2)
