"""Another uid's SVID by exec after connect: the Workload API must attest
the process that connected, not whatever it has become since.

A process of uid 65534 connects to the agent's socket, completes the HTTP/2
handshake (so the agent has accepted the connection), and forks; the child
keeps the socket; the parent execs a setuid-root program that blocks
(passwd at its prompt, or a root-owned 4755 copy of sleep).  The child then
calls FetchX509SVID on the inherited connection with raw HTTP/2 (the `h2`
library): the answer must be PERMISSION_DENIED, never the SVID of the
`unix:uid:0` entry.  The same dance with an exec of another, non-setuid
binary must not earn the SVIDs of an entry selecting that binary's path.
Without the exec, the child gets uid 65534's own SVIDs (the control).

Runs as root (it registers entries for uid 0 and runs setuid programs).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402

TD = H.TD
NOBODY = 65534
SLEEP = os.path.realpath(shutil.which("sleep") or "/bin/sleep")
PYTHON = os.path.realpath(sys.executable)

# The workload.  argv: socket path, result fd, then the program the
# parent execs after the fork ("-" for none: it waits on stdin).  The
# parent connects and finishes the HTTP/2 handshake first: the agent's
# SETTINGS frame comes after it accepted the connection.
ATTACKER = textwrap.dedent(r"""
    import json, os, socket, sys, time
    import h2.config, h2.connection, h2.events

    sock_path, out_fd, prog = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sock_path)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    settled = False
    while not settled:
        data = s.recv(65536)
        if not data:
            raise SystemExit("agent closed the connection")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                settled = True
        s.sendall(conn.data_to_send())

    with open("/proc/self/status") as f:
        my_name = [l for l in f if l.startswith("Name:")][0]
    parent = os.getpid()
    child = os.fork()
    if child != 0:
        # The parent: become another program, keeping nothing but stdin
        # (a pipe the test holds open, so that it blocks).
        os.close(out_fd)
        if prog[0] == "-":
            os.read(0, 1)
            os._exit(0)
        os.execv(prog[0], prog)

    # The child, holding the connection: wait until the parent runs the
    # other program and blocks in it, then call.
    deadline = time.monotonic() + 20
    while prog[0] != "-":
        with open("/proc/%d/status" % parent) as f:
            st = f.readlines()
        if [l for l in st if l.startswith("Name:")][0] != my_name and \
                "State:\tS" in "".join(st):
            break
        if time.monotonic() > deadline:
            raise SystemExit("the parent never exec'd")
        time.sleep(0.01)
    with open("/proc/%d/status" % parent) as f:
        parent_ids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]

    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [
        (":method", "POST"), (":scheme", "http"),
        (":path", "/SpiffeWorkloadAPI/FetchX509SVID"),
        (":authority", "localhost"), ("content-type", "application/grpc"),
        ("te", "trailers"), ("workload.spiffe.io", "true")])
    conn.send_data(sid, b"\0\0\0\0\0", end_stream=True)
    s.sendall(conn.data_to_send())
    res = {"headers": {}, "trailers": {}, "body": "", "parent_uids":
           parent_ids}
    body = b""
    done = False
    while not done:
        data = s.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                res["headers"] = dict(ev.headers)
                if "grpc-status" in res["headers"]:
                    done = True
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(len(ev.data), sid)
                if len(body) >= 5 and \
                        len(body) >= 5 + int.from_bytes(body[1:5], "big"):
                    done = True
            elif isinstance(ev, h2.events.TrailersReceived):
                res["trailers"] = dict(ev.headers)
                done = True
            elif isinstance(ev, (h2.events.StreamEnded,
                                 h2.events.StreamReset,
                                 h2.events.ConnectionTerminated)):
                done = True
        s.sendall(conn.data_to_send())
    res["body"] = body.hex()
    os.write(out_fd, json.dumps(res).encode())
    os._exit(0)
""")


def svid_ids(res):
    """The SPIFFE IDs in the first X509SVIDResponse of a result."""
    body = bytes.fromhex(res["body"])
    if len(body) < 5:
        return []
    msg = body[5:5 + int.from_bytes(body[1:5], "big")]
    ids = []
    for f, v in H.pb_fields(msg):
        if f == 1:
            ids += [sv.decode() for g, sv in H.pb_fields(v) if g == 1]
    return ids


def summary(res):
    """A result without its bytes (they hold keys): status and IDs."""
    return {"status": grpc_status(res), "ids": svid_ids(res),
            "parent_uids": res.get("parent_uids")}


def grpc_status(res):
    for part in ("trailers", "headers"):
        if "grpc-status" in res[part]:
            return int(res[part]["grpc-status"]), \
                res[part].get("grpc-message", "")
    return None, None


class WorkloadAttackTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (setuid programs, uid 0 "
                                    "entries)")
        cls.root_id = "spiffe://%s/root" % TD
        cls.nobody_id = "spiffe://%s/nobody" % TD
        cls.python_id = "spiffe://%s/nobody/python" % TD
        cls.sleep_id = "spiffe://%s/nobody/sleep" % TD
        cls.srv, cls.bundle, cls.agent = H.server_and_agent([
            (cls.root_id, ["unix:uid:0"]),
            (cls.nobody_id, ["unix:uid:%d" % NOBODY]),
            (cls.python_id, ["unix:uid:%d" % NOBODY, "unix:path:" + PYTHON]),
            (cls.sleep_id, ["unix:uid:%d" % NOBODY, "unix:path:" + SLEEP])])
        # A scratch directory every uid can enter, for the setuid copy.
        cls.scratch = tempfile.mkdtemp(prefix="wick-attack-")
        os.chmod(cls.scratch, 0o755)
        # Until every entry is synced and signed: root's own fetch, and
        # the control dance for uid 65534.
        deadline = time.monotonic() + 60
        while True:
            res = cls.dance(["-"])
            ids = svid_ids(res)
            root = cls.dance_as_root()
            if {cls.nobody_id, cls.python_id} <= set(ids) and \
                    cls.root_id in root:
                break
            if time.monotonic() > deadline:
                raise AssertionError("SVIDs never served: %r %r" %
                                     (summary(res), root))
            time.sleep(0.3)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)
        H.stop_cleanly(cls.agent, cls.srv)

    @classmethod
    def dance_as_root(cls):
        """Root's own fetch, on a fresh connection, no exec."""
        r, w = os.pipe()
        p = subprocess.Popen([sys.executable, "-c", ATTACKER,
                              cls.agent.sock, str(w), "-"],
                             stdin=subprocess.PIPE, pass_fds=(w,), cwd="/")
        os.close(w)
        out = cls.collect(p, r)
        return svid_ids(out) if out else []

    @staticmethod
    def collect(p, r, check_parent=None):
        """The child's result from pipe r; then the parent is ended."""
        data = b""
        try:
            while True:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                data += chunk
            if check_parent is not None:
                check_parent(p)
        finally:
            os.close(r)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.stdin.close()
            p.wait()
        return json.loads(data) if data else None

    @classmethod
    def dance(cls, prog, check_parent=None):
        """Run the workload as uid 65534: connect, fork, the parent execs
        prog (["-"]: none), the child fetches.  Returns its result."""
        r, w = os.pipe()
        with tempfile.TemporaryFile() as err:
            p = subprocess.Popen(["setpriv", "--reuid=%d" % NOBODY,
                                  "--regid=%d" % NOBODY, "--clear-groups",
                                  sys.executable, "-c", ATTACKER,
                                  cls.agent.sock, str(w)] + list(prog),
                                 stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=err,
                                 pass_fds=(w,), cwd="/")
            os.close(w)
            res = cls.collect(p, r, check_parent)
            if res is None:
                err.seek(0)
                raise AssertionError("the workload reported nothing:\n" +
                                     err.read().decode(errors="replace"))
        return res

    def assert_refused(self, res, ids_in_log):
        self.assertIsNotNone(res, "the workload's child reported nothing")
        got = svid_ids(res)
        self.assertNotIn(self.root_id, got, "uid 0's SVID was served to "
                         "uid %d: %r" % (NOBODY, summary(res)))
        self.assertEqual(got, [], summary(res))
        code, _ = grpc_status(res)
        self.assertEqual(code, 7, "want PERMISSION_DENIED: %r" %
                         (summary(res),))
        deadline = time.monotonic() + 10
        while ids_in_log not in self.agent.output():
            if time.monotonic() > deadline:
                self.fail("no log line with %r:\n%s" %
                          (ids_in_log, self.agent.output()))
            time.sleep(0.05)

    def parent_still_blocks(self, p):
        # The refusal must have been given while the setuid program ran.
        self.assertIsNone(p.poll(), "the setuid program did not block")

    # ---- the control ---------------------------------------------------

    def test_control_without_exec(self):
        res = self.dance(["-"])
        ids = svid_ids(res)
        self.assertIn(self.nobody_id, ids, summary(res))
        self.assertIn(self.python_id, ids, summary(res))
        self.assertNotIn(self.root_id, ids)
        self.assertNotIn(self.sleep_id, ids)
        self.assertEqual(grpc_status(res)[0], None)

    # ---- exec of a setuid-root program after connect -------------------

    def test_setuid_passwd_after_connect(self):
        passwd = "/usr/bin/passwd"
        st = os.stat(passwd) if os.path.exists(passwd) else None
        if st is None or st.st_uid != 0 or not st.st_mode & 0o4000:
            self.skipTest("no setuid-root %s" % passwd)
        res = self.dance([passwd], self.parent_still_blocks)
        self.assertEqual(res["parent_uids"][1], "0", summary(res))
        self.assert_refused(res, "connected as uid %d gid %d but now runs "
                            "as uid %d/0/0/0" % (NOBODY, NOBODY, NOBODY))

    def test_setuid_copy_after_connect(self):
        if os.statvfs(self.scratch).f_flag & os.ST_NOSUID:
            self.skipTest("%s is on a nosuid file system" % self.scratch)
        prog = os.path.join(self.scratch, "suid-sleep")
        shutil.copy(SLEEP, prog)
        os.chown(prog, 0, 0)
        os.chmod(prog, 0o4755)
        res = self.dance([prog, "60"], self.parent_still_blocks)
        self.assertEqual(res["parent_uids"], [str(NOBODY), "0", "0", "0"],
                         summary(res))
        self.assert_refused(res, "connected as uid %d gid %d but now runs "
                            "as uid %d/0/0/0" % (NOBODY, NOBODY, NOBODY))

    # ---- exec of another, non-setuid binary after connect --------------

    def test_exec_other_binary_after_connect(self):
        """The connection was made by python; the process now runs sleep,
        for which an entry exists.  path and sha256 describe the binary
        at accept: the call is refused rather than attested as sleep."""
        res = self.dance([SLEEP, "60"], self.parent_still_blocks)
        self.assertNotIn(self.sleep_id, svid_ids(res), summary(res))
        self.assert_refused(res, "binary changed since connect")


if __name__ == "__main__":
    unittest.main(verbosity=2)
