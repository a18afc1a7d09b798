"""libwick.so through Python ctypes: the bindings the libwick tests use,
written from include/wick/wick.h (a C caller's view of the shared
library, nothing else).

WICK_LIBWICK names the library.  A sanitizer build of it needs the ASan
runtime loaded first: load() re-executes the test under LD_PRELOAD then.
"""
import ctypes
import os
import re
import subprocess
import sys

LIB = os.environ.get("WICK_LIBWICK")

c_char_pp = ctypes.POINTER(ctypes.c_char_p)
WATCH_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int,
                            ctypes.c_void_p)

BUNDLE_X509, BUNDLE_JWT, BUNDLE_WIT = 1, 2, 3
ANY_WORKLOAD_ID, ALLOW_EDDSA, NO_REPLAY = 1, 2, 4


class Bind(ctypes.Structure):
    _fields_ = [("access_token", ctypes.c_char_p),
                ("txn_token", ctypes.c_char_p),
                ("oth_names", c_char_pp),
                ("oth_values", c_char_pp),
                ("noth", ctypes.c_size_t)]


class VerifierConfig(ctypes.Structure):
    _fields_ = [("audience", ctypes.c_char_p),
                ("wit_bundles", ctypes.c_void_p),
                ("leeway", ctypes.c_int64),
                ("max_ttl", ctypes.c_int64),
                ("replay_entries", ctypes.c_size_t),
                ("flags", ctypes.c_uint)]


class Result(ctypes.Structure):
    _fields_ = [("reason", ctypes.c_int),
                ("detail", ctypes.c_char * 160),
                ("sub", ctypes.c_char * 2049),
                ("wit_exp", ctypes.c_int64),
                ("wpt_exp", ctypes.c_int64)]


def _asan_runtime(path):
    out = subprocess.run(["ldd", path], capture_output=True,
                         text=True).stdout
    m = re.search(r"(/\S*libasan\.so\S*)", out)
    return m.group(1) if m else None


def load():
    """The library, with prototypes set."""
    if not LIB:
        raise SystemExit("set WICK_LIBWICK to libwick.so")
    asan = _asan_runtime(LIB)
    if asan and "libasan" not in os.environ.get("LD_PRELOAD", ""):
        env = dict(os.environ, LD_PRELOAD=asan)
        # Python's own allocations are not ours to judge.
        env["ASAN_OPTIONS"] = "detect_leaks=0:" + \
            env.get("ASAN_OPTIONS", "").replace("detect_leaks=1", "")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    L = ctypes.CDLL(LIB)
    P, I, S, Z = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, \
        ctypes.c_size_t
    I64, PP = ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p)
    protos = {
        "wick_strerror": (S, [I]),
        "wick_free": (None, [P]),
        "wick_free_secret": (None, [P]),
        "wick_bundles_new": (I, [I, PP]),
        "wick_bundles_add": (I, [P, S, S, Z]),
        "wick_bundles_from_json_map": (I, [I, S, Z, PP]),
        "wick_bundles_count": (Z, [P]),
        "wick_bundles_td": (S, [P, Z]),
        "wick_bundles_size": (Z, [P, S]),
        "wick_bundles_free": (None, [P]),
        "wick_client_new": (I, [S, I64, PP]),
        "wick_client_free": (None, [P]),
        "wick_fetch_x509_context": (I, [P, PP]),
        "wick_fetch_jwt_svid": (I, [P, c_char_pp, Z, S, PP]),
        "wick_fetch_jwt_bundles": (I, [P, PP]),
        "wick_fetch_wit_svid": (I, [P, S, PP]),
        "wick_fetch_wit_bundles": (I, [P, PP]),
        "wick_x509_context_count": (Z, [P]),
        "wick_x509_context_svid": (P, [P, Z]),
        "wick_x509_context_find": (P, [P, S]),
        "wick_x509_context_bundles": (P, [P]),
        "wick_x509_context_ref": (P, [P]),
        "wick_x509_context_free": (None, [P]),
        "wick_x509_svid_id": (S, [P]),
        "wick_x509_svid_hint": (S, [P]),
        "wick_x509_svid_expires": (I64, [P]),
        "wick_x509_svid_chain": (P, [P]),
        "wick_x509_svid_chain_pem": (I, [P, PP]),
        "wick_x509_svid_key_pem": (I, [P, PP]),
        "wick_x509svid_verify": (I, [P, P, I64, PP, P, Z]),
        "wick_x509svid_verify_der": (I, [S, Z, P, I64, PP, P, Z]),
        "wick_jwt_svid_id": (S, [P]),
        "wick_jwt_svid_token": (S, [P]),
        "wick_jwt_svid_free": (None, [P]),
        "wick_jwtsvid_validate": (I, [S, P, c_char_pp, Z, I64, PP, PP, P,
                                      Z]),
        "wick_wit_svid_new": (I, [S, S, PP]),
        "wick_wit_svid_id": (S, [P]),
        "wick_wit_svid_token": (S, [P]),
        "wick_wit_svid_free": (None, [P]),
        "wick_wpt_create": (I, [P, S, I64, P, I64, PP]),
        "wick_wpt_reason_str": (S, [I]),
        "wick_wpt_verifier_new": (I, [P, PP]),
        "wick_wpt_verifier_free": (None, [P]),
        "wick_wpt_verify": (I, [P, S, S, P, I64, P]),
        "wick_x509_watch_new": (I, [P, WATCH_FN, P, PP]),
        "wick_x509_watch_free": (None, [P]),
        "wick_x509_watch_fd": (I, [P]),
        "wick_x509_watch_current": (I, [P, PP]),
        "wick_x509_watch_wait": (I, [P, I64]),
        "wick_x509_watch_updates": (ctypes.c_uint64, [P]),
        "wick_token_hash": (I, [S, ctypes.c_char * 44]),
    }
    for name, (res, args) in protos.items():
        f = getattr(L, name)
        f.restype = res
        f.argtypes = args
    return L


def out_ptr():
    return ctypes.c_void_p()


def take_string(L, p, secret=False):
    """A library-allocated string as bytes, freed."""
    if not p:
        return None
    s = ctypes.string_at(p)
    (L.wick_free_secret if secret else L.wick_free)(p)
    return s


def str_array(items):
    arr = (ctypes.c_char_p * len(items))(*[i.encode() for i in items])
    return ctypes.cast(arr, c_char_pp), arr


class Verifier:
    """A WPT verifier over a WIT bundle set (taken from a JSON map or a
    (td, jwks) pair)."""

    def __init__(self, L, audience, bundles, leeway=0, flags=0,
                 replay=0):
        self.L = L
        self.p = out_ptr()
        cfg = VerifierConfig(audience.encode(), bundles, leeway, 0, replay,
                             flags)
        r = L.wick_wpt_verifier_new(ctypes.byref(cfg), ctypes.byref(self.p))
        assert r == 0, L.wick_strerror(r)

    def verify(self, wit, wpt, now=0, bind=None):
        res = Result()
        r = self.L.wick_wpt_verify(
            self.p, wit.encode() if isinstance(wit, str) else wit,
            wpt.encode() if isinstance(wpt, str) else wpt,
            ctypes.byref(bind) if bind else None, now, ctypes.byref(res))
        reason = self.L.wick_wpt_reason_str(res.reason).decode()
        return r, reason, res

    def close(self):
        self.L.wick_wpt_verifier_free(self.p)


def wit_bundles(L, td, jwks):
    b = out_ptr()
    assert L.wick_bundles_new(BUNDLE_WIT, ctypes.byref(b)) == 0
    doc = jwks.encode() if isinstance(jwks, str) else jwks
    r = L.wick_bundles_add(b, td.encode(), doc, len(doc))
    assert r == 0, L.wick_strerror(r)
    return b
