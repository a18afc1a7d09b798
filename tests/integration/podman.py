"""Containers for the tests: a private podman (as root) behind the
Docker-compatible API, for the agent's "docker" workload attestor.

Everything lives in one short scratch directory made per Podman():

    D/root, D/run, D/tmp     podman's --root, --runroot and --tmpdir (all
                             three private: two podmans sharing the default
                             tmpdir disturb each other's containers)
    D/containers.conf        runc, cgroupfs, netns "none", file events,
    D/storage.conf           low ulimits (the defaults fail setrlimit here);
    D/registries.conf        vfs storage; no registries
    D/rootfs.tar             a busybox-static rootfs, imported as IMAGE
    D/share                  mounted read-only at /wick in client containers
                             (this file and the Workload API stubs)
    D/docker.sock            the compat API socket, when the test starts it

Only runc works on hybrid cgroup hosts (crun refuses them), so runc is
named in both the configuration and on every command line.  The vfs
storage driver copies the 2 MB image per container and needs no overlay
mount, so it works whatever filesystem the scratch directory is on.
Every run and create passes --pull never (there is no registry) and
--network none (a bridge network would make netavark create a bridge,
iptables chains and turn on ip_forward); the helpers refuse any other
network option.  Containers are removed with rm -f -t 0 (their PID 1 is
a sleep, which ignores SIGTERM).

The image is built once per Podman(), i.e. once per test process: an
import into a fresh private root takes about 0.2 s, less than sharing one
root between concurrent tests would cost in locking, shared runroot and
tmpdir state, a cleanup fixture, and stale state left in the build tree by
a killed run.  The ctest fixture "podman" (setup test podman_selfcheck,
`podman.py selfcheck`) proves the whole chain once per run instead: image,
container, exec, the compat API, PID -> cgroup -> container id, and the
host's Python with grpcio inside a container.

Workload API clients inside containers: run_client() starts a container
with the host's /usr and /etc/ld.so.cache bind-mounted read-only (the
rootfs has lib and lib64 as links into /usr, as Debian's merged /usr),
D/share at /wick and the agent's socket directory at /run/spire/sockets,
both read-only; fetch() execs `/usr/bin/python3 /wick/podman.py fetch`
in it, which is this file's fetch_main() run with Debian's grpcio.

Cleanup (stop(), also at exit): the API service by its pid, our
containers by id (rm -f -t 0; a conmon of ours still alive afterwards by
its pid), then every mount left under D (podman mounts a tmpfs per
container even with vfs), deepest first, then D itself.  Long-running
containers sleep for SLEEP seconds only, so even a test killed with
SIGKILL leaves no process for long.  A missing podman, runc or static
busybox is an error, never a skip.

Command line:
    podman.py selfcheck        the fixture: check the chain, print timings
    podman.py fetch ...        (inside a container) one Workload API client
"""
import atexit
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

IMAGE = "localhost/wick-busybox:1"
BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "sleep", "cat", "ls", "id", "echo", "env", "ps")
TOOLS = ("podman", "runc", "conmon")
SUN_PATH_MAX = 107               # sun_path less its NUL
SLEEP = 900                      # lifetime of a long-running container
SOCKET_DIR_IN = "/run/spire/sockets"
SHARE_IN = "/wick"
API = "/v1.41"

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
image_default_transport = "containers-storage:"
"""

STORAGE_CONF = """\
[storage]
driver = "vfs"
graphroot = "%(root)s"
runroot = "%(run)s"
"""

REGISTRIES_CONF = """\
unqualified-search-registries = []
short-name-mode = "disabled"
"""


class PodmanError(RuntimeError):
    pass


def _which_conmon():
    for p in ("/usr/bin/conmon", "/usr/libexec/podman/conmon"):
        if os.path.exists(p):
            return p
    return shutil.which("conmon")


def _static_elf(path):
    """True when path is an ELF executable with no program interpreter
    (statically linked), so it runs in a rootfs with nothing else."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", hdr, 32)
        phentsize, phnum = struct.unpack_from("<HH", hdr, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    for i in range(phnum):
        if struct.unpack_from("<I", ph, i * phentsize)[0] == 3:  # PT_INTERP
            return False
    return True


def need_tools():
    """Fail (not skip) when podman, runc or a static busybox is missing."""
    missing = [t for t in TOOLS
               if (_which_conmon() if t == "conmon" else shutil.which(t))
               is None]
    if not os.path.exists(BUSYBOX) or not _static_elf(BUSYBOX):
        missing.append("a static %s (busybox-static)" % BUSYBOX)
    if missing:
        raise PodmanError("%s not found: apt-get install podman runc "
                          "busybox-static (or run scripts/setup.sh)" %
                          ", ".join(missing))
    if os.geteuid() != 0:
        raise PodmanError("the container tests run podman as root")


def _short_tmp():
    """A parent directory short enough for D/docker.sock and the sockets
    podman and conmon make under D."""
    t = tempfile.gettempdir()
    if len(t) + len("/wpod.XXXXXXXX/docker.sock") <= 60:
        return t
    return "/tmp"


def _die_with_parent():
    # Linux PR_SET_PDEATHSIG: a crashed test leaves no service behind.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def _mounts_under(d):
    """Mount points at or below d in this mount namespace, deepest first."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            mp = mp.encode().decode("unicode_escape")  # \040 and friends
            if mp == d or mp.startswith(d + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


def _umount(path):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(path.encode(), 0) != 0:
        libc.umount2(path.encode(), 2)          # MNT_DETACH


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket (the Docker API)."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def api_get(sock_path, path, timeout=10):
    """GET path on the Docker API at sock_path: (status, parsed JSON or
    the raw body)."""
    c = UnixHTTPConnection(sock_path, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(body)
    except ValueError:
        return r.status, body


class Container:
    """A container we started: its id (64 hex), name and run options."""

    def __init__(self, env, cid, name, user=None):
        self.env = env
        self.id = cid
        self.name = name
        self.user = user

    def exec(self, *argv, **kw):
        return self.env.exec(self, *argv, **kw)

    def fetch(self, **kw):
        return self.env.fetch(self, **kw)

    def rm(self):
        self.env.rm(self)

    @property
    def pid(self):
        """PID 1 of the container, as the host sees it."""
        return int(self.env.pm("inspect", "-f", "{{.State.Pid}}",
                               self.id).stdout.strip())

    def __repr__(self):
        return "<container %s %s>" % (self.name, self.id[:12])


_live = set()      # environments to clean up if the test forgets or fails


@atexit.register
def _stop_all():
    for e in list(_live):
        e.stop()


class Podman:
    """One private podman environment (see the module's docstring)."""

    def __init__(self):
        need_tools()
        self.dir = tempfile.mkdtemp(prefix="wpod.", dir=_short_tmp())
        _live.add(self)
        self.root = os.path.join(self.dir, "root")
        self.run_root = os.path.join(self.dir, "run")
        self.tmp = os.path.join(self.dir, "tmp")
        self.share = os.path.join(self.dir, "share")
        self.sock = os.path.join(self.dir, "docker.sock")
        for d in (self.root, self.run_root, self.tmp):
            os.mkdir(d, 0o700)
        os.mkdir(self.share)
        os.chmod(self.share, 0o755)     # containers run as other uids
        shutil.copy(os.path.abspath(__file__),
                    os.path.join(self.share, "podman.py"))
        os.chmod(os.path.join(self.share, "podman.py"), 0o644)
        conf = {"root": self.root, "run": self.run_root}
        files = {"containers.conf": CONTAINERS_CONF,
                 "storage.conf": STORAGE_CONF % conf,
                 "registries.conf": REGISTRIES_CONF}
        for name, text in files.items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.environ = {k: v for k, v in os.environ.items()
                        if not k.startswith(("CONTAINERS_", "DOCKER_",
                                             "CONTAINER_", "REGISTRY_"))}
        self.environ.update({
            "CONTAINERS_CONF": os.path.join(self.dir, "containers.conf"),
            "CONTAINERS_STORAGE_CONF": os.path.join(self.dir,
                                                    "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": os.path.join(self.dir,
                                                       "registries.conf"),
            "TMPDIR": self.tmp,
        })
        self.base = ["podman", "--root", self.root, "--runroot",
                     self.run_root, "--tmpdir", self.tmp,
                     "--storage-driver", "vfs", "--runtime", "runc",
                     "--cgroup-manager", "cgroupfs", "--events-backend",
                     "file"]
        self.containers = {}        # id -> Container
        self.conmon_pids = {}       # id -> conmon pid
        self.service = None
        self.service_log = None
        self.service_path = self.sock
        self.stats = {"build_image": [], "run": [], "exec": [], "rm": []}

    # ---- the CLI -------------------------------------------------------

    def pm(self, *args, check=True, timeout=120, input=None):
        """Run podman with this environment's root and configuration."""
        cmd = self.base + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, env=self.environ, input=input,
                           stdin=None if input is not None else
                           subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise PodmanError("%s failed (%d):\n%s%s" %
                              (" ".join(args[:3]), p.returncode, p.stdout,
                               p.stderr))
        return p

    def build_image(self, name=IMAGE, labels=None):
        """A busybox-static rootfs imported as image `name`, with `lib`
        and `lib64` linking into /usr for client containers that mount
        the host's /usr.  Returns the image id (sha256:...)."""
        t0 = time.monotonic()
        rootfs = os.path.join(self.dir, "rootfs")
        for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "run"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for a in APPLETS:
            os.symlink("busybox", os.path.join(rootfs, "bin", a))
        os.symlink("usr/lib", os.path.join(rootfs, "lib"))
        os.symlink("usr/lib64", os.path.join(rootfs, "lib64"))
        tar = os.path.join(self.dir, "rootfs.tar")
        subprocess.run(["tar", "-C", rootfs, "--numeric-owner", "--owner=0",
                        "--group=0", "-cf", tar, "."], check=True)
        shutil.rmtree(rootfs)
        args = ["import", "--quiet", "--change", 'CMD ["/bin/sh"]']
        for k, v in sorted((labels or {"wick.test": "busybox"}).items()):
            args += ["--change", "LABEL %s=%s" % (k, v)]
        image_id = self.pm(*(args + [tar, name])).stdout.strip()
        self.stats["build_image"].append(time.monotonic() - t0)
        return image_id if image_id.startswith("sha256:") else \
            "sha256:" + image_id

    def tag(self, image, new_name):
        self.pm("tag", image, new_name)

    @staticmethod
    def _check_opts(opts):
        for o in opts:
            if o.startswith(("--network", "--net", "--pull")) or \
                    o in ("--privileged",):
                raise PodmanError("option %s is not allowed here: every "
                                  "container runs --network none "
                                  "--pull never" % o)

    def run(self, name=None, image=IMAGE, cmd=("sleep", str(SLEEP)),
            labels=None, env=None, user=None, mounts=(), opts=()):
        """Start a detached container (--network none, --pull never):
        labels and env are dicts, user "uid[:gid]", mounts (host, inside)
        pairs mounted read-only.  Returns a Container."""
        self._check_opts(opts)
        args = ["run", "-d", "--pull", "never", "--network", "none"]
        if name:
            args += ["--name", name]
        for k, v in sorted((labels or {}).items()):
            args += ["--label", "%s=%s" % (k, v)]
        for k, v in sorted((env or {}).items()):
            args += ["-e", "%s=%s" % (k, v)]
        if user is not None:
            args += ["--user", str(user)]
        for host, inside in mounts:
            args += ["-v", "%s:%s:ro" % (host, inside)]
        args += list(opts) + [image] + list(cmd)
        t0 = time.monotonic()
        p = self.pm(*args, check=False)
        self.stats["run"].append(time.monotonic() - t0)
        cid = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        if p.returncode != 0 or len(cid) != 64:
            if name:   # a created-but-failed container: remove it
                self.pm("rm", "-f", "-t", "0", name, check=False)
            raise PodmanError("podman run failed (%d):\n%s%s" %
                              (p.returncode, p.stdout, p.stderr))
        c = Container(self, cid, name or cid[:12], user)
        self.containers[cid] = c
        try:
            pid = self.pm("inspect", "-f", "{{.State.ConmonPid}}",
                          cid).stdout.strip()
            self.conmon_pids[cid] = int(pid)
        except (PodmanError, ValueError):
            pass
        return c

    def client_mounts(self, agent_socket_dir):
        """Read-only mounts for a Workload API client made of the host's
        Python: /usr, the loader cache, D/share at /wick and the agent's
        socket directory at /run/spire/sockets."""
        return [("/usr", "/usr"), ("/etc/ld.so.cache", "/etc/ld.so.cache"),
                (self.share, SHARE_IN), (agent_socket_dir, SOCKET_DIR_IN)]

    def run_client(self, agent_socket_dir, **kw):
        """run() a long-running container ready for fetch()."""
        kw["mounts"] = list(kw.get("mounts", ())) + \
            self.client_mounts(agent_socket_dir)
        return self.run(**kw)

    def share_stubs(self, stubs_dir):
        """Copy generated Workload API stubs (*_pb2*.py) into D/share,
        where fetch() inside a container imports them."""
        for n in os.listdir(stubs_dir):
            if n.endswith(".py"):
                dst = os.path.join(self.share, n)
                shutil.copy(os.path.join(stubs_dir, n), dst)
                os.chmod(dst, 0o644)

    def exec(self, c, *argv, user=None, env=None, timeout=120, check=True):
        """podman exec into a running container."""
        args = ["exec"]
        if user is not None:
            args += ["--user", str(user)]
        for k, v in sorted((env or {}).items()):
            args += ["-e", "%s=%s" % (k, v)]
        t0 = time.monotonic()
        try:
            return self.pm(*(args + [c.id] + list(argv)), check=check,
                           timeout=timeout)
        finally:
            self.stats["exec"].append(time.monotonic() - t0)

    def fetch(self, c, socket_name="api.sock", want=None, within=0.0,
              timeout=30.0):
        """Fetch X.509-SVIDs from inside container c (started with
        run_client) with the host's grpcio.  With want (a set of SPIFFE
        IDs) the client retries until it gets exactly those or `within`
        seconds passed.  Returns the client's report: {"code": "OK" or a
        gRPC status name, "details", "ids" (sorted), "uris" (the leaves'
        URI SANs, in the same order), "attempts", "max_seconds" (the
        longest single call), "uid", "gid"}."""
        argv = ["/usr/bin/python3", SHARE_IN + "/podman.py", "fetch",
                "--target", "unix://%s/%s" % (SOCKET_DIR_IN, socket_name),
                "--timeout", str(timeout), "--within", str(within)]
        if want is not None:
            argv += ["--want", ",".join(sorted(want))]
        p = self.exec(c, *argv, env={"PYTHONDONTWRITEBYTECODE": "1"},
                      check=False, timeout=timeout + within + 60)
        try:
            return json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise PodmanError("client in %r failed (%d):\n%s%s" %
                              (c, p.returncode, p.stdout, p.stderr))

    def rm(self, c):
        """Remove a container at once (rm -f -t 0) and forget it."""
        cid = c.id if isinstance(c, Container) else c
        if cid not in self.containers:
            return
        t0 = time.monotonic()
        self.pm("rm", "-f", "-t", "0", cid, check=False)
        self.stats["rm"].append(time.monotonic() - t0)
        self.containers.pop(cid, None)
        self._reap_conmon(cid)

    def _reap_conmon(self, cid):
        pid = self.conmon_pids.pop(cid, None)
        if pid is None:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if not self._is_our_conmon(pid, cid):
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    @staticmethod
    def _is_our_conmon(pid, cid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            return False
        return bool(argv) and argv[0].endswith(b"conmon") and \
            cid.encode() in argv

    def inspect(self, c):
        """`podman inspect` of a container (the CLI's view)."""
        cid = c.id if isinstance(c, Container) else c
        return json.loads(self.pm("inspect", cid).stdout)[0]

    # ---- the Docker-compatible API ------------------------------------

    def start_service(self, path=None, timeout=20):
        """`podman system service --time=0 unix://path` (default
        D/docker.sock), our child; returns when /_ping answers."""
        if self.service is not None:
            raise PodmanError("the API service is already running")
        path = path or self.sock
        if len(path.encode()) > SUN_PATH_MAX:
            raise PodmanError("socket path too long: %s" % path)
        self.service_path = path
        self.service_log = open(os.path.join(
            self.dir, "service-%d.log" % time.monotonic_ns()), "wb")
        self.service = subprocess.Popen(
            self.base + ["system", "service", "--time=0", "unix://" + path],
            env=self.environ, stdin=subprocess.DEVNULL,
            stdout=self.service_log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.service.poll() is not None:
                rc = self.service.returncode
                self.service = None
                raise PodmanError("podman system service exited %d:\n%s" %
                                  (rc, self.service_output()))
            if os.path.exists(path):
                try:
                    st, body = api_get(path, "/_ping", timeout=2)
                    if st == 200:
                        return path
                except OSError:
                    pass
            time.sleep(0.02)
        self.stop_service()
        raise PodmanError("podman system service did not answer on %s" %
                          path)

    def service_output(self):
        if self.service_log is None:
            return ""
        with open(self.service_log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def stop_service(self, timeout=10):
        """SIGTERM the API service by its pid (SIGKILL if it lingers);
        removes its socket file.  Returns its exit status."""
        if self.service is None:
            return None
        if self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
        try:
            rc = self.service.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.service.kill()
            rc = self.service.wait()
        self.service = None
        self.service_log.close()
        try:
            os.unlink(self.service_path)
        except FileNotFoundError:
            pass
        return rc

    def api(self, path, sock=None, timeout=10):
        """GET on the compat API: (status, JSON)."""
        return api_get(sock or self.service_path, API + path,
                       timeout=timeout)

    def api_inspect(self, c):
        """GET /containers/{id}/json on the compat API (what the agent's
        attestor reads)."""
        cid = c.id if isinstance(c, Container) else c
        st, body = self.api("/containers/%s/json" % cid)
        if st != 200:
            raise PodmanError("inspect %s: HTTP %d %r" % (cid, st, body))
        return body

    # ---- cleanup ---------------------------------------------------------

    def stop(self):
        """Stop everything this environment started and delete D."""
        if self.dir is None:
            return
        try:
            self.stop_service()
        except Exception:       # noqa: BLE001 -- go on cleaning up
            pass
        ids = list(self.containers) + list(self.conmon_pids)
        if ids:
            self.pm("rm", "-f", "-t", "0", "--ignore", *sorted(set(ids)),
                    check=False)
        # Anything created here that we lost track of (a failed run):
        # this root is ours alone.
        left = self.pm("ps", "-aq", "--no-trunc", check=False)
        more = left.stdout.split() if left.returncode == 0 else []
        if more:
            self.pm("rm", "-f", "-t", "0", "--ignore", *more, check=False)
        for cid in list(self.conmon_pids):
            self._reap_conmon(cid)
        self.containers.clear()
        for mp in _mounts_under(self.dir):
            _umount(mp)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- inside a container: one Workload API client --------------------------

def fetch_main(argv):
    """`podman.py fetch --target T [--timeout S] [--want ID,...]
    [--within S]`: FetchX509SVID with grpcio and the stubs beside this
    file; prints one JSON line (see Podman.fetch)."""
    import argparse
    ap = argparse.ArgumentParser(prog="podman.py fetch")
    ap.add_argument("--target", required=True)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--within", type=float, default=0.0)
    ap.add_argument("--want", default=None)
    a = ap.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import grpc
    import workload_pb2 as W
    import workload_pb2_grpc as WG
    from cryptography import x509
    want = sorted(a.want.split(",")) if a.want is not None else None
    if want == [""]:
        want = []
    hdr = (("workload.spiffe.io", "true"),)
    rep = {"uid": os.getuid(), "gid": os.getgid(), "attempts": 0,
           "max_seconds": 0.0}
    deadline = time.monotonic() + a.within
    while True:
        rep["attempts"] += 1
        t0 = time.monotonic()
        with grpc.insecure_channel(a.target) as ch:
            stub = WG.SpiffeWorkloadAPIStub(ch)
            call = stub.FetchX509SVID(W.X509SVIDRequest(), metadata=hdr,
                                      timeout=a.timeout)
            try:
                resp = next(call)
                ids = sorted(s.spiffe_id for s in resp.svids)
                uris = []
                for s in sorted(resp.svids, key=lambda s: s.spiffe_id):
                    leaf = x509.load_der_x509_certificate(
                        _first_der(s.x509_svid))
                    san = leaf.extensions.get_extension_for_class(
                        x509.SubjectAlternativeName).value
                    uris.append(san.get_values_for_type(
                        x509.UniformResourceIdentifier))
                rep.update(code="OK", details="", ids=ids, uris=uris)
            except grpc.RpcError as e:
                rep.update(code=e.code().name, details=e.details() or "",
                           ids=[], uris=[])
            finally:
                call.cancel()
        rep["max_seconds"] = max(rep["max_seconds"],
                                 round(time.monotonic() - t0, 3))
        if want is None or rep["ids"] == want or \
                time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    print(json.dumps(rep))
    return 0


def _first_der(blob):
    """The first certificate of concatenated DER certificates."""
    if blob[1] & 0x80:
        n = blob[1] & 0x7f
        return blob[:int.from_bytes(blob[2:2 + n], "big") + 2 + n]
    return blob[:blob[1] + 2]


# ---- the fixture: prove the chain once per test run -----------------------

def _peercred_listener(path, box):
    """Accept one connection on a Unix socket at path and record the
    peer's SO_PEERCRED (pid, uid, gid) and host /proc/<pid>/cgroup."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o777)
    srv.listen(1)
    srv.settimeout(60)

    def serve():
        try:
            conn, _ = srv.accept()
            with conn:
                cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                       struct.calcsize("3i"))
                pid, uid, gid = struct.unpack("3i", cred)
                with open("/proc/%d/cgroup" % pid) as f:
                    box.update(pid=pid, uid=uid, gid=gid, cgroup=f.read())
                conn.sendall(b"ok")
        except OSError as e:
            box["error"] = str(e)
        finally:
            srv.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def selfcheck():
    """Image, container, exec, compat API, PID -> cgroup -> id, and the
    host's Python with grpcio in a container talking to a host socket
    through a read-only bind mount.  Returns the timings (seconds)."""
    t = {}

    def timed(key, fn, *a, **kw):
        t0 = time.monotonic()
        r = fn(*a, **kw)
        t[key] = round(time.monotonic() - t0, 3)
        return r

    t_all = time.monotonic()
    with Podman() as pm:
        image_id = timed("build_image", pm.build_image)
        timed("start_service", pm.start_service)
        c = timed("run", pm.run, name="check", labels={"app": "check"},
                  env={"ROLE": "check"}, user="1234:5678")
        out = timed("exec", pm.exec, c, "id").stdout
        if "uid=1234" not in out:
            raise PodmanError("exec id: %r" % out)
        info = timed("api_inspect", pm.api_inspect, c.name)
        want = {"Id": c.id, "Image": image_id}
        got = {k: info.get(k) for k in want}
        if got != want or info["Config"]["Labels"].get("app") != "check" \
                or "ROLE=check" not in info["Config"]["Env"] \
                or info["Config"]["Image"] != IMAGE:
            raise PodmanError("compat inspect of %s: %s" %
                              (c.id, json.dumps(info)[:2000]))
        with open("/proc/%d/cgroup" % info["State"]["Pid"]) as f:
            cg = f.read()
        if not all(("libpod-" + c.id) in line for line in cg.split()):
            raise PodmanError("cgroup of the container's pid: %s" % cg)
        st, body = pm.api("/containers/%s/json" % ("0" * 64))
        if st != 404:
            raise PodmanError("unknown id: HTTP %d %r" % (st, body))
        # The host's Python with grpcio in a container, through a
        # read-only bind mount of a host socket directory.
        sockdir = os.path.join(pm.dir, "sockdir")
        os.mkdir(sockdir)
        os.chmod(sockdir, 0o755)
        box = {}
        th = _peercred_listener(os.path.join(sockdir, "s"), box)
        cl = timed("run_client", pm.run_client, sockdir, name="client",
                   user="2001:2001", labels={"app": "client"})
        script = ("import grpc, socket; s = socket.socket(socket.AF_UNIX);"
                  "s.connect(%r); print(grpc.__version__, s.recv(2))" %
                  (SOCKET_DIR_IN + "/s"))
        out = timed("exec_python", pm.exec, cl, "/usr/bin/python3", "-c",
                    script).stdout
        th.join(10)
        if "b'ok'" not in out or box.get("uid") != 2001 or \
                ("/libpod-" + cl.id) not in box.get("cgroup", ""):
            raise PodmanError("python in a container: %r, peer %r" %
                              (out, box))
        timed("rm", pm.rm, c)
        timed("stop_service", pm.stop_service)
        d = pm.dir
        timed("cleanup", pm.stop)
        if os.path.exists(d) or _mounts_under(d):
            raise PodmanError("cleanup left %s behind" % d)
    t["total"] = round(time.monotonic() - t_all, 3)
    return t


def _main(argv):
    if argv[:1] == ["fetch"]:
        return fetch_main(argv[1:])
    if argv == ["selfcheck"]:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + 15))
        t = selfcheck()
        print("podman selfcheck passed: " + json.dumps(t))
        return 0
    sys.stderr.write("usage: podman.py selfcheck\n"
                     "       podman.py fetch --target unix:///... "
                     "[--timeout S] [--want ID,...] [--within S]\n")
    return 2


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv[1:]))
    except PodmanError as e:
        sys.stderr.write("podman.py: %s\n" % e)
        sys.exit(1)
