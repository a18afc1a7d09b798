"""wick-agent benchmarks: start-up time to a served SVID, FetchX509SVID
first-response latency and rate with 1, 10 and 100 concurrent workloads
(bench_fetch), and the agent's memory with 1,000 and 10,000 entries
cached (each with its X.509-SVID and key).

    /usr/bin/python3 bench/bench_agent.py BUILD_DIR [SECONDS]

BUILD_DIR is a Release build.  Prints figures; asserts nothing.
"""
import json
import os
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def issued(db):
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT coalesce(sum(json_array_length(detail,"
                          " '$.issued')), 0) FROM audit WHERE kind ="
                          " 'svid.x509'").fetchone()
        return row[0]
    finally:
        con.close()


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-rel")
    secs = sys.argv[2] if len(sys.argv) > 2 else "5"
    os.environ["WICK_SERVER"] = os.path.join(build, "server", "wick-server")
    os.environ["WICK_TESTAGENT"] = os.path.join(build, "tests", "tools",
                                                "wick-testagent")
    os.environ["WICK_AGENT"] = os.path.join(build, "agent", "wick-agent")
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
    import server_harness as H

    srv = H.Server(log_level="WARN", port=H.free_port()).start()
    agent = None
    try:
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        aid = "spiffe://%s/spire/agent/join_token/%s" % (H.TD, tok)
        srv.create_entry("spiffe://%s/bench" % H.TD, aid,
                         ["unix:uid:%d" % os.getuid()])
        agent = H.AgentDaemon(srv, bundle)
        t0 = time.monotonic()
        agent.start(token=tok, wait=False)
        fetch = os.path.join(build, "bench", "bench_fetch")
        while True:
            p = subprocess.run([fetch, "-s", agent.sock, "-c", "1", "-t",
                                "0"], capture_output=True)
            if p.returncode == 0:
                break
            if time.monotonic() - t0 > 30:
                raise SystemExit("agent did not serve:\n" + agent.output())
            time.sleep(0.002)
        print("--- start-up to a served SVID (join token attestation, first"
              " sync, signing): %.0f ms" % ((time.monotonic() - t0) * 1e3))
        agent.stop()
        t0 = time.monotonic()
        agent.start(wait=False)
        while subprocess.run([fetch, "-s", agent.sock, "-c", "1", "-t", "0"],
                             capture_output=True).returncode != 0:
            time.sleep(0.002)
        print("--- restart with the stored SVID to a served SVID: %.0f ms" %
              ((time.monotonic() - t0) * 1e3))
        print("--- agent RSS serving one entry: %d KiB" %
              rss_kib(agent.proc.pid))
        for n in (1, 10, 100):
            subprocess.run([fetch, "-s", agent.sock, "-c", str(n), "-t",
                            secs], check=True)
        done = 1
        for total in (1000, 10000):
            path = os.path.join(srv.tmp, "e%d.json" % total)
            with open(path, "w") as f:
                json.dump({"entries": [
                    {"spiffe_id": "spiffe://%s/cached/%d" % (H.TD, i),
                     "parent_id": aid,
                     "selectors": [{"type": "unix",
                                    "value": "uid:%d" % (100000 + i)}]}
                    for i in range(done - 1, total)]}, f)
            t0 = time.monotonic()
            srv.cli("entry", "create", "-data", path, "-output", "json")
            while issued(srv.db) < total + 1:
                if time.monotonic() - t0 > 300:
                    raise SystemExit("SVIDs not issued in time")
                time.sleep(0.2)
            t = time.monotonic() - t0
            time.sleep(2)
            print("--- agent RSS with %d entries and their X.509-SVIDs "
                  "cached: %d KiB (synced and signed in %.1f s)" %
                  (total, rss_kib(agent.proc.pid), t))
            done = total + 1
        subprocess.run([fetch, "-s", agent.sock, "-c", "10", "-t", secs],
                       check=True)
    finally:
        if agent is not None:
            agent.stop()
        srv.stop()


if __name__ == "__main__":
    main()
