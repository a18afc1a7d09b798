"""wick-agent end to end: a real server, a real agent attested with a join
token, and Python grpcio as the workload, checking every SVID with
`cryptography`, PyJWT and openssl, over the SPIFFE Workload API.
"""
import base64
import calendar
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import grpc
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402

TD = H.TD
HDR = (("workload.spiffe.io", "true"),)
STUBS = H.grpc_stubs("workload.proto")
import workload_pb2 as W  # noqa: E402
import workload_pb2_grpc as WG  # noqa: E402


def der_certs(blob):
    """Split concatenated DER certificates."""
    out = []
    while blob:
        # Each is a SEQUENCE with a long-form length.
        assert blob[0] == 0x30
        if blob[1] & 0x80:
            nlen = blob[1] & 0x7f
            length = int.from_bytes(blob[2:2 + nlen], "big") + 2 + nlen
        else:
            length = blob[1] + 2
        out.append(x509.load_der_x509_certificate(blob[:length]))
        blob = blob[length:]
    return out


def uris(cert):
    san = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def spki(key_or_cert):
    pub = key_or_cert.public_key()
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


class AgentTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = H.Server(port=H.free_port()).start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))
        tok = cls.srv.token()
        cls.agent_id = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        cls.uid = os.getuid()
        cls.eid = cls.srv.create_entry(
            "spiffe://%s/workload/main" % TD, cls.agent_id,
            ["unix:uid:%d" % cls.uid], "-hint", "main", "-dns",
            "main.example.org")
        cls.agent = H.AgentDaemon(cls.srv, cls.bundle).start(token=tok)
        cls.target = "unix://" + cls.agent.sock
        cls.wait_for_svid(cls, "spiffe://%s/workload/main" % TD)

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.agent, cls.srv)

    def stub(self):
        ch = grpc.insecure_channel(self.target)
        self.addCleanup(ch.close)
        return WG.SpiffeWorkloadAPIStub(ch)

    def wait_for_svid(self, spiffe_id, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with grpc.insecure_channel(self.target) as ch:
                stub = WG.SpiffeWorkloadAPIStub(ch)
                try:
                    resp = next(stub.FetchX509SVID(W.X509SVIDRequest(),
                                                   metadata=HDR, timeout=5))
                    if any(s.spiffe_id == spiffe_id for s in resp.svids):
                        return resp
                except grpc.RpcError:
                    pass
            time.sleep(0.3)
        raise AssertionError("no SVID for %s" % spiffe_id)

    def first(self, stream):
        try:
            return next(stream)
        finally:
            stream.cancel()

    # ---- X.509 -------------------------------------------------------------

    def test_fetch_x509_svid(self):
        resp = self.first(self.stub().FetchX509SVID(
            W.X509SVIDRequest(), metadata=HDR, timeout=10))
        svid = [s for s in resp.svids
                if s.spiffe_id == "spiffe://%s/workload/main" % TD][0]
        self.assertEqual(svid.hint, "main")
        chain = der_certs(svid.x509_svid)
        leaf = chain[0]
        self.assertEqual(uris(leaf), [svid.spiffe_id])
        self.assertFalse(leaf.extensions.get_extension_for_class(
            x509.BasicConstraints).value.ca)
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
        self.assertTrue(ku.critical and ku.value.digital_signature)
        self.assertFalse(ku.value.key_cert_sign or ku.value.crl_sign)
        eku = leaf.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, eku)
        self.assertIn(ExtendedKeyUsageOID.CLIENT_AUTH, eku)
        key = serialization.load_der_private_key(svid.x509_svid_key, None)
        self.assertEqual(spki(key), spki(leaf))
        roots = der_certs(svid.bundle)
        with open(self.bundle, "rb") as f:
            want = f.read()
        for r in roots:
            self.assertIn(r.public_bytes(serialization.Encoding.PEM), want)
        d = tempfile.mkdtemp(dir=self.agent.tmp)
        with open(os.path.join(d, "leaf.pem"), "wb") as f:
            f.write(leaf.public_bytes(serialization.Encoding.PEM))
        with open(os.path.join(d, "ca.pem"), "wb") as f:
            for r in roots:
                f.write(r.public_bytes(serialization.Encoding.PEM))
        v = subprocess.run(["openssl", "verify", "-CAfile",
                            os.path.join(d, "ca.pem"),
                            os.path.join(d, "leaf.pem")],
                           capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stderr)

    def test_fetch_x509_bundles(self):
        resp = self.first(self.stub().FetchX509Bundles(
            W.X509BundlesRequest(), metadata=HDR, timeout=10))
        self.assertIn("spiffe://%s" % TD, resp.bundles)
        roots = der_certs(resp.bundles["spiffe://%s" % TD])
        self.assertGreaterEqual(len(roots), 1)
        self.assertTrue(roots[0].extensions.get_extension_for_class(
            x509.BasicConstraints).value.ca)

    def test_missing_header(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.first(self.stub().FetchX509SVID(W.X509SVIDRequest(),
                                                 timeout=10))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("security header", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub().FetchJWTSVID(W.JWTSVIDRequest(audience=["x"]),
                                     timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_unregistered_uid_denied(self):
        script = textwrap.dedent("""
            import sys, grpc
            sys.path.insert(0, %r)
            import workload_pb2 as W, workload_pb2_grpc as WG
            ch = grpc.insecure_channel(%r)
            stub = WG.SpiffeWorkloadAPIStub(ch)
            try:
                next(stub.FetchX509SVID(W.X509SVIDRequest(),
                    metadata=(("workload.spiffe.io", "true"),), timeout=10))
                print("OK")
            except grpc.RpcError as e:
                print(e.code().name, e.details())
        """ % (STUBS, self.target))
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                            "--clear-groups", sys.executable, "-c", script],
                           capture_output=True, text=True, timeout=60,
                           cwd="/")
        self.assertIn("PERMISSION_DENIED no identity issued", p.stdout,
                      p.stderr)

    def jwt_ids_as(self, uid, groups):
        """The SPIFFE IDs FetchJWTSVID gives a process of uid with these
        supplementary groups (a list; empty: none), or the error."""
        script = textwrap.dedent("""
            import sys, grpc
            sys.path.insert(0, %r)
            import workload_pb2 as W, workload_pb2_grpc as WG
            ch = grpc.insecure_channel(%r)
            stub = WG.SpiffeWorkloadAPIStub(ch)
            try:
                r = stub.FetchJWTSVID(W.JWTSVIDRequest(audience=["a"]),
                    metadata=(("workload.spiffe.io", "true"),), timeout=10)
                print(" ".join(sorted(s.spiffe_id for s in r.svids)))
            except grpc.RpcError as e:
                print(e.code().name, e.details())
        """ % (STUBS, self.target))
        grp = ["--groups=" + ",".join(str(g) for g in groups)] if groups \
            else ["--clear-groups"]
        p = subprocess.run(["setpriv", "--reuid=%d" % uid,
                            "--regid=%d" % uid] + grp +
                           [sys.executable, "-c", script],
                           capture_output=True, text=True, timeout=60,
                           cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def test_supplementary_group_entry(self):
        """A unary call reads the caller's groups only while an entry
        names one: with such an entry, a caller in the group gets its
        identity and one outside does not; once it is gone, both get the
        same."""
        uid, gid = 65533, 4243
        plain = "spiffe://%s/workload/u%d" % (TD, uid)
        grouped = "spiffe://%s/workload/g%d" % (TD, gid)
        e1 = self.srv.create_entry(plain, self.agent_id,
                                   ["unix:uid:%d" % uid])
        self.addCleanup(self.srv.cli, "entry", "delete", "-entryID", e1,
                        check=False)
        e2 = self.srv.create_entry(grouped, self.agent_id,
                                   ["unix:uid:%d" % uid,
                                    "unix:supplementary_gid:%d" % gid])
        self.addCleanup(self.srv.cli, "entry", "delete", "-entryID", e2,
                        check=False)
        both = " ".join(sorted([plain, grouped]))

        def until(want, what):
            deadline = time.monotonic() + 30
            while self.jwt_ids_as(uid, [gid]) != want:
                self.assertLess(time.monotonic(), deadline, what)
                time.sleep(0.3)

        until(both, "the grouped entry never reached the caller")
        self.assertEqual(self.jwt_ids_as(uid, []), plain)
        self.assertEqual(self.jwt_ids_as(uid, [gid, 4244]), both)
        self.srv.cli("entry", "delete", "-entryID", e2)
        until(plain, "the grouped entry was never dropped")
        self.assertEqual(self.jwt_ids_as(uid, []), plain)

    def test_new_binary_hashed_once(self):
        """Workloads of a binary the agent has not hashed yet, all calling
        at once: each gets its JWT-SVID, and the binary (with
        discover_workload_path) is hashed once, off the agent's loop, the
        others waiting for that digest."""
        tmp = tempfile.mkdtemp(prefix="wick-newbin-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        exe = os.path.join(tmp, "python3")
        subprocess.run(["cp", os.path.realpath(sys.executable), exe],
                       check=True)
        go = os.path.join(tmp, "go")
        script = textwrap.dedent("""
            import os, sys, time, grpc
            sys.path.insert(0, %r)
            import workload_pb2 as W, workload_pb2_grpc as WG
            ch = grpc.insecure_channel(%r)
            grpc.channel_ready_future(ch).result(timeout=30)
            stub = WG.SpiffeWorkloadAPIStub(ch)
            print("ready", flush=True)
            while not os.path.exists(%r):
                time.sleep(0.001)
            r = stub.FetchJWTSVID(W.JWTSVIDRequest(audience=["hash-once"]),
                metadata=(("workload.spiffe.io", "true"),), timeout=30)
            print("OK", " ".join(s.spiffe_id for s in r.svids))
        """ % (STUBS, self.target, go))
        before = self.agent.output().count("hashing its binary off the loop")
        procs = [subprocess.Popen([exe, "-c", script], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(8)]
        try:
            for p in procs:
                self.assertEqual(p.stdout.readline().strip(), "ready")
            with open(go, "w"):
                pass
            for p in procs:
                out, err = p.communicate(timeout=60)
                self.assertTrue(out.startswith("OK "), out + err)
                self.assertIn("spiffe://%s/workload/main" % TD, out, err)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        after = self.agent.output().count("hashing its binary off the loop")
        self.assertEqual(after - before, 1)

    def test_malformed_requests(self):
        """Garbage in every request message: a clear status, never a
        crash, and the agent goes on serving."""
        ch = grpc.insecure_channel(self.target)
        self.addCleanup(ch.close)
        ident = lambda b: b  # noqa: E731
        junk = [b"\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f",
                b"\x12\x05ab", b"\x0a" + b"\x80" * 12]
        for method in ("FetchJWTSVID", "ValidateJWTSVID"):
            call = ch.unary_unary("/SpiffeWorkloadAPI/" + method,
                                  request_serializer=ident,
                                  response_deserializer=ident)
            for body in junk:
                with self.assertRaises(grpc.RpcError) as cm:
                    call(body, metadata=HDR, timeout=10)
                self.assertEqual(cm.exception.code(),
                                 grpc.StatusCode.INVALID_ARGUMENT, method)
        for method in ("FetchWITSVID",):
            call = ch.unary_stream("/SpiffeWorkloadAPI/" + method,
                                   request_serializer=ident,
                                   response_deserializer=ident)
            for body in junk:
                with self.assertRaises(grpc.RpcError) as cm:
                    next(call(body, metadata=HDR, timeout=10))
                self.assertEqual(cm.exception.code(),
                                 grpc.StatusCode.INVALID_ARGUMENT, method)
        # Unknown methods, oversized and hostile-but-valid requests.
        call = ch.unary_unary("/SpiffeWorkloadAPI/NoSuchMethod",
                              request_serializer=ident,
                              response_deserializer=ident)
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        stub = self.stub()
        with self.assertRaises(grpc.RpcError) as cm:
            stub.FetchJWTSVID(W.JWTSVIDRequest(audience=["a"] * 1000),
                              metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as cm:
            stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
                audience="a", svid="x" * 60000), metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # Over the Workload API's request limit (64 KiB): refused before
        # it is buffered, saying so.
        with self.assertRaises(grpc.RpcError) as cm:
            stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
                audience="a", svid="x" * 100000), metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("exceeds the limit of 65536", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
                audience="a", svid="e30.e30.e30"), metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # Still serving.
        self.assertTrue(self.first(stub.FetchX509SVID(
            W.X509SVIDRequest(), metadata=HDR, timeout=10)).svids)
        self.assertIsNone(H.sanitizer_report(self.agent.output()))

    # ---- JWT ---------------------------------------------------------------

    def jwt_keys(self):
        resp = self.first(self.stub().FetchJWTBundles(
            W.JWTBundlesRequest(), metadata=HDR, timeout=10))
        jwks = json.loads(resp.bundles["spiffe://%s" % TD])
        return {k["kid"]: k for k in jwks["keys"]}

    def test_jwt_svid(self):
        stub = self.stub()
        resp = stub.FetchJWTSVID(W.JWTSVIDRequest(audience=["svc-a"]),
                                 metadata=HDR, timeout=20)
        token = [s for s in resp.svids
                 if s.spiffe_id == "spiffe://%s/workload/main" % TD][0].svid
        hdr = jwt.get_unverified_header(token)
        keys = self.jwt_keys()
        self.assertIn(hdr["kid"], keys)
        pub = jwt.PyJWK(keys[hdr["kid"]], algorithm=hdr["alg"]).key
        claims = jwt.decode(token, pub, algorithms=[hdr["alg"]],
                            audience="svc-a")
        self.assertEqual(claims["sub"], "spiffe://%s/workload/main" % TD)
        # The agent caches: the same audience gives the same token.
        again = stub.FetchJWTSVID(W.JWTSVIDRequest(
            audience=["svc-a"], spiffe_id="spiffe://%s/workload/main" % TD),
            metadata=HDR, timeout=20)
        self.assertEqual(again.svids[0].svid, token)
        ok = stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
            audience="svc-a", svid=token), metadata=HDR, timeout=10)
        self.assertEqual(ok.spiffe_id, "spiffe://%s/workload/main" % TD)
        self.assertEqual(list(ok.claims["aud"]), ["svc-a"])
        self.assertEqual(ok.claims["sub"], ok.spiffe_id)
        with self.assertRaises(grpc.RpcError) as cm:
            stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
                audience="other", svid=token), metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # Many at once (the checks run off the agent's loop, a few at a
        # time, the rest waiting): each gets its own answer; a connection
        # closed while its checks wait or run leaves the rest whole.
        # (Not cancelled one by one: grpcio may then reset a stream
        # before its HEADERS went out, which ends the whole connection.)
        gone = grpc.insecure_channel(self.target)
        gone_stub = WG.SpiffeWorkloadAPIStub(gone)
        abandoned = [gone_stub.ValidateJWTSVID.future(
            W.ValidateJWTSVIDRequest(audience="svc-a", svid=token),
            metadata=HDR, timeout=30) for _ in range(24)]
        calls = []
        for i in range(96):
            aud = "svc-a" if i % 3 else "other"
            calls.append((aud, stub.ValidateJWTSVID.future(
                W.ValidateJWTSVIDRequest(audience=aud, svid=token),
                metadata=HDR, timeout=30)))
        gone.close()
        for aud, f in calls:
            if aud == "other":
                with self.assertRaises(grpc.RpcError) as cm:
                    f.result()
                self.assertEqual(cm.exception.code(),
                                 grpc.StatusCode.INVALID_ARGUMENT)
                continue
            r = f.result()
            self.assertEqual(r.spiffe_id, "spiffe://%s/workload/main" % TD)
            self.assertEqual(list(r.claims["aud"]), ["svc-a"])
        self.assertTrue(all(f.done() for f in abandoned))
        ok = stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
            audience="svc-a", svid=token), metadata=HDR, timeout=10)
        self.assertEqual(ok.spiffe_id, "spiffe://%s/workload/main" % TD)
        with self.assertRaises(grpc.RpcError) as cm:
            stub.FetchJWTSVID(W.JWTSVIDRequest(), metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("audience must be specified", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            stub.FetchJWTSVID(W.JWTSVIDRequest(
                audience=["a"], spiffe_id="spiffe://%s/not/mine" % TD),
                metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.PERMISSION_DENIED)

    def test_validate_remembered_jwt(self):
        """A token whose signature verified is remembered: validated again
        it gives the same answer; its audience is still the call's, and
        the same token with a changed signature is still refused."""
        stub = self.stub()
        main = "spiffe://%s/workload/main" % TD
        token = stub.FetchJWTSVID(W.JWTSVIDRequest(
            audience=["svc-r"], spiffe_id=main), metadata=HDR,
            timeout=20).svids[0].svid
        req = W.ValidateJWTSVIDRequest(audience="svc-r", svid=token)
        first = stub.ValidateJWTSVID(req, metadata=HDR, timeout=10)
        again = stub.ValidateJWTSVID(req, metadata=HDR, timeout=10)
        self.assertEqual(first.spiffe_id, main)
        self.assertEqual(again, first)
        self.assertEqual(list(again.claims["aud"]), ["svc-r"])
        # One character in the middle of the signature (the last one may
        # carry only unused bits).
        head, sig = token.rsplit(".", 1)
        i = len(sig) // 2
        bad = head + "." + sig[:i] + ("A" if sig[i] != "A" else "B") + \
            sig[i + 1:]
        for _ in range(2):
            with self.assertRaises(grpc.RpcError) as cm:
                stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
                    audience="svc-r", svid=bad), metadata=HDR, timeout=10)
            self.assertEqual(cm.exception.code(),
                             grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("signature", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
                audience="other", svid=token), metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn('audience "other"', cm.exception.details())
        self.assertEqual(stub.ValidateJWTSVID(req, metadata=HDR, timeout=10),
                         first)
        # Claims whose base64url has '-' or '_' ('?' or '>' in some
        # places): one of three lengths puts it there.
        for aud in ("q?", "qq?", "qqq?", "r>", "rr>", "rrr>"):
            token = stub.FetchJWTSVID(W.JWTSVIDRequest(
                audience=[aud], spiffe_id=main), metadata=HDR,
                timeout=20).svids[0].svid
            for _ in range(2):
                ok = stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
                    audience=aud, svid=token), metadata=HDR, timeout=10)
                self.assertEqual(list(ok.claims["aud"]), [aud])

    def test_validate_foreign_jwt(self):
        """A token of a federated trust domain validates against its
        bundle, and only sub, aud, exp and allowed claims come back."""
        from cryptography.hazmat.primitives.asymmetric import ec
        key = ec.generate_private_key(ec.SECP256R1())
        nums = key.public_key().public_numbers()
        b64 = lambda i: base64.urlsafe_b64encode(  # noqa: E731
            i.to_bytes(32, "big")).rstrip(b"=").decode()
        doc = {"keys": [{"use": "jwt-svid", "kty": "EC", "crv": "P-256",
                         "kid": "partner-key", "x": b64(nums.x),
                         "y": b64(nums.y)}], "spiffe_sequence": 1}
        path = os.path.join(self.srv.tmp, "jwtpartner.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        self.srv.cli("bundle", "set", "-id", "spiffe://jwtpartner.org",
                     "-path", path, "-format", "spiffe")
        eid = self.srv.create_entry(
            "spiffe://%s/workload/jwtfed" % TD, self.agent_id,
            ["unix:uid:%d" % self.uid], "-federatesWith",
            "spiffe://jwtpartner.org")
        self.addCleanup(self.srv.cli, "entry", "delete", "-entryID", eid)
        now = int(time.time())
        token = jwt.encode({"sub": "spiffe://jwtpartner.org/svc",
                            "aud": ["me"], "exp": now + 300, "iat": now,
                            "team": "blue", "secret": "not for you"},
                           key, algorithm="ES256",
                           headers={"kid": "partner-key", "typ": "JWT"})
        stub = self.stub()
        deadline = time.monotonic() + 30
        while True:
            try:
                ok = stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
                    audience="me", svid=token), metadata=HDR, timeout=10)
                break
            except grpc.RpcError:
                # Until the agent has synced the federated bundle.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        self.assertEqual(ok.spiffe_id, "spiffe://jwtpartner.org/svc")
        self.assertEqual(sorted(ok.claims.keys()),
                         ["aud", "exp", "sub", "team"])
        # Again (its signature remembered): the same claims pass.
        self.assertEqual(stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
            audience="me", svid=token), metadata=HDR, timeout=10), ok)
        # A token of that domain signed by another key is refused.
        other = ec.generate_private_key(ec.SECP256R1())
        bad = jwt.encode({"sub": "spiffe://jwtpartner.org/svc",
                          "aud": ["me"], "exp": now + 300}, other,
                         algorithm="ES256", headers={"kid": "partner-key"})
        with self.assertRaises(grpc.RpcError) as cm:
            stub.ValidateJWTSVID(W.ValidateJWTSVIDRequest(
                audience="me", svid=bad), metadata=HDR, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # The X.509 answers of a caller federating with a domain known by
        # its JWT keys only: its SVIDs, and no bundle for that domain
        # (there is nothing in it to trust for X.509).
        resp = self.wait_for_svid("spiffe://%s/workload/jwtfed" % TD)
        self.assertNotIn("spiffe://jwtpartner.org",
                         dict(resp.federated_bundles))
        b = self.first(stub.FetchX509Bundles(W.X509BundlesRequest(),
                                             metadata=HDR, timeout=10))
        self.assertIn("spiffe://%s" % TD, dict(b.bundles))
        self.assertNotIn("spiffe://jwtpartner.org", dict(b.bundles))
        # Its JWT keys are served.
        jb = self.first(stub.FetchJWTBundles(W.JWTBundlesRequest(),
                                             metadata=HDR, timeout=10))
        self.assertIn("spiffe://jwtpartner.org", dict(jb.bundles))

    # ---- WIT ---------------------------------------------------------------

    def test_wit_svid(self):
        stub = self.stub()
        resp = self.first(stub.FetchWITSVID(W.WITSVIDRequest(), metadata=HDR,
                                            timeout=20))
        w = [s for s in resp.svids
             if s.spiffe_id == "spiffe://%s/workload/main" % TD][0]
        hdr = jwt.get_unverified_header(w.wit_svid)
        self.assertEqual(hdr["typ"], "wit+jwt")
        bundles = self.first(stub.FetchWITBundles(
            W.WITBundlesRequest(), metadata=HDR, timeout=10))
        keys = {k["kid"]: k for k in
                json.loads(bundles.bundles["spiffe://%s" % TD])["keys"]}
        pub = jwt.PyJWK(keys[hdr["kid"]], algorithm=hdr["alg"]).key
        claims = jwt.decode(w.wit_svid, pub, algorithms=[hdr["alg"]],
                            options={"verify_aud": False})
        self.assertNotIn("aud", claims)
        priv = json.loads(w.wit_svid_key)
        self.assertIn("d", priv)
        cnf = claims["cnf"]["jwk"]
        for k in ("kty", "crv", "x", "y"):
            self.assertEqual(cnf[k], priv[k])
        self.assertEqual(cnf["alg"], "ES256")

    # ---- changes observed on a stream --------------------------------------

    def test_stream_sees_rotation_deletion_and_bundle(self):
        stub = self.stub()
        stream = stub.FetchX509SVID(W.X509SVIDRequest(), metadata=HDR,
                                    timeout=120)
        self.addCleanup(stream.cancel)
        first = next(stream)
        ids = {s.spiffe_id for s in first.svids}
        self.assertIn("spiffe://%s/workload/main" % TD, ids)
        # A short-lived entry: its SVID rotates before it expires.
        short = self.srv.create_entry(
            "spiffe://%s/workload/short" % TD, self.agent_id,
            ["unix:uid:%d" % self.uid], "-x509SVIDTTL", "20")
        serials = []
        expiry = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(set(serials)) < 2:
            msg = next(stream)
            for s in msg.svids:
                if s.spiffe_id.endswith("/workload/short"):
                    leaf = der_certs(s.x509_svid)[0]
                    if not serials or serials[-1] != leaf.serial_number:
                        if serials:
                            self.assertLess(time.time(), expiry)
                        serials.append(leaf.serial_number)
                        expiry = calendar.timegm(
                            leaf.not_valid_after.utctimetuple())
        self.assertGreaterEqual(len(set(serials)), 2, "no rotation seen")
        # Deleting the entry removes its SVID from the stream.
        self.srv.cli("entry", "delete", "-entryID", short)
        deadline = time.monotonic() + 30
        gone = False
        while time.monotonic() < deadline:
            msg = next(stream)
            if not any(s.spiffe_id.endswith("/workload/short")
                       for s in msg.svids):
                gone = True
                break
        self.assertTrue(gone)

    def test_federated_bundle_change(self):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        import datetime
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME,
                                             "partner")])
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(key.public_key())
                .serial_number(9).not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                               critical=True)
                .sign(key, hashes.SHA256()))
        path = os.path.join(self.srv.tmp, "partner.pem")
        with open(path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self.srv.cli("bundle", "set", "-id", "spiffe://partner.org", "-path",
                     path)
        stream = self.stub().FetchX509Bundles(W.X509BundlesRequest(),
                                              metadata=HDR, timeout=60)
        self.addCleanup(stream.cancel)
        msg = next(stream)
        self.assertNotIn("spiffe://partner.org", msg.bundles)
        eid = self.srv.create_entry(
            "spiffe://%s/workload/fed" % TD, self.agent_id,
            ["unix:uid:%d" % self.uid], "-federatesWith",
            "spiffe://partner.org")
        self.addCleanup(self.srv.cli, "entry", "delete", "-entryID", eid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = next(stream)
            if "spiffe://partner.org" in msg.bundles:
                break
        self.assertIn("spiffe://partner.org", msg.bundles)
        got = der_certs(msg.bundles["spiffe://partner.org"])[0]
        self.assertEqual(got.serial_number, 9)

    def test_grpcjs_workload(self):
        node = os.environ.get("WICK_NODE", "node")
        p = subprocess.run([node, os.path.join(HERE, "workload_grpcjs.js")],
                           env=dict(os.environ, WICK_WL_TARGET=self.target),
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertIn("spiffe://%s/workload/main" % TD,
                      [s["spiffe_id"] for s in out["x509"]])
        self.assertIn("spiffe://%s" % TD, out["x509_bundles"])
        self.assertEqual(out["jwt"]["aud"], ["grpcjs-aud"])
        self.assertEqual(out["wit"]["alg"], "ES256")

    # ---- CLI and openssl ---------------------------------------------------

    def test_cli_fetch_and_mtls_between_workloads(self):
        self.srv.create_entry("spiffe://%s/workload/peer" % TD,
                              self.agent_id, ["unix:uid:%d" % self.uid],
                              "-hint", "peer")
        self.wait_for_svid("spiffe://%s/workload/peer" % TD)
        d = tempfile.mkdtemp(dir=self.agent.tmp)
        p = self.agent.cli("api", "fetch", "x509", "-socketPath",
                           self.agent.sock, "-write", d)
        self.assertIn("spiffe://%s/workload/main" % TD, p.stdout)
        files = sorted(os.listdir(d))
        self.assertIn("svid.0.pem", files)
        self.assertIn("svid.0.key", files)
        self.assertIn("bundle.0.pem", files)
        self.assertEqual(os.stat(os.path.join(d, "svid.0.key")).st_mode &
                         0o777, 0o600)
        ids = {}
        for i in range(len([f for f in files if f.startswith("svid.") and
                            f.endswith(".pem")])):
            with open(os.path.join(d, "svid.%d.pem" % i), "rb") as f:
                ids[uris(x509.load_pem_x509_certificate(f.read()))[0]] = i
        a = ids["spiffe://%s/workload/main" % TD]
        b = ids["spiffe://%s/workload/peer" % TD]
        port = H.free_port()
        srv = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
             "-cert", os.path.join(d, "svid.%d.pem" % a),
             "-key", os.path.join(d, "svid.%d.key" % a),
             "-CAfile", os.path.join(d, "bundle.%d.pem" % a),
             "-Verify", "1", "-verify_return_error", "-tls1_3", "-naccept",
             "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(0.5)
            cli = subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                 "-cert", os.path.join(d, "svid.%d.pem" % b),
                 "-key", os.path.join(d, "svid.%d.key" % b),
                 "-CAfile", os.path.join(d, "bundle.%d.pem" % b),
                 "-verify_return_error", "-showcerts"],
                input="", capture_output=True, text=True, timeout=30)
            out_srv, _ = srv.communicate(timeout=30)
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
        self.assertIn("Verify return code: 0 (ok)", cli.stdout)
        # Each side checks the other's SPIFFE ID.
        peer_pem = cli.stdout.split("-----BEGIN CERTIFICATE-----")[1]
        peer = x509.load_pem_x509_certificate(
            ("-----BEGIN CERTIFICATE-----" +
             peer_pem.split("-----END CERTIFICATE-----")[0] +
             "-----END CERTIFICATE-----\n").encode())
        self.assertEqual(uris(peer), ["spiffe://%s/workload/main" % TD])
        client_pem = out_srv.split("Client certificate")[1]
        client = x509.load_pem_x509_certificate(
            ("-----BEGIN CERTIFICATE-----" + client_pem.split(
                "-----BEGIN CERTIFICATE-----")[1].split(
                "-----END CERTIFICATE-----")[0] +
             "-----END CERTIFICATE-----\n").encode())
        self.assertEqual(uris(client), ["spiffe://%s/workload/peer" % TD])

    def test_cli_jwt_validate(self):
        p = self.agent.cli("api", "fetch", "jwt", "-audience", "cli-aud",
                           "-socketPath", self.agent.sock)
        token = [l.strip() for l in p.stdout.splitlines()
                 if l.strip().count(".") == 2 and l.strip().startswith("ey")]
        self.assertTrue(token, p.stdout)
        p = self.agent.cli("api", "validate", "jwt", "-audience", "cli-aud",
                           "-svid", token[0], "-socketPath", self.agent.sock)
        self.assertIn("SVID is valid.", p.stdout)
        p = self.agent.cli("api", "validate", "jwt", "-audience", "nope",
                           "-svid", token[0], "-socketPath", self.agent.sock,
                           check=False)
        self.assertNotEqual(p.returncode, 0)
        env = dict(os.environ, SPIFFE_ENDPOINT_SOCKET="unix://" +
                   self.agent.sock)
        p = self.agent.cli("healthcheck", env=env)
        self.assertIn("Agent is healthy.", p.stdout)


class AgentLifecycleTest(unittest.TestCase):

    def test_restart_and_server_outage(self):
        port = H.free_port()
        srv = H.Server(port=port).start()
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        srv.create_entry("spiffe://%s/life" % TD, aid,
                         ["unix:uid:%d" % os.getuid()])
        agent = H.AgentDaemon(srv, bundle).start(token=tok)
        target = "unix://" + agent.sock

        def fetch():
            with grpc.insecure_channel(target) as ch:
                stub = WG.SpiffeWorkloadAPIStub(ch)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    try:
                        st = stub.FetchX509SVID(W.X509SVIDRequest(),
                                                metadata=HDR, timeout=5)
                        r = next(st)
                        st.cancel()
                        if r.svids:
                            return r
                    except grpc.RpcError:
                        time.sleep(0.3)
            raise AssertionError("no SVID")
        try:
            first = fetch()
            # Restart the agent without a token: it keeps its identity.
            self.assertEqual(agent.stop(), 0)
            self.assertTrue(os.path.exists(os.path.join(agent.data,
                                                        "agent_svid.pem")))
            agent.start()
            self.assertEqual(fetch().svids[0].spiffe_id,
                             first.svids[0].spiffe_id)
            # The server goes away: cached SVIDs are still served.
            self.assertEqual(srv.stop(), 0)
            time.sleep(3)
            self.assertEqual(fetch().svids[0].spiffe_id,
                             "spiffe://%s/life" % TD)
            # It comes back: the agent syncs again (new entries arrive).
            srv.start()
            srv.create_entry("spiffe://%s/life2" % TD, aid,
                             ["unix:uid:%d" % os.getuid()])
            deadline = time.monotonic() + 90
            ids = set()
            while time.monotonic() < deadline:
                ids = {s.spiffe_id for s in fetch().svids}
                if "spiffe://%s/life2" % TD in ids:
                    break
                time.sleep(0.5)
            self.assertIn("spiffe://%s/life2" % TD, ids)
        finally:
            rc = agent.stop()
            srv.stop()
        self.assertEqual(rc, 0)
        self.assertIsNone(H.sanitizer_report(agent.all_output()))
        # The agent's key is private; the join token is not on disk.
        st = os.stat(os.path.join(agent.data, "agent_svid.key"))
        self.assertEqual(st.st_mode & 0o077, 0)
        for name in os.listdir(agent.data):
            with open(os.path.join(agent.data, name), "rb") as f:
                self.assertNotIn(tok.encode(), f.read())

    def test_evicted_agent_stops(self):
        srv = H.Server(port=H.free_port()).start()
        try:
            bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
            tok = srv.token()
            aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
            srv.create_entry("spiffe://%s/ev" % TD, aid,
                             ["unix:uid:%d" % os.getuid()])
            agent = H.AgentDaemon(srv, bundle).start(token=tok)
            srv.cli("agent", "evict", "-spiffeID", aid)
            rc = agent.proc.wait(timeout=60)
            agent.log.close()
            agent.proc = None
            self.assertEqual(rc, 1)
            self.assertIn("AGENT_NOT_ATTESTED", agent.output())
            self.assertFalse(os.path.exists(os.path.join(agent.data,
                                                         "agent_svid.pem")))
            # A restart without a token says so clearly.
            p = subprocess.run([H.AGENT, "run", "-config", agent.conf],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("no SVID and no join token", p.stdout + p.stderr)
        finally:
            srv.stop()


class UpstreamChainTest(unittest.TestCase):
    """Under an UpstreamAuthority "disk", workload SVIDs (signed in
    batches, written as DER by the server) come with the server's CA as
    intermediate, and openssl verifies the chain up to the upstream root
    alone."""

    def test_svid_chain_to_upstream_root(self):
        tmp = tempfile.mkdtemp(prefix="wick-up-")
        up_key = os.path.join(tmp, "up.key")
        up_pem = os.path.join(tmp, "up.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", up_key, "-out", up_pem, "-days", "2",
                        "-subj", "/O=Upstream Root",
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                        "-addext", "subjectKeyIdentifier=hash"],
                       check=True, capture_output=True)
        srv = H.Server(port=H.free_port(), plugins=textwrap.dedent("""
            UpstreamAuthority "disk" {
                plugin_data {
                    cert_file_path = "%s"
                    key_file_path = "%s"
                }
            }""" % (up_pem, up_key))).start()
        agent = None
        try:
            bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
            tok = srv.token()
            aid = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
            want = "spiffe://%s/workload/up" % TD
            srv.create_entry(want, aid, ["unix:uid:%d" % os.getuid()])
            agent = H.AgentDaemon(srv, bundle).start(token=tok)
            self.target = "unix://" + agent.sock
            resp = AgentTest.wait_for_svid(self, want)
            svid = [x for x in resp.svids if x.spiffe_id == want][0]
            certs = der_certs(svid.x509_svid)
            self.assertEqual(len(certs), 2)
            self.assertEqual(uris(certs[0]), [want])
            inter = certs[1].extensions.get_extension_for_class(
                x509.BasicConstraints).value
            self.assertTrue(inter.ca)
            paths = {}
            for name, c in (("leaf", certs[0]), ("inter", certs[1])):
                paths[name] = os.path.join(tmp, name + ".pem")
                with open(paths[name], "wb") as f:
                    f.write(c.public_bytes(serialization.Encoding.PEM))
            p = subprocess.run(["openssl", "verify", "-CAfile", up_pem,
                                "-untrusted", paths["inter"],
                                "-purpose", "sslclient", paths["leaf"]],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIsNone(H.sanitizer_report(srv.output()))
        finally:
            if agent is not None:
                agent.stop()
            srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
