"""The agent's optional engines are loaded when configured, not linked:

* wick-agent's dynamic section names neither libcurl (the docker
  workload attestor's HTTP client) nor tpm2-tss (the TPM node attestor),
  so an agent using neither does not map them;
* with the library hidden (a /dev/null bind-mounted over it in a mount
  namespace of the agent's own), an agent configured for the attestor
  refuses to start, and `tpm pubhash` fails, each naming the library;
  neither makes its Workload API socket.

Needs root (unshare -m).
"""
import datetime
import os
import subprocess
import sys
import tempfile
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

AGENT = os.environ.get("WICK_AGENT")
LIBDIRS = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
           "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")

CONF = """agent {
  trust_domain = "example.org"
  server_address = "127.0.0.1"
  server_port = "1"
  socket_path = "%(d)s/agent.sock"
  data_dir = "%(d)s/data"
  trust_bundle_path = "%(d)s/bundle.pem"
}
plugins {
  %(na)s
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
  %(wa)s
}
"""
JOIN = 'NodeAttestor "join_token" { plugin_data {} }'
TPM = 'NodeAttestor "tpm" { plugin_data { tcti = "swtpm:path=%(d)s/no" } }'
DOCKER = 'WorkloadAttestor "docker" { plugin_data { ' \
    'docker_socket_path = "unix://%(d)s/engine.sock" } }'


def find_lib(soname):
    for d in LIBDIRS:
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return os.path.realpath(p)
    raise AssertionError("%s not found in %s" % (soname, ", ".join(LIBDIRS)))


def hidden(lib, argv):
    """argv run with lib replaced by an empty file, for it alone."""
    return ["unshare", "-m", "sh", "-c",
            'mount --bind /dev/null "$0" && exec "$@"', lib] + argv


def run(argv):
    return subprocess.run(argv, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)


class OptionalLibsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not AGENT:
            raise SystemExit("set WICK_AGENT")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = x509.CertificateBuilder().subject_name(name).issuer_name(
            name).public_key(key.public_key()).serial_number(1) \
            .not_valid_before(now).not_valid_after(
                now + datetime.timedelta(days=1)).add_extension(
                x509.BasicConstraints(ca=True, path_length=None),
                critical=True).sign(key, hashes.SHA256())
        with open(os.path.join(self.d, "bundle.pem"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))

    def tearDown(self):
        self.tmp.cleanup()

    def conf(self, na, wa=""):
        p = os.path.join(self.d, "agent.conf")
        with open(p, "w") as f:
            f.write(CONF % {"d": self.d, "na": na % {"d": self.d},
                            "wa": wa % {"d": self.d}})
        return p

    def refused(self, argv, lib, want):
        r = run(hidden(lib, argv))
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 1, err)
        self.assertIn(want, err)
        self.assertFalse(os.path.exists(os.path.join(self.d, "agent.sock")))
        return r

    def test_not_linked(self):
        r = run(["readelf", "-d", AGENT])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"(NEEDED)", r.stdout)
        self.assertNotIn(b"libtss2", r.stdout)
        self.assertNotIn(b"libcurl", r.stdout)

    def test_tpm_without_tss(self):
        lib = find_lib("libtss2-esys.so.0")
        want = "the TPM node attestor needs tpm2-tss: cannot load " \
            "libtss2-esys.so.0"
        self.refused([AGENT, "run", "-config", self.conf(TPM)], lib,
                     'NodeAttestor "tpm": ' + want)
        r = self.refused([AGENT, "tpm", "pubhash", "-tcti",
                          "swtpm:path=%s/no" % self.d], lib, want)
        self.assertEqual(r.stdout, b"")
        # Another of the four: the return-code text, which ESYS does not
        # load itself.
        self.refused([AGENT, "run", "-config", self.conf(TPM)],
                     find_lib("libtss2-rc.so.0"),
                     "cannot load libtss2-rc.so.0")

    def test_docker_without_curl(self):
        self.refused([AGENT, "run", "-config", self.conf(JOIN, DOCKER)],
                     find_lib("libcurl.so.4"),
                     "the workload attestor needs libcurl: cannot load "
                     "libcurl.so.4")

    def test_neither_needed_without_them(self):
        # An agent configured for neither starts with both hidden (it
        # goes on to attest, so it is stopped once it says so).
        curl = find_lib("libcurl.so.4")
        esys = find_lib("libtss2-esys.so.0")
        argv = ["unshare", "-m", "sh", "-c",
                'mount --bind /dev/null "$0" && mount --bind /dev/null "$1" '
                '&& shift && exec "$@"', curl, esys, AGENT, "run",
                "-config", self.conf(JOIN), "-joinToken", "t"]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            _, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            p.terminate()
            _, err = p.communicate(timeout=30)
        err = err.decode(errors="replace")
        self.assertIn("attesting to the server", err)
        self.assertNotIn("cannot load", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
