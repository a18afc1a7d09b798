"""wick-agent with a server name that resolves to several addresses: it
tries them in turn until one answers (attestation included), and when the
server comes back on another of them the agent reconnects, syncs and keeps
minting SVIDs for a Python grpcio workload.

The name is real resolution: the agent runs in a private mount namespace
(unshare -m) whose /etc/hosts gives "wick-multi" two IPv4 loopback
addresses and ::1; the rest of the machine is untouched.
"""
import datetime
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402

TD = H.TD
NAME = "wick-multi"
HDR = H.WORKLOAD_HDR
STUBS = H.grpc_stubs("workload.proto")
import workload_pb2 as W  # noqa: E402
import workload_pb2_grpc as WG  # noqa: E402

HOSTS = """127.0.0.1 localhost
127.0.0.2 %(n)s
::1 %(n)s
127.0.0.3 %(n)s
""" % {"n": NAME}
# $0 is the hosts file; the rest is the command.
NS_SCRIPT = 'mount --bind "$0" /etc/hosts && exec "$@"'


def in_ns(hosts, args):
    return ["unshare", "-m", "sh", "-c", NS_SCRIPT, hosts] + list(args)


class NsAgent(H.AgentDaemon):
    """The harness's agent, run where NAME resolves to several addresses."""

    def __init__(self, server, bundle, hosts):
        super().__init__(server, bundle)
        self.hosts = hosts
        with open(self.conf) as f:
            conf = f.read()
        conf = conf.replace('server_address = "127.0.0.1"',
                            'server_address = "%s"' % NAME)
        with open(self.conf, "w") as f:
            f.write(conf)

    def spawn(self, args):
        super().spawn(in_ns(self.hosts, args))


def set_bind(srv, addr):
    with open(srv.conf) as f:
        conf = f.read()
    conf = re.sub(r'bind_address = "[^"]*"', 'bind_address = "%s"' % addr,
                  conf)
    with open(srv.conf, "w") as f:
        f.write(conf)


def target(addr, port):
    return "%s:%d" % (addr, port)


class Impostor:
    """A TLS server on addr:port presenting the server's SPIFFE ID under a
    CA of its own: the agent must refuse it and move on."""

    def __init__(self, tmp, addr, port):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imp")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName([
                    x509.UniformResourceIdentifier(
                        "spiffe://%s/spire/server" % TD)]), False)
                .sign(key, hashes.SHA256()))
        self.cert = os.path.join(tmp, "impostor.pem")
        self.key = os.path.join(tmp, "impostor.key")
        with open(self.cert, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(self.key, "wb") as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, self.key)
        self.ctx.set_alpn_protocols(["h2"])
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as t:
                    t.recv(1)
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


class FailoverAddrsTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wick-failover-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.hosts = os.path.join(self.tmp, "hosts")
        with open(self.hosts, "w") as f:
            f.write(HOSTS)
        os.chmod(self.hosts, 0o644)
        # The order getaddrinfo gives in that namespace (RFC 6724).
        out = subprocess.run(in_ns(self.hosts, ["getent", "ahosts", NAME]),
                             capture_output=True, text=True, check=True,
                             timeout=30).stdout
        self.order = []
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 2 and f[1] == "STREAM" and f[0] not in self.order:
                self.order.append(f[0])
        self.assertEqual(sorted(self.order),
                         sorted(["127.0.0.2", "127.0.0.3", "::1"]), out)

    def fetch(self, sock):
        with grpc.insecure_channel("unix://" + sock) as ch:
            stub = WG.SpiffeWorkloadAPIStub(ch)
            try:
                st = stub.FetchX509SVID(W.X509SVIDRequest(), metadata=HDR,
                                        timeout=5)
                r = next(st)
                st.cancel()
                return r
            except grpc.RpcError:
                return None

    def wait_svid(self, agent, spiffe_id, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.fetch(agent.sock)
            if r is not None and any(s.spiffe_id == spiffe_id
                                     for s in r.svids):
                return r
            time.sleep(0.3)
        self.fail("no SVID for %s within %ds:\n%s" %
                  (spiffe_id, timeout, agent.all_output()[-6000:]))

    def test_tries_each_address_and_follows_the_server(self):
        port = H.free_port()
        first, last = self.order[0], self.order[-1]
        # The server only on the last address: the agent must fall through
        # the others, its attestation included.
        srv = H.Server(port=port)
        set_bind(srv, last)
        srv.start()
        self.addCleanup(srv.stop)
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        agent_id = H.agent_spiffe_id(tok)
        uid = os.getuid()
        srv.create_entry("spiffe://%s/workload/one" % TD, agent_id,
                         ["unix:uid:%d" % uid])
        agent = NsAgent(srv, bundle, self.hosts)
        self.addCleanup(agent.stop)
        agent.start(token=tok, timeout=90)
        self.wait_svid(agent, "spiffe://%s/workload/one" % TD)
        out = agent.output()
        self.assertIn("node attestation succeeded", out)
        self.assertIn("cannot reach the server at %s" %
                      target(first, port), out)
        self.assertIn("trying %s" % target(last, port), out)
        self.assertIn("connected to %s" % target(last, port), out)

        # The server comes back on another address (same data: same CA,
        # same agent): the agent reconnects there, syncs a new entry and
        # mints its SVID; the old one is served throughout.
        srv.stop()
        set_bind(srv, first)
        mark = len(agent.output())
        srv.start()
        srv.create_entry("spiffe://%s/workload/two" % TD, agent_id,
                         ["unix:uid:%d" % uid])
        r = self.wait_svid(agent, "spiffe://%s/workload/two" % TD, 90)
        self.assertIn("spiffe://%s/workload/one" % TD,
                      [s.spiffe_id for s in r.svids])
        after = agent.output()[mark:]
        # The dropped connection moves on to the next address, which
        # answers at once (the order wraps around to the first).
        self.assertRegex(after, r"(trying|connecting to) %s\b" %
                         re.escape(target(first, port)))
        self.assertIsNone(H.sanitizer_report(agent.all_output()))

        # A restart with the stored SVID (no token) while the server is
        # back on the last address and the first one answers TLS with the
        # server's SPIFFE ID under another CA: the agent refuses that one,
        # falls through and syncs with the real server.
        self.assertEqual(agent.stop(), 0)
        srv.stop()
        set_bind(srv, last)
        srv.start()
        imp = Impostor(self.tmp, first, port)
        self.addCleanup(imp.close)
        mark = len(agent.all_output())
        agent.start(timeout=90)
        srv.create_entry("spiffe://%s/workload/three" % TD, agent_id,
                         ["unix:uid:%d" % uid])
        self.wait_svid(agent, "spiffe://%s/workload/three" % TD, 90)
        self.assertGreaterEqual(imp.accepted, 1)
        after = agent.all_output()[mark:]
        self.assertRegex(after, r"cannot reach the server at %s: TLS" %
                         re.escape(target(first, port)))
        H.stop_cleanly(agent, srv)


if __name__ == "__main__":
    unittest.main(verbosity=2)
