"""libwick end to end: a real wick-server and wick-agent, the library
called through Python ctypes (fetch, verify, validate, watch with a
rotation seen), `wick-agent api wpt sign|verify`, the SSL_CTX setup in
wick-tls-peer against openssl s_server and s_client (with rotation), and
the examples/wpt_http client and server authenticating each other.
"""
import calendar
import ctypes
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import libwick_ctypes as C  # noqa: E402
import server_harness as H  # noqa: E402

L = C.load()
TD = H.TD
MAIN = "spiffe://%s/workload/main" % TD
SHORT = "spiffe://%s/workload/short" % TD
HDR = (("workload.spiffe.io", "true"),)
STUBS = H.grpc_stubs("workload.proto")
import workload_pb2 as W  # noqa: E402
import workload_pb2_grpc as WG  # noqa: E402

TLS_PEER = os.environ.get("WICK_TLS_PEER")
WPT_SERVER = os.environ.get("WICK_WPT_SERVER")
WPT_CLIENT = os.environ.get("WICK_WPT_CLIENT")


def pem_certs(data):
    """Every certificate of a PEM text, in order."""
    if isinstance(data, str):
        data = data.encode()
    end = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(p + end)
            for p in data.split(end) if b"-----BEGIN" in p]


def not_after(cert):
    return calendar.timegm(cert.not_valid_after.utctimetuple())


def reap(proc):
    """End a process we started (by its pid) and close its pipe."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def uri_of(cert):
    san = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)[0]


class LibwickAgent(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        for v in (TLS_PEER, WPT_SERVER, WPT_CLIENT):
            if not v:
                raise SystemExit("set WICK_TLS_PEER, WICK_WPT_SERVER and "
                                 "WICK_WPT_CLIENT")
        cls.srv = H.Server(port=H.free_port()).start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))
        tok = cls.srv.token()
        cls.agent_id = H.agent_spiffe_id(tok)
        uid = os.getuid()
        cls.srv.create_entry(MAIN, cls.agent_id, ["unix:uid:%d" % uid],
                             "-hint", "main")
        cls.srv.create_entry(SHORT, cls.agent_id, ["unix:uid:%d" % uid],
                             "-hint", "short", "-x509SVIDTTL", "20")
        cls.agent = H.AgentDaemon(cls.srv, cls.bundle).start(token=tok)
        cls.addr = "unix://" + cls.agent.sock
        cls.env = dict(os.environ, SPIFFE_ENDPOINT_SOCKET=cls.addr)
        cls.client = C.out_ptr()
        assert L.wick_client_new(cls.addr.encode(), 10000,
                                 ctypes.byref(cls.client)) == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ctx = C.out_ptr()
            if L.wick_fetch_x509_context(cls.client,
                                         ctypes.byref(ctx)) == 0:
                ids = {L.wick_x509_svid_id(L.wick_x509_context_svid(ctx, i))
                       for i in range(L.wick_x509_context_count(ctx))}
                L.wick_x509_context_free(ctx)
                if {MAIN.encode(), SHORT.encode()} <= ids:
                    break
            time.sleep(0.3)
        else:
            raise AssertionError("no SVIDs from the agent")

    @classmethod
    def tearDownClass(cls):
        L.wick_client_free(cls.client)
        H.stop_cleanly(cls.agent, cls.srv)

    def stub(self):
        ch = grpc.insecure_channel(self.addr)
        self.addCleanup(ch.close)
        return WG.SpiffeWorkloadAPIStub(ch)

    def context(self):
        ctx = C.out_ptr()
        r = L.wick_fetch_x509_context(self.client, ctypes.byref(ctx))
        self.assertEqual(r, 0, L.wick_strerror(r))
        self.addCleanup(L.wick_x509_context_free, ctx)
        return ctx

    # ---- X.509 -------------------------------------------------------------

    def test_x509_context(self):
        ctx = self.context()
        svid = L.wick_x509_context_find(ctx, b"main")
        self.assertTrue(svid)
        self.assertEqual(L.wick_x509_svid_id(svid).decode(), MAIN)
        out = C.out_ptr()
        self.assertEqual(L.wick_x509_svid_chain_pem(svid,
                                                    ctypes.byref(out)), 0)
        chain = pem_certs(C.take_string(L, out))
        self.assertEqual(uri_of(chain[0]), MAIN)
        self.assertEqual(L.wick_x509_svid_key_pem(svid, ctypes.byref(out)),
                         0)
        key = serialization.load_pem_private_key(
            C.take_string(L, out, secret=True), None)
        self.assertEqual(
            key.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo),
            chain[0].public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo))
        self.assertEqual(L.wick_x509_svid_expires(svid),
                         not_after(chain[0]))
        bundles = L.wick_x509_context_bundles(ctx)
        self.assertGreaterEqual(L.wick_bundles_size(bundles, TD.encode()),
                                1)
        # The library's go-spiffe rules accept the agent's SVID...
        idp = C.out_ptr()
        why = ctypes.create_string_buffer(160)
        r = L.wick_x509svid_verify(L.wick_x509_svid_chain(svid), bundles,
                                   0, ctypes.byref(idp), why, 160)
        self.assertEqual(r, 0, why.value)
        self.assertEqual(C.take_string(L, idp).decode(), MAIN)
        # ... and the same as DER.
        der = b"".join(c.public_bytes(serialization.Encoding.DER)
                       for c in chain)
        self.assertEqual(L.wick_x509svid_verify_der(der, len(der), bundles,
                                                    0, None, why, 160), 0)
        # Refusals: no bundle for the domain, a CA as the leaf, expiry.
        empty = C.out_ptr()
        L.wick_bundles_new(C.BUNDLE_X509, ctypes.byref(empty))
        self.addCleanup(L.wick_bundles_free, empty)
        self.assertEqual(L.wick_x509svid_verify_der(der, len(der), empty,
                                                    0, None, why, 160), -5)
        with open(self.bundle, "rb") as f:
            ca = pem_certs(f.read())[0]
        cader = ca.public_bytes(serialization.Encoding.DER)
        self.assertNotEqual(L.wick_x509svid_verify_der(
            cader, len(cader), bundles, 0, None, why, 160), 0)
        self.assertIn(b"CA", why.value)
        late = not_after(chain[0]) + 10
        self.assertEqual(L.wick_x509svid_verify_der(der, len(der), bundles,
                                                    late, None, why, 160),
                         -17)

    # ---- JWT ---------------------------------------------------------------

    def test_jwt_svid(self):
        aud, keep = C.str_array(["svc-a", "svc-b"])
        svid = C.out_ptr()
        r = L.wick_fetch_jwt_svid(self.client, aud, 2, MAIN.encode(),
                                  ctypes.byref(svid))
        self.assertEqual(r, 0, L.wick_strerror(r))
        self.addCleanup(L.wick_jwt_svid_free, svid)
        token = L.wick_jwt_svid_token(svid)
        self.assertEqual(L.wick_jwt_svid_id(svid).decode(), MAIN)
        bundles = C.out_ptr()
        self.assertEqual(L.wick_fetch_jwt_bundles(self.client,
                                                  ctypes.byref(bundles)), 0)
        self.addCleanup(L.wick_bundles_free, bundles)
        want, keep2 = C.str_array(["svc-b"])
        idp, claims = C.out_ptr(), C.out_ptr()
        why = ctypes.create_string_buffer(160)
        r = L.wick_jwtsvid_validate(token, bundles, want, 1, 0,
                                    ctypes.byref(idp), ctypes.byref(claims),
                                    why, 160)
        self.assertEqual(r, 0, why.value)
        self.assertEqual(C.take_string(L, idp).decode(), MAIN)
        cl = json.loads(C.take_string(L, claims))
        self.assertEqual(cl["sub"], MAIN)
        # PyJWT agrees, with the agent's own JWT bundle
        resp = next(self.stub().FetchJWTBundles(W.JWTBundlesRequest(),
                                                metadata=HDR, timeout=10))
        keys = {k["kid"]: k for k in
                json.loads(resp.bundles["spiffe://" + TD])["keys"]}
        hdr = jwt.get_unverified_header(token)
        pub = jwt.PyJWK(keys[hdr["kid"]], algorithm=hdr["alg"]).key
        self.assertEqual(jwt.decode(token, pub, algorithms=[hdr["alg"]],
                                    audience="svc-b")["sub"], MAIN)
        # wrong audience, tampered, expired
        other, keep3 = C.str_array(["svc-c"])
        self.assertEqual(L.wick_jwtsvid_validate(
            token, bundles, other, 1, 0, None, None, why, 160), -3)
        self.assertIn(b"audience", why.value)
        bad = token[:-3] + (b"AAA" if token[-3:] != b"AAA" else b"BBB")
        self.assertEqual(L.wick_jwtsvid_validate(
            bad, bundles, want, 1, 0, None, None, why, 160), -18)
        self.assertEqual(L.wick_jwtsvid_validate(
            token, bundles, want, 1, cl["exp"] + 1, None, None, why, 160),
            -17)

    # ---- WIT and WPT -------------------------------------------------------

    def wit_bundle_map(self):
        resp = next(self.stub().FetchWITBundles(W.WITBundlesRequest(),
                                                metadata=HDR, timeout=10))
        return {td: json.loads(j) for td, j in resp.bundles.items()}

    def test_wit_and_wpt(self):
        wit = C.out_ptr()
        r = L.wick_fetch_wit_svid(self.client, MAIN.encode(),
                                  ctypes.byref(wit))
        self.assertEqual(r, 0, L.wick_strerror(r))
        self.addCleanup(L.wick_wit_svid_free, wit)
        self.assertEqual(L.wick_wit_svid_id(wit).decode(), MAIN)
        token = L.wick_wit_svid_token(wit).decode()
        out = C.out_ptr()
        aud = "https://svc.example.org/items"
        self.assertEqual(L.wick_wpt_create(wit, aud.encode(), 0, None, 0,
                                           ctypes.byref(out)), 0)
        wpt = C.take_string(L, out).decode()
        # PyJWT checks both tokens with the agent's WIT bundle
        keys = {k["kid"]: k for k in
                self.wit_bundle_map()["spiffe://" + TD]["keys"]}
        hdr = jwt.get_unverified_header(token)
        claims = jwt.decode(token, jwt.PyJWK(keys[hdr["kid"]],
                                             algorithm=hdr["alg"]).key,
                            algorithms=[hdr["alg"]])
        cnf = jwt.PyJWK(claims["cnf"]["jwk"]).key
        self.assertEqual(jwt.decode(wpt, cnf, algorithms=["ES256"],
                                    audience=aud)["aud"], aud)
        # the library's verifier, with the WIT bundles it fetched
        bundles = C.out_ptr()
        self.assertEqual(L.wick_fetch_wit_bundles(self.client,
                                                  ctypes.byref(bundles)), 0)
        self.addCleanup(L.wick_bundles_free, bundles)
        v = C.Verifier(L, aud, bundles)
        self.addCleanup(v.close)
        r, reason, res = v.verify(token, wpt)
        self.assertEqual((r, reason), (0, "ok"), res.detail)
        self.assertEqual(res.sub.decode(), MAIN)
        self.assertEqual(v.verify(token, wpt)[1], "WPT jti replayed")
        v2 = C.Verifier(L, aud + "/other", bundles)
        self.addCleanup(v2.close)
        self.assertEqual(v2.verify(token, wpt)[1],
                         "WPT aud is not the configured audience")

    def test_cli_wpt_sign_and_verify(self):
        d = tempfile.mkdtemp(prefix="wick-wpt-")
        p = self.agent.cli("api", "wpt", "sign", "-method", "POST", "-url",
                           "https://svc.example.org/api?x=1#f",
                           "-spiffeID", MAIN, "-socketPath", self.agent.sock)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 2, p.stdout)
        self.assertTrue(lines[0].startswith("Workload-Identity-Token: "))
        self.assertTrue(lines[1].startswith("Authorization: WPT "))
        wit = lines[0].split(": ", 1)[1]
        wpt = lines[1].split(" ", 2)[2]
        claims = jwt.decode(wpt, options={"verify_signature": False})
        self.assertEqual(claims["aud"], "https://svc.example.org/api")
        with open(os.path.join(d, "wit"), "w") as f:
            f.write(wit + "\n")
        with open(os.path.join(d, "wpt"), "w") as f:
            f.write(lines[1] + "\n")
        with open(os.path.join(d, "bundles.json"), "w") as f:
            json.dump(self.wit_bundle_map(), f)
        args = ["api", "wpt", "verify", "-wit", os.path.join(d, "wit"),
                "-wpt", os.path.join(d, "wpt"), "-bundle",
                os.path.join(d, "bundles.json")]
        ok = self.agent.cli(*(args + ["-audience",
                                      "https://svc.example.org/api"]))
        self.assertEqual(ok.stdout.strip(), "WPT valid for " + MAIN)
        bad = self.agent.cli(*(args + ["-audience",
                                       "https://svc.example.org/other"]),
                             check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("WPT rejected: WPT aud is not the configured audience",
                      bad.stderr)
        # the bundles as "api fetch wit -output json" prints them
        fetched = self.agent.cli("api", "fetch", "wit", "-output", "json",
                                 "-socketPath", self.agent.sock)
        with open(os.path.join(d, "fetched.json"), "w") as f:
            f.write(fetched.stdout)
        ok2 = subprocess.run(
            [H.AGENT, "api", "wpt", "verify", "-wit", "-", "-wpt",
             os.path.join(d, "wpt"), "-bundle",
             os.path.join(d, "fetched.json"), "-audience",
             "https://svc.example.org/api"], input=wit, capture_output=True,
            text=True, timeout=60)
        self.assertEqual(ok2.stdout.strip(), "WPT valid for " + MAIN,
                         ok2.stderr)
        late = self.agent.cli(*(args + ["-audience",
                                        "https://svc.example.org/api",
                                        "-time", str(claims["exp"] + 60)]),
                              check=False)
        self.assertEqual(late.returncode, 1)
        self.assertIn("WPT rejected: WPT expired", late.stderr)

    # ---- the watch ---------------------------------------------------------

    def test_watch_sees_rotation(self):
        seen = []
        lock = threading.Lock()

        @C.WATCH_FN
        def cb(ctx, err, arg):
            if ctx:
                s = L.wick_x509_context_find(ctx, b"short")
                if s:
                    with lock:
                        seen.append(L.wick_x509_svid_expires(s))

        w = C.out_ptr()
        self.assertEqual(L.wick_x509_watch_new(self.client, cb, None,
                                               ctypes.byref(w)), 0)
        try:
            self.assertEqual(L.wick_x509_watch_wait(w, 20000), 0)
            fd = L.wick_x509_watch_fd(w)
            self.assertEqual(select.select([fd], [], [], 5)[0], [fd])
            ctx = C.out_ptr()
            self.assertEqual(L.wick_x509_watch_current(w, ctypes.byref(ctx)),
                             0)
            first = L.wick_x509_svid_expires(
                L.wick_x509_context_find(ctx, b"short"))
            L.wick_x509_context_free(ctx)
            # drained: not readable until the next update
            self.assertEqual(select.select([fd], [], [], 0)[0], [])
            deadline = time.monotonic() + 60
            rotated = None
            while time.monotonic() < deadline and rotated is None:
                if select.select([fd], [], [], 1)[0]:
                    self.assertEqual(L.wick_x509_watch_current(
                        w, ctypes.byref(ctx)), 0)
                    s = L.wick_x509_context_find(ctx, b"short")
                    if s and L.wick_x509_svid_expires(s) != first:
                        rotated = L.wick_x509_svid_expires(s)
                        # the old one had not expired yet
                        self.assertLess(time.time(), first + 1)
                    L.wick_x509_context_free(ctx)
            self.assertIsNotNone(rotated, "no rotation seen")
            self.assertGreater(rotated, first)
            self.assertGreaterEqual(L.wick_x509_watch_updates(w), 2)
            # the callback saw it too (it runs after the fd is signalled)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with lock:
                    if rotated in seen:
                        break
                time.sleep(0.05)
            with lock:
                self.assertIn(rotated, seen)
        finally:
            L.wick_x509_watch_free(w)

    # ---- mTLS against openssl ----------------------------------------------

    def svid_files(self):
        d = tempfile.mkdtemp(prefix="wick-tls-")
        self.agent.cli("api", "fetch", "x509", "-write", d, "-socketPath",
                       self.agent.sock)
        for i in range(4):
            p = os.path.join(d, "svid.%d.pem" % i)
            with open(p, "rb") as f:
                if uri_of(pem_certs(f.read())[0]) \
                        == MAIN:
                    return p, os.path.join(d, "svid.%d.key" % i), \
                        os.path.join(d, "bundle.%d.pem" % i)
        raise AssertionError("no SVID file for " + MAIN)

    def peer(self, *args, hint=None):
        env = dict(self.env)
        if hint:
            env["WICK_TLS_PEER_HINT"] = hint
        return subprocess.Popen([TLS_PEER] + list(args), env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def wait_listening(self, proc):
        line = proc.stdout.readline()
        self.assertEqual(line.strip(), "listening", line)

    def s_client(self, port, cert, key, ca):
        return subprocess.run(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
             "-cert", cert, "-key", key, "-CAfile", ca, "-verify_return_error",
             "-quiet"], input="hello\n", capture_output=True, text=True,
            timeout=30)

    def test_tls_server_against_s_client(self):
        cert, key, ca = self.svid_files()
        port = H.free_port()
        srv = self.peer("server", str(port), MAIN, "1", hint="main")
        try:
            self.wait_listening(srv)
            c = self.s_client(port, cert, key, ca)
            self.assertIn("hello", c.stdout, c.stderr)
            out = srv.communicate(timeout=30)[0]
        finally:
            reap(srv)
        self.assertEqual(srv.returncode, 0, out)
        self.assertIn("peer " + MAIN, out)
        # an authorizer that wants another ID refuses the same client
        port = H.free_port()
        srv = self.peer("server", str(port), "spiffe://%s/nope" % TD, "1")
        try:
            self.wait_listening(srv)
            c = self.s_client(port, cert, key, ca)
            out = srv.communicate(timeout=30)[0]
        finally:
            reap(srv)
        self.assertNotEqual(srv.returncode, 0)
        self.assertIn("handshake failed", out)
        self.assertNotIn("hello", c.stdout)

    def test_tls_client_against_s_server(self):
        cert, key, ca = self.svid_files()
        for want, ok in ((MAIN, True), ("spiffe://%s/nope" % TD, False)):
            port = H.free_port()
            srv = subprocess.Popen(
                ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
                 "-cert", cert, "-key", key, "-CAfile", ca, "-Verify", "2",
                 "-verify_return_error", "-naccept", "1", "-rev"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            try:
                deadline = time.monotonic() + 10
                c = None
                while time.monotonic() < deadline:
                    c = self.peer("client", str(port), want)
                    out = c.communicate(timeout=30)[0]
                    if "connect:" not in out:
                        break
                    time.sleep(0.2)
                if ok:
                    self.assertEqual(c.returncode, 0, out)
                    self.assertIn("peer " + MAIN, out)
                    self.assertIn("answer olleh", out)
                else:
                    self.assertNotEqual(c.returncode, 0, out)
                    self.assertIn("handshake failed", out)
            finally:
                reap(srv)

    def test_tls_follows_rotation(self):
        cert, key, ca = self.svid_files()
        port = H.free_port()
        n = 40
        srv = self.peer("server", str(port), "any", str(n), hint="short")
        serials = []
        try:
            self.wait_listening(srv)
            deadline = time.monotonic() + 60
            for _ in range(n):
                self.s_client(port, cert, key, ca)
                line = srv.stdout.readline()
                self.assertTrue(line.startswith("peer " + MAIN), line)
                serials.append(line.split()[-1])
                if len(set(serials)) >= 2 or time.monotonic() > deadline:
                    break
                time.sleep(1.5)
        finally:
            reap(srv)
        self.assertGreaterEqual(len(set(serials)), 2,
                                "the server kept one certificate")

    # ---- the example -------------------------------------------------------

    def test_example_wpt_http(self):
        port = H.free_port()
        url = "http://127.0.0.1:%d/hello" % port
        srv = subprocess.Popen([WPT_SERVER, str(port), url, "2"],
                               env=self.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            self.assertEqual(srv.stdout.readline().strip(), "listening")
            c = subprocess.run([WPT_CLIENT, str(port), url + "?q=1"],
                               env=self.env, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
            self.assertIn("status 200", c.stdout)
            self.assertIn("server spiffe://%s/workload/" % TD, c.stdout)
            self.assertIn("body hello spiffe://%s/workload/" % TD, c.stdout)
            bad = subprocess.run([WPT_CLIENT, str(port), url,
                                  "-wrong-audience"], env=self.env,
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(bad.returncode, 1)
            self.assertIn("status 401", bad.stdout)
            out = srv.communicate(timeout=30)[0]
        finally:
            reap(srv)
        self.assertEqual(srv.returncode, 0, out)
        self.assertIn("accepted spiffe://%s/workload/" % TD, out)
        self.assertIn("rejected WPT aud is not the configured audience", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
