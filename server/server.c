/*
 * server.c: wick-server's life: start-up, the periodic tick, shutdown.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca.h"
#include "encode.h"
#include "entry_cache.h"
#include "log.h"
#include "tpmv.h"
#include "secpath.h"
#include "server.h"
#include "srv_metrics.h"
#include "svc.h"
#include "svcnotify.h"
#include "tls.h"
#include "x509.h"
#include "xmalloc.h"

#define BUNDLE_REFRESH_HINT	300	/* seconds, SPIRE's default */

static const char *const kind_names[CA_NKINDS] = { "x509", "jwt", "wit" };

int64_t
server_now(void)
{
	return (int64_t)time(NULL);
}

void
server_audit(struct server *srv, const char *kind, const char *actor,
    int ok, json_t *detail)
{
	server_audit_rl(srv, NULL, kind, actor, ok, detail);
}

int
server_tx_begin(struct server *srv)
{
	static struct log_ratelimit	rl = LOG_RATELIMIT_DEFAULT;
	int				r;

	/* Records left for later go first: the trail keeps the order in
	 * which things happened. */
	server_audit_flush(srv);
	if ((r = ds_tx_begin(srv->ds)) == 0)
		return 1;
	log_warn_rl(&rl, "datastore: cannot begin a transaction: %s",
	    wick_strerror(r));
	return 0;
}

int
server_tx_end(struct server *srv, int tx)
{
	static struct log_ratelimit	rl = LOG_RATELIMIT_DEFAULT;
	int				r;

	if (!tx)
		return 0;
	if ((r = ds_tx_end(srv->ds, 1)) != 0)
		log_error_rl(&rl, "datastore: a change and its audit record "
		    "were not committed: %s", wick_strerror(r));
	return r;
}

void
server_tx_abort(struct server *srv, int tx)
{
	/* Only a transaction never begun fails here: our bug. */
	if (tx && ds_tx_end(srv->ds, 0) != 0)
		log_error("datastore: no transaction to roll back");
}

/*
 * The SPIFFE ID an event is about, from its details: the agent attested,
 * the ID a token or an agent change names, the one SVID of a batch.
 */
static const char *
audit_subject(const json_t *detail)
{
	const json_t	*v, *issued;
	const char	*keys[] = { "agent", "spiffe_id", "alias" };
	size_t		 i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((v = json_object_get(detail, keys[i])) != NULL &&
		    json_is_string(v))
			return json_string_value(v);
	issued = json_object_get(detail, "issued");
	if (json_is_array(issued) && json_array_size(issued) == 1 &&
	    (v = json_object_get(json_array_get(issued, 0),
	    "spiffe_id")) != NULL && json_is_string(v))
		return json_string_value(v);
	return "";
}

/*
 * A join token in an agent ID in the details is recorded and logged by
 * its fingerprint only: whether it is still live (an entry made for an
 * agent before it attests, a token issued again) is not known here, and
 * neither trail may hold one.  The actor is the authenticated caller (an
 * agent holds its SVID because its token was spent).
 */
/*
 * An event's details as stored and logged (join tokens redacted, clean)
 * and its subject; *canonical when clean is jansson's own output.
 * detail is consumed.  WICK_ERR_ALLOC when memory is short.
 */
static int
audit_prepare(json_t *detail, char **clean, char **subject, int *canonical)
{
	char	*s;
	int	 r = 0;

	*clean = *subject = NULL;
	if (detail == NULL)
		detail = json_object();
	s = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL || svc_redact_dup(s, clean) != 0 ||
	    svc_redact_dup(audit_subject(detail), subject) != 0) {
		free(*clean);
		free(*subject);
		*clean = *subject = NULL;
		r = WICK_ERR_ALLOC;
	} else
		*canonical = strcmp(s, *clean) == 0;
	json_decref(detail);
	free(s);
	return r;
}

/* One prepared record into the datastore; failures are logged. */
static void
audit_write(struct server *srv, int64_t at, const char *kind,
    const char *actor, const char *subject, int ok, const char *clean,
    int canonical)
{
	static struct log_ratelimit	 err_rl = LOG_RATELIMIT_DEFAULT;
	int				 r;

	/* Canonical as jansson wrote it, unless a token was redacted. */
	if (canonical)
		r = ds_audit_record_canonical(srv->ds, at, kind, actor,
		    subject, ok, clean);
	else
		r = ds_audit_record(srv->ds, at, kind, actor, subject, ok,
		    clean);
	if (r == WICK_ERR_LIMIT && strlen(clean) > DS_MAX_BLOB) {
		/* Details too large to store (a batch at the request limit):
		 * the event is recorded all the same, with their digest. */
		char	sum[SHA256_HEX_LEN + 1], small[160];

		if ((r = sha256_hex(clean, strlen(clean), sum)) == 0) {
			snprintf(small, sizeof(small), "{\"detail_bytes\":%zu,"
			    "\"detail_sha256\":\"%s\",\"truncated\":true}",
			    strlen(clean), sum);
			r = ds_audit_record(srv->ds, at, kind, actor,
			    subject, ok, small);
		}
	}
	if (r != 0)
		log_error_rl(&err_rl, "audit: cannot record %s: %s", kind,
		    wick_strerror(r));
}

void
server_audit_rl(struct server *srv, struct log_ratelimit *rl,
    const char *kind, const char *actor, int ok, json_t *detail)
{
	static struct log_ratelimit	 err_rl = LOG_RATELIMIT_DEFAULT;
	char				*clean, *subject;
	int				 canonical;

	server_audit_flush(srv);	/* in order, as server_tx_begin() */
	if (audit_prepare(detail, &clean, &subject, &canonical) != 0) {
		log_error_rl(&err_rl, "audit: cannot record %s by %s: out of "
		    "memory", kind, actor);
		return;
	}
	audit_write(srv, server_now(), kind, actor, subject, ok, clean,
	    canonical);
	free(subject);
	if (rl != NULL)
		log_info_rl(rl, "audit: %s %s by %s: %s", kind, ok ? "ok" :
		    "failed", actor, clean);
	else
		log_info("audit: %s %s by %s: %s", kind, ok ? "ok" : "failed",
		    actor, clean);
	free(clean);
}

struct audit_later {
	struct audit_later	*next;
	int64_t			 at;
	const char		*kind;
	char			*actor;
	char			*subject;
	char			*clean;
	int			 ok;
	int			 canonical;
};

void
server_audit_later(struct server *srv, const char *kind, const char *actor,
    int ok, json_t *detail)
{
	static struct log_ratelimit	 err_rl = LOG_RATELIMIT_DEFAULT;
	struct audit_later		*a;

	if (srv->worker == NULL || !worker_on_thread(srv->worker)) {
		server_audit(srv, kind, actor, ok, detail);
		return;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->actor = strdup(actor)) == NULL ||
	    audit_prepare(detail, &a->clean, &a->subject,
	    &a->canonical) != 0) {
		if (a == NULL || a->actor == NULL)
			json_decref(detail);
		if (a != NULL)
			free(a->actor);
		free(a);
		log_error_rl(&err_rl, "audit: cannot record %s by %s: out of "
		    "memory", kind, actor);
		return;
	}
	a->at = server_now();
	a->kind = kind;
	a->ok = ok;
	if (srv->audit_later_tail == NULL)
		srv->audit_later_tail = &srv->audit_later;
	*srv->audit_later_tail = a;
	srv->audit_later_tail = &a->next;
	srv->naudit_later++;
	srv->audit_later_total++;
	log_info("audit: %s %s by %s: %s", kind, ok ? "ok" : "failed",
	    actor, a->clean);
}

uint64_t
server_audit_added(void *arg)
{
	return ((struct server *)arg)->audit_later_total;
}

void
server_audit_flush(void *arg)
{
	struct server		*srv = arg;
	struct audit_later	*a, *next, *list;
	size_t			 n;
	int			 tx;

	/* Only the state thread leaves records and touches the list. */
	if (srv->worker == NULL || !worker_on_thread(srv->worker) ||
	    (list = srv->audit_later) == NULL)
		return;
	n = srv->naudit_later;
	srv->audit_later = NULL;
	srv->audit_later_tail = &srv->audit_later;
	srv->naudit_later = 0;
	/* One transaction (each record a savepoint of it): one commit and
	 * one sync to disk for all of them.  A commit that fails loses
	 * them all, as each alone would have been: logged. */
	tx = server_tx_begin(srv);
	for (a = list; a != NULL; a = a->next)
		audit_write(srv, a->at, a->kind, a->actor, a->subject, a->ok,
		    a->clean, a->canonical);
	if (server_tx_end(srv, tx) != 0)
		log_error("audit: %zu records were not committed", n);
	for (a = list; a != NULL; a = next) {
		next = a->next;
		free(a->actor);
		free(a->subject);
		free(a->clean);
		free(a);
	}
}

/* ---- paths -------------------------------------------------------------- */

enum path_kind {
	PATH_DIR = 0,		/* a directory of ours, made when missing */
	PATH_PARENT,		/* the directory that holds it, the same */
	PATH_FILE,		/* a file we read and trust */
};

/* The database file, or NULL: SQLite's URIs and ":memory:" name none. */
static const char *
ds_file(const char *conn)
{
	if (strncmp(conn, "file:", 5) == 0 || strcmp(conn, ":memory:") == 0)
		return NULL;
	return conn;
}

/*
 * Every path the server trusts, checked as secpath.h says (its directories
 * made 0700) before anything is opened: a component another user owns or
 * can write is refused, naming it.
 */
static int
check_paths(const struct server_config *cfg)
{
	const struct {
		const char	*what;
		const char	*path;
		enum path_kind	 kind;
	} paths[] = {
		{ "data_dir", cfg->data_dir, PATH_DIR },
		{ "socket_path", cfg->socket_path, PATH_PARENT },
		{ "DataStore connection_string", strcmp(cfg->ds_type,
		    "sqlite3") == 0 ? ds_file(cfg->ds_conn) : NULL,
		    PATH_PARENT },
		{ "KeyManager keys_path", strcmp(cfg->keymgr, "disk") == 0 ?
		    cfg->keys_path : NULL, PATH_PARENT },
		{ "UpstreamAuthority cert_file_path", cfg->upstream_cert,
		    PATH_FILE },
		{ "UpstreamAuthority key_file_path", cfg->upstream_key,
		    PATH_FILE },
		{ "UpstreamAuthority bundle_file_path", cfg->upstream_bundle,
		    PATH_FILE },
	};
	char	why[SECPATH_MAX_WHY];
	size_t	i;
	int	r = 0;

	for (i = 0; r == 0 && i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (paths[i].path == NULL)
			continue;
		switch (paths[i].kind) {
		case PATH_DIR:
			r = secpath_mkdir(paths[i].path, 0700, why,
			    sizeof(why));
			break;
		case PATH_PARENT:
			r = secpath_mkdir_parent(paths[i].path, 0700, why,
			    sizeof(why));
			break;
		case PATH_FILE:
			r = secpath_check_file(paths[i].path, why,
			    sizeof(why));
			break;
		}
		if (r != 0)
			log_error("refusing %s %s: %s", paths[i].what,
			    paths[i].path, why);
	}
	return r;
}

/* ---- authorities and bundle --------------------------------------------- */

struct bundle_build {
	struct keymgr	*km;
	STACK_OF(X509)	*upstream_roots;
	struct bundle	*b;
	int		 r;
};

static void
add_authority(void *arg, const struct ca_authority *a)
{
	struct bundle_build	*bb = arg;
	EVP_PKEY		*key = a->key;
	char			 id[16];
	uint8_t			*der = NULL;
	int			 len, i, own = 0;

	if (bb->r != 0)
		return;
	if (a->kind == CA_KIND_X509) {
		if (bb->upstream_roots != NULL) {
			for (i = 0; i < sk_X509_num(bb->upstream_roots); i++)
				if ((bb->r = bundle_add_x509(bb->b,
				    sk_X509_value(bb->upstream_roots, i))) != 0)
					return;
			return;
		}
		bb->r = bundle_add_x509(bb->b, a->cert);
		return;
	}
	if (key == NULL) {
		snprintf(id, sizeof(id), "%s-%c", kind_names[a->kind],
		    a->slot);
		if ((bb->r = keymgr_get(bb->km, id, &key)) != 0)
			return;
		own = 1;
	}
	if ((len = i2d_PUBKEY(key, &der)) <= 0)
		bb->r = WICK_ERR_CRYPTO;
	else
		bb->r = bundle_add_key(bb->b, a->kind == CA_KIND_JWT ?
		    BUNDLE_USE_JWT : BUNDLE_USE_WIT, a->kid, der, (size_t)len,
		    a->not_after);
	OPENSSL_free(der);
	if (own)
		EVP_PKEY_free(key);
}

/*
 * The trust domain's bundle is shared by every server on the datastore,
 * each adding its own authorities.  In one transaction under the
 * datastore's write lock (SQLite BEGIN IMMEDIATE, PostgreSQL's change-log
 * lock), read the stored bundle, never a cached copy, add this server's
 * authorities, prune expired ones (of any server) and store it when that
 * changed anything: two servers never lose each other's updates.
 */
int
server_bundle_merge(struct ds *ds, const char *trust_domain,
    struct ca_manager *cam, struct keymgr *km,
    STACK_OF(X509) *upstream_roots, int64_t now, struct bundle **out,
    int *stored)
{
	struct bundle_build	 bb;
	struct bundle		*cur = NULL;
	struct buf		 packed;
	uint8_t			*data = NULL;
	size_t			 len;
	const char		*why;
	char			 td_id[SPIFFEID_MAX_TD_LEN + 16];
	int			 r, c, pruned = 0;

	*out = NULL;
	*stored = 0;
	snprintf(td_id, sizeof(td_id), "spiffe://%s", trust_domain);
	memset(&bb, 0, sizeof(bb));
	bb.km = km;
	bb.upstream_roots = upstream_roots;
	if ((r = ds_tx_begin(ds)) != 0)
		return r;
	r = ds_bundle_get(ds, td_id, &data, &len);
	if (r == 0) {
		r = bundle_unpack(data, len, &cur, &why);
		free(data);
		if (r != 0)
			log_error("stored bundle of %s: %s", td_id, why);
	} else if (r == WICK_ERR_NOT_FOUND)
		r = 0;
	if (r != 0)
		goto out;
	if (cur != NULL)
		r = bundle_dup(cur, &bb.b);
	else
		r = bundle_new(trust_domain, &bb.b);
	if (r != 0)
		goto out;
	ca_manager_foreach(cam, add_authority, &bb);
	if ((r = bb.r) != 0)
		goto out;
	bundle_prune(bb.b, now - SERVER_BUNDLE_KEEP, &pruned);
	bb.b->refresh_hint = BUNDLE_REFRESH_HINT;
	if (cur != NULL && bundle_same_content(cur, bb.b))
		goto out;
	bb.b->sequence = cur != NULL ? cur->sequence + 1 : 1;
	buf_init(&packed, BUNDLE_MAX_DOC);
	if ((r = bundle_pack(bb.b, &packed)) == 0)
		r = ds_bundle_set(ds, td_id, buf_ptr(&packed),
		    buf_len(&packed), now);
	buf_cleanup(&packed);
	if (r != 0)
		goto out;
	*stored = 1;
	bundle_free(cur);
	cur = bb.b;
	bb.b = NULL;
out:
	if ((c = ds_tx_end(ds, r == 0)) != 0 && r == 0)
		r = c;
	bundle_free(bb.b);
	if (r != 0) {
		bundle_free(cur);
		return r;
	}
	*out = cur;
	return 0;
}

/*
 * The cache served to agents follows the stored bundle: what another
 * server changed reaches this server's agents on the next tick.
 */
int
server_bundle_refresh(struct server *srv, int64_t now)
{
	struct bundle	*cur;
	int		 r, stored;

	if ((r = server_bundle_merge(srv->ds, srv->cfg->trust_domain,
	    srv->cam, srv->km, srv->upstream_roots, now, &cur, &stored)) != 0)
		return r;
	if (srv->bundle != NULL && srv->bundle->sequence == cur->sequence &&
	    bundle_same_content(srv->bundle, cur)) {
		bundle_free(cur);
		return 0;
	}
	log_info("bundle of %s is now at sequence %llu (%d X.509 "
	    "authorities, %zu JWT and %zu WIT keys)%s", srv->td_id,
	    (unsigned long long)cur->sequence, sk_X509_num(cur->x509),
	    cur->nkeys[BUNDLE_USE_JWT], cur->nkeys[BUNDLE_USE_WIT],
	    stored ? "" : ", as another server stored it");
	bundle_free(srv->bundle);
	srv->bundle = cur;
	if (srv->tls != NULL && (r = tls_ctx_set_roots(srv->tls,
	    srv->bundle->x509)) != 0)
		log_error("cannot update the agent API trust roots: %s",
		    wick_strerror(r));
	return 0;
}

static int
save_journal(struct server *srv, int64_t now)
{
	struct buf	j;
	int		r;

	buf_init(&j, CA_MANAGER_MAX_JOURNAL);
	if ((r = ca_manager_journal(srv->cam, &j)) == 0)
		r = ds_ca_journal_set(srv->ds, keymgr_server_id(srv->km),
		    buf_ptr(&j), buf_len(&j), now);
	buf_cleanup(&j);
	return r;
}

int
server_sign_x509(struct server *srv, EVP_PKEY *pub, const char *spiffe_id,
    const char *const *dns, size_t ndns, int64_t ttl, int64_t now,
    int encode_only, STACK_OF(X509) **chain)
{
	const struct ca_authority	*ca;
	struct ca_svid_params		 p;
	STACK_OF(X509)			*tail, *sk;
	X509				*leaf;
	int				 i, r;

	*chain = NULL;
	if ((ca = ca_manager_active(srv->cam, CA_KIND_X509)) == NULL)
		return WICK_ERR_UNAVAILABLE;
	memset(&p, 0, sizeof(p));
	p.spiffe_id = spiffe_id;
	p.dns_names = dns;
	p.ndns_names = ndns;
	p.now = now;
	p.ttl = ttl > 0 ? ttl : srv->cfg->x509_svid_ttl;
	p.encode_only = encode_only;
	if ((r = ca_sign_x509_svid(ca->cert, ca->key, pub, &p, &leaf)) != 0)
		return r;
	if ((sk = sk_X509_new_null()) == NULL || sk_X509_push(sk, leaf) <= 0) {
		X509_free(leaf);
		sk_X509_free(sk);
		return WICK_ERR_ALLOC;
	}
	tail = ca_manager_svid_chain(srv->cam);
	for (i = 0; tail != NULL && i < sk_X509_num(tail); i++) {
		if (!X509_up_ref(sk_X509_value(tail, i)) || sk_X509_push(sk,
		    sk_X509_value(tail, i)) <= 0) {
			sk_X509_pop_free(sk, X509_free);
			return WICK_ERR_ALLOC;
		}
	}
	*chain = sk;
	return 0;
}

/* The server's own SVID for the agent API, renewed at half its life and
 * whenever the active CA changed. */
static int
renew_server_svid(struct server *srv, int64_t now, int force)
{
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*key = NULL;
	int64_t		 na;
	int		 r;

	if (!force && srv->svid != NULL && now < srv->svid_renew_at)
		return 0;
	if ((r = pkey_generate(PKEY_EC_P256, &key)) != 0)
		return r;
	if ((r = server_sign_x509(srv, key, srv->server_id, NULL, 0,
	    srv->cfg->x509_svid_ttl, now, 0, &chain)) != 0)
		goto out;
	if ((r = tls_ctx_set_identity(srv->tls, chain, key)) != 0)
		goto out;
	X509_free(srv->svid);
	srv->svid = sk_X509_value(chain, 0);
	if (!X509_up_ref(srv->svid)) {
		srv->svid = NULL;
		r = WICK_ERR_CRYPTO;
		goto out;
	}
	na = x509_not_after(srv->svid);
	srv->svid_renew_at = now + (na - now) / 2;
	log_info("server SVID %s renewed, valid until %lld", srv->server_id,
	    (long long)na);
out:
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	return r;
}

/* READY=1 (once) or the STATUS= line while serving (svcnotify.h). */
static void
notify_serving(struct server *srv, int ready)
{
	char	s[SVCNOTIFY_MAX_STATUS];

	size_t	n;

	pthread_mutex_lock(&srv->pub_mu);
	n = srv->pub.entries;
	pthread_mutex_unlock(&srv->pub_mu);
	snprintf(s, sizeof(s), "serving: %zu registration entries, agent API "
	    "on %s:%d", n, srv->cfg->bind_address, srv->agent_port);
	if (ready)
		svcnotify_ready(&srv->notify, "%s", s);
	else
		svcnotify_status(&srv->notify, "%s", s);
}

/* What an audit record of a CA rotation compares: status and key. */
struct ca_seen {
	size_t	n;
	struct {
		enum ca_kind	 kind;
		char		 slot;
		enum ca_status	 status;
		char		 kid[CA_KID_LEN + 1];
		int64_t		 not_after;
	}	v[CA_NKINDS * 2];
};

static void
ca_seen_cb(void *arg, const struct ca_authority *a)
{
	struct ca_seen *c = arg;

	if (c->n == sizeof(c->v) / sizeof(c->v[0]))
		return;
	c->v[c->n].kind = a->kind;
	c->v[c->n].slot = a->slot;
	c->v[c->n].status = a->status;
	snprintf(c->v[c->n].kid, sizeof(c->v[c->n].kid), "%s", a->kid);
	c->v[c->n++].not_after = a->not_after;
}

/*
 * Rotate the authorities when due, persist the journal and record what
 * changed: an authority prepared (a new key), activated (now signing) or
 * retired (still in the bundle until it expires).
 */
static int
ca_tick(struct server *srv, int64_t now, int *changed)
{
	struct ca_seen	before, after;
	const char	*what;
	size_t		i, k;
	int		r, c, tx;

	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	ca_manager_foreach(srv->cam, ca_seen_cb, &before);
	if ((r = ca_manager_tick(srv->cam, now, changed)) != 0)
		return r;
	if (!*changed)
		return 0;
	/* The journal and the records of what changed, together. */
	tx = server_tx_begin(srv);
	r = save_journal(srv, now);
	ca_manager_foreach(srv->cam, ca_seen_cb, &after);
	for (i = 0; i < after.n; i++) {
		for (k = 0; k < before.n; k++)
			if (before.v[k].kind == after.v[i].kind &&
			    before.v[k].slot == after.v[i].slot)
				break;
		if (k < before.n && before.v[k].status == after.v[i].status &&
		    strcmp(before.v[k].kid, after.v[i].kid) == 0)
			continue;
		what = after.v[i].status == CA_STATUS_PREPARED ?
		    "ca.prepared" : after.v[i].status == CA_STATUS_ACTIVE ?
		    "ca.activated" : "ca.retired";
		server_audit(srv, what, "server", r == 0, json_pack(
		    "{s:s,s:s%,s:s,s:I,s:s}", "kind",
		    kind_names[after.v[i].kind], "slot", &after.v[i].slot,
		    (size_t)1, "kid", after.v[i].kid, "not_after",
		    (json_int_t)after.v[i].not_after, "trust_domain",
		    srv->td_id));
	}
	if ((c = server_tx_end(srv, tx)) != 0 && r == 0)
		r = c;
	return r;
}

/* Old audit events go in batches small enough not to hold the loop. */
#define AUDIT_PRUNE_BATCH	1000

static void
prune_audit(struct server *srv, int64_t now)
{
	size_t	n;
	int	r;

	if (srv->cfg->audit_retention <= 0)
		return;
	if ((r = ds_audit_prune(srv->ds, now - srv->cfg->audit_retention,
	    AUDIT_PRUNE_BATCH, now, &n)) != 0)
		log_error("cannot prune the audit trail: %s",
		    wick_strerror(r));
	else if (n > 0)
		log_info("pruned %zu audit events older than %lld s", n,
		    (long long)srv->cfg->audit_retention);
}

/* The periodic work, on the state thread. */
static void
tick_run(struct worker_task *t)
{
	struct server			*srv = t->arg;
	const struct ca_authority	*before, *after;
	int64_t				 now = server_now();
	size_t				 n;
	int				 changed = 0, r;


	before = ca_manager_active(srv->cam, CA_KIND_X509);
	X509 *before_cert = before != NULL ? before->cert : NULL;
	if ((r = ca_tick(srv, now, &changed)) != 0)
		log_error("CA rotation failed: %s", wick_strerror(r));
	if ((r = server_bundle_refresh(srv, now)) != 0)
		log_error("cannot refresh the bundle: %s", wick_strerror(r));
	after = ca_manager_active(srv->cam, CA_KIND_X509);
	if (before_cert != NULL && after != NULL && after->cert != before_cert)
		srv_metrics_ca_rotated(srv);
	if ((r = renew_server_svid(srv, now, after != NULL &&
	    after->cert != before_cert)) != 0)
		log_error("cannot renew the server SVID: %s",
		    wick_strerror(r));
	if (ds_join_tokens_prune(srv->ds, now, &n) == 0 && n > 0)
		log_info("pruned %zu expired join tokens", n);
	if (ds_entries_prune(srv->ds, now, &n) == 0 && n > 0)
		log_info("pruned %zu expired registration entries", n);
	/* Every server of a shared datastore prunes; the newest change
	 * always stays (the revision counter). */
	if (ds_changes_prune(srv->ds, now - srv->cfg->events_retention,
	    &n) == 0 && n > 0)
		log_debug("pruned %zu changes older than %lld s", n,
		    (long long)srv->cfg->events_retention);
	prune_audit(srv, now);
	if ((r = entry_cache_refresh(srv->cache)) != 0)
		log_error("entry cache refresh failed: %s", wick_strerror(r));
	srv_metrics_publish(srv, 1);
}

static void
tick_done(struct worker_task *t)
{
	struct server *srv = t->arg;

	srv->tick_busy = 0;
	if (!srv->stopping)
		notify_serving(srv, 0);
}

/* A tick still running when the next is due: the next is skipped. */
static void
on_tick(uv_timer_t *t)
{
	struct server *srv = t->data;

	if (srv->tick_busy || srv->stopping)
		return;
	srv->tick_busy = 1;
	srv->tick_task.run = tick_run;
	srv->tick_task.done = tick_done;
	srv->tick_task.arg = srv;
	worker_submit(srv->worker, &srv->tick_task);
}

/* rpc_server_opts.offload: every admin and agent API handler step runs
 * on the state thread. */
struct offload_task {
	struct worker_task	 t;
	struct rpc_job		*job;
};

static void
offload_run(struct worker_task *t)
{
	rpc_job_run(((struct offload_task *)t)->job);
	srv_metrics_publish(t->arg, 0);
}

static void
offload_done(struct worker_task *t)
{
	struct offload_task *o = (struct offload_task *)t;

	rpc_job_done(o->job);
	free(o);
}

static int
server_offload(void *arg, struct rpc_job *job)
{
	struct server		*srv = arg;
	struct offload_task	*o;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return WICK_ERR_ALLOC;
	o->t.run = offload_run;
	o->t.done = offload_done;
	o->t.arg = srv;
	o->job = job;
	worker_submit(srv->worker, &o->t);
	return 0;
}

/* ---- start and stop ----------------------------------------------------- */

static void
closed_cb(uv_handle_t *h)
{
	struct server *srv = h->data;

	srv->pending_close--;
}

static void
rpc_down(struct rpc_server *rs, void *arg)
{
	struct server *srv = arg;

	srv->pending_close--;
	/* Both APIs closed: no call is left for the state thread. */
	if (--srv->rpc_open == 0)
		worker_release(srv->worker);
}

/* The drain took too long: whatever holds it, the process goes.  SQLite's
 * WAL keeps the datastore consistent; the next start recovers it. */
static void
drain_limit_cb(uv_timer_t *t)
{
	log_error("still draining after %d s: exiting now",
	    SERVER_DRAIN_MAX_MS / 1000);
	_exit(1);
}

static void
stop(struct server *srv)
{
	if (srv->stopping) {
		log_warn("second signal: closing every connection now");
		if (srv->admin != NULL)
			rpc_server_shutdown_now(srv->admin);
		if (srv->agent != NULL)
			rpc_server_shutdown_now(srv->agent);
		return;
	}
	srv->stopping = 1;
	log_info("shutting down");
	telemetry_stop(srv->telemetry);
	srv->telemetry = NULL;
	svcnotify_stopping(&srv->notify, "shutting down");
	uv_timer_stop(&srv->tick);
	uv_close((uv_handle_t *)&srv->tick, closed_cb);
	uv_close((uv_handle_t *)&srv->sighup, closed_cb);
	srv->pending_close += 2;
	/* SIGINT and SIGTERM stay caught through the drain, a second one
	 * cutting it short, but no longer keep the loop running; they are
	 * closed once it has stopped (server_run()). */
	uv_unref((uv_handle_t *)&srv->sigint);
	uv_unref((uv_handle_t *)&srv->sigterm);
	uv_timer_init(srv->loop, &srv->drain_limit);
	srv->drain_limit.data = srv;
	uv_timer_start(&srv->drain_limit, drain_limit_cb, SERVER_DRAIN_MAX_MS,
	    0);
	uv_unref((uv_handle_t *)&srv->drain_limit);
	srv->rpc_open = (srv->admin != NULL) + (srv->agent != NULL);
	if (srv->rpc_open == 0)
		worker_release(srv->worker);
	if (srv->admin != NULL) {
		srv->pending_close++;
		rpc_server_shutdown(srv->admin, SERVER_GRACE_MS, rpc_down, srv);
	}
	if (srv->agent != NULL) {
		srv->pending_close++;
		rpc_server_shutdown(srv->agent, SERVER_GRACE_MS, rpc_down, srv);
	}
}

static void
on_signal(uv_signal_t *s, int signum)
{
	stop(s->data);
}

/* SIGHUP: the configuration is read and applied on the state thread,
 * where what it changes is read. */
static void
reload_run(struct worker_task *t)
{
	server_reload(t->arg);
}

static void
reload_done(struct worker_task *t)
{
	((struct server *)t->arg)->reload_busy = 0;
}

static void
on_sighup(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;

	if (srv->stopping || srv->reload_busy)
		return;
	srv->reload_busy = 1;
	srv->reload_task.run = reload_run;
	srv->reload_task.done = reload_done;
	srv->reload_task.arg = srv;
	worker_submit(srv->worker, &srv->reload_task);
}

/* Only agents of our trust domain may speak to the agent API. */
static int
verify_agent(const char *peer_id, X509 *leaf, void *arg)
{
	struct server	*srv = arg;
	struct spiffeid	 id;
	size_t		 n = strlen("/spire/agent/");

	if (peer_id == NULL || spiffeid_parse(peer_id, 0, &id, NULL) != 0 ||
	    !spiffeid_member_of(&id, srv->cfg->trust_domain) ||
	    strncmp(id.path, "/spire/agent/", n) != 0)
		return WICK_ERR_PERM;
	return 0;
}

static int
load_upstream(struct server *srv)
{
	struct server_config	*cfg = srv->cfg;
	STACK_OF(X509)		*chain = NULL;
	int			 r;

	if (cfg->upstream_cert == NULL)
		return 0;
	if ((r = x509_load_chain_file(cfg->upstream_cert, &chain)) != 0) {
		log_error("UpstreamAuthority: cannot load %s: %s",
		    cfg->upstream_cert, wick_strerror(r));
		return r;
	}
	srv->upstream_cert = sk_X509_shift(chain);
	srv->upstream_chain = chain;
	if ((r = x509_load_key_file(cfg->upstream_key, &srv->upstream_key)) !=
	    0) {
		log_error("UpstreamAuthority: cannot load key %s: %s",
		    cfg->upstream_key, wick_strerror(r));
		return r;
	}
	if (X509_check_private_key(srv->upstream_cert, srv->upstream_key) !=
	    1) {
		log_error("UpstreamAuthority: %s does not match %s",
		    cfg->upstream_key, cfg->upstream_cert);
		return WICK_ERR_CONFIG;
	}
	if (cfg->upstream_bundle != NULL)
		r = x509_load_certs_file(cfg->upstream_bundle, BUNDLE_MAX_X509,
		    &srv->upstream_roots);
	else if (sk_X509_num(chain) > 0) {
		/* The last certificate of the chain file is the root. */
		srv->upstream_roots = sk_X509_new_null();
		X509 *root = sk_X509_pop(chain);
		if (srv->upstream_roots == NULL ||
		    sk_X509_push(srv->upstream_roots, root) <= 0)
			r = WICK_ERR_ALLOC;
	} else {
		/* A self-signed upstream certificate is its own root. */
		srv->upstream_roots = sk_X509_new_null();
		if (srv->upstream_roots == NULL || !X509_up_ref(
		    srv->upstream_cert) || sk_X509_push(srv->upstream_roots,
		    srv->upstream_cert) <= 0)
			r = WICK_ERR_ALLOC;
	}
	if (r != 0)
		log_error("UpstreamAuthority: cannot load the bundle: %s",
		    wick_strerror(r));
	return r;
}

static int
start_ca(struct server *srv, int64_t now)
{
	struct server_config		*cfg = srv->cfg;
	struct ca_manager_config	 mc;
	uint8_t				*j = NULL;
	size_t				 jlen = 0;
	int				 r, changed = 0;

	memset(&mc, 0, sizeof(mc));
	mc.trust_domain = cfg->trust_domain;
	mc.ca_key_type = cfg->ca_key_type;
	mc.jwt_key_type = cfg->jwt_key_type;
	mc.ca_ttl = cfg->ca_ttl;
	mc.subject.country = (const char *const *)cfg->subject_country;
	mc.subject.ncountry = cfg->nsubject_country;
	mc.subject.organization = (const char *const *)cfg->subject_org;
	mc.subject.norganization = cfg->nsubject_org;
	mc.subject.common_name = cfg->subject_cn;
	mc.upstream_cert = srv->upstream_cert;
	mc.upstream_key = srv->upstream_key;
	mc.upstream_chain = srv->upstream_chain;
	mc.upstream_roots = srv->upstream_roots;
	r = ds_ca_journal_get(srv->ds, keymgr_server_id(srv->km), &j, &jlen);
	if (r != 0 && r != WICK_ERR_NOT_FOUND)
		return r;
	r = ca_manager_new(&mc, srv->km, j, jlen, &srv->cam);
	free(j);
	if (r != 0) {
		log_error("cannot start the CA: %s", wick_strerror(r));
		return r;
	}
	if ((r = ca_tick(srv, now, &changed)) != 0) {
		log_error("cannot prepare the CA: %s", wick_strerror(r));
		return r;
	}
	if (cfg->x509_svid_ttl > ca_manager_max_svid_ttl(srv->cam) ||
	    cfg->jwt_svid_ttl > ca_manager_max_svid_ttl(srv->cam) ||
	    cfg->agent_ttl > ca_manager_max_svid_ttl(srv->cam))
		log_warn("an SVID TTL exceeds %lld s, ca_ttl/6: rotation of "
		    "the CA will cut such SVIDs short; raise ca_ttl to 6 "
		    "times the longest SVID TTL",
		    (long long)ca_manager_max_svid_ttl(srv->cam));
	return server_bundle_refresh(srv, now);
}

static int
start_rpc(struct server *srv)
{
	struct server_config	*cfg = srv->cfg;
	struct rpc_server_opts	 opts;
	const struct rpc_method	*m;
	size_t			 n;
	int			 r;

	/* One budget of request bytes for both APIs (rpc.h). */
	srv->rpc_budget.max = RPC_DEFAULT_BUDGET;
	memset(&opts, 0, sizeof(opts));
	opts.budget = &srv->rpc_budget;
	opts.offload = server_offload;
	opts.offload_arg = srv;
	if ((r = admin_api_methods(srv, &m, &n)) != 0 ||
	    (r = rpc_server_new(srv->loop, &opts, m, n, &srv->admin)) != 0)
		return r;
	if ((r = rpc_server_listen_unix(srv->admin, cfg->socket_path,
	    0600)) != 0) {
		log_error("cannot listen on %s: %s", cfg->socket_path,
		    wick_strerror(r));
		return r;
	}
	if ((r = tls_ctx_new(TLS_ROLE_SERVER, TLS_PEER_CERT_OPTIONAL,
	    &srv->tls)) != 0 || (r = tls_ctx_set_roots(srv->tls,
	    srv->bundle->x509)) != 0)
		return r;
	tls_ctx_set_verify(srv->tls, verify_agent, srv);
	if ((r = renew_server_svid(srv, server_now(), 1)) != 0)
		return r;
	/*
	 * Agents are counted by SPIFFE ID (a few connections each); peers
	 * without a certificate by address, with the anonymous limits
	 * (rpc.h): AttestAgent only, one call at a time, small messages.
	 */
	opts.known.max_conns = SERVER_AGENT_CONNS;
	opts.observe = srv_metrics_api_call;
	opts.observe_arg = srv;
	opts.on_loop = agent_api_on_loop;
	opts.on_loop_arg = srv;
	if ((r = agent_api_methods(srv, &m, &n)) != 0 ||
	    (r = rpc_server_new(srv->loop, &opts, m, n, &srv->agent)) != 0)
		return r;
	if ((r = rpc_server_listen_tcp(srv->agent, cfg->bind_address,
	    cfg->bind_port, srv->tls, &srv->agent_port)) != 0) {
		log_error("cannot listen on %s:%d: %s", cfg->bind_address,
		    cfg->bind_port, wick_strerror(r));
		return r;
	}
	return 0;
}

static void
cleanup(struct server *srv)
{
	if (srv->admin != NULL)
		rpc_server_free(srv->admin);
	if (srv->agent != NULL)
		rpc_server_free(srv->agent);
	srv_metrics_free(srv);
	tls_ctx_free(srv->tls);
	X509_free(srv->svid);
	tpmv_config_free(srv->tpm);
	entry_cache_free(srv->cache);
	bundle_free(srv->bundle);
	ca_manager_free(srv->cam);
	keymgr_free(srv->km);
	ds_close(srv->ds);
	X509_free(srv->upstream_cert);
	EVP_PKEY_free(srv->upstream_key);
	sk_X509_pop_free(srv->upstream_chain, X509_free);
	sk_X509_pop_free(srv->upstream_roots, X509_free);
}

int
server_run(const struct server_flags *flags, struct server_config *cfg)
{
	struct server	 srv;
	uv_loop_t	 loop;
	const char	*why = NULL;
	int64_t		 now = server_now();
	cpu_set_t	 cpus;
	long		 ncpu;
	size_t		 i;
	int		 r;

	memset(&srv, 0, sizeof(srv));
	if (pthread_mutex_init(&srv.pub_mu, NULL) != 0) {
		log_error("cannot initialise a mutex");
		return 1;
	}
	srv.cfg = cfg;
	srv.flags = flags;
	srv.loop = &loop;
	snprintf(srv.td_id, sizeof(srv.td_id), "spiffe://%s",
	    cfg->trust_domain);
	snprintf(srv.server_id, sizeof(srv.server_id),
	    "spiffe://%s/spire/server", cfg->trust_domain);
	umask(077);
	if ((r = uv_loop_init(&loop)) != 0) {
		log_error("uv_loop_init: %s", uv_strerror(r));
		return 1;
	}
	if ((r = check_paths(cfg)) != 0)
		goto out;
	if ((r = ds_open(cfg->ds_type, cfg->ds_conn, &srv.ds, &why)) != 0) {
		log_error("datastore %s: %s", ds_conn_shown(cfg->ds_type,
		    cfg->ds_conn),
		    why != NULL ? why : wick_strerror(r));
		goto out;
	}
	if (strcmp(cfg->keymgr, "disk") == 0) {
		r = keymgr_open_disk(cfg->keys_path, &srv.km, &why);
	} else {
		log_warn("KeyManager \"memory\": the CA and signing keys are "
		    "lost on restart; agents will need new trust bundles");
		r = keymgr_open_memory(&srv.km);
	}
	if (r == 0 && (r = keymgr_keep_server_id(srv.km)) != 0)
		why = "cannot write the server ID into the key file";
	if (r != 0) {
		log_error("KeyManager: %s", why != NULL ? why :
		    wick_strerror(r));
		goto out;
	}
	if (cfg->tpm) {
		char tpm_why[TPMV_MAX_WHY];

		if ((r = tpmv_config_load(cfg->tpm_ca_path,
		    cfg->tpm_hash_path, cfg->tpm_pcrs, &srv.tpm, tpm_why,
		    sizeof(tpm_why))) != 0) {
			log_error("NodeAttestor \"tpm\": %s", tpm_why);
			goto out;
		}
	}
	if ((r = load_upstream(&srv)) != 0 || (r = start_ca(&srv, now)) != 0)
		goto out;
	if ((r = entry_cache_new(srv.ds, &srv.cache)) != 0) {
		log_error("cannot load registration entries: %s",
		    wick_strerror(r));
		goto out;
	}
	if ((r = srv_metrics_init(&srv)) != 0) {
		log_error("cannot set up the metrics: %s", wick_strerror(r));
		goto out;
	}
	/* Still alone: published before the state thread takes over. */
	srv_metrics_publish(&srv, 1);
	if ((r = worker_start(&loop, &srv.worker)) != 0)
		goto out;
	worker_set_flush(srv.worker, server_audit_added, server_audit_flush,
	    &srv);
	/* One signing thread per other core the process may run on (its
	 * affinity, not the machine's count): batches use every core. */
	ncpu = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ?
	    CPU_COUNT(&cpus) : sysconf(_SC_NPROCESSORS_ONLN);
	if ((r = par_new(ncpu > 1 ? (int)ncpu - 1 : 0, &srv.par)) != 0)
		goto out;
	if ((r = start_rpc(&srv)) != 0 ||
	    (r = telemetry_start(&loop, &cfg->telemetry, srv.metrics,
	    "wick_server_", srv_ready, &srv, &srv.telemetry)) != 0)
		goto out;
	uv_timer_init(&loop, &srv.tick);
	srv.tick.data = &srv;
	uv_timer_start(&srv.tick, on_tick, SERVER_TICK_MS, SERVER_TICK_MS);
	uv_signal_init(&loop, &srv.sigint);
	uv_signal_init(&loop, &srv.sigterm);
	uv_signal_init(&loop, &srv.sighup);
	srv.sigint.data = srv.sigterm.data = srv.sighup.data = &srv;
	uv_signal_start(&srv.sigint, on_signal, SIGINT);
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv.sighup, on_sighup, SIGHUP);
	log_info("wick-server started: trust domain %s, agent API on %s:%d, "
	    "admin API on %s, %zu registration entries", cfg->trust_domain,
	    cfg->bind_address, srv.agent_port, cfg->socket_path,
	    srv.pub.entries);
	/* Both sockets listen (start_rpc()): clients may connect now. */
	notify_serving(&srv, 1);
	svcnotify_start(&srv.notify, &loop);
	uv_run(&loop, UV_RUN_DEFAULT);
	/* Drained: no call is left, so the state thread goes, then the
	 * signals kept for a second SIGTERM. */
	worker_stop(srv.worker);
	srv.worker = NULL;
	uv_close((uv_handle_t *)&srv.sigint, closed_cb);
	uv_close((uv_handle_t *)&srv.sigterm, closed_cb);
	srv.pending_close += 2;
	if (srv.stopping) {
		uv_close((uv_handle_t *)&srv.drain_limit, closed_cb);
		srv.pending_close++;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	r = 0;
out:
	if (!srv.stopping)
		worker_release(srv.worker);
	if (!srv.stopping && (srv.admin != NULL || srv.agent != NULL)) {
		telemetry_stop(srv.telemetry);
		srv.telemetry = NULL;
		if (srv.admin != NULL)
			rpc_server_shutdown(srv.admin, 0, NULL, NULL);
		if (srv.agent != NULL)
			rpc_server_shutdown(srv.agent, 0, NULL, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (srv.worker != NULL) {
		worker_stop(srv.worker);
		srv.worker = NULL;
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	cleanup(&srv);
	par_free(srv.par);
	for (i = 0; i < sizeof(srv.csr_ver) / sizeof(srv.csr_ver[0]); i++)
		csr_verifier_free(srv.csr_ver[i]);
	pthread_mutex_destroy(&srv.pub_mu);
	if (uv_loop_close(&loop) != 0) {
		uv_run(&loop, UV_RUN_DEFAULT);
		(void)uv_loop_close(&loop);
	}
	if (r == 0 && cfg->socket_path != NULL)
		(void)unlink(cfg->socket_path);
	log_info("wick-server stopped");
	return r == 0 ? 0 : 1;
}
