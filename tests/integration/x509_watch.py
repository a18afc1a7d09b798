#!/usr/bin/python3
"""A workload that keeps one FetchX509SVID stream open on the Workload
API and prints every answer as a line of JSON on stdout:

    {"t": <CLOCK_MONOTONIC when it arrived>, "w": <the same, Unix time>,
     "svids": [{"id": ..., "chain": <DER, base64>, "bundle": <DER,
                base64>}, ...]}

When the stream ends (an error, or the agent closing it) it prints
{"t": ..., "end": <gRPC status name>, "details": ...} and exits 1.

    x509_watch.py SOCKET STUBS_DIR

STUBS_DIR holds the workload.proto stubs (server_harness.grpc_stubs).
Tests run it under the uid it is to be attested as (setpriv).
"""
import base64
import json
import sys
import time

sys.path.insert(0, sys.argv[2])
import grpc  # noqa: E402
import workload_pb2 as W  # noqa: E402
import workload_pb2_grpc as WG  # noqa: E402


def b64(b):
    return base64.b64encode(b).decode()


def main():
    out = sys.stdout
    with grpc.insecure_channel("unix://" + sys.argv[1]) as ch:
        stub = WG.SpiffeWorkloadAPIStub(ch)
        st = stub.FetchX509SVID(W.X509SVIDRequest(),
                                metadata=(("workload.spiffe.io", "true"),))
        try:
            for msg in st:
                rec = {"t": time.monotonic(), "w": time.time(), "svids": [
                    {"id": s.spiffe_id, "chain": b64(s.x509_svid),
                     "bundle": b64(s.bundle)} for s in msg.svids]}
                out.write(json.dumps(rec) + "\n")
                out.flush()
            end, details = "OK", "the stream ended"
        except grpc.RpcError as e:
            end, details = e.code().name, e.details()
    out.write(json.dumps({"t": time.monotonic(), "end": end,
                          "details": details}) + "\n")
    out.flush()
    return 1


if __name__ == "__main__":
    sys.exit(main())
