/*
 * ca_manager.c: the X.509 CA, JWT and WIT signing keys, their two slots
 * each, and the rotation rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca_manager.h"
#include "log.h"
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
	jose_key_free(a->jkey);
	memset(a, 0, sizeof(*a));
}

static void
key_id(enum ca_kind kind, char slot, char out[16])
{
	snprintf(out, 16, "%s-%c", kind_names[kind], slot);
}

static void
random_kid(char out[CA_KID_LEN + 1])
{
	static const char alnum[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t	b[CA_KID_LEN];
	size_t	i;

	if (RAND_bytes(b, sizeof(b)) != 1)
		fatal("RAND_bytes failed");
	for (i = 0; i < CA_KID_LEN; i++)
		out[i] = alnum[b[i] % 62];
	out[CA_KID_LEN] = '\0';
}

/* The chain that follows SVIDs signed by the active X.509 CA. */
static void
rebuild_svid_chain(struct ca_manager *m)
{
	const struct ca_authority	*act = ca_manager_active(m,
	    CA_KIND_X509);
	int				 i;

	sk_X509_pop_free(m->svid_chain, X509_free);
	if ((m->svid_chain = sk_X509_new_null()) == NULL)
		fatal("out of memory");
	if (m->up_cert == NULL || act == NULL)
		return;
	if (X509_up_ref(act->cert))
		(void)sk_X509_push(m->svid_chain, act->cert);
	/* A self-signed upstream certificate is a root: the bundle has it. */
	if (X509_check_issued(m->up_cert, m->up_cert) != X509_V_OK &&
	    X509_up_ref(m->up_cert))
		(void)sk_X509_push(m->svid_chain, m->up_cert);
	for (i = 0; m->up_chain != NULL && i < sk_X509_num(m->up_chain); i++)
		if (X509_check_issued(sk_X509_value(m->up_chain, i),
		    sk_X509_value(m->up_chain, i)) != X509_V_OK &&
		    X509_up_ref(sk_X509_value(m->up_chain, i)))
			(void)sk_X509_push(m->svid_chain,
			    sk_X509_value(m->up_chain, i));
}

static int
prepare(struct ca_manager *m, enum ca_kind kind, int si, int64_t now)
{
	struct ca_authority	*a = &m->a[kind][si];
	struct ca_subject	 subj;
	char			 id[16], *skid;
	EVP_PKEY		*key;
	int			 r;

	clear_authority(a);
	a->kind = kind;
	a->slot = si == 0 ? 'A' : 'B';
	key_id(kind, a->slot, id);
	if ((r = keymgr_generate(m->km, id, kind == CA_KIND_X509 ?
	    m->ca_key_type : m->jwt_key_type, &key)) != 0)
		return r;
	a->key = key;
	if (kind == CA_KIND_X509) {
		memset(&subj, 0, sizeof(subj));
		subj.country = (const char *const *)m->country;
		subj.ncountry = m->ncountry;
		subj.organization = (const char *const *)m->org;
		subj.norganization = m->norg;
		subj.common_name = m->cn;
		r = m->up_cert != NULL ? ca_make_intermediate(key, m->td,
		    &subj, m->up_cert, m->up_key, now, m->ca_ttl, &a->cert) :
		    ca_make_root(key, m->td, &subj, now, m->ca_ttl, &a->cert);
		if (r != 0)
			return r;
		a->not_before = ca_not_before(a->cert);
		a->not_after = ca_not_after(a->cert);
		if ((r = ca_skid_hex(a->cert, &skid)) != 0)
			return r;
		snprintf(a->kid, sizeof(a->kid), "%s", skid);
		free(skid);
	} else {
		random_kid(a->kid);
		if ((r = jose_key_from_pkey(key, a->kid, &a->jkey)) != 0)
			return r;
		a->not_before = now;
		a->not_after = now + m->ca_ttl;
	}
	a->status = CA_STATUS_PREPARED;
	log_info("prepared %s authority %c (kid %s), valid until %lld",
	    kind_names[kind], a->slot, a->kid, (long long)a->not_after);
	return 0;
}

static void
activate(struct ca_manager *m, enum ca_kind kind, int si)
{
	struct ca_authority *other = &m->a[kind][1 - si];

	if (other->status == CA_STATUS_ACTIVE)
		other->status = CA_STATUS_OLD;
	m->a[kind][si].status = CA_STATUS_ACTIVE;
	log_info("activated %s authority %c (kid %s)", kind_names[kind],
	    m->a[kind][si].slot, m->a[kind][si].kid);
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
			prep = act >= 0 ? 1 - act : 0;
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
	int k, r, c = 0;

	for (k = 0; k < CA_NKINDS; k++)
		if ((r = tick_kind(m, (enum ca_kind)k, now, &c)) != 0) {
			log_error("%s authority rotation failed: %s",
			    kind_names[k], wick_strerror(r));
			return r;
		}
	if (changed != NULL)
		*changed = c;
	return 0;
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

/* ---- the journal ---------------------------------------------------------- */

int
ca_manager_journal(const struct ca_manager *m, struct buf *out)
{
	const struct ca_authority	*a;
	json_t				*doc, *list, *o;
	uint8_t				*der = NULL;
	char				*s, *b64;
	int				 k, i, len, r;

	doc = json_pack("{s:i,s:[]}", "version", JOURNAL_VERSION,
	    "authorities");
	list = json_object_get(doc, "authorities");
	for (k = 0; k < CA_NKINDS; k++)
		for (i = 0; i < 2; i++) {
			a = &m->a[k][i];
			if (a->status == CA_STATUS_NONE)
				continue;
			o = json_pack("{s:s,s:s#,s:i,s:I,s:I,s:s}", "kind",
			    kind_names[k], "slot", &a->slot, 1, "status",
			    (int)a->status, "not_before",
			    (json_int_t)a->not_before, "not_after",
			    (json_int_t)a->not_after, "kid", a->kid);
			if (a->cert != NULL) {
				der = NULL;
				if ((len = i2d_X509(a->cert, &der)) <= 0) {
					json_decref(o);
					json_decref(doc);
					return WICK_ERR_CRYPTO;
				}
				b64 = xmalloc(4 * (((size_t)len + 2) / 3) + 1);
				EVP_EncodeBlock((unsigned char *)b64, der, len);
				OPENSSL_free(der);
				json_object_set_new(o, "cert", json_string(b64));
				free(b64);
			}
			json_array_append_new(list, o);
		}
	s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (s == NULL)
		return WICK_ERR_ALLOC;
	r = buf_put_cstr(out, s);
	free(s);
	return r;
}

static int
load_one(struct ca_manager *m, json_t *o)
{
	struct ca_authority	 tmp, *a;
	const char		*kind, *slot, *kid, *b64;
	json_int_t		 status, nb, na;
	uint8_t			*der = NULL;
	const uint8_t		*q;
	char			 id[16];
	size_t			 blen;
	int			 k, si, len;

	memset(&tmp, 0, sizeof(tmp));
	if (json_unpack(o, "{s:s,s:s,s:I,s:I,s:I,s:s}", "kind", &kind, "slot",
	    &slot, "status", &status, "not_before", &nb, "not_after", &na,
	    "kid", &kid) != 0)
		return WICK_ERR_INVALID;
	for (k = 0; k < CA_NKINDS && strcmp(kind_names[k], kind) != 0; k++)
		;
	if (k == CA_NKINDS || (strcmp(slot, "A") != 0 && strcmp(slot, "B") !=
	    0) || (status != CA_STATUS_PREPARED && status != CA_STATUS_ACTIVE &&
	    status != CA_STATUS_OLD) || strlen(kid) > CA_KID_LEN || na <= nb)
		return WICK_ERR_INVALID;
	si = slot[0] - 'A';
	tmp.kind = (enum ca_kind)k;
	tmp.slot = slot[0];
	tmp.status = (enum ca_status)status;
	tmp.not_before = nb;
	tmp.not_after = na;
	snprintf(tmp.kid, sizeof(tmp.kid), "%s", kid);
	key_id(tmp.kind, tmp.slot, id);
	if (keymgr_get(m->km, id, &tmp.key) != 0) {
		log_warn("CA journal: key %s is missing from the key manager; "
		    "that authority is dropped", id);
		return 0;
	}
	if (k == CA_KIND_X509) {
		if ((b64 = json_string_value(json_object_get(o, "cert"))) ==
		    NULL || (blen = strlen(b64)) == 0 || blen % 4 != 0 ||
		    blen > 4 * (X509_MAX_CERT_DER / 3 + 1))
			goto bad;
		der = xmalloc(blen / 4 * 3 + 1);
		if ((len = EVP_DecodeBlock(der, (const unsigned char *)b64,
		    (int)blen)) <= 0)
			goto bad;
		q = der;
		if ((tmp.cert = d2i_X509(NULL, &q, len)) == NULL)
			goto bad;
		if (!pkey_public_equal(X509_get0_pubkey(tmp.cert), tmp.key)) {
			log_warn("CA journal: key %s does not match its "
			    "certificate; that authority is dropped", id);
			free(der);
			clear_authority(&tmp);
			return 0;
		}
		free(der);
		der = NULL;
	} else if (jose_key_from_pkey(tmp.key, tmp.kid, &tmp.jkey) != 0)
		goto bad;
	a = &m->a[k][si];
	clear_authority(a);
	*a = tmp;
	return 0;
bad:
	free(der);
	clear_authority(&tmp);
	return WICK_ERR_INVALID;
}

static int
load_journal(struct ca_manager *m, const uint8_t *p, size_t len)
{
	json_error_t	 jerr;
	json_t		*doc, *list, *o;
	size_t		 i;
	int		 r = WICK_ERR_INVALID;

	if (len > CA_MANAGER_MAX_JOURNAL)
		return WICK_ERR_LIMIT;
	if ((doc = json_loadb((const char *)p, len, 0, &jerr)) == NULL) {
		log_error("CA journal is not JSON: %s", jerr.text);
		return WICK_ERR_INVALID;
	}
	if (json_integer_value(json_object_get(doc, "version")) !=
	    JOURNAL_VERSION) {
		log_error("CA journal version %lld is not %d",
		    (long long)json_integer_value(json_object_get(doc,
		    "version")), JOURNAL_VERSION);
		goto out;
	}
	if (!json_is_array(list = json_object_get(doc, "authorities")) ||
	    json_array_size(list) > 2 * CA_NKINDS)
		goto out;
	json_array_foreach(list, i, o)
		if ((r = load_one(m, o)) != 0) {
			log_error("CA journal entry %zu is malformed", i);
			goto out;
		}
	r = 0;
out:
	json_decref(doc);
	return r;
}

int
ca_manager_new(const struct ca_manager_config *cfg, struct keymgr *km,
    const uint8_t *journal, size_t jlen, struct ca_manager **out)
{
	struct ca_manager	*m = xcalloc(1, sizeof(*m));
	int			 i, r;

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
		if (!X509_up_ref(cfg->upstream_cert) ||
		    !EVP_PKEY_up_ref(cfg->upstream_key))
			fatal("reference counting failed");
		m->up_cert = cfg->upstream_cert;
		m->up_key = cfg->upstream_key;
		m->up_chain = sk_X509_new_null();
		for (i = 0; cfg->upstream_chain != NULL &&
		    i < sk_X509_num(cfg->upstream_chain); i++)
			if (X509_up_ref(sk_X509_value(cfg->upstream_chain, i)))
				(void)sk_X509_push(m->up_chain,
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
