/*
 * ca_manager.c: the X.509 CA, JWT and WIT signing keys, their two slots
 * each, and the rotation rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca_manager.h"
#include "log.h"
#include "spiffeid.h"
#include "x509.h"
#include "xmalloc.h"

#define JOURNAL_VERSION	1

static const char *const kind_names[CA_NKINDS] = { "x509", "jwt", "wit" };

struct ca_manager {
	char			*td;
	enum pkey_type		 ca_key_type;
	enum pkey_type		 jwt_key_type;
	int64_t			 ca_ttl;
	char			**country;
	size_t			 ncountry;
	char			**org;
	size_t			 norg;
	char			*cn;
	X509			*up_cert;
	EVP_PKEY		*up_key;
	STACK_OF(X509)		*up_chain;
	struct keymgr		*km;
	struct ca_authority	 a[CA_NKINDS][2];
	STACK_OF(X509)		*svid_chain;
};

static char **
dup_list(const char *const *v, size_t n)
{
	char	**out = xcalloc(n + 1, sizeof(*out));
	size_t	  i;

	for (i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

static void
free_list(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static void
clear_authority(struct ca_authority *a)
{
	X509_free(a->cert);
	EVP_PKEY_free(a->key);
	ca_svid_signer_free(a->signer);
	jose_key_free(a->jkey);
	memset(a, 0, sizeof(*a));
}

static void
key_id(enum ca_kind kind, char slot, char out[16])
{
	snprintf(out, 16, "%s-%c", kind_names[kind], slot);
}

/* CA_KID_LEN characters [A-Za-z0-9], uniform (bytes >= 248 are redrawn). */
static int
random_kid(char out[CA_KID_LEN + 1])
{
	static const char alnum[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t	b[CA_KID_LEN];
	size_t	i, n = 0;

	while (n < CA_KID_LEN) {
		if (RAND_bytes(b, sizeof(b)) != 1)
			return WICK_ERR_CRYPTO;
		for (i = 0; i < sizeof(b) && n < CA_KID_LEN; i++)
			if (b[i] < 248)
				out[n++] = alnum[b[i] % 62];
	}
	out[CA_KID_LEN] = '\0';
	return 0;
}

static int
kid_ok(const char *kid)
{
	size_t i, n = strlen(kid);

	if (n == 0 || n > CA_KID_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!((kid[i] >= 'a' && kid[i] <= 'z') || (kid[i] >= 'A' &&
		    kid[i] <= 'Z') || (kid[i] >= '0' && kid[i] <= '9')))
			return 0;
	return 1;
}

/* Push c (one more reference) unless the stack has it already. */
static void
chain_add(STACK_OF(X509) *sk, X509 *c)
{
	int i;

	for (i = 0; i < sk_X509_num(sk); i++)
		if (X509_cmp(sk_X509_value(sk, i), c) == 0)
			return;
	/* The stack's reference; sk_X509_pop_free drops it. */
	if (!X509_up_ref(c))
		fatal("reference counting failed");
	if (sk_X509_push(sk, c) <= 0)
		fatal("out of memory");
}

static int
self_signed(X509 *c)
{
	return X509_check_issued(c, c) == X509_V_OK;
}

/*
 * The chain that follows SVIDs signed by the active X.509 CA: our
 * intermediate, the upstream certificate unless it is a root, then the
 * upstream chain without roots (the bundle carries those).
 */
static void
rebuild_svid_chain(struct ca_manager *m)
{
	const struct ca_authority	*act = ca_manager_active(m,
	    CA_KIND_X509);
	X509				*c;
	int				 i;

	sk_X509_pop_free(m->svid_chain, X509_free);
	if ((m->svid_chain = sk_X509_new_null()) == NULL)
		fatal("out of memory");
	if (m->up_cert == NULL || act == NULL)
		return;
	chain_add(m->svid_chain, act->cert);
	if (!self_signed(m->up_cert))
		chain_add(m->svid_chain, m->up_cert);
	for (i = 0; i < sk_X509_num(m->up_chain); i++)
		if (!self_signed(c = sk_X509_value(m->up_chain, i)))
			chain_add(m->svid_chain, c);
}

/* A new authority in slot si (replacing what was there), PREPARED. */
static int
prepare(struct ca_manager *m, enum ca_kind kind, int si, int64_t now)
{
	struct ca_authority	 a;
	struct ca_subject	 subj;
	char			 id[16], *skid = NULL;
	int			 r;

	memset(&a, 0, sizeof(a));
	a.kind = kind;
	a.slot = si == 0 ? 'A' : 'B';
	key_id(kind, a.slot, id);
	if ((r = keymgr_generate(m->km, id, kind == CA_KIND_X509 ?
	    m->ca_key_type : m->jwt_key_type, &a.key)) != 0)
		goto out;
	if (kind == CA_KIND_X509) {
		subj.country = (const char *const *)m->country;
		subj.ncountry = m->ncountry;
		subj.organization = (const char *const *)m->org;
		subj.norganization = m->norg;
		subj.common_name = m->cn;
		r = m->up_cert != NULL ? ca_make_intermediate(a.key, m->td,
		    &subj, m->up_cert, m->up_key, now, m->ca_ttl, &a.cert) :
		    ca_make_root(a.key, m->td, &subj, now, m->ca_ttl, &a.cert);
		if (r != 0 || (r = ca_skid_hex(a.cert, &skid)) != 0)
			goto out;
		a.not_before = x509_not_before(a.cert);
		a.not_after = x509_not_after(a.cert);
		snprintf(a.kid, sizeof(a.kid), "%s", skid);
	} else {
		if ((r = random_kid(a.kid)) != 0 ||
		    (r = jose_key_from_pkey(a.key, a.kid, &a.jkey)) != 0)
			goto out;
		a.not_before = now;
		a.not_after = now + m->ca_ttl;
	}
	a.status = CA_STATUS_PREPARED;
	clear_authority(&m->a[kind][si]);
	m->a[kind][si] = a;
	log_info("ca authority prepared kind=%s slot=%c kid=%s not_before=%lld "
	    "not_after=%lld", kind_names[kind], a.slot, a.kid,
	    (long long)a.not_before, (long long)a.not_after);
out:
	free(skid);
	if (r != 0)
		clear_authority(&a);
	return r;
}

static void
activate(struct ca_manager *m, enum ca_kind kind, int si)
{
	struct ca_authority *other = &m->a[kind][1 - si];

	if (other->status == CA_STATUS_ACTIVE)
		other->status = CA_STATUS_OLD;
	m->a[kind][si].status = CA_STATUS_ACTIVE;
	log_info("ca authority activated kind=%s slot=%c kid=%s",
	    kind_names[kind], m->a[kind][si].slot, m->a[kind][si].kid);
	if (kind == CA_KIND_X509)
		rebuild_svid_chain(m);
}

static int64_t
min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int
tick_kind(struct ca_manager *m, enum ca_kind kind, int64_t now, int *changed)
{
	int	act = -1, prep = -1, i, r;
	int64_t	life;

	for (i = 0; i < 2; i++) {
		if (m->a[kind][i].status == CA_STATUS_ACTIVE)
			act = i;
		else if (m->a[kind][i].status == CA_STATUS_PREPARED)
			prep = i;
	}
	/* Nothing usable (first start, or down past the active's end). */
	if (act < 0 || m->a[kind][act].not_after <= now) {
		if (prep < 0 || m->a[kind][prep].not_after <= now) {
			/* Never leave an expired PREPARED one behind. */
			prep = prep >= 0 ? prep : act >= 0 ? 1 - act : 0;
			if ((r = prepare(m, kind, prep, now)) != 0)
				return r;
		}
		activate(m, kind, prep);
		*changed = 1;
		return 0;
	}
	life = m->a[kind][act].not_after - m->a[kind][act].not_before;
	if (prep < 0 && now > m->a[kind][act].not_after - min64(life / 2,
	    CA_PREPARE_MAX)) {
		prep = 1 - act;
		if ((r = prepare(m, kind, prep, now)) != 0)
			return r;
		*changed = 1;
	}
	if (prep >= 0 && now > m->a[kind][act].not_after - min64(life / 6,
	    CA_ACTIVATE_MAX)) {
		activate(m, kind, prep);
		*changed = 1;
	}
	return 0;
}

int
ca_manager_tick(struct ca_manager *m, int64_t now, int *changed)
{
	int k, r = 0, c = 0;

	for (k = 0; k < CA_NKINDS && r == 0; k++)
		if ((r = tick_kind(m, (enum ca_kind)k, now, &c)) != 0)
			log_error("%s authority rotation failed: %s",
			    kind_names[k], wick_strerror(r));
	/* Set on failure too: what changed before it must be saved. */
	if (changed != NULL)
		*changed = c;
	return r;
}

const struct ca_authority *
ca_manager_active(const struct ca_manager *m, enum ca_kind kind)
{
	int i;

	for (i = 0; i < 2; i++)
		if (m->a[kind][i].status == CA_STATUS_ACTIVE)
			return &m->a[kind][i];
	return NULL;
}

const struct ca_svid_signer *
ca_manager_svid_signer(struct ca_manager *m)
{
	struct ca_authority	*a = NULL;
	int			 i;

	for (i = 0; i < 2; i++)
		if (m->a[CA_KIND_X509][i].status == CA_STATUS_ACTIVE)
			a = &m->a[CA_KIND_X509][i];
	if (a == NULL || a->cert == NULL || a->key == NULL)
		return NULL;
	/* Not EC: tried again next time, which costs a type check. */
	if (a->signer == NULL &&
	    ca_svid_signer_new(a->cert, a->key, &a->signer) != 0)
		a->signer = NULL;
	return a->signer;
}

void
ca_manager_foreach(const struct ca_manager *m, ca_authority_fn *fn,
    void *arg)
{
	int k, i;

	for (k = 0; k < CA_NKINDS; k++)
		for (i = 0; i < 2; i++)
			if (m->a[k][i].status != CA_STATUS_NONE)
				fn(arg, &m->a[k][i]);
}

STACK_OF(X509) *
ca_manager_svid_chain(const struct ca_manager *m)
{
	return m->svid_chain;
}

int64_t
ca_manager_max_svid_ttl(const struct ca_manager *m)
{
	return min64(m->ca_ttl / 6, CA_ACTIVATE_MAX);
}

/* ---- the journal ------------------------------------------------------- */

/*
 * {"version":1,"authorities":[{"kind":"x509"|"jwt"|"wit","slot":"A"|"B",
 *  "status":2|3|4,"not_before":<unix>,"not_after":<unix>,"kid":"...",
 *  "cert":"<base64 DER>" (x509 only)}, ...]}
 */

static json_t *
journal_entry(const struct ca_authority *a)
{
	json_t	*o;
	uint8_t	*der = NULL;
	char	*b64;
	int	 len;

	if ((o = json_pack("{s:s,s:s#,s:i,s:I,s:I,s:s}", "kind",
	    kind_names[a->kind], "slot", &a->slot, 1, "status",
	    (int)a->status, "not_before", (json_int_t)a->not_before,
	    "not_after", (json_int_t)a->not_after, "kid", a->kid)) == NULL)
		return NULL;
	if (a->cert == NULL)
		return o;
	if ((len = i2d_X509(a->cert, &der)) <= 0) {
		json_decref(o);
		return NULL;
	}
	b64 = xmalloc(4 * (((size_t)len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, der, len);
	OPENSSL_free(der);
	if (json_object_set_new(o, "cert", json_string(b64)) != 0) {
		json_decref(o);
		o = NULL;
	}
	free(b64);
	return o;
}

int
ca_manager_journal(const struct ca_manager *m, struct buf *out)
{
	json_t	*doc, *list, *o;
	char	*s;
	int	 k, i, r;

	if ((doc = json_pack("{s:i,s:[]}", "version", JOURNAL_VERSION,
	    "authorities")) == NULL)
		return WICK_ERR_ALLOC;
	list = json_object_get(doc, "authorities");
	for (k = 0; k < CA_NKINDS; k++)
		for (i = 0; i < 2; i++) {
			if (m->a[k][i].status == CA_STATUS_NONE)
				continue;
			if ((o = journal_entry(&m->a[k][i])) == NULL ||
			    json_array_append_new(list, o) != 0) {
				json_decref(doc);
				return WICK_ERR_ALLOC;
			}
		}
	s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (s == NULL)
		return WICK_ERR_ALLOC;
	r = buf_put_cstr(out, s);
	free(s);
	return r;
}

/* The journal's base64 DER certificate, exactly one, no trailing bytes. */
static int
journal_cert(json_t *o, X509 **out)
{
	const char	*b64;
	const uint8_t	*q;
	uint8_t		*der;
	size_t		 blen;
	int		 len, r = WICK_ERR_INVALID;

	*out = NULL;
	if ((b64 = json_string_value(json_object_get(o, "cert"))) == NULL ||
	    (blen = strlen(b64)) == 0 || blen % 4 != 0)
		return WICK_ERR_INVALID;
	if (blen > 4 * ((X509_MAX_CERT_DER + 2) / 3))
		return WICK_ERR_LIMIT;
	der = xmalloc(blen / 4 * 3);
	if ((len = EVP_DecodeBlock(der, (const unsigned char *)b64,
	    (int)blen)) > 0) {
		/* EVP_DecodeBlock counts the padding as zero bytes. */
		len -= (b64[blen - 1] == '=') + (b64[blen - 2] == '=');
		q = der;
		if ((*out = d2i_X509(NULL, &q, len)) != NULL && q == der + len)
			r = 0;
		else {
			X509_free(*out);
			*out = NULL;
		}
	}
	free(der);
	ERR_clear_error();
	return r;
}

/* Drop what tmp holds but keep its kind, slot and status. */
static void
drop(struct ca_authority *tmp, int *keep)
{
	struct ca_authority save = *tmp;

	clear_authority(tmp);
	tmp->kind = save.kind;
	tmp->slot = save.slot;
	tmp->status = save.status;
	*keep = 0;
}

/*
 * One journal entry into tmp; *keep is 0 when the authority is dropped
 * (key gone or not matching, another upstream), its kind, slot and status
 * still set.
 */
static int
load_one(struct ca_manager *m, json_t *o, struct ca_authority *tmp,
    int *keep)
{
	const char	*kind, *slot, *kid;
	json_int_t	 status, nb, na;
	char		 id[16];
	int		 k, r;

	memset(tmp, 0, sizeof(*tmp));
	*keep = 1;
	if (!json_is_object(o) || json_unpack(o, "{s:s,s:s,s:I,s:I,s:I,s:s}",
	    "kind", &kind, "slot", &slot, "status", &status, "not_before", &nb,
	    "not_after", &na, "kid", &kid) != 0)
		return WICK_ERR_INVALID;
	for (k = 0; k < CA_NKINDS && strcmp(kind_names[k], kind) != 0; k++)
		;
	if (k == CA_NKINDS || (strcmp(slot, "A") != 0 && strcmp(slot, "B") !=
	    0) || (status != CA_STATUS_PREPARED && status != CA_STATUS_ACTIVE &&
	    status != CA_STATUS_OLD) || !kid_ok(kid) || na <= nb)
		return WICK_ERR_INVALID;
	tmp->kind = (enum ca_kind)k;
	tmp->slot = slot[0];
	tmp->status = (enum ca_status)status;
	tmp->not_before = nb;
	tmp->not_after = na;
	snprintf(tmp->kid, sizeof(tmp->kid), "%s", kid);
	if (k == CA_KIND_X509) {
		if ((r = journal_cert(o, &tmp->cert)) != 0)
			return r;
		if (x509_not_before(tmp->cert) != nb ||
		    x509_not_after(tmp->cert) != na) {
			clear_authority(tmp);
			return WICK_ERR_INVALID;
		}
	}
	key_id(tmp->kind, tmp->slot, id);
	if (keymgr_get(m->km, id, &tmp->key) != 0) {
		log_warn("CA journal: key %s is missing from the key manager; "
		    "that authority is dropped", id);
		drop(tmp, keep);
		return 0;
	}
	if (k != CA_KIND_X509) {
		if ((r = jose_key_from_pkey(tmp->key, tmp->kid,
		    &tmp->jkey)) != 0)
			clear_authority(tmp);
		return r;
	}
	if (!pkey_public_equal(X509_get0_pubkey(tmp->cert), tmp->key)) {
		log_warn("CA journal: key %s does not match its certificate; "
		    "that authority is dropped", id);
		drop(tmp, keep);
	} else if (m->up_cert != NULL ? X509_check_issued(m->up_cert,
	    tmp->cert) != X509_V_OK : !self_signed(tmp->cert)) {
		log_warn("CA journal: X.509 authority %c was issued under "
		    "another upstream authority; it is dropped", tmp->slot);
		drop(tmp, keep);
	}
	return 0;
}

static int
load_journal(struct ca_manager *m, const uint8_t *p, size_t len)
{
	struct ca_authority	 tmp;
	enum ca_status		 seen[CA_NKINDS][2];
	json_error_t		 jerr;
	json_t			*doc, *list, *o, *v;
	size_t			 i;
	int			 k, si, keep, r = WICK_ERR_INVALID;

	if (len > CA_MANAGER_MAX_JOURNAL) {
		log_error("CA journal is larger than %d bytes",
		    CA_MANAGER_MAX_JOURNAL);
		return WICK_ERR_LIMIT;
	}
	if ((doc = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		log_error("CA journal is not JSON: %s", jerr.text);
		return WICK_ERR_INVALID;
	}
	if (!json_is_object(doc) || !json_is_integer(v = json_object_get(doc,
	    "version"))) {
		log_error("CA journal has no version");
		goto out;
	}
	if (json_integer_value(v) != JOURNAL_VERSION) {
		log_error("CA journal version %lld is not supported (want %d)",
		    (long long)json_integer_value(v), JOURNAL_VERSION);
		r = WICK_ERR_UNSUPPORTED;
		goto out;
	}
	if (!json_is_array(list = json_object_get(doc, "authorities")) ||
	    json_array_size(list) > 2 * CA_NKINDS) {
		log_error("CA journal: \"authorities\" is not an array of at "
		    "most %d entries", 2 * CA_NKINDS);
		goto out;
	}
	memset(seen, 0, sizeof(seen));
	json_array_foreach(list, i, o) {
		if ((r = load_one(m, o, &tmp, &keep)) != 0) {
			log_error("CA journal entry %zu is malformed: %s", i,
			    wick_strerror(r));
			goto out;
		}
		k = tmp.kind;
		si = tmp.slot - 'A';
		/* One entry per slot, one ACTIVE and one PREPARED per kind. */
		if (seen[k][si] != CA_STATUS_NONE ||
		    (tmp.status != CA_STATUS_OLD &&
		    seen[k][1 - si] == tmp.status)) {
			log_error("CA journal entry %zu: %s slot %c conflicts "
			    "with another entry", i, kind_names[k], tmp.slot);
			clear_authority(&tmp);
			r = WICK_ERR_INVALID;
			goto out;
		}
		seen[k][si] = tmp.status;
		if (keep)
			m->a[k][si] = tmp;
	}
	r = 0;
out:
	json_decref(doc);
	return r;
}

static int
config_ok(const struct ca_manager_config *cfg)
{
	char		 td[SPIFFEID_MAX_TD_LEN + 1];
	const char	*why;

	if (cfg->trust_domain == NULL ||
	    spiffeid_td_parse(cfg->trust_domain, 0, td, &why) != 0)
		return 0;
	if (cfg->ca_ttl <= 0 ||
	    strcmp(pkey_type_name(cfg->ca_key_type), "unknown") == 0 ||
	    strcmp(pkey_type_name(cfg->jwt_key_type), "unknown") == 0)
		return 0;
	return (cfg->upstream_cert == NULL) == (cfg->upstream_key == NULL);
}

int
ca_manager_new(const struct ca_manager_config *cfg, struct keymgr *km,
    const uint8_t *journal, size_t jlen, struct ca_manager **out)
{
	struct ca_manager	*m;
	int			 i, r;

	*out = NULL;
	if (!config_ok(cfg))
		return WICK_ERR_CONFIG;
	m = xcalloc(1, sizeof(*m));
	m->td = xstrdup(cfg->trust_domain);
	m->ca_key_type = cfg->ca_key_type;
	m->jwt_key_type = cfg->jwt_key_type;
	m->ca_ttl = cfg->ca_ttl;
	m->country = dup_list(cfg->subject.country, cfg->subject.ncountry);
	m->ncountry = cfg->subject.ncountry;
	m->org = dup_list(cfg->subject.organization,
	    cfg->subject.norganization);
	m->norg = cfg->subject.norganization;
	m->cn = xstrdup(cfg->subject.common_name != NULL ?
	    cfg->subject.common_name : "");
	m->km = km;
	if (cfg->upstream_cert != NULL) {
		/* Our references, dropped in ca_manager_free. */
		if (!X509_up_ref(cfg->upstream_cert) ||
		    !EVP_PKEY_up_ref(cfg->upstream_key))
			fatal("reference counting failed");
		m->up_cert = cfg->upstream_cert;
		m->up_key = cfg->upstream_key;
		if ((m->up_chain = sk_X509_new_null()) == NULL)
			fatal("out of memory");
		for (i = 0; i < sk_X509_num(cfg->upstream_chain); i++)
			chain_add(m->up_chain,
			    sk_X509_value(cfg->upstream_chain, i));
	}
	if (journal != NULL && jlen > 0 && (r = load_journal(m, journal,
	    jlen)) != 0) {
		ca_manager_free(m);
		return r;
	}
	rebuild_svid_chain(m);
	*out = m;
	return 0;
}

void
ca_manager_free(struct ca_manager *m)
{
	int k, i;

	if (m == NULL)
		return;
	for (k = 0; k < CA_NKINDS; k++)
		for (i = 0; i < 2; i++)
			clear_authority(&m->a[k][i]);
	free(m->td);
	free_list(m->country, m->ncountry);
	free_list(m->org, m->norg);
	free(m->cn);
	X509_free(m->up_cert);
	EVP_PKEY_free(m->up_key);
	sk_X509_pop_free(m->up_chain, X509_free);
	sk_X509_pop_free(m->svid_chain, X509_free);
	free(m);
}
