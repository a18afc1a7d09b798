"""A hostile HTTP/2 peer for the flood tests, on the `h2` library: it opens
connections (Unix or TLS over TCP), starts gRPC calls whose request
message declares a size and then sends only part of it, or just holds
connections open, and reports what the daemon answered.

Run as a program so that it can be started as another uid:

    h2flood.py --unix PATH | --tcp HOST:PORT [--source ADDR [--spread N]]
               [--conns N] [--streams N] [--declare BYTES] [--send BYTES]
               [--path /Svc/Method] [--idle] [--handshake-only]

It prints one JSON line when everything is sent ("holding"), then waits
until its standard input closes, reading what the daemon sends, and prints
a final JSON line with the statuses and resets it saw and how many of its
connections the daemon closed.
"""
import argparse
import json
import resource
import select
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

# The zeros every message's body is cut from (a DATA frame at most).
ZEROS = bytes(16384)


def readable(files, timeout):
    """Those of files (sockets, stdin) that can be read; poll(), as there
    may be more than select() takes."""
    p = select.poll()
    by_fd = {}
    for f in files:
        by_fd[f.fileno()] = f
        p.register(f, select.POLLIN)
    return [by_fd[fd] for fd, _ in p.poll(timeout * 1000)]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Conn:
    def __init__(self, args, index=0):
        self.index = index
        self.closed = False
        self.statuses = {}      # grpc-status -> count
        self.messages = set()
        self.resets = 0
        self.sock = self.connect(args)
        self.h2 = None

    def connect(self, args):
        if args.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(args.unix)
            return s
        host, port = args.tcp.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if args.source:
            # --spread N: connection i from the i % N-th address after
            # --source (other peers, as far as the daemon can tell).
            base = int.from_bytes(socket.inet_aton(args.source), "big")
            src = base + (self.index % args.spread)
            s.bind((socket.inet_ntoa(src.to_bytes(4, "big")), 0))
        s.connect((host, int(port)))
        if args.handshake_only:
            return s            # TCP only: never start TLS
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        return ctx.wrap_socket(s)

    def start_h2(self):
        cfg = h2.config.H2Configuration(client_side=True,
                                        header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.initiate_connection()
        self.flush()

    def flush(self):
        data = self.h2.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def call(self, path, declare, send, authority):
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(sid, [
            (":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", authority), ("content-type", "application/grpc"),
            ("te", "trailers"), ("workload.spiffe.io", "true")])
        # What is left to send of the message: its prefix, then zeros,
        # cut from one shared buffer as the windows allow.  A copy of
        # every body would cost a flood of 256 connections x 100 streams
        # of 60 KB 1.5 GB, and twenty such floods more than the machine
        # has.
        self.pending = getattr(self, "pending", {})
        self.pending[sid] = [struct.pack(">BI", 0, declare), send]
        self.push()
        return sid

    def push(self):
        """Send what the peer's windows allow of what is pending."""
        for sid, left in list(self.pending.items()):
            # Once the connection's window is spent no stream can send:
            # do not walk the rest (a call starts with a push).
            if self.h2.outbound_flow_control_window <= 0:
                break
            prefix, zeros = left
            while prefix or zeros:
                try:
                    room = min(self.h2.local_flow_control_window(sid),
                               self.h2.max_outbound_frame_size, len(ZEROS),
                               len(prefix) + zeros)
                except (h2.exceptions.StreamClosedError,
                        h2.exceptions.ProtocolError, KeyError):
                    prefix, zeros = b"", 0
                    break
                if room <= 0:
                    break
                head = prefix[:room]
                try:
                    self.h2.send_data(sid, head + ZEROS[:room - len(head)])
                except h2.exceptions.H2Error:
                    prefix, zeros = b"", 0
                    break
                zeros -= room - len(head)
                prefix = prefix[len(head):]
            if prefix or zeros:
                self.pending[sid] = [prefix, zeros]
            else:
                del self.pending[sid]
        self.flush()

    def read(self):
        try:
            data = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        if self.h2 is None:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.H2Error:
            self.closed = True
            return
        for ev in events:
            if isinstance(ev, (h2.events.TrailersReceived,
                               h2.events.ResponseReceived)):
                hdrs = dict(ev.headers)
                if "grpc-status" in hdrs:
                    st = hdrs["grpc-status"]
                    self.statuses[st] = self.statuses.get(st, 0) + 1
                    if hdrs.get("grpc-message"):
                        self.messages.add(hdrs["grpc-message"])
            elif isinstance(ev, h2.events.StreamReset):
                self.resets += 1
                self.pending.pop(ev.stream_id, None) \
                    if hasattr(self, "pending") else None
            elif isinstance(ev, h2.events.DataReceived):
                self.h2.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.closed = True
        if hasattr(self, "pending"):
            self.push()
        else:
            self.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unix")
    ap.add_argument("--tcp")
    ap.add_argument("--source")
    ap.add_argument("--spread", type=int, default=1)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--declare", type=int, default=4 * 1024 * 1024 - 1)
    ap.add_argument("--send", type=int, default=None)
    ap.add_argument("--path", default="/SpiffeWorkloadAPI/ValidateJWTSVID")
    ap.add_argument("--idle", action="store_true",
                    help="connect (and speak HTTP/2) but start no call")
    ap.add_argument("--handshake-only", action="store_true",
                    help="TCP connect and send nothing at all")
    args = ap.parse_args()
    raise_fd_limit()
    send = args.declare - 1 if args.send is None else args.send

    conns, refused = [], 0
    for i in range(args.conns):
        try:
            c = Conn(args, i)
        except OSError:
            refused += 1
            continue
        conns.append(c)
        if args.handshake_only:
            continue
        c.start_h2()
        if not args.idle:
            for _ in range(args.streams):
                try:
                    c.call(args.path, args.declare, send, "localhost")
                except h2.exceptions.H2Error:
                    break
    # Let the daemon answer and the windows settle, then report.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        live = [c for c in conns if not c.closed]
        if not live:
            break
        r = readable([c.sock for c in live], 0.2)
        for c in live:
            if c.sock in r:
                c.read()
    print(json.dumps({"holding": sum(not c.closed for c in conns),
                      "refused": refused}), flush=True)
    # Hold until told to stop, still reading (so that the daemon's
    # closes are seen).
    while True:
        live = [c for c in conns if not c.closed]
        r = readable([sys.stdin] + [c.sock for c in live], 1.0)
        if sys.stdin in r:
            if not sys.stdin.readline():
                break
            print(json.dumps({"open": sum(not c.closed for c in conns)}),
                  flush=True)
            continue
        for c in live:
            if c.sock in r:
                c.read()
    statuses, messages, resets = {}, set(), 0
    for c in conns:
        for k, v in c.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
        messages |= c.messages
        resets += c.resets
    print(json.dumps({"statuses": statuses, "messages": sorted(messages),
                      "resets": resets,
                      "closed_by_peer": sum(c.closed for c in conns),
                      "conns": len(conns), "refused": refused}), flush=True)
    for c in conns:
        try:
            c.sock.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
