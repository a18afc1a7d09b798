"""Python grpcio (gRPC C-core) against wick's gRPC server (wick-testsvc),
over a Unix socket and over TCP with mutual TLS 1.3.

Run: WICK_TESTSVC=... WICK_TESTCERTS=... /usr/bin/python3 test_echo_grpcio.py
"""
import os
import shutil
import sys
import threading
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_harness as H  # noqa: E402

SVC, CERTS = H.binaries()
TMP = H.new_tmpdir()
pb, pbg = H.load_stubs(TMP)
PKI = H.make_pki(CERTS, TMP)
LIMIT = 4 * 1024 * 1024


def tls_creds(prefix="client"):
    return grpc.ssl_channel_credentials(
        root_certificates=H.read_file(os.path.join(PKI, "ca.pem")),
        private_key=H.read_file(os.path.join(PKI, prefix + ".key")),
        certificate_chain=H.read_file(os.path.join(PKI, prefix + ".pem")))


class EchoCases:
    """Cases run once per transport; subclasses set up self.channel."""

    server = None

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc = cls.server.stop()
        report = cls.server.sanitizer_report()
        assert report is None, report
        assert rc == 0, "wick-testsvc exited %d: %s" % (rc, cls.server.errors())

    def stub(self):
        return pbg.EchoStub(self.channel)

    def stats(self):
        return self.stub().Stats(pb.StatsRequest(), timeout=5)

    def test_unary_echo_and_peer(self):
        r = self.stub().Unary(pb.EchoRequest(message="hello", payload=b"\x00\xff"),
                              timeout=5)
        self.assertEqual(r.message, "hello")
        self.assertEqual(r.payload, b"\x00\xff")
        self.assertEqual(r.peer, self.expected_peer)

    def test_every_status_round_trips(self):
        for code in grpc.StatusCode:
            if code == grpc.StatusCode.OK:
                continue
            num = code.value[0]
            msg = "status %d: 100%% nö\nline two \x01" % num
            with self.assertRaises(grpc.RpcError) as cm:
                self.stub().Unary(pb.EchoRequest(status=num, status_message=msg),
                                  timeout=5)
            self.assertEqual(cm.exception.code(), code)
            self.assertEqual(cm.exception.details(), msg)

    def test_metadata_headers_trailers(self):
        md = [("x-echo-plain", "value 1"), ("x-echo-trailer", "tail"),
              ("x-echo-blob-bin", b"\x00\x01\xfe\xff"), ("other", "seen")]
        r, call = self.stub().Unary.with_call(pb.EchoRequest(message="m"),
                                              metadata=md, timeout=5)
        hdrs = dict(call.initial_metadata())
        self.assertEqual(hdrs["x-echo-plain"], "value 1")
        self.assertEqual(hdrs["x-echo-blob-bin"], b"\x00\x01\xfe\xff")
        self.assertNotIn("other", hdrs)
        self.assertEqual(dict(call.trailing_metadata())["x-trailer"], "tail")
        self.assertEqual(r.metadata["other"], "seen")
        self.assertEqual(r.metadata["x-echo-plain"], "value 1")
        self.assertNotIn("x-echo-blob-bin", r.metadata)

    def test_deadline_seen_and_enforced(self):
        r = self.stub().Unary(pb.EchoRequest(message="d"), timeout=3.0)
        self.assertGreater(r.deadline_ms, 2000)
        self.assertLessEqual(r.deadline_ms, 3100)
        self.assertEqual(self.stub().Unary(pb.EchoRequest(), timeout=None)
                         .deadline_ms, 0)
        st = self.stats()
        before = st.deadlines_exceeded + st.calls_cancelled
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub().Unary(pb.EchoRequest(sleep_ms=3000), timeout=0.3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # The server ended the call too: by its own timer or by the
        # client's RST_STREAM, whichever came first (test_echo_hostile.py
        # checks the server's timer alone with a client that does not
        # enforce deadlines).
        for _ in range(50):
            st = self.stats()
            if st.deadlines_exceeded + st.calls_cancelled > before:
                break
            time.sleep(0.05)
        self.assertGreater(st.deadlines_exceeded + st.calls_cancelled, before)
        self.assertEqual(st.calls_active, 1)  # only this Stats call

    def test_client_cancel_is_seen(self):
        before = self.stats().calls_cancelled
        it = self.stub().ServerStream(pb.StreamRequest(count=1000, interval_ms=20),
                                      timeout=10)
        self.assertEqual(next(it).seq, 0)
        self.assertEqual(next(it).seq, 1)
        it.cancel()
        for _ in range(50):
            if self.stats().calls_cancelled > before:
                break
            time.sleep(0.05)
        self.assertGreater(self.stats().calls_cancelled, before)
        self.assertEqual(self.stub().Unary(pb.EchoRequest(message="after"),
                                           timeout=5).message, "after")

    def test_message_size_limit(self):
        # The request message is the protobuf: payload tag (1) + varint
        # length (4) + payload + reply_size tag and value (2); it must be
        # at most LIMIT bytes.
        just_under = LIMIT - 7
        r = self.stub().Unary(pb.EchoRequest(payload=b"u" * just_under,
                                             reply_size=16), timeout=10)
        self.assertEqual(len(r.payload), 16)
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub().Unary(pb.EchoRequest(payload=b"o" * (just_under + 1),
                                             reply_size=16), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("exceeds the limit", cm.exception.details())
        # A reply just under the client's own 4 MiB limit arrives.
        r = self.stub().Unary(pb.EchoRequest(reply_size=LIMIT - 64), timeout=10)
        self.assertEqual(len(r.payload), LIMIT - 64)

    def test_server_stream_1000(self):
        seqs = [m.seq for m in self.stub().ServerStream(
            pb.StreamRequest(count=1000, payload_size=100), timeout=10)]
        self.assertEqual(seqs, list(range(1000)))

    def test_server_stream_error_status(self):
        it = self.stub().ServerStream(pb.StreamRequest(
            count=3, status=9, status_message="after three"), timeout=5)
        got = []
        with self.assertRaises(grpc.RpcError) as cm:
            for m in it:
                got.append(m.seq)
        self.assertEqual(got, [0, 1, 2])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(cm.exception.details(), "after three")

    def test_bidi_ping_pong_100(self):
        replies = []
        cond = threading.Condition()

        def requests():
            for i in range(100):
                yield pb.EchoRequest(message="m%d" % i)
                with cond:
                    cond.wait_for(lambda: len(replies) > i, timeout=5)

        for r in self.stub().Bidi(requests(), timeout=20):
            with cond:
                replies.append(r)
                cond.notify_all()
        self.assertEqual([r.message for r in replies],
                         ["m%d" % i for i in range(100)])
        self.assertEqual([r.seq for r in replies], list(range(100)))

    def test_100_concurrent_streams(self):
        futures = [self.stub().ServerStream(
            pb.StreamRequest(count=5, interval_ms=100), timeout=20)
            for _ in range(100)]
        results = []

        def drain(it):
            results.append(sum(1 for _ in it))

        threads = [threading.Thread(target=drain, args=(f,)) for f in futures]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [5] * 100)

    def test_unknown_method(self):
        call = self.channel.unary_unary("/wick.test.Echo/Nope")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_compressed_request_refused(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub().Unary(pb.EchoRequest(message="z" * 1000), timeout=5,
                              compression=grpc.Compression.Gzip)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class UnixTest(EchoCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = H.Server(SVC, TMP)
        cls.channel = grpc.insecure_channel("unix://" + cls.server.sock)
        cls.expected_peer = "uid:%d" % os.getuid()


class TlsTest(EchoCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = H.Server(SVC, TMP, pki=PKI)
        cls.channel = grpc.secure_channel("localhost:%d" % cls.server.port,
                                          tls_creds())
        cls.expected_peer = "spiffe://example.org/client"

    def test_foreign_client_refused(self):
        ch = grpc.secure_channel("localhost:%d" % self.server.port,
                                 grpc.ssl_channel_credentials(
                                     root_certificates=H.read_file(
                                         os.path.join(PKI, "ca.pem")),
                                     private_key=H.read_file(
                                         os.path.join(PKI, "other-client.key")),
                                     certificate_chain=H.read_file(
                                         os.path.join(PKI, "other-client.pem"))))
        with self.assertRaises(grpc.RpcError) as cm:
            pbg.EchoStub(ch).Unary(pb.EchoRequest(), timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        ch.close()

    def test_client_without_certificate_refused(self):
        ch = grpc.secure_channel("localhost:%d" % self.server.port,
                                 grpc.ssl_channel_credentials(
                                     root_certificates=H.read_file(
                                         os.path.join(PKI, "ca.pem"))))
        with self.assertRaises(grpc.RpcError) as cm:
            pbg.EchoStub(ch).Unary(pb.EchoRequest(), timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        ch.close()


class ShutdownTest(unittest.TestCase):
    def test_graceful_shutdown_lets_open_calls_finish(self):
        srv = H.Server(SVC, TMP)
        ch = grpc.insecure_channel("unix://" + srv.sock)
        stub = pbg.EchoStub(ch)
        it = stub.ServerStream(pb.StreamRequest(count=10, interval_ms=100),
                               timeout=20)
        self.assertEqual(next(it).seq, 0)
        srv.proc.send_signal(15)
        rest = [m.seq for m in it]
        self.assertEqual(rest, list(range(1, 10)))
        self.assertEqual(it.code(), grpc.StatusCode.OK)
        rc = srv.proc.wait(timeout=10)
        self.assertEqual(rc, 0)
        self.assertFalse(os.path.exists(srv.sock) and
                         _connectable(srv.sock))
        with self.assertRaises(grpc.RpcError):
            stub.Unary(pb.EchoRequest(), timeout=1)
        ch.close()
        srv.stop()
        self.assertIsNone(srv.sanitizer_report())


def _connectable(path):
    import socket
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
