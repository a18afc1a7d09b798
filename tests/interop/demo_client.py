"""Call wick's Echo test service over a Unix socket with Python grpcio.

Usage: /usr/bin/python3 demo_client.py SOCKET_PATH
"""
import os
import subprocess
import sys
import tempfile

import grpc


def main():
    sock = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as gen:
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", here,
                        "--python_out", gen, "--grpc_python_out", gen,
                        os.path.join(here, "echo.proto")], check=True)
        sys.path.insert(0, gen)
        import echo_pb2
        import echo_pb2_grpc
        with grpc.insecure_channel("unix://" + sock) as ch:
            stub = echo_pb2_grpc.EchoStub(ch)
            reply, call = stub.Unary.with_call(
                echo_pb2.EchoRequest(message="hello from grpcio"),
                metadata=[("x-echo-client", "python")], timeout=5)
            print("unary reply: message=%r peer=%r deadline_ms=%d"
                  % (reply.message, reply.peer, reply.deadline_ms))
            print("headers echoed:", dict(call.initial_metadata()))
            n = 0
            for r in stub.ServerStream(echo_pb2.StreamRequest(count=3),
                                       timeout=5):
                n += 1
            print("server stream: %d messages" % n)
            stats = stub.Stats(echo_pb2.StatsRequest(), timeout=5)
            print("server stats: calls_started=%d calls_completed=%d"
                  % (stats.calls_started, stats.calls_completed))


if __name__ == "__main__":
    main()
