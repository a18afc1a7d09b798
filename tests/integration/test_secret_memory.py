"""SVID private keys must not outlive their use in the agent's memory.

A real server and agent; an entry for root; the workload's X.509-SVID key
is learnt from the Workload API (PKCS#8, parsed with `cryptography`).  The
agent's writable memory (heap and anonymous mappings, read from
/proc/<pid>/mem as root) is then searched before and after many fetches
over new connections (Python grpcio), once every connection is closed, for
two things:

- the key as a Workload API message carries it (the X509SVID field: tag,
  length, PKCS#8).  No such copy is live once the connections are closed:
  every one found is a message, output, accumulation or write buffer freed
  without wiping;
- its 32-byte EC private scalar.  The agent legitimately keeps one copy per
  entry holding the key (the PKCS#8 DER it serves); issuing the key may
  leave a few more (OpenSSL's own encoders), but fetching it must add none.

Built with AddressSanitizer, freed memory is quarantined rather than
reused, so leftovers pile up with every fetch; without it, freed chunks
are reused and the count stays flat, but the last fetches' copies remain.
Both checks hold for both builds once keys are wiped wherever they go.
"""
import os
import sys
import time
import unittest

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402

TD = H.TD
HDR = (("workload.spiffe.io", "true"),)
FETCHES = 50
# Mappings larger than this are sanitizer shadow or reserved address
# space, not where the agent's data lives.
MAX_REGION = 1 << 30
CHUNK = 1 << 20


def svids(msg):
    """{spiffe_id: PKCS#8 key DER} of an X509SVIDResponse."""
    out = {}
    for f, v in H.pb_fields(msg):
        if f == 1:
            d = dict(H.pb_fields(v))
            out[d[1].decode()] = d[3]
    return out


def regions(pid):
    """(start, end, name) of the writable private mappings that hold the
    agent's data: the heap and anonymous ones."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            name = parts[5].strip() if len(parts) > 5 else ""
            if not perms.startswith("rw") or perms[3] != "p":
                continue
            if name not in ("", "[heap]") and not name.startswith("[anon"):
                continue
            if end - start > MAX_REGION:
                continue
            out.append((start, end, name))
    return out


def find(pid, needle):
    """Addresses of needle in the agent's heap and anonymous memory."""
    hits = []
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, name in regions(pid):
            addr = start
            tail = b""
            while addr < end:
                n = min(CHUNK, end - addr)
                try:
                    mem.seek(addr)
                    data = mem.read(n)
                except OSError:
                    data = b""
                if not data:
                    tail = b""
                    addr += n
                    continue
                buf = tail + data
                base = addr - len(tail)
                i = buf.find(needle)
                while i >= 0:
                    hits.append(base + i)
                    i = buf.find(needle, i + 1)
                tail = buf[-(len(needle) - 1):]
                addr += len(data)
    return sorted(set(hits))


def open_sockets(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(
                    "socket:"):
                n += 1
        except OSError:
            pass
    return n


class SecretMemoryTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to read the agent's memory")
        cls.spiffe_id = "spiffe://%s/secret/root" % TD
        cls.srv, cls.bundle, cls.agent = H.server_and_agent(
            [(cls.spiffe_id, ["unix:uid:0"])])
        cls.target = "unix://" + cls.agent.sock

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.agent, cls.srv)

    def fetch(self):
        """One FetchX509SVID on a new connection; the first response's
        keys by SPIFFE ID (empty until the SVID is there)."""
        ident = lambda b: b  # noqa: E731
        with grpc.insecure_channel(self.target) as ch:
            call = ch.unary_stream("/SpiffeWorkloadAPI/FetchX509SVID",
                                   request_serializer=ident,
                                   response_deserializer=ident)
            stream = call(b"", metadata=HDR, timeout=10)
            try:
                return svids(next(stream))
            except grpc.RpcError:
                return {}
            finally:
                stream.cancel()

    def settle(self, sockets):
        """Until the agent has closed every workload connection."""
        deadline = time.monotonic() + 20
        while open_sockets(self.agent.proc.pid) > sockets:
            if time.monotonic() > deadline:
                self.fail("the agent kept workload connections open")
            time.sleep(0.05)
        time.sleep(0.3)

    def test_fetched_keys_do_not_linger(self):
        pid = self.agent.proc.pid
        sockets = open_sockets(pid)
        deadline = time.monotonic() + 60
        while True:
            keys = self.fetch()
            if self.spiffe_id in keys:
                break
            if time.monotonic() > deadline:
                self.fail("no SVID for %s" % self.spiffe_id)
            time.sleep(0.3)
        der = keys[self.spiffe_id]
        key = serialization.load_der_private_key(der, None)
        self.assertIsInstance(key, ec.EllipticCurvePrivateKey)
        size = (key.curve.key_size + 7) // 8
        scalar = key.private_numbers().private_value.to_bytes(size, "big")
        # The key as a Workload API message carries it: field 3 of
        # X509SVID, tag, length, PKCS#8.  No such copy is live once
        # every connection is closed.
        field = b"\x1a" + H.pb_varint(len(der)) + der
        self.settle(sockets)
        before = find(pid, scalar)
        for _ in range(FETCHES):
            self.assertEqual(self.fetch().get(self.spiffe_id), der)
        self.settle(sockets)
        after = find(pid, scalar)
        sent = find(pid, field)
        where = ", ".join("%#x" % a for a in after[:20])
        # The scanner works: the entry's own DER is there.
        self.assertGreaterEqual(len(after), 1, "the live key not found")
        self.assertEqual(
            len(sent), 0,
            "%d copies of the key as sent on the Workload API are left in "
            "the agent's memory after %d fetches over closed connections "
            "(the scalar at %s)" % (len(sent), FETCHES, where))
        self.assertLessEqual(
            len(after), len(before),
            "fetches left copies of the workload's private key in the "
            "agent's memory: %d after the first fetch, %d after %d more "
            "(at %s)" % (len(before), len(after), FETCHES, where))

if __name__ == "__main__":
    unittest.main(verbosity=2)
