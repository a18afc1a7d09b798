"""What hostile peers can make the daemons hold, at the limits: the
agent's Workload API flooded by one uid and by several (idle connections,
unfinished request messages), and the server's agent API flooded by
unauthenticated TLS peers from one address and from many.  Prints each
daemon's resident memory before and during each flood, how many of the
flood's connections it kept open (its descriptors), and how long a
well-behaved client took to be served meanwhile.

    /usr/bin/python3 bench/bench_flood.py BUILD_DIR

BUILD_DIR is a Release build.  Run as root (floods come from other uids
and from 127.0.0.0/8 addresses).  Prints figures; asserts nothing.
"""
import concurrent.futures
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1024 * 1024


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-rel")
    os.environ["WICK_SERVER"] = os.path.join(build, "server", "wick-server")
    os.environ["WICK_TESTAGENT"] = os.path.join(build, "tests", "tools",
                                                "wick-testagent")
    os.environ["WICK_AGENT"] = os.path.join(build, "agent", "wick-agent")
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
    import server_harness as H
    import test_flood as T

    srv = H.Server(log_level="WARN", port=H.free_port()).start()
    agent = None
    try:
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (H.TD, tok)
        srv.create_entry("spiffe://%s/root" % H.TD, aid, ["unix:uid:0"])
        agent = H.AgentDaemon(srv, bundle).start(token=tok)
        T.FloodTest.target = "unix://" + agent.sock
        T.FloodTest.fetch_ok()

        def served():
            t0 = time.monotonic()
            T.FloodTest.fetch_ok()
            return (time.monotonic() - t0) * 1000

        def fds(pid):
            # Connections: sockets only (the agent also holds each
            # Workload API caller's /proc status file open).
            d = "/proc/%d/fd" % pid
            n = 0
            for f in os.listdir(d):
                try:
                    n += os.readlink(os.path.join(d, f)).startswith(
                        "socket:")
                except OSError:
                    pass
            return n

        def start(floods):
            # All at once: started one after another, the first floods'
            # messages would time out (30 s) before the last connect, and
            # the daemon would never hold them together.
            with concurrent.futures.ThreadPoolExecutor(len(floods)) as ex:
                futs = [ex.submit(T.Flood, *args, uid=uid)
                        for uid, args in floods]
            fl, err = [], None
            for f in futs:
                try:
                    fl.append(f.result())
                except Exception as e:  # raised once the others end
                    err = e
            if err is not None:
                for f in fl:
                    f.end()
                raise err
            return fl

        def run(name, pid, floods, probe):
            before, fd0 = T.rss(pid), fds(pid)
            fl = start(floods)
            during = T.rss(pid)
            kept = fds(pid) - fd0
            ms = probe()
            total = sum(int(a[a.index("--conns") + 1]) for _, a in floods)
            for f in fl:
                f.end()
            print("| %s | %d of %d | %.1f -> %.1f MiB | %.0f ms |" %
                  (name, kept, total, before / MiB, during / MiB, ms))

        sock = agent.sock
        apid = agent.proc.pid
        print("| flood | connections the daemon kept | daemon RSS | a good "
              "client served in |")
        print("| --- | --- | --- | --- |")
        run("Workload API: 1 uid, 1,024 idle connections", apid,
            [(65534, ["--unix", sock, "--conns", 1024, "--idle"])], served)
        run("Workload API: 1 uid, 256 connections x 100 unfinished "
            "60 KB messages", apid,
            [(65534, ["--unix", sock, "--conns", 256, "--streams", 100,
                      "--declare", 60000])], served)
        run("Workload API: 8 uids, 256 connections each x 100 unfinished "
            "60 KB messages", apid,
            [(60000 + i, ["--unix", sock, "--conns", 256, "--streams", 100,
                          "--declare", 60000]) for i in range(8)], served)
        # More connections than the agent takes from all uids (4,096).
        run("Workload API: 20 uids, 256 connections each x 100 unfinished "
            "60 KB messages", apid,
            [(60100 + i, ["--unix", sock, "--conns", 256, "--streams", 100,
                          "--declare", 60000]) for i in range(20)], served)

        def attested():
            t0 = time.monotonic()
            a = H.Agent(srv)
            a.attest(srv.token(), bundle)
            return (time.monotonic() - t0) * 1000

        addr = "127.0.0.1:%d" % srv.port
        spid = srv.proc.pid
        run("agent API: 1 address, 1,100 connections that never start TLS",
            spid, [(None, ["--tcp", addr, "--source", "127.0.0.2",
                           "--conns", 1100, "--handshake-only"])], attested)
        run("agent API: 1 address, 64 TLS connections x 1 unfinished "
            "60 KB AttestAgent", spid,
            [(None, ["--tcp", addr, "--source", "127.0.0.3", "--conns", 64,
                     "--declare", 60000,
                     "--path", "/wick.agent.Node/AttestAgent"])], attested)
        run("agent API: 16 addresses, 64 TLS connections each x 1 "
            "unfinished 60 KB AttestAgent", spid,
            [(None, ["--tcp", addr, "--source", "127.0.1.%d" % (i + 1),
                     "--conns", 64, "--declare", 60000,
                     "--path", "/wick.agent.Node/AttestAgent"])
             for i in range(16)], attested)
    finally:
        if agent is not None:
            agent.stop()
        srv.stop()


if __name__ == "__main__":
    main()
