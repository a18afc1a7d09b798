"""Docker workload attestation latency: what the "docker" attestor adds
to a Workload API call, with and without the container's engine answer
cached, beside the same call from a host process.

    /usr/bin/python3 bench/bench_docker.py BUILD_DIR [CONTAINERS] [CALLS]

A real wick-server and wick-agent (WorkloadAttestor "unix" and "docker")
from BUILD_DIR (a Release build), podman's Docker-compatible API as the
engine (tests/integration/podman.py: runc, --network none, a private
root), and Workload API clients made of the host's Python and grpcio.
Every call is a FetchJWTSVID on a new connection (a new gRPC channel), so
each one is attested; the JWT-SVID is minted once beforehand and then
served from the agent's cache, so the figures hold no signing.

  host        CONTAINERS host processes (unix attestor; the docker
              attestor reads /proc/<pid>/cgroup and finds no container),
              each making 1 + CALLS calls; the first call of a process
              carries the client's own first-call costs, so first calls
              and later calls are shown apart
  container   the first call from each of CONTAINERS new containers: the
              agent asks the engine (GET /containers/<id>/json); the
              next CALLS calls from each of them: answered from the
              agent's per-container cache
  engine      GET /containers/<id>/json timed from this process, for
              reference

Prints figures (median and max in milliseconds); asserts nothing.
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Run inside a container (and on the host): N calls, each on a new
# channel; prints the seconds of each.
CLIENT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import grpc
import workload_pb2 as W, workload_pb2_grpc as WG
hdr = (("workload.spiffe.io", "true"),)
out = []
for _ in range(int(sys.argv[3])):
    t0 = time.monotonic()
    with grpc.insecure_channel(sys.argv[2]) as ch:
        r = WG.SpiffeWorkloadAPIStub(ch).FetchJWTSVID(
            W.JWTSVIDRequest(audience=["bench"]), metadata=hdr, timeout=30)
    out.append(time.monotonic() - t0)
    if len(r.svids) != 1:
        raise SystemExit("no JWT-SVID")
print(json.dumps(out))
"""


def ms(xs):
    return "median %6.2f ms, max %6.2f ms (n=%d)" % (
        statistics.median(xs) * 1e3, max(xs) * 1e3, len(xs))


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-rel")
    ncont = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    ncalls = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    os.environ["WICK_SERVER"] = os.path.join(build, "server", "wick-server")
    os.environ["WICK_TESTAGENT"] = os.path.join(build, "tests", "tools",
                                                "wick-testagent")
    os.environ["WICK_AGENT"] = os.path.join(build, "agent", "wick-agent")
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
    import podman as P
    import server_harness as H

    pm = P.Podman()
    srv = agent = None
    try:
        pm.build_image()
        stubs = H.grpc_stubs("workload.proto")
        pm.share_stubs(stubs)
        with open(os.path.join(pm.share, "bench_client.py"), "w") as f:
            f.write(CLIENT)
        os.chmod(os.path.join(pm.share, "bench_client.py"), 0o644)
        engine = os.path.join(pm.dir, "engine.sock")
        pm.start_service(engine)
        attestors = H.UNIX_WORKLOAD_ATTESTOR + """
    WorkloadAttestor "docker" {
        plugin_data {
            docker_socket_path = "unix://%s"
            podman_socket_path = "unix://%s"
        }
    }""" % (engine, engine)
        srv = H.Server(log_level="WARN", port=H.free_port()).start()
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        aid = H.agent_spiffe_id(tok)
        srv.create_entry("spiffe://%s/bench/host" % H.TD, aid,
                         ["unix:uid:%d" % os.getuid()])
        srv.create_entry("spiffe://%s/bench/web" % H.TD, aid,
                         ["docker:label:app:bench"])
        agent = H.AgentDaemon(srv, bundle, workload_attestors=attestors)
        agent.start(token=tok)
        target = "unix://" + agent.sock
        sockdir = os.path.dirname(agent.sock)

        def host(n):
            p = subprocess.run(["/usr/bin/python3", "-c", CLIENT, stubs,
                                target, str(n)], capture_output=True,
                               text=True, check=True)
            return json.loads(p.stdout)

        def inside(c, n):
            p = pm.exec(c, "/usr/bin/python3", P.SHARE_IN +
                        "/bench_client.py", P.SHARE_IN, "unix://%s/%s" %
                        (P.SOCKET_DIR_IN, os.path.basename(agent.sock)),
                        str(n), env={"PYTHONDONTWRITEBYTECODE": "1"})
            return json.loads(p.stdout)

        # Entries reach the agent and the JWT-SVIDs are minted.
        deadline = time.monotonic() + 60
        while True:
            try:
                host(1)
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        warm = pm.run_client(sockdir, labels={"app": "bench"},
                                user="2001:2001")
        while True:
            try:
                inside(warm, 1)
                break
            except P.PodmanError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        pm.rm(warm)

        hosts, hfirst, uncached, cached, eng = [], [], [], [], []
        for i in range(ncont):
            t = host(ncalls + 1)
            hfirst.append(t[0])
            hosts.extend(t[1:])
            c = pm.run_client(sockdir, labels={"app": "bench"},
                                user="2001:2001")
            try:
                t = inside(c, ncalls + 1)
                uncached.append(t[0])
                cached.extend(t[1:])
                for _ in range(5):
                    t0 = time.monotonic()
                    pm.api_inspect(c)
                    eng.append(time.monotonic() - t0)
            finally:
                pm.rm(c)
        print("--- docker attestation, FetchJWTSVID on a new connection "
              "(cached JWT), Release build:")
        print("host process, first call      " + ms(hfirst))
        print("host process, later calls     " + ms(hosts))
        print("container, first call (engine asked)  " + ms(uncached))
        print("container, later calls (cached)       " + ms(cached))
        print("engine inspect from this process      " + ms(eng))
        print("added by asking the engine: %.2f ms (first calls: container"
              " - host)" % ((statistics.median(uncached) -
                             statistics.median(hfirst)) * 1e3))
        print("added by a cached container: %.2f ms (later calls: container"
              " - host)" % ((statistics.median(cached) -
                             statistics.median(hosts)) * 1e3))
    finally:
        if agent is not None:
            agent.stop()
        if srv is not None:
            srv.stop()
        pm.stop()


if __name__ == "__main__":
    main()
