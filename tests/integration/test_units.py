"""The service units, proven rather than just written.

- `cmake --install` of the build into a scratch DESTDIR puts the binaries,
  units, sysusers.d and tmpfiles.d files, manual pages and example configs
  in their FHS places; systemd-sysusers and systemd-tmpfiles apply the
  installed files to that root; the example configs validate.
- `systemd-analyze verify` accepts the installed units (in that root, so
  their ExecStart= binaries and Documentation= pages are the installed
  ones) and `systemd-analyze security --offline=true` scores them below
  the figures recorded in the README.
- Each daemon, started as the units start it (another user, the units'
  capabilities and no others, no new privileges) with $NOTIFY_SOCKET on a
  datagram socket bound here and $WATCHDOG_USEC/$WATCHDOG_PID set, sends
  READY=1 only once it serves (the server's sockets accept connections,
  the agent hands out an SVID), STATUS= lines, WATCHDOG=1 again and again,
  and STOPPING=1 on SIGTERM.
- The agent's capabilities are the ones it needs: without CAP_SYS_PTRACE
  it cannot name another user's binary (unix:path), without
  CAP_DAC_READ_SEARCH it cannot hash one its user may not read
  (unix:sha256); with both it can.
"""
import glob
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402

BUILD = os.environ.get("WICK_BUILD_DIR")
TD = H.TD
# The units' user stands for wick and wick-agent here: an unprivileged
# uid that owns nothing of root's.
SVC_UID = 65534
# Highest exposure `systemd-analyze security` may give each unit: the
# figures measured with systemd 252 (README), plus a little for scoring
# differences between systemd versions.  A weakened unit fails here.
MAX_EXPOSURE = {"wick-server.service": 1.5, "wick-agent.service": 2.3}
# $WATCHDOG_USEC for the daemons: they feed the watchdog every half.
WATCHDOG_USEC = 300000


def run(cmd, env=None, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env=env)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" %
                             (" ".join(cmd), p.returncode, p.stdout,
                              p.stderr))
    return p


def unit_values(path, key):
    """Every value of key= in a unit file, in order."""
    out = []
    with open(path) as f:
        for line in f:
            m = re.match(r"%s=(.*)$" % re.escape(key), line.strip())
            if m:
                out.append(m.group(1).strip())
    return out


def cap_names(text):
    """setpriv's capability names for a unit's list (CAP_SYS_PTRACE ->
    sys_ptrace)."""
    return [c[4:].lower() for c in text.split()]


def as_unit(unit, uid, prefix_env):
    """The argv prefix that starts a daemon as unit does: uid's ids and no
    groups, only the capabilities the unit lets it have, no new
    privileges, and $WATCHDOG_PID set to the daemon's own pid (the shell
    execs setpriv, which execs the daemon)."""
    bound = cap_names(" ".join(unit_values(unit,
                                           "CapabilityBoundingSet")))
    ambient = cap_names(" ".join(unit_values(unit, "AmbientCapabilities")))
    assert set(ambient) <= set(bound), (ambient, bound)
    argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
            "--clear-groups", "--no-new-privs",
            "--bounding-set=-all" + "".join(",+" + c for c in bound)]
    if ambient:
        caps = ",".join("+" + c for c in ambient)
        argv += ["--inh-caps=" + caps, "--ambient-caps=" + caps]
    return ["env"] + prefix_env + ["sh", "-c",
                                   'WATCHDOG_PID=$$ exec "$0" "$@"'] + argv


class Notify:
    """A datagram socket standing for the service manager's
    $NOTIFY_SOCKET: it collects what a daemon sends, one list of
    assignments per datagram, in order."""

    def __init__(self, d):
        self.path = os.path.join(d, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # The daemons run as another user: sd_notify needs write access.
        os.chmod(self.path, 0o777)
        self.got = []

    def env(self):
        return ["NOTIFY_SOCKET=" + self.path,
                "WATCHDOG_USEC=%d" % WATCHDOG_USEC]

    def recv(self, timeout):
        """The next datagram's assignments, or None after timeout."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        msg = data.decode().split("\n")
        self.got.append(msg)
        return msg

    def wait_for(self, assignment, timeout, proc=None, on_each=None):
        """Datagrams until one holds assignment; each goes to on_each."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv(min(0.2, deadline - time.monotonic()))
            if msg is None:
                if proc is not None and proc.poll() is not None:
                    raise AssertionError("daemon exited %d before %s" %
                                         (proc.returncode, assignment))
                continue
            if on_each is not None:
                on_each(msg)
            if assignment in msg:
                return msg
        raise AssertionError("no %s within %ss; got %r" %
                             (assignment, timeout, self.got))

    def count(self, assignment, seconds):
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            msg = self.recv(deadline - time.monotonic())
            if msg is not None and assignment in msg:
                n += 1
        return n

    def statuses(self):
        return [a[len("STATUS="):] for m in self.got for a in m
                if a.startswith("STATUS=")]

    def close(self):
        self.sock.close()


class UnitServer(H.Server):
    """A Server started the way its unit starts it."""

    def __init__(self, unit, notify, **kw):
        super().__init__(**kw)
        self.unit = unit
        self.notify = notify

    def spawn(self, args):
        super().spawn(as_unit(self.unit, SVC_UID, self.notify.env()) + args)


class UnitAgent(H.AgentDaemon):
    """An AgentDaemon started as its unit starts it, or with other
    capabilities (caps: None for the unit's)."""

    def __init__(self, unit, notify, caps=None, **kw):
        super().__init__(**kw)
        self.unit = unit
        self.notify = notify
        self.caps = caps

    def spawn(self, args):
        prefix = as_unit(self.unit, SVC_UID, self.notify.env())
        if self.caps is not None:
            prefix = [a for a in prefix if not a.startswith(
                ("--inh-caps=", "--ambient-caps=", "--bounding-set="))]
            caps = ",".join("+" + c for c in self.caps)
            prefix.append("--bounding-set=-all" +
                          ("," + caps if caps else ""))
            if caps:
                prefix += ["--inh-caps=" + caps, "--ambient-caps=" + caps]
        super().spawn(prefix + args)


def svc_dir(parent, name, m=0o755):
    """A directory of the service user's in parent (which only root may
    write, so root's CLIs accept the sockets made below it)."""
    d = os.path.join(parent, name)
    os.mkdir(d)
    os.chown(d, SVC_UID, SVC_UID)
    os.chmod(d, m)
    return d


def cleanup(base, notify, *daemons):
    """Stop the daemons (None: never started), close notify (if made)
    and remove base."""
    for d in daemons:
        if d is not None:
            d.stop()
    if notify is not None:
        notify.close()
    shutil.rmtree(base, ignore_errors=True)


class TestUnits(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not BUILD:
            raise SystemExit("set WICK_BUILD_DIR")
        cls.tmp = tempfile.mkdtemp(prefix="wick-units-")
        os.chmod(cls.tmp, 0o755)
        cls.root = os.path.join(cls.tmp, "root")
        env = dict(os.environ, DESTDIR=cls.root)
        run(["cmake", "--install", BUILD], env=env)
        found = {}
        for dirpath, _, files in os.walk(cls.root):
            for f in files:
                found.setdefault(f, []).append(os.path.join(dirpath, f))
        cls.found = found

        def one(name, under):
            paths = [p for p in found.get(name, ())
                     if os.path.dirname(p).endswith(under)]
            assert len(paths) == 1, (name, under, found.get(name))
            return paths[0]
        cls.one = staticmethod(one)
        cls.units = {u: one(u, "/lib/systemd/system")
                     for u in ("wick-server.service", "wick-agent.service")}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def rel(self, path):
        """path inside the install root, as the installed system sees
        it."""
        return "/" + os.path.relpath(path, self.root)

    # ---- cmake --install ----------------------------------------------------

    def test_install_layout(self):
        for b in ("wick-server", "wick-agent"):
            p = self.one(b, "/bin")
            self.assertTrue(os.access(p, os.X_OK), p)
        for m in ("wick-server.8", "wick-agent.8"):
            self.one(m, "/share/man/man8")
        users = self.one("wick.conf", "/lib/sysusers.d")
        tmpfiles = self.one("wick.conf", "/lib/tmpfiles.d")
        # ExecStart= names the installed binary and the configuration in
        # the installed system's configuration directory.
        confdir = None
        for unit, path in self.units.items():
            argv = unit_values(path, "ExecStart")[0].split()
            exe = self.root + argv[0]
            self.assertTrue(os.access(exe, os.X_OK), argv[0])
            self.assertEqual(os.path.basename(argv[0]),
                             unit.replace(".service", ""))
            conf = argv[argv.index("-config") + 1]
            confdir = os.path.dirname(conf)
            # The example for that configuration validates.
            example = self.one(os.path.basename(conf), "/doc/wick/examples")
            run([exe, "validate", "-config", example])
        # The sysusers.d file makes both users, and the agent's is in tss
        # (for /dev/tpmrm0); the tmpfiles.d file makes the configuration
        # directory the units read.
        os.makedirs(os.path.join(self.root, "etc"), exist_ok=True)
        run(["systemd-sysusers", "--root=" + self.root, users])
        with open(os.path.join(self.root, "etc/passwd")) as f:
            passwd = {line.split(":")[0]: line.split(":")
                      for line in f if line.strip()}
        self.assertIn("wick", passwd)
        self.assertIn("wick-agent", passwd)
        self.assertNotEqual(passwd["wick"][2], "0")
        self.assertNotEqual(passwd["wick-agent"][2], "0")
        self.assertNotEqual(passwd["wick"][2], passwd["wick-agent"][2])
        with open(os.path.join(self.root, "etc/group")) as f:
            groups = {line.split(":")[0]: line.strip().split(":")
                      for line in f if line.strip()}
        self.assertIn("wick-agent", groups["tss"][3].split(","))
        self.assertEqual(unit_values(self.units["wick-server.service"],
                                     "User"), ["wick"])
        self.assertEqual(unit_values(self.units["wick-agent.service"],
                                     "User"), ["wick-agent"])
        run(["systemd-tmpfiles", "--root=" + self.root, "--create",
             tmpfiles])
        self.assertTrue(os.path.isdir(self.root + confdir), confdir)

    # ---- systemd-analyze ----------------------------------------------------

    def test_verify(self):
        # verify resolves the units' dependencies (sysinit.target, ...)
        # and ExecStart= in the root: give it a copy of the host's targets
        # beside the installed units, and the installed manual pages.
        tdir = os.path.join(self.root, "lib/systemd/system")
        os.makedirs(tdir, exist_ok=True)
        for t in glob.glob("/lib/systemd/system/*.target"):
            dst = os.path.join(tdir, os.path.basename(t))
            if not os.path.exists(dst) and not os.path.islink(t):
                shutil.copy(t, dst)
        # ExecReload= runs the system's /bin/kill: the root has it as the
        # host has it (merged /usr).
        kill = os.path.join(self.root, "usr/bin/kill")
        if not os.path.exists(kill):
            os.makedirs(os.path.dirname(kill), exist_ok=True)
            shutil.copy("/usr/bin/kill", kill)
        if not os.path.lexists(os.path.join(self.root, "bin")):
            os.symlink("usr/bin", os.path.join(self.root, "bin"))
        man = os.path.dirname(os.path.dirname(self.one("wick-server.8",
                                                       "/man8")))
        env = dict(os.environ, MANPATH=man)
        p = run(["systemd-analyze", "verify", "--root=" + self.root] +
                [self.rel(u) for u in self.units.values()], env=env,
                check=False)
        # Unknown keys and bad values are only warnings: none may appear.
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))
        # And verify does see what is wrong: a missing binary fails.
        exe = self.root + unit_values(self.units["wick-agent.service"],
                                      "ExecStart")[0].split()[0]
        os.rename(exe, exe + ".away")
        try:
            p = run(["systemd-analyze", "verify", "--root=" + self.root,
                     self.rel(self.units["wick-agent.service"])], env=env,
                    check=False)
        finally:
            os.rename(exe + ".away", exe)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not executable", p.stderr)

    def test_security_score(self):
        for unit, path in sorted(self.units.items()):
            p = run(["systemd-analyze", "security", "--offline=true",
                     "--no-pager", "--root=" + self.root, self.rel(path)],
                    check=False)
            m = re.search(r"Overall exposure level for %s: ([0-9.]+)" %
                          re.escape(unit), p.stdout)
            self.assertIsNotNone(m, p.stdout + p.stderr)
            score = float(m.group(1))
            print("systemd-analyze security %s: %.1f" % (unit, score),
                  file=sys.stderr)
            self.assertLessEqual(score, MAX_EXPOSURE[unit], p.stdout)
        # The agent holds exactly the two capabilities it is granted for.
        agent = self.units["wick-agent.service"]
        for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
            self.assertEqual(sorted(" ".join(unit_values(agent,
                                                         key)).split()),
                             ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"])
        self.assertEqual(unit_values(self.units["wick-server.service"],
                                     "CapabilityBoundingSet"), [""])

    # ---- sd_notify -----------------------------------------------------------

    def assert_watchdog(self, notify):
        """WATCHDOG=1 again and again, about every WATCHDOG_USEC/2."""
        n = notify.count("WATCHDOG=1", 1.5)
        period = WATCHDOG_USEC / 2e6
        self.assertGreaterEqual(n, int(1.5 / period) - 3, notify.got[-20:])

    def assert_stopping(self, d, notify):
        d.proc.send_signal(15)
        notify.wait_for("STOPPING=1", 20)
        # Its own exit after the one SIGTERM (a second one means "hurry",
        # which is not what is tested here).
        d.proc.wait(timeout=30)
        self.assertEqual(d.stop(), 0, d.output())
        self.assertIsNone(H.sanitizer_report(d.output()), d.output())

    def test_server_notify(self):
        base = tempfile.mkdtemp(prefix="wick-units-srv-")
        os.chmod(base, 0o755)
        notify = Notify(base)
        port = H.free_port()
        srv = UnitServer(self.units["wick-server.service"], notify,
                         tmpdir=svc_dir(base, "srv", 0o700), port=port)
        try:
            srv.name = "wick-server"
            srv.spawn([H.SERVER, "run", "-config", srv.conf])
            # When READY=1 comes, both sockets accept connections.
            ready = notify.wait_for("READY=1", 60, proc=srv.proc)
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(srv.sock)
            with socket.create_connection(("127.0.0.1", port), 5):
                pass
            srv.port = port
            self.assertIn("Server is healthy.",
                          srv.cli("healthcheck").stdout)
            status = [a for a in ready if a.startswith("STATUS=")]
            self.assertEqual(status, ["STATUS=serving: 0 registration "
                                      "entries, agent API on "
                                      "127.0.0.1:%d" % port])
            self.assertEqual(os.stat(srv.data).st_uid, SVC_UID)
            self.assert_watchdog(notify)
            # The status follows the entries (on the next tick).
            srv.create_entry("spiffe://%s/w" % TD,
                             "spiffe://%s/spire/agent/x" % TD,
                             ["unix:uid:1"])
            notify.wait_for("STATUS=serving: 1 registration entries, "
                            "agent API on 127.0.0.1:%d" % port, 30)
            self.assert_stopping(srv, notify)
            self.assertEqual(notify.statuses()[-1], "shutting down")
        finally:
            srv.stop()
            notify.close()
            shutil.rmtree(base, ignore_errors=True)

    def test_watchdog_for_another_pid(self):
        """$WATCHDOG_PID names the process the manager watches: a daemon
        that is not it (say, started by it) must not feed the watchdog."""
        base = tempfile.mkdtemp(prefix="wick-units-wd-")
        os.chmod(base, 0o755)
        notify = Notify(base)
        srv = H.Server(tmpdir=svc_dir(base, "srv", 0o700),
                       port=H.free_port())
        try:
            srv.name = "wick-server"
            argv = as_unit(self.units["wick-server.service"], SVC_UID,
                           notify.env() + ["WATCHDOG_PID=1"])
            # No shell: $WATCHDOG_PID stays 1.
            argv = argv[:argv.index("sh")] + argv[argv.index("setpriv"):]
            srv.spawn(argv + [H.SERVER, "run", "-config", srv.conf])
            notify.wait_for("READY=1", 60, proc=srv.proc)
            self.assertEqual(notify.count("WATCHDOG=1", 1.0), 0)
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.stop()
            notify.close()
            shutil.rmtree(base, ignore_errors=True)

    def agent_setup(self, base, caps=None):
        """A server (as root: it is not what is tested), a workload binary
        only root may read, an entry for it by uid, path and hash, and an
        agent started as its unit starts it (or with caps); returns
        (server, agent, notify, workload binary, SPIFFE ID)."""
        notify = Notify(base)
        srv = H.Server(port=H.free_port()).start()
        bundle = os.path.join(base, "bundle.pem")
        srv.bundle_pem(bundle)
        os.chmod(bundle, 0o644)
        wl_dir = os.path.join(base, "wl")
        os.mkdir(wl_dir, 0o700)
        wl = os.path.join(wl_dir, "workload")
        shutil.copy(H.AGENT, wl)
        os.chmod(wl, 0o700)
        with open(wl, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        tok = srv.token()
        sid = "spiffe://%s/units/workload" % TD
        srv.create_entry(sid, H.agent_spiffe_id(tok),
                         ["unix:uid:0", "unix:path:" + wl,
                          "unix:sha256:" + digest])
        run_dir = svc_dir(base, "run")
        agent = UnitAgent(self.units["wick-agent.service"], notify,
                          caps=caps, server=srv, bundle=bundle,
                          sock=os.path.join(run_dir, "public", "api.sock"))
        # The agent's tmp is root's (0755); its data directory is the
        # service user's, as StateDirectory= makes it.
        os.mkdir(agent.data, 0o700)
        os.chown(agent.data, SVC_UID, SVC_UID)
        agent.start(token=tok, wait=False)
        return srv, agent, notify, wl, sid

    def fetch(self, wl, agent):
        return subprocess.run([wl, "api", "fetch", "x509", "-socketPath",
                               agent.sock, "-timeout", "5s"],
                              capture_output=True, text=True, timeout=60)

    def test_agent_notify(self):
        base = tempfile.mkdtemp(prefix="wick-units-agent-")
        os.chmod(base, 0o755)
        srv = agent = notify = None
        try:
            srv, agent, notify, wl, sid = self.agent_setup(base)
            ready = notify.wait_for("READY=1", 60, proc=agent.proc)
            # When READY=1 comes, an SVID is served: the workload (root's
            # binary, which the agent's user may not read) is attested by
            # uid, path and hash.
            p = self.fetch(wl, agent)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr +
                             agent.output())
            self.assertIn(sid, p.stdout)
            st = notify.statuses()
            self.assertTrue(st[0].startswith("attesting to 127.0.0.1:%d" %
                                             srv.port), st)
            self.assertTrue(any(s.startswith("attested as spiffe://")
                                for s in st), st)
            status = [a for a in ready if a.startswith("STATUS=")][0]
            self.assertRegex(status, r"^STATUS=synced at revision \d+: 1 "
                             r"authorized entries, Workload API on " +
                             re.escape(agent.sock) + "$")
            self.assertEqual(os.stat(agent.sock).st_uid, SVC_UID)
            self.assert_watchdog(notify)
            self.assert_stopping(agent, notify)
            self.assertEqual(notify.statuses()[-1], "shutting down")
        finally:
            cleanup(base, notify, agent, srv)

    def agent_refused(self, caps, needle):
        """With caps instead of the unit's, the agent serves but cannot
        attest the workload; its log says why (needle)."""
        base = tempfile.mkdtemp(prefix="wick-units-caps-")
        os.chmod(base, 0o755)
        srv = agent = notify = None
        try:
            srv, agent, notify, wl, sid = self.agent_setup(base, caps=caps)
            notify.wait_for("READY=1", 60, proc=agent.proc)
            p = self.fetch(wl, agent)
            self.assertNotEqual(p.returncode, 0, p.stdout)
            self.assertNotIn(sid, p.stdout)
            self.assertRegex(agent.output(), needle)
            self.assertEqual(agent.stop(), 0)
        finally:
            cleanup(base, notify, agent, srv)

    def test_agent_needs_sys_ptrace(self):
        # Naming another user's binary: readlink /proc/<pid>/exe.
        self.agent_refused(["dac_read_search"],
                           r"cannot read \S+/exe: Permission denied")

    def test_agent_needs_dac_read_search(self):
        # Hashing a binary its user may not read: open /proc/<pid>/exe.
        self.agent_refused(["sys_ptrace"],
                           r"cannot open \S+/exe: Permission denied")


if __name__ == "__main__":
    unittest.main(verbosity=2)
