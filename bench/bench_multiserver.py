"""wick-server on SQLite beside wick-server on PostgreSQL, and two servers
sharing one PostgreSQL database.

    /usr/bin/python3 bench/bench_multiserver.py BUILD_DIR [SECONDS] [RUNS]

BUILD_DIR is a Release build (cmake -DCMAKE_BUILD_TYPE=Release).  For each
datastore, one server:
- X.509-SVID issuance through the TLS agent API (bench_issue, batches of
  100, 4 calls in flight, SECONDS each, default 10), with the server's CPU
  time per 1,000 SVIDs (utime + stime from /proc) and, for PostgreSQL, the
  CPU time of its backend processes;
- registration entries created through the admin API (gRPC on the admin
  socket): one entry per BatchCreateEntry call, and 100 per call, with
  the CPU time of the server (and of PostgreSQL) per 1,000 entries.
Each is run RUNS times (default 3) and the median printed.

Then two servers A and B on one PostgreSQL database, a wick-agent whose
server_address is B (sync_interval 1s) and a workload (grpcio, this
process's uid) keeping a FetchX509SVID stream open on the agent's socket:
ten times, an entry is created through A's admin API and the time until
its SVID reaches the workload is taken.  The same with an agent of A, for
comparison.

PostgreSQL is a scratch server (tests/integration/pg.py) on a Unix socket
only, with fsync on (as the tests run it with fsync off, this script
turns it back on), stopped at the end.  Prints figures; asserts nothing.
"""
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import json

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.join(HERE, "..", "tests", "integration")
CLK_TCK = os.sysconf("SC_CLK_TCK")
N_SINGLE = 200		# entries created one per call, per run
N_BATCHES = 20		# calls of 100 entries, per run
PROP_TRIES = 10


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        f = f.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def children_cpu_s(ppid):
    """utime + stime of every child of ppid (PostgreSQL's backends),
    and of ppid itself."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(d) == ppid or int(st[1]) == ppid:
            total += (int(st[11]) + int(st[12])) / CLK_TCK
    return total


def med(xs):
    return statistics.median(xs)


class Bench:
    def __init__(self, build, secs, runs):
        self.build = build
        self.secs = secs
        self.runs = runs
        os.environ["WICK_SERVER"] = os.path.join(build, "server",
                                                 "wick-server")
        os.environ["WICK_AGENT"] = os.path.join(build, "agent", "wick-agent")
        os.environ["WICK_TESTAGENT"] = os.path.join(build, "tests", "tools",
                                                    "wick-testagent")
        sys.path.insert(0, INTEG)
        import server_harness
        self.H = server_harness
        self.stubs = self.H.grpc_stubs("types.proto", "admin.proto",
                                       "workload.proto")
        import grpc
        import admin_pb2
        import admin_pb2_grpc
        import types_pb2
        self.grpc, self.A, self.AG, self.T = (grpc, admin_pb2,
                                              admin_pb2_grpc, types_pb2)
        self.pg = None
        self.daemons = []

    # ---- PostgreSQL --------------------------------------------------------

    def start_pg(self):
        import pg
        real = pg.subprocess.Popen

        def popen(args, **kw):	# the scratch server, with fsync on
            return real(["fsync=on" if a == "fsync=off" else a
                         for a in args], **kw)
        pg.subprocess.Popen = popen
        try:
            self.pg = pg.PostgresServer().start()
        finally:
            pg.subprocess.Popen = real
        for db in ("bench", "multi"):
            self.psql("postgres", "CREATE DATABASE %s" % db)
        self.pg_fsync = self.psql("postgres", "SHOW fsync").strip()

    def psql(self, db, sql):
        return subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-X",
                               "-A", "-t", self.pg.conninfo(db), "-c", sql],
                              check=True, capture_output=True, text=True,
                              timeout=60).stdout

    def server(self, db=None, tmp=None):
        H = self.H
        s = H.Server(tmpdir=tmp, log_level="WARN", port=H.free_port())
        if db is not None:
            from test_pg_server import use_postgres
            use_postgres(s, self.pg.conninfo(db))
        self.daemons.append(s)
        return s.start(60)

    def stop(self, d):
        d.stop()
        self.daemons.remove(d)
        shutil.rmtree(d.tmp, ignore_errors=True)

    # ---- one server ------------------------------------------------------

    def issuance(self, srv, parent_pid):
        """[(SVIDs/s, server CPU s per 1000, database CPU s per 1000)]"""
        H = self.H
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        agent = H.Agent(srv)
        agent.attest(tok, bundle)
        eid = srv.create_entry("spiffe://%s/bench" % H.TD,
                               H.agent_spiffe_id(tok), ["unix:uid:1000"])
        out = []
        for _ in range(self.runs):
            c0 = cpu_s(srv.proc.pid)
            d0 = children_cpu_s(parent_pid) if parent_pid else 0.0
            p = subprocess.run([os.path.join(self.build, "bench",
                                             "bench_issue"),
                                "-s", srv.addr, "-T", H.TD, "-d", agent.dir,
                                "-e", eid, "-b", "100", "-c", "4",
                                "-t", str(self.secs), "-j"], check=True,
                               capture_output=True, text=True)
            c1 = cpu_s(srv.proc.pid)
            d1 = children_cpu_s(parent_pid) if parent_pid else 0.0
            r = json.loads(p.stdout.strip().splitlines()[-1])
            n = max(r["issued"], 1)
            out.append((r["rate"], (c1 - c0) * 1000 / n,
                        (d1 - d0) * 1000 / n if parent_pid else None))
        return H.agent_spiffe_id(tok), out

    def entry_msg(self, spiffe_id, parent, value):
        T = self.T
        return T.Entry(spiffe_id=spiffe_id, parent_id=parent,
                       selectors=[T.Selector(type="unix", value=value)])

    def create(self, stub, entries):
        r = stub.BatchCreateEntry(self.A.BatchCreateEntryRequest(
            entries=entries), timeout=60)
        for res in r.results:
            if res.status.code != 0:
                raise RuntimeError("entry create: %s" % res.status)
        return r

    def creation(self, srv, parent, parent_pid):
        """[(single entries/s, batched entries/s, server CPU s and
        database CPU s per 1000 batched entries)]"""
        H = self.H
        out = []
        with self.grpc.insecure_channel("unix://" + srv.sock) as ch:
            stub = self.AG.EntriesStub(ch)
            for run in range(self.runs):
                t0 = time.monotonic()
                for i in range(N_SINGLE):
                    self.create(stub, [self.entry_msg(
                        "spiffe://%s/one/%d/%d" % (H.TD, run, i), parent,
                        "gid:%d" % (run * N_SINGLE + i))])
                single = N_SINGLE / (time.monotonic() - t0)
                batches = [[self.entry_msg(
                    "spiffe://%s/many/%d/%d/%d" % (H.TD, run, b, i), parent,
                    "uid:%d" % ((run * N_BATCHES + b) * 100 + i))
                    for i in range(100)] for b in range(N_BATCHES)]
                c0 = cpu_s(srv.proc.pid)
                d0 = children_cpu_s(parent_pid) if parent_pid else 0.0
                t0 = time.monotonic()
                for b in batches:
                    self.create(stub, b)
                t = time.monotonic() - t0
                c1 = cpu_s(srv.proc.pid)
                d1 = children_cpu_s(parent_pid) if parent_pid else 0.0
                n = N_BATCHES * 100
                out.append((single, n / t, (c1 - c0) * 1000 / n,
                            (d1 - d0) * 1000 / n))
        return out

    def one_server(self, name, db):
        srv = self.server(db)
        try:
            parent, iss = self.issuance(srv, self.pg.pid if db else None)
            cre = self.creation(srv, parent, self.pg.pid if db else None)
        finally:
            self.stop(srv)
        return {"name": name, "rate": med([x[0] for x in iss]),
                "cpu": med([x[1] for x in iss]),
                "dbcpu": med([x[2] for x in iss]) if db else None,
                "rates": [x[0] for x in iss],
                "single": med([x[0] for x in cre]),
                "batch": med([x[1] for x in cre]),
                "singles": [x[0] for x in cre],
                "batches": [x[1] for x in cre],
                "ecpu": med([x[2] for x in cre]),
                "edbcpu": med([x[3] for x in cre]) if db else None}

    # ---- two servers: propagation -------------------------------------------

    def propagation(self):
        """{label: [(seconds from the call, seconds from its answer)]}"""
        H = self.H
        tmp = tempfile.mkdtemp(prefix="wick-bench-multi-")
        os.mkdir(os.path.join(tmp, "a"))
        os.mkdir(os.path.join(tmp, "b"))
        b = self.server("multi", os.path.join(tmp, "b"))
        a = self.server("multi", os.path.join(tmp, "a"))
        uid = os.getuid()
        out = {}
        with self.grpc.insecure_channel("unix://" + a.sock) as ch:
            stub = self.AG.EntriesStub(ch)
            for label, srv in (("B", b), ("A", a)):
                bundle = srv.bundle_pem(os.path.join(tmp, "bundle-%s.pem" %
                                                     label))
                tok = srv.token()
                parent = H.agent_spiffe_id(tok)
                self.create(stub, [self.entry_msg(
                    "spiffe://%s/prop/%s/base" % (H.TD, label), parent,
                    "uid:%d" % uid)])
                agent = H.AgentDaemon(srv, bundle)
                self.daemons.append(agent)
                agent.start(token=tok, timeout=60)
                w = Watch(self.grpc, agent.sock)
                try:
                    w.wait("spiffe://%s/prop/%s/base" % (H.TD, label), 60)
                    lat = []
                    for n in range(PROP_TRIES):
                        # Not always at the same point of the agent's
                        # 1 s sync cycle.
                        time.sleep(random.uniform(0, 1))
                        sid = "spiffe://%s/prop/%s/%d" % (H.TD, label, n)
                        t0 = time.monotonic()
                        self.create(stub, [self.entry_msg(
                            sid, parent, "uid:%d" % uid)])
                        t1 = time.monotonic()
                        t2 = w.wait(sid, 60)
                        lat.append((t2 - t0, t2 - t1))
                    out[label] = lat
                finally:
                    w.stop()
                    self.stop(agent)
        self.stop(a)
        self.stop(b)
        shutil.rmtree(tmp, ignore_errors=True)
        return out

    def cleanup(self):
        for d in reversed(self.daemons):
            try:
                d.stop()
            except Exception:  # noqa: BLE001
                pass
            shutil.rmtree(d.tmp, ignore_errors=True)
        if self.pg is not None:
            self.pg.stop()
        shutil.rmtree(self.stubs, ignore_errors=True)


class Watch:
    """One FetchX509SVID stream; when each SPIFFE ID first arrived."""

    def __init__(self, grpc, sock):
        import workload_pb2 as W
        import workload_pb2_grpc as WG
        self.grpc = grpc
        self.first = {}
        self.cond = threading.Condition()
        self.ch = grpc.insecure_channel("unix://" + sock)
        self.st = WG.SpiffeWorkloadAPIStub(self.ch).FetchX509SVID(
            W.X509SVIDRequest(), metadata=(("workload.spiffe.io", "true"),))
        self.error = None
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        try:
            for msg in self.st:
                t = time.monotonic()
                with self.cond:
                    for s in msg.svids:
                        self.first.setdefault(s.spiffe_id, t)
                    self.cond.notify_all()
        except self.grpc.RpcError as e:
            with self.cond:
                self.error = e
                self.cond.notify_all()

    def wait(self, sid, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while sid not in self.first:
                if self.error is not None and \
                        self.error.code() != self.grpc.StatusCode.CANCELLED:
                    raise RuntimeError("workload stream: %s" % self.error)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("%s not served within %d s" %
                                       (sid, timeout))
                self.cond.wait(min(left, 1))
            return self.first[sid]

    def stop(self):
        self.st.cancel()
        self.thread.join(10)
        self.ch.close()


def fmt(x):
    return "{:,.0f}".format(x)


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-rel")
    secs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    b = Bench(build, secs, runs)
    t_start = time.monotonic()
    try:
        b.start_pg()
        sq = b.one_server("SQLite", None)
        pg = b.one_server("PostgreSQL", "bench")
        prop = b.propagation()
    finally:
        b.cleanup()
    w = 58
    print()
    print("%d CPUs; medians of %d runs; PostgreSQL %s on a Unix socket, "
          "fsync %s" % (os.cpu_count(), runs,
                        subprocess.run(["psql", "--version"],
                                       capture_output=True,
                                       text=True).stdout.split()[2],
                        b.pg_fsync))
    print("%-*s %18s %18s" % (w, "measure", "SQLite", "PostgreSQL"))
    rows = [
        ("X.509-SVIDs/s (TLS agent API, batch 100, 4 in flight, %d s)" %
         secs, fmt(sq["rate"]), fmt(pg["rate"])),
        ("  runs", "/".join(fmt(x) for x in sq["rates"]),
         "/".join(fmt(x) for x in pg["rates"])),
        ("server CPU s per 1,000 SVIDs", "%.3f" % sq["cpu"],
         "%.3f" % pg["cpu"]),
        ("PostgreSQL's own CPU s per 1,000 SVIDs", "-",
         "%.3f" % pg["dbcpu"]),
        ("entries created/s, one per call (admin API)", fmt(sq["single"]),
         fmt(pg["single"])),
        ("  runs", "/".join(fmt(x) for x in sq["singles"]),
         "/".join(fmt(x) for x in pg["singles"])),
        ("entries created/s, 100 per call (admin API)", fmt(sq["batch"]),
         fmt(pg["batch"])),
        ("  runs", "/".join(fmt(x) for x in sq["batches"]),
         "/".join(fmt(x) for x in pg["batches"])),
        ("server CPU s per 1,000 entries (100 per call)",
         "%.3f" % sq["ecpu"], "%.3f" % pg["ecpu"]),
        ("PostgreSQL's own CPU s per 1,000 entries (100 per call)", "-",
         "%.3f" % pg["edbcpu"]),
    ]
    for r in rows:
        print("%-*s %18s %18s" % (w, r[0], r[1], r[2]))
    print()
    print("Two servers on one PostgreSQL database; an entry created through "
          "A's admin API,\nuntil its SVID reaches a workload (agent "
          "sync_interval 1s), %d tries:" % PROP_TRIES)
    for label, what in (("B", "agent of B (the other server)"),
                        ("A", "agent of A (the same server)")):
        lat = prop[label]
        print("  %-31s from the call: median %.3f s, max %.3f s; from its "
              "answer: median %.3f s, max %.3f s" %
              (what, med([x[0] for x in lat]), max(x[0] for x in lat),
               med([x[1] for x in lat]), max(x[1] for x in lat)))
    print("\n(run took %.0f s)" % (time.monotonic() - t_start))


if __name__ == "__main__":
    main()
