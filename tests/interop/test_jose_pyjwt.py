"""Our JWS code against PyJWT (python3-jwt): PyJWT verifies tokens we
signed against the JWKS we wrote, and we verify tokens PyJWT signed.

Run: /usr/bin/python3 test_jose_pyjwt.py JOSE_TOOL
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import jwt

TOOL = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ["WICK_JOSE_TOOL"]


class PyJwtTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="wick-jose-")
        subprocess.run([TOOL, "sign", cls.dir], check=True)
        with open(os.path.join(cls.dir, "jwks.json")) as f:
            cls.jwks = json.load(f)
        cls.keys = jwt.PyJWKSet.from_dict(cls.jwks)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def key_for(self, token):
        kid = jwt.get_unverified_header(token)["kid"]
        return [k for k in self.keys.keys if k.key_id == kid][0].key

    def read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read().strip()

    def test_pyjwt_verifies_ours(self):
        for name, alg in (("token-es256.txt", "ES256"),
                          ("token-rs256.txt", "RS256")):
            tok = self.read(name)
            hdr = jwt.get_unverified_header(tok)
            self.assertEqual((hdr["alg"], hdr["typ"]), (alg, "JWT"))
            claims = jwt.decode(tok, self.key_for(tok), algorithms=[alg],
                                audience="svc-b")
            self.assertEqual(claims["sub"], "spiffe://example.org/workload")
            with self.assertRaises(jwt.InvalidAudienceError):
                jwt.decode(tok, self.key_for(tok), algorithms=[alg],
                           audience="svc-z")

    def verify(self, token, aud):
        path = os.path.join(self.dir, "peer-token.txt")
        with open(path, "w") as f:
            f.write(token)
        p = subprocess.run([TOOL, "verify", os.path.join(self.dir, "jwks.json"),
                            path, aud], capture_output=True, text=True)
        return p.returncode, p.stdout.strip()

    def test_we_verify_pyjwt(self):
        with open(os.path.join(self.dir, "peer.key"), "rb") as f:
            key = f.read()
        now = int(time.time())
        claims = {"sub": "spiffe://example.org/peer", "aud": ["x", "y"],
                  "exp": now + 60, "iat": now}
        tok = jwt.encode(claims, key, algorithm="ES256",
                         headers={"kid": "peer-1", "typ": "JWT"})
        self.assertEqual(self.verify(tok, "y"),
                         (0, "OK spiffe://example.org/peer"))
        rc, out = self.verify(tok, "z")
        self.assertEqual(rc, 1)
        self.assertIn("not in token audiences", out)
        expired = jwt.encode(dict(claims, exp=now - 120), key,
                             algorithm="ES256", headers={"kid": "peer-1"})
        self.assertEqual(self.verify(expired, "x"),
                         (1, "ERROR token has expired"))
        unknown = jwt.encode(claims, key, algorithm="ES256",
                             headers={"kid": "nobody"})
        self.assertEqual(self.verify(unknown, "x")[0], 1)
        hmac = jwt.encode(claims, "secret", algorithm="HS256",
                          headers={"kid": "peer-1"})
        rc, out = self.verify(hmac, "x")
        self.assertEqual(rc, 1)
        self.assertIn("not allowed", out)
        parts = tok.split(".")
        forged = jwt.encode(dict(claims, sub="spiffe://example.org/evil"),
                            key, algorithm="ES256",
                            headers={"kid": "peer-1"}).split(".")
        spliced = ".".join([parts[0], forged[1], parts[2]])
        rc, out = self.verify(spliced, "x")
        self.assertEqual((rc, out), (1, "ERROR token signature does not verify"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
