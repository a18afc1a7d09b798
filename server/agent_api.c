/*
 * agent_api.c: the API agents call, over TLS 1.3 on the server's port.
 *
 * AttestAgent needs no client certificate.  Every other call needs mTLS
 * with the agent's X.509-SVID, and is authorised per call as SPIRE does:
 * the node record must exist, must not be banned, and the certificate's
 * serial must be the node's current one, or its new one (which is then
 * promoted to current).  An SVID is issued only for an entry the agent
 * may serve, and everything in it comes from the entry, never from the
 * request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "agent.pb-c.h"
#include "ca.h"
#include "encode.h"
#include "entry_cache.h"
#include "jose.h"
#include "log.h"
#include "tpmv.h"
#include "par.h"
#include "pbconv.h"
#include "pkey.h"
#include "server.h"
#include "srv_metrics.h"
#include "svc.h"
#include "x509.h"
#include "xmalloc.h"

#define MAX_AUDIENCE_LEN	512
#define MAX_JWK_LEN		(8 * 1024)
#define MAX_JOIN_TOKEN_LEN	128
/* The verifier's state while a challenge waits (its AK, selectors),
 * counted against the peer's budget with the CSR kept for the answer. */
#define ATTEST_TPM_STATE	(8 * 1024)

#define SRV(call)	((struct server *)rpc_call_data(call))

static void
agent_start(struct rpc_call *call, void *arg)
{
	rpc_call_set_data(call, arg);
}

/* ---- authorisation ------------------------------------------------------ */

/*
 * The calling agent's node record, checked.  On failure the call is
 * finished and NULL returned.  *wrote (may be NULL) is set when the
 * check changed the record (a renewed SVID's first use).
 */
static struct ds_node *
authorize_node(struct rpc_call *call, int *wrote)
{
	struct server		*srv = SRV(call);
	const struct rpc_peer	*p = rpc_call_peer(call);
	struct ds_node		*node = NULL;
	char			*serial = NULL;
	int			 r;

	if (p->spiffe_id == NULL || p->cert == NULL) {
		svc_fail(call, RPC_PERMISSION_DENIED, "an agent X.509-SVID is "
		    "required (AGENT_NOT_ATTESTED)");
		return NULL;
	}
	if ((r = ds_node_get(srv->ds, p->spiffe_id, &node)) ==
	    WICK_ERR_NOT_FOUND) {
		svc_fail(call, RPC_PERMISSION_DENIED, "agent %s is not "
		    "attested (AGENT_NOT_ATTESTED)", p->spiffe_id);
		return NULL;
	} else if (r != 0) {
		svc_fail(call, rpc_status_from_err(r), "datastore: cannot read "
		    "the record of agent %s: %s", p->spiffe_id,
		    wick_strerror(r));
		return NULL;
	}
	if (ds_node_banned(node)) {
		svc_fail(call, RPC_PERMISSION_DENIED, "agent %s is banned "
		    "(AGENT_BANNED)", p->spiffe_id);
		goto fail;
	}
	if (x509_not_after(p->cert) <= server_now()) {
		svc_fail(call, RPC_PERMISSION_DENIED, "agent %s: SVID expired "
		    "(AGENT_EXPIRED)", p->spiffe_id);
		goto fail;
	}
	if ((r = ca_serial_hex(p->cert, &serial)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot read the SVID "
		    "serial: %s", wick_strerror(r));
		goto fail;
	}
	if (strcmp(serial, node->serial) == 0) {
		free(serial);
		return node;
	}
	if (*node->new_serial != '\0' && strcmp(serial, node->new_serial) ==
	    0) {
		/* First use of a renewed SVID: it becomes current. */
		if (wrote != NULL)
			*wrote = 1;
		if ((r = ds_node_set_serials(srv->ds, node->spiffe_id,
		    node->new_serial, node->new_expires_at, "", 0,
		    server_now())) != 0) {
			svc_fail(call, rpc_status_from_err(r), "datastore: "
			    "cannot promote the renewed SVID: %s",
			    wick_strerror(r));
			goto fail;
		}
		/* The record now: the new serial current, none pending. */
		free(node->serial);
		node->serial = node->new_serial;
		node->new_serial = serial;
		*serial = '\0';
		node->expires_at = node->new_expires_at;
		node->new_expires_at = 0;
		return node;
	}
	svc_fail(call, RPC_PERMISSION_DENIED, "agent %s: SVID serial %s is not "
	    "active (AGENT_NOT_ACTIVE)", p->spiffe_id, serial);
fail:
	free(serial);
	ds_node_free(node);
	return NULL;
}

static struct ds_node *
authorize(struct rpc_call *call)
{
	return authorize_node(call, NULL);
}

/*
 * The cache, up to date; a failed refresh serves what the cache has.
 * 0 when it failed.
 */
static int
refresh_cache(struct server *srv)
{
	static struct log_ratelimit	rl = LOG_RATELIMIT_DEFAULT;
	int				r;

	if ((r = entry_cache_refresh(srv->cache)) != 0) {
		log_warn_rl(&rl, "entry cache refresh failed: %s",
		    wick_strerror(r));
		return 0;
	}
	return 1;
}

/* The agent's authorized entries (sorted by ID), after a cache refresh. */
static int
authorized(struct server *srv, const struct ds_node *node,
    const struct ds_entry ***v, size_t *n)
{
	refresh_cache(srv);
	return entry_cache_authorized(srv->cache, node->spiffe_id,
	    &node->selectors, srv->server_id, v, n);
}

static const struct ds_entry *
find_entry(const struct ds_entry **v, size_t n, const char *id)
{
	size_t	lo = 0, hi = n, mid;
	int	c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(v[mid]->id, id)) == 0)
			return v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- X.509 chains ------------------------------------------------------- */

static void
chain_pb_free(ProtobufCBinaryData *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		OPENSSL_free(v[i].data);
	free(v);
}

/* DER of each certificate, as the repeated bytes of a message. */
static int
chain_to_pb(STACK_OF(X509) *chain, ProtobufCBinaryData **out, size_t *n)
{
	ProtobufCBinaryData	*v;
	size_t			 k = (size_t)sk_X509_num(chain);
	int			 i, len;

	*out = NULL;
	*n = 0;
	if ((v = calloc(k + 1, sizeof(*v))) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < sk_X509_num(chain); i++) {
		len = i2d_X509(sk_X509_value(chain, i), &v[i].data);
		if (len <= 0) {
			chain_pb_free(v, k);
			return WICK_ERR_CRYPTO;
		}
		v[i].len = (size_t)len;
	}
	*out = v;
	*n = k;
	return 0;
}

/* Sign an agent SVID for the CSR; *serial and *exp describe it. */
static int
sign_agent(struct server *srv, const char *agent_id, const uint8_t *csr,
    size_t csrlen, STACK_OF(X509) **chain, char **serial, int64_t *exp,
    const char **why)
{
	EVP_PKEY	*pub = NULL;
	int		 r;

	*chain = NULL;
	*serial = NULL;
	*why = "invalid CSR";
	if ((r = csr_parse(csr, csrlen, &pub, why)) != 0)
		return r;
	r = server_sign_x509(srv, pub, agent_id, NULL, 0, srv->cfg->agent_ttl,
	    server_now(), 1, chain);
	EVP_PKEY_free(pub);
	if (r != 0) {
		*why = "signing failed";
		return r;
	}
	if ((r = ca_serial_hex(sk_X509_value(*chain, 0), serial)) != 0) {
		*why = "cannot read the new SVID's serial";
		sk_X509_pop_free(*chain, X509_free);
		*chain = NULL;
		return r;
	}
	*exp = x509_not_after(sk_X509_value(*chain, 0));
	return 0;
}

/* ---- AttestAgent -------------------------------------------------------- */

/* ---- AttestAgent ------------------------------------------------------ */

/*
 * One AttestAgent call: the server, and for a TPM what the answer to the
 * challenge is checked against (the challenge's secret and nonce, the
 * AK, the CSR the SVID will be issued for).
 */
struct attest_call {
	struct server		*srv;
	struct tpmv_state	*tpm;
	uint8_t			*csr;
	size_t			 csrlen;
};

static void
attest_call_start(struct rpc_call *call, void *arg)
{
	struct attest_call *ac;

	if ((ac = calloc(1, sizeof(*ac))) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	ac->srv = arg;
	rpc_call_set_data(call, ac);
}

static void
attest_call_done(struct rpc_call *call, enum rpc_end why)
{
	struct attest_call *ac = rpc_call_data(call);

	if (ac == NULL)
		return;
	tpmv_state_free(ac->tpm);
	free(ac->csr);
	free(ac);
}

/*
 * A failed attestation: an audit record (complete) and its log line
 * (rate-limited per call site, as anyone can knock), then the status.
 * detail (owned, may be NULL) names what was presented: a join token by
 * its tag only (before it is spent it is live), a TPM by its EK hash.
 */
#define attest_fail(call, detail, st, ...) do {				\
	static struct log_ratelimit attest_rl_ = LOG_RATELIMIT_DEFAULT;	\
	attest_fail_rl(&attest_rl_, (call), (detail), (st), __VA_ARGS__); \
} while (0)

static void attest_fail_rl(struct log_ratelimit *, struct rpc_call *,
    json_t *, enum rpc_status, const char *, ...)
    __attribute__((format(printf, 5, 6)));

static void
attest_fail_rl(struct log_ratelimit *rl, struct rpc_call *call,
    json_t *detail, enum rpc_status st, const char *fmt, ...)
{
	struct attest_call	*ac = rpc_call_data(call);
	char			 msg[512];
	char			 addr[128];
	va_list			 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	svc_actor(call, addr, sizeof(addr));
	if (detail == NULL)
		detail = json_object();
	if (detail != NULL)
		(void)json_object_set_new(detail, "error", json_string(msg));
	srv_metrics_attest(ac->srv, json_string_value(json_object_get(detail,
	    "type")), 0);
	server_audit_rl(ac->srv, rl, "agent.attest", addr, 0, detail);
	svc_finish(call, st, "failed to attest: %s", msg);
}

static json_t *
token_detail(const char *tag)
{
	return json_pack("{s:s,s:s}", "type", "join_token",
	    "token_sha256_prefix", tag);
}

/* ["type:value", ...] for an audit record; an empty list for none. */
static json_t *
selectors_audit(const struct selector_set *sel)
{
	json_t	*a = json_array();
	char	*v;
	size_t	 i;

	for (i = 0; a != NULL && sel != NULL && i < sel->n; i++) {
		if (asprintf(&v, "%s:%s", sel->sel[i].type,
		    sel->sel[i].value) < 0)
			break;
		(void)json_array_append_new(a, json_string(v));
		free(v);
	}
	return a;
}

/*
 * The node proved what it is: sign its SVID, record it (new, or the same
 * node again: a TPM may re-attest) with its selectors, and answer the
 * result.  detail (owned) gets the audit fields of the success.
 */
static void
attest_issue(struct rpc_call *call, const char *agent, const char *type,
    const uint8_t *csr, size_t csrlen, const struct selector_set *sel,
    int reattestable, json_t *detail)
{
	Wick__Agent__AttestAgentResponse		resp =
	    WICK__AGENT__ATTEST_AGENT_RESPONSE__INIT;
	Wick__Agent__AttestAgentResponse__Result	res =
	    WICK__AGENT__ATTEST_AGENT_RESPONSE__RESULT__INIT;
	struct attest_call	*ac = rpc_call_data(call);
	struct server		*srv = ac->srv;
	struct ds_node		*node = NULL, *old = NULL;
	STACK_OF(X509)		*chain = NULL;
	struct buf		 bb;
	char			 addr[128];
	char			*serial = NULL;
	const char		*why;
	int64_t			 exp, now = server_now();
	int			 r, tx;

	buf_init(&bb, BUNDLE_MAX_DOC);
	if ((r = ds_node_get(srv->ds, agent, &old)) == 0 &&
	    ds_node_banned(old)) {
		attest_fail(call, detail, RPC_PERMISSION_DENIED, "%s",
		    "agent is banned");
		detail = NULL;
		goto out;
	} else if (r != 0 && r != WICK_ERR_NOT_FOUND) {
		attest_fail(call, detail, rpc_status_from_err(r),
		    "datastore: %s", wick_strerror(r));
		detail = NULL;
		goto out;
	}
	if ((r = sign_agent(srv, agent, csr, csrlen, &chain, &serial, &exp,
	    &why)) != 0) {
		attest_fail(call, detail, rpc_status_from_err(r), "%s: %s", why,
		    wick_strerror(r));
		detail = NULL;
		goto out;
	}
	/* The node's record and the audit record of it: both or neither. */
	tx = server_tx_begin(srv);
	if (old != NULL) {
		r = ds_node_set_serials(srv->ds, agent, serial, exp, "", 0,
		    now);
		if (r == 0 && sel != NULL)
			r = ds_node_set_selectors(srv->ds, agent, sel, now);
	} else if ((node = ds_node_new()) == NULL ||
	    (node->spiffe_id = strdup(agent)) == NULL ||
	    (node->attestation_type = strdup(type)) == NULL ||
	    (node->serial = strdup(serial)) == NULL ||
	    (node->new_serial = strdup("")) == NULL ||
	    (sel != NULL && selector_set_union(&node->selectors, sel) != 0))
		r = WICK_ERR_ALLOC;
	else {
		node->expires_at = exp;
		node->can_reattest = reattestable;
		r = ds_node_create(srv->ds, node, now);
	}
	if (r != 0) {
		server_tx_abort(srv, tx);
		attest_fail(call, detail, rpc_status_from_err(r), "cannot "
		    "record the agent: %s", wick_strerror(r));
		detail = NULL;
		goto out;
	}
	svc_actor(call, addr, sizeof(addr));
	if (detail != NULL) {
		(void)json_object_set_new(detail, "agent", json_string(agent));
		(void)json_object_set_new(detail, "serial",
		    json_string(serial));
		(void)json_object_set_new(detail, "expires_at",
		    json_integer(exp));
		(void)json_object_set_new(detail, "reattested",
		    json_boolean(old != NULL));
		/* The evidence behind the identity: what the node proved. */
		(void)json_object_set_new(detail, "selectors",
		    selectors_audit(sel));
	}
	server_audit(srv, "agent.attest", addr, 1, detail);
	detail = NULL;
	if ((r = server_tx_end(srv, tx)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot record the "
		    "agent: %s", wick_strerror(r));
		goto out;
	}
	if ((r = chain_to_pb(chain, &res.svid, &res.n_svid)) != 0 ||
	    (r = bundle_pack(srv->bundle, &bb)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot encode the "
		    "result: %s", wick_strerror(r));
		goto out;
	}
	/* Our own encoding: only memory can fail to decode it. */
	if ((res.bundle = wick__types__bundle__unpack(NULL, buf_len(&bb),
	    buf_ptr(&bb))) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for the "
		    "bundle");
		goto out;
	}
	res.reattestable = reattestable;
	resp.step_case = WICK__AGENT__ATTEST_AGENT_RESPONSE__STEP_RESULT;
	resp.result = &res;
	srv_metrics_attest(srv, type, 1);
	srv_metrics_svids(srv, TELEMETRY_SVID_AGENT, 1);
	svc_reply(call, &resp.base);
	wick__types__bundle__free_unpacked(res.bundle, NULL);
out:
	json_decref(detail);
	chain_pb_free(res.svid, res.n_svid);
	free(serial);
	sk_X509_pop_free(chain, X509_free);
	ds_node_free(node);
	ds_node_free(old);
	buf_cleanup(&bb);
}

static void
attest_join_token(struct rpc_call *call, Wick__Agent__AttestAgentRequest__Params
    *params)
{
	struct attest_call	*ac = rpc_call_data(call);
	struct server		*srv = ac->srv;
	struct ds_node		*old = NULL;
	struct spiffeid		 aid;
	EVP_PKEY		*pub = NULL;
	char			 tok[MAX_JOIN_TOKEN_LEN + 1];
	char			 agent[SPIFFEID_MAX_LEN + 1];
	char			 tag[SVC_TOKEN_TAG_LEN + 1];
	const char		*why;
	size_t			 i, len = params->data->payload.len;
	int			 r;

	if (len == 0 || len > MAX_JOIN_TOKEN_LEN) {
		attest_fail(call, NULL, RPC_INVALID_ARGUMENT, "%s",
		    "join token missing or too long");
		goto out;
	}
	memcpy(tok, params->data->payload.data, len);
	tok[len] = '\0';
	for (i = 0; i < len; i++)
		if (tok[i] == '\0' || tok[i] == '/') {
			attest_fail(call, NULL, RPC_INVALID_ARGUMENT, "%s",
			    "join token does not exist or has already been "
			    "used");
			goto out;
		}
	svc_token_tag(tok, tag);
	if (spiffeid_join_token_agent(srv->cfg->trust_domain, tok, &aid) != 0 ||
	    spiffeid_format(&aid, agent, sizeof(agent)) != 0) {
		attest_fail(call, token_detail(tag), RPC_INVALID_ARGUMENT, "%s",
		    "join token does not exist or has already been used");
		goto out;
	}
	/* Check the CSR and the ban before spending the token. */
	if ((r = csr_parse(params->csr.data, params->csr.len, &pub,
	    &why)) != 0) {
		attest_fail(call, token_detail(tag), RPC_INVALID_ARGUMENT,
		    "invalid CSR: %s", why);
		goto out;
	}
	EVP_PKEY_free(pub);
	if ((r = ds_node_get(srv->ds, agent, &old)) == 0 &&
	    ds_node_banned(old)) {
		attest_fail(call, token_detail(tag), RPC_PERMISSION_DENIED, "%s",
		    "agent is banned");
		goto out;
	} else if (r != 0 && r != WICK_ERR_NOT_FOUND) {
		/* Not knowing whether it is banned, keep the token. */
		attest_fail(call, token_detail(tag), rpc_status_from_err(r),
		    "datastore: %s", wick_strerror(r));
		goto out;
	}
	r = ds_join_token_consume(srv->ds, tok, server_now());
	if (r == WICK_ERR_NOT_FOUND) {
		attest_fail(call, token_detail(tag), RPC_INVALID_ARGUMENT, "%s",
		    "join token does not exist or has already been used");
		goto out;
	} else if (r == WICK_ERR_EXPIRED) {
		attest_fail(call, token_detail(tag), RPC_INVALID_ARGUMENT, "%s",
		    "join token expired");
		goto out;
	} else if (r != 0) {
		attest_fail(call, token_detail(tag), rpc_status_from_err(r),
		    "datastore: %s", wick_strerror(r));
		goto out;
	}
	/* From here on the token is spent: the agent ID may be named. */
	attest_issue(call, agent, "join_token", params->csr.data,
	    params->csr.len, NULL, 0, token_detail(tag));
out:
	wipe(tok, sizeof(tok));
	wipe(agent, sizeof(agent));
	ds_node_free(old);
}

/* TPM: the EK and AK come in, a credential challenge goes out. */
static void
attest_tpm_params(struct rpc_call *call,
    Wick__Agent__AttestAgentRequest__Params *params)
{
	Wick__Agent__AttestAgentResponse	 resp =
	    WICK__AGENT__ATTEST_AGENT_RESPONSE__INIT;
	struct attest_call	*ac = rpc_call_data(call);
	struct buf		 challenge;
	EVP_PKEY		*pub = NULL;
	uint8_t			*p = NULL, *spki = NULL;
	const char		*why, *what;
	char			 reason[512];
	size_t			 len;
	int			 n, r;

	buf_init(&challenge, TPMV_MAX_CHALLENGE);
	if ((r = csr_parse(params->csr.data, params->csr.len, &pub,
	    &why)) != 0) {
		attest_fail(call, json_pack("{s:s}", "type", "tpm"),
		    RPC_INVALID_ARGUMENT, "invalid CSR: %s", why);
		goto out;
	}
	if ((n = i2d_PUBKEY(pub, &spki)) <= 0) {
		attest_fail(call, json_pack("{s:s}", "type", "tpm"),
		    RPC_INTERNAL, "cannot encode the CSR key");
		goto out;
	}
	if ((r = tpmv_params(ac->srv->tpm, params->data->payload.data,
	    params->data->payload.len, spki, (size_t)n, server_now(),
	    &ac->tpm, &challenge, reason, sizeof(reason))) != 0) {
		attest_fail(call, json_pack("{s:s}", "type", "tpm"),
		    r == WICK_ERR_ALLOC ? RPC_RESOURCE_EXHAUSTED :
		    r == WICK_ERR_PERM ? RPC_PERMISSION_DENIED :
		    RPC_INVALID_ARGUMENT, "%s", reason);
		goto out;
	}
	/* What waits for the answer counts against the peer's budgets,
	 * and the answer must come in time (message_ms). */
	if (rpc_call_hold(call, params->csr.len + ATTEST_TPM_STATE,
	    &what) != 0) {
		attest_fail(call, tpmv_state_detail(ac->tpm),
		    RPC_RESOURCE_EXHAUSTED, "too many attestations waiting "
		    "for their answer (the %s budget)", what);
		goto out;
	}
	if ((ac->csr = malloc(params->csr.len + 1)) == NULL) {
		attest_fail(call, json_pack("{s:s}", "type", "tpm"),
		    RPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	memcpy(ac->csr, params->csr.data, params->csr.len);
	ac->csrlen = params->csr.len;
	resp.step_case = WICK__AGENT__ATTEST_AGENT_RESPONSE__STEP_CHALLENGE;
	resp.challenge.data = (uint8_t *)buf_ptr(&challenge);
	resp.challenge.len = buf_len(&challenge);
	len = wick__agent__attest_agent_response__get_packed_size(&resp);
	if ((p = malloc(len + 1)) == NULL) {
		attest_fail(call, json_pack("{s:s}", "type", "tpm"),
		    RPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	wick__agent__attest_agent_response__pack(&resp, p);
	if ((r = rpc_call_send_message(call, p, len)) != 0)
		svc_fail(call, RPC_INTERNAL, "cannot send the challenge: %s",
		    wick_strerror(r));
	else
		rpc_call_await_message(call);
out:
	free(p);
	OPENSSL_free(spki);
	EVP_PKEY_free(pub);
	buf_cleanup(&challenge);
}

/* TPM: the answer to the challenge; the node is attested or not. */
static void
attest_tpm_answer(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct attest_call	*ac = rpc_call_data(call);
	struct tpmv_result	 res;
	char			 agent[SPIFFEID_MAX_LEN + 1];
	char			 reason[512];
	int			 r;

	tpmv_result_init(&res);
	if ((r = tpmv_answer(ac->tpm, p, n, &res, reason,
	    sizeof(reason))) != 0) {
		attest_fail(call, tpmv_state_detail(ac->tpm),
		    r == WICK_ERR_ALLOC ? RPC_RESOURCE_EXHAUSTED :
		    RPC_PERMISSION_DENIED, "%s", reason);
		goto out;
	}
	snprintf(agent, sizeof(agent), "spiffe://%s/spire/agent/tpm/%s",
	    ac->srv->cfg->trust_domain, res.pub_hash);
	attest_issue(call, agent, "tpm", ac->csr, ac->csrlen, &res.selectors,
	    1, tpmv_state_detail(ac->tpm));
out:
	tpmv_result_cleanup(&res);
	/* One answer per challenge: the secret and nonce go now. */
	tpmv_state_free(ac->tpm);
	ac->tpm = NULL;
}

static void
m_attest(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct attest_call		*ac = rpc_call_data(call);
	Wick__Agent__AttestAgentRequest	*req;
	const char			*type;

	if (ac == NULL)
		return;		/* finished at start */
	if ((req = wick__agent__attest_agent_request__unpack(NULL, n, p)) ==
	    NULL) {
		attest_fail(call, NULL, RPC_INVALID_ARGUMENT, "%s",
		    "malformed AttestAgentRequest");
		return;
	}
	if (ac->tpm != NULL) {
		if (req->step_case !=
		    WICK__AGENT__ATTEST_AGENT_REQUEST__STEP_CHALLENGE_RESPONSE)
			attest_fail(call, tpmv_state_detail(ac->tpm),
			    RPC_INVALID_ARGUMENT, "%s", "expected the answer "
			    "to the challenge");
		else
			attest_tpm_answer(call, req->challenge_response.data,
			    req->challenge_response.len);
	} else if (req->step_case !=
	    WICK__AGENT__ATTEST_AGENT_REQUEST__STEP_PARAMS ||
	    req->params->data == NULL) {
		attest_fail(call, NULL, RPC_INVALID_ARGUMENT, "%s",
		    "the first message must carry attestation data");
	} else if (strcmp((type = req->params->data->type),
	    "join_token") == 0 && ac->srv->cfg->join_token) {
		attest_join_token(call, req->params);
	} else if (strcmp(type, "tpm") == 0 && ac->srv->tpm != NULL) {
		attest_tpm_params(call, req->params);
	} else
		attest_fail(call, NULL, RPC_INVALID_ARGUMENT,
		    "unsupported attestation type \"%.64s\"", type);
	if (req->step_case == WICK__AGENT__ATTEST_AGENT_REQUEST__STEP_PARAMS &&
	    req->params->data != NULL)
		wipe(req->params->data->payload.data,
		    req->params->data->payload.len);
	else if (req->step_case ==
	    WICK__AGENT__ATTEST_AGENT_REQUEST__STEP_CHALLENGE_RESPONSE)
		wipe(req->challenge_response.data,
		    req->challenge_response.len);
	wick__agent__attest_agent_request__free_unpacked(req, NULL);
}

/*
 * The client half-closed: a join token is answered already; a TPM that
 * did not answer its challenge is refused.
 */
static void
attest_half_close(struct rpc_call *call)
{
	struct attest_call *ac = rpc_call_data(call);

	if (ac != NULL && ac->tpm != NULL)
		attest_fail(call, tpmv_state_detail(ac->tpm),
		    RPC_INVALID_ARGUMENT, "%s", "the challenge was not "
		    "answered");
	else
		svc_fail(call, RPC_INVALID_ARGUMENT, "no attestation data");
}

/* ---- RenewAgent --------------------------------------------------------- */

static void
m_renew(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Agent__RenewAgentRequest	*req = NULL;
	Wick__Agent__RenewAgentResponse	 resp =
	    WICK__AGENT__RENEW_AGENT_RESPONSE__INIT;
	struct server			*srv = SRV(call);
	struct ds_node			*node;
	STACK_OF(X509)			*chain = NULL;
	char				*serial = NULL;
	const char			*why;
	int64_t				 exp;
	int				 r, tx;

	if ((node = authorize(call)) == NULL)
		return;
	if ((req = wick__agent__renew_agent_request__unpack(NULL, n, p)) ==
	    NULL) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "malformed "
		    "RenewAgentRequest");
		goto out;
	}
	if ((r = sign_agent(srv, node->spiffe_id, req->csr.data, req->csr.len,
	    &chain, &serial, &exp, &why)) != 0) {
		if (r == WICK_ERR_INVALID || r == WICK_ERR_LIMIT ||
		    r == WICK_ERR_SIGNATURE || r == WICK_ERR_UNSUPPORTED)
			svc_fail(call, RPC_INVALID_ARGUMENT, "invalid CSR: %s",
			    why);
		else
			svc_fail(call, rpc_status_from_err(r), "%s: %s", why,
			    wick_strerror(r));
		goto out;
	}
	tx = server_tx_begin(srv);
	if ((r = ds_node_set_serials(srv->ds, node->spiffe_id, node->serial,
	    node->expires_at, serial, exp, server_now())) != 0) {
		server_tx_abort(srv, tx);
		svc_fail(call, rpc_status_from_err(r), "datastore: %s",
		    wick_strerror(r));
		goto out;
	}
	server_audit(srv, "agent.renew", node->spiffe_id, 1, json_pack(
	    "{s:s,s:I}", "serial", serial, "expires_at", (json_int_t)exp));
	if ((r = server_tx_end(srv, tx)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "datastore: %s",
		    wick_strerror(r));
		goto out;
	}
	if ((r = chain_to_pb(chain, &resp.svid, &resp.n_svid)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot encode the "
		    "SVID: %s", wick_strerror(r));
		goto out;
	}
	srv_metrics_svids(srv, TELEMETRY_SVID_AGENT, 1);
	svc_reply(call, &resp.base);
out:
	chain_pb_free(resp.svid, resp.n_svid);
	free(serial);
	sk_X509_pop_free(chain, X509_free);
	if (req != NULL)
		wick__agent__renew_agent_request__free_unpacked(req, NULL);
	ds_node_free(node);
}

/* ---- SyncAuthorized ----------------------------------------------------- */

/* A stored bundle, decoded; WICK_ERR_NOT_FOUND when there is none. */
static int
stored_bundle(struct server *srv, const char *td_id,
    Wick__Types__Bundle **out)
{
	uint8_t	*data;
	size_t	 len;
	int	 r;

	*out = NULL;
	if ((r = ds_bundle_get(srv->ds, td_id, &data, &len)) != 0)
		return r;
	/* Written by us (checked when set): only memory can fail here. */
	*out = wick__types__bundle__unpack(NULL, len, data);
	free(data);
	return *out != NULL ? 0 : WICK_ERR_ALLOC;
}

/*
 * The agent's bundle when its sequence differs.  An agent that saw a
 * newer one through another server gets it from the datastore, not from
 * this server's older copy (which may lack a CA the other server has
 * prepared).
 */
static int
sync_bundle(struct server *srv, const struct ds_node *node,
    const Wick__Agent__SyncAuthorizedRequest *req,
    Wick__Agent__SyncAuthorizedResponse *resp, struct buf *bb)
{
	static struct log_ratelimit	rl = LOG_RATELIMIT_DEFAULT;
	int				r;

	if (req->bundle_sequence > srv->bundle->sequence &&
	    (r = server_bundle_refresh(srv, server_now())) != 0)
		log_warn_rl(&rl, "cannot refresh the bundle for %s: %s",
		    node->spiffe_id, wick_strerror(r));
	if (req->bundle_sequence == srv->bundle->sequence)
		return 0;
	if ((r = bundle_pack(srv->bundle, bb)) != 0)
		return r;
	/* Our own encoding: only memory can fail to decode it. */
	if ((resp->bundle = wick__types__bundle__unpack(NULL, buf_len(bb),
	    buf_ptr(bb))) == NULL)
		return WICK_ERR_ALLOC;
	return 0;
}

/*
 * Idle syncs on the loop.  Most syncs of a fleet find nothing changed,
 * and answering each on the state thread costs two thread hand-overs and
 * a datastore read of the node.  So every sync the state thread answers
 * publishes what it read first (struct sync_view: the revision, the
 * bundle's sequence, a generation that moves with either), and leaves on
 * the caller's connection the generation at which it found the caller's
 * node record good (rpc_call_set_conn_note(); a connection's certificate
 * never changes).  A later sync on that connection from the current
 * revision and bundle is answered "unchanged" on the loop while:
 *  - the state thread has taken no task since it read (worker_epoch()):
 *    nothing of this server wrote meanwhile; a ban or an eviction moves
 *    the epoch before its caller hears it is done;
 *  - the view is younger than SYNC_VIEW_NS: what other servers on the
 *    datastore wrote waits that long at most;
 *  - the connection's note is the view's generation: every write to a
 *    node moves the revision, so the caller's record is the one found
 *    good (a record the check itself changed drops the view);
 *  - the caller's certificate has not expired.
 * Anything else goes to the state thread, which answers as it always
 * did, and publishes again.
 */
#define SYNC_VIEW_NS	(100ULL * 1000 * 1000)
/*
 * The largest request the loop decodes: an idle sync's fields (two
 * varints of at most 10 bytes, one of 5, a bool, no page token) take
 * under 32 bytes.  Anything larger, up to the 4 MiB an agent may send, is
 * decoded on the state thread, not on the loop.
 */
#define SYNC_ON_LOOP_MAX	64

/* State thread: publish a view (or drop it, ok 0); its generation. */
static uint64_t
sync_view_publish(struct server *srv, int ok, int64_t rev, uint64_t seq,
    uint64_t read_ns)
{
	struct sync_view	*v = &srv->pub.sync;
	uint64_t		 gen;

	/* Without the state thread (tests) the loop answers nothing. */
	if (srv->worker == NULL)
		ok = 0;
	pthread_mutex_lock(&srv->pub_mu);
	if (!ok || v->gen == 0 || v->revision != rev || v->bundle_seq != seq)
		v->gen++;
	v->valid = ok;
	v->revision = rev;
	v->bundle_seq = seq;
	v->epoch = ok ? worker_epoch(srv->worker) : 0;
	v->read_ns = read_ns;
	gen = v->gen;
	pthread_mutex_unlock(&srv->pub_mu);
	return gen;
}

static void	m_sync(struct rpc_call *, const uint8_t *, size_t);

int
agent_api_on_loop(void *arg, const struct rpc_method *m,
    struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Agent__SyncAuthorizedRequest	*req;
	Wick__Agent__SyncAuthorizedResponse	 resp =
	    WICK__AGENT__SYNC_AUTHORIZED_RESPONSE__INIT;
	struct server		*srv = arg;
	const struct rpc_peer	*peer = rpc_call_peer(call);
	struct sync_view	 v;
	uint64_t		 note;
	int			 idle;

	if (m->on_message != m_sync || n > SYNC_ON_LOOP_MAX ||
	    srv->worker == NULL ||
	    (note = rpc_call_conn_note(call)) == 0 || peer->spiffe_id == NULL ||
	    peer->cert == NULL)
		return 0;
	pthread_mutex_lock(&srv->pub_mu);
	v = srv->pub.sync;
	pthread_mutex_unlock(&srv->pub_mu);
	if (!v.valid || v.gen != note || v.epoch != worker_epoch(srv->worker) ||
	    uv_hrtime() - v.read_ns >= SYNC_VIEW_NS)
		return 0;
	/* An expired SVID: authorize() says so. */
	if (ASN1_TIME_cmp_time_t(X509_get0_notAfter(peer->cert),
	    (time_t)server_now()) != 1)
		return 0;
	/* Anything but the plainest request is the state thread's. */
	if ((req = wick__agent__sync_authorized_request__unpack(NULL, n,
	    p)) == NULL)
		return 0;
	idle = req->accept_unchanged && req->since_revision > 0 &&
	    req->since_revision == v.revision && req->page_size >= 0 &&
	    *req->page_token == '\0' && req->bundle_sequence == v.bundle_seq;
	wick__agent__sync_authorized_request__free_unpacked(req, NULL);
	if (!idle)
		return 0;
	resp.unchanged = 1;
	resp.revision = v.revision;
	svc_reply(call, &resp.base);
	srv_metrics_sync_on_loop(srv);
	return 1;
}

static void
m_sync(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Agent__SyncAuthorizedRequest	*req = NULL;
	Wick__Agent__SyncAuthorizedResponse	 resp =
	    WICK__AGENT__SYNC_AUTHORIZED_RESPONSE__INIT;
	struct server		*srv = SRV(call);
	struct ds_node		*node;
	const struct ds_entry	**v = NULL;
	Wick__Types__Entry	*pbs = NULL, **pv = NULL;
	char			**ids = NULL, **fed = NULL, **nfv;
	size_t			 nv = 0, start = 0, i, lim, nfull = 0, nids = 0;
	size_t			 nfed = 0, j, k;
	struct buf		 bb;
	int64_t			 since, rev;
	uint64_t		 read_ns, gen, seq;
	int			 r, fresh, wrote = 0;

	buf_init(&bb, BUNDLE_MAX_DOC);
	/* The view first, then the node: a change to the node after this
	 * read moves the revision past the view's (agent_api_on_loop()). */
	read_ns = uv_hrtime();
	fresh = refresh_cache(srv);
	rev = entry_cache_revision(srv->cache);
	seq = srv->bundle->sequence;
	gen = sync_view_publish(srv, fresh, rev, seq, read_ns);
	if ((node = authorize_node(call, &wrote)) == NULL) {
		rpc_call_set_conn_note(call, 0);
		return;
	}
	if (wrote)
		(void)sync_view_publish(srv, 0, rev, seq, read_ns);
	else if (fresh)
		rpc_call_set_conn_note(call, gen);
	if ((req = wick__agent__sync_authorized_request__unpack(NULL, n, p)) ==
	    NULL) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "malformed "
		    "SyncAuthorizedRequest");
		goto out;
	}
	if (req->page_size < 0 || req->since_revision < 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "page_size and "
		    "since_revision must not be negative");
		goto out;
	}
	/* Nothing changed anywhere since the agent's last sync (entries,
	 * agents and bundles all move the revision): say so in O(1)
	 * instead of listing every entry again. */
	if (req->accept_unchanged && req->since_revision > 0 &&
	    *req->page_token == '\0') {
		refresh_cache(srv);
		if (req->since_revision == entry_cache_revision(srv->cache)) {
			resp.unchanged = 1;
			resp.revision = req->since_revision;
			if ((r = sync_bundle(srv, node, req, &resp,
			    &bb)) != 0) {
				svc_fail(call, rpc_status_from_err(r), "cannot "
				    "encode the bundle: %s", wick_strerror(r));
				goto out;
			}
			svc_reply(call, &resp.base);
			goto out;
		}
	}
	lim = req->page_size == 0 ? SERVER_SYNC_PAGE :
	    (size_t)req->page_size > SERVER_SYNC_PAGE_MAX ?
	    SERVER_SYNC_PAGE_MAX : (size_t)req->page_size;
	if ((r = authorized(srv, node, &v, &nv)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot compute the "
		    "authorized entries: %s", wick_strerror(r));
		goto out;
	}
	if (*req->page_token != '\0')
		while (start < nv && strcmp(v[start]->id, req->page_token) <= 0)
			start++;
	if ((pbs = calloc(lim + 1, sizeof(*pbs))) == NULL ||
	    (pv = calloc(lim + 1, sizeof(*pv))) == NULL ||
	    (ids = calloc(lim + 1, sizeof(*ids))) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for a "
		    "page of %zu entries", lim);
		goto out;
	}
	/* An agent ahead of the datastore (restored from a backup since)
	 * gets every entry in full. */
	since = req->since_revision > entry_cache_revision(srv->cache) ? 0 :
	    req->since_revision;
	for (i = start; i < nv && i - start < lim; i++) {
		if (since == 0 || v[i]->change_rev > since) {
			if ((r = pb_from_entry(v[i], &pbs[nfull])) != 0) {
				svc_fail(call, rpc_status_from_err(r), "cannot "
				    "encode entry %s: %s", v[i]->id,
				    wick_strerror(r));
				goto out;
			}
			pv[nfull] = &pbs[nfull];
			nfull++;
		} else
			ids[nids++] = v[i]->id;
	}
	resp.entries = pv;
	resp.n_entries = nfull;
	resp.unchanged_ids = ids;
	resp.n_unchanged_ids = nids;
	resp.revision = entry_cache_revision(srv->cache);
	resp.next_page_token = i < nv ? v[i - 1]->id : "";
	if ((r = sync_bundle(srv, node, req, &resp, &bb)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot encode the "
		    "bundle: %s", wick_strerror(r));
		goto out;
	}
	if (*req->page_token == '\0') {
		/* Federated bundles the entries need, each once. */
		for (i = 0; i < nv; i++)
			for (j = 0; j < v[i]->nfederates_with; j++) {
				for (k = 0; k < nfed; k++)
					if (strcmp(fed[k],
					    v[i]->federates_with[j]) == 0)
						break;
				if (k < nfed)
					continue;
				if ((nfv = reallocarray(fed, nfed + 1,
				    sizeof(*fed))) == NULL) {
					svc_fail(call, RPC_RESOURCE_EXHAUSTED,
					    "out of memory");
					goto out;
				}
				fed = nfv;
				fed[nfed++] = v[i]->federates_with[j];
			}
		if ((resp.federated_bundles = calloc(nfed + 1,
		    sizeof(*resp.federated_bundles))) == NULL) {
			svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
			goto out;
		}
		/* One deleted meanwhile is left out, as before. */
		for (k = 0; k < nfed; k++) {
			r = stored_bundle(srv, fed[k],
			    &resp.federated_bundles[resp.n_federated_bundles]);
			if (r == 0)
				resp.n_federated_bundles++;
			else if (r != WICK_ERR_NOT_FOUND) {
				svc_fail(call, rpc_status_from_err(r), "cannot "
				    "read the bundle of %s: %s", fed[k],
				    wick_strerror(r));
				goto out;
			}
		}
	}
	svc_reply(call, &resp.base);
out:
	/* A bundle taken from the datastore for this agent is news the view
	 * published above lacks. */
	if (srv->bundle->sequence != seq)
		(void)sync_view_publish(srv, 0, rev, srv->bundle->sequence,
		    read_ns);
	for (i = 0; i < nfull; i++)
		pb_entry_clear(&pbs[i]);
	for (i = 0; i < resp.n_federated_bundles; i++)
		wick__types__bundle__free_unpacked(resp.federated_bundles[i],
		    NULL);
	free(resp.federated_bundles);
	if (resp.bundle != NULL)
		wick__types__bundle__free_unpacked(resp.bundle, NULL);
	free(fed);
	free(pbs);
	free(pv);
	free(ids);
	free(v);
	buf_cleanup(&bb);
	if (req != NULL)
		wick__agent__sync_authorized_request__free_unpacked(req, NULL);
	ds_node_free(node);
}

/* ---- BatchNewX509SVID --------------------------------------------------- */

/* One CSR of a batch: what the signing threads read and write. */
struct x509_item {
	const struct ds_entry	 *e;		/* NULL: not authorized */
	const ProtobufCBinaryData *csr;
	int			  r;
	int			  stage;	/* failed: 1 CSR, 2 sign, 3 encode */
	const char		 *why;		/* static, for stage 1 */
	ProtobufCBinaryData	 *svid;
	size_t			  n_svid;
	char			 *serial;
	int64_t			  expires;
};

struct x509_batch {
	struct server		*srv;
	struct x509_item	*it;
	int64_t			 now;
	/* The CA chain above the leaves, encoded once for the batch (the
	 * state thread runs it: the CA does not change meanwhile). */
	ProtobufCBinaryData	*tail;
	size_t			 ntail;
	/* The active CA's signer (NULL: not an EC key), and the serials'
	 * random bytes, one draw for the batch. */
	const struct ca_svid_signer *signer;
	uint8_t			(*rnd)[CA_SERIAL_RAND];
};

/*
 * An EC key's SVID written as DER (ca_svid_signer_der()), and its chain
 * as the message's repeated bytes: no X509 object is made for it.
 * WICK_ERR_UNSUPPORTED: the CA's key is not EC, or the request's point is
 * compressed; server_sign_x509() then.
 */
static int
x509_sign_der(struct x509_batch *b, size_t i, const uint8_t *spki,
    size_t spkilen)
{
	struct x509_item		*it = &b->it[i];
	struct ca_svid_params		 p;
	ProtobufCBinaryData		*v;
	char				 serial[CA_SERIAL_HEX];
	size_t				 k = 1 + b->ntail;
	int				 r;

	if (b->signer == NULL)
		return WICK_ERR_UNSUPPORTED;
	memset(&p, 0, sizeof(p));
	p.spiffe_id = it->e->spiffe_id;
	p.dns_names = (const char *const *)it->e->dns_names;
	p.ndns_names = it->e->ndns_names;
	p.now = b->now;
	p.ttl = it->e->x509_svid_ttl > 0 ? it->e->x509_svid_ttl :
	    b->srv->cfg->x509_svid_ttl;
	p.encode_only = 1;
	if ((v = calloc(k + 1, sizeof(*v))) == NULL)
		return WICK_ERR_ALLOC;
	if ((r = ca_svid_signer_der(b->signer, spki, spkilen, &p, b->rnd[i],
	    &v[0].data, &v[0].len, serial, &it->expires)) != 0) {
		free(v);
		return r;
	}
	for (i = 1; i < k; i++) {
		if ((v[i].data = OPENSSL_memdup(b->tail[i - 1].data,
		    b->tail[i - 1].len)) == NULL) {
			chain_pb_free(v, k);
			return WICK_ERR_ALLOC;
		}
		v[i].len = b->tail[i - 1].len;
	}
	if ((it->serial = strdup(serial)) == NULL) {
		chain_pb_free(v, k);
		return WICK_ERR_ALLOC;
	}
	it->svid = v;
	it->n_svid = k;
	return 0;
}

/*
 * Parse, sign and encode one CSR (par_run(): the signing threads and the
 * state thread at once).  Reads the entry cache's entries and the active
 * CA, which nothing changes while the batch runs; writes only its item
 * and its slot's verifier.
 */
static void
x509_sign_one(void *arg, size_t i, int slot)
{
	struct x509_batch	*b = arg;
	struct x509_item	*it = &b->it[i];
	struct csr_verifier	**ver = &b->srv->csr_ver[slot];
	STACK_OF(X509)		*chain = NULL;
	EVP_PKEY		*pub;
	const uint8_t		*spki;
	size_t			 spkilen;

	if (it->e == NULL)
		return;
	/* Without memory for a verifier, each CSR is read on its own. */
	if (*ver == NULL && csr_verifier_new(ver) != 0)
		*ver = NULL;
	if (*ver != NULL)
		it->r = csr_check(*ver, it->csr->data, it->csr->len, &pub,
		    &spki, &spkilen, &it->why);
	else
		it->r = csr_parse_spki(it->csr->data, it->csr->len, &pub,
		    &spki, &spkilen, &it->why);
	if (it->r != 0) {
		it->stage = 1;
		return;
	}
	if (spki != NULL && (it->r = x509_sign_der(b, i, spki, spkilen)) !=
	    WICK_ERR_UNSUPPORTED) {
		EVP_PKEY_free(pub);
		if (it->r != 0)
			it->stage = 2;
		return;
	}
	/* The verifier keeps the key it checked: one of the request's own. */
	if (pub == NULL && (it->r = pkey_from_public_der(spki, spkilen,
	    &pub)) != 0) {
		it->stage = 2;
		return;
	}
	it->r = server_sign_x509(b->srv, pub, it->e->spiffe_id,
	    (const char *const *)it->e->dns_names, it->e->ndns_names,
	    it->e->x509_svid_ttl, b->now, 1, &chain);
	EVP_PKEY_free(pub);
	if (it->r != 0) {
		it->stage = 2;
		return;
	}
	if ((it->r = chain_to_pb(chain, &it->svid, &it->n_svid)) != 0 ||
	    (it->r = ca_serial_hex(sk_X509_value(chain, 0),
	    &it->serial)) != 0) {
		it->stage = 3;
		chain_pb_free(it->svid, it->n_svid);
		it->svid = NULL;
		it->n_svid = 0;
	} else
		it->expires = x509_not_after(sk_X509_value(chain, 0));
	sk_X509_pop_free(chain, X509_free);
}

/*
 * The CSRs are signed by the state thread and the signing threads
 * together (par.h); the results, log lines and audit record are then
 * put together here, in order.
 */
static void
m_batch_x509(struct rpc_call *call, const uint8_t *p, size_t n)
{
	static struct log_ratelimit	 csr_rl = LOG_RATELIMIT_DEFAULT;
	static struct log_ratelimit	 sign_rl = LOG_RATELIMIT_DEFAULT;
	Wick__Agent__BatchNewX509SVIDRequest	*req = NULL;
	Wick__Agent__BatchNewX509SVIDResponse	 resp =
	    WICK__AGENT__BATCH_NEW_X509_SVIDRESPONSE__INIT;
	struct server		*srv = SRV(call);
	struct ds_node		*node;
	const struct ds_entry	**v = NULL, *e;
	Wick__Agent__X509SVIDResult *res = NULL, **rv = NULL;
	Wick__Types__Status	*st = NULL;
	struct x509_item	*it = NULL;
	struct x509_batch	 b;
	STACK_OF(X509)		*tail;
	char			**msgs = NULL;
	json_t			*issued = NULL, *item;
	size_t			 nv = 0, i;
	int			 r;

	memset(&b, 0, sizeof(b));
	if ((node = authorize(call)) == NULL)
		return;
	if ((req = wick__agent__batch_new_x509_svidrequest__unpack(NULL, n,
	    p)) == NULL) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "malformed "
		    "BatchNewX509SVIDRequest");
		goto out;
	}
	if (req->n_params > SERVER_MAX_CSRS) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "batch of %zu CSRs exceeds "
		    "the limit of %d", req->n_params, SERVER_MAX_CSRS);
		goto out;
	}
	if ((r = authorized(srv, node, &v, &nv)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot compute the "
		    "authorized entries: %s", wick_strerror(r));
		goto out;
	}
	if ((res = calloc(req->n_params + 1, sizeof(*res))) == NULL ||
	    (rv = calloc(req->n_params + 1, sizeof(*rv))) == NULL ||
	    (st = calloc(req->n_params + 1, sizeof(*st))) == NULL ||
	    (msgs = calloc(req->n_params + 1, sizeof(*msgs))) == NULL ||
	    (it = calloc(req->n_params + 1, sizeof(*it))) == NULL ||
	    (issued = json_array()) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for a "
		    "batch of %zu CSRs", req->n_params);
		goto out;
	}
	for (i = 0; i < req->n_params; i++) {
		it[i].e = find_entry(v, nv, req->params[i]->entry_id);
		it[i].csr = &req->params[i]->csr;
	}
	b.srv = srv;
	b.it = it;
	b.now = server_now();
	if ((tail = ca_manager_svid_chain(srv->cam)) != NULL &&
	    chain_to_pb(tail, &b.tail, &b.ntail) != 0) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for a "
		    "batch of %zu CSRs", req->n_params);
		goto out;
	}
	if ((b.rnd = calloc(req->n_params + 1, sizeof(*b.rnd))) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for a "
		    "batch of %zu CSRs", req->n_params);
		goto out;
	}
	if (req->n_params > 0 && RAND_bytes((uint8_t *)b.rnd,
	    (int)(req->n_params * sizeof(*b.rnd))) != 1) {
		svc_fail(call, RPC_INTERNAL, "no randomness for serial "
		    "numbers");
		goto out;
	}
	/* Without a signer (a CA key not EC, or no memory), each SVID takes
	 * server_sign_x509(), which says why it cannot sign, if it cannot. */
	b.signer = ca_manager_svid_signer(srv->cam);
	par_run(srv->par, req->n_params, x509_sign_one, &b);
	for (i = 0; i < req->n_params; i++) {
		wick__agent__x509_svidresult__init(&res[i]);
		wick__types__status__init(&st[i]);
		rv[i] = &res[i];
		res[i].status = &st[i];
		res[i].entry_id = req->params[i]->entry_id;
		st[i].message = "";
		if ((e = it[i].e) == NULL) {
			st[i].code = RPC_NOT_FOUND;
			st[i].message = "entry not found or not authorized for "
			    "this agent";
			continue;
		}
		if (it[i].stage == 1) {
			svc_log_rl(&csr_rl, LOG_LEVEL_WARN, call, "invalid CSR "
			    "for entry %s: %s", e->id, it[i].why);
			st[i].code = RPC_INVALID_ARGUMENT;
			st[i].message = "invalid CSR";
			if (asprintf(&msgs[i], "invalid CSR: %s",
			    it[i].why) >= 0)
				st[i].message = msgs[i];
			else
				msgs[i] = NULL;
			continue;
		}
		if (it[i].stage == 2) {
			svc_log_rl(&sign_rl, LOG_LEVEL_ERROR, call, "cannot "
			    "sign an X.509-SVID for entry %s: %s", e->id,
			    wick_strerror(it[i].r));
			st[i].code = rpc_status_from_err(it[i].r);
			st[i].message = "signing failed";
			continue;
		}
		r = it[i].r;
		item = NULL;
		if (r == 0 && ((item = json_pack("{s:s,s:s,s:s,s:I}", "serial",
		    it[i].serial, "entry_id", e->id, "spiffe_id",
		    e->spiffe_id, "expires_at", (json_int_t)it[i].expires)) ==
		    NULL || json_array_append_new(issued, item) != 0))
			r = WICK_ERR_ALLOC;
		if (r != 0) {
			/* Never an SVID that the audit record would miss. */
			svc_log_rl(&sign_rl, LOG_LEVEL_ERROR, call, "cannot "
			    "encode the X.509-SVID for entry %s: %s", e->id,
			    wick_strerror(r));
			st[i].code = rpc_status_from_err(r);
			st[i].message = "cannot encode the SVID";
			continue;
		}
		/* The result owns the chain now. */
		res[i].svid = it[i].svid;
		res[i].n_svid = it[i].n_svid;
		res[i].expires_at = it[i].expires;
		it[i].svid = NULL;
		it[i].n_svid = 0;
	}
	resp.results = rv;
	resp.n_results = req->n_params;
	srv_metrics_svids(srv, TELEMETRY_SVID_X509,
	    json_array_size(issued));
	if (json_array_size(issued) > 0)
		server_audit(srv, "svid.x509", node->spiffe_id, 1,
		    json_pack("{s:O}", "issued", issued));
	svc_reply(call, &resp.base);
out:
	chain_pb_free(b.tail, b.ntail);
	free(b.rnd);
	json_decref(issued);
	for (i = 0; it != NULL && i < req->n_params; i++) {
		chain_pb_free(it[i].svid, it[i].n_svid);
		free(it[i].serial);
	}
	for (i = 0; res != NULL && i < req->n_params; i++)
		chain_pb_free(res[i].svid, res[i].n_svid);
	for (i = 0; msgs != NULL && i < req->n_params; i++)
		free(msgs[i]);
	free(it);
	free(res);
	free(rv);
	free(st);
	free(msgs);
	free(v);
	if (req != NULL)
		wick__agent__batch_new_x509_svidrequest__free_unpacked(req,
		    NULL);
	ds_node_free(node);
}

/* ---- JWT and WIT -------------------------------------------------------- */

/* The entry an agent asks a token for, or NULL with the call finished. */
static const struct ds_entry *
token_entry(struct rpc_call *call, struct ds_node *node, const char *id,
    const struct ds_entry ***v, size_t *nv)
{
	const struct ds_entry	*e;
	int			 r;

	if ((r = authorized(SRV(call), node, v, nv)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot compute the "
		    "authorized entries: %s", wick_strerror(r));
		return NULL;
	}
	if ((e = find_entry(*v, *nv, id)) == NULL)
		svc_fail(call, RPC_NOT_FOUND, "entry \"%.200s\" not found or not "
		    "authorized for this agent", id);
	return e;
}

/* Sign claims with the active key of kind; exp capped at the key's life. */
static int
sign_token(struct server *srv, enum ca_kind kind, const char *typ,
    json_t *claims, int64_t ttl, int64_t now, char **token, int64_t *exp)
{
	const struct ca_authority *a = ca_manager_active(srv->cam, kind);

	if (a == NULL || a->jkey == NULL)
		return WICK_ERR_UNAVAILABLE;
	*exp = now + ttl;
	if (*exp > a->not_after)
		*exp = a->not_after;
	if (json_object_set_new(claims, "exp", json_integer(*exp)) != 0 ||
	    json_object_set_new(claims, "iat", json_integer(now)) != 0)
		return WICK_ERR_ALLOC;
	return jose_sign(a->jkey, typ, claims, token);
}

static void
m_new_jwt(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Agent__NewJWTSVIDRequest	*req = NULL;
	Wick__Agent__NewJWTSVIDResponse	 resp =
	    WICK__AGENT__NEW_JWTSVIDRESPONSE__INIT;
	struct server		*srv = SRV(call);
	struct ds_node		*node;
	const struct ds_entry	**v = NULL, *e;
	json_t			*claims = NULL, *aud;
	char			*token = NULL;
	int64_t			 exp, now = server_now();
	size_t			 nv, i;
	int			 r;

	if ((node = authorize(call)) == NULL)
		return;
	if ((req = wick__agent__new_jwtsvidrequest__unpack(NULL, n, p)) ==
	    NULL) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "malformed "
		    "NewJWTSVIDRequest");
		goto out;
	}
	if ((aud = json_array()) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (i = 0; i < req->n_audience; i++)
		/* SPIRE drops empty ones. */
		if (*req->audience[i] != '\0' &&
		    json_array_append_new(aud, json_string(
		    req->audience[i])) != 0) {
			json_decref(aud);
			svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
			goto out;
		}
	if (json_array_size(aud) == 0 || req->n_audience >
	    SERVER_MAX_AUDIENCES) {
		json_decref(aud);
		svc_fail(call, RPC_INVALID_ARGUMENT, "between 1 and %d "
		    "audiences are required", SERVER_MAX_AUDIENCES);
		goto out;
	}
	for (i = 0; i < req->n_audience; i++)
		if (strlen(req->audience[i]) > MAX_AUDIENCE_LEN) {
			json_decref(aud);
			svc_fail(call, RPC_INVALID_ARGUMENT, "audience longer "
			    "than %d bytes", MAX_AUDIENCE_LEN);
			goto out;
		}
	if ((e = token_entry(call, node, req->entry_id, &v, &nv)) == NULL) {
		json_decref(aud);
		goto out;
	}
	/* json_pack takes aud, even when it fails. */
	if ((claims = json_pack("{s:s,s:o}", "sub", e->spiffe_id, "aud",
	    aud)) == NULL || (*srv->cfg->jwt_issuer != '\0' &&
	    json_object_set_new(claims, "iss", json_string(
	    srv->cfg->jwt_issuer)) != 0)) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for the "
		    "claims");
		goto out;
	}
	if ((r = sign_token(srv, CA_KIND_JWT, "JWT", claims, e->jwt_svid_ttl >
	    0 ? e->jwt_svid_ttl : srv->cfg->jwt_svid_ttl, now, &token,
	    &exp)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot sign the "
		    "JWT-SVID: %s", wick_strerror(r));
		goto out;
	}
	srv_metrics_svids(srv, TELEMETRY_SVID_JWT, 1);
	server_audit_later(srv, "svid.jwt", node->spiffe_id, 1, json_pack(
	    "{s:s,s:s,s:O,s:I}", "spiffe_id", e->spiffe_id, "entry_id", e->id,
	    "aud",
	    json_object_get(claims, "aud"), "expires_at", (json_int_t)exp));
	resp.token = token;
	resp.expires_at = exp;
	svc_reply(call, &resp.base);
out:
	if (token != NULL)
		freezero(token, strlen(token));	/* a bearer token */
	json_decref(claims);
	free(v);
	if (req != NULL)
		wick__agent__new_jwtsvidrequest__free_unpacked(req, NULL);
	ds_node_free(node);
}

/* The algorithms a workload key may name, by key type. */
static int
alg_fits(EVP_PKEY *pk, const char *alg)
{
	static const char *const rsa[] = { "RS256", "RS384", "RS512", "PS256",
	    "PS384", "PS512", NULL };
	size_t i;

	if (EVP_PKEY_is_a(pk, "EC"))
		return (EVP_PKEY_get_bits(pk) == 256 &&
		    strcmp(alg, "ES256") == 0) || (EVP_PKEY_get_bits(pk) ==
		    384 && strcmp(alg, "ES384") == 0);
	for (i = 0; rsa[i] != NULL; i++)
		if (strcmp(alg, rsa[i]) == 0)
			return 1;
	return 0;
}

/* The cnf.jwk of a WIT: the workload's public JWK reduced to its public
 * members and alg.  WICK_ERR_INVALID with *why on a bad key. */
static int
wit_cnf_jwk(const char *text, json_t **out, const char **why)
{
	static const char *const keep[] = { "kty", "crv", "x", "y", "n", "e",
	    "alg", NULL };
	json_error_t	 jerr;
	json_t		*in, *o = NULL;
	EVP_PKEY	*pk = NULL;
	const char	*alg;
	size_t		 i;
	int		 r = WICK_ERR_INVALID;

	*out = NULL;
	*why = "public_jwk is longer than 8 KiB";
	if (strlen(text) > MAX_JWK_LEN)
		return r;
	*why = "public_jwk is not a JSON object";
	if ((in = json_loads(text, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
	    !json_is_object(in))
		goto out;
	if (jose_jwk_public_pkey(in, &pk, why) != 0)
		goto out;
	alg = json_string_value(json_object_get(in, "alg"));
	*why = "public_jwk needs an \"alg\" that fits the key (ES256, ES384, "
	    "RS256..PS512)";
	if (alg == NULL || !alg_fits(pk, alg))
		goto out;
	*why = "out of memory";
	r = WICK_ERR_ALLOC;
	if ((o = json_object()) == NULL)
		goto out;
	for (i = 0; keep[i] != NULL; i++)
		if (json_object_get(in, keep[i]) != NULL &&
		    json_object_set(o, keep[i], json_object_get(in,
		    keep[i])) != 0)
			goto out;
	*out = o;
	o = NULL;
	*why = NULL;
	r = 0;
out:
	json_decref(o);
	EVP_PKEY_free(pk);
	json_decref(in);
	return r;
}

static void
m_new_wit(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Agent__NewWITSVIDRequest	*req = NULL;
	Wick__Agent__NewWITSVIDResponse	 resp =
	    WICK__AGENT__NEW_WITSVIDRESPONSE__INIT;
	struct server		*srv = SRV(call);
	struct ds_node		*node;
	const struct ds_entry	**v = NULL, *e;
	json_t			*claims = NULL, *jwk;
	const char		*why;
	char			*token = NULL, jti[33];
	uint8_t			 rnd[16];
	int64_t			 exp, now = server_now();
	size_t			 nv;
	int			 r;

	if ((node = authorize(call)) == NULL)
		return;
	if ((req = wick__agent__new_witsvidrequest__unpack(NULL, n, p)) ==
	    NULL) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "malformed "
		    "NewWITSVIDRequest");
		goto out;
	}
	if ((r = wit_cnf_jwk(req->public_jwk, &jwk, &why)) != 0) {
		if (r == WICK_ERR_INVALID)
			svc_fail(call, RPC_INVALID_ARGUMENT, "invalid "
			    "public_jwk: %s", why);
		else
			svc_fail(call, rpc_status_from_err(r), "cannot read "
			    "public_jwk: %s", wick_strerror(r));
		goto out;
	}
	if ((e = token_entry(call, node, req->entry_id, &v, &nv)) == NULL) {
		json_decref(jwk);
		goto out;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		json_decref(jwk);
		svc_fail(call, RPC_INTERNAL, "no randomness for a jti");
		goto out;
	}
	hex_encode(rnd, sizeof(rnd), jti);
	/* json_pack takes jwk, even when it fails. */
	if ((claims = json_pack("{s:s,s:{s:o},s:s}", "sub", e->spiffe_id,
	    "cnf", "jwk", jwk, "jti", jti)) == NULL ||
	    (*srv->cfg->wit_issuer != '\0' && json_object_set_new(claims,
	    "iss", json_string(srv->cfg->wit_issuer)) != 0)) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for the "
		    "claims");
		goto out;
	}
	if ((r = sign_token(srv, CA_KIND_WIT, "wit+jwt", claims,
	    srv->cfg->wit_svid_ttl, now, &token, &exp)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot sign the "
		    "WIT-SVID: %s", wick_strerror(r));
		goto out;
	}
	srv_metrics_svids(srv, TELEMETRY_SVID_WIT, 1);
	server_audit_later(srv, "svid.wit", node->spiffe_id, 1, json_pack(
	    "{s:s,s:s,s:s,s:I}", "spiffe_id", e->spiffe_id, "entry_id", e->id,
	    "jti", jti,
	    "expires_at", (json_int_t)exp));
	resp.token = token;
	resp.expires_at = exp;
	svc_reply(call, &resp.base);
out:
	if (token != NULL)
		freezero(token, strlen(token));	/* a bearer token */
	json_decref(claims);
	free(v);
	if (req != NULL)
		wick__agent__new_witsvidrequest__free_unpacked(req, NULL);
	ds_node_free(node);
}

/* Every handler step runs on the state thread (worker.h,
 * server_offload()), but for the idle syncs agent_api_on_loop() answers. */
static struct rpc_method agent_methods[] = {
	{ "/wick.agent.Node/AttestAgent", RPC_KIND_BIDI, attest_call_start,
	    m_attest, attest_half_close, NULL, attest_call_done, NULL, 1 },
	{ "/wick.agent.Node/RenewAgent", RPC_KIND_UNARY, agent_start, m_renew,
	    NULL, NULL, NULL, NULL, 0 },
	{ "/wick.agent.Node/SyncAuthorized", RPC_KIND_UNARY, agent_start,
	    m_sync, NULL, NULL, NULL, NULL, 0 },
	{ "/wick.agent.Node/BatchNewX509SVID", RPC_KIND_UNARY, agent_start,
	    m_batch_x509, NULL, NULL, NULL, NULL, 0 },
	{ "/wick.agent.Node/NewJWTSVID", RPC_KIND_UNARY, agent_start,
	    m_new_jwt, NULL, NULL, NULL, NULL, 0 },
	{ "/wick.agent.Node/NewWITSVID", RPC_KIND_UNARY, agent_start,
	    m_new_wit, NULL, NULL, NULL, NULL, 0 },
};

int
agent_api_methods(struct server *srv, const struct rpc_method **m, size_t *n)
{
	size_t i;

	for (i = 0; i < sizeof(agent_methods) / sizeof(agent_methods[0]); i++)
		agent_methods[i].arg = srv;
	*m = agent_methods;
	*n = i;
	return 0;
}
