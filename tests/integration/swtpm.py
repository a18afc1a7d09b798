"""Software TPMs (swtpm, TPM 2.0) for the tests.

Manufacturing a TPM (swtpm_setup: seeds, EK, EK certificates signed by a
local CA) takes about a second, so it is done once per test run and the
result is shared: `swtpm.py manufacture OUT` makes the fixture set

    OUT/ca1, OUT/ca2        two local CAs (swtpm_localca state)
    OUT/A, OUT/B            two TPMs whose EK certificates CA-1 signed
    OUT/C                   a TPM whose EK certificate CA-2 signed
    OUT/fixtures.json       what is where

into a temporary directory beside OUT and renames it into place, so a
reader never sees half a set.  ctest runs it as the FIXTURES_SETUP test
"tpm_manufacture" and passes OUT to the tests that need it in
WICK_TPM_FIXTURES; without that variable fixtures() makes a private set
once per process.

Each test then starts its own instance from a template (a copy of the
state, so instances never share a state file): Swtpm(fixture).start()
puts the sockets in a short private directory under /tmp (AF_UNIX paths
are limited to 108 bytes including the ".ctrl" the TCTI appends), starts
swtpm with --flags not-need-init,startup-clear (ready at once, like a
machine whose firmware sent TPM2_Startup), and gives the TCTI string in
.tcti.  stop() asks for an orderly shutdown on the control socket and
waits for that pid; only if it does not exit is that pid killed.  The
instance is our child and gets SIGTERM if the test process dies.

Copies of one template have the same EK (same seeds): manufacture
separately (A, B) for "different node" tests.  No configuration from /etc
and no global CA directory is used: each manufacture writes a private
swtpm_setup.conf and swtpm-localca.conf.  A missing swtpm is an error,
never a skip.

Command line:
    swtpm.py manufacture OUT
    swtpm.py run FIXTURE -- CMD [ARG...]
        start an instance of FIXTURE (A, B, C or a TPM directory), run CMD
        with WICK_TEST_TCTI, WICK_TEST_TPM_DIR and WICK_TPM_FIXTURES set,
        stop the instance; exits with CMD's status.
"""
import atexit
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOOLS = ("swtpm", "swtpm_setup", "swtpm_ioctl", "swtpm_localca")
SUN_PATH_MAX = 107              # sun_path less its NUL
SOCK = "tpm.sock"
FIXTURE_NAMES = (("A", "ca1"), ("B", "ca1"), ("C", "ca2"))


class SwtpmError(RuntimeError):
    pass


def need_tools():
    """Fail (not skip) when swtpm is not installed."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise SwtpmError("%s not found: apt-get install swtpm swtpm-tools "
                         "(or run scripts/setup.sh)" % ", ".join(missing))


def quiet_tss_env(env=None):
    """The environment for programs using tpm2-tss in tests.  ESYS logs
    expected TPM errors (a tampered credential, a missing NV index) as
    WARNING/ERROR lines on stderr (specs/tpm.md P8): silence them unless
    the caller chose a level."""
    env = dict(os.environ if env is None else env)
    env.setdefault("TSS2_LOG", "all+none")
    return env


# ---- manufacture ----------------------------------------------------------

def manufacture(tpm_dir, ca_dir):
    """Make a TPM 2.0 state in tpm_dir/state with an RSA-2048 EK (and the
    ECC P-384 one swtpm also makes), their certificates in NV and as files
    (tpm_dir/ek-rsa2048.crt, DER), signed by the local CA in ca_dir
    (created on first use; several TPMs can share one).  Only the sha256
    PCR bank is active afterwards."""
    need_tools()
    tpm_dir = os.path.abspath(tpm_dir)
    ca_dir = os.path.abspath(ca_dir)
    os.makedirs(os.path.join(tpm_dir, "state"), exist_ok=True)
    os.makedirs(ca_dir, exist_ok=True)
    localca = os.path.join(tpm_dir, "swtpm-localca.conf")
    options = os.path.join(tpm_dir, "swtpm-localca.options")
    setup = os.path.join(tpm_dir, "swtpm_setup.conf")
    with open(localca, "w") as f:
        f.write("statedir = %s\nsigningkey = %s\nissuercert = %s\n"
                "certserial = %s\n" % (ca_dir,
                                       os.path.join(ca_dir, "signkey.pem"),
                                       os.path.join(ca_dir, "issuercert.pem"),
                                       os.path.join(ca_dir, "certserial")))
    with open(options, "w") as f:
        f.write("--platform-manufacturer WickTest\n--platform-version 2.1\n"
                "--platform-model swtpm\n")
    with open(setup, "w") as f:
        f.write("create_certs_tool = %s\ncreate_certs_tool_config = %s\n"
                "create_certs_tool_options = %s\nactive_pcr_banks = sha256\n"
                % (shutil.which("swtpm_localca"), localca, options))
    log = os.path.join(tpm_dir, "setup.log")
    r = subprocess.run(["swtpm_setup", "--tpm2",
                        "--tpmstate", os.path.join(tpm_dir, "state"),
                        "--config", setup, "--create-ek-cert",
                        "--create-platform-cert",
                        "--write-ek-cert-files", tpm_dir, "--overwrite",
                        "--logfile", log],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        text = r.stdout.decode(errors="replace")
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                text += f.read()
        raise SwtpmError("swtpm_setup failed (%d) for %s:\n%s" %
                         (r.returncode, tpm_dir, text))
    for name in ("state/tpm2-00.permall", "ek-rsa2048.crt"):
        if not os.path.exists(os.path.join(tpm_dir, name)):
            raise SwtpmError("swtpm_setup made no %s in %s" % (name, tpm_dir))
    # The EK certificate also as PEM, for openssl command lines.
    subprocess.run(["openssl", "x509", "-inform", "DER",
                    "-in", os.path.join(tpm_dir, "ek-rsa2048.crt"),
                    "-out", os.path.join(tpm_dir, "ek-rsa2048.pem")],
                   check=True, timeout=30)
    return tpm_dir


def make_fixtures(out):
    """Manufacture A and B under CA-1 and C under CA-2 into out, atomically
    (built beside out, then renamed into place).  Returns the description
    also written to out/fixtures.json."""
    need_tools()
    out = os.path.abspath(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".tpm-fixtures.", dir=parent)
    os.chmod(work, 0o755)   # test keys only; tests may run as other uids
    t0 = time.monotonic()
    try:
        desc = {"tpms": {}, "cas": {}}
        for name, ca in FIXTURE_NAMES:
            t = time.monotonic()
            manufacture(os.path.join(work, name), os.path.join(work, ca))
            desc["tpms"][name] = {"dir": os.path.join(out, name),
                                  "ca": os.path.join(out, ca),
                                  "seconds": round(time.monotonic() - t, 3)}
        for ca in sorted({ca for _, ca in FIXTURE_NAMES}):
            # Root and intermediate: the chain a verifier is given.
            d = os.path.join(out, ca)
            desc["cas"][ca] = {
                "root": os.path.join(d, "swtpm-localca-rootca-cert.pem"),
                "intermediate": os.path.join(d, "issuercert.pem")}
        desc["seconds"] = round(time.monotonic() - t0, 3)
        with open(os.path.join(work, "fixtures.json"), "w") as f:
            json.dump(desc, f, indent=1)
        old = None
        if os.path.lexists(out):
            old = tempfile.mkdtemp(prefix=".tpm-fixtures-old.", dir=parent)
            os.rename(out, os.path.join(old, "x"))
        os.rename(work, out)
        work = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return desc
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


_private_fixtures = None


def fixtures():
    """The fixture set: WICK_TPM_FIXTURES (made by the ctest fixture) if
    set, else one made privately, once per process."""
    global _private_fixtures
    out = os.environ.get("WICK_TPM_FIXTURES")
    if not out:
        if _private_fixtures is None:
            d = tempfile.mkdtemp(prefix="wick-tpmfix-")
            atexit.register(shutil.rmtree, d, True)
            make_fixtures(os.path.join(d, "set"))
            _private_fixtures = os.path.join(d, "set")
        out = _private_fixtures
    path = os.path.join(out, "fixtures.json")
    if not os.path.exists(path):
        raise SwtpmError("no TPM fixtures in %s (run the tpm_manufacture "
                         "test, or 'swtpm.py manufacture %s')" % (out, out))
    with open(path) as f:
        return json.load(f)


def fixture_dir(name):
    """A fixture TPM's directory by name (A, B, C), or name itself if it
    is a directory."""
    if os.path.isdir(name):
        return os.path.abspath(name)
    tpms = fixtures()["tpms"]
    if name not in tpms:
        raise SwtpmError("no TPM fixture %r (have %s)" %
                         (name, ", ".join(sorted(tpms))))
    return tpms[name]["dir"]


# ---- instances ------------------------------------------------------------

def _short_tmp():
    """A parent directory short enough for the socket paths."""
    t = tempfile.gettempdir()
    if len(t) + len("/wtpm.XXXXXXXX/" + SOCK + ".ctrl") <= SUN_PATH_MAX:
        return t
    return "/tmp"


_live = set()     # instances to stop if the test forgets or fails


@atexit.register
def _stop_all():
    for t in list(_live):
        t.stop()


def _die_with_parent():
    # Linux PR_SET_PDEATHSIG: a crashed test leaves no swtpm behind.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


class Swtpm:
    """One running swtpm serving a copy of a manufactured state."""

    def __init__(self, template):
        self.template = fixture_dir(template)
        self.proc = None
        self.dir = None

    @property
    def sock(self):
        return os.path.join(self.dir, SOCK)

    @property
    def ctrl(self):
        return self.sock + ".ctrl"

    @property
    def tcti(self):
        return "swtpm:path=" + self.sock

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    @property
    def ek_cert_der(self):
        return os.path.join(self.template, "ek-rsa2048.crt")

    @property
    def ek_cert_pem(self):
        return os.path.join(self.template, "ek-rsa2048.pem")

    def start(self, timeout=10.0):
        need_tools()
        self.dir = tempfile.mkdtemp(prefix="wtpm.", dir=_short_tmp())
        _live.add(self)
        if len(self.ctrl.encode()) > SUN_PATH_MAX:
            raise SwtpmError("socket path too long for AF_UNIX: %s" %
                             self.ctrl)
        state = os.path.join(self.dir, "state")
        os.mkdir(state)
        shutil.copy2(os.path.join(self.template, "state", "tpm2-00.permall"),
                     state)
        self.log_path = os.path.join(self.dir, "swtpm.log")
        self.proc = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + state,
             "--server", "type=unixio,path=" + self.sock,
             "--ctrl", "type=unixio,path=" + self.ctrl,
             "--flags", "not-need-init,startup-clear",
             "--pid", "file=" + os.path.join(self.dir, "swtpm.pid"),
             "--log", "file=" + self.log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SwtpmError("swtpm exited %d:\n%s" %
                                 (self.proc.returncode, self.log()))
            if os.path.exists(self.sock) and os.path.exists(self.ctrl):
                return self
            time.sleep(0.005)
        self.stop()
        raise SwtpmError("swtpm did not create %s" % self.sock)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=5.0):
        """Orderly shutdown (state saved), else SIGTERM, then SIGKILL, of
        this instance's pid only; removes its directory.  Returns swtpm's
        exit status."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                subprocess.run(["swtpm_ioctl", "--unix", self.ctrl, "-s"],
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=timeout)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    rc = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    rc = self.proc.wait()
            self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        _live.discard(self)
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---- command line ---------------------------------------------------------

def _main(argv):
    if len(argv) == 2 and argv[0] == "manufacture":
        desc = make_fixtures(argv[1])
        print("manufactured %s in %.2f s (%s)" %
              (", ".join(sorted(desc["tpms"])), desc["seconds"],
               ", ".join("%s %.2f s" % (k, v["seconds"])
                         for k, v in sorted(desc["tpms"].items()))))
        return 0
    if len(argv) >= 3 and argv[0] == "run" and "--" in argv:
        sep = argv.index("--")
        if sep != 2 or sep + 1 >= len(argv):
            raise SystemExit("usage: swtpm.py run FIXTURE -- CMD [ARG...]")
        # ctest's timeout sends SIGTERM: stop the instance on the way out.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + 15))
        t = Swtpm(argv[1])
        t.start()
        try:
            env = quiet_tss_env()
            env["WICK_TEST_TCTI"] = t.tcti
            env["WICK_TEST_TPM_DIR"] = t.template
            if _private_fixtures is not None:
                env["WICK_TPM_FIXTURES"] = _private_fixtures
            rc = subprocess.run(argv[sep + 1:], env=env).returncode
        finally:
            t.stop()
        return rc if rc >= 0 else 128 - rc
    sys.stderr.write("usage: swtpm.py manufacture OUT\n"
                     "       swtpm.py run FIXTURE -- CMD [ARG...]\n")
    return 2


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv[1:]))
    except SwtpmError as e:
        sys.stderr.write("swtpm.py: %s\n" % e)
        sys.exit(1)
