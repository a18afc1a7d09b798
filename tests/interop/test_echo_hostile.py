"""Hostile input against wick's gRPC server (wick-testsvc): the server
answers or drops the offending peer, keeps serving everyone else, stays
small, and exits cleanly with the sanitizers silent.

Raw HTTP/2 comes from the h2 package (python3-h2), which does not enforce
gRPC deadlines or message limits, so the server's own checks are what is
tested.

Run: WICK_TESTSVC=... WICK_TESTCERTS=... /usr/bin/python3 test_echo_hostile.py
"""
import os
import shutil
import socket
import ssl
import struct
import sys
import time
import unittest

import grpc
import h2.config
import h2.connection
import h2.events

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_harness as H  # noqa: E402

SVC, CERTS = H.binaries()
TMP = H.new_tmpdir()
pb, pbg = H.load_stubs(TMP)
PKI = H.make_pki(CERTS, TMP)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def grpc_frame(msg):
    return b"\x00" + struct.pack(">I", len(msg)) + msg


class RawH2:
    """A minimal HTTP/2 client on a Unix socket."""

    def __init__(self, path, window=65535):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(path)
        cfg = h2.config.H2Configuration(client_side=True,
                                        header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if window != 65535:
            self.conn.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def start(self, path, extra=()):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "http"), (":path", path),
                (":authority", "localhost"),
                ("content-type", "application/grpc"), ("te", "trailers")]
        self.conn.send_headers(sid, hdrs + list(extra))
        self.flush()
        return sid

    def events_until_end(self, sid, timeout=10):
        """Collect headers/trailers of a stream until it ends or resets."""
        headers = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return headers, "closed"
            for ev in self.conn.receive_data(data):
                if isinstance(ev, (h2.events.ResponseReceived,
                                   h2.events.TrailersReceived)) and \
                        ev.stream_id == sid:
                    headers.update(dict(ev.headers))
                elif isinstance(ev, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded) and \
                        ev.stream_id == sid:
                    self.flush()
                    return headers, "ended"
                elif isinstance(ev, h2.events.StreamReset) and \
                        ev.stream_id == sid:
                    return headers, "reset"
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    return headers, "goaway"
            self.flush()
        return headers, "timeout"

    def close(self):
        self.sock.close()


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = H.Server(SVC, TMP, pki=PKI, extra=["-i", "2000"])
        cls.channel = grpc.insecure_channel("unix://" + cls.server.sock)
        cls.rss0 = cls.server.rss_kb()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc = cls.server.stop()
        report = cls.server.sanitizer_report()
        assert report is None, report
        assert rc == 0, "wick-testsvc exited %d: %s" % (rc, cls.server.errors())

    def assert_still_serving(self):
        self.assertIsNone(self.server.proc.poll(), self.server.errors())
        r = pbg.EchoStub(self.channel).Unary(pb.EchoRequest(message="ok"),
                                             timeout=5)
        self.assertEqual(r.message, "ok")
        self.assertIsNone(self.server.sanitizer_report())
        self.assertEqual(self.server.proc.poll(), None)

    def raw_unix(self):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(self.server.sock)
        return s

    def expect_closed(self, s):
        try:
            while True:
                if not s.recv(65536):
                    return
        except ConnectionResetError:
            return

    def test_garbage(self):
        for raw in (os.urandom(4096), b"\x00" * 100, PREFACE[:10] + b"junk"):
            s = self.raw_unix()
            s.sendall(raw)
            self.expect_closed(s)
            s.close()
        self.assert_still_serving()

    def test_garbage_before_tls(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), 5)
        s.sendall(b"\x16\x03\x01\xff\xff" + os.urandom(2000))
        self.expect_closed(s)
        s.close()
        self.assert_still_serving()

    def test_tls_without_h2_alpn(self):
        ctx = ssl.create_default_context(cafile=os.path.join(PKI, "ca.pem"))
        ctx.load_cert_chain(os.path.join(PKI, "client.pem"),
                            os.path.join(PKI, "client.key"))
        ctx.set_alpn_protocols(["http/1.1"])
        s = socket.create_connection(("127.0.0.1", self.server.port), 5)
        with self.assertRaises((ssl.SSLError, ConnectionResetError)):
            t = ctx.wrap_socket(s, server_hostname="localhost")
            t.sendall(b"GET / HTTP/1.1\r\n\r\n")
            t.recv(100)
        s.close()
        self.assert_still_serving()

    def test_http1_request(self):
        s = self.raw_unix()
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.expect_closed(s)
        s.close()
        self.assert_still_serving()

    def test_truncated_frame(self):
        s = self.raw_unix()
        # SETTINGS frame header announcing 18 bytes, then only 3 of them.
        s.sendall(PREFACE + b"\x00\x00\x12\x04\x00\x00\x00\x00\x00" + b"\x00\x03\x00")
        s.shutdown(socket.SHUT_WR)
        self.expect_closed(s)
        s.close()
        self.assert_still_serving()

    def test_4gib_length_prefix(self):
        c = RawH2(self.server.sock)
        sid = c.start("/wick.test.Echo/Unary")
        c.conn.send_data(sid, b"\x00\xff\xff\xff\xff" + b"x" * 1000)
        c.flush()
        hdrs, how = c.events_until_end(sid)
        self.assertEqual(hdrs.get("grpc-status"), "8", (hdrs, how))
        self.assertIn("exceeds the limit", hdrs.get("grpc-message", ""))
        c.close()
        self.assertLess(self.server.rss_kb() - self.rss0, 50 * 1024)
        self.assert_still_serving()

    def test_compressed_flag(self):
        c = RawH2(self.server.sock)
        sid = c.start("/wick.test.Echo/Unary")
        c.conn.send_data(sid, b"\x01\x00\x00\x00\x02ab", end_stream=True)
        c.flush()
        hdrs, how = c.events_until_end(sid)
        self.assertEqual(hdrs.get("grpc-status"), "12", (hdrs, how))
        c.close()
        self.assert_still_serving()

    def test_wrong_content_type_and_method(self):
        c = RawH2(self.server.sock)
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                  (":path", "/wick.test.Echo/Unary"),
                                  (":authority", "x"),
                                  ("content-type", "text/plain")],
                            end_stream=True)
        c.flush()
        hdrs, how = c.events_until_end(sid)
        self.assertEqual(hdrs.get(":status"), "415", (hdrs, how))
        c.close()
        self.assert_still_serving()

    def test_server_enforces_deadline(self):
        c = RawH2(self.server.sock)
        sid = c.start("/wick.test.Echo/Unary", [("grpc-timeout", "200m")])
        c.conn.send_data(sid, grpc_frame(
            pb.EchoRequest(sleep_ms=5000).SerializeToString()), end_stream=True)
        c.flush()
        t0 = time.monotonic()
        hdrs, how = c.events_until_end(sid)
        self.assertEqual(hdrs.get("grpc-status"), "4", (hdrs, how))
        self.assertLess(time.monotonic() - t0, 3)
        c.close()
        self.assert_still_serving()

    def test_abrupt_disconnect_mid_call(self):
        for _ in range(20):
            c = RawH2(self.server.sock)
            sid = c.start("/wick.test.Echo/ServerStream")
            c.conn.send_data(sid, grpc_frame(pb.StreamRequest(
                count=100, interval_ms=10).SerializeToString()),
                end_stream=True)
            c.flush()
            c.close()
        self.assert_still_serving()

    def test_500_idle_connections(self):
        socks = []
        try:
            for i in range(500):
                if i % 2:
                    socks.append(self.raw_unix())
                else:
                    socks.append(socket.create_connection(
                        ("127.0.0.1", self.server.port), 5))
            self.assert_still_serving()
            # The server closes them once they stay idle (-i 2000).
            time.sleep(3)
            closed = 0
            for s in socks:
                s.settimeout(0.5)
                try:
                    # h2c peers got SETTINGS and GOAWAY first, then EOF.
                    while s.recv(4096) != b"":
                        pass
                    closed += 1
                except ConnectionResetError:
                    closed += 1
                except socket.timeout:
                    pass
            self.assertEqual(closed, 500)
        finally:
            for s in socks:
                s.close()
        self.assert_still_serving()

    def test_client_that_never_reads(self):
        c = RawH2(self.server.sock, window=1 << 20)
        sid = c.start("/wick.test.Echo/ServerStream")
        c.conn.send_data(sid, grpc_frame(pb.StreamRequest(
            count=2000, payload_size=64 * 1024).SerializeToString()),
            end_stream=True)
        c.flush()
        # 2000 x 64 KiB = 125 MiB would be sent; we read nothing.
        for _ in range(10):
            time.sleep(0.2)
            self.assert_still_serving()
        self.assertLess(self.server.rss_kb() - self.rss0, 60 * 1024)
        c.close()
        self.assert_still_serving()


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
