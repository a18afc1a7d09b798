/*
 * testagent.c: wick-testagent, a test client of the server's agent API.
 *
 *	wick-testagent -s HOST:PORT -T TD -d DIR attest -b BUNDLE.pem -t TOKEN
 *	    [-c CSR.der]	(the file's bytes as the CSR, valid or not)
 *	wick-testagent -s HOST:PORT -T TD -d DIR renew
 *	wick-testagent ... sync [-r REV] [-p PAGE] [-q SEQ]
 *	wick-testagent ... syncs	(one connection: "REV SEQ" lines in,
 *			 one JSON line out for each, errors included)
 *	wick-testagent ... x509 ENTRY_ID...
 *	wick-testagent ... x509-csr ENTRY_ID CSR.der
 *	wick-testagent ... jwt ENTRY_ID AUDIENCE...
 *	wick-testagent ... wit ENTRY_ID [JWK-TEXT]
 *	wick-testagent ... raw /wick.agent.Node/METHOD HEX-BYTES
 *
 * DIR holds the agent's state: agent.pem (its SVID chain), agent.key,
 * bundle.pem.  Results are JSON on stdout; a gRPC error prints
 * {"code":N,"message":"..."} and exits 2.  Integration tests drive it;
 * the real agent uses the same client code (agent/nodeclient.c).
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "agent.pb-c.h"
#include "bundle.h"
#include "jose.h"
#include "log.h"
#include "nodeclient.h"
#include "pkey.h"
#include "x509.h"
#include "xmalloc.h"

static uv_loop_t		 loop;
static struct nodeclient	*nc;
static const char		*dir = ".";

struct result {
	int		 done;
	int		 status;
	char		 msg[512];
	uint8_t		*resp;
	size_t		 len;
};

static void
call_done(int status, const char *msg, const uint8_t *p, size_t n, void *arg)
{
	struct result *r = arg;

	r->done = 1;
	r->status = status;
	snprintf(r->msg, sizeof(r->msg), "%s", msg != NULL ? msg : "");
	if (p != NULL) {
		r->resp = xmalloc(n + 1);
		memcpy(r->resp, p, n);
		r->len = n;
	}
}

/* Call and wait; on a gRPC error print it and exit 2.  With req NULL,
 * raw/rawlen is sent as the request as it is. */
static void
call_any(const char *path, const ProtobufCMessage *req, const uint8_t *raw,
    size_t rawlen, struct result *r)
{
	json_t	*j;
	int	 e;

	memset(r, 0, sizeof(*r));
	e = req != NULL ? nodeclient_call(nc, path, req, 30000, call_done, r) :
	    nodeclient_call_raw(nc, path, raw, rawlen, 30000, call_done, r);
	if (e != 0) {
		fprintf(stderr, "cannot start %s: %s\n", path,
		    wick_strerror(e));
		exit(1);
	}
	while (!r->done && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	if (r->status == 0)
		return;
	j = json_pack("{s:i,s:s}", "code", r->status, "message", r->msg);
	json_dumpf(j, stdout, JSON_COMPACT);
	printf("\n");
	json_decref(j);
	exit(2);
}

static void
call(const char *path, const ProtobufCMessage *req, struct result *r)
{
	call_any(path, req, NULL, 0, r);
}

static char *
path_in(const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		exit(1);
	return p;
}

static void
write_file(const char *name, const void *p, size_t n, int mode)
{
	char	*path = path_in(name), *tmp;
	int	 fd;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		exit(1);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode)) < 0 ||
	    write(fd, p, n) != (ssize_t)n || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		perror(path);
		exit(1);
	}
	free(tmp);
	free(path);
}

static void
write_chain(const char *name, ProtobufCBinaryData *v, size_t n)
{
	BIO		*bio = BIO_new(BIO_s_mem());
	const uint8_t	*q;
	X509		*c;
	char		*p;
	long		 len;
	size_t		 i;

	for (i = 0; i < n; i++) {
		q = v[i].data;
		if ((c = d2i_X509(NULL, &q, (long)v[i].len)) == NULL) {
			fprintf(stderr, "bad certificate in reply\n");
			exit(1);
		}
		PEM_write_bio_X509(bio, c);
		X509_free(c);
	}
	len = BIO_get_mem_data(bio, &p);
	write_file(name, p, (size_t)len, 0644);
	BIO_free(bio);
}

static void
write_key(const char *name, EVP_PKEY *key)
{
	struct buf b;

	buf_init(&b, PKEY_MAX_DER * 2);
	if (pkey_to_pkcs8_pem(key, &b) != 0)
		exit(1);
	write_file(name, buf_ptr(&b), buf_len(&b), 0600);
	buf_cleanup(&b);
}

static void
write_bundle(const Wick__Types__Bundle *pb)
{
	struct bundle	*b;
	struct buf	 out;
	const char	*why;
	size_t		 len = wick__types__bundle__get_packed_size(pb);
	uint8_t		*p = xmalloc(len + 1);

	wick__types__bundle__pack(pb, p);
	if (bundle_unpack(p, len, &b, &why) != 0) {
		fprintf(stderr, "bad bundle in reply: %s\n", why);
		exit(1);
	}
	buf_init(&out, BUNDLE_MAX_DOC);
	if (bundle_to_pem(b, &out) != 0)
		exit(1);
	write_file("bundle.pem", buf_ptr(&out), buf_len(&out), 0644);
	buf_cleanup(&out);
	bundle_free(b);
	free(p);
}

static void
make_csr(EVP_PKEY **key, struct buf *csr)
{
	buf_init(csr, PKEY_MAX_DER);
	if (pkey_generate(PKEY_EC_P256, key) != 0 || csr_make(*key, csr) != 0) {
		fprintf(stderr, "cannot make a CSR\n");
		exit(1);
	}
}

static void
print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_COMPACT | JSON_SORT_KEYS);
	printf("\n");
	json_decref(j);
}

static void
load_identity(void)
{
	STACK_OF(X509)	*chain;
	EVP_PKEY	*key;
	char		*c = path_in("agent.pem"), *k = path_in("agent.key");

	if (x509_load_chain_file(c, &chain) != 0 || x509_load_key_file(k,
	    &key) != 0) {
		fprintf(stderr, "no agent SVID in %s (attest first)\n", dir);
		exit(1);
	}
	if (nodeclient_set_identity(nc, chain, key) != 0)
		exit(1);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	free(c);
	free(k);
}

static json_t *
svid_info(ProtobufCBinaryData *v, size_t n)
{
	const uint8_t	*q = v[0].data;
	X509		*c;
	char		*id = NULL, *hex;
	json_t		*j;

	if (n == 0 || (c = d2i_X509(NULL, &q, (long)v[0].len)) == NULL)
		return json_null();
	BIGNUM		*bn;

	if (x509_spiffe_id(c, &id, NULL) != 0)
		id = NULL;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
	hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	BN_free(bn);
	j = json_pack("{s:s,s:s,s:i}", "spiffe_id", id != NULL ? id : "",
	    "serial", hex != NULL ? hex : "", "chain", (int)n);
	OPENSSL_free(hex);
	free(id);
	X509_free(c);
	return j;
}

static int
cmd_attest(int argc, char **argv)
{
	Wick__Agent__AttestAgentRequest		 req =
	    WICK__AGENT__ATTEST_AGENT_REQUEST__INIT;
	Wick__Agent__AttestAgentRequest__Params	 params =
	    WICK__AGENT__ATTEST_AGENT_REQUEST__PARAMS__INIT;
	Wick__Agent__AttestationData		 data =
	    WICK__AGENT__ATTESTATION_DATA__INIT;
	Wick__Agent__AttestAgentResponse	*resp;
	struct result				 r;
	struct buf				 csr;
	struct stat				 st;
	EVP_PKEY				*key;
	const char				*token = NULL, *type = "join_token";
	const char				*csrfile = NULL;
	uint8_t					*raw = NULL;
	FILE					*f;
	int					 i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			token = argv[++i];
		else if (strcmp(argv[i], "-y") == 0 && i + 1 < argc)
			type = argv[++i];
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			csrfile = argv[++i];
	}
	if (token == NULL) {
		fprintf(stderr, "attest needs -t TOKEN\n");
		return 1;
	}
	make_csr(&key, &csr);
	data.type = (char *)type;
	data.payload.data = (uint8_t *)token;
	data.payload.len = strlen(token);
	params.data = &data;
	params.csr.data = (uint8_t *)buf_ptr(&csr);
	params.csr.len = buf_len(&csr);
	if (csrfile != NULL) {
		if ((f = fopen(csrfile, "rb")) == NULL ||
		    fstat(fileno(f), &st) != 0) {
			perror(csrfile);
			return 1;
		}
		raw = xmalloc((size_t)st.st_size + 1);
		if (fread(raw, 1, (size_t)st.st_size, f) !=
		    (size_t)st.st_size) {
			perror(csrfile);
			return 1;
		}
		fclose(f);
		params.csr.data = raw;
		params.csr.len = (size_t)st.st_size;
	}
	req.step_case = WICK__AGENT__ATTEST_AGENT_REQUEST__STEP_PARAMS;
	req.params = &params;
	call(NODE_PATH_ATTEST, &req.base, &r);
	resp = wick__agent__attest_agent_response__unpack(NULL, r.len, r.resp);
	if (resp == NULL || resp->step_case !=
	    WICK__AGENT__ATTEST_AGENT_RESPONSE__STEP_RESULT) {
		fprintf(stderr, "unexpected AttestAgent reply\n");
		return 1;
	}
	write_chain("agent.pem", resp->result->svid, resp->result->n_svid);
	write_key("agent.key", key);
	if (resp->result->bundle != NULL)
		write_bundle(resp->result->bundle);
	print_json(json_pack("{s:o,s:b,s:I}", "svid", svid_info(
	    resp->result->svid, resp->result->n_svid), "reattestable",
	    resp->result->reattestable, "bundle_sequence",
	    resp->result->bundle != NULL ? (json_int_t)
	    resp->result->bundle->sequence_number : -1));
	wick__agent__attest_agent_response__free_unpacked(resp, NULL);
	EVP_PKEY_free(key);
	buf_cleanup(&csr);
	free(raw);
	free(r.resp);
	return 0;
}

static int
cmd_renew(void)
{
	Wick__Agent__RenewAgentRequest	 req =
	    WICK__AGENT__RENEW_AGENT_REQUEST__INIT;
	Wick__Agent__RenewAgentResponse	*resp;
	struct result			 r;
	struct buf			 csr;
	EVP_PKEY			*key;

	load_identity();
	make_csr(&key, &csr);
	req.csr.data = (uint8_t *)buf_ptr(&csr);
	req.csr.len = buf_len(&csr);
	call(NODE_PATH_RENEW, &req.base, &r);
	if ((resp = wick__agent__renew_agent_response__unpack(NULL, r.len,
	    r.resp)) == NULL)
		return 1;
	write_chain("agent.pem", resp->svid, resp->n_svid);
	write_key("agent.key", key);
	print_json(json_pack("{s:o}", "svid", svid_info(resp->svid,
	    resp->n_svid)));
	wick__agent__renew_agent_response__free_unpacked(resp, NULL);
	EVP_PKEY_free(key);
	buf_cleanup(&csr);
	free(r.resp);
	return 0;
}

static json_t *
entry_json(const Wick__Types__Entry *e)
{
	json_t	*sel = json_array(), *dns = json_array(), *fed = json_array();
	char	*s;
	size_t	 i;

	for (i = 0; i < e->n_selectors; i++) {
		if (asprintf(&s, "%s:%s", e->selectors[i]->type,
		    e->selectors[i]->value) < 0)
			exit(1);
		json_array_append_new(sel, json_string(s));
		free(s);
	}
	for (i = 0; i < e->n_dns_names; i++)
		json_array_append_new(dns, json_string(e->dns_names[i]));
	for (i = 0; i < e->n_federates_with; i++)
		json_array_append_new(fed, json_string(e->federates_with[i]));
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:i,s:i,s:I,s:s}", "id",
	    e->id, "spiffe_id", e->spiffe_id, "parent_id", e->parent_id,
	    "selectors", sel, "dns_names", dns, "federates_with", fed,
	    "x509_svid_ttl", e->x509_svid_ttl, "jwt_svid_ttl", e->jwt_svid_ttl,
	    "revision_number", (json_int_t)e->revision_number, "hint", e->hint);
}

static int
cmd_sync(int argc, char **argv)
{
	Wick__Agent__SyncAuthorizedRequest	 req =
	    WICK__AGENT__SYNC_AUTHORIZED_REQUEST__INIT;
	Wick__Agent__SyncAuthorizedResponse	*resp;
	struct result				 r;
	json_t					*entries = json_array();
	json_t					*ids = json_array();
	json_t					*fed = json_array();
	json_int_t				 seq = -1, rev = 0;
	char					*tok = NULL;
	size_t					 i;
	int					 pages = 0, unchanged = 0;

	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "-r") == 0 && i + 1 < (size_t)argc)
			req.since_revision = strtoll(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-p") == 0 && i + 1 < (size_t)argc)
			req.page_size = atoi(argv[++i]);
		else if (strcmp(argv[i], "-q") == 0 && i + 1 < (size_t)argc)
			req.bundle_sequence = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-u") == 0)
			req.accept_unchanged = 1;
	}
	load_identity();
	do {
		req.page_token = tok != NULL ? tok : "";
		call(NODE_PATH_SYNC, &req.base, &r);
		if ((resp = wick__agent__sync_authorized_response__unpack(NULL,
		    r.len, r.resp)) == NULL)
			return 1;
		pages++;
		for (i = 0; i < resp->n_entries; i++)
			json_array_append_new(entries,
			    entry_json(resp->entries[i]));
		for (i = 0; i < resp->n_unchanged_ids; i++)
			json_array_append_new(ids, json_string(
			    resp->unchanged_ids[i]));
		for (i = 0; i < resp->n_federated_bundles; i++)
			json_array_append_new(fed, json_string(
			    resp->federated_bundles[i]->trust_domain));
		if (resp->bundle != NULL) {
			seq = (json_int_t)resp->bundle->sequence_number;
			write_bundle(resp->bundle);
		}
		if (pages == 1) {
			rev = resp->revision;
			unchanged = resp->unchanged;
		}
		free(tok);
		tok = *resp->next_page_token != '\0' ?
		    xstrdup(resp->next_page_token) : NULL;
		wick__agent__sync_authorized_response__free_unpacked(resp,
		    NULL);
		free(r.resp);
	} while (tok != NULL);
	print_json(json_pack("{s:I,s:o,s:o,s:o,s:I,s:i,s:b}", "revision", rev,
	    "entries", entries, "unchanged_ids", ids, "federated", fed,
	    "bundle_sequence", seq, "pages", pages, "unchanged", unchanged));
	return 0;
}

/*
 * Syncs "unchanged if nothing changed" on one connection, as a running
 * agent makes them: one page for each "REV SEQ" line of standard input,
 * its answer (or error) a JSON line on standard output.
 */
static int
cmd_syncs(void)
{
	Wick__Agent__SyncAuthorizedRequest	 req =
	    WICK__AGENT__SYNC_AUTHORIZED_REQUEST__INIT;
	Wick__Agent__SyncAuthorizedResponse	*resp;
	struct result				 r;
	json_t					*ids;
	char					 line[128];
	long long				 rev;
	unsigned long long			 seq;
	size_t					 i;
	int					 e;

	load_identity();
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (sscanf(line, "%lld %llu", &rev, &seq) != 2)
			return 1;
		req.since_revision = rev;
		req.bundle_sequence = seq;
		req.accept_unchanged = 1;
		req.page_token = "";
		memset(&r, 0, sizeof(r));
		if ((e = nodeclient_call(nc, NODE_PATH_SYNC, &req.base, 30000,
		    call_done, &r)) != 0) {
			fprintf(stderr, "cannot sync: %s\n", wick_strerror(e));
			return 1;
		}
		while (!r.done && uv_run(&loop, UV_RUN_ONCE) != 0)
			;
		if (r.status != 0) {
			print_json(json_pack("{s:i,s:s}", "code", r.status,
			    "message", r.msg));
			continue;
		}
		if ((resp = wick__agent__sync_authorized_response__unpack(NULL,
		    r.len, r.resp)) == NULL)
			return 1;
		ids = json_array();
		for (i = 0; i < resp->n_entries; i++)
			json_array_append_new(ids, json_string(
			    resp->entries[i]->id));
		print_json(json_pack("{s:I,s:b,s:o,s:i}", "revision",
		    (json_int_t)resp->revision, "unchanged", resp->unchanged,
		    "entries", ids, "bundle", resp->bundle != NULL));
		wick__agent__sync_authorized_response__free_unpacked(resp,
		    NULL);
		free(r.resp);
	}
	return 0;
}

static int
batch_x509(char **ids, size_t n, const uint8_t *rawcsr, size_t rawlen)
{
	Wick__Agent__BatchNewX509SVIDRequest	 req =
	    WICK__AGENT__BATCH_NEW_X509_SVIDREQUEST__INIT;
	Wick__Agent__BatchNewX509SVIDResponse	*resp;
	Wick__Agent__NewX509SVIDParams		*pv, **pp;
	struct result				 r;
	struct buf				*csr;
	EVP_PKEY				**keys;
	json_t					*out = json_array();
	char					 name[64];
	size_t					 i;

	load_identity();
	pv = xcalloc(n + 1, sizeof(*pv));
	pp = xcalloc(n + 1, sizeof(*pp));
	csr = xcalloc(n + 1, sizeof(*csr));
	keys = xcalloc(n + 1, sizeof(*keys));
	for (i = 0; i < n; i++) {
		wick__agent__new_x509_svidparams__init(&pv[i]);
		pv[i].entry_id = ids[i];
		if (rawcsr != NULL) {
			pv[i].csr.data = (uint8_t *)rawcsr;
			pv[i].csr.len = rawlen;
		} else {
			make_csr(&keys[i], &csr[i]);
			pv[i].csr.data = (uint8_t *)buf_ptr(&csr[i]);
			pv[i].csr.len = buf_len(&csr[i]);
		}
		pp[i] = &pv[i];
	}
	req.params = pp;
	req.n_params = n;
	call(NODE_PATH_X509, &req.base, &r);
	if ((resp = wick__agent__batch_new_x509_svidresponse__unpack(NULL,
	    r.len, r.resp)) == NULL)
		return 1;
	for (i = 0; i < resp->n_results; i++) {
		Wick__Agent__X509SVIDResult *x = resp->results[i];

		if (x->status->code == 0 && i < n && keys[i] != NULL) {
			snprintf(name, sizeof(name), "svid.%zu.pem", i);
			write_chain(name, x->svid, x->n_svid);
			snprintf(name, sizeof(name), "svid.%zu.key", i);
			write_key(name, keys[i]);
		}
		json_array_append_new(out, json_pack("{s:s,s:i,s:s,s:I,s:o}",
		    "entry_id", x->entry_id, "code", x->status->code, "message",
		    x->status->message, "expires_at", (json_int_t)x->expires_at,
		    "svid", x->n_svid > 0 ? svid_info(x->svid, x->n_svid) :
		    json_null()));
	}
	print_json(json_pack("{s:o}", "results", out));
	wick__agent__batch_new_x509_svidresponse__free_unpacked(resp, NULL);
	for (i = 0; i < n; i++) {
		EVP_PKEY_free(keys[i]);
		if (rawcsr == NULL)
			buf_cleanup(&csr[i]);
	}
	free(keys);
	free(csr);
	free(pv);
	free(pp);
	free(r.resp);
	return 0;
}

static int
cmd_x509_csr(const char *id, const char *file)
{
	struct stat	 st;
	uint8_t		*p;
	char		*ids[1];
	FILE		*f;
	int		 r;

	if ((f = fopen(file, "rb")) == NULL || fstat(fileno(f), &st) != 0) {
		perror(file);
		return 1;
	}
	p = xmalloc((size_t)st.st_size + 1);
	if (fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		return 1;
	fclose(f);
	ids[0] = (char *)id;
	r = batch_x509(ids, 1, p, (size_t)st.st_size);
	free(p);
	return r;
}

static int
cmd_jwt(int argc, char **argv)
{
	Wick__Agent__NewJWTSVIDRequest	 req =
	    WICK__AGENT__NEW_JWTSVIDREQUEST__INIT;
	Wick__Agent__NewJWTSVIDResponse	*resp;
	struct result			 r;

	if (argc < 2) {
		fprintf(stderr, "jwt ENTRY_ID AUDIENCE...\n");
		return 1;
	}
	load_identity();
	req.entry_id = argv[1];
	req.audience = argv + 2;
	req.n_audience = (size_t)argc - 2;
	call(NODE_PATH_JWT, &req.base, &r);
	if ((resp = wick__agent__new_jwtsvidresponse__unpack(NULL, r.len,
	    r.resp)) == NULL)
		return 1;
	print_json(json_pack("{s:s,s:I}", "token", resp->token, "expires_at",
	    (json_int_t)resp->expires_at));
	wick__agent__new_jwtsvidresponse__free_unpacked(resp, NULL);
	free(r.resp);
	return 0;
}

static int
cmd_wit(int argc, char **argv)
{
	Wick__Agent__NewWITSVIDRequest	 req =
	    WICK__AGENT__NEW_WITSVIDREQUEST__INIT;
	Wick__Agent__NewWITSVIDResponse	*resp;
	struct result			 r;
	struct jose_key			*jk;
	EVP_PKEY			*key;
	json_t				*pub, *priv;
	char				*text;

	if (argc < 2) {
		fprintf(stderr, "wit ENTRY_ID [JWK]\n");
		return 1;
	}
	load_identity();
	if (pkey_generate(PKEY_EC_P256, &key) != 0 ||
	    jose_key_from_pkey(key, "workload", &jk) != 0 ||
	    jose_key_to_jwk(jk, 0, &pub) != 0 ||
	    jose_key_to_jwk(jk, 1, &priv) != 0)
		return 1;
	json_object_del(pub, "kid");
	json_object_set_new(pub, "alg", json_string("ES256"));
	text = argc > 2 ? xstrdup(argv[2]) : json_dumps(pub, JSON_COMPACT);
	req.entry_id = argv[1];
	req.public_jwk = text;
	call(NODE_PATH_WIT, &req.base, &r);
	if ((resp = wick__agent__new_witsvidresponse__unpack(NULL, r.len,
	    r.resp)) == NULL)
		return 1;
	print_json(json_pack("{s:s,s:I,s:O,s:O}", "token", resp->token,
	    "expires_at", (json_int_t)resp->expires_at, "public_jwk", pub,
	    "private_jwk", priv));
	wick__agent__new_witsvidresponse__free_unpacked(resp, NULL);
	json_decref(pub);
	json_decref(priv);
	jose_key_free(jk);
	EVP_PKEY_free(key);
	free(text);
	free(r.resp);
	return 0;
}

/* raw PATH HEX: send HEX's bytes as the request (with the agent SVID
 * when there is one), print the status. */
static int
cmd_raw(const char *path, const char *hex)
{
	struct result	 r;
	uint8_t		*p;
	size_t		 n = strlen(hex) / 2, i;
	unsigned	 b;
	char		*c = path_in("agent.pem");

	if (access(c, F_OK) == 0)
		load_identity();
	free(c);
	p = xmalloc(n + 1);
	for (i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return 1;
		p[i] = (uint8_t)b;
	}
	call_any(path, NULL, p, n, &r);
	free(p);
	print_json(json_pack("{s:i,s:I}", "code", 0, "len", (json_int_t)r.len));
	free(r.resp);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: wick-testagent -s HOST:PORT -T TD -d DIR "
	    "[-b BUNDLE.pem] attest -t TOKEN [-c CSR.der] | renew | "
	    "sync [-r REV] [-p PAGE] [-q SEQ] | syncs | x509 ENTRY... | "
	    "x509-csr ENTRY CSR.der | "
	    "jwt ENTRY AUD... | wit ENTRY [JWK] | raw PATH HEX\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	STACK_OF(X509)	*roots;
	const char	*addr = NULL, *td = NULL, *bpath = NULL, *cmd;
	char		*bp;
	int		 ch, r;

	while ((ch = getopt(argc, argv, "+s:T:d:b:")) != -1) {
		switch (ch) {
		case 's':
			addr = optarg;
			break;
		case 'T':
			td = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'b':
			bpath = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (addr == NULL || td == NULL || argc < 1)
		usage();
	/* A server that ends the handshake must give a status, not kill us
	 * on the next write (the daemons ignore SIGPIPE too). */
	signal(SIGPIPE, SIG_IGN);
	log_init("testagent", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	cmd = argv[0];
	bp = bpath != NULL ? xstrdup(bpath) : path_in("bundle.pem");
	if (x509_load_certs_file(bp, BUNDLE_MAX_X509, &roots) != 0) {
		fprintf(stderr, "cannot read the trust bundle %s\n", bp);
		return 1;
	}
	free(bp);
	uv_loop_init(&loop);
	if (nodeclient_new(&loop, addr, td, roots, &nc) != 0)
		return 1;
	sk_X509_pop_free(roots, X509_free);
	if (strcmp(cmd, "attest") == 0)
		r = cmd_attest(argc, argv);
	else if (strcmp(cmd, "renew") == 0)
		r = cmd_renew();
	else if (strcmp(cmd, "sync") == 0)
		r = cmd_sync(argc, argv);
	else if (strcmp(cmd, "syncs") == 0)
		r = cmd_syncs();
	else if (strcmp(cmd, "x509") == 0 && argc >= 2)
		r = batch_x509(argv + 1, (size_t)argc - 1, NULL, 0);
	else if (strcmp(cmd, "x509-csr") == 0 && argc == 3)
		r = cmd_x509_csr(argv[1], argv[2]);
	else if (strcmp(cmd, "jwt") == 0)
		r = cmd_jwt(argc, argv);
	else if (strcmp(cmd, "wit") == 0)
		r = cmd_wit(argc, argv);
	else if (strcmp(cmd, "raw") == 0 && argc == 3)
		r = cmd_raw(argv[1], argv[2]);
	else
		usage();
	nodeclient_free(nc);
	uv_run(&loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&loop);
	return r;
}
