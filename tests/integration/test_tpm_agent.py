"""The agent's side of TPM node attestation, driven from outside against
real swtpm instances (fixtures A, B under CA-1 and C under CA-2, see
swtpm.py):

* `wick-agent tpm pubhash` equals the hash openssl computes from the EK
  certificate swtpm_setup wrote (the command line of specs/tpm.md), and
  differs between TPMs;
* attestations by `wick-testtpm attest` (the agent's na_tpm steps) answer
  a server written here in Python from the TPM specification alone:
  software MakeCredential (RSA-OAEP seed, KDFa, AES-CFB, HMAC) to the AK
  name, and quote verification with `cryptography` (ECDSA signature,
  magic, type, extraData = SHA-256(nonce || CSR key), selection, PCR
  digest); tampered or misdirected challenges fail with the TPM's reason;
  a PCR extend changes the quoted value as the TPM defines it;
* nothing is left in the TPM afterwards.

TSS2_LOG=all+none keeps ESYS from logging the TPM errors provoked here
(specs/tpm.md P8).  A missing swtpm fails the test.
"""
import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import \
    encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
try:    # newer cryptography keeps CFB among its "decrepit" modes
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:
    from cryptography.hazmat.primitives.ciphers.modes import CFB

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import swtpm  # noqa: E402

AGENT = os.environ.get("WICK_AGENT")
TESTTPM = os.environ.get("WICK_TESTTPM")
ENV = swtpm.quiet_tss_env()

TPM_ALG_RSA, TPM_ALG_ECC, TPM_ALG_NULL = 0x0001, 0x0023, 0x0010
TPM_ALG_SHA256, TPM_ALG_ECDSA = 0x000b, 0x0018
FIXEDTPM, FIXEDPARENT, SDO = 0x2, 0x10, 0x20
USERWITHAUTH, ADMINWITHPOLICY, NODA = 0x40, 0x80, 0x400
RESTRICTED, DECRYPT, SIGN = 0x10000, 0x20000, 0x40000
AK_ATTRS = FIXEDTPM | FIXEDPARENT | SDO | USERWITHAUTH | NODA | \
    RESTRICTED | SIGN
EK_ATTRS = FIXEDTPM | FIXEDPARENT | SDO | ADMINWITHPOLICY | RESTRICTED | \
    DECRYPT
PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 16]


# ---- TPM structures, parsed here from the specification ------------------

class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        if self.o + n > len(self.b):
            raise ValueError("truncated")
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def tpm2b(self):
        return self.take(self.u16())

    def done(self):
        if self.o != len(self.b):
            raise ValueError("%d trailing bytes" % (len(self.b) - self.o))


def parse_public(b):
    """TPM2B_PUBLIC -> dict, with the TPMT_PUBLIC bytes for the name."""
    r = Reader(b)
    inner = r.tpm2b()
    r.done()
    r = Reader(inner)
    p = {"tpmt": inner, "type": r.u16(), "name_alg": r.u16(),
         "attrs": r.u32(), "policy": r.tpm2b()}
    sym = r.u16()
    if sym != TPM_ALG_NULL:
        p["sym"] = (sym, r.u16(), r.u16())
    p["scheme"] = r.u16()
    if p["scheme"] != TPM_ALG_NULL:
        p["scheme_hash"] = r.u16()
    if p["type"] == TPM_ALG_RSA:
        p["bits"], p["exponent"] = r.u16(), r.u32()
        p["n"] = r.tpm2b()
    elif p["type"] == TPM_ALG_ECC:
        p["curve"] = r.u16()
        kdf = r.u16()
        if kdf != TPM_ALG_NULL:
            r.u16()
        p["x"], p["y"] = r.tpm2b(), r.tpm2b()
    r.done()
    return p


def name_of(pub):
    return struct.pack(">H", TPM_ALG_SHA256) + \
        hashlib.sha256(pub["tpmt"]).digest()


def parse_attest(b):
    """TPM2B_ATTEST of a quote -> dict (and the signed bytes)."""
    r = Reader(b)
    data = r.tpm2b()
    r.done()
    r = Reader(data)
    a = {"data": data, "magic": r.u32(), "type": r.u16(),
         "signer": r.tpm2b(), "extra": r.tpm2b(), "clock": r.u64(),
         "reset": r.u32(), "restart": r.u32(), "safe": r.u8(),
         "firmware": r.u64()}
    sel = []
    for _ in range(r.u32()):
        h, n = r.u16(), r.u8()
        sel.append((h, r.take(n)))
    a["select"], a["pcr_digest"] = sel, r.tpm2b()
    r.done()
    return a


def parse_ecdsa_sig(b):
    r = Reader(b)
    alg, h = r.u16(), r.u16()
    sr, ss = r.tpm2b(), r.tpm2b()
    r.done()
    if alg != TPM_ALG_ECDSA or h != TPM_ALG_SHA256:
        raise ValueError("not ECDSA-SHA256")
    return encode_dss_signature(int.from_bytes(sr, "big"),
                                int.from_bytes(ss, "big"))


# ---- a software server ---------------------------------------------------

def kdfa(key, label, u, v, bits):
    out, i = b"", 1
    while len(out) * 8 < bits:
        out += hmac.new(key, struct.pack(">I", i) + label + b"\0" + u + v +
                        struct.pack(">I", bits), hashlib.sha256).digest()
        i += 1
    return out[:bits // 8]


def make_credential(ek, name, credential):
    """TPM2_MakeCredential in software for an RSA EK (specs/tpm.md 3.2):
    returns (TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET)."""
    seed = os.urandom(32)
    key = rsa.RSAPublicNumbers(ek["exponent"] or 65537,
                               int.from_bytes(ek["n"], "big")).public_key()
    enc = key.encrypt(seed, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                         algorithm=hashes.SHA256(),
                                         label=b"IDENTITY\0"))
    sym = kdfa(seed, b"STORAGE", name, b"", 128)
    e = Cipher(algorithms.AES(sym), CFB(b"\0" * 16)).encryptor()
    ident = e.update(struct.pack(">H", len(credential)) + credential) + \
        e.finalize()
    hkey = kdfa(seed, b"INTEGRITY", b"", b"", 256)
    outer = hmac.new(hkey, ident + name, hashlib.sha256).digest()
    blob = struct.pack(">H", 32) + outer + ident
    return (struct.pack(">H", len(blob)) + blob,
            struct.pack(">H", len(enc)) + enc)


def pcr_select(pcrs):
    bits = bytearray(3)
    for p in pcrs:
        bits[p // 8] |= 1 << (p % 8)
    return [(TPM_ALG_SHA256, bytes(bits))]


# ---- running the tools ---------------------------------------------------

def run(args, check=True):
    r = subprocess.run(args, env=ENV, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (
            " ".join(args), r.returncode, r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace")))
    return r


def testtpm(tpm, *args):
    r = run([TESTTPM, args[0], "-tcti", tpm.tcti] + list(args[1:]))
    return json.loads(r.stdout)


def openssl_pubhash(pem):
    """The command line of specs/tpm.md, verbatim."""
    r = subprocess.run(
        "openssl x509 -in '%s' -pubkey -noout | "
        "openssl pkey -pubin -outform der | sha256sum" % pem,
        shell=True, stdout=subprocess.PIPE, check=True, timeout=30)
    return r.stdout.split()[0].decode()


class Attestation:
    """One `wick-testtpm attest` process: identity out, challenge in,
    answer out."""

    def __init__(self, tpm, unrestricted=False, identity_only=False):
        args = [TESTTPM, "identity" if identity_only else "attest",
                "-tcti", tpm.tcti]
        if unrestricted:
            args.append("-unrestricted")
        self.p = subprocess.Popen(args, env=ENV, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        line = self.p.stdout.readline()
        if not line:
            self.finish()
            raise AssertionError("no identity: %s" % self.err)
        self.identity = {k: bytes.fromhex(v) if k != "pub_hash" else v
                         for k, v in json.loads(line).items()}
        self.ek = parse_public(self.identity["ek_pub"])
        self.ak = parse_public(self.identity["ak_pub"])

    def answer(self, challenge):
        msg = {k: v.hex() if isinstance(v, bytes) else v
               for k, v in challenge.items()}
        self.p.stdin.write(json.dumps(msg).encode() + b"\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        self.finish()
        out = json.loads(line)
        if "error" in out:
            return out
        out["pcr_values"] = [bytes.fromhex(v) for v in out["pcr_values"]]
        for k in ("secret", "quote", "signature"):
            out[k] = bytes.fromhex(out[k])
        return out

    def finish(self):
        self.p.stdin.close()
        self.err = self.p.stderr.read().decode(errors="replace")
        self.rc = self.p.wait(timeout=60)
        self.p.stdout.close()
        self.p.stderr.close()


def new_csr_key():
    k = ec.generate_private_key(ec.SECP256R1())
    return k.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)


class TpmAgentTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not AGENT or not TESTTPM:
            raise SystemExit("set WICK_AGENT and WICK_TESTTPM")
        cls.fix = swtpm.fixtures()

    def setUp(self):
        self.tpms = []

    def tearDown(self):
        left = {}
        for t in self.tpms:
            # Nothing an attestation made may stay in the TPM (P4).
            try:
                if t.proc is not None:
                    left[t.template] = testtpm(t, "leftovers")
            finally:
                t.stop()
        for k, v in left.items():
            self.assertEqual(v, {"objects": 0, "sessions": 0}, k)

    def start(self, name):
        t = swtpm.Swtpm(name).start()
        self.tpms.append(t)
        return t

    # ---- tpm pubhash ----------------------------------------------------

    def pubhash(self, tpm):
        r = run([AGENT, "tpm", "pubhash", "-tcti", tpm.tcti])
        h = r.stdout.decode().strip()
        self.assertRegex(h, r"^[0-9a-f]{64}$")
        return h

    def test_pubhash_matches_openssl(self):
        seen = {}
        for name in ("A", "B", "C"):
            t = self.start(name)
            h = self.pubhash(t)
            self.assertEqual(h, openssl_pubhash(t.ek_cert_pem), name)
            seen[name] = h
        self.assertEqual(len(set(seen.values())), 3, seen)
        # Another instance of A's state: the same EK.
        self.assertEqual(self.pubhash(self.start("A")), seen["A"])

    def test_pubhash_cli_errors(self):
        r = run([AGENT, "tpm", "pubhash", "-tcti",
                 "swtpm:path=/nonexistent/tpm.sock"], check=False)
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        self.assertIn("cannot read the EK from the TPM at "
                      "swtpm:path=/nonexistent/tpm.sock: cannot connect "
                      "(/nonexistent/tpm.sock: No such file or directory)",
                      err)
        self.assertEqual(r.stdout, b"")
        r = run([AGENT, "tpm", "pubhash", "-tcti", "nosuchtcti"],
                check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nosuchtcti", r.stderr.decode())
        r = run([AGENT, "tpm", "pubhash", "-bogus"], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("-bogus", r.stderr.decode())
        self.assertIn("-tcti TCTI", r.stderr.decode())
        r = run([AGENT, "tpm", "pubhash", "-h"])
        self.assertIn("device:/dev/tpmrm0", r.stdout.decode())
        r = run([AGENT, "tpm"], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("pubhash", r.stderr.decode())
        r = run([AGENT, "tpm", "nothing"], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown command \"tpm nothing\"", r.stderr.decode())
        r = run([AGENT, "-h"])
        self.assertIn("tpm pubhash", r.stdout.decode())

    # ---- attestation ----------------------------------------------------

    def challenge(self, att, pcrs=PCRS, secret=None, name=None):
        secret = secret or os.urandom(32)
        blob, enc = make_credential(att.ek, name or name_of(att.ak), secret)
        return secret, {"credential_blob": blob, "encrypted_secret": enc,
                        "nonce": os.urandom(32), "pcrs": list(pcrs),
                        "csr_spki": new_csr_key()}

    def verify(self, att, ch, secret, resp, pcr_values=None):
        """What the server checks, done here from the specification."""
        self.assertNotIn("error", resp)
        self.assertEqual(resp["secret"], secret)
        a = parse_attest(resp["quote"])
        pub = ec.EllipticCurvePublicNumbers(
            int.from_bytes(att.ak["x"], "big"),
            int.from_bytes(att.ak["y"], "big"),
            ec.SECP256R1()).public_key()
        pub.verify(parse_ecdsa_sig(resp["signature"]), a["data"],
                   ec.ECDSA(hashes.SHA256()))
        self.assertEqual(a["magic"], 0xff544347)
        self.assertEqual(a["type"], 0x8018)
        # (qualifiedSigner is the AK's qualified name, which depends on
        # its parent: nothing a server can check.)
        self.assertEqual(a["extra"], hashlib.sha256(
            ch["nonce"] + ch["csr_spki"]).digest())
        self.assertEqual(a["select"], pcr_select(ch["pcrs"]))
        self.assertEqual(len(resp["pcr_values"]), len(ch["pcrs"]))
        self.assertEqual(a["pcr_digest"], hashlib.sha256(
            b"".join(resp["pcr_values"])).digest())
        if pcr_values is not None:
            self.assertEqual(resp["pcr_values"],
                             [pcr_values[i] for i in ch["pcrs"]])
        return a

    def read_pcrs(self, tpm, pcrs=PCRS):
        return {i: bytes.fromhex(testtpm(tpm, "read", "-pcr",
                                         str(i))["value"])
                for i in pcrs}

    def test_identity_and_chain(self):
        t = self.start("A")
        att = Attestation(t, identity_only=True)
        att.finish()
        self.assertEqual(att.rc, 0, att.err)
        ident = att.identity
        with open(t.ek_cert_der, "rb") as f:
            self.assertEqual(ident["ek_cert"], f.read())
        cert = x509.load_der_x509_certificate(ident["ek_cert"])
        nums = cert.public_key().public_numbers()
        self.assertEqual(att.ek["type"], TPM_ALG_RSA)
        self.assertEqual(att.ek["attrs"], EK_ATTRS)
        self.assertEqual(int.from_bytes(att.ek["n"], "big"), nums.n)
        self.assertEqual(att.ek["exponent"] or 65537, nums.e)
        self.assertEqual(att.ak["type"], TPM_ALG_ECC)
        self.assertEqual(att.ak["attrs"], AK_ATTRS)
        self.assertEqual(att.ak["scheme"], TPM_ALG_ECDSA)
        self.assertEqual(att.ak["scheme_hash"], TPM_ALG_SHA256)
        self.assertEqual(ident["pub_hash"], openssl_pubhash(t.ek_cert_pem))
        # The chain: CA-1 signed A's EK certificate, CA-2 did not.
        with tempfile.NamedTemporaryFile(suffix=".pem") as pem:
            pem.write(cert.public_bytes(serialization.Encoding.PEM))
            pem.flush()
            for ca, ok in (("ca1", True), ("ca2", False)):
                c = self.fix["cas"][ca]
                r = subprocess.run(["openssl", "verify", "-CAfile",
                                    c["root"], "-untrusted",
                                    c["intermediate"], pem.name],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=30)
                self.assertEqual(r.returncode == 0, ok,
                                 r.stdout.decode(errors="replace"))

    def test_attest(self):
        t = self.start("A")
        before = self.read_pcrs(t)
        att = Attestation(t)
        secret, ch = self.challenge(att)
        resp = att.answer(ch)
        self.assertEqual(att.rc, 0, att.err)
        self.verify(att, ch, secret, resp, before)

    def test_attest_no_pcrs(self):
        t = self.start("B")
        att = Attestation(t)
        secret, ch = self.challenge(att, pcrs=[])
        resp = att.answer(ch)
        self.assertEqual(att.rc, 0, att.err)
        a = self.verify(att, ch, secret, resp)
        self.assertEqual(a["select"], [(TPM_ALG_SHA256, b"\0\0\0")])
        self.assertEqual(a["pcr_digest"], hashlib.sha256(b"").digest())

    def test_pcr_extend_changes_quote(self):
        t = self.start("A")
        old = self.read_pcrs(t)[16]
        new = bytes.fromhex(testtpm(t, "extend", "-pcr", "16", "-data",
                                    "node-config-2")["value"])
        self.assertEqual(new, hashlib.sha256(
            old + hashlib.sha256(b"node-config-2").digest()).digest())
        after = self.read_pcrs(t)
        att = Attestation(t)
        secret, ch = self.challenge(att)
        resp = att.answer(ch)
        self.verify(att, ch, secret, resp, after)
        self.assertEqual(resp["pcr_values"][PCRS.index(16)], new)

    def test_tampered_blob(self):
        t = self.start("A")
        att = Attestation(t)
        secret, ch = self.challenge(att)
        blob = bytearray(ch["credential_blob"])
        blob[-1] ^= 1
        ch["credential_blob"] = bytes(blob)
        resp = att.answer(ch)
        self.assertEqual(att.rc, 1)
        self.assertEqual(resp["code"], "protocol error")  # WICK_ERR_PROTOCOL
        self.assertIn("ActivateCredential", resp["error"])
        self.assertIn("integrity check failed", resp["error"])

    def test_credential_for_another_ak(self):
        t = self.start("A")
        att = Attestation(t)
        other = name_of(att.ak)[:-1] + bytes([name_of(att.ak)[-1] ^ 1])
        secret, ch = self.challenge(att, name=other)
        resp = att.answer(ch)
        self.assertEqual(att.rc, 1)
        self.assertIn("integrity check failed", resp["error"])

    def test_credential_for_another_ek(self):
        b = self.start("B")
        other = Attestation(b, identity_only=True)
        other.finish()
        self.assertEqual(other.rc, 0, other.err)
        t = self.start("A")
        att = Attestation(t)
        secret, ch = self.challenge(att)
        ch["credential_blob"], ch["encrypted_secret"] = make_credential(
            other.ek, name_of(att.ak), secret)
        resp = att.answer(ch)
        self.assertEqual(att.rc, 1)
        self.assertIn("ActivateCredential", resp["error"])

    def test_malformed_challenge(self):
        t = self.start("A")
        att = Attestation(t)
        secret, ch = self.challenge(att, pcrs=[16, 3])
        resp = att.answer(ch)
        self.assertEqual(att.rc, 1)
        self.assertIn("ascending", resp["error"])
        att = Attestation(t)
        secret, ch = self.challenge(att)
        ch["credential_blob"] += b"\0"
        resp = att.answer(ch)
        self.assertEqual(att.rc, 1)
        self.assertIn("TPM2B_ID_OBJECT", resp["error"])

    def test_tpm_gone(self):
        """The TPM disappears between identity and challenge: an error
        that says so, no hang, no crash."""
        t = self.start("A")
        att = Attestation(t)
        t.stop()
        secret, ch = self.challenge(att)
        resp = att.answer(ch)
        self.assertEqual(att.rc, 1, att.err)
        self.assertIn("tcti:", resp["error"])

    def test_unrestricted_ak(self):
        """The test switch: an AK the server must refuse (it still
        quotes; only the attributes tell)."""
        t = self.start("C")
        att = Attestation(t, unrestricted=True)
        self.assertEqual(att.ak["attrs"], AK_ATTRS & ~RESTRICTED)
        secret, ch = self.challenge(att)
        resp = att.answer(ch)
        self.verify(att, ch, secret, resp)

    def test_two_tpms_two_eks(self):
        hashes_ = set()
        for name in ("A", "B", "C"):
            att = Attestation(self.start(name), identity_only=True)
            att.finish()
            self.assertEqual(att.rc, 0, att.err)
            hashes_.add(att.identity["pub_hash"])
        self.assertEqual(len(hashes_), 3)

    def test_zz_timings(self):
        """Not a check: the agent-side cost of one attestation on swtpm,
        for the record (specs/tpm.md 3.3)."""
        t = self.start("A")
        runs = [testtpm(t, "selftest")["ms"] for _ in range(5)]
        keys = ("open", "identity", "answer", "close", "agent_total")
        sys.stderr.write("\nagent-side ms on swtpm (5 runs, min/median/max):"
                         "\n")
        for k in keys:
            v = sorted(r[k] for r in runs)
            sys.stderr.write("  %-12s %7.1f %7.1f %7.1f\n" %
                             (k, v[0], v[2], v[-1]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
