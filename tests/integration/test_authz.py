"""The authorization matrix: who may make wick-server and wick-agent do
what.  One cell per test; each asserts the exact gRPC status and reason.

 1a  a uid without entries, on the Workload API: every fetch (X.509, JWT,
     WIT, the three bundle streams) -> PERMISSION_DENIED "no identity
     issued".
 1b  uid A and uid B, both registered: X.509, JWT and WIT fetches serve
     exactly their own SPIFFE ID (also the leaf's URI SAN and the tokens'
     sub).
 1c  uid A asking for B's SPIFFE ID (JWT, WIT) -> PERMISSION_DENIED "no
     identity issued"; and B for A's.
 2   agent 2 asking for an entry parented to agent 1: BatchNewX509SVID ->
     per-entry NOT_FOUND "entry not found or not authorized for this
     agent"; NewJWTSVID, NewWITSVID -> NOT_FOUND 'entry "ID" not found or
     not authorized for this agent'; SyncAuthorized lists only its own.
 3   an evicted agent: RenewAgent, SyncAuthorized, BatchNewX509SVID,
     NewJWTSVID, NewWITSVID -> PERMISSION_DENIED "agent ID is not attested
     (AGENT_NOT_ATTESTED)"; re-attesting with its used token ->
     INVALID_ARGUMENT "failed to attest: join token does not exist or has
     already been used"; with a new token -> a new agent ID (the old SVID
     stays refused).
 3b  a superseded agent SVID (renewed, the new one used) -> PERMISSION_DENIED
     "agent ID: SVID serial S is not active (AGENT_NOT_ACTIVE)".
 3c  an expired agent SVID -> the TLS handshake fails (UNAVAILABLE on the
     client, "certificate has expired" in the server's log).
 4   a banned agent: every call -> PERMISSION_DENIED "agent ID is banned
     (AGENT_BANNED)"; re-attesting with its used token, or with a new token
     of the same value (the same agent ID) -> PERMISSION_DENIED "failed to
     attest: agent is banned", without spending the token.
 5   attesting with a used join token -> INVALID_ARGUMENT "failed to attest:
     join token does not exist or has already been used"; with an expired
     one -> INVALID_ARGUMENT "failed to attest: join token expired" (and
     the token is gone).
 6   a workload's X.509-SVID (from the real agent) as the client
     certificate on the agent API: every call -> the TLS handshake fails
     (UNAVAILABLE on the client, "peer ID rejected" in the server's log),
     nothing issued.
 7a  a non-admin uid, even one in admin_uids, connecting to the admin
     socket (0600 in a 0700 directory) -> EACCES.
 7b  a non-admin uid with the socket opened up: all 18 admin methods ->
     PERMISSION_DENIED "uid N may not use the admin API (allowed: root, the
     server's uid and admin_uids)", and nothing changes.
 7c  a uid in admin_uids with the socket opened up: served.
 8   the agent's own uid on the Workload API -> PERMISSION_DENIED "no
     identity issued"; no entry may carry an agent ID ("reserved").

Workloads are real peers: Python grpcio run under other uids with
setpriv.  Agents are wick-testagent (the agent's own client code) and the
real wick-agent.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import unittest

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_harness as H  # noqa: E402
import test_agent as TA  # noqa: E402  (Workload API stubs and helpers)

STUBS = H.grpc_stubs("types.proto", "admin.proto", "health.proto")
import admin_pb2 as A  # noqa: E402
import types_pb2 as T  # noqa: E402

TD = H.TD
UID_A, UID_B = 40001, 40002        # workloads with entries
UID_NONE = 65534                   # a uid no entry names
UID_ADMIN = 40003                  # listed in admin_uids
ID_A = "spiffe://%s/authz/a" % TD
ID_B = "spiffe://%s/authz/b" % TD

DENIED = "PERMISSION_DENIED"
NO_IDENTITY = [DENIED, "no identity issued"]
USED = "failed to attest: join token does not exist or has already been used"

# Run as another uid: fetch everything the Workload API offers, and print
# each outcome as [code, detail] or the SPIFFE IDs (and subjects) served.
WORKLOAD = textwrap.dedent("""
    import base64, json, sys
    import grpc
    sys.path.insert(0, sys.argv[1])
    import workload_pb2 as W, workload_pb2_grpc as WG
    HDR = (("workload.spiffe.io", "true"),)
    stub = WG.SpiffeWorkloadAPIStub(grpc.insecure_channel(sys.argv[2]))
    other = sys.argv[3]

    def sub(token):
        part = token.split(".")[1]
        part += "=" * (-len(part) % 4)
        return json.loads(base64.urlsafe_b64decode(part))["sub"]

    def first(stream):
        try:
            return next(stream)
        finally:
            stream.cancel()

    def run(fn):
        try:
            return fn()
        except grpc.RpcError as e:
            return [e.code().name, e.details()]

    def x509():
        r = first(stub.FetchX509SVID(W.X509SVIDRequest(), metadata=HDR,
                                     timeout=20))
        return {"ids": [s.spiffe_id for s in r.svids],
                "chain": [s.x509_svid.hex() for s in r.svids],
                "key": [s.x509_svid_key.hex() for s in r.svids]}

    def jwt(spiffe_id=""):
        r = stub.FetchJWTSVID(W.JWTSVIDRequest(audience=["authz"],
                                               spiffe_id=spiffe_id),
                              metadata=HDR, timeout=20)
        return {"ids": [s.spiffe_id for s in r.svids],
                "subs": [sub(s.svid) for s in r.svids]}

    def wit(spiffe_id=""):
        r = first(stub.FetchWITSVID(W.WITSVIDRequest(spiffe_id=spiffe_id),
                                    metadata=HDR, timeout=20))
        return {"ids": [s.spiffe_id for s in r.svids],
                "subs": [sub(s.wit_svid) for s in r.svids]}

    def bundles(method, req):
        first(getattr(stub, method)(req, metadata=HDR, timeout=20))
        return "served"

    print(json.dumps({
        "x509": run(x509), "jwt": run(jwt), "wit": run(wit),
        "jwt_other": run(lambda: jwt(other)),
        "wit_other": run(lambda: wit(other)),
        "x509_bundles": run(lambda: bundles("FetchX509Bundles",
                                            W.X509BundlesRequest())),
        "jwt_bundles": run(lambda: bundles("FetchJWTBundles",
                                           W.JWTBundlesRequest())),
        "wit_bundles": run(lambda: bundles("FetchWITBundles",
                                           W.WITBundlesRequest())),
    }))
""")

# Run as another uid: call admin methods by path with the given request
# bytes; print [code, detail] for each.
ADMIN = textwrap.dedent("""
    import json, sys
    import grpc
    ch = grpc.insecure_channel("unix:" + sys.argv[1])
    out = []
    for path, body in json.loads(sys.stdin.read()):
        call = ch.unary_unary(path, request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        try:
            call(bytes.fromhex(body), timeout=20)
            out.append(["OK", ""])
        except grpc.RpcError as e:
            out.append([e.code().name, e.details()])
    print(json.dumps(out))
""")

CONNECT = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sys.argv[1])
        print("connected")
    except OSError as e:
        print(e.errno)
""")


def script(name, text):
    path = os.path.join(STUBS, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def as_uid(uid, path, *args, input=None):
    """Run a Python script as uid (gid the same, no groups); its JSON."""
    p = subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                        "--clear-groups", sys.executable, path] +
                       list(args), capture_output=True, text=True,
                       input=input, timeout=60, cwd="/",
                       env={"PATH": "/usr/bin:/bin", "HOME": "/"})
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


class Cells:
    """Helpers of the cells; self.srv and self.bundle are the server's."""

    def attested(self, tok=None):
        tok = tok or self.srv.token()
        agent = H.Agent(self.srv)
        agent.attest(tok, self.bundle)
        return agent, tok, "spiffe://%s/spire/agent/join_token/%s" % (TD,
                                                                      tok)

    def refused(self, agent, *args, bundle=None):
        """The call fails; its (code, message)."""
        rc, out = agent.run(*args, bundle=bundle, check=False)
        self.assertEqual(rc, 2, (args, out))
        return out["code"], out["message"]

    def every_call(self, agent, eid):
        """(code, message) of each authorised agent API call."""
        return {
            "renew": self.refused(agent, "renew"),
            "sync": self.refused(agent, "sync"),
            "x509": self.refused(agent, "x509", eid),
            "jwt": self.refused(agent, "jwt", eid, "aud"),
            "wit": self.refused(agent, "wit", eid),
        }

    def assert_handshake_refused(self, calls, log_from, reason):
        """Each call ended in the TLS handshake: UNAVAILABLE on the client
        (TLS 1.3 lets it finish its side first, so whether it was still
        waiting or already writing when the server hung up is a race;
        when the server's alert arrived, the client names it), the reason
        in the server's log, and nothing issued."""
        for name, (code, msg) in calls.items():
            self.assertEqual(code, 14, (name, msg))
            self.assertTrue(msg == "connection lost while writing" or
                            msg.startswith("connection failed"),
                            (name, msg))
        log = self.srv.output()[log_from:]
        self.assertEqual(log.count("TLS handshake from 127.0.0.1:"),
                         len(calls), log)
        self.assertEqual(log.count(reason), len(calls), log)
        self.assertNotIn("audit: svid", log)
        self.assertNotIn("audit: agent.renew", log)


class AuthzTest(Cells, unittest.TestCase):
    """One server (admin_uids = [UID_ADMIN]), one real agent (agent 1)
    serving uids A and B; wick-testagent agents for the other cells."""

    @classmethod
    def setUpClass(cls):
        cls.srv = H.Server(port=H.free_port(),
                           extra="    admin_uids = [%d]" % UID_ADMIN).start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))
        # Made now, used in cell 5 once it has expired.
        cls.expired_tok = cls.srv.token(ttl=1)
        cls.expired_at = time.monotonic() + 1
        cls.tok1 = cls.srv.token()
        cls.agent1 = "spiffe://%s/spire/agent/join_token/%s" % (TD,
                                                                 cls.tok1)
        cls.eid_a = cls.srv.create_entry(ID_A, cls.agent1,
                                         ["unix:uid:%d" % UID_A])
        cls.eid_b = cls.srv.create_entry(ID_B, cls.agent1,
                                         ["unix:uid:%d" % UID_B])
        cls.agentd = H.AgentDaemon(cls.srv, cls.bundle).start(token=cls.tok1)
        cls.target = "unix://" + cls.agentd.sock
        cls.wl = script("workload.py", WORKLOAD)
        cls.admin = script("admin.py", ADMIN)
        cls.connect = script("connect.py", CONNECT)
        cls.fetched = {}

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.agentd, cls.srv)

    # ---- helpers -------------------------------------------------------

    def workload(self, uid, other=ID_B):
        """Everything uid gets from the Workload API (fetched once)."""
        key = (uid, other)
        if key not in self.fetched:
            self.fetched[key] = as_uid(uid, self.wl, TA.STUBS, self.target,
                                       other)
        return self.fetched[key]

    def admin_call(self, path, req, resp):
        """An admin method called by this process (root)."""
        with grpc.insecure_channel("unix:" + self.srv.sock) as ch:
            return ch.unary_unary(
                path, request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=resp.FromString)(req, timeout=20)

    def admin_state(self):
        """What a non-admin caller might try to change."""
        entries = self.admin_call("/wick.admin.Entries/ListEntries",
                                  A.ListEntriesRequest(),
                                  A.ListEntriesResponse)
        agents = self.admin_call("/wick.admin.Agents/ListAgents",
                                 A.ListAgentsRequest(), A.ListAgentsResponse)
        feds = self.admin_call("/wick.admin.Bundles/ListFederatedBundles",
                               A.ListFederatedBundlesRequest(),
                               A.ListFederatedBundlesResponse)
        return ({(e.id, e.spiffe_id, e.revision_number)
                 for e in entries.entries},
                {(a.spiffe_id, a.banned) for a in agents.agents},
                {b.trust_domain for b in feds.bundles})

    # ---- 1: Workload API callers of other uids -------------------------

    def test_1a_uid_without_entries_denied(self):
        got = self.workload(UID_NONE)
        for rpc in ("x509", "jwt", "wit", "jwt_other", "wit_other",
                    "x509_bundles", "jwt_bundles", "wit_bundles"):
            self.assertEqual(got[rpc], NO_IDENTITY, rpc)

    def test_1b_each_uid_gets_exactly_its_own_svid(self):
        for uid, mine in ((UID_A, ID_A), (UID_B, ID_B)):
            got = self.workload(uid, other=ID_B if uid == UID_A else ID_A)
            self.assertEqual(got["x509"]["ids"], [mine], uid)
            leaf = TA.der_certs(bytes.fromhex(got["x509"]["chain"][0]))[0]
            self.assertEqual(TA.uris(leaf), [mine], uid)
            self.assertEqual(got["jwt"], {"ids": [mine], "subs": [mine]}, uid)
            self.assertEqual(got["wit"], {"ids": [mine], "subs": [mine]}, uid)
            for rpc in ("x509_bundles", "jwt_bundles", "wit_bundles"):
                self.assertEqual(got[rpc], "served", (uid, rpc))

    def test_1c_uid_cannot_ask_for_another_uids_id(self):
        for uid, other in ((UID_A, ID_B), (UID_B, ID_A)):
            got = self.workload(uid, other=other)
            self.assertEqual(got["jwt_other"], NO_IDENTITY, uid)
            self.assertEqual(got["wit_other"], NO_IDENTITY, uid)

    # ---- 2: another agent's entries ------------------------------------

    def test_2_agent_cannot_get_another_agents_entry(self):
        agent2, _, aid2 = self.attested()
        own = self.srv.create_entry("spiffe://%s/authz/agent2" % TD, aid2,
                                    ["unix:uid:%d" % UID_A])
        foreign = ("entry \"%s\" not found or not authorized for this agent"
                   % self.eid_a)
        # Its own entry works (the refusal below is not a broken agent).
        _, out = agent2.run("x509", own, self.eid_a)
        res = {r["entry_id"]: r for r in out["results"]}
        self.assertEqual(res[own]["code"], 0)
        self.assertEqual(res[own]["svid"]["spiffe_id"],
                         "spiffe://%s/authz/agent2" % TD)
        self.assertEqual((res[self.eid_a]["code"], res[self.eid_a]["message"],
                          res[self.eid_a]["svid"]),
                         (5, "entry not found or not authorized for this "
                          "agent", None))
        self.assertEqual(self.refused(agent2, "jwt", self.eid_a, "aud"),
                         (5, foreign))
        self.assertEqual(self.refused(agent2, "wit", self.eid_a),
                         (5, foreign))
        _, sync = agent2.run("sync")
        self.assertEqual({e["id"] for e in sync["entries"]}, {own})
        self.assertEqual(sync["unchanged_ids"], [])
        # Agent 1 is served it, through the same server.
        self.assertEqual(self.workload(UID_A)["x509"]["ids"], [ID_A])

    # ---- 3: evicted agent ----------------------------------------------

    def test_3_evicted_agent(self):
        agent, tok, aid = self.attested()
        eid = self.srv.create_entry("spiffe://%s/authz/evicted" % TD, aid,
                                    ["unix:uid:7"])
        agent.run("sync")
        p = self.srv.cli("agent", "evict", "-spiffeID", aid)
        self.assertIn("Agent evicted successfully", p.stdout)
        want = (7, "agent %s is not attested (AGENT_NOT_ATTESTED)" % aid)
        calls = self.every_call(agent, eid)
        self.assertEqual(calls, {k: want for k in calls})
        # Its (used) token does not bring it back.
        again = H.Agent(self.srv)
        self.assertEqual(self.refused(again, "attest", "-t", tok,
                                      bundle=self.bundle), (3, USED))
        # A new token does: a new identity; the old SVID stays refused.
        old = H.Agent(self.srv)
        for name in ("agent.pem", "agent.key", "bundle.pem"):
            shutil.copy(agent.path(name), old.path(name))
        tok2 = self.srv.token()
        out = agent.attest(tok2, self.bundle)
        self.assertEqual(out["svid"]["spiffe_id"],
                         "spiffe://%s/spire/agent/join_token/%s" % (TD, tok2))
        agent.run("sync")
        self.assertEqual(self.refused(old, "sync"), want)

    def test_3b_superseded_agent_svid(self):
        agent, _, aid = self.attested()
        eid = self.srv.create_entry("spiffe://%s/authz/renewed" % TD, aid,
                                    ["unix:uid:9"])
        old = H.Agent(self.srv)
        for name in ("agent.pem", "agent.key", "bundle.pem"):
            shutil.copy(agent.path(name), old.path(name))
        agent.run("renew")
        agent.run("sync")           # the renewed SVID is now the current one
        with open(old.path("agent.pem"), "rb") as f:
            serial = "%x" % x509.load_pem_x509_certificate(
                f.read()).serial_number
        want = (7, "agent %s: SVID serial %s is not active "
                "(AGENT_NOT_ACTIVE)" % (aid, serial))
        calls = self.every_call(old, eid)
        self.assertEqual(calls, {k: want for k in calls})
        agent.run("jwt", eid, "aud")            # the current one works

    # ---- 4: banned agent -----------------------------------------------

    def test_4_banned_agent(self):
        agent, tok, aid = self.attested()
        eid = self.srv.create_entry("spiffe://%s/authz/banned" % TD, aid,
                                    ["unix:uid:8"])
        agent.run("sync")
        p = self.srv.cli("agent", "ban", "-spiffeID", aid)
        self.assertIn("Agent banned successfully", p.stdout)
        want = (7, "agent %s is banned (AGENT_BANNED)" % aid)
        calls = self.every_call(agent, eid)
        self.assertEqual(calls, {k: want for k in calls})
        # Re-attestation as that agent is refused for the ban, checked
        # before the token: with its used token, and with a fresh token
        # of the same value (the same agent ID), which the refusal does
        # not spend.
        banned = (7, "failed to attest: agent is banned")
        again = H.Agent(self.srv)
        self.assertEqual(self.refused(again, "attest", "-t", tok,
                                      bundle=self.bundle), banned)
        self.admin_call("/wick.admin.Agents/CreateJoinToken",
                        A.CreateJoinTokenRequest(ttl=600, token=tok),
                        A.CreateJoinTokenResponse)
        for _ in range(2):
            self.assertEqual(self.refused(again, "attest", "-t", tok,
                                          bundle=self.bundle), banned)
        self.assertEqual(calls, self.every_call(agent, eid))
        # Evicting lifts the ban (as SPIRE): the unspent token works.
        self.srv.cli("agent", "evict", "-spiffeID", aid)
        self.assertEqual(again.attest(tok, self.bundle)["svid"]["spiffe_id"],
                         aid)

    # ---- 5: join tokens ------------------------------------------------

    def test_5_reused_and_expired_join_tokens(self):
        agent = H.Agent(self.srv)
        # agent 1's token, used when the real agent attested.
        self.assertEqual(self.refused(agent, "attest", "-t", self.tok1,
                                      bundle=self.bundle), (3, USED))
        time.sleep(max(0, self.expired_at + 1.2 - time.monotonic()))
        self.assertEqual(self.refused(agent, "attest", "-t",
                                      self.expired_tok, bundle=self.bundle),
                         (3, "failed to attest: join token expired"))
        # An expired token is spent too: no second try.
        self.assertEqual(self.refused(agent, "attest", "-t",
                                      self.expired_tok, bundle=self.bundle),
                         (3, USED))

    # ---- 6: a workload SVID on the agent API ---------------------------

    def test_6_workload_svid_is_not_an_agent_svid(self):
        x = self.workload(UID_A)["x509"]
        self.assertEqual(x["ids"], [ID_A])
        chain = TA.der_certs(bytes.fromhex(x["chain"][0]))
        key = serialization.load_der_private_key(bytes.fromhex(x["key"][0]),
                                                 None)
        wl = H.Agent(self.srv)
        with open(wl.path("agent.pem"), "wb") as f:
            for c in chain:
                f.write(c.public_bytes(serialization.Encoding.PEM))
        with open(os.open(wl.path("agent.key"), os.O_WRONLY | os.O_CREAT,
                          0o600), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        shutil.copy(self.bundle, wl.path("bundle.pem"))
        before = len(self.srv.output())
        calls = self.every_call(wl, self.eid_a)
        # The server ends the handshake; the client sees UNAVAILABLE.
        self.assert_handshake_refused(calls, before, "peer %s rejected: "
                                      "permission denied" % ID_A)

    # ---- 7: the admin socket -------------------------------------------

    def test_7a_admin_socket_closed_to_other_uids(self):
        for uid in (UID_NONE, UID_ADMIN):
            self.assertEqual(as_uid(uid, self.connect, self.srv.sock), 13,
                             uid)                        # EACCES

    def admin_calls(self):
        """Every admin method, with a request that would change
        something if it were obeyed."""
        e = T.Entry(id=self.eid_a, spiffe_id="spiffe://%s/authz/x" % TD,
                    parent_id=self.agent1,
                    selectors=[T.Selector(type="unix", value="uid:0")])
        new = T.Entry(spiffe_id="spiffe://%s/authz/intruder" % TD,
                      parent_id=self.agent1,
                      selectors=[T.Selector(type="unix", value="uid:0")])
        agent = A.GetAgentRequest(spiffe_id=self.agent1)
        return [
            ("/wick.admin.Entries/BatchCreateEntry",
             A.BatchCreateEntryRequest(entries=[new])),
            ("/wick.admin.Entries/BatchUpdateEntry",
             A.BatchUpdateEntryRequest(entries=[e])),
            ("/wick.admin.Entries/BatchDeleteEntry",
             A.BatchDeleteEntryRequest(ids=[self.eid_b])),
            ("/wick.admin.Entries/GetEntry", A.GetEntryRequest(id=self.eid_a)),
            ("/wick.admin.Entries/ListEntries", A.ListEntriesRequest()),
            ("/wick.admin.Entries/CountEntries", A.ListEntriesRequest()),
            ("/wick.admin.Agents/CreateJoinToken",
             A.CreateJoinTokenRequest(ttl=600, token="authz-intruder")),
            ("/wick.admin.Agents/ListAgents", A.ListAgentsRequest()),
            ("/wick.admin.Agents/GetAgent", agent),
            ("/wick.admin.Agents/EvictAgent", agent),
            ("/wick.admin.Agents/BanAgent", agent),
            ("/wick.admin.Agents/CountAgents", A.ListAgentsRequest()),
            ("/wick.admin.Bundles/GetBundle", A.Empty()),
            ("/wick.admin.Bundles/ListFederatedBundles",
             A.ListFederatedBundlesRequest()),
            ("/wick.admin.Bundles/SetFederatedBundle",
             T.Bundle(trust_domain="spiffe://intruder.org")),
            ("/wick.admin.Bundles/DeleteFederatedBundle",
             A.DeleteFederatedBundleRequest(trust_domain="spiffe://x.org")),
            ("/wick.admin.Server/SetLogLevel",
             A.SetLogLevelRequest(level="ERROR")),
            ("/wick.admin.Server/Backup",
             A.BackupRequest(path="/tmp/wick-authz-intruder-backup")),
            ("/wick.admin.Audit/ListAuditEvents",
             A.ListAuditEventsRequest()),
            ("/wick.admin.Audit/VerifyAudit", A.Empty()),
            ("/grpc.health.v1.Health/Check", A.Empty()),
        ]

    def test_7b_admin_methods_refuse_other_uids(self):
        calls = self.admin_calls()
        # Every method the server serves is here: a new one needs a row.
        with open(os.path.join(HERE, "..", "..", "server",
                               "admin_api.c")) as f:
            served = {l.split('"')[1] for l in f
                      if l.strip().startswith(('UNARY("', 'JOB("'))}
        self.assertEqual({p for p, _ in calls}, served)
        before = self.admin_state()
        body = json.dumps([(p, m.SerializeToString().hex())
                           for p, m in calls])
        d = os.path.dirname(self.srv.sock)
        os.chmod(self.srv.tmp, 0o755)
        os.chmod(d, 0o755)
        os.chmod(self.srv.sock, 0o666)
        try:
            got = as_uid(UID_NONE, self.admin, self.srv.sock, input=body)
            admin = as_uid(UID_ADMIN, self.admin, self.srv.sock,
                           input=json.dumps([(p, b) for p, b in
                                             json.loads(body)
                                             if "/Get" in p or "/List" in p
                                             or "/Count" in p or
                                             "/Check" in p]))
        finally:
            os.chmod(self.srv.sock, 0o600)
            os.chmod(d, 0o700)
            os.chmod(self.srv.tmp, 0o700)
        want = [DENIED, "uid %d may not use the admin API (allowed: root, "
                "the server's uid and admin_uids)" % UID_NONE]
        self.assertEqual(dict(zip([p for p, _ in calls], got)),
                         {p: want for p, _ in calls})
        self.assertEqual(self.admin_state(), before)
        self.assertFalse(os.path.lexists("/tmp/wick-authz-intruder-backup"))
        # The token the intruder asked for was never made: root can.
        self.assertEqual(self.admin_call(
            "/wick.admin.Agents/CreateJoinToken",
            A.CreateJoinTokenRequest(ttl=600, token="authz-intruder"),
            A.CreateJoinTokenResponse).token, "authz-intruder")
        # Logged with who asked (rate-limited: a flood of refusals does
        # not flood the log).
        self.assertIn("from uid %d pid" % UID_NONE, self.srv.output())
        # 7c: a uid listed in admin_uids is served.
        self.assertEqual(admin, [["OK", ""]] * len(admin))
        self.assertEqual(len(admin), 10)

    # ---- 8: the agent's identity on the Workload API -------------------

    def test_8_agent_identity_not_served_to_workloads(self):
        """There is no certificate to present on the Workload API (h2c on
        a Unix socket, identity from SO_PEERCRED), so "an agent SVID used
        there" has no wire form.  What can be confused is the agent's
        identity: a process of the agent's own uid gets nothing, and no
        entry can give a workload an agent's SPIFFE ID."""
        self.assertEqual(os.stat("/proc/%d" % self.agentd.proc.pid).st_uid,
                         os.getuid())
        with grpc.insecure_channel(self.target) as ch:
            stub = TA.WG.SpiffeWorkloadAPIStub(ch)
            with self.assertRaises(grpc.RpcError) as cm:
                next(stub.FetchX509SVID(TA.W.X509SVIDRequest(),
                                        metadata=TA.HDR, timeout=20))
            self.assertEqual([cm.exception.code().name,
                              cm.exception.details()], NO_IDENTITY)
            with self.assertRaises(grpc.RpcError) as cm:
                stub.FetchJWTSVID(TA.W.JWTSVIDRequest(
                    audience=["a"], spiffe_id=self.agent1), metadata=TA.HDR,
                    timeout=20)
            self.assertEqual([cm.exception.code().name,
                              cm.exception.details()], NO_IDENTITY)
        for sid in (self.agent1, "spiffe://%s/spire/agent/x" % TD):
            p = self.srv.cli("entry", "create", "-spiffeID", sid,
                             "-parentID", self.agent1, "-selector",
                             "unix:uid:%d" % os.getuid(), check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("reserved", p.stdout + p.stderr)


class ExpiredAgentTest(Cells, unittest.TestCase):
    """Agent SVIDs of one second, on a server of their own."""

    @classmethod
    def setUpClass(cls):
        cls.srv = H.Server(extra='    agent_ttl = "1s"').start()
        cls.bundle = cls.srv.bundle_pem(os.path.join(cls.srv.tmp,
                                                     "bundle.pem"))

    @classmethod
    def tearDownClass(cls):
        H.stop_cleanly(cls.srv)

    def test_3c_expired_agent_svid(self):
        """An expired agent SVID fails certificate verification in the
        handshake, before authorize() could say AGENT_EXPIRED."""
        agent, _, aid = self.attested()
        with open(agent.path("agent.pem"), "rb") as f:
            leaf = x509.load_pem_x509_certificate(f.read())
        self.assertEqual(TA.uris(leaf), [aid])
        eid = self.srv.create_entry("spiffe://%s/authz/expired" % TD, aid,
                                    ["unix:uid:10"])
        end = leaf.not_valid_after.replace(
            tzinfo=datetime.timezone.utc).timestamp()
        time.sleep(max(0, end + 1.2 - time.time()))
        before = len(self.srv.output())
        self.assert_handshake_refused(self.every_call(agent, eid), before,
                                      "peer certificate: certificate has "
                                      "expired")


if __name__ == "__main__":
    unittest.main(verbosity=2)
