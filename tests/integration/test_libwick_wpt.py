"""libwick against an independent implementation.  WIMSE proof tokens:
WITs and WPTs made with Python `cryptography` and PyJWT are verified by
libwick (through ctypes), and WPTs libwick makes are verified by PyJWT,
for ES256, ES384 and PS256 keys; expiry, replay, wrong audience, wrong
alg, wrong wth and a WIT without cnf.jwk.alg each fail with their own
reason.  X.509-SVIDs and JWT-SVIDs made with `cryptography` and PyJWT
against go-spiffe's rules: each broken rule refused, naming it.
"""
import base64
import ctypes
import hashlib
import json
import os
import sys
import time
import unittest

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import libwick_ctypes as C  # noqa: E402

L = C.load()
TD = "example.org"
AUD = "https://svc.example.org/api"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def thash(s):
    return b64(hashlib.sha256(s.encode()).digest())


def key_pair(kind):
    if kind == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_of(key, alg, private):
    j = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(
        key if private else key.public_key()))
    j["alg"] = alg
    return j


class Issuer:
    """A WIT issuer: an ES256 key with kid, and its JWKS."""

    def __init__(self, kid="py-issuer"):
        self.key = key_pair("ES256")
        self.kid = kid
        pub = jwk_of(self.key, "ES256", False)
        pub.pop("alg")
        pub["kid"] = self.kid
        pub["use"] = "wit-svid"
        self.jwks = json.dumps({"keys": [pub]})

    def wit(self, cnf, sub="spiffe://%s/py/workload" % TD, ttl=3600,
            extra=None, typ="wit+jwt"):
        now = int(time.time())
        claims = {"sub": sub, "exp": now + ttl, "iat": now,
                  "cnf": {"jwk": cnf}}
        claims.update(extra or {})
        return jwt.encode(claims, self.key, algorithm="ES256",
                          headers={"kid": self.kid, "typ": typ})


def py_wpt(key, alg, wit, aud=AUD, exp=None, jti=None, wth=None, typ=
           "wpt+jwt", **extra):
    claims = {"aud": aud, "exp": exp or int(time.time()) + 60,
              "jti": jti or b64(os.urandom(16)),
              "wth": wth or thash(wit)}
    claims.update(extra)
    return jwt.encode(claims, key, algorithm=alg, headers={"typ": typ})


class WptInterop(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.iss = Issuer()
        cls.bundles = C.wit_bundles(L, TD, cls.iss.jwks)

    def verifier(self, **kw):
        v = C.Verifier(L, AUD, self.bundles, **kw)
        self.addCleanup(v.close)
        return v

    def libwick_wit(self, wit, key_jwk):
        w = C.out_ptr()
        r = L.wick_wit_svid_new(wit.encode(), json.dumps(key_jwk).encode(),
                                ctypes.byref(w))
        self.assertEqual(r, 0, L.wick_strerror(r))
        self.addCleanup(L.wick_wit_svid_free, w)
        return w

    def libwick_wpt(self, w, aud=AUD, ttl=0):
        out = C.out_ptr()
        r = L.wick_wpt_create(w, aud.encode(), ttl, None, 0,
                              ctypes.byref(out))
        self.assertEqual(r, 0, L.wick_strerror(r))
        return C.take_string(L, out).decode()

    def test_libwick_wpt_verified_by_pyjwt(self):
        for alg in ("ES256", "ES384", "PS256"):
            with self.subTest(alg=alg):
                key = key_pair(alg)
                wit = self.iss.wit(jwk_of(key, alg, False))
                w = self.libwick_wit(wit, jwk_of(key, alg, True))
                tok = self.libwick_wpt(w)
                hdr = jwt.get_unverified_header(tok)
                self.assertEqual(hdr, {"alg": alg, "typ": "wpt+jwt"})
                claims = jwt.decode(tok, key.public_key(), algorithms=[alg],
                                    audience=AUD)
                self.assertEqual(set(claims), {"aud", "exp", "jti", "wth"})
                self.assertEqual(claims["wth"], thash(wit))
                self.assertLessEqual(claims["exp"] - time.time(), 61)
                self.assertGreater(claims["exp"] - time.time(), 55)
                jti = base64.urlsafe_b64decode(claims["jti"] + "==")
                self.assertEqual(len(jti), 16)
                # and libwick's own verifier agrees
                r, reason, res = self.verifier().verify(wit, tok)
                self.assertEqual((r, reason), (0, "ok"))
                self.assertEqual(res.sub.decode(),
                                 "spiffe://%s/py/workload" % TD)

    def test_pyjwt_wpt_verified_by_libwick(self):
        for alg in ("ES256", "ES384", "PS256"):
            with self.subTest(alg=alg):
                key = key_pair(alg)
                wit = self.iss.wit(jwk_of(key, alg, False))
                tok = py_wpt(key, alg, wit)
                v = self.verifier()
                self.assertEqual(v.verify(wit, tok)[:2], (0, "ok"))
                self.assertEqual(v.verify(wit, tok)[1], "WPT jti replayed")

    def test_rejections(self):
        key = key_pair("ES256")
        cnf = jwk_of(key, "ES256", False)
        wit = self.iss.wit(cnf)
        v = self.verifier()
        now = int(time.time())
        cases = [
            ("expired", wit, py_wpt(key, "ES256", wit, exp=now - 120),
             "WPT expired"),
            ("too far", wit, py_wpt(key, "ES256", wit, exp=now + 3600),
             "WPT exp too far in the future"),
            ("wrong aud", wit, py_wpt(key, "ES256", wit,
                                      aud="https://other.example.org/api"),
             "WPT aud is not the configured audience"),
            ("wrong wth", wit, py_wpt(key, "ES256", wit,
                                      wth=thash(wit + "x")),
             "WPT wth does not match the WIT"),
            ("wrong typ", wit, py_wpt(key, "ES256", wit, typ="dpop+jwt"),
             "WPT typ is not wpt+jwt"),
        ]
        # wrong alg: an RSA signature while cnf.jwk says ES256
        rkey = key_pair("PS256")
        cases.append(("wrong alg", wit, py_wpt(rkey, "PS256", wit),
                      "WPT alg differs from the WIT's cnf.jwk alg"))
        # HS256 with the issuer's public key as the secret
        cases.append(("hs256", wit, jwt.encode(
            {"aud": AUD, "exp": now + 60, "jti": "x", "wth": thash(wit)},
            "secret", algorithm="HS256", headers={"typ": "wpt+jwt"}),
            "WPT alg differs from the WIT's cnf.jwk alg"))
        # a WIT without cnf.jwk.alg
        noalg = dict(cnf)
        noalg.pop("alg")
        wit2 = self.iss.wit(noalg)
        cases.append(("no cnf alg", wit2, py_wpt(key, "ES256", wit2),
                      "WIT cnf.jwk without alg"))
        # a WIT with another typ, an expired WIT, a WIT with aud
        wit3 = self.iss.wit(cnf, typ="JWT")
        cases.append(("wit typ", wit3, py_wpt(key, "ES256", wit3),
                      "WIT typ is not wit+jwt"))
        wit4 = self.iss.wit(cnf, ttl=-600)
        cases.append(("wit expired", wit4, py_wpt(key, "ES256", wit4),
                      "WIT expired"))
        wit5 = self.iss.wit(cnf, extra={"aud": "x"})
        cases.append(("wit aud", wit5, py_wpt(key, "ES256", wit5),
                      "WIT carries aud"))
        # WITs signed by keys the bundle does not have: under another
        # kid, and under the bundle's kid
        wit6 = Issuer("other").wit(cnf)
        cases.append(("wit kid", wit6, py_wpt(key, "ES256", wit6),
                      "WIT kid missing or unknown"))
        wit7 = Issuer().wit(cnf)
        cases.append(("wit key", wit7, py_wpt(key, "ES256", wit7),
                      "WIT signature does not verify"))
        for name, w, t, want in cases:
            with self.subTest(case=name):
                r, reason, res = v.verify(w, t)
                self.assertNotEqual(r, 0)
                self.assertEqual(reason, want, res.detail)

    def test_bindings(self):
        key = key_pair("ES256")
        wit = self.iss.wit(jwk_of(key, "ES256", False))
        tok = py_wpt(key, "ES256", wit, tth=thash("txn"),
                     oth={"x-tok": thash("v1")})
        names, keep1 = C.str_array(["x-tok"])
        vals, keep2 = C.str_array(["v1"])
        b = C.Bind(None, b"txn", names, vals, 1)
        v = self.verifier(flags=C.NO_REPLAY)
        self.assertEqual(v.verify(wit, tok, bind=b)[:2], (0, "ok"))
        b.txn_token = b"other"
        self.assertEqual(v.verify(wit, tok, bind=b)[1],
                         "WPT tth does not match the transaction token")
        self.assertEqual(v.verify(wit, tok)[1],
                         "WPT tth does not match the transaction token")

    def test_token_hash(self):
        out = (ctypes.c_char * 44)()
        self.assertEqual(L.wick_token_hash(b"abc", out), 0)
        self.assertEqual(out.value.decode(), thash("abc"))


# ---- go-spiffe's X.509-SVID and JWT-SVID rules, on certificates and tokens
# made here ------------------------------------------------------------------

def cert(subject_key, issuer_key, issuer_name, ca=False, ku=None,
         uris=("spiffe://%s/w" % TD,), days=1, start=None, cn=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    import datetime
    start = start or datetime.datetime.utcnow() - datetime.timedelta(
        minutes=5)
    name = x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, cn or ("ca" if ca else "leaf"))])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer_name or name)
         .public_key(subject_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(start)
         .not_valid_after(start + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                        True))
    if ku is None:
        ku = ("cert_sign", "crl_sign") if ca else ("digital_signature",)
    flags = dict(digital_signature=False, content_commitment=False,
                 key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=False, crl_sign=False,
                 encipher_only=False, decipher_only=False)
    for k in ku:
        flags["key_" + k if k == "cert_sign" else k] = True
    if ku:
        b = b.add_extension(x509.KeyUsage(**flags), True)
    if uris:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(u) for u in uris]), False)
    c = b.sign(issuer_key, hashes.SHA256())
    return c, name


def der(*certs):
    from cryptography.hazmat.primitives import serialization
    return b"".join(c.public_bytes(serialization.Encoding.DER)
                    for c in certs)


class SvidRules(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        from cryptography.hazmat.primitives import serialization
        cls.cak = key_pair("ES256")
        cls.ca, cls.caname = cert(cls.cak, cls.cak, None, ca=True,
                                  uris=("spiffe://%s" % TD,))
        cls.x509 = C.out_ptr()
        assert L.wick_bundles_new(C.BUNDLE_X509,
                                  ctypes.byref(cls.x509)) == 0
        pem = cls.ca.public_bytes(serialization.Encoding.PEM)
        assert L.wick_bundles_add(cls.x509, TD.encode(), pem, len(pem)) == 0

    def verify(self, blob, now=0):
        why = ctypes.create_string_buffer(160)
        idp = C.out_ptr()
        r = L.wick_x509svid_verify_der(blob, len(blob), self.x509, now,
                                       ctypes.byref(idp), why, 160)
        return r, C.take_string(L, idp), why.value.decode()

    def test_x509svid_rules(self):
        import datetime
        k = key_pair("ES256")
        good, _ = cert(k, self.cak, self.caname)
        self.assertEqual(self.verify(der(good))[:2],
                         (0, ("spiffe://%s/w" % TD).encode()))
        ik = key_pair("ES256")
        inter, iname = cert(ik, self.cak, self.caname, ca=True,
                            uris=("spiffe://%s" % TD,), cn="intermediate")
        via, _ = cert(k, ik, iname)
        self.assertEqual(self.verify(der(via, inter))[0], 0)
        self.assertEqual(self.verify(der(via))[0], -18)   # no path
        other = key_pair("ES256")
        stranger, _ = cert(k, other, self.caname)
        self.assertEqual(self.verify(der(stranger))[0], -18)
        old, _ = cert(k, self.cak, self.caname,
                      start=datetime.datetime(2020, 1, 1))
        self.assertEqual(self.verify(der(old))[0], -17)
        cases = [
            ("CA leaf", dict(ca=True), "is a CA"),
            ("no digitalSignature", dict(ku=("key_encipherment",)),
             "digitalSignature"),
            ("no key usage", dict(ku=()), "digitalSignature"),
            ("keyCertSign", dict(ku=("digital_signature", "cert_sign")),
             "keyCertSign"),
            ("cRLSign", dict(ku=("digital_signature", "crl_sign")),
             "cRLSign"),
            ("two URIs", dict(uris=("spiffe://%s/a" % TD,
                                    "spiffe://%s/b" % TD)), "URI"),
            ("no URI", dict(uris=()), "URI"),
            ("not spiffe", dict(uris=("https://%s/a" % TD,)), "SPIFFE"),
            ("bad ID", dict(uris=("spiffe://%s/a/../b" % TD,)), "SPIFFE ID"),
        ]
        for name, kw, want in cases:
            with self.subTest(case=name):
                c, _ = cert(k, self.cak, self.caname, **kw)
                r, idv, why = self.verify(der(c))
                self.assertNotEqual(r, 0)
                self.assertIsNone(idv)
                self.assertIn(want, why)
        foreign, _ = cert(k, self.cak, self.caname,
                          uris=("spiffe://other.org/w",))
        self.assertEqual(self.verify(der(foreign))[0], -5)

    def test_jwtsvid_rules(self):
        key = key_pair("ES256")
        pub = jwk_of(key, "ES256", False)
        pub.pop("alg")
        pub.update(kid="j1", use="jwt-svid")
        doc = json.dumps({"keys": [pub]}).encode()
        b = C.out_ptr()
        self.assertEqual(L.wick_bundles_new(C.BUNDLE_JWT, ctypes.byref(b)),
                         0)
        self.addCleanup(L.wick_bundles_free, b)
        self.assertEqual(L.wick_bundles_add(b, TD.encode(), doc, len(doc)),
                         0)
        aud, keep = C.str_array(["svc"])
        now = int(time.time())
        base = {"sub": "spiffe://%s/w" % TD, "aud": ["x", "svc"],
                "exp": now + 60}

        def check(claims=None, hdr=None, alg="ES256", k=key):
            tok = jwt.encode(claims or base, k, algorithm=alg,
                             headers=hdr if hdr is not None else
                             {"kid": "j1"})
            why = ctypes.create_string_buffer(160)
            r = L.wick_jwtsvid_validate(tok.encode(), b, aud, 1, 0, None,
                                        None, why, 160)
            return r, why.value.decode()

        self.assertEqual(check()[0], 0)
        self.assertEqual(check(hdr={"kid": "j1", "typ": "JOSE"})[0], 0)
        for name, kw, want in [
                ("typ", dict(hdr={"kid": "j1", "typ": "wit+jwt"}), "typ"),
                ("no kid", dict(hdr={}), "key id"),
                ("unknown kid", dict(hdr={"kid": "j2"}), "authority"),
                ("HS256", dict(alg="HS256", k="secret"), "algorithm"),
                ("sub", dict(claims=dict(base, sub="https://x/y")),
                 "subject"),
                ("no exp", dict(claims={"sub": base["sub"],
                                        "aud": "svc"}), "exp"),
                ("expired", dict(claims=dict(base, exp=now - 5)),
                 "expired"),
                ("aud", dict(claims=dict(base, aud="other")), "audience"),
                ("other domain", dict(claims=dict(
                    base, sub="spiffe://other.org/w")), "bundle")]:
            with self.subTest(case=name):
                r, why = check(**kw)
                self.assertNotEqual(r, 0)
                self.assertIn(want, why)


if __name__ == "__main__":
    unittest.main(verbosity=2)
