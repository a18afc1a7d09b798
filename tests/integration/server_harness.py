"""Run a real wick-server for integration tests, and drive it with its CLI
and with wick-testagent (a client of the agent API).

Every process started here is ended by its own pid; nothing else is touched.
Servers listen on 127.0.0.1 and on Unix sockets in a private temp directory.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

SERVER = os.environ.get("WICK_SERVER")
TESTAGENT = os.environ.get("WICK_TESTAGENT")
AGENT = os.environ.get("WICK_AGENT")
TD = "example.org"


PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                     "proto")


def grpc_stubs(*protos):
    """Compile proto/ files with grpc_tools into a fresh directory that
    every uid can read, and put it on sys.path; returns the directory."""
    d = tempfile.mkdtemp(prefix="wick-stubs-")
    os.chmod(d, 0o755)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", PROTO,
                    "--python_out", d, "--grpc_python_out", d] +
                   [os.path.join(PROTO, p) for p in protos], check=True)
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o644)
    sys.path.insert(0, d)
    return d


# The Workload API's security header.
WORKLOAD_HDR = (("workload.spiffe.io", "true"),)


def fetch_x509(target, timeout=5):
    """The first X509SVIDResponse of a FetchX509SVID stream from the
    Workload API at target (a gRPC target; the stream is then cancelled),
    or None when the call fails.  Needs the workload.proto stubs
    (grpc_stubs)."""
    import grpc
    import workload_pb2 as W
    import workload_pb2_grpc as WG
    with grpc.insecure_channel(target) as ch:
        stub = WG.SpiffeWorkloadAPIStub(ch)
        try:
            st = stub.FetchX509SVID(W.X509SVIDRequest(),
                                    metadata=WORKLOAD_HDR, timeout=timeout)
            r = next(st)
            st.cancel()
            return r
        except grpc.RpcError:
            return None

def need_binaries():
    if not SERVER or not TESTAGENT:
        raise SystemExit("set WICK_SERVER and WICK_TESTAGENT")


def sanitizer_report(text):
    for needle in ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer"):
        if needle in text:
            return text
    return None


CONFIG = """
server {
    bind_address = "127.0.0.1"
    bind_port = "%(port)d"
    socket_path = "%(sock)s"
    trust_domain = "%(td)s"
    data_dir = "%(data)s"
    log_level = "%(log_level)s"
    ca_ttl = "%(ca_ttl)s"
    default_x509_svid_ttl = "%(x509_ttl)s"
    default_jwt_svid_ttl = "5m"
    jwt_issuer = "https://issuer.example.org"
    ca_subject {
        country = ["US"]
        organization = ["Wick Test"]
        common_name = "wick-test-ca"
    }
%(extra)s
}

plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "%(data)s/datastore.sqlite3"
        }
    }
    KeyManager "disk" {
        plugin_data {
            keys_path = "%(data)s/keys.json"
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
%(plugins)s
}
"""


class Daemon:
    """A daemon process of ours: its log files, start, stop, kill -9.
    Subclasses set self.tmp, self.name and self.logs and define argv()
    and ready()."""

    def spawn(self, args):
        self.log_path = os.path.join(self.tmp, "%s-%d.log" %
                                     (self.name, time.monotonic_ns()))
        self.logs.append(self.log_path)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited %d:\n%s" %
                                   (self.name, self.proc.returncode,
                                    self.output()))
            if self.ready():
                return self
            time.sleep(0.05)
        raise RuntimeError("%s did not start:\n%s" % (self.name,
                                                      self.output()))

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def all_output(self):
        out = ""
        for p in self.logs:
            with open(p, "rb") as f:
                out += f.read().decode(errors="replace")
        return out

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        self.proc = None
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        self.proc = None


class Server(Daemon):
    """A wick-server with its own data directory, admin socket and port."""

    def __init__(self, tmpdir=None, extra="", ca_ttl="24h", x509_ttl="1h",
                 port=0, log_level="DEBUG", plugins="", sock=None):
        need_binaries()
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="wick-srv-")
        self.data = os.path.join(self.tmp, "data")
        self.sock = sock or os.path.join(self.tmp, "admin", "api.sock")
        self.conf = os.path.join(self.tmp, "server.conf")
        with open(self.conf, "w") as f:
            f.write(CONFIG % {"sock": self.sock, "td": TD, "data": self.data,
                              "extra": extra, "ca_ttl": ca_ttl,
                              "x509_ttl": x509_ttl, "port": port,
                              "log_level": log_level, "plugins": plugins})
        self.proc = None
        self.fixed_port = port
        self.port = port or None
        self.logs = []

    @property
    def db(self):
        return os.path.join(self.data, "datastore.sqlite3")

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=30):
        self.name = "wick-server"
        self.spawn([SERVER, "run", "-config", self.conf])
        return self.wait_ready(timeout)

    def ready(self):
        m = re.search(r"agent API on [0-9.]+:(\d+)", self.output())
        if m and os.path.exists(self.sock):
            self.port = int(m.group(1))
            return True
        return bool(self.fixed_port and os.path.exists(self.sock) and
                    self.cli("healthcheck", check=False).returncode == 0)

    # ---- CLI ---------------------------------------------------------------

    def cli(self, *args, check=True, input=None, user=None):
        cmd = [SERVER] + list(args[:2]) + ["-socketPath", self.sock] + \
            list(args[2:])
        if args and args[0] == "healthcheck":
            cmd = [SERVER, "healthcheck", "-socketPath", self.sock] + \
                list(args[1:])
        if user is not None:
            cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
                   "--clear-groups"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, input=input,
                           timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s" %
                                 (" ".join(cmd), p.returncode, p.stdout,
                                  p.stderr))
        return p

    def cli_json(self, *args):
        return json.loads(self.cli(*(list(args) + ["-output", "json"])).stdout)

    def token(self, ttl=600, spiffe_id=None):
        args = ["token", "generate", "-ttl", str(ttl)]
        if spiffe_id:
            args += ["-spiffeID", spiffe_id]
        out = self.cli(*args).stdout
        m = re.search(r"Token: (\S+)", out)
        assert m, out
        return m.group(1)

    def create_entry(self, spiffe_id, parent_id, selectors, *extra):
        args = ["entry", "create", "-spiffeID", spiffe_id, "-parentID",
                parent_id]
        for s in selectors:
            args += ["-selector", s]
        out = self.cli(*(args + list(extra))).stdout
        m = re.search(r"Entry ID\s*:\s*(\S+)", out)
        assert m, out
        return m.group(1)

    def bundle_pem(self, path):
        out = self.cli("bundle", "show").stdout
        with open(path, "w") as f:
            f.write(out)
        return path

    def bundle_spiffe(self):
        return json.loads(self.cli("bundle", "show", "-format",
                                   "spiffe").stdout)


class Agent:
    """wick-testagent with a state directory."""

    def __init__(self, server, tmpdir=None):
        self.server = server
        self.dir = tmpdir or tempfile.mkdtemp(prefix="wick-agent-",
                                              dir=server.tmp)

    def run(self, *args, bundle=None, check=True):
        cmd = [TESTAGENT, "-s", self.server.addr, "-T", TD, "-d", self.dir]
        if bundle:
            cmd += ["-b", bundle]
        cmd += list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        rep = sanitizer_report(p.stderr)
        if rep:
            raise AssertionError("sanitizer report from wick-testagent:\n" +
                                 rep)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s" %
                                 (" ".join(cmd), p.returncode, p.stdout,
                                  p.stderr))
        try:
            out = json.loads(p.stdout) if p.stdout.strip() else None
        except ValueError:
            raise AssertionError("not JSON: %r (stderr %s)" %
                                 (p.stdout, p.stderr))
        return p.returncode, out

    def attest(self, token, bundle):
        rc, out = self.run("attest", "-t", token, bundle=bundle)
        return out

    def path(self, name):
        return os.path.join(self.dir, name)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


AGENT_CONFIG = """
agent {
    trust_domain = "%(td)s"
    server_address = "127.0.0.1"
    server_port = "%(port)d"
    socket_path = "%(sock)s"
    data_dir = "%(data)s"
    trust_bundle_path = "%(bundle)s"
    log_level = "DEBUG"
    allowed_foreign_jwt_claims = ["team"]
    experimental {
        sync_interval = "1s"
    }
}
plugins {
%(node_attestor)s
    KeyManager "disk" {
        plugin_data {
            directory = "%(data)s"
        }
    }
%(workload_attestors)s
}
"""

# The agent's WorkloadAttestor blocks unless a test gives its own.
UNIX_WORKLOAD_ATTESTOR = """\
    WorkloadAttestor "unix" {
        plugin_data {
            discover_workload_path = true
        }
    }"""


class AgentDaemon(Daemon):
    """A real wick-agent talking to a Server; its socket is reachable by
    every uid (the directory is 0755, the socket 0777, as SPIRE's)."""

    def __init__(self, server, bundle, sock=None,
                 node_attestor='NodeAttestor "join_token" { plugin_data {} }',
                 workload_attestors=UNIX_WORKLOAD_ATTESTOR):
        if not AGENT:
            raise SystemExit("set WICK_AGENT")
        self.server = server
        self.tmp = tempfile.mkdtemp(prefix="wick-agentd-")
        os.chmod(self.tmp, 0o755)
        self.data = os.path.join(self.tmp, "data")
        self.sock = sock or os.path.join(self.tmp, "public", "api.sock")
        self.conf = os.path.join(self.tmp, "agent.conf")
        with open(self.conf, "w") as f:
            f.write(AGENT_CONFIG % {"td": TD, "port": server.port,
                                    "sock": self.sock, "data": self.data,
                                    "bundle": bundle,
                                    "node_attestor": node_attestor,
                                    "workload_attestors":
                                    workload_attestors})
        self.proc = None
        self.logs = []

    def start(self, token=None, wait=True, timeout=30):
        self.name = "wick-agent"
        args = [AGENT, "run", "-config", self.conf]
        if token:
            args += ["-joinToken", token]
        self.spawn(args)
        return self.wait_ready(timeout) if wait else self

    def ready(self):
        return "Workload API listening" in self.output() and \
            os.path.exists(self.sock)

    def cli(self, *args, check=True, env=None):
        cmd = [AGENT] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           env=env)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s" %
                                 (" ".join(cmd), p.returncode, p.stdout,
                                  p.stderr))
        return p


def agent_spiffe_id(token):
    """The SPIFFE ID of the agent a join token attests."""
    return "spiffe://%s/spire/agent/join_token/%s" % (TD, token)


def server_and_agent(entries=(), **server_kw):
    """A started Server, its bundle's PEM file and a started AgentDaemon
    attested with a join token; entries are (spiffe_id, selectors, more
    `entry create` arguments...) parented to that agent."""
    srv = Server(port=free_port(), **server_kw).start()
    bundle = srv.bundle_pem(os.path.join(srv.tmp, "bundle.pem"))
    tok = srv.token()
    for e in entries:
        srv.create_entry(e[0], agent_spiffe_id(tok), e[1], *e[2:])
    return srv, bundle, AgentDaemon(srv, bundle).start(token=tok)


def stop_cleanly(*daemons):
    """Stop each daemon in turn (an agent before its server): each must
    exit 0 and print no sanitizer report."""
    bad = []
    for d in daemons:
        rc = d.stop()
        out = d.all_output()
        if rc != 0 or sanitizer_report(out) is not None:
            bad.append("%s exited %s:\n%s" % (d.name, rc, out[-8000:]))
    assert not bad, "\n".join(bad)


# ---- protobuf by hand: raw bytes to and from hostile peers -----------------

def pb_varint(n):
    """A protobuf varint's bytes."""
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_read_varint(buf, i):
    """The varint at buf[i:]: (value, index after it)."""
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def pb_fields(buf):
    """(field number, value) of a protobuf message: length-delimited
    values as bytes, varints as ints, fixed ones as bytes."""
    i = 0
    while i < len(buf):
        key, i = pb_read_varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = pb_read_varint(buf, i)
        elif wt == 2:
            n, i = pb_read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield field, v
