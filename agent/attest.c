/*
 * attest.c: node attestation, in the AttestAgent stream.
 *
 * join_token: one message (the token and a CSR), one result.
 * tpm: the agent sends its EK (certificate and public area) and a fresh
 * AK, the server answers with a credential-activation challenge, a nonce
 * and the PCRs to quote, the agent answers with the secret the TPM
 * recovered and a quote over SHA-256(nonce || its CSR key), and the server
 * ends with the result.  TPM commands take tens to hundreds of
 * milliseconds on real chips: they run on the thread pool, one step at a
 * time, and the loop only sends and receives.
 *
 * One attestation runs at a time; its state lives from attest_start()
 * until the call has ended and no TPM work is pending.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "agent.h"
#include "agent_metrics.h"
#include "agent.pb-c.h"
#include "log.h"
#include "na_tpm.h"
#include "pcrsel.h"
#include "pkey.h"
#include "tpm.pb-c.h"
#include "x509.h"
#include "xmalloc.h"

#define ATTEST_TIMEOUT_MS	(60 * 1000)	/* the whole exchange */
#define ATTEST_MAX_MESSAGE	(64 * 1024)
#define ATTEST_TPM_MS		(60 * 1000)	/* one step of TPM work */

enum attest_step {
	ST_IDENTITY = 0,	/* TPM: EK and AK being read and made */
	ST_CHALLENGE,		/* waiting for the server */
	ST_ANSWER,		/* TPM: activating, quoting */
	ST_RESULT,		/* waiting for the server */
	ST_DONE,
};

struct attest {
	struct agent		*a;
	const char		*type;		/* "join_token", "tpm" */
	enum attest_step	 step;
	EVP_PKEY		*key;		/* the agent SVID's key */
	struct buf		 csr;
	struct buf		 spki;		/* DER SubjectPublicKeyInfo */
	struct rpc_ccall	*call;		/* NULL once it ended */
	int			 failed;
	int			 depth;		/* our callbacks on the stack */
	/* TPM */
	uv_work_t		 work;
	int			 working;	/* work queued, not done */
	uv_timer_t		*watchdog;	/* while working */
	struct na_tpm		*tpm;
	int			 r;
	char			 why[256];
	struct buf		 ek_cert, ek_pub, ak_pub;
	Wick__Tpm__TpmChallenge	*challenge;
	struct na_tpm_answer	 answer;
};

static void	attest_free(struct attest *);

/* ---- the end -------------------------------------------------------- */

/*
 * Every entry from libuv or the gRPC client brackets its work with
 * enter/leave; the state goes once nothing refers to it any more (no
 * call, no queued TPM work, no callback of ours below on the stack:
 * cancelling a call runs its on_status at once).
 */
static void
enter(struct attest *at)
{
	at->depth++;
}

static void
leave(struct attest *at)
{
	if (--at->depth == 0 && at->call == NULL && !at->working)
		attest_free(at);
}

static void
attest_fail(struct attest *at, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
attest_fail(struct attest *at, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	if (at->failed || at->step == ST_DONE)
		return;
	at->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("node attestation (%s) failed: %s", at->type, msg);
	agent_metrics_attest(at->a, at->type, 0);
	if (at->call != NULL)
		rpc_ccall_cancel(at->call);	/* on_status: call = NULL */
	agent_stop(at->a, 1);
}

static void
attest_result(struct attest *at,
    const Wick__Agent__AttestAgentResponse__Result *res)
{
	STACK_OF(X509)	*chain;

	if (agent_chain_from_pb(res->svid, res->n_svid, &chain) != 0) {
		attest_fail(at, "malformed answer from the server");
		return;
	}
	at->step = ST_DONE;
	agent_attested(at->a, chain, at->key, res->bundle, res->reattestable);
	at->key = NULL;
}

/* ---- the stream ------------------------------------------------------ */

static int
send_req(struct attest *at, const Wick__Agent__AttestAgentRequest *req,
    int last)
{
	size_t	 len = wick__agent__attest_agent_request__get_packed_size(req);
	uint8_t	*p;
	int	 r;

	if ((p = malloc(len + 1)) == NULL)
		return WICK_ERR_ALLOC;
	wick__agent__attest_agent_request__pack(req, p);
	r = rpc_ccall_send(at->call, p, len);
	freezero(p, len + 1);	/* may hold the join token */
	if (r == 0 && last)
		r = rpc_ccall_half_close(at->call);
	return r;
}

static int
send_params(struct attest *at, const uint8_t *payload, size_t len)
{
	Wick__Agent__AttestAgentRequest		 req =
	    WICK__AGENT__ATTEST_AGENT_REQUEST__INIT;
	Wick__Agent__AttestAgentRequest__Params	 params =
	    WICK__AGENT__ATTEST_AGENT_REQUEST__PARAMS__INIT;
	Wick__Agent__AttestationData		 data =
	    WICK__AGENT__ATTESTATION_DATA__INIT;

	data.type = (char *)at->type;
	data.payload.data = (uint8_t *)payload;
	data.payload.len = len;
	params.data = &data;
	params.csr.data = (uint8_t *)buf_ptr(&at->csr);
	params.csr.len = buf_len(&at->csr);
	req.step_case = WICK__AGENT__ATTEST_AGENT_REQUEST__STEP_PARAMS;
	req.params = &params;
	/* A join token gets its answer at once; a TPM a challenge first. */
	return send_req(at, &req, strcmp(at->type, "join_token") == 0);
}

static void	tpm_challenge(struct attest *, const uint8_t *, size_t);

static void
on_message(struct rpc_ccall *call, const uint8_t *p, size_t n, void *arg)
{
	struct attest				*at = arg;
	Wick__Agent__AttestAgentResponse	*resp;

	enter(at);
	if ((resp = wick__agent__attest_agent_response__unpack(NULL, n,
	    p)) == NULL) {
		attest_fail(at, "malformed answer from the server");
		leave(at);
		return;
	}
	if (resp->step_case == WICK__AGENT__ATTEST_AGENT_RESPONSE__STEP_RESULT &&
	    (at->step == ST_RESULT || (strcmp(at->type, "join_token") == 0 &&
	    at->step == ST_CHALLENGE)))
		attest_result(at, resp->result);
	else if (resp->step_case ==
	    WICK__AGENT__ATTEST_AGENT_RESPONSE__STEP_CHALLENGE &&
	    at->step == ST_CHALLENGE && strcmp(at->type, "tpm") == 0)
		tpm_challenge(at, resp->challenge.data, resp->challenge.len);
	else
		attest_fail(at, "the server answered out of turn");
	wick__agent__attest_agent_response__free_unpacked(resp, NULL);
	leave(at);
}

static void
restart_free_cb(uv_handle_t *h)
{
	free(h);
}

static void
restart_cb(uv_timer_t *t)
{
	struct agent *a = t->data;

	uv_close((uv_handle_t *)t, restart_free_cb);
	if (!a->stopping && attest_start(a) != 0)
		agent_stop(a, 1);
}

/*
 * The connection never got through (the server saw nothing): attest
 * again through the next of the server's addresses, from the loop.
 */
static int
attest_elsewhere(struct attest *at, int status)
{
	uv_timer_t *t;

	if (status != RPC_UNAVAILABLE || at->step != ST_CHALLENGE ||
	    at->failed || !nodeclient_unreached(at->a->nc))
		return 0;
	at->failed = 1;
	at->a->attesting = 0;
	t = xcalloc(1, sizeof(*t));
	uv_timer_init(at->a->loop, t);
	t->data = at->a;
	uv_timer_start(t, restart_cb, 0, 0);
	return 1;
}

static void
on_status(struct rpc_ccall *call, int status, const char *msg, void *arg)
{
	struct attest *at = arg;

	enter(at);
	at->call = NULL;
	if (status != 0 && !attest_elsewhere(at, status))
		attest_fail(at, "%s (%s)", msg, rpc_status_name(status));
	else if (status == 0 && at->step != ST_DONE)
		attest_fail(at, "the server ended the exchange without a "
		    "result");
	leave(at);
}

static const struct rpc_client_cbs attest_cbs = {
	NULL, on_message, on_status
};

/* ---- TPM -------------------------------------------------------------- */

/*
 * A TPM that never answers holds its thread for good (ESYS calls have no
 * timeout) and the loop could not end; the agent cannot get an identity
 * either, so it says so and exits.
 */
static void
tpm_watchdog_cb(uv_timer_t *t)
{
	struct attest *at = t->data;

	fatal("the TPM at %s did not answer within %d s", at->a->cfg->tpm_tcti,
	    ATTEST_TPM_MS / 1000);
}

static int
tpm_queue(struct attest *at, uv_work_cb work, uv_after_work_cb done)
{
	int r;

	if (at->watchdog == NULL) {
		if ((at->watchdog = malloc(sizeof(*at->watchdog))) == NULL)
			return UV_ENOMEM;
		uv_timer_init(at->a->loop, at->watchdog);
		at->watchdog->data = at;
	}
	at->work.data = at;
	if ((r = uv_queue_work(at->a->loop, &at->work, work, done)) != 0)
		return r;
	at->working = 1;
	uv_timer_start(at->watchdog, tpm_watchdog_cb, ATTEST_TPM_MS, 0);
	return 0;
}

/* The work is back: the watchdog rests. */
static void
tpm_back(struct attest *at)
{
	at->working = 0;
	uv_timer_stop(at->watchdog);
}

static void
tpm_identity_work(uv_work_t *w)
{
	struct attest *at = w->data;

	at->r = na_tpm_open(at->a->cfg->tpm_tcti, &at->tpm, at->why,
	    sizeof(at->why));
	if (at->r == 0)
		at->r = na_tpm_identity(at->tpm, &at->ek_cert, &at->ek_pub,
		    &at->ak_pub, at->why, sizeof(at->why));
}

static void
tpm_identity_done(uv_work_t *w, int status)
{
	struct attest			*at = w->data;
	Wick__Tpm__TpmAttestation	 ta = WICK__TPM__TPM_ATTESTATION__INIT;
	uint32_t			 pcrs[PCRSEL_MAX];
	uint8_t				*p = NULL;
	size_t				 len, n = 0;
	int				 i, r;

	enter(at);
	tpm_back(at);
	if (status != 0 || at->r != 0) {
		attest_fail(at, "TPM %s: %s", at->a->cfg->tpm_tcti,
		    status != 0 ? uv_strerror(status) : at->why);
		goto out;
	}
	if (at->a->stopping)
		goto out;
	for (i = 0; i < PCRSEL_MAX; i++)
		if (at->a->cfg->tpm_pcrs & (1u << i))
			pcrs[n++] = (uint32_t)i;
	ta.ek_cert.data = (uint8_t *)buf_ptr(&at->ek_cert);
	ta.ek_cert.len = buf_len(&at->ek_cert);
	ta.ek_pub.data = (uint8_t *)buf_ptr(&at->ek_pub);
	ta.ek_pub.len = buf_len(&at->ek_pub);
	ta.ak_pub.data = (uint8_t *)buf_ptr(&at->ak_pub);
	ta.ak_pub.len = buf_len(&at->ak_pub);
	ta.pcrs = pcrs;
	ta.n_pcrs = n;
	len = wick__tpm__tpm_attestation__get_packed_size(&ta);
	if ((p = malloc(len + 1)) == NULL) {
		attest_fail(at, "out of memory");
		goto out;
	}
	wick__tpm__tpm_attestation__pack(&ta, p);
	at->step = ST_CHALLENGE;
	if ((r = nodeclient_stream(at->a->nc, NODE_PATH_ATTEST,
	    ATTEST_TIMEOUT_MS, &attest_cbs, at, &at->call)) != 0 ||
	    (r = send_params(at, p, len)) != 0)
		attest_fail(at, "cannot reach the server: %s",
		    wick_strerror(r));
out:
	free(p);
	leave(at);
}

static void
tpm_answer_work(uv_work_t *w)
{
	struct attest		*at = w->data;
	Wick__Tpm__TpmChallenge	*c = at->challenge;

	at->r = na_tpm_answer(at->tpm, c->credential_blob.data,
	    c->credential_blob.len, c->encrypted_secret.data,
	    c->encrypted_secret.len, c->nonce.data, c->nonce.len, c->pcrs,
	    c->n_pcrs, buf_ptr(&at->spki), buf_len(&at->spki), &at->answer,
	    at->why, sizeof(at->why));
	/* The TPM has done its part: free its objects now, off the loop. */
	na_tpm_close(at->tpm);
	at->tpm = NULL;
}

static void
tpm_answer_done(uv_work_t *w, int status)
{
	struct attest			*at = w->data;
	Wick__Agent__AttestAgentRequest	 req =
	    WICK__AGENT__ATTEST_AGENT_REQUEST__INIT;
	Wick__Tpm__TpmChallengeResponse	 cr =
	    WICK__TPM__TPM_CHALLENGE_RESPONSE__INIT;
	ProtobufCBinaryData		 vals[PCRSEL_MAX];
	uint8_t				*p = NULL;
	size_t				 len = 0, i;
	int				 r;

	enter(at);
	tpm_back(at);
	if (status != 0 || at->r != 0) {
		attest_fail(at, "TPM %s: %s", at->a->cfg->tpm_tcti,
		    status != 0 ? uv_strerror(status) : at->why);
		goto out;
	}
	if (at->call == NULL || at->failed)
		goto out;
	cr.secret.data = (uint8_t *)buf_ptr(&at->answer.secret);
	cr.secret.len = buf_len(&at->answer.secret);
	cr.quote.data = (uint8_t *)buf_ptr(&at->answer.quote);
	cr.quote.len = buf_len(&at->answer.quote);
	cr.signature.data = (uint8_t *)buf_ptr(&at->answer.signature);
	cr.signature.len = buf_len(&at->answer.signature);
	for (i = 0; i < at->answer.npcrs && i < PCRSEL_MAX; i++) {
		vals[i].data = at->answer.pcr_values[i];
		vals[i].len = sizeof(at->answer.pcr_values[i]);
	}
	cr.pcr_values = vals;
	cr.n_pcr_values = i;
	len = wick__tpm__tpm_challenge_response__get_packed_size(&cr);
	if ((p = malloc(len + 1)) == NULL) {
		attest_fail(at, "out of memory");
		goto out;
	}
	wick__tpm__tpm_challenge_response__pack(&cr, p);
	req.step_case =
	    WICK__AGENT__ATTEST_AGENT_REQUEST__STEP_CHALLENGE_RESPONSE;
	req.challenge_response.data = p;
	req.challenge_response.len = len;
	at->step = ST_RESULT;
	if ((r = send_req(at, &req, 1)) != 0)
		attest_fail(at, "cannot answer the server: %s",
		    wick_strerror(r));
out:
	if (p != NULL)
		freezero(p, len + 1);	/* holds the activated secret */
	leave(at);
}

static void
tpm_challenge(struct attest *at, const uint8_t *p, size_t n)
{
	int r;

	if (n > ATTEST_MAX_MESSAGE || (at->challenge =
	    wick__tpm__tpm_challenge__unpack(NULL, n, p)) == NULL) {
		attest_fail(at, "malformed challenge from the server");
		return;
	}
	at->step = ST_ANSWER;
	if ((r = tpm_queue(at, tpm_answer_work, tpm_answer_done)) != 0)
		attest_fail(at, "cannot run the TPM: %s", uv_strerror(r));
}

/* ---- start ------------------------------------------------------------ */

static void
attest_timer_free_cb(uv_handle_t *h)
{
	free(h);
}

/*
 * An exchange that ended before its answer still has objects in the TPM:
 * flushing them is TPM work too, so it runs on the thread pool under its
 * own watchdog, after the attestation's state is gone.
 */
struct tpm_closer {
	uv_work_t	 work;
	uv_timer_t	 watchdog;
	struct na_tpm	*tpm;
	char		 tcti[NA_TPM_MAX_TCTI];
};

static void
closer_watchdog_cb(uv_timer_t *t)
{
	struct tpm_closer *c = t->data;

	fatal("the TPM at %s did not answer within %d s", c->tcti,
	    ATTEST_TPM_MS / 1000);
}

static void
closer_work(uv_work_t *w)
{
	struct tpm_closer *c = w->data;

	na_tpm_close(c->tpm);
}

static void
closer_free_cb(uv_handle_t *h)
{
	free(h->data);
}

static void
closer_done(uv_work_t *w, int status)
{
	struct tpm_closer *c = w->data;

	uv_close((uv_handle_t *)&c->watchdog, closer_free_cb);
}

static void
tpm_close_later(uv_loop_t *loop, struct na_tpm *tpm, const char *tcti)
{
	struct tpm_closer *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		na_tpm_close(tpm);	/* no memory: on the loop, once */
		return;
	}
	c->tpm = tpm;
	snprintf(c->tcti, sizeof(c->tcti), "%s", tcti);
	c->work.data = c->watchdog.data = c;
	uv_timer_init(loop, &c->watchdog);
	if (uv_queue_work(loop, &c->work, closer_work, closer_done) != 0) {
		na_tpm_close(tpm);
		uv_close((uv_handle_t *)&c->watchdog, closer_free_cb);
		return;
	}
	uv_timer_start(&c->watchdog, closer_watchdog_cb, ATTEST_TPM_MS, 0);
}

static void
attest_free(struct attest *at)
{
	EVP_PKEY_free(at->key);
	buf_cleanup(&at->csr);
	buf_cleanup(&at->spki);
	buf_cleanup(&at->ek_cert);
	buf_cleanup(&at->ek_pub);
	buf_cleanup(&at->ak_pub);
	na_tpm_answer_cleanup(&at->answer);
	if (at->challenge != NULL)
		wick__tpm__tpm_challenge__free_unpacked(at->challenge, NULL);
	if (at->tpm != NULL)
		tpm_close_later(at->a->loop, at->tpm, at->a->cfg->tpm_tcti);
	if (at->watchdog != NULL)
		uv_close((uv_handle_t *)at->watchdog, attest_timer_free_cb);
	at->a->attesting = 0;
	free(at);
}

int
attest_start(struct agent *a)
{
	struct attest	*at;
	const char	*token = a->cfg->join_token;
	uint8_t		*der = NULL;
	int		 len, r;

	if ((token == NULL || *token == '\0') && !a->cfg->tpm) {
		log_error("this agent has no SVID and no join token: give one "
		    "with -joinToken or join_token (wick-server token "
		    "generate), or configure NodeAttestor \"tpm\"");
		return WICK_ERR_CONFIG;
	}
	if (a->attesting)
		return 0;
	a->attesting = 1;
	at = xcalloc(1, sizeof(*at));
	at->a = a;
	at->depth = 1;		/* until attest_start() returns */
	at->type = token != NULL && *token != '\0' ? "join_token" : "tpm";
	buf_init(&at->csr, PKEY_MAX_DER);
	buf_init(&at->spki, PKEY_MAX_DER);
	buf_init(&at->ek_cert, NA_TPM_MAX_EK_CERT);
	buf_init(&at->ek_pub, NA_TPM_MAX_PUBLIC);
	buf_init(&at->ak_pub, NA_TPM_MAX_PUBLIC);
	na_tpm_answer_init(&at->answer);
	if ((r = pkey_generate(a->cfg->svid_key_type, &at->key)) != 0 ||
	    (r = csr_make(at->key, &at->csr)) != 0)
		goto fail;
	if ((len = i2d_PUBKEY(at->key, &der)) <= 0 ||
	    (r = buf_put(&at->spki, der, (size_t)len)) != 0) {
		r = r != 0 ? r : WICK_ERR_CRYPTO;
		goto fail;
	}
	OPENSSL_free(der);
	der = NULL;
	if (strcmp(at->type, "join_token") == 0) {
		log_info("attesting to the server at %s:%d with a join token",
		    a->cfg->server_address, a->cfg->server_port);
		at->step = ST_CHALLENGE;
		if ((r = nodeclient_stream(a->nc, NODE_PATH_ATTEST,
		    ATTEST_TIMEOUT_MS, &attest_cbs, at, &at->call)) != 0 ||
		    (r = send_params(at, (const uint8_t *)token,
		    strlen(token))) != 0)
			goto fail;
		leave(at);
		return 0;
	}
	log_info("attesting to the server at %s:%d with the TPM at %s",
	    a->cfg->server_address, a->cfg->server_port, a->cfg->tpm_tcti);
	at->step = ST_IDENTITY;
	if (tpm_queue(at, tpm_identity_work, tpm_identity_done) != 0) {
		r = WICK_ERR_INTERNAL;
		goto fail;
	}
	leave(at);
	return 0;
fail:
	OPENSSL_free(der);
	log_error("node attestation (%s) cannot start: %s", at->type,
	    wick_strerror(r));
	at->failed = 1;
	if (at->call != NULL)
		rpc_ccall_cancel(at->call);
	leave(at);
	return r;
}
