"""Docker workload attestation end to end: a real wick-server, a real
wick-agent with WorkloadAttestor "unix" and "docker", and podman's
Docker-compatible API (podman.py) as the engine.  Workloads are the host's
Python with grpcio running inside busybox containers (--network none),
reaching the agent through a read-only bind mount of its socket directory.

The engine socket the agent is configured with (D/engine.sock) belongs to
the test: it is podman's API service, or nothing (the engine stopped), or
a socket that accepts and never answers.  A container the agent has not
seen before is used whenever the engine's answer matters, so a per-
container cache in the agent (allowed while the container lives) cannot
stand in for the engine.  While the silent engine holds the agent's
connection, a host process must be answered with that connection still
open: an agent that waited for the engine on its loop could answer only
after giving up on it.

Time is asserted only as generous upper bounds derived from the docker
attestor's engine timeout (ENGINE_TIMEOUT); nothing else here depends on
speed.  ContainerUnixTest needs only the unix attestor: containers are
served their unix identity through the bind-mounted socket.
"""
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import podman as P  # noqa: E402
import server_harness as H  # noqa: E402

TD = H.TD
HDR = (("workload.spiffe.io", "true"),)
STUBS = H.grpc_stubs("workload.proto")
import workload_pb2 as W  # noqa: E402
import workload_pb2_grpc as WG  # noqa: E402

# The docker attestor's timeout for one attestation's engine calls.  The
# configuration below sets none, so this is the attestor's default
# (DOCKER_DEFAULT_TIMEOUT_MS) and must follow it.  Every time bound is
# derived from it, generously: a call must be answered within BOUND.
ENGINE_TIMEOUT = 5.0
BOUND = 2 * ENGINE_TIMEOUT + 10
# How long a new entry or a returning engine may take to show (sync is 1 s).
SETTLE = 3 * ENGINE_TIMEOUT + 30
# The deadline a client gives each call: past BOUND, so a slow answer is
# seen as slow rather than as DEADLINE_EXCEEDED.
CALL_TIMEOUT = BOUND + 20

# Containers podman runs are named in libpod's cgroup form, which the
# attestor (as SPIRE's) asks of podman_socket_path; docker_socket_path
# points at the same engine so that nothing here reaches a system socket.
DOCKER_ATTESTOR = H.UNIX_WORKLOAD_ATTESTOR.replace("%", "%%") + """
    WorkloadAttestor "docker" {
        plugin_data {
            docker_socket_path = "unix://%(engine)s"
            podman_socket_path = "unix://%(engine)s"
        }
    }"""

SPECIAL = "localhost/wick-busybox:special"   # the image entry's image

# SPIFFE IDs and their selectors.  Containers run as uids with no entry
# (2001, 2002) unless a case is about unix selectors (1234).
WEB = "spiffe://%s/web" % TD
API = "spiffe://%s/api" % TD
WEB_1234 = "spiffe://%s/web/uid1234" % TD
UID_1234 = "spiffe://%s/uid/1234" % TD
HOST_ROOT = "spiffe://%s/host/root" % TD
BATCH = "spiffe://%s/env/batch" % TD
BY_IMAGE = "spiffe://%s/image/special" % TD

pm = None           # the podman environment
srv = None          # the server, shared by both agents
engine = None       # the engine socket path the docker attestor uses
special_image = None   # Config.Image of a container from SPECIAL


def setUpModule():
    global pm, srv, engine, special_image
    # ctest's timeout sends SIGTERM: leave through the cleanups.
    signal.signal(signal.SIGTERM, _on_sigterm)
    pm = P.Podman()
    t0 = time.monotonic()
    pm.build_image()
    pm.build_image(SPECIAL, labels={"wick.test": "special"})
    _timing("build both images", time.monotonic() - t0)
    pm.share_stubs(STUBS)
    engine = os.path.join(pm.dir, "engine.sock")
    pm.start_service(engine)
    # The image entry names Config.Image as the inspect API reports it.
    probe = pm.run(name="probe", image=SPECIAL)
    special_image = pm.api_inspect(probe)["Config"]["Image"]
    pm.rm(probe)
    srv = H.Server(port=H.free_port())
    _daemons.append(srv)
    srv.start()


def tearDownModule():
    try:
        if pm is not None:
            _timing_report()
            pm.stop()
    finally:
        if srv is not None:
            H.stop_cleanly(srv)


def _on_sigterm(*_):
    raise KeyboardInterrupt("SIGTERM")


_daemons = []       # agents, then the server: stopped at exit if need be


@atexit.register
def _stop_daemons():
    for d in reversed(_daemons):
        if d.proc is not None:
            d.stop()


_timings = []


def _timing(what, seconds):
    _timings.append("%s %.3f s" % (what, seconds))


def _timing_report():
    st = pm.stats
    lines = list(_timings)
    for k in sorted(st):
        v = st[k]
        if v:
            lines.append("podman %s: %d, mean %.3f s, max %.3f s" %
                         (k, len(v), sum(v) / len(v), max(v)))
    sys.stderr.write("timings: " + "; ".join(lines) + "\n")


class Base(unittest.TestCase):
    """An agent of its own on the shared server, with entries parented to
    it, and helpers for workloads on the host and in containers."""

    attestors = H.UNIX_WORKLOAD_ATTESTOR
    entries = ()        # (spiffe_id, [selectors])

    @classmethod
    def setUpClass(cls):
        bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
        tok = srv.token()
        for sid, sels in cls.entries:
            srv.create_entry(sid, H.agent_spiffe_id(tok), sels)
        cls.agent = H.AgentDaemon(srv, bundle,
                                  workload_attestors=cls.attestors)
        _daemons.append(cls.agent)
        try:
            cls.agent.start(token=tok)
        except Exception:
            cls.agent.stop()
            raise
        cls.sockdir = os.path.dirname(cls.agent.sock)
        cls.target = "unix://" + cls.agent.sock
        # Ready once the host's own entry is served.
        deadline = time.monotonic() + SETTLE
        while True:
            code, ids, _ = cls.host_fetch(cls)
            if HOST_ROOT in ids or time.monotonic() > deadline:
                break
            time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.agent)

    # ---- workloads -------------------------------------------------------

    def host_fetch(self, timeout=CALL_TIMEOUT):
        """FetchX509SVID from this (host, uid 0) process: (status name,
        sorted SPIFFE IDs, seconds)."""
        t0 = time.monotonic()
        with grpc.insecure_channel(self.target) as ch:
            call = WG.SpiffeWorkloadAPIStub(ch).FetchX509SVID(
                W.X509SVIDRequest(), metadata=HDR, timeout=timeout)
            try:
                ids = sorted(s.spiffe_id for s in next(call).svids)
                return "OK", ids, time.monotonic() - t0
            except grpc.RpcError as e:
                return e.code().name, [], time.monotonic() - t0
            finally:
                call.cancel()

    def host_fetch_as(self, uid):
        """The same from a host process running as uid: (status, ids)."""
        script = textwrap.dedent("""
            import sys, grpc
            sys.path.insert(0, %r)
            import workload_pb2 as W, workload_pb2_grpc as WG
            with grpc.insecure_channel(%r) as ch:
                call = WG.SpiffeWorkloadAPIStub(ch).FetchX509SVID(
                    W.X509SVIDRequest(),
                    metadata=(("workload.spiffe.io", "true"),), timeout=%r)
                try:
                    print("OK", *sorted(s.spiffe_id for s in next(call).svids))
                except grpc.RpcError as e:
                    print(e.code().name)
        """ % (STUBS, self.target, CALL_TIMEOUT))
        p = subprocess.run(["setpriv", "--reuid=%d" % uid,
                            "--regid=%d" % uid, "--clear-groups",
                            sys.executable, "-c", script],
                           capture_output=True, text=True, cwd="/",
                           timeout=CALL_TIMEOUT + 30,
                           env={"PYTHONDONTWRITEBYTECODE": "1"})
        out = p.stdout.split()
        self.assertTrue(out, p.stderr)
        return out[0], out[1:]

    def container(self, name, **kw):
        """A long-running client container (removed after the test)."""
        c = pm.run_client(self.sockdir, name=name, **kw)
        self.addCleanup(pm.rm, c)
        return c

    def fetch(self, c):
        """One FetchX509SVID from inside c; its answer must come within
        BOUND."""
        rep = pm.fetch(c, timeout=CALL_TIMEOUT)
        self.assertLessEqual(rep["max_seconds"], BOUND, rep)
        return rep

    def assert_ids(self, c, want, within=0.0):
        """Inside c, FetchX509SVID gives exactly the SVIDs of want, each
        leaf's only URI SAN its SPIFFE ID.  With within, retry (in the
        container) until it does or that many seconds passed."""
        want = sorted(want)
        if within:
            rep = pm.fetch(c, want=set(want), within=within,
                           timeout=CALL_TIMEOUT)
        else:
            rep = pm.fetch(c, timeout=CALL_TIMEOUT)
        self.assertEqual(rep["code"], "OK", rep)
        self.assertEqual(rep["ids"], want, rep)
        self.assertEqual(rep["uris"], [[i] for i in want], rep)
        self.assertLessEqual(rep["max_seconds"], BOUND, rep)
        return rep

    def assert_denied(self, c):
        rep = self.fetch(c)
        self.assertEqual(rep["code"], "PERMISSION_DENIED", rep)
        self.assertEqual(rep["details"], "no identity issued", rep)
        return rep

    def assert_host_served(self):
        code, ids, secs = self.host_fetch()
        self.assertEqual((code, ids), ("OK", [HOST_ROOT]))
        self.assertLessEqual(secs, BOUND)

    def assert_healthy(self):
        p = self.agent.cli("healthcheck", "-socketPath", self.agent.sock,
                           check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class ContainerUnixTest(Base):
    """Only the unix attestor: a process in a container is its uid, seen
    through SO_PEERCRED on the bind-mounted socket."""

    entries = ((UID_1234, ["unix:uid:1234"]),
               (HOST_ROOT, ["unix:uid:0"]),
               (WEB, ["docker:label:app:web"]))

    def test_container_gets_its_unix_identity(self):
        c = self.container("unix-1234", user="1234:5678",
                           labels={"app": "web"})
        rep = self.assert_ids(c, [UID_1234], within=SETTLE)
        self.assertEqual((rep["uid"], rep["gid"]), (1234, 5678))

    def test_container_unregistered_uid_denied(self):
        c = self.container("unix-2001", user="2001:2001",
                           labels={"app": "web"})
        self.assert_denied(c)

    def test_host_unix_identity(self):
        self.assert_host_served()


class DockerAttestorTest(Base):
    """Both attestors; the engine is podman's compat API at `engine`."""

    entries = ((WEB, ["docker:label:app:web"]),
               (API, ["docker:label:app:api"]),
               (WEB_1234, ["docker:label:app:web", "unix:uid:1234"]),
               (UID_1234, ["unix:uid:1234"]),
               (HOST_ROOT, ["unix:uid:0"]),
               (BATCH, ["docker:env:ROLE=batch"]))

    @classmethod
    def setUpClass(cls):
        cls.attestors = DOCKER_ATTESTOR % {"engine": engine}
        cls.entries = cls.entries + (
            (BY_IMAGE, ["docker:image_id:" + special_image]),)
        super().setUpClass()

    def engine_down(self):
        """Stop the API service (by pid); the socket file goes too.  The
        engine comes back after the test if the test does not bring it
        back itself."""
        pm.stop_service()
        self.addCleanup(self.engine_up)

    def engine_up(self):
        if pm.service is None:
            pm.start_service(engine)

    # a. a container labelled app=web gets the app=web entry, only that
    def test_a_label_web(self):
        c = self.container("a-web", user="2001:2001", labels={"app": "web"})
        self.assert_ids(c, [WEB], within=SETTLE)
        # Again, now from a container the agent has seen (cached or not).
        self.assert_ids(c, [WEB])

    # b. a container labelled otherwise is refused
    def test_b_other_label_denied(self):
        c = self.container("b-db", user="2001:2001", labels={"app": "db"})
        self.assert_denied(c)
        c = self.container("b-none", user="2001:2001")
        self.assert_denied(c)

    # c. host processes: unix identity only, no docker selectors
    def test_c_host_unix_only(self):
        self.assert_host_served()
        # uid 1234 on the host: the unix entry, never the one that also
        # needs docker:label:app:web.
        self.assertEqual(self.host_fetch_as(1234), ("OK", [UID_1234]))
        self.assertEqual(self.host_fetch_as(2001), ("PERMISSION_DENIED", []))
        self.assert_healthy()

    # d. the engine stopped: what the other attestors found; recovery
    def test_d_engine_stopped(self):
        seen = self.container("d-seen", user="1234:5678",
                              labels={"app": "web"})
        self.assert_ids(seen, [WEB, WEB_1234, UID_1234], within=SETTLE)
        self.engine_down()
        self.assertFalse(os.path.exists(engine))
        # Containers started while the engine is down (the CLI needs no
        # service): the agent cannot know their labels.
        fresh = self.container("d-fresh", user="1234:5678",
                               labels={"app": "web"})
        self.assert_ids(fresh, [UID_1234])
        denied = self.container("d-fresh-2001", user="2001:2001",
                                labels={"app": "web"})
        self.assert_denied(denied)
        # A container the agent attested before: answered in time, with
        # its unix identity at least (a live container's cached labels
        # may still count).
        rep = self.fetch(seen)
        self.assertEqual(rep["code"], "OK", rep)
        self.assertIn(sorted(rep["ids"]),
                      (sorted([UID_1234]), sorted([WEB, WEB_1234, UID_1234])),
                      rep)
        self.assert_host_served()
        self.assert_healthy()
        # The engine returns on the same socket: full identity again.
        t0 = time.monotonic()
        self.engine_up()
        self.assert_ids(fresh, [WEB, WEB_1234, UID_1234], within=SETTLE)
        _timing("d: recovery after the engine returned",
                time.monotonic() - t0)
        self.assert_ids(denied, [WEB], within=SETTLE)
        self.assert_host_served()

    # e. an engine that accepts and never answers
    def test_e_engine_silent(self):
        self.engine_down()
        silent = SilentEngine(engine)
        self.addCleanup(silent.close)
        c = self.container("e-web", user="1234:5678", labels={"app": "web"})
        box = {}

        def in_container():
            try:
                box["rep"] = pm.fetch(c, timeout=CALL_TIMEOUT)
            except Exception as e:      # noqa: BLE001 -- reported below
                box["rep"] = {"error": repr(e)}
        th = threading.Thread(target=in_container, daemon=True)
        th.start()
        # The attestor is now waiting on the engine ...
        self.assertTrue(silent.wait_accepted(1, CALL_TIMEOUT + 60),
                        "the agent never asked the engine")
        # ... and host processes are served meanwhile: answered while the
        # agent still holds the engine connection it is waiting on (an
        # agent that waited on its loop would give up on the engine, and
        # close that connection, before it could answer anyone else).
        code, ids, _ = self.host_fetch()
        waiting = silent.open_connections()
        self.assertEqual((code, ids), ("OK", [HOST_ROOT]))
        self.assertGreaterEqual(waiting, 1, "the host's call was answered "
                                "only once the engine wait was over")
        self.assert_healthy()
        th.join(CALL_TIMEOUT + 60)
        self.assertFalse(th.is_alive(), "the container's call never ended")
        rep = box["rep"]
        self.assertEqual(rep["code"], "OK", rep)
        self.assertEqual(rep["ids"], [UID_1234], rep)
        self.assertLessEqual(rep["max_seconds"], BOUND, rep)
        # Another new container while the engine stays silent: the same.
        c2 = self.container("e-web-2", user="1234:5678",
                            labels={"app": "web"})
        self.assert_ids(c2, [UID_1234])
        # The engine answers again.
        silent.close()
        self.engine_up()
        self.assert_ids(c, [WEB, WEB_1234, UID_1234], within=SETTLE)
        self.assert_host_served()

    # f. replaced under the same name: the new container's identity
    def test_f_replaced_same_name(self):
        old = self.container("f-swap", user="2001:2001",
                             labels={"app": "web"})
        self.assert_ids(old, [WEB], within=SETTLE)
        pm.rm(old)
        new = self.container("f-swap", user="2001:2001",
                             labels={"app": "api"})
        self.assertNotEqual(new.id, old.id)
        self.assert_ids(new, [API])
        pm.rm(new)
        again = self.container("f-swap", user="2001:2001",
                               labels={"app": "other"})
        self.assert_denied(again)

    # g. entries by image (Config.Image) and by environment variable
    def test_g_image_and_env(self):
        self.assertEqual(special_image,
                         pm.api_inspect(self.container(
                             "g-probe", image=SPECIAL))["Config"]["Image"])
        img = self.container("g-image", image=SPECIAL, user="2002:2002")
        self.assert_ids(img, [BY_IMAGE], within=SETTLE)
        env = self.container("g-env", user="2002:2002",
                             env={"ROLE": "batch"})
        self.assert_ids(env, [BATCH], within=SETTLE)
        both = self.container("g-both", image=SPECIAL, user="2002:2002",
                              env={"ROLE": "batch"})
        self.assert_ids(both, [BATCH, BY_IMAGE], within=SETTLE)
        # Near misses: another image, another value.
        self.assert_denied(self.container("g-plain", user="2002:2002",
                                          env={"ROLE": "batchx"}))


JWT_SCRIPT = textwrap.dedent("""
    import json, sys, grpc
    sys.path.insert(0, %r)
    import workload_pb2 as W, workload_pb2_grpc as WG
    n, size = int(sys.argv[1]), int(sys.argv[2])
    with grpc.insecure_channel(%r) as ch:
        stub = WG.SpiffeWorkloadAPIStub(ch)
        futs = [stub.FetchJWTSVID.future(
            W.JWTSVIDRequest(audience=["aud-%%d-" %% i + "x" * size]),
            metadata=(("workload.spiffe.io", "true"),), timeout=%r)
            for i in range(n)]
        out = []
        for f in futs:
            try:
                f.result()
                out.append(["OK", ""])
            except grpc.RpcError as e:
                out.append([e.code().name, e.details() or ""])
    print(json.dumps(out))
""")


class EngineWaitTest(Base):
    """An agent whose engine accepts and never answers, so that a
    container's calls wait for the docker attestor: what they hold while
    they wait, and the agent stopping meanwhile."""

    entries = ((UID_1234, ["unix:uid:1234"]),
               (HOST_ROOT, ["unix:uid:0"]))

    @classmethod
    def setUpClass(cls):
        cls.silent = SilentEngine(os.path.join(pm.dir, "silent.sock"))
        cls.attestors = DOCKER_ATTESTOR % {"engine": cls.silent.path}
        try:
            super().setUpClass()
        except Exception:
            cls.silent.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.agent.proc is not None:
                H.stop_cleanly(cls.agent)
        finally:
            cls.silent.close()

    def jwt_calls(self, c, n, size, box):
        """n FetchJWTSVID calls on one connection from inside c, each
        request about size bytes, in a thread: box["rep"] gets their
        [status, details]."""
        script = JWT_SCRIPT % (P.SHARE_IN, "unix://%s/api.sock" %
                               P.SOCKET_DIR_IN, CALL_TIMEOUT)

        def run():
            try:
                p = pm.exec(c, "/usr/bin/python3", "-c", script, str(n),
                            str(size),
                            env={"PYTHONDONTWRITEBYTECODE": "1"},
                            check=False, timeout=CALL_TIMEOUT + 60)
                box["rep"] = json.loads(p.stdout.strip().splitlines()[-1])
            except Exception as e:      # noqa: BLE001 -- reported below
                box["rep"] = repr(e)
        th = threading.Thread(target=run, daemon=True)
        th.start()
        return th

    def test_a_held_while_waiting(self):
        # Requests that wait for the engine are held for their caller:
        # charged to its budgets (256 KiB a connection), so one connection
        # cannot make the agent hold more than that by sending them.
        c = self.container("held-wait", user="1234:5678")
        box = {}
        th = self.jwt_calls(c, 8, 60000, box)
        th.join(CALL_TIMEOUT + 60)
        self.assertFalse(th.is_alive())
        rep = box["rep"]
        self.assertIsInstance(rep, list, box)
        refused = [r for r in rep if r[0] == "RESOURCE_EXHAUSTED"]
        self.assertTrue(refused, rep)
        self.assertIn("connection budget", refused[0][1], rep)
        # The others waited for the engine, then were answered (their
        # audiences are too long for a JWT-SVID: that is not the point).
        self.assertLess(len(refused), len(rep), rep)
        self.assert_host_served()

    def test_z_stop_while_waiting(self):
        # A FetchJWTSVID waits for the engine; the agent stops meanwhile:
        # the call ends, and the agent exits cleanly.
        c = self.container("stop-wait", user="1234:5678")
        box = {}
        before = len(self.silent.conns)
        th = self.jwt_calls(c, 1, 10, box)
        self.assertTrue(self.silent.wait_accepted(before + 1,
                                                  CALL_TIMEOUT + 60),
                        "the agent never asked the engine")
        time.sleep(0.5)     # the request message reaches the agent too
        rc = self.agent.stop()
        out = self.agent.all_output()
        self.assertEqual(rc, 0, out[-8000:])
        self.assertIsNone(H.sanitizer_report(out), out[-8000:])
        th.join(CALL_TIMEOUT + 60)
        self.assertFalse(th.is_alive())
        self.assertIsInstance(box["rep"], list, box)
        self.assertNotEqual(box["rep"][0][0], "OK", box)


class SilentEngine:
    """A Unix socket that accepts every connection, reads what comes and
    never answers; close() ends it and its connections."""

    def __init__(self, path):
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(16)
        self.conns = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.srv, selectors.EVENT_READ)
        while not self.closed:
            for key, _ in sel.select(0.1):
                if key.fileobj is self.srv:
                    try:
                        conn, _ = self.srv.accept()
                    except OSError:
                        continue
                    sel.register(conn, selectors.EVENT_READ)
                    with self.cond:
                        self.conns.append(conn)
                        self.cond.notify_all()
                else:
                    try:
                        data = key.fileobj.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(key.fileobj)
        sel.close()

    def open_connections(self):
        """How many accepted connections the peer has not closed (the
        kernel's view now: a closed peer reads as EOF at once)."""
        n = 0
        with self.cond:
            conns = list(self.conns)
        for c in conns:
            try:
                if c.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                    n += 1
            except BlockingIOError:
                n += 1
            except OSError:
                pass
        return n

    def wait_accepted(self, n, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: len(self.conns) >= n, timeout)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.srv.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    unittest.main(verbosity=2)
