"""gRPC benchmark: wick's gRPC server (wick-testsvc) driven by Python grpcio
and by our own client (wick-testcli).

Prints unary calls per second with p50/p99 latency (one caller, and 16
concurrent callers), and streamed messages per second, over a Unix socket
and over TCP with mutual TLS 1.3.  Run it by hand on an idle machine:

  /usr/bin/python3 bench/bench_grpc.py BUILD_DIR [SECONDS_PER_CASE]

BUILD_DIR is a normal (not sanitizer) build.  With the Python client the
client is the bottleneck, so those figures bound the server from below.
"""
import os
import shutil
import statistics
import sys
import threading
import time

import json
import subprocess

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import echo_harness as H  # noqa: E402


def pct(sorted_vals, p):
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * p))]


def bench_unary(stub, pb, seconds, concurrency):
    lat = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    req = pb.EchoRequest(message="bench", payload=b"p" * 64)

    def worker():
        mine = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            stub.Unary(req, timeout=10)
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    lat.sort()
    return len(lat) / elapsed, pct(lat, 0.5) * 1e6, pct(lat, 0.99) * 1e6


def bench_stream(stub, pb, count, size):
    t0 = time.monotonic()
    n = sum(1 for _ in stub.ServerStream(
        pb.StreamRequest(count=count, payload_size=size), timeout=120))
    return n / (time.monotonic() - t0)


def main():
    build = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    svc = os.path.join(build, "tests", "tools", "wick-testsvc")
    certs = os.path.join(build, "tests", "tools", "wick-testcerts")
    tmp = H.new_tmpdir()
    try:
        pb, pbg = H.load_stubs(tmp)
        pki = H.make_pki(certs, tmp)
        srv = H.Server(svc, tmp, pki=pki)
        creds = grpc.ssl_channel_credentials(
            H.read_file(os.path.join(pki, "ca.pem")),
            H.read_file(os.path.join(pki, "client.key")),
            H.read_file(os.path.join(pki, "client.pem")))
        transports = [
            ("unix", grpc.insecure_channel("unix://" + srv.sock)),
            ("tcp+mtls", grpc.secure_channel("localhost:%d" % srv.port, creds)),
        ]
        print("wick gRPC server, Python grpcio %s client, %.0f s per case"
              % (grpc.__version__, seconds))
        for name, ch in transports:
            stub = pbg.EchoStub(ch)
            stub.Unary(pb.EchoRequest(), timeout=10)  # connect, warm up
            for conc in (1, 16):
                rate, p50, p99 = bench_unary(stub, pb, seconds, conc)
                print("%-9s unary, %2d callers: %8.0f calls/s  p50 %6.0f us"
                      "  p99 %6.0f us" % (name, conc, rate, p50, p99))
            for size in (64, 16384):
                rate = bench_stream(stub, pb, 20000 if size == 64 else 5000,
                                    size)
                print("%-9s server stream, %5d-byte messages: %8.0f msgs/s"
                      % (name, size, rate))
            ch.close()
        cli = os.path.join(build, "tests", "tools", "wick-testcli")
        tls = ["-c", os.path.join(pki, "client.pem"), "-k",
               os.path.join(pki, "client.key"), "-a",
               os.path.join(pki, "ca.pem")]
        print("wick gRPC server, our own client (wick-testcli)")
        for name, target, extra in (
                ("unix", "unix://" + srv.sock, []),
                ("tcp+mtls", "localhost:%d" % srv.port, tls)):
            for conc in (1, 16):
                out = subprocess.run(
                    [cli, target] + extra + ["bench", "-n", "50000", "-C",
                                             str(conc)],
                    capture_output=True, check=True).stdout
                r = json.loads(out)
                print("%-9s unary, %2d callers: %8.0f calls/s  p50 %6.0f us"
                      "  p99 %6.0f us" % (name, conc, r["calls_per_s"],
                                          r["p50_us"], r["p99_us"]))
            t0 = time.monotonic()
            out = subprocess.run([cli, target] + extra +
                                 ["stream", "-n", "200000", "-P", "64"],
                                 capture_output=True, check=True).stdout
            n = json.loads(out)["messages"]
            print("%-9s server stream,    64-byte messages: %8.0f msgs/s"
                  % (name, n / (time.monotonic() - t0)))
        print("server RSS after the run: %d KiB" % srv.rss_kb())
        srv.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
