"""TPM node attestation end to end: a real wick-server with NodeAttestor
"tpm", real wick-agents on software TPMs (swtpm, manufactured once per run
by the tpm_manufacture fixture), and hostile attestations driven from
here with the agent's own TPM steps (wick-testtpm) over raw gRPC.

Fixtures: TPMs A and B have EK certificates signed by CA-1, C by CA-2.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import unittest

import grpc
import h2.config
import h2.connection
import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402
import swtpm  # noqa: E402

TD = H.TD
HDR = (("workload.spiffe.io", "true"),)
H.grpc_stubs("workload.proto", "agent.proto", "tpm.proto", "types.proto")
import workload_pb2 as W  # noqa: E402
import workload_pb2_grpc as WG  # noqa: E402
import agent_pb2 as AP  # noqa: E402
import tpm_pb2 as TP  # noqa: E402

TESTTPM = os.environ.get("WICK_TESTTPM")
ENV = swtpm.quiet_tss_env()
os.environ.update(ENV)      # the daemons too: no ESYS chatter


def testtpm(tpm, *args):
    r = subprocess.run([TESTTPM, args[0], "-tcti", tpm.tcti] +
                       list(args[1:]), env=ENV, capture_output=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError("wick-testtpm %s: %s%s" % (
            args[0], r.stdout.decode(), r.stderr.decode()))
    return json.loads(r.stdout)


def pubhash(tpm):
    p = subprocess.run([H.AGENT, "tpm", "pubhash", "-tcti", tpm.tcti],
                       env=ENV, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


# ---- gRPC by hand: AttestAgent over TLS without a client certificate ------

class RawAttest:
    """One AttestAgent stream on its own TLS connection (the server's
    certificate is not checked here: what is tested is what the server
    accepts)."""

    def __init__(self, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        self.s = ctx.wrap_socket(socket.create_connection(
            ("127.0.0.1", port), timeout=30))
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.c.initiate_connection()
        self.sid = self.c.get_next_available_stream_id()
        self.c.send_headers(self.sid, [
            (":method", "POST"), (":scheme", "https"),
            (":path", "/wick.agent.Node/AttestAgent"),
            (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers")])
        self.flush()
        self.buf = b""
        self.status = None
        self.message = ""

    def flush(self):
        data = self.c.data_to_send()
        if data:
            self.s.sendall(data)

    def send(self, msg, end=False):
        body = msg.SerializeToString()
        self.c.send_data(self.sid, b"\0" + len(body).to_bytes(4, "big") +
                         body, end_stream=end)
        self.flush()

    def recv(self):
        """The next response message (AttestAgentResponse), or None once
        the call ended (self.status, self.message)."""
        while True:
            if len(self.buf) >= 5:
                n = int.from_bytes(self.buf[1:5], "big")
                if len(self.buf) >= 5 + n:
                    msg, self.buf = self.buf[5:5 + n], self.buf[5 + n:]
                    r = AP.AttestAgentResponse()
                    r.ParseFromString(msg)
                    return r
            if self.status is not None:
                return None
            data = self.s.recv(65536)
            if not data:
                self.status = self.status if self.status is not None else -1
                return None
            for ev in self.c.receive_data(data):
                if isinstance(ev, h2.events.DataReceived):
                    self.buf += ev.data
                    self.c.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.TrailersReceived,
                                     h2.events.ResponseReceived)):
                    hd = dict(ev.headers)
                    if "grpc-status" in hd:
                        self.status = int(hd["grpc-status"])
                        self.message = hd.get("grpc-message", "")
                elif isinstance(ev, h2.events.StreamReset):
                    # After the trailers the server resets the stream we
                    # left open (NO_ERROR): the status stands.
                    if self.status is None:
                        self.status = -1
            self.flush()

    def close(self):
        self.s.close()


def csr_and_spki():
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node")])).sign(
        key, hashes.SHA256())
    return (csr.public_bytes(serialization.Encoding.DER),
            key.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo))


class Identity:
    """The agent's TPM steps, run by wick-testtpm attest: the identity
    at once, the answer to a challenge later."""

    def __init__(self, tpm, unrestricted=False):
        args = [TESTTPM, "attest", "-tcti", tpm.tcti]
        if unrestricted:
            args.append("-unrestricted")
        self.p = subprocess.Popen(args, env=ENV, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        ident = json.loads(self.p.stdout.readline())
        self.ek_cert = bytes.fromhex(ident["ek_cert"])
        self.ek_pub = bytes.fromhex(ident["ek_pub"])
        self.ak_pub = bytes.fromhex(ident["ak_pub"])

    def answer(self, ch, spki):
        self.p.stdin.write(json.dumps({
            "credential_blob": ch.credential_blob.hex(),
            "encrypted_secret": ch.encrypted_secret.hex(),
            "nonce": ch.nonce.hex(), "pcrs": list(ch.pcrs),
            "csr_spki": spki.hex()}) + "\n")
        self.p.stdin.flush()
        out = json.loads(self.p.stdout.readline())
        self.close()
        return out

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(timeout=60)
        self.p.stdout.close()
        self.p.stderr.close()


class TpmTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not TESTTPM:
            raise SystemExit("set WICK_TESTTPM")
        fix = swtpm.fixtures()
        cls.cas = fix["cas"]
        cls.tmp = H.tempfile.mkdtemp(prefix="wick-tpmtest-")
        # ca_path: CA-1's root and intermediate; hash_path: empty for now.
        cls.ca_dir = os.path.join(cls.tmp, "cas")
        cls.hash_dir = os.path.join(cls.tmp, "hashes")
        os.makedirs(cls.ca_dir)
        os.makedirs(cls.hash_dir)
        for k in ("root", "intermediate"):
            shutil.copy(cls.cas["ca1"][k],
                        os.path.join(cls.ca_dir, "ca1-%s.pem" % k))
        cls.srv = H.Server(port=H.free_port(), plugins='''
    NodeAttestor "tpm" {
        plugin_data {
            ca_path = "%s"
            hash_path = "%s"
            pcrs = "sha256:0,16"
        }
    }''' % (cls.ca_dir, cls.hash_dir)).start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))
        cls.tpms = {}
        for name in ("A", "B", "C"):
            cls.tpms[name] = swtpm.Swtpm(name).start()
        cls.hash = {n: pubhash(t) for n, t in cls.tpms.items()}

    @classmethod
    def tearDownClass(cls):
        for t in cls.tpms.values():
            t.stop()
        H.stop_cleanly(cls.srv)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        # Nothing an attestation made may stay in a TPM (no resource
        # manager on swtpm).
        for n, t in self.tpms.items():
            self.assertEqual(testtpm(t, "leftovers"),
                             {"objects": 0, "sessions": 0}, n)

    def agent(self, name, pcrs=None):
        conf = 'NodeAttestor "tpm" { plugin_data { tcti = "%s"%s } }' % (
            self.tpms[name].tcti,
            ' pcrs = "%s"' % pcrs if pcrs else "")
        return H.AgentDaemon(self.srv, self.bundle, node_attestor=conf)

    def agent_id(self, name):
        return "spiffe://%s/spire/agent/tpm/%s" % (TD, self.hash[name])

    def agent_show(self, name):
        return self.srv.cli_json("agent", "show", "-spiffeID",
                                 self.agent_id(name))

    def selectors(self, name):
        got = self.agent_show(name)
        return {"%s:%s" % (s["type"], s["value"])
                for s in got["selectors"]}

    def audit(self):
        return self.srv.output()

    # ---- the real agent --------------------------------------------------

    def test_trusted_chain(self):
        """A: its EK certificate chains to CA-1; the agent gets the ID
        of its EK hash and the server keeps its selectors."""
        a = self.agent("A").start()
        try:
            self.assertIn("node attestation succeeded: this agent is %s" %
                          self.agent_id("A"), a.output())
        finally:
            H.stop_cleanly(a)
        sel = self.selectors("A")
        self.assertIn("tpm:pub_hash:" + self.hash["A"], sel)
        self.assertIn("tpm:ek_cert:issuer:cn:swtpm-localca", sel)
        self.assertIn("tpm:manufacturer:id:00001014", sel)
        fps = set()
        for k in ("root", "intermediate"):
            with open(self.cas["ca1"][k], "rb") as f:
                c = x509.load_pem_x509_certificate(f.read())
            fps.add("tpm:ek_cert:ca:fingerprint:" +
                    c.fingerprint(hashes.SHA256()).hex())
        self.assertLessEqual(fps, sel)
        self.assertIn("tpm:pcr:sha256:0:" + "00" * 32, sel)
        self.assertTrue(any(s.startswith("tpm:pcr:sha256:16:")
                            for s in sel), sel)

    def test_untrusted_chain_refused(self):
        """C's EK certificate is from CA-2, which the server does not
        trust, and its hash is not allow-listed: refused, and the agent
        says why and stops."""
        a = self.agent("C").start(wait=False)
        rc = a.proc.wait(timeout=60)
        out = a.output()
        a.stop()
        self.assertEqual(rc, 1, out)
        self.assertIn("node attestation (tpm) failed", out)
        self.assertRegex(out, "PERMISSION_DENIED")
        self.assertIn('"pub_hash":"%s"' % self.hash["C"], self.audit())

    def test_allow_listed_hash(self):
        """C again, its hash now in hash_path: accepted, without the
        certificate's selectors."""
        path = os.path.join(self.hash_dir, self.hash["C"])
        open(path, "w").close()
        try:
            a = self.agent("C").start()
            H.stop_cleanly(a)
        finally:
            os.unlink(path)
        sel = self.selectors("C")
        self.assertIn("tpm:pub_hash:" + self.hash["C"], sel)
        self.assertFalse(any(s.startswith("tpm:ek_cert:") for s in sel),
                         sel)

    def test_reattestation_same_id_and_pcr_change(self):
        """B attests, then again after its PCR 16 changed (and its SVID
        was deleted): the same ID, one node record, and the PCR 16
        selector follows the new value."""
        a = self.agent("B", pcrs="sha256:16").start()
        H.stop_cleanly(a)
        before = self.selectors("B")
        new = testtpm(self.tpms["B"], "extend", "-pcr", "16", "-data",
                      "changed")
        shutil.rmtree(a.data)
        a2 = self.agent("B", pcrs="sha256:16").start()
        try:
            self.assertIn(self.agent_id("B"), a2.output())
        finally:
            H.stop_cleanly(a2)
        after = self.selectors("B")
        self.assertNotEqual(before, after)
        self.assertIn("tpm:pcr:sha256:16:" + new["value"], after)
        agents = self.srv.cli_json("agent", "list")["agents"]
        self.assertEqual(sum(1 for x in agents if x["spiffe_id"] ==
                             self.agent_id("B")), 1, agents)
        self.assertIn('"reattested":true', self.audit())

    def test_evicted_agent_attests_again(self):
        """Evicted, a TPM agent proves its node again by itself (a join
        token agent would stop): same ID, and it goes on serving."""
        a = self.agent("A").start()
        try:
            self.srv.cli("agent", "evict", "-spiffeID", self.agent_id("A"))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and a.output().count(
                    "node attestation succeeded") < 2:
                time.sleep(0.2)
            out = a.output()
            self.assertIn("attesting again with the TPM", out)
            self.assertEqual(out.count("node attestation succeeded: this "
                                       "agent is " + self.agent_id("A")), 2,
                             out)
            self.assertIsNone(a.proc.poll(), out)
        finally:
            H.stop_cleanly(a)
        self.assertEqual(self.agent_show("A")["spiffe_id"],
                         self.agent_id("A"))

    def test_two_tpms_two_ids(self):
        self.assertNotEqual(self.hash["A"], self.hash["B"])
        a = self.agent("A").start()
        b = self.agent("B").start()
        try:
            self.assertIn(self.agent_id("A"), a.output())
            self.assertIn(self.agent_id("B"), b.output())
        finally:
            H.stop_cleanly(a, b)

    def test_workload_through_node_alias(self):
        """A node alias entry on tpm:pub_hash gives a workload on that
        node its identity without knowing the agent's ID beforehand;
        Python grpcio fetches it."""
        alias = "spiffe://%s/node/tpm-a" % TD
        self.srv.cli("entry", "create", "-node", "-spiffeID", alias,
                     "-selector", "tpm:pub_hash:" + self.hash["A"])
        wid = "spiffe://%s/tpm-a/workload" % TD
        self.srv.create_entry(wid, alias, ["unix:uid:%d" % os.getuid()])
        a = self.agent("A").start()
        try:
            deadline = time.monotonic() + 30
            ids = []
            while time.monotonic() < deadline:
                with grpc.insecure_channel("unix://" + a.sock) as ch:
                    try:
                        r = next(WG.SpiffeWorkloadAPIStub(ch).FetchX509SVID(
                            W.X509SVIDRequest(), metadata=HDR, timeout=5))
                        ids = [s.spiffe_id for s in r.svids]
                        if wid in ids:
                            break
                    except grpc.RpcError:
                        pass
                time.sleep(0.3)
            self.assertIn(wid, ids)
        finally:
            H.stop_cleanly(a)

    # ---- hostile attestations -------------------------------------------

    def attest_raw(self, name, tamper=None, unrestricted=False,
                   spki_for_quote=None):
        """One attestation of TPM name driven from here; tamper(answer)
        may change the TpmChallengeResponse before it is sent.  Returns
        (status, message) of the call."""
        ident = Identity(self.tpms[name], unrestricted=unrestricted)
        csr, spki = csr_and_spki()
        call = RawAttest(self.srv.port)
        try:
            req = AP.AttestAgentRequest()
            req.params.data.type = "tpm"
            req.params.data.payload = TP.TpmAttestation(
                ek_cert=ident.ek_cert, ek_pub=ident.ek_pub,
                ak_pub=ident.ak_pub).SerializeToString()
            req.params.csr = csr
            call.send(req)
            resp = call.recv()
            if resp is None:
                ident.close()
                return call.status, call.message
            ch = TP.TpmChallenge()
            ch.ParseFromString(resp.challenge)
            ans = ident.answer(ch, spki_for_quote or spki)
            cr = TP.TpmChallengeResponse(
                secret=bytes.fromhex(ans["secret"]),
                quote=bytes.fromhex(ans["quote"]),
                signature=bytes.fromhex(ans["signature"]),
                pcr_values=[bytes.fromhex(v) for v in ans["pcr_values"]])
            if tamper is not None:
                tamper(cr)
            call.send(AP.AttestAgentRequest(
                challenge_response=cr.SerializeToString()), end=True)
            while call.recv() is not None:
                pass
            return call.status, call.message
        finally:
            call.close()

    def test_raw_attestation_succeeds(self):
        """The control: the same exchange, untouched, is accepted."""
        self.assertEqual(self.attest_raw("A")[0], 0)

    def test_wrong_secret(self):
        def flip(cr):
            cr.secret = bytes([cr.secret[0] ^ 1]) + cr.secret[1:]
        st, msg = self.attest_raw("A", flip)
        self.assertEqual(st, 7, msg)
        self.assertIn("secret", msg)

    def test_tampered_quote(self):
        def flip(cr):
            q = bytearray(cr.quote)
            q[-1] ^= 1
            cr.quote = bytes(q)
        st, msg = self.attest_raw("A", flip)
        self.assertEqual(st, 7, msg)

    def test_wrong_pcr_value(self):
        def flip(cr):
            cr.pcr_values[0] = b"\x01" * 32
        st, msg = self.attest_raw("A", flip)
        self.assertEqual(st, 7, msg)
        self.assertIn("PCR", msg)

    def test_quote_for_another_key(self):
        """The quote binds the CSR's key: one made for another key (a
        replayed or relayed answer) is refused."""
        _, other = csr_and_spki()
        st, msg = self.attest_raw("A", spki_for_quote=other)
        self.assertEqual(st, 7, msg)

    def test_unrestricted_ak_refused_before_challenge(self):
        st, msg = self.attest_raw("A", unrestricted=True)
        self.assertNotEqual(st, 0)
        self.assertIn("restricted", msg)

    def test_garbage_payloads(self):
        """Truncated and hostile TPM structures: clear errors, the server
        lives."""
        ident = Identity(self.tpms["A"])
        ident.close()
        csr, _ = csr_and_spki()
        cases = [
            TP.TpmAttestation(ek_pub=ident.ek_pub[:-7],
                              ak_pub=ident.ak_pub),
            TP.TpmAttestation(ek_pub=ident.ak_pub, ak_pub=ident.ak_pub),
            TP.TpmAttestation(ek_pub=ident.ek_pub, ak_pub=ident.ek_pub),
            TP.TpmAttestation(ek_cert=b"\x30\x03\x02\x01\x01",
                              ek_pub=ident.ek_pub, ak_pub=ident.ak_pub),
            TP.TpmAttestation(ek_pub=ident.ek_pub, ak_pub=ident.ak_pub,
                              pcrs=[99]),
        ]
        for ta in cases:
            call = RawAttest(self.srv.port)
            try:
                req = AP.AttestAgentRequest()
                req.params.data.type = "tpm"
                req.params.data.payload = ta.SerializeToString()
                req.params.csr = csr
                call.send(req)
                self.assertIsNone(call.recv())
                self.assertIn(call.status, (3, 7), call.message)
                self.assertIn("failed to attest", call.message)
            finally:
                call.close()
        self.srv.cli("healthcheck")


if __name__ == "__main__":
    unittest.main(verbosity=2)
