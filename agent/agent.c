/*
 * agent.c: wick-agent's life: node attestation or the stored SVID, the
 * sync loop with the server, and the upkeep of every SVID it serves.
 *
 * Files in data_dir (0700): agent_svid.pem (the agent's SVID chain),
 * bundle.json (the trust bundle, SPIFFE format); the agent's key is
 * keys_dir/agent_svid.key (0600) with KeyManager "disk", memory only with
 * "memory".  A restart with these files needs no join token.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>

#include "agent.h"
#include "agent_metrics.h"
#include "attestor_docker.h"
#include "agent.pb-c.h"
#include "log.h"
#include "pkey.h"
#include "secpath.h"
#include "x509.h"
#include "xmalloc.h"

int64_t
agent_now(void)
{
	return (int64_t)time(NULL);
}

/* Uniform in [lo, hi]. */
static double
jitter(double lo, double hi)
{
	uint32_t r;

	if (RAND_bytes((uint8_t *)&r, sizeof(r)) != 1)
		r = (uint32_t)rand();
	return lo + (hi - lo) * ((double)r / 4294967295.0);
}

/* Rotate when what is left is at most a jittered half of the life. */
static int64_t
rotate_time(int64_t not_before, int64_t not_after)
{
	int64_t life = not_after - not_before;

	return not_after - (int64_t)((double)life * jitter(0.45, 0.55));
}

/* ---- files -------------------------------------------------------------- */

/*
 * The paths the agent trusts, checked as secpath.h says: a component
 * another user owns or can write is refused, naming it.
 */
static int
check_dir(const char *what, const char *dir)
{
	char	why[SECPATH_MAX_WHY];
	int	r;

	if ((r = secpath_mkdir(dir, 0700, why, sizeof(why))) != 0)
		log_error("refusing %s %s: %s", what, dir, why);
	return r;
}

static int
check_file(const char *what, const char *path)
{
	char	why[SECPATH_MAX_WHY];
	int	r;

	if ((r = secpath_check_file(path, why, sizeof(why))) != 0)
		log_error("refusing %s %s: %s", what, path, why);
	return r;
}

int
agent_socket_dir(const char *socket_path)
{
	char	why[SECPATH_MAX_WHY];
	int	r;

	if ((r = secpath_mkdir_parent(socket_path, AGENT_SOCKET_DIR_MODE, why,
	    sizeof(why))) != 0)
		log_error("refusing socket_path %s: %s", socket_path, why);
	return r;
}

static char *
data_path(struct agent *a, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", a->cfg->data_dir, name) < 0)
		fatal("out of memory");
	return p;
}

static char *
key_path(struct agent *a)
{
	char *p;

	if (asprintf(&p, "%s/agent_svid.key", a->cfg->keys_dir) < 0)
		fatal("out of memory");
	return p;
}

/* Write atomically with mode. */
static int
write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	char	*tmp;
	int	 fd, r = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		fatal("out of memory");
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) <
	    0 || write(fd, p, n) != (ssize_t)n || fsync(fd) != 0) {
		log_error("cannot write %s: %s", tmp, strerror(errno));
		r = WICK_ERR_IO;
	}
	if (fd >= 0 && close(fd) != 0)
		r = WICK_ERR_IO;
	if (r == 0 && rename(tmp, path) != 0) {
		log_error("cannot rename %s: %s", tmp, strerror(errno));
		r = WICK_ERR_IO;
	}
	if (r != 0)
		(void)unlink(tmp);
	free(tmp);
	return r;
}

/* The bundle changed: refresh its DER, which every X.509 answer sends. */
static void
bundle_changed(struct agent *a)
{
	buf_reset(&a->bundle_der);
	if (bundle_x509_der(a->bundle, &a->bundle_der) != 0)
		log_error("cannot encode the trust bundle");
}

static int
save_bundle(struct agent *a)
{
	char	*json, *path = data_path(a, "bundle.json");
	int	 r;

	bundle_changed(a);
	if ((r = bundle_to_spiffe_json(a->bundle, &json)) == 0) {
		r = write_file(path, json, strlen(json), 0644);
		free(json);
	}
	free(path);
	return r;
}

static int
save_svid(struct agent *a)
{
	struct buf	 key;
	BIO		*bio = BIO_new(BIO_s_mem());
	char		*pem, *path;
	long		 n;
	int		 i, r = 0;

	for (i = 0; i < sk_X509_num(a->svid); i++)
		PEM_write_bio_X509(bio, sk_X509_value(a->svid, i));
	n = BIO_get_mem_data(bio, &pem);
	path = data_path(a, "agent_svid.pem");
	r = write_file(path, pem, (size_t)n, 0644);
	free(path);
	BIO_free(bio);
	if (r != 0 || strcmp(a->cfg->keymgr, "disk") != 0)
		return r;
	buf_init(&key, PKEY_MAX_DER * 2);
	path = key_path(a);
	if ((r = pkey_to_pkcs8_pem(a->svid_key, &key)) == 0)
		r = write_file(path, buf_ptr(&key), buf_len(&key), 0600);
	buf_cleanup(&key);
	free(path);
	return r;
}

static void
forget_svid(struct agent *a)
{
	char *p;

	p = data_path(a, "agent_svid.pem");
	(void)unlink(p);
	free(p);
	p = key_path(a);
	(void)unlink(p);
	free(p);
}

static void
set_svid(struct agent *a, STACK_OF(X509) *chain, EVP_PKEY *key)
{
	X509	*leaf = sk_X509_value(chain, 0);
	int64_t	 nb = x509_not_before(leaf);
	int64_t	 na = x509_not_after(leaf);

	sk_X509_pop_free(a->svid, X509_free);
	EVP_PKEY_free(a->svid_key);
	a->svid = chain;
	a->svid_key = key;
	a->svid_renew_at = nb + (na - nb) / 2;
	if (nodeclient_set_identity(a->nc, chain, key) != 0)
		log_error("cannot use the new agent SVID for TLS");
}

static int
load_svid(struct agent *a)
{
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*key = NULL;
	char		*c = data_path(a, "agent_svid.pem"), *k = key_path(a);
	int		 r;

	if (access(c, F_OK) != 0 || access(k, F_OK) != 0) {
		r = WICK_ERR_NOT_FOUND;
		goto out;
	}
	if ((r = x509_load_chain_file(c, &chain)) != 0 ||
	    (r = x509_load_key_file(k, &key)) != 0) {
		log_error("stored agent SVID %s or key %s unreadable: %s", c, k,
		    wick_strerror(r));
		goto out;
	}
	if (X509_check_private_key(sk_X509_value(chain, 0), key) != 1) {
		log_error("stored agent key %s does not match %s", k, c);
		r = WICK_ERR_INVALID;
		goto out;
	}
	if (x509_not_after(sk_X509_value(chain, 0)) <=
	    agent_now()) {
		log_error("stored agent SVID %s has expired: the agent must "
		    "attest again (a new join token)", c);
		r = WICK_ERR_EXPIRED;
		goto out;
	}
	set_svid(a, chain, key);
	chain = NULL;
	key = NULL;
	log_info("using the stored agent SVID %s", c);
out:
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	free(c);
	free(k);
	return r;
}

static int
load_bundle(struct agent *a)
{
	const char	*path = a->cfg->trust_bundle_path, *why = "";
	char		*stored = data_path(a, "bundle.json");
	struct stat	 st;
	uint8_t		*p = NULL;
	FILE		*f = NULL;
	int		 r = WICK_ERR_IO, spiffe;

	spiffe = strcmp(a->cfg->trust_bundle_format, "spiffe") == 0;
	if (access(stored, F_OK) == 0) {
		path = stored;
		spiffe = 1;
	} else if (path == NULL) {
		log_error("no trust bundle: set trust_bundle_path (or "
		    "-trustBundle) to the server's CA bundle");
		free(stored);
		return WICK_ERR_CONFIG;
	}
	if ((r = check_file("trust bundle", path)) != 0)
		goto out;
	r = WICK_ERR_IO;
	if ((f = fopen(path, "re")) == NULL || fstat(fileno(f), &st) != 0 ||
	    st.st_size > BUNDLE_MAX_DOC) {
		log_error("cannot read the trust bundle %s", path);
		goto out;
	}
	p = xmalloc((size_t)st.st_size + 1);
	if (fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		goto out;
	r = spiffe ? bundle_from_spiffe_json(a->cfg->trust_domain,
	    (const char *)p, (size_t)st.st_size, &a->bundle, &why) :
	    bundle_from_pem(a->cfg->trust_domain, p, (size_t)st.st_size,
	    &a->bundle, &why);
	if (r == 0 && sk_X509_num(a->bundle->x509) == 0) {
		why = "no X.509 authorities";
		r = WICK_ERR_INVALID;
	}
	if (r != 0)
		log_error("trust bundle %s: %s", path, why);
out:
	if (f != NULL)
		fclose(f);
	free(p);
	free(stored);
	return r;
}

/* ---- the agent's SVID --------------------------------------------------- */

int
agent_chain_from_pb(ProtobufCBinaryData *v, size_t n, STACK_OF(X509) **out)
{
	STACK_OF(X509)	*sk = sk_X509_new_null();
	const uint8_t	*q;
	X509		*c;
	size_t		 i;

	if (sk == NULL || n == 0)
		goto fail;
	for (i = 0; i < n; i++) {
		q = v[i].data;
		if ((c = d2i_X509(NULL, &q, (long)v[i].len)) == NULL ||
		    q != v[i].data + v[i].len) {
			X509_free(c);
			goto fail;
		}
		if (sk_X509_push(sk, c) <= 0) {
			X509_free(c);
			goto fail;
		}
	}
	*out = sk;
	return 0;
fail:
	sk_X509_pop_free(sk, X509_free);
	return WICK_ERR_INVALID;
}

static void	sync_now(struct agent *);

/* The server says this agent may not go on: say why and stop. */
static void
agent_revoked(struct agent *a, const char *msg)
{
	if (a->attesting)
		return;		/* the refusal of the SVID being replaced */
	forget_svid(a);
	/* A TPM proves the node again; a join token is spent. */
	if (a->cfg->tpm && (a->cfg->join_token == NULL ||
	    *a->cfg->join_token == '\0') && strstr(msg, "AGENT_BANNED") ==
	    NULL) {
		log_warn("the server refused this agent: %s; attesting again "
		    "with the TPM", msg);
		svcnotify_status(&a->notify, "attesting again with the TPM");
		if (attest_start(a) == 0)
			return;
	}
	log_error("the server refused this agent: %s; its stored SVID is "
	    "deleted and the agent stops: start it again with a new join "
	    "token", msg);
	agent_stop(a, 1);
}

static int
revoked(int status, const char *msg)
{
	return status == RPC_PERMISSION_DENIED && msg != NULL &&
	    (strstr(msg, "AGENT_") != NULL);
}

/*
 * Node attestation succeeded (attest.c): the new SVID, its key (ours
 * now) and the bundle the server sent.
 */
void
agent_attested(struct agent *a, STACK_OF(X509) *chain, EVP_PKEY *key,
    const Wick__Types__Bundle *pb, int reattestable)
{
	struct bundle	*b;
	uint8_t		*packed;
	const char	*why;
	char		*id = NULL;
	size_t		 len;

	if (pb != NULL) {
		len = wick__types__bundle__get_packed_size(pb);
		packed = xmalloc(len + 1);
		wick__types__bundle__pack(pb, packed);
		if (bundle_unpack(packed, len, &b, &why) == 0) {
			bundle_free(a->bundle);
			a->bundle = b;
			if (nodeclient_set_roots(a->nc, b->x509) != 0 ||
			    save_bundle(a) != 0)
				log_warn("cannot store the trust bundle");
		}
		free(packed);
	}
	set_svid(a, chain, key);
	if (x509_spiffe_id(sk_X509_value(chain, 0), &id, NULL) == 0) {
		snprintf(a->agent_id, sizeof(a->agent_id), "%s", id);
		free(id);
	}
	a->reattestable = reattestable;
	a->attesting = 0;
	agent_metrics_attest(a, a->cfg->tpm ? "tpm" : "join_token", 1);
	agent_metrics_svids(a, TELEMETRY_SVID_AGENT, 1, 0);
	if (save_svid(a) != 0)
		log_warn("cannot store the agent SVID: a restart will need "
		    "to attest again");
	log_info("node attestation succeeded: this agent is %s", a->agent_id);
	svcnotify_status(&a->notify, "attested as %s, syncing", a->agent_id);
	sync_now(a);
}

struct renew {
	struct agent	*a;
	EVP_PKEY	*key;
};

static void
renew_done(int status, const char *msg, const uint8_t *p, size_t n,
    void *arg)
{
	struct renew			*rn = arg;
	struct agent			*a = rn->a;
	Wick__Agent__RenewAgentResponse	*resp;
	STACK_OF(X509)			*chain;

	a->renewing = 0;
	if (status != 0) {
		log_warn("agent SVID renewal failed: %s", msg);
		EVP_PKEY_free(rn->key);
		free(rn);
		if (revoked(status, msg))
			agent_revoked(a, msg);
		return;
	}
	if ((resp = wick__agent__renew_agent_response__unpack(NULL, n, p)) ==
	    NULL || agent_chain_from_pb(resp->svid, resp->n_svid, &chain) != 0) {
		log_warn("agent SVID renewal: malformed answer");
		if (resp != NULL)
			wick__agent__renew_agent_response__free_unpacked(resp,
			    NULL);
		EVP_PKEY_free(rn->key);
		free(rn);
		return;
	}
	wick__agent__renew_agent_response__free_unpacked(resp, NULL);
	set_svid(a, chain, rn->key);
	free(rn);
	agent_metrics_svids(a, TELEMETRY_SVID_AGENT, 1, 1);
	if (save_svid(a) != 0)
		log_warn("cannot store the renewed agent SVID");
	log_info("agent SVID renewed; next renewal at %lld",
	    (long long)a->svid_renew_at);
}

static void
renew_svid(struct agent *a)
{
	Wick__Agent__RenewAgentRequest	 req =
	    WICK__AGENT__RENEW_AGENT_REQUEST__INIT;
	struct renew			*rn;
	struct buf			 csr;

	if (a->renewing || a->svid == NULL || agent_now() < a->svid_renew_at)
		return;
	rn = xcalloc(1, sizeof(*rn));
	rn->a = a;
	buf_init(&csr, PKEY_MAX_DER);
	if (pkey_generate(a->cfg->svid_key_type, &rn->key) != 0 ||
	    csr_make(rn->key, &csr) != 0) {
		EVP_PKEY_free(rn->key);
		free(rn);
		buf_cleanup(&csr);
		return;
	}
	req.csr.data = (uint8_t *)buf_ptr(&csr);
	req.csr.len = buf_len(&csr);
	if (nodeclient_call(a->nc, NODE_PATH_RENEW, &req.base,
	    AGENT_CALL_TIMEOUT_MS, renew_done, rn) == 0)
		a->renewing = 1;
	else {
		EVP_PKEY_free(rn->key);
		free(rn);
	}
	buf_cleanup(&csr);
}

/* ---- entries ------------------------------------------------------------ */

static void
entry_free(struct agent_entry *e)
{
	size_t i;

	if (e == NULL)
		return;
	free(e->id);
	free(e->spiffe_id);
	free(e->hint);
	selector_set_cleanup(&e->selectors);
	for (i = 0; i < e->nfederates_with; i++)
		free(e->federates_with[i]);
	free(e->federates_with);
	free(e->chain_der);
	if (e->key_der != NULL)
		freezero(e->key_der, e->key_len);
	free(e->wit);
	if (e->wit_key != NULL) {
		wipe(e->wit_key, strlen(e->wit_key));
		free(e->wit_key);
	}
	free(e);
}

static struct agent_entry *
entry_from_pb(const Wick__Types__Entry *pb)
{
	struct agent_entry	*e = xcalloc(1, sizeof(*e));
	const char		*why;
	size_t			 i;

	e->id = xstrdup(pb->id);
	e->spiffe_id = xstrdup(pb->spiffe_id);
	e->hint = xstrdup(pb->hint);
	e->revision = pb->revision_number;
	e->created_at = pb->created_at;
	selector_set_init(&e->selectors);
	for (i = 0; i < pb->n_selectors; i++)
		if (selector_set_add(&e->selectors, pb->selectors[i]->type,
		    pb->selectors[i]->value, &why) != 0) {
			log_warn("entry %s: selector dropped: %s", e->id, why);
		}
	if (pb->n_federates_with > 0) {
		e->federates_with = xcalloc(pb->n_federates_with,
		    sizeof(*e->federates_with));
		for (i = 0; i < pb->n_federates_with; i++)
			e->federates_with[i] = xstrdup(pb->federates_with[i]);
		e->nfederates_with = pb->n_federates_with;
	}
	return e;
}

static ssize_t
find_entry(struct agent_entry **v, size_t n, const char *id)
{
	size_t	lo = 0, hi = n, mid;
	int	c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(v[mid]->id, id)) == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int
cmp_entry(const void *x, const void *y)
{
	return strcmp((*(struct agent_entry *const *)x)->id,
	    (*(struct agent_entry *const *)y)->id);
}

/* Move what the agent holds for an entry into its new version. */
static void
carry_over(struct agent_entry *to, struct agent_entry *from)
{
	if (strcmp(to->spiffe_id, from->spiffe_id) != 0)
		return;		/* a new identity needs new SVIDs */
	to->chain_der = from->chain_der;
	to->chain_len = from->chain_len;
	to->key_der = from->key_der;
	to->key_len = from->key_len;
	to->not_after = from->not_after;
	/* A changed entry (DNS names, TTL) is signed again now. */
	to->rotate_at = to->revision == from->revision ? from->rotate_at : 0;
	to->x509_pending = from->x509_pending;
	from->chain_der = NULL;
	from->key_der = NULL;
	to->wit = from->wit;
	to->wit_key = from->wit_key;
	to->wit_exp = from->wit_exp;
	to->wit_rotate_at = to->revision == from->revision ?
	    from->wit_rotate_at : 0;
	to->wit_wanted = from->wit_wanted;
	to->wit_pending = from->wit_pending;
	from->wit = NULL;
	from->wit_key = NULL;
}

static void	svid_upkeep(struct agent *);
static void	index_entries(struct agent *);

/* READY=1 (once) or the STATUS= line after a sync (svcnotify.h). */
static void
notify_synced(struct agent *a, int ready)
{
	char	s[SVCNOTIFY_MAX_STATUS];

	snprintf(s, sizeof(s), "synced at revision %lld: %zu authorized "
	    "entries, Workload API on %s", (long long)a->revision,
	    a->nentries, a->cfg->socket_path);
	if (ready)
		svcnotify_ready(&a->notify, "%s", s);
	else
		svcnotify_status(&a->notify, "%s", s);
}

/* The last page arrived: replace the entry set. */
static void
sync_apply(struct agent *a)
{
	struct agent_entry	**v;
	uint8_t			 *taken;
	size_t			  n = 0, i;
	ssize_t			  at;

	if (a->sync_full)
		a->need_full = 0;
	/* Nothing changed (the common case): keep everything as it is. */
	if (a->synced && a->npending == 0 && a->nkeep == a->nentries) {
		for (i = 0; i < a->nkeep; i++)
			if (strcmp(a->keep[i], a->entries[i]->id) != 0)
				break;
		if (i == a->nkeep) {
			for (i = 0; i < a->nkeep; i++)
				free(a->keep[i]);
			a->nkeep = 0;
			a->revision = a->sync_rev;
			svid_upkeep(a);
			return;
		}
	}
	v = xcalloc(a->npending + a->nkeep + 1, sizeof(*v));
	taken = xcalloc(a->nentries + 1, 1);
	for (i = 0; i < a->npending; i++) {
		if ((at = find_entry(a->entries, a->nentries,
		    a->pending[i]->id)) >= 0)
			carry_over(a->pending[i], a->entries[at]);
		v[n++] = a->pending[i];
	}
	for (i = 0; i < a->nkeep; i++) {
		if ((at = find_entry(a->entries, a->nentries, a->keep[i])) < 0 ||
		    taken[at]) {
			/* Newly authorized without a change of its own (a
			 * node alias or parent moved): fetch everything. */
			a->need_full = 1;
			continue;
		}
		v[n++] = a->entries[at];
		taken[at] = 1;
	}
	for (i = 0; i < a->nentries; i++)
		if (!taken[i])
			entry_free(a->entries[i]);
	free(taken);
	free(a->entries);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_entry);
	a->entries = v;
	a->nentries = n;
	index_entries(a);
	a->npending = 0;
	for (i = 0; i < a->nkeep; i++)
		free(a->keep[i]);
	a->nkeep = 0;
	a->revision = a->sync_rev;
	if (!a->synced) {
		a->synced = 1;
		log_info("first sync: %zu authorized entries", n);
		if (workload_start(a) != 0) {
			agent_stop(a, 1);
			return;
		}
		/* Synced and listening: workloads get their SVIDs now. */
		notify_synced(a, 1);
	}
	workload_notify(a);
	svid_upkeep(a);
}

static void
set_bundle_pb(struct agent *a, const Wick__Types__Bundle *pb, int own)
{
	struct bundle	*b;
	uint8_t		*packed;
	const char	*why;
	size_t		 len = wick__types__bundle__get_packed_size(pb);

	packed = xmalloc(len + 1);
	wick__types__bundle__pack(pb, packed);
	if (bundle_unpack(packed, len, &b, &why) != 0) {
		log_warn("bundle from the server refused: %s", why);
		free(packed);
		return;
	}
	free(packed);
	if (own) {
		if (strcmp(b->td, a->cfg->trust_domain) != 0 ||
		    sk_X509_num(b->x509) == 0) {
			log_warn("bundle from the server refused: wrong trust "
			    "domain or no X.509 authority");
			bundle_free(b);
			return;
		}
		bundle_free(a->bundle);
		a->bundle = b;
		if (nodeclient_set_roots(a->nc, b->x509) != 0 ||
		    save_bundle(a) != 0)
			log_warn("cannot store the new trust bundle");
		log_info("trust bundle updated to sequence %llu",
		    (unsigned long long)b->sequence);
		return;
	}
	if (a->nfed < AGENT_MAX_FEDERATED)
		a->fed[a->nfed++] = b;
	else
		bundle_free(b);
}

static void	sync_page(struct agent *);
static void	sync_schedule(struct agent *, int ok);

static void
sync_done(int status, const char *msg, const uint8_t *p, size_t n, void *arg)
{
	struct agent				*a = arg;
	Wick__Agent__SyncAuthorizedResponse	*resp;
	size_t					 i;

	if (status != 0) {
		a->syncing = 0;
		agent_metrics_sync(a, 0);
		log_warn("sync with the server failed: %s (%s)", msg,
		    rpc_status_name(status));
		svcnotify_status(&a->notify, "sync with the server failed "
		    "(%s), retrying; last synced revision %lld",
		    rpc_status_name(status), (long long)a->revision);
		if (revoked(status, msg)) {
			agent_revoked(a, msg);
			return;
		}
		sync_schedule(a, 0);
		return;
	}
	if ((resp = wick__agent__sync_authorized_response__unpack(NULL, n,
	    p)) == NULL) {
		a->syncing = 0;
		agent_metrics_sync(a, 0);
		log_warn("sync: malformed answer from the server");
		sync_schedule(a, 0);
		return;
	}
	if (a->page_token == NULL && resp->unchanged) {
		/* Nothing changed since our revision: what we hold stands,
		 * federated bundles included. */
		if (resp->bundle != NULL)
			set_bundle_pb(a, resp->bundle, 1);
		wick__agent__sync_authorized_response__free_unpacked(resp,
		    NULL);
		a->syncing = 0;
		agent_metrics_sync(a, 1);
		svid_upkeep(a);
		if (a->synced && !a->stopping)
			notify_synced(a, 0);
		sync_schedule(a, 1);
		return;
	}
	if (a->page_token == NULL) {
		a->sync_rev = resp->revision;
		for (i = 0; i < a->nfed; i++)
			bundle_free(a->fed[i]);
		a->nfed = 0;
		for (i = 0; i < resp->n_federated_bundles; i++)
			set_bundle_pb(a, resp->federated_bundles[i], 0);
	}
	if (resp->bundle != NULL)
		set_bundle_pb(a, resp->bundle, 1);
	for (i = 0; i < resp->n_entries; i++) {
		if (a->npending == a->cappending) {
			a->cappending = a->cappending == 0 ? 64 :
			    a->cappending * 2;
			a->pending = xreallocarray(a->pending, a->cappending,
			    sizeof(*a->pending));
		}
		a->pending[a->npending++] = entry_from_pb(resp->entries[i]);
	}
	for (i = 0; i < resp->n_unchanged_ids; i++) {
		if (a->nkeep == a->capkeep) {
			a->capkeep = a->capkeep == 0 ? 64 : a->capkeep * 2;
			a->keep = xreallocarray(a->keep, a->capkeep,
			    sizeof(*a->keep));
		}
		a->keep[a->nkeep++] = xstrdup(resp->unchanged_ids[i]);
	}
	free(a->page_token);
	a->page_token = *resp->next_page_token != '\0' ?
	    xstrdup(resp->next_page_token) : NULL;
	wick__agent__sync_authorized_response__free_unpacked(resp, NULL);
	if (a->page_token != NULL) {
		sync_page(a);
		return;
	}
	a->syncing = 0;
	agent_metrics_sync(a, 1);
	sync_apply(a);
	if (a->synced && !a->stopping)
		notify_synced(a, 0);
	sync_schedule(a, 1);
}

static void
sync_page(struct agent *a)
{
	Wick__Agent__SyncAuthorizedRequest req =
	    WICK__AGENT__SYNC_AUTHORIZED_REQUEST__INIT;
	int r;

	req.since_revision = a->synced && !a->need_full ? a->revision : 0;
	req.accept_unchanged = 1;
	if (a->page_token == NULL)
		a->sync_full = req.since_revision == 0;
	req.page_token = a->page_token != NULL ? a->page_token : "";
	req.bundle_sequence = a->bundle != NULL ? a->bundle->sequence : 0;
	if ((r = nodeclient_call(a->nc, NODE_PATH_SYNC, &req.base,
	    AGENT_CALL_TIMEOUT_MS, sync_done, a)) != 0) {
		a->syncing = 0;
		log_warn("sync: cannot reach the server: %s", wick_strerror(r));
		sync_schedule(a, 0);
	}
}

static void
sync_now(struct agent *a)
{
	size_t i;

	if (a->syncing || a->stopping || a->svid == NULL)
		return;
	renew_svid(a);
	a->syncing = 1;
	for (i = 0; i < a->npending; i++)
		entry_free(a->pending[i]);
	a->npending = 0;
	for (i = 0; i < a->nkeep; i++)
		free(a->keep[i]);
	a->nkeep = 0;
	free(a->page_token);
	a->page_token = NULL;
	sync_page(a);
}

static void
on_sync_timer(uv_timer_t *t)
{
	struct agent *a = t->data;

	svid_upkeep(a);
	sync_now(a);
}

/* Next sync after the interval, or after a growing backoff on failure. */
static void
sync_schedule(struct agent *a, int ok)
{
	uint64_t ms = (uint64_t)a->cfg->sync_interval_ms;

	if (a->stopping)
		return;
	if (ok)
		a->failures = 0;
	else {
		if (a->failures < 16)
			a->failures++;
		ms = ms << (a->failures > 6 ? 6 : a->failures);
		if (ms > AGENT_MAX_BACKOFF_MS)
			ms = AGENT_MAX_BACKOFF_MS;
		ms = (uint64_t)((double)ms * jitter(0.9, 1.1));
	}
	uv_timer_start(&a->sync_timer, on_sync_timer, ms, 0);
}

/* ---- X.509-SVIDs -------------------------------------------------------- */

struct x509_batch {
	struct agent	 *a;
	char		**ids;
	EVP_PKEY	**keys;
	size_t		  n;
};

static void
x509_batch_free(struct x509_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		free(b->ids[i]);
		EVP_PKEY_free(b->keys[i]);
	}
	free(b->ids);
	free(b->keys);
	free(b);
}

/* Keep a new SVID as the DER the Workload API sends. */
static int
store_svid(struct agent_entry *e, STACK_OF(X509) *chain, EVP_PKEY *key)
{
	struct buf	c, k;
	uint8_t		*cp = NULL, *kp = NULL;
	size_t		 cl = 0, kl = 0;
	int		 r;

	buf_init(&c, 1024 * 1024);
	buf_init(&k, PKEY_MAX_DER);
	if ((r = x509_chain_to_der(chain, &c)) == 0 &&
	    (r = pkey_to_pkcs8_der(key, &k)) == 0 &&
	    (r = buf_steal(&c, &cp, &cl)) == 0)
		r = buf_steal(&k, &kp, &kl);
	buf_cleanup(&c);
	buf_cleanup(&k);
	if (r != 0) {
		free(cp);
		return r;
	}
	free(e->chain_der);
	if (e->key_der != NULL)
		freezero(e->key_der, e->key_len);
	e->chain_der = cp;
	e->chain_len = cl;
	e->key_der = kp;
	e->key_len = kl;
	return 0;
}

static void
x509_done(int status, const char *msg, const uint8_t *p, size_t n, void *arg)
{
	struct x509_batch			*b = arg;
	struct agent				*a = b->a;
	Wick__Agent__BatchNewX509SVIDResponse	*resp = NULL;
	Wick__Agent__X509SVIDResult		*x;
	struct agent_entry			*e;
	STACK_OF(X509)				*chain;
	size_t					 i, j, issued = 0, rot = 0;
	ssize_t					 at;

	for (i = 0; i < b->n; i++)
		if ((at = find_entry(a->entries, a->nentries, b->ids[i])) >= 0)
			a->entries[at]->x509_pending = 0;
	if (status != 0) {
		log_warn("X.509-SVID batch of %zu failed: %s", b->n, msg);
		x509_batch_free(b);
		if (revoked(status, msg))
			agent_revoked(a, msg);
		return;
	}
	if ((resp = wick__agent__batch_new_x509_svidresponse__unpack(NULL, n,
	    p)) == NULL) {
		log_warn("X.509-SVID batch: malformed answer");
		x509_batch_free(b);
		return;
	}
	for (i = 0; i < resp->n_results; i++) {
		x = resp->results[i];
		for (j = 0; j < b->n; j++)
			if (b->keys[j] != NULL && strcmp(b->ids[j],
			    x->entry_id) == 0)
				break;
		if (j == b->n || (at = find_entry(a->entries, a->nentries,
		    x->entry_id)) < 0)
			continue;
		e = a->entries[at];
		if (x->status == NULL || x->status->code != 0) {
			log_warn("X.509-SVID for entry %s refused: %s", e->id,
			    x->status != NULL ? x->status->message : "");
			continue;
		}
		if (agent_chain_from_pb(x->svid, x->n_svid, &chain) != 0 ||
		    X509_check_private_key(sk_X509_value(chain, 0),
		    b->keys[j]) != 1) {
			log_warn("X.509-SVID for entry %s: bad certificate",
			    e->id);
			continue;
		}
		rot += e->chain_der != NULL;
		if (store_svid(e, chain, b->keys[j]) != 0) {
			log_warn("X.509-SVID for entry %s: cannot encode it",
			    e->id);
			sk_X509_pop_free(chain, X509_free);
			continue;
		}
		e->not_after = x509_not_after(sk_X509_value(chain, 0));
		e->rotate_at = rotate_time(x509_not_before(sk_X509_value(
		    chain, 0)), e->not_after);
		sk_X509_pop_free(chain, X509_free);
		issued++;
	}
	wick__agent__batch_new_x509_svidresponse__free_unpacked(resp, NULL);
	x509_batch_free(b);
	log_debug("%zu X.509-SVIDs issued", issued);
	agent_metrics_svids(a, TELEMETRY_SVID_X509, issued, rot);
	if (issued > 0)
		workload_notify(a);
	svid_upkeep(a);
}

static void
x509_upkeep(struct agent *a, int64_t now)
{
	Wick__Agent__BatchNewX509SVIDRequest	 req =
	    WICK__AGENT__BATCH_NEW_X509_SVIDREQUEST__INIT;
	Wick__Agent__NewX509SVIDParams		*pv, **pp;
	struct x509_batch			*b;
	struct buf				*csr;
	struct agent_entry			*e;
	size_t					 i, n = 0;

	for (i = 0; i < a->nentries && n < AGENT_MAX_CSRS; i++) {
		e = a->entries[i];
		if (!e->x509_pending && (e->chain_der == NULL || now >=
		    e->rotate_at))
			n++;
	}
	if (n == 0)
		return;
	b = xcalloc(1, sizeof(*b));
	b->a = a;
	b->ids = xcalloc(n, sizeof(*b->ids));
	b->keys = xcalloc(n, sizeof(*b->keys));
	pv = xcalloc(n, sizeof(*pv));
	pp = xcalloc(n, sizeof(*pp));
	csr = xcalloc(n, sizeof(*csr));
	for (i = 0; i < a->nentries && b->n < n; i++) {
		e = a->entries[i];
		if (e->x509_pending || (e->chain_der != NULL &&
		    now < e->rotate_at))
			continue;
		buf_init(&csr[b->n], PKEY_MAX_DER);
		if (pkey_generate(a->cfg->svid_key_type, &b->keys[b->n]) !=
		    0 || csr_make(b->keys[b->n], &csr[b->n]) != 0) {
			log_error("cannot make a key and CSR");
			break;
		}
		wick__agent__new_x509_svidparams__init(&pv[b->n]);
		pv[b->n].entry_id = e->id;
		pv[b->n].csr.data = (uint8_t *)buf_ptr(&csr[b->n]);
		pv[b->n].csr.len = buf_len(&csr[b->n]);
		pp[b->n] = &pv[b->n];
		b->ids[b->n] = xstrdup(e->id);
		e->x509_pending = 1;
		b->n++;
	}
	req.params = pp;
	req.n_params = b->n;
	if (b->n > 0 && nodeclient_call(a->nc, NODE_PATH_X509, &req.base,
	    AGENT_CALL_TIMEOUT_MS, x509_done, b) != 0) {
		log_warn("cannot ask for X.509-SVIDs: server unreachable");
		for (i = 0; i < b->n; i++) {
			ssize_t at = find_entry(a->entries, a->nentries,
			    b->ids[i]);
			if (at >= 0)
				a->entries[at]->x509_pending = 0;
		}
		x509_batch_free(b);
	} else if (b->n == 0)
		x509_batch_free(b);
	for (i = 0; i < n; i++)
		buf_cleanup(&csr[i]);
	free(csr);
	free(pv);
	free(pp);
}

/* ---- WIT-SVIDs ---------------------------------------------------------- */

struct wit_call {
	struct agent	*a;
	char		*id;
	char		*key;	/* private JWK */
};

static void
wit_done(int status, const char *msg, const uint8_t *p, size_t n, void *arg)
{
	struct wit_call			*w = arg;
	struct agent			*a = w->a;
	Wick__Agent__NewWITSVIDResponse	*resp;
	struct agent_entry		*e;
	ssize_t				 at;

	at = find_entry(a->entries, a->nentries, w->id);
	e = at >= 0 ? a->entries[at] : NULL;
	if (e != NULL)
		e->wit_pending = 0;
	if (status != 0)
		log_warn("WIT-SVID for entry %s: %s", w->id, msg);
	else if (e != NULL && (resp = wick__agent__new_witsvidresponse__unpack(
	    NULL, n, p)) != NULL) {
		free(e->wit);
		if (e->wit_key != NULL) {
			wipe(e->wit_key, strlen(e->wit_key));
			free(e->wit_key);
		}
		e->wit_key = NULL;
		if ((e->wit = strdup(resp->token)) != NULL) {
			e->wit_key = w->key;
			w->key = NULL;
		}
		agent_metrics_svids(a, TELEMETRY_SVID_WIT, 1,
		    e->wit_exp != 0);
		e->wit_exp = resp->expires_at;
		e->wit_rotate_at = rotate_time(agent_now(), resp->expires_at);
		wick__agent__new_witsvidresponse__free_unpacked(resp, NULL);
		workload_notify(a);
	}
	if (w->key != NULL) {
		wipe(w->key, strlen(w->key));
		free(w->key);
	}
	free(w->id);
	free(w);
	if (status != 0 && revoked(status, msg))
		agent_revoked(a, msg);
}

static void
wit_fetch(struct agent *a, struct agent_entry *e)
{
	Wick__Agent__NewWITSVIDRequest	 req =
	    WICK__AGENT__NEW_WITSVIDREQUEST__INIT;
	struct jose_key			*jk = NULL;
	struct wit_call			*w;
	EVP_PKEY			*key = NULL;
	json_t				*pub = NULL, *priv = NULL;
	char				*pubtext = NULL;

	if (pkey_generate(PKEY_EC_P256, &key) != 0 ||
	    jose_key_from_pkey(key, "wit", &jk) != 0 ||
	    jose_key_to_jwk(jk, 0, &pub) != 0 ||
	    jose_key_to_jwk(jk, 1, &priv) != 0)
		goto out;
	json_object_del(pub, "kid");
	json_object_del(priv, "kid");
	json_object_set_new(pub, "alg", json_string("ES256"));
	json_object_set_new(priv, "alg", json_string("ES256"));
	/* Reached from a workload's request: short of memory, no WIT now
	 * (the next upkeep tries again). */
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto out;
	w->a = a;
	w->id = strdup(e->id);
	w->key = json_dumps(priv, JSON_COMPACT | JSON_SORT_KEYS);
	pubtext = json_dumps(pub, JSON_COMPACT | JSON_SORT_KEYS);
	req.entry_id = e->id;
	req.public_jwk = pubtext;
	if (w->id != NULL && w->key != NULL && pubtext != NULL &&
	    nodeclient_call(a->nc, NODE_PATH_WIT, &req.base,
	    AGENT_CALL_TIMEOUT_MS, wit_done, w) == 0)
		e->wit_pending = 1;
	else {
		if (w->key != NULL)
			freezero(w->key, strlen(w->key));
		free(w->id);
		free(w);
	}
out:
	free(pubtext);
	json_decref(pub);
	json_decref(priv);
	jose_key_free(jk);
	EVP_PKEY_free(key);
}

void
agent_want_wit(struct agent *a, struct agent_entry *e)
{
	e->wit_wanted = 1;
	if (!e->wit_pending && (e->wit == NULL || agent_now() >=
	    e->wit_rotate_at))
		wit_fetch(a, e);
}

static void
svid_upkeep(struct agent *a)
{
	int64_t	now = agent_now();
	size_t	i;

	if (a->stopping || a->svid == NULL)
		return;
	x509_upkeep(a, now);
	for (i = 0; i < a->nentries; i++)
		if (a->entries[i]->wit_wanted)
			agent_want_wit(a, a->entries[i]);
}

/* ---- JWT-SVIDs ---------------------------------------------------------- */

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The sorted audiences, newline-joined; NULL when memory is short. */
static char *
aud_key(char **aud, size_t n)
{
	char		**s;
	struct buf	  b;
	char		 *out = NULL;
	size_t		  i, len;
	uint8_t		 *p;

	if ((s = calloc(n + 1, sizeof(*s))) == NULL)
		return NULL;
	if (n > 0)
		memcpy(s, aud, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_str);
	buf_init(&b, 1024 * 1024);
	for (i = 0; i < n; i++)
		if (buf_put_cstr(&b, s[i]) != 0 || buf_put_u8(&b, '\n') != 0)
			goto out;
	if (buf_put_u8(&b, 0) == 0 && buf_steal(&b, &p, &len) == 0)
		out = (char *)p;
out:
	buf_cleanup(&b);
	free(s);
	return out;
}

static void
jwt_cached_free(struct jwt_cached *j)
{
	free(j->entry_id);
	free(j->aud_key);
	if (j->token != NULL)
		freezero(j->token, strlen(j->token));
	free(j);
}

struct jwt_call {
	struct agent	*a;
	char		*entry_id;
	char		*aud_key;
	agent_jwt_fn	*fn;
	void		*arg;
	char		*fallback;	/* cached, still valid token */
};

static void
jwt_cache_put(struct agent *a, const char *entry_id, const char *key,
    const char *token, int64_t exp)
{
	struct jwt_cached	*j, **pp;
	int64_t			 now = agent_now();

	for (pp = &a->jwts; (j = *pp) != NULL; pp = &j->next)
		if (strcmp(j->entry_id, entry_id) == 0 && strcmp(j->aud_key,
		    key) == 0)
			break;
	if (j == NULL) {
		if (a->njwts >= AGENT_JWT_CACHE_MAX && a->jwts != NULL) {
			/* Full: drop the oldest (the list's tail). */
			for (pp = &a->jwts; (*pp)->next != NULL;
			    pp = &(*pp)->next)
				;
			j = *pp;
			*pp = NULL;
			jwt_cached_free(j);
			a->njwts--;
		}
		/* Short of memory: the token is served, not cached. */
		if ((j = calloc(1, sizeof(*j))) == NULL ||
		    (j->entry_id = strdup(entry_id)) == NULL ||
		    (j->aud_key = strdup(key)) == NULL ||
		    (j->token = strdup(token)) == NULL) {
			if (j != NULL)
				jwt_cached_free(j);
			return;
		}
		j->next = a->jwts;
		a->jwts = j;
		a->njwts++;
	} else {
		freezero(j->token, strlen(j->token));
		if ((j->token = strdup(token)) == NULL) {
			/* Keep the list whole: an expired entry is skipped. */
			j->token = NULL;
			j->exp = j->rotate_at = 0;
			return;
		}
	}
	j->exp = exp;
	j->rotate_at = now + (exp - now) / 2;
}

/* protobuf-c's copies of a JWT-SVID are wiped too. */
static void *
wiping_pb_alloc(void *arg, size_t n)
{
	return malloc(n);
}

static void
wiping_pb_free(void *arg, void *p)
{
	secret_free(p);
}

static ProtobufCAllocator wiping_pb = {
	wiping_pb_alloc, wiping_pb_free, NULL
};

static void
jwt_call_free(struct jwt_call *jc)
{
	free(jc->entry_id);
	free(jc->aud_key);
	if (jc->fallback != NULL)
		freezero(jc->fallback, strlen(jc->fallback));
	free(jc);
}

static void
jwt_done(int status, const char *msg, const uint8_t *p, size_t n, void *arg)
{
	struct jwt_call			*jc = arg;
	Wick__Agent__NewJWTSVIDResponse	*resp;

	if (status == 0 && (resp = wick__agent__new_jwtsvidresponse__unpack(
	    &wiping_pb, n, p)) != NULL) {
		jwt_cache_put(jc->a, jc->entry_id, jc->aud_key, resp->token,
		    resp->expires_at);
		agent_metrics_svids(jc->a, TELEMETRY_SVID_JWT, 1, 0);
		jc->fn(jc->arg, 0, NULL, resp->token);
		wick__agent__new_jwtsvidresponse__free_unpacked(resp,
		    &wiping_pb);
	} else if (jc->fallback != NULL) {
		log_warn("JWT-SVID from the server failed (%s); serving the "
		    "cached one", msg != NULL ? msg : "malformed answer");
		jc->fn(jc->arg, 0, NULL, jc->fallback);
	} else
		jc->fn(jc->arg, status != 0 ? status : RPC_INTERNAL,
		    msg != NULL ? msg : "malformed answer", NULL);
	jwt_call_free(jc);
}

void
agent_jwt(struct agent *a, const struct agent_entry *e, char **audience,
    size_t naudience, agent_jwt_fn *fn, void *arg)
{
	Wick__Agent__NewJWTSVIDRequest	 req =
	    WICK__AGENT__NEW_JWTSVIDREQUEST__INIT;
	struct jwt_cached		*j;
	struct jwt_call			*jc;
	char				*key;
	int64_t				 now = agent_now();

	if ((key = aud_key(audience, naudience)) == NULL) {
		fn(arg, RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	for (j = a->jwts; j != NULL; j = j->next)
		if (j->token != NULL && strcmp(j->entry_id, e->id) == 0 &&
		    strcmp(j->aud_key, key) == 0)
			break;
	if (j != NULL && now < j->rotate_at) {
		free(key);
		fn(arg, 0, NULL, j->token);
		return;
	}
	if ((jc = calloc(1, sizeof(*jc))) == NULL ||
	    (jc->entry_id = strdup(e->id)) == NULL ||
	    (j != NULL && now < j->exp &&
	    (jc->fallback = strdup(j->token)) == NULL)) {
		free(key);
		if (jc != NULL)
			jwt_call_free(jc);
		fn(arg, RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	jc->a = a;
	jc->aud_key = key;
	jc->fn = fn;
	jc->arg = arg;
	req.entry_id = e->id;
	req.audience = audience;
	req.n_audience = naudience;
	if (nodeclient_call(a->nc, NODE_PATH_JWT, &req.base,
	    AGENT_CALL_TIMEOUT_MS, jwt_done, jc) != 0)
		jwt_done(RPC_UNAVAILABLE, "the server is unreachable", NULL, 0,
		    jc);
}

/* ---- matching ----------------------------------------------------------- */

/* Order of the match index: an entry's first (smallest) selector. */
static int
cmp_first_sel(const void *x, const void *y)
{
	const struct selector *a = &(*(struct agent_entry *const *)x)->
	    selectors.sel[0];
	const struct selector *b = &(*(struct agent_entry *const *)y)->
	    selectors.sel[0];
	int c;

	if ((c = strcmp(a->type, b->type)) != 0)
		return c;
	return strcmp(a->value, b->value);
}

/*
 * An entry applies when all its selectors are the workload's, so its
 * first selector is one of them: index entries by their first selector
 * and look up only the workload's own selectors, not every entry.
 */
static void
index_entries(struct agent *a)
{
	size_t i;

	free(a->by_first);
	a->by_first = xcalloc(a->nentries + 1, sizeof(*a->by_first));
	a->nby_first = 0;
	for (i = 0; i < a->nentries; i++)
		if (a->entries[i]->selectors.n > 0)
			a->by_first[a->nby_first++] = a->entries[i];
	if (a->nby_first > 1)
		qsort(a->by_first, a->nby_first, sizeof(*a->by_first),
		    cmp_first_sel);
}

/* First index in by_first whose first selector is (type, value). */
static size_t
first_with(struct agent *a, const char *type, const char *value)
{
	const struct selector	*f;
	size_t			 lo = 0, hi = a->nby_first, mid;
	int			 c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		f = &a->by_first[mid]->selectors.sel[0];
		if ((c = strcmp(f->type, type)) == 0)
			c = strcmp(f->value, value);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
agent_match(struct agent *a, const struct selector_set *sel, int with_svid,
    struct agent_entry ***out, size_t *n)
{
	static struct log_ratelimit	  rl_hint = LOG_RATELIMIT_DEFAULT;
	struct agent_entry		**v = NULL, **nv, *e;
	const struct selector		 *ws, *f;
	size_t				  i, j, s, k = 0, cap = 0;

	*out = NULL;
	*n = 0;
	for (s = 0; s < sel->n; s++) {
		ws = &sel->sel[s];
		for (i = first_with(a, ws->type, ws->value);
		    i < a->nby_first; i++) {
			e = a->by_first[i];
			f = &e->selectors.sel[0];
			if (strcmp(f->type, ws->type) != 0 ||
			    strcmp(f->value, ws->value) != 0)
				break;
			if (!selector_set_is_subset(&e->selectors, sel) ||
			    (with_svid && e->chain_der == NULL))
				continue;
			if (k == cap) {
				cap = cap == 0 ? 16 : cap * 2;
				if ((nv = reallocarray(v, cap + 1,
				    sizeof(*v))) == NULL) {
					free(v);
					return WICK_ERR_ALLOC;
				}
				v = nv;
			}
			v[k++] = e;
		}
	}
	if (v == NULL && (v = calloc(1, sizeof(*v))) == NULL)
		return WICK_ERR_ALLOC;
	/* Duplicate hints: keep the oldest entry (then the lower ID). */
	for (i = 0; i < k; i++) {
		if (v[i] == NULL || *v[i]->hint == '\0')
			continue;
		for (j = i + 1; j < k; j++) {
			if (v[j] == NULL || strcmp(v[i]->hint, v[j]->hint) != 0)
				continue;
			if (v[j]->created_at < v[i]->created_at ||
			    (v[j]->created_at == v[i]->created_at &&
			    strcmp(v[j]->id, v[i]->id) < 0)) {
				log_warn_rl(&rl_hint, "entries %s and %s "
				    "share the hint \"%s\"; serving the older",
				    v[i]->id, v[j]->id, v[i]->hint);
				v[i] = v[j];
			}
			v[j] = NULL;
		}
	}
	for (i = j = 0; i < k; i++)
		if (v[i] != NULL)
			v[j++] = v[i];
	if (j > 1)
		qsort(v, j, sizeof(*v), cmp_entry);
	*out = v;
	*n = j;
	return 0;
}

struct bundle *
agent_bundle_for(struct agent *a, const char *td_id)
{
	char	id[SPIFFEID_MAX_TD_LEN + 16];
	size_t	i;

	if (a->bundle == NULL)
		return NULL;
	bundle_td_id(a->bundle, id, sizeof(id));
	if (strcmp(id, td_id) == 0)
		return a->bundle;
	for (i = 0; i < a->nfed; i++) {
		bundle_td_id(a->fed[i], id, sizeof(id));
		if (strcmp(id, td_id) == 0)
			return a->fed[i];
	}
	return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

static void
handle_closed(uv_handle_t *h)
{
}

/*
 * The Workload API has drained: no workload call waits for the server or
 * the container engine any more, so those go now.  Until then a call in
 * flight (a JWT-SVID being signed) could still finish.
 */
static void
workload_drained(struct agent *a)
{
	nodeclient_free(a->nc);
	a->nc = NULL;
	if (a->docker != NULL) {
		/* Waiting attestations end (CANCELLED), then its handles. */
		docker_close(a->docker, NULL, NULL);
		a->docker = NULL;
	}
}

/* The closing work runs from its own timer: agent_stop() may be called
 * from inside a callback of the channel it closes. */
static void
on_stop_timer(uv_timer_t *t)
{
	struct agent *a = t->data;

	uv_close((uv_handle_t *)&a->stop_timer, handle_closed);
	uv_close((uv_handle_t *)&a->sync_timer, handle_closed);
	telemetry_stop(a->telemetry);
	a->telemetry = NULL;
	uv_close((uv_handle_t *)&a->sighup, handle_closed);
	/* SIGINT and SIGTERM stay caught through the drain, a second one
	 * cutting it short, but no longer keep the loop running; they are
	 * closed once it has stopped (agent_run()). */
	uv_unref((uv_handle_t *)&a->sigint);
	uv_unref((uv_handle_t *)&a->sigterm);
	workload_stop(a, workload_drained);
}

/* The drain took too long (an engine or the server that does not
 * answer): whatever holds it, the process goes. */
static void
drain_limit_cb(uv_timer_t *t)
{
	log_error("still draining after %d s: exiting now",
	    AGENT_DRAIN_MAX_MS / 1000);
	_exit(1);
}

void
agent_stop(struct agent *a, int exit_code)
{
	if (a->stopping)
		return;
	a->stopping = 1;
	a->exit_code = exit_code;
	log_info("shutting down");
	svcnotify_stopping(&a->notify, "shutting down");
	uv_timer_stop(&a->sync_timer);
	uv_timer_start(&a->stop_timer, on_stop_timer, 0, 0);
	uv_timer_init(a->loop, &a->drain_limit);
	uv_timer_start(&a->drain_limit, drain_limit_cb, AGENT_DRAIN_MAX_MS, 0);
	uv_unref((uv_handle_t *)&a->drain_limit);
}

static void
on_signal(uv_signal_t *s, int signum)
{
	struct agent *a = s->data;

	if (a->stopping) {
		log_warn("second signal: closing every connection now");
		workload_stop_now(a);
		return;
	}
	agent_stop(a, 0);
}

static void
on_sighup(uv_signal_t *s, int signum)
{
	struct agent *a = s->data;

	if (!a->stopping)
		agent_reload(a);
}

static void
cleanup(struct agent *a)
{
	struct jwt_cached	*j;
	size_t			 i;

	for (i = 0; i < a->nentries; i++)
		entry_free(a->entries[i]);
	free(a->entries);
	free(a->by_first);
	for (i = 0; i < a->npending; i++)
		entry_free(a->pending[i]);
	free(a->pending);
	for (i = 0; i < a->nkeep; i++)
		free(a->keep[i]);
	free(a->keep);
	free(a->page_token);
	for (i = 0; i < a->nfed; i++)
		bundle_free(a->fed[i]);
	bundle_free(a->bundle);
	buf_cleanup(&a->bundle_der);
	while ((j = a->jwts) != NULL) {
		a->jwts = j->next;
		jwt_cached_free(j);
	}
	sk_X509_pop_free(a->svid, X509_free);
	EVP_PKEY_free(a->svid_key);
	agent_metrics_free(a);
}

/* The first call to the server: sync with the stored SVID, or attest. */
static void
first_contact(void *arg)
{
	struct agent *a = arg;

	if (a->stopping)
		return;
	if (a->svid != NULL)
		sync_now(a);
	else if (attest_start(a) != 0)
		agent_stop(a, 1);
}

int
agent_run(const struct agent_flags *flags, struct agent_config *cfg)
{
	struct agent	 a;
	uv_loop_t	 loop;
	char		 addr[300];
	int		 r;

	memset(&a, 0, sizeof(a));
	a.cfg = cfg;
	a.flags = flags;
	a.loop = &loop;
	snprintf(a.td_id, sizeof(a.td_id), "spiffe://%s", cfg->trust_domain);
	buf_init(&a.bundle_der, BUNDLE_MAX_DOC);
	umask(027);
	if (uv_loop_init(&loop) != 0)
		return 1;
	if ((r = agent_metrics_init(&a)) != 0) {
		log_error("cannot set up the metrics: %s", wick_strerror(r));
		goto out;
	}
	a.unix_opts.discover_workload_path = cfg->discover_workload_path;
	a.unix_opts.workload_size_limit = cfg->workload_size_limit;
	if (cfg->unix_attestor) {
		a.attestors[a.nattestors].name = "unix";
		a.attestors[a.nattestors].attest = attestor_unix;
		a.attestors[a.nattestors++].opts = &a.unix_opts;
	}
	if (cfg->docker_attestor && (r = docker_new(&loop,
	    &cfg->docker_opts, &a.docker)) != 0) {
		log_error("WorkloadAttestor \"docker\": %s", wick_strerror(r));
		goto out;
	}
	if ((r = check_dir("data_dir", cfg->data_dir)) != 0 ||
	    (strcmp(cfg->keymgr, "disk") == 0 && (r = check_dir(
	    "KeyManager directory", cfg->keys_dir)) != 0) ||
	    (r = agent_socket_dir(cfg->socket_path)) != 0 ||
	    (r = load_bundle(&a)) != 0)
		goto out;
	bundle_changed(&a);
	snprintf(addr, sizeof(addr), "%s:%d", cfg->server_address,
	    cfg->server_port);
	if ((r = nodeclient_new(&loop, addr, cfg->trust_domain, a.bundle->x509,
	    &a.nc)) != 0 ||
	    (r = telemetry_start(&loop, &cfg->telemetry, a.metrics,
	    "wick_agent_", agent_ready, &a, &a.telemetry)) != 0)
		goto out;
	uv_timer_init(&loop, &a.sync_timer);
	uv_timer_init(&loop, &a.stop_timer);
	a.sync_timer.data = a.stop_timer.data = &a;
	uv_signal_init(&loop, &a.sigint);
	uv_signal_init(&loop, &a.sigterm);
	uv_signal_init(&loop, &a.sighup);
	a.sigint.data = a.sigterm.data = a.sighup.data = &a;
	uv_signal_start(&a.sigint, on_signal, SIGINT);
	uv_signal_start(&a.sigterm, on_signal, SIGTERM);
	uv_signal_start(&a.sighup, on_sighup, SIGHUP);
	if (strcmp(cfg->keymgr, "memory") == 0)
		log_warn("KeyManager \"memory\" with a join token: a restart "
		    "needs a new join token");
	r = strcmp(cfg->keymgr, "disk") == 0 ? load_svid(&a) :
	    WICK_ERR_NOT_FOUND;
	if (r == 0) {
		X509 *leaf = sk_X509_value(a.svid, 0);
		char *id = NULL;

		if (x509_spiffe_id(leaf, &id, NULL) == 0) {
			snprintf(a.agent_id, sizeof(a.agent_id), "%s", id);
			free(id);
		}
		svcnotify_status(&a.notify, "syncing with %s as %s", addr,
		    a.agent_id);
	} else
		svcnotify_status(&a.notify, "attesting to %s", addr);
	/* Once the server's name is resolved (off the loop). */
	nodeclient_on_resolved(a.nc, first_contact, &a);
	log_info("wick-agent started: trust domain %s, server %s, Workload "
	    "API at %s once synced", cfg->trust_domain, addr, cfg->socket_path);
	svcnotify_start(&a.notify, &loop);
	uv_run(&loop, UV_RUN_DEFAULT);
	/* Drained: the signals kept for a second SIGTERM go too. */
	uv_close((uv_handle_t *)&a.sigint, handle_closed);
	uv_close((uv_handle_t *)&a.sigterm, handle_closed);
	if (a.stopping)
		uv_close((uv_handle_t *)&a.drain_limit, handle_closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	r = a.exit_code;
out:
	if (a.docker != NULL) {
		docker_close(a.docker, NULL, NULL);
		a.docker = NULL;
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (a.nc != NULL) {
		nodeclient_free(a.nc);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	cleanup(&a);
	if (uv_loop_close(&loop) != 0) {
		uv_run(&loop, UV_RUN_DEFAULT);
		(void)uv_loop_close(&loop);
	}
	log_info("wick-agent stopped");
	return r == 0 ? 0 : 1;
}
