"""Socket and data paths against another local user (uid 65534), with the
real binaries and real directories in a sticky (1777) scratch directory,
as /tmp is.

The attack: a user makes the directory of a daemon's socket before the
daemon starts (or owns its parent), and later swaps the socket for a fake
API; root's CLI then sends it a real JWT-SVID or prints the attacker's join
token.  The daemons must refuse such a directory, naming it, its owner and
its mode; the CLIs must refuse such a socket before they send anything; and
with nothing made beforehand the daemons make their directories with the
right owners and modes, and serve.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402

OTHER = 65534
AS_OTHER = ["setpriv", "--reuid=%d" % OTHER, "--regid=%d" % OTHER,
            "--clear-groups"]
TD = H.TD

# A fake gRPC server run by the other user: every unary call is logged
# (method and request bytes, hex) and answered with the given bytes.
FAKE = r"""
import sys
from concurrent import futures
import grpc

sock, log, reply = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])

def answer(method):
    def call(req, ctx):
        with open(log, "a") as f:
            f.write("%s %s\n" % (method, req.hex()))
        return reply
    return call

class Any(grpc.GenericRpcHandler):
    def service(self, details):
        return grpc.unary_unary_rpc_method_handler(answer(details.method))

srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
srv.add_generic_rpc_handlers((Any(),))
srv.add_insecure_port("unix:" + sock)
srv.start()
print("ready", flush=True)
srv.wait_for_termination()
"""


def as_other(*cmd):
    return subprocess.run(AS_OTHER + list(cmd), capture_output=True,
                          text=True, timeout=60, cwd="/")


def other_mkdir(path, mode=0o755):
    """mkdir as the other user, with an exact mode."""
    p = as_other(sys.executable, "-c", "import os, sys; "
                 "os.mkdir(sys.argv[1]); os.chmod(sys.argv[1], "
                 "int(sys.argv[2], 8))", path, "%o" % mode)
    assert p.returncode == 0, p.stderr
    st = os.lstat(path)
    assert st.st_uid == OTHER, path


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def owner(path):
    return os.lstat(path).st_uid


def wait_exit(daemon, timeout=30):
    """The daemon's exit status once it exited by itself; if it came up
    instead, it is stopped and the test fails with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc = daemon.proc.poll()
        if rc is not None:
            daemon.log.close()
            daemon.proc = None
            return rc
        if daemon.ready():
            out = daemon.output()
            daemon.stop()
            raise AssertionError("%s started instead of refusing:\n%s" %
                                 (daemon.name, out))
        time.sleep(0.05)
    daemon.stop()
    raise AssertionError("%s neither started nor refused:\n%s" %
                         (daemon.name, daemon.output()))


class PathsTest(unittest.TestCase):
    """One real server and agent with their sockets in a sticky scratch
    directory made by nobody else (the positive case); each attack uses
    scratch directories of its own."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: the attacks use uid 65534")
        cls.tmp = []
        cls.fakes = []
        cls.srv = cls.agent = None
        try:
            cls.start_daemons()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_daemons(cls):
        cls.scratch = cls.sticky_dir()
        cls.srv = H.Server(port=H.free_port(), sock=os.path.join(
            cls.scratch, "wick-server", "private", "api.sock"))
        cls.srv.start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))
        tok = cls.srv.token()
        agent_id = "spiffe://%s/spire/agent/join_token/%s" % (TD, tok)
        cls.srv.create_entry("spiffe://%s/workload/root" % TD, agent_id,
                             ["unix:uid:0"])
        cls.agent = H.AgentDaemon(cls.srv, cls.bundle, sock=os.path.join(
            cls.scratch, "wick-agent", "public", "api.sock"))
        cls.agent.start(token=tok)

    @classmethod
    def tearDownClass(cls):
        for p in cls.fakes:
            if p.poll() is None:
                p.kill()
            p.wait()
        for d in (cls.agent, cls.srv):
            if d is not None and d.proc is not None:
                rc = d.stop()
                out = d.all_output()
                if H.sanitizer_report(out):
                    raise AssertionError("sanitizer report:\n" + out)
                if rc != 0:
                    raise AssertionError("%s exited %d:\n%s" %
                                         (d.name, rc, out))
        for d in cls.tmp:
            shutil.rmtree(d, ignore_errors=True)

    @classmethod
    def sticky_dir(cls):
        """A root-owned 1777 directory, as /tmp."""
        d = tempfile.mkdtemp(prefix="wick-paths-")
        os.chmod(d, 0o1777)
        cls.tmp.append(d)
        return d

    def fake_server(self, sock, reply=b""):
        """A fake gRPC API of the other user's at sock (its directories
        must exist and be theirs); returns the file it logs calls to."""
        home = os.path.join(self.sticky_dir(), "home")
        other_mkdir(home, 0o700)
        log = os.path.join(home, "calls.log")
        p = subprocess.Popen(AS_OTHER + [sys.executable, "-c", FAKE, sock,
                                         log, reply.hex()],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd="/")
        self.fakes.append(p)
        self.assertEqual(p.stdout.readline().strip(), "ready", p.stderr)
        self.assertEqual(owner(sock), OTHER)
        return log

    def calls(self, log):
        if not os.path.exists(log):
            return ""
        with open(log) as f:
            return f.read()

    def assert_names(self, text, path):
        """The error names the component, its owner and its mode."""
        self.assertIn(path, text)
        self.assertIn("uid %d" % OTHER, text)
        self.assertRegex(text, r"mode 0[0-7]{3}")

    # ---- the daemons make what is missing, and serve ------------------------

    def test_daemons_make_their_directories(self):
        srv_dir = os.path.join(self.scratch, "wick-server")
        for path, m in ((srv_dir, 0o755),
                        (os.path.join(srv_dir, "private"), 0o700),
                        (self.srv.sock, 0o600),
                        (self.srv.data, 0o700)):
            self.assertEqual(owner(path), 0, path)
            self.assertEqual(mode(path), m, path)
        agent_dir = os.path.join(self.scratch, "wick-agent")
        for path, m in ((agent_dir, 0o755),
                        (os.path.join(agent_dir, "public"), 0o755),
                        (self.agent.sock, 0o777),
                        (self.agent.data, 0o700)):
            self.assertEqual(owner(path), 0, path)
            self.assertEqual(mode(path), m, path)
        self.assertTrue(stat.S_ISSOCK(os.lstat(self.agent.sock).st_mode))
        # They serve: the CLIs accept their sockets ...
        self.assertIn("Server is healthy.",
                      self.srv.cli("healthcheck").stdout)
        p = self.agent.cli("api", "fetch", "x509", "-socketPath",
                           self.agent.sock)
        self.assertIn("spiffe://%s/workload/root" % TD, p.stdout)
        # ... and a workload of another user (grpcio) reaches the agent.
        script = ("import grpc, sys; ch = grpc.insecure_channel('unix:' + "
                  "sys.argv[1]); print(ch.unary_unary("
                  "'/grpc.health.v1.Health/Check')(b'', timeout=10).hex())")
        p = as_other(sys.executable, "-c", script, self.agent.sock)
        self.assertEqual(p.stdout.strip(), "0801", p.stderr)

    # ---- the daemons refuse another user's directories ----------------------

    def test_agent_refuses_socket_dir_made_by_another_user(self):
        scratch = self.sticky_dir()
        evil = os.path.join(scratch, "wick-agent")
        other_mkdir(evil)
        other_mkdir(os.path.join(evil, "public"))
        agent = H.AgentDaemon(self.srv, self.bundle, sock=os.path.join(
            evil, "public", "api.sock"))
        agent.start(token=self.srv.token(), wait=False)
        self.assertNotEqual(wait_exit(agent), 0)
        out = agent.output()
        self.assert_names(out, evil)
        self.assertIn("socket_path", out)
        self.assertFalse(os.path.exists(agent.sock))
        self.assertIsNone(H.sanitizer_report(out), out)

    def test_server_refuses_parent_of_another_user(self):
        scratch = self.sticky_dir()
        evil = os.path.join(scratch, "wick-server")
        other_mkdir(evil)
        srv = H.Server(port=H.free_port(), sock=os.path.join(
            evil, "private", "api.sock"))
        srv.name = "wick-server"
        srv.spawn([H.SERVER, "run", "-config", srv.conf])
        self.assertNotEqual(wait_exit(srv), 0)
        out = srv.output()
        self.assert_names(out, evil)
        self.assertIn("socket_path", out)
        # Nothing was made in the other user's directory.
        self.assertEqual(os.listdir(evil), [])
        self.assertIsNone(H.sanitizer_report(out), out)

    def test_agent_refuses_trust_bundle_of_another_user(self):
        home = os.path.join(self.sticky_dir(), "bundle")
        other_mkdir(home)
        bundle = os.path.join(home, "bundle.pem")
        shutil.copyfile(self.bundle, bundle)
        os.chown(bundle, OTHER, OTHER)
        agent = H.AgentDaemon(self.srv, bundle)
        agent.start(token=self.srv.token(), wait=False)
        self.assertNotEqual(wait_exit(agent), 0)
        out = agent.output()
        self.assert_names(out, home)
        self.assertIn("trust bundle", out)

    # ---- the CLIs refuse another user's socket ------------------------------

    def test_server_cli_refuses_fake_socket(self):
        scratch = self.sticky_dir()
        evil = os.path.join(scratch, "wick-server")
        other_mkdir(evil)
        other_mkdir(os.path.join(evil, "private"), 0o700)
        sock = os.path.join(evil, "private", "api.sock")
        # CreateJoinTokenResponse { token: "ATTACKER-TOKEN" }
        log = self.fake_server(sock, b"\x0a\x0eATTACKER-TOKEN")
        p = subprocess.run([H.SERVER, "token", "generate", "-socketPath",
                            sock], capture_output=True, text=True,
                           timeout=60)
        self.assertNotIn("ATTACKER-TOKEN", p.stdout + p.stderr)
        self.assertNotEqual(p.returncode, 0)
        self.assert_names(p.stderr + p.stdout, evil)
        self.assertIn("refusing", p.stderr + p.stdout)
        self.assertEqual(self.calls(log), "")

    def test_agent_cli_refuses_fake_socket(self):
        # A real JWT-SVID from the real agent ...
        p = self.agent.cli("api", "fetch", "jwt", "-audience", "web",
                           "-socketPath", self.agent.sock)
        token = re.search(r"ey[\w-]+\.[\w-]+\.[\w-]+", p.stdout).group(0)
        # ... must never reach the other user's fake agent.
        scratch = self.sticky_dir()
        evil = os.path.join(scratch, "wick-agent")
        other_mkdir(evil)
        other_mkdir(os.path.join(evil, "public"))
        sock = os.path.join(evil, "public", "api.sock")
        log = self.fake_server(sock)
        for env_path in (False, True):
            args = ["api", "validate", "jwt", "-audience", "web", "-svid",
                    token]
            env = dict(os.environ)
            if env_path:
                env["SPIFFE_ENDPOINT_SOCKET"] = "unix://" + sock
            else:
                args += ["-socketPath", sock]
            p = self.agent.cli(*args, check=False, env=env)
            self.assertFalse(token.encode().hex() in self.calls(log),
                             "the JWT-SVID reached the fake agent")
            self.assertEqual(self.calls(log), "")
            self.assertNotEqual(p.returncode, 0)
            self.assert_names(p.stderr, evil)
            self.assertIn("refusing", p.stderr)
        # Only the socket is the other user's, right in a sticky directory.
        sock2 = os.path.join(self.sticky_dir(), "api.sock")
        log = self.fake_server(sock2)
        p = self.agent.cli("api", "fetch", "x509", "-socketPath", sock2,
                           check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assert_names(p.stderr, sock2)
        self.assertEqual(self.calls(log), "")

    def test_cli_missing_socket_not_dialled(self):
        """Nothing there: the usual connection error, and nothing dialled
        (another user could make it in between)."""
        sock = os.path.join(self.sticky_dir(), "wick-agent", "public",
                            "api.sock")
        p = self.agent.cli("api", "fetch", "x509", "-socketPath", sock,
                           check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no such file or directory", p.stderr)
        p = subprocess.run([H.SERVER, "entry", "show", "-socketPath",
                            sock], capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no such file or directory", p.stderr + p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
