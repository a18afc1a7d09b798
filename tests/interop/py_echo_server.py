"""The Echo service (echo.proto) in Python grpcio, to test OUR gRPC client
against a real gRPC server.  Same flags and ready line as wick-testsvc:

  py_echo_server.py [-u UNIX_PATH] [-t HOST:PORT -c CERT -k KEY -a CA] [-m MAX]
"""
import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_harness as H  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-u")
    ap.add_argument("-t")
    ap.add_argument("-c")
    ap.add_argument("-k")
    ap.add_argument("-a")
    ap.add_argument("-m", type=int, default=4 * 1024 * 1024)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="wick-pyecho-")
    pb, pbg = H.load_stubs(tmp)
    stats = {"started": 0, "completed": 0, "cancelled": 0}
    lock = threading.Lock()

    def count(key):
        with lock:
            stats[key] += 1

    def peer_of(context):
        return ""

    class Echo(pbg.EchoServicer):
        def _echo_md(self, context):
            md = context.invocation_metadata()
            out = [(k, v) for k, v in md if k.startswith("x-echo-")]
            if out:
                context.send_initial_metadata(out)
            for k, v in md:
                if k == "x-echo-trailer":
                    context.set_trailing_metadata([("x-trailer", v)])
            return {k: v for k, v in md if not k.endswith("-bin")
                    and not k.startswith("grpc-") and k != "user-agent"}

        def Unary(self, req, context):
            count("started")
            md = self._echo_md(context)
            if req.sleep_ms:
                time.sleep(req.sleep_ms / 1000.0)
            if req.status:
                count("completed")
                context.abort(grpc.StatusCode(
                    [c for c in grpc.StatusCode if c.value[0] == req.status][0]),
                    req.status_message)
            left = context.time_remaining()
            payload = b"r" * req.reply_size if req.reply_size else req.payload
            count("completed")
            return pb.EchoReply(
                message=req.message, payload=payload, metadata=md,
                deadline_ms=0 if left is None or left > 1e9 else int(left * 1000),
                peer=peer_of(context))

        def ServerStream(self, req, context):
            count("started")
            self._echo_md(context)
            for i in range(req.count):
                if not context.is_active():
                    count("cancelled")
                    return
                yield pb.EchoReply(seq=i, payload=b"s" * req.payload_size)
                if req.interval_ms:
                    time.sleep(req.interval_ms / 1000.0)
            count("completed")
            if req.status:
                context.abort(grpc.StatusCode(
                    [c for c in grpc.StatusCode if c.value[0] == req.status][0]),
                    req.status_message)

        def Bidi(self, it, context):
            count("started")
            self._echo_md(context)
            for seq, req in enumerate(it):
                if req.status:
                    context.abort(grpc.StatusCode(
                        [c for c in grpc.StatusCode
                         if c.value[0] == req.status][0]), req.status_message)
                yield pb.EchoReply(message=req.message, payload=req.payload,
                                   seq=seq)
            count("completed")

        def Stats(self, req, context):
            with lock:
                return pb.StatsReply(calls_started=stats["started"],
                                     calls_completed=stats["completed"],
                                     calls_cancelled=stats["cancelled"])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=128),
                         options=[("grpc.max_receive_message_length", args.m),
                                  ("grpc.max_send_message_length", -1)])
    pbg.add_EchoServicer_to_server(Echo(), server)
    line = "ready"
    if args.u:
        server.add_insecure_port("unix://" + args.u)
        line += " unix=" + args.u
    if args.t:
        creds = grpc.ssl_server_credentials(
            [(H.read_file(args.k), H.read_file(args.c))],
            root_certificates=H.read_file(args.a),
            require_client_auth=True)
        port = server.add_secure_port(args.t, creds)
        line += " tcp=%s:%d" % (args.t.rsplit(":", 1)[0], port)
    server.start()
    print(line, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    done.wait()
    server.stop(5).wait()


if __name__ == "__main__":
    main()
