/*
 * agent.c: wick-agent's life: node attestation or the stored SVID, the
 * sync loop with the server, and the upkeep of every SVID it serves.  It is
 * the manager: what it gets from the server goes into the cache (cache.h),
 * which the Workload API (workload.h) reads.  Keys are made and files
 * written on the thread pool; the loop only sends and receives.
 *
 * Files in data_dir (0700): agent_svid.pem (the agent's SVID chain),
 * bundle.json (the trust bundle, SPIFFE format); the agent's key is
 * keys_dir/agent_svid.key (0600) with KeyManager "disk", memory only with
 * "memory".  A restart with these files needs no join token.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
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
#include "na_tpm.h"
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

/* Write atomically with mode (any thread: says why, logs nothing). */
static int
write_file(const char *path, const void *p, size_t n, mode_t mode, char *why,
    size_t whylen)
{
	char	*tmp;
	int	 fd, r = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		fatal("out of memory");
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) <
	    0 || write(fd, p, n) != (ssize_t)n || fsync(fd) != 0) {
		snprintf(why, whylen, "cannot write %s: %s", tmp,
		    strerror(errno));
		r = WICK_ERR_IO;
	}
	if (fd >= 0 && close(fd) != 0 && r == 0) {
		snprintf(why, whylen, "cannot write %s: %s", tmp,
		    strerror(errno));
		r = WICK_ERR_IO;
	}
	if (r == 0 && rename(tmp, path) != 0) {
		snprintf(why, whylen, "cannot rename %s: %s", tmp,
		    strerror(errno));
		r = WICK_ERR_IO;
	}
	if (r != 0)
		(void)unlink(tmp);
	free(tmp);
	return r;
}

/*
 * Files are written (fsync: milliseconds) and removed on the thread pool,
 * one at a time in the order asked, so a later state never lands before
 * an earlier one.
 */
struct file_job {
	struct file_job	*next;
	uv_work_t	 req;
	struct agent	*a;
	char		*path;
	uint8_t		*data;		/* wiped; NULL: remove */
	size_t		 len;
	mode_t		 mode;
	int		 after_ok;	/* only if the one before was */
	const char	*fail;		/* said when it fails */
	int		 r;
	char		 why[256];
};

static void	file_next(struct agent *);

/*
 * Free pages in the heaps go back to the system (after a sync or a batch
 * of SVIDs, thousands of allocations are freed).  malloc_trim() walks
 * every heap (up to 20 ms for 10,000 SVIDs): on the thread pool, once at
 * a time; it takes the allocator's locks, so it is safe beside the loop.
 */
static void
trim_work_cb(uv_work_t *req)
{
	(void)malloc_trim(0);
}

static void
trim_after_cb(uv_work_t *req, int status)
{
	struct agent *a = req->data;

	a->trimming = 0;
}

static void
trim_memory(struct agent *a)
{
	if (a->trimming)
		return;
	a->trim_req.data = a;
	if (uv_queue_work(a->loop, &a->trim_req, trim_work_cb,
	    trim_after_cb) == 0)
		a->trimming = 1;
}

static void
file_job_free(struct file_job *j)
{
	free(j->path);
	if (j->data != NULL)
		freezero(j->data, j->len);
	free(j);
}

static void
file_work_cb(uv_work_t *req)
{
	struct file_job *j = req->data;

	if (j->data != NULL)
		j->r = write_file(j->path, j->data, j->len, j->mode, j->why,
		    sizeof(j->why));
	else
		(void)unlink(j->path);
}

static void
file_after_cb(uv_work_t *req, int status)
{
	struct file_job	*j = req->data;
	struct agent	*a = j->a;

	a->file_busy = 0;
	a->file_failed = j->r != 0;
	if (j->r != 0) {
		log_error("%s", j->why);
		if (j->fail != NULL)
			log_warn("%s", j->fail);
	}
	file_job_free(j);
	file_next(a);
}

static void
file_next(struct agent *a)
{
	struct file_job *j;

	while (!a->file_busy && (j = a->files) != NULL) {
		if ((a->files = j->next) == NULL)
			a->files_tail = NULL;
		if (j->after_ok && a->file_failed) {
			file_job_free(j);
			continue;
		}
		j->req.data = j;
		if (uv_queue_work(a->loop, &j->req, file_work_cb,
		    file_after_cb) == 0) {
			a->file_busy = 1;
			return;
		}
		/* No pool: here and now. */
		file_work_cb(&j->req);
		file_after_cb(&j->req, 0);
		return;
	}
}

/* Queue a write of a copy of p (or, p NULL, the removal of path); path
 * is taken. */
static void
file_queue(struct agent *a, char *path, const void *p, size_t n,
    mode_t mode, int after_ok, const char *fail)
{
	struct file_job *j = xcalloc(1, sizeof(*j));

	j->a = a;
	j->path = path;
	if (p != NULL) {
		j->data = xmalloc(n + 1);
		memcpy(j->data, p, n);
		j->len = n;
	}
	j->mode = mode;
	j->after_ok = after_ok;
	j->fail = fail;
	if (a->files_tail != NULL)
		a->files_tail->next = j;
	else
		a->files = j;
	a->files_tail = j;
	if (!after_ok)
		a->file_failed = 0;
	file_next(a);
}

static void
save_bundle(struct agent *a)
{
	char	*json;

	if (bundle_to_spiffe_json(cache_bundle(a->cache), &json) != 0) {
		log_warn("cannot store the trust bundle: cannot encode it");
		return;
	}
	file_queue(a, data_path(a, "bundle.json"), json, strlen(json), 0644, 0,
	    "cannot store the trust bundle");
	free(json);
}

static void
save_svid(struct agent *a, const char *fail)
{
	struct buf	 key;
	BIO		*bio = BIO_new(BIO_s_mem());
	char		*pem;
	long		 n;
	int		 i;

	if (bio == NULL) {
		log_warn("%s", fail);
		return;
	}
	for (i = 0; i < sk_X509_num(a->svid); i++)
		PEM_write_bio_X509(bio, sk_X509_value(a->svid, i));
	n = BIO_get_mem_data(bio, &pem);
	file_queue(a, data_path(a, "agent_svid.pem"), pem, (size_t)n, 0644, 0,
	    fail);
	BIO_free(bio);
	if (strcmp(a->cfg->keymgr, "disk") != 0)
		return;
	buf_init(&key, PKEY_MAX_DER * 2);
	buf_set_secret(&key);
	if (pkey_to_pkcs8_pem(a->svid_key, &key) == 0)
		file_queue(a, key_path(a), buf_ptr(&key), buf_len(&key),
		    0600, 1, fail);
	else
		log_warn("%s", fail);
	buf_cleanup(&key);
}

static void
forget_svid(struct agent *a)
{
	file_queue(a, data_path(a, "agent_svid.pem"), NULL, 0, 0, 0, NULL);
	file_queue(a, key_path(a), NULL, 0, 0, 0, NULL);
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
	struct bundle	*b = NULL;
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
	    (const char *)p, (size_t)st.st_size, &b, &why) :
	    bundle_from_pem(a->cfg->trust_domain, p, (size_t)st.st_size,
	    &b, &why);
	if (r == 0 && sk_X509_num(b->x509) == 0) {
		why = "no X.509 authorities";
		r = WICK_ERR_INVALID;
	}
	if (r != 0) {
		log_error("trust bundle %s: %s", path, why);
		bundle_free(b);
	} else
		cache_set_bundle(a->cache, b);
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
			cache_set_bundle(a->cache, b);
			if (nodeclient_set_roots(a->nc, b->x509) != 0)
				log_warn("cannot use the trust bundle for TLS");
			save_bundle(a);
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
	save_svid(a, "cannot store the agent SVID: a restart will need to "
	    "attest again");
	log_info("node attestation succeeded: this agent is %s", a->agent_id);
	svcnotify_status(&a->notify, "attested as %s, syncing", a->agent_id);
	sync_now(a);
}

/*
 * Key generation runs on the thread pool (an RSA key takes tens of
 * milliseconds): the work touches only its own request; the answer is
 * used on the loop.
 */
struct renew {
	uv_work_t	 req;
	struct agent	*a;
	int		 type;		/* enum pkey_type */
	EVP_PKEY	*key;
	struct buf	 csr;
	int		 r;
};

static void
renew_free(struct renew *rn)
{
	EVP_PKEY_free(rn->key);
	buf_cleanup(&rn->csr);
	free(rn);
}

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
		renew_free(rn);
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
		renew_free(rn);
		return;
	}
	wick__agent__renew_agent_response__free_unpacked(resp, NULL);
	set_svid(a, chain, rn->key);
	rn->key = NULL;
	renew_free(rn);
	agent_metrics_svids(a, TELEMETRY_SVID_AGENT, 1, 1);
	save_svid(a, "cannot store the renewed agent SVID");
	log_info("agent SVID renewed; next renewal at %lld",
	    (long long)a->svid_renew_at);
}

static void
renew_keygen_cb(uv_work_t *req)
{
	struct renew *rn = req->data;

	if ((rn->r = pkey_generate((enum pkey_type)rn->type,
	    &rn->key)) == 0)
		rn->r = csr_make(rn->key, &rn->csr);
}

static void
renew_keygen_after_cb(uv_work_t *req, int status)
{
	Wick__Agent__RenewAgentRequest	 rq =
	    WICK__AGENT__RENEW_AGENT_REQUEST__INIT;
	struct renew			*rn = req->data;
	struct agent			*a = rn->a;

	if (status != 0 || rn->r != 0 || a->stopping || a->nc == NULL) {
		if (status == 0 && rn->r != 0)
			log_error("agent SVID renewal: cannot make a key and "
			    "CSR: %s", wick_strerror(rn->r));
		a->renewing = 0;
		renew_free(rn);
		return;
	}
	rq.csr.data = (uint8_t *)buf_ptr(&rn->csr);
	rq.csr.len = buf_len(&rn->csr);
	if (nodeclient_call(a->nc, NODE_PATH_RENEW, &rq.base,
	    AGENT_CALL_TIMEOUT_MS, renew_done, rn) != 0) {
		a->renewing = 0;
		renew_free(rn);
	}
}

static void
renew_svid(struct agent *a)
{
	struct renew *rn;

	if (a->renewing || a->svid == NULL || agent_now() < a->svid_renew_at)
		return;
	rn = xcalloc(1, sizeof(*rn));
	rn->a = a;
	rn->type = (int)a->cfg->svid_key_type;
	rn->req.data = rn;
	buf_init(&rn->csr, PKEY_MAX_DER);
	if (uv_queue_work(a->loop, &rn->req, renew_keygen_cb,
	    renew_keygen_after_cb) != 0) {
		renew_free(rn);
		return;
	}
	a->renewing = 1;
}

/* ---- entries ------------------------------------------------------------ */

static struct cache_entry *
entry_from_pb(const Wick__Types__Entry *pb)
{
	struct cache_entry	*e = xcalloc(1, sizeof(*e));
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
	/* Held as long as the entry: no room for more (an entry of one
	 * selector would keep eight). */
	selector_set_shrink(&e->selectors);
	if (pb->n_federates_with > 0) {
		e->federates_with = xcalloc(pb->n_federates_with,
		    sizeof(*e->federates_with));
		for (i = 0; i < pb->n_federates_with; i++)
			e->federates_with[i] = xstrdup(pb->federates_with[i]);
		e->nfederates_with = pb->n_federates_with;
	}
	return e;
}

/* Move what the agent holds for an entry into its new version. */
static void
carry_over(struct cache_entry *to, struct cache_entry *from)
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

/* READY=1 (once) or the STATUS= line after a sync (svcnotify.h). */
static void
notify_synced(struct agent *a, int ready)
{
	char	s[SVCNOTIFY_MAX_STATUS];

	snprintf(s, sizeof(s), "synced at revision %lld: %zu authorized "
	    "entries, Workload API on %s", (long long)a->revision,
	    cache_count(a->cache), a->cfg->socket_path);
	if (ready)
		svcnotify_ready(&a->notify, "%s", s);
	else
		svcnotify_status(&a->notify, "%s", s);
}

/* The last page arrived: replace the entry set. */
static void
sync_apply(struct agent *a)
{
	struct cache_entry	**v, *e;
	size_t			  n = 0, i, nold = cache_count(a->cache);

	if (a->sync_full)
		a->need_full = 0;
	/* Nothing changed (the common case): keep everything as it is. */
	if (a->synced && a->npending == 0 && a->nkeep == nold) {
		for (i = 0; i < a->nkeep; i++)
			if (strcmp(a->keep[i], cache_entry_at(a->cache,
			    i)->id) != 0)
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
	for (i = 0; i < nold; i++)
		cache_entry_at(a->cache, i)->kept = 0;
	for (i = 0; i < a->npending; i++) {
		if ((e = cache_find(a->cache, a->pending[i]->id)) != NULL)
			carry_over(a->pending[i], e);
		v[n++] = a->pending[i];
	}
	for (i = 0; i < a->nkeep; i++) {
		if ((e = cache_find(a->cache, a->keep[i])) == NULL ||
		    e->kept) {
			/* Newly authorized without a change of its own (a
			 * node alias or parent moved): fetch everything. */
			a->need_full = 1;
			continue;
		}
		v[n++] = e;
		e->kept = 1;
	}
	/* What is not in v goes (carried-over SVIDs moved out first). */
	cache_set_entries(a->cache, v, n);
	a->npending = 0;
	for (i = 0; i < a->nkeep; i++)
		free(a->keep[i]);
	a->nkeep = 0;
	a->revision = a->sync_rev;
	if (!a->synced) {
		a->synced = 1;
		log_info("first sync: %zu authorized entries", n);
		if (workload_start(a->loop, &a->wl_opts, a->cache, &a->wl_ops,
		    &a->wl) != 0) {
			agent_stop(a, 1);
			return;
		}
		/* Synced and listening: workloads get their SVIDs now. */
		notify_synced(a, 1);
	}
	cache_notify(a->cache);
	svid_upkeep(a);
	/* A sync's pages and the entries replaced leave holes in the heap:
	 * give their pages back. */
	trim_memory(a);
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
		cache_set_bundle(a->cache, b);
		if (nodeclient_set_roots(a->nc, b->x509) != 0)
			log_warn("cannot use the new trust bundle for TLS");
		save_bundle(a);
		log_info("trust bundle updated to sequence %llu",
		    (unsigned long long)b->sequence);
		/* Workloads see a new CA now, before any SVID it signs (a
		 * sync that changes no entry notifies nobody else). */
		if (a->synced)
			cache_notify(a->cache);
		return;
	}
	cache_add_federated(a->cache, b);
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
		cache_clear_federated(a->cache);
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
	req.bundle_sequence = cache_bundle(a->cache) != NULL ?
	    cache_bundle(a->cache)->sequence : 0;
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
		cache_entry_free(a->pending[i]);
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

/* One result of a batch, made ready on the thread pool. */
enum x509_ready_state {
	X509_READY_NONE = 0,	/* no answer for it */
	X509_READY_OK,
	X509_READY_REFUSED,	/* msg says why */
	X509_READY_BAD,		/* not a certificate for its key */
	X509_READY_ENCODE,	/* could not be encoded */
};

struct x509_ready {
	enum x509_ready_state	 state;
	char			*msg;
	uint8_t			*chain_der;
	size_t			 chain_len;
	uint8_t			*key_der;	/* wiped */
	size_t			 key_len;
	int64_t			 not_after;
	int64_t			 rotate_at;	/* jittered, off the loop */
};

/*
 * A batch: its keys and CSRs are made on the thread pool, the call goes
 * from the loop, and the answer is parsed, checked and encoded on the
 * thread pool again (500 certificates and keys take hundreds of
 * milliseconds); only putting the results in the cache is left to the
 * loop.  The work touches nothing but the batch.
 */
struct x509_batch {
	uv_work_t	  req;
	struct agent	 *a;
	int		  type;		/* enum pkey_type */
	char		**ids;
	char		**spiffe_ids;	/* as asked: an entry changed since
					   gets no SVID of its old identity */
	EVP_PKEY	**keys;
	struct buf	 *csrs;
	size_t		  n;
	size_t		  nmade;	/* keys and CSRs made */
	int		  r;
	uint8_t		 *answer;	/* the server's, to parse */
	size_t		  nanswer;
	int		  malformed;
	struct x509_ready *ready;	/* by index of ids */
};

/* What a batch holds, freed (its keys wiped); the batch stays. */
static void
x509_batch_clear(struct x509_batch *b)
{
	struct x509_ready	*r;
	size_t			 i;

	for (i = 0; i < b->n; i++) {
		free(b->ids[i]);
		free(b->spiffe_ids[i]);
		EVP_PKEY_free(b->keys[i]);
		buf_cleanup(&b->csrs[i]);
		if (b->ready == NULL)
			continue;
		r = &b->ready[i];
		free(r->msg);
		free(r->chain_der);
		if (r->key_der != NULL)
			freezero(r->key_der, r->key_len);
	}
	free(b->ids);
	free(b->spiffe_ids);
	free(b->keys);
	free(b->csrs);
	free(b->answer);
	free(b->ready);
	b->ids = b->spiffe_ids = NULL;
	b->keys = NULL;
	b->csrs = NULL;
	b->answer = NULL;
	b->ready = NULL;
	b->n = 0;
}

static void
x509_batch_free(struct x509_batch *b)
{
	x509_batch_clear(b);
	free(b);
}

/* An answer's certificate for key i, checked, in the encodings kept. */
static void
x509_ready_one(struct x509_batch *b, size_t i, Wick__Agent__X509SVIDResult *x)
{
	struct x509_ready	*r = &b->ready[i];
	STACK_OF(X509)		*chain = NULL;
	struct buf		 c, k;
	size_t			 n;

	if (x->status == NULL || x->status->code != 0) {
		r->state = X509_READY_REFUSED;
		r->msg = strdup(x->status != NULL ? x->status->message : "");
		return;
	}
	if (agent_chain_from_pb(x->svid, x->n_svid, &chain) != 0 ||
	    X509_check_private_key(sk_X509_value(chain, 0),
	    b->keys[i]) != 1) {
		r->state = X509_READY_BAD;
		sk_X509_pop_free(chain, X509_free);
		return;
	}
	buf_init(&c, 1024 * 1024);
	buf_init(&k, PKEY_MAX_DER);
	buf_set_secret(&k);
	r->state = X509_READY_ENCODE;
	if (x509_chain_to_der(chain, &c) == 0 &&
	    pkey_to_pkcs8_der(b->keys[i], &k) == 0 &&
	    buf_steal(&c, &r->chain_der, &r->chain_len) == 0) {
		if (buf_steal(&k, &r->key_der, &n) == 0) {
			r->key_len = n;
			r->not_after = x509_not_after(sk_X509_value(chain, 0));
			r->rotate_at = rotate_time(x509_not_before(
			    sk_X509_value(chain, 0)), r->not_after);
			r->state = X509_READY_OK;
		} else {
			free(r->chain_der);
			r->chain_der = NULL;
		}
	}
	buf_cleanup(&c);
	buf_cleanup(&k);
	sk_X509_pop_free(chain, X509_free);
}

static void
x509_parse_cb(uv_work_t *req)
{
	struct x509_batch			*b = req->data;
	Wick__Agent__BatchNewX509SVIDResponse	*resp;
	Wick__Agent__X509SVIDResult		*x;
	size_t					 i, j;

	if ((resp = wick__agent__batch_new_x509_svidresponse__unpack(NULL,
	    b->nanswer, b->answer)) == NULL) {
		b->malformed = 1;
		return;
	}
	for (i = 0; i < resp->n_results; i++) {
		x = resp->results[i];
		/* In the order asked, usually. */
		if (i < b->n && b->keys[i] != NULL &&
		    strcmp(b->ids[i], x->entry_id) == 0)
			j = i;
		else
			for (j = 0; j < b->n; j++)
				if (b->keys[j] != NULL &&
				    strcmp(b->ids[j], x->entry_id) == 0)
					break;
		if (j < b->n && b->ready[j].state == X509_READY_NONE)
			x509_ready_one(b, j, x);
	}
	wick__agent__batch_new_x509_svidresponse__free_unpacked(resp, NULL);
	/* The keys are encoded now: freeing 500 of them here spares the
	 * loop milliseconds. */
	for (i = 0; i < b->n; i++) {
		EVP_PKEY_free(b->keys[i]);
		b->keys[i] = NULL;
		buf_cleanup(&b->csrs[i]);
	}
	free(b->answer);
	b->answer = NULL;
}

/* On the thread pool: what a batch done with holds (the SVIDs it
 * replaced among its results), freed away from the loop. */
static void
x509_free_cb(uv_work_t *req)
{
	x509_batch_clear(req->data);
}

static void
x509_freed_cb(uv_work_t *req, int status)
{
	struct x509_batch	*b = req->data;
	struct agent		*a = b->a;

	if (status != 0)		/* cancelled: not freed yet */
		x509_batch_clear(b);
	free(b);
	/* The batch's answer, keys and the SVIDs replaced are freed:
	 * their pages go back. */
	trim_memory(a);
}

static void
x509_parse_after_cb(uv_work_t *req, int status)
{
	struct x509_batch	*b = req->data;
	struct agent		*a = b->a;
	struct x509_ready	*r;
	struct cache_entry	*e;
	uint8_t			*p;
	size_t			 i, n, issued = 0, rot = 0;
	int			 bad = status != 0 || b->malformed;

	if (bad)
		log_warn("X.509-SVID batch: malformed answer");
	for (i = 0; i < b->n; i++) {
		if ((e = cache_find(a->cache, b->ids[i])) == NULL)
			continue;
		e->x509_pending = 0;
		r = &b->ready[i];
		if (bad || r->state == X509_READY_NONE)
			continue;
		switch (r->state) {
		case X509_READY_REFUSED:
			log_warn("X.509-SVID for entry %s refused: %s", e->id,
			    r->msg != NULL ? r->msg : "");
			continue;
		case X509_READY_BAD:
			log_warn("X.509-SVID for entry %s: bad certificate",
			    e->id);
			continue;
		case X509_READY_ENCODE:
			log_warn("X.509-SVID for entry %s: cannot encode it",
			    e->id);
			continue;
		default:
			break;
		}
		if (strcmp(e->spiffe_id, b->spiffe_ids[i]) != 0)
			continue;	/* a new identity: asked for again */
		rot += e->chain_der != NULL;
		/* The new SVID in, the old one out into the batch, which
		 * frees (and wipes) it with the rest. */
		p = e->chain_der;
		n = e->chain_len;
		e->chain_der = r->chain_der;
		e->chain_len = r->chain_len;
		r->chain_der = p;
		r->chain_len = n;
		p = e->key_der;
		n = e->key_len;
		e->key_der = r->key_der;
		e->key_len = r->key_len;
		r->key_der = p;
		r->key_len = n;
		e->not_after = r->not_after;
		e->rotate_at = r->rotate_at;
		issued++;
	}
	/* Freeing 500 SVIDs and keys held the loop for milliseconds. */
	b->req.data = b;
	if (uv_queue_work(a->loop, &b->req, x509_free_cb,
	    x509_freed_cb) != 0)
		x509_batch_free(b);
	if (bad)
		return;
	log_debug("%zu X.509-SVIDs issued", issued);
	agent_metrics_svids(a, TELEMETRY_SVID_X509, issued, rot);
	if (issued > 0)
		cache_notify(a->cache);
	svid_upkeep(a);
}

static void	x509_unmark(struct x509_batch *, size_t);

static void
x509_done(int status, const char *msg, const uint8_t *p, size_t n, void *arg)
{
	struct x509_batch	*b = arg;
	struct agent		*a = b->a;

	a->x509_inflight--;
	if (status != 0) {
		x509_unmark(b, 0);
		log_warn("X.509-SVID batch of %zu failed: %s", b->n, msg);
		x509_batch_free(b);
		if (revoked(status, msg))
			agent_revoked(a, msg);
		return;
	}
	/* Its entries stay pending until the results are in the cache. */
	if ((b->answer = malloc(n + 1)) == NULL ||
	    (b->ready = calloc(b->n, sizeof(*b->ready))) == NULL) {
		x509_unmark(b, 0);
		log_warn("X.509-SVID batch of %zu: out of memory", b->n);
		x509_batch_free(b);
		return;
	}
	if (n > 0)
		memcpy(b->answer, p, n);
	b->nanswer = n;
	b->req.data = b;
	if (uv_queue_work(a->loop, &b->req, x509_parse_cb,
	    x509_parse_after_cb) != 0) {
		/* No pool: here and now. */
		x509_parse_cb(&b->req);
		x509_parse_after_cb(&b->req, 0);
	}
}

static void	x509_upkeep(struct agent *, int64_t);

/* Entries from i on of a batch get no SVID now: the next upkeep asks. */
static void
x509_unmark(struct x509_batch *b, size_t from)
{
	struct cache_entry	*e;
	size_t			 i;

	for (i = from; i < b->n; i++)
		if ((e = cache_find(b->a->cache, b->ids[i])) != NULL)
			e->x509_pending = 0;
}

/* On the thread pool: the batch's keys and CSRs, nothing else. */
static void
x509_keygen_cb(uv_work_t *req)
{
	struct x509_batch	*b = req->data;
	size_t			 i;

	for (i = 0; i < b->n; i++) {
		if ((b->r = pkey_generate((enum pkey_type)b->type,
		    &b->keys[i])) != 0 ||
		    (b->r = csr_make(b->keys[i], &b->csrs[i])) != 0)
			break;
		b->nmade = i + 1;
	}
}

static void
x509_keygen_after_cb(uv_work_t *req, int status)
{
	Wick__Agent__BatchNewX509SVIDRequest	 rq =
	    WICK__AGENT__BATCH_NEW_X509_SVIDREQUEST__INIT;
	Wick__Agent__NewX509SVIDParams		*pv, **pp;
	struct x509_batch			*b = req->data;
	struct agent				*a = b->a;
	size_t					 i;

	a->x509_keygen = 0;
	if (status != 0)
		b->nmade = 0;
	if (b->r != 0)
		log_error("cannot make a key and CSR: %s", wick_strerror(b->r));
	if (b->nmade == 0 || a->stopping || a->nc == NULL) {
		x509_unmark(b, 0);
		x509_batch_free(b);
		return;
	}
	x509_unmark(b, b->nmade);
	pv = xcalloc(b->nmade, sizeof(*pv));
	pp = xcalloc(b->nmade, sizeof(*pp));
	for (i = 0; i < b->nmade; i++) {
		wick__agent__new_x509_svidparams__init(&pv[i]);
		pv[i].entry_id = b->ids[i];
		pv[i].csr.data = (uint8_t *)buf_ptr(&b->csrs[i]);
		pv[i].csr.len = buf_len(&b->csrs[i]);
		pp[i] = &pv[i];
	}
	rq.params = pp;
	rq.n_params = b->nmade;
	a->x509_inflight++;
	if (nodeclient_call(a->nc, NODE_PATH_X509, &rq.base,
	    AGENT_CALL_TIMEOUT_MS, x509_done, b) != 0) {
		a->x509_inflight--;
		log_warn("cannot ask for X.509-SVIDs: server unreachable");
		x509_unmark(b, 0);
		x509_batch_free(b);
		b = NULL;
	}
	free(pv);
	free(pp);
	/* While the server signs, the next batch's keys are made. */
	if (b != NULL)
		x509_upkeep(a, agent_now());
}

static void
x509_upkeep(struct agent *a, int64_t now)
{
	struct x509_batch	*b;
	struct cache_entry	*e;
	size_t			 i, cap = 0;

	/* One batch's keys at a time, and few batches at the server: the
	 * next takes what is still due. */
	if (a->x509_keygen || a->x509_inflight >= AGENT_X509_INFLIGHT)
		return;
	b = NULL;
	/* One pass: each entry is a cache miss of its own. */
	for (i = 0; i < cache_count(a->cache); i++) {
		e = cache_entry_at(a->cache, i);
		if (e->x509_pending || (e->chain_der != NULL &&
		    now < e->rotate_at))
			continue;
		if (b == NULL) {
			b = xcalloc(1, sizeof(*b));
			b->a = a;
			b->type = (int)a->cfg->svid_key_type;
			b->req.data = b;
		}
		if (b->n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if (cap > AGENT_MAX_CSRS)
				cap = AGENT_MAX_CSRS;
			b->ids = xreallocarray(b->ids, cap, sizeof(*b->ids));
			b->spiffe_ids = xreallocarray(b->spiffe_ids, cap,
			    sizeof(*b->spiffe_ids));
			b->keys = xreallocarray(b->keys, cap,
			    sizeof(*b->keys));
			b->csrs = xreallocarray(b->csrs, cap,
			    sizeof(*b->csrs));
		}
		b->keys[b->n] = NULL;
		buf_init(&b->csrs[b->n], PKEY_MAX_DER);
		b->ids[b->n] = xstrdup(e->id);
		b->spiffe_ids[b->n] = xstrdup(e->spiffe_id);
		e->x509_pending = 1;
		if (++b->n == AGENT_MAX_CSRS)
			break;
	}
	if (b == NULL)
		return;
	if (uv_queue_work(a->loop, &b->req, x509_keygen_cb,
	    x509_keygen_after_cb) != 0) {
		x509_unmark(b, 0);
		x509_batch_free(b);
		return;
	}
	a->x509_keygen = 1;
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
	struct cache_entry		*e;

	e = cache_find(a->cache, w->id);
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
		cache_notify(a->cache);
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
wit_fetch(struct agent *a, struct cache_entry *e)
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

static void
agent_want_wit(struct agent *a, struct cache_entry *e)
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
	for (i = 0; i < cache_count(a->cache); i++)
		if (cache_entry_at(a->cache, i)->wit_wanted)
			agent_want_wit(a, cache_entry_at(a->cache, i));
}

/* ---- JWT-SVIDs ---------------------------------------------------------- */

struct jwt_call {
	struct agent		*a;
	char			*entry_id;
	char			*aud_key;
	workload_jwt_done_fn	*fn;
	void			*arg;
	char			*fallback;	/* a still valid token */
};

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
		cache_jwt_put(jc->a->cache, jc->entry_id, jc->aud_key,
		    resp->token, resp->expires_at, agent_now());
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

/* A JWT-SVID for an entry and audiences: from the cache, or from the
 * server (then done runs later).  done gets the token or an error. */
static void
agent_jwt(void *arg0, const struct cache_entry *e, char **audience,
    size_t naudience, workload_jwt_done_fn *fn, void *arg)
{
	Wick__Agent__NewJWTSVIDRequest	 req =
	    WICK__AGENT__NEW_JWTSVIDREQUEST__INIT;
	struct agent			*a = arg0;
	struct jwt_call			*jc;
	const char			*token;
	char				*key;
	int				 fresh;

	if ((key = cache_aud_key(audience, naudience)) == NULL) {
		fn(arg, RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	token = cache_jwt_get(a->cache, e->id, key, agent_now(), &fresh);
	if (token != NULL && fresh) {
		free(key);
		fn(arg, 0, NULL, token);
		return;
	}
	if ((jc = calloc(1, sizeof(*jc))) == NULL ||
	    (jc->entry_id = strdup(e->id)) == NULL ||
	    (token != NULL && (jc->fallback = strdup(token)) == NULL)) {
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

static void
agent_want_wit_cb(void *arg, struct cache_entry *e)
{
	agent_want_wit(arg, e);
}

static int
agent_serving(void *arg)
{
	struct agent *a = arg;

	return a->synced && a->svid != NULL;
}

static void
agent_attested_workload(void *arg, int ok)
{
	agent_metrics_workload_attest(arg, ok);
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
workload_drained(void *arg)
{
	struct agent *a = arg;

	a->wl = NULL;
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
	workload_stop(a->wl, workload_drained, a);
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
		if (a->wl != NULL)
			workload_stop_now(a->wl);
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
	size_t i;

	for (i = 0; i < a->npending; i++)
		cache_entry_free(a->pending[i]);
	free(a->pending);
	for (i = 0; i < a->nkeep; i++)
		free(a->keep[i]);
	free(a->keep);
	free(a->page_token);
	cache_free(a->cache);
	sk_X509_pop_free(a->svid, X509_free);
	EVP_PKEY_free(a->svid_key);
	attestor_unix_cache_free(a->unix_opts.cache);
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
	char		 addr[300], why[256];
	int		 r;

	memset(&a, 0, sizeof(a));
	a.cfg = cfg;
	a.flags = flags;
	a.loop = &loop;
	snprintf(a.td_id, sizeof(a.td_id), "spiffe://%s", cfg->trust_domain);
	a.cache = cache_new();
	umask(027);
	if (uv_loop_init(&loop) != 0)
		return 1;
	if ((r = agent_metrics_init(&a)) != 0) {
		log_error("cannot set up the metrics: %s", wick_strerror(r));
		goto out;
	}
	a.unix_opts.discover_workload_path = cfg->discover_workload_path;
	a.unix_opts.workload_size_limit = cfg->workload_size_limit;
	a.unix_opts.cache = attestor_unix_cache_new();
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
	if (cfg->tpm && (r = na_tpm_load(why, sizeof(why))) != 0) {
		log_error("NodeAttestor \"tpm\": %s", why);
		goto out;
	}
	a.wl_opts.socket_path = cfg->socket_path;
	a.wl_opts.allow_unauthenticated_verifiers =
	    cfg->allow_unauthenticated_verifiers;
	a.wl_opts.foreign_claims = cfg->foreign_claims;
	a.wl_opts.nforeign_claims = cfg->nforeign_claims;
	a.wl_opts.td_id = a.td_id;
	a.wl_opts.attestors = a.attestors;
	a.wl_opts.nattestors = a.nattestors;
	a.wl_opts.docker = a.docker;
	a.wl_opts.observe = agent_metrics_wl_call;
	a.wl_opts.observe_arg = &a;
	a.wl_ops.jwt = agent_jwt;
	a.wl_ops.want_wit = agent_want_wit_cb;
	a.wl_ops.serving = agent_serving;
	a.wl_ops.attested = agent_attested_workload;
	a.wl_ops.arg = &a;
	if ((r = check_dir("data_dir", cfg->data_dir)) != 0 ||
	    (strcmp(cfg->keymgr, "disk") == 0 && (r = check_dir(
	    "KeyManager directory", cfg->keys_dir)) != 0) ||
	    (r = workload_socket_dir(cfg->socket_path)) != 0 ||
	    (r = load_bundle(&a)) != 0)
		goto out;
	snprintf(addr, sizeof(addr), "%s:%d", cfg->server_address,
	    cfg->server_port);
	if ((r = nodeclient_new(&loop, addr, cfg->trust_domain,
	    cache_bundle(a.cache)->x509,
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
