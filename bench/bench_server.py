"""wick-server benchmarks: X.509-SVID issuance over the real TLS agent API
(bench_issue, beside this machine's ECDSA P-256 rates) and registration
entry creation through the admin API and CLI.

    /usr/bin/python3 bench/bench_server.py BUILD_DIR [SECONDS]

BUILD_DIR is a Release build (cmake -DCMAKE_BUILD_TYPE=Release).  Prints
figures; asserts nothing about them.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-rel")
    secs = sys.argv[2] if len(sys.argv) > 2 else "10"
    os.environ["WICK_SERVER"] = os.path.join(build, "server", "wick-server")
    os.environ["WICK_TESTAGENT"] = os.path.join(build, "tests", "tools",
                                                "wick-testagent")
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
    import server_harness as H

    srv = H.Server(log_level="WARN", port=H.free_port()).start()
    try:
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        agent = H.Agent(srv)
        agent.attest(tok, bundle)
        aid = "spiffe://%s/spire/agent/join_token/%s" % (H.TD, tok)
        eid = srv.create_entry("spiffe://%s/bench" % H.TD, aid,
                               ["unix:uid:1000"])
        for batch, conc in ((1, 1), (100, 1), (100, 4)):
            print("--- batch %d, %d in flight" % (batch, conc), flush=True)
            subprocess.run([os.path.join(build, "bench", "bench_issue"),
                            "-s", srv.addr, "-T", H.TD, "-d", agent.dir,
                            "-e", eid, "-b", str(batch), "-c", str(conc),
                            "-t", secs], check=True)
        # Entry creation: 10,000 entries through -data (500 per RPC).
        n = 10000
        path = os.path.join(srv.tmp, "bench-entries.json")
        with open(path, "w") as f:
            json.dump({"entries": [
                {"spiffe_id": "spiffe://%s/bench/%d" % (H.TD, i),
                 "parent_id": aid,
                 "selectors": [{"type": "unix", "value": "uid:%d" % i}]}
                for i in range(n)]}, f)
        t0 = time.monotonic()
        srv.cli("entry", "create", "-data", path, "-output", "json")
        t = time.monotonic() - t0
        print("--- entry creation: %d entries in %.2f s = %.0f entries/s "
              "(CLI -data, 500 per BatchCreateEntry)" % (n, t, n / t))
        t0 = time.monotonic()
        for i in range(200):
            srv.cli("entry", "create", "-spiffeID",
                    "spiffe://%s/one/%d" % (H.TD, i), "-parentID", aid,
                    "-selector", "unix:gid:%d" % i)
        t = time.monotonic() - t0
        print("--- entry creation one per CLI run: %.0f entries/s "
              "(includes starting the CLI)" % (200 / t))
        t0 = time.monotonic()
        subprocess.run([os.environ["WICK_TESTAGENT"], "-s", srv.addr, "-T",
                        H.TD, "-d", agent.dir, "sync"], check=True,
                       stdout=subprocess.DEVNULL)
        print("--- full sync of %d authorized entries: %.2f s (one agent "
              "process, pages of 500)" % (n + 201, time.monotonic() - t0))
        with open("/proc/%d/status" % srv.proc.pid) as f:
            rss = [l for l in f if l.startswith("VmRSS")][0].split()[1]
        print("--- server RSS with %d entries: %d MiB" % (n + 201,
                                                      int(rss) // 1024))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
