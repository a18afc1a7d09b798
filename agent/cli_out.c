/*
 * cli_out.c: what the Workload API client does with the agent's answers:
 * check and decode X.509-SVID responses, JWT-SVIDs, WIT-SVIDs and JWKS
 * bundles, then print them as spire-agent does, as JSON, or into files.
 * Nothing the agent sent is trusted: a malformed answer is an error with
 * a message, never a crash, and private keys never reach stdout.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cli_int.h"
#include "jose.h"
#include "spiffeid.h"
#include "x509.h"

#define CLI_TIME_LEN	64

/* ---- X.509-SVID responses ------------------------------------------------ */

static void
svid_cleanup(struct cli_svid *s)
{
	free(s->spiffe_id);
	free(s->hint);
	sk_X509_pop_free(s->chain, X509_free);
	sk_X509_pop_free(s->bundle, X509_free);
	EVP_PKEY_free(s->key);
}

void
cli_x509_free(struct cli_x509 *x)
{
	size_t i;

	if (x == NULL)
		return;
	for (i = 0; i < x->nsvids; i++)
		svid_cleanup(&x->svids[i]);
	for (i = 0; i < x->nfeds; i++) {
		free(x->feds[i].td);
		sk_X509_pop_free(x->feds[i].certs, X509_free);
	}
	free(x->svids);
	free(x->feds);
	free(x);
}

static const char *
der_why(int r)
{
	return r == WICK_ERR_LIMIT ? "too many certificates, or one too large" :
	    r == WICK_ERR_ALLOC ? "out of memory" : "malformed DER";
}

/* Verify leaf (+ intermediates) up to one of bundle's certificates. */
static int
verify_chain(STACK_OF(X509) *chain, STACK_OF(X509) *bundle, int64_t now,
    const char **why)
{
	X509_STORE	*store = NULL;
	X509_STORE_CTX	*ctx = NULL;
	STACK_OF(X509)	*untrusted = NULL;
	int		 i, r = WICK_ERR_CRYPTO;

	*why = "out of memory";
	ERR_set_mark();
	if ((store = X509_STORE_new()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    (untrusted = sk_X509_new_null()) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(bundle); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(bundle, i)) != 1)
			goto out;
	/* Borrowed pointers: untrusted is freed with sk_X509_free. */
	for (i = 1; i < sk_X509_num(chain); i++)
		if (!sk_X509_push(untrusted, sk_X509_value(chain, i)))
			goto out;
	if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0),
	    untrusted) != 1)
		goto out;
	/* Like Go's x509.Verify: every bundle certificate is an anchor. */
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx),
	    X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx),
	    (time_t)now);
	if (X509_verify_cert(ctx) != 1) {
		*why = X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx));
		r = WICK_ERR_SIGNATURE;
		goto out;
	}
	*why = NULL;
	r = 0;
out:
	ERR_pop_to_mark();
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return r;
}

static int
parse_key(const ProtobufCBinaryData *der, EVP_PKEY **out)
{
	PKCS8_PRIV_KEY_INFO	*p8;
	const uint8_t		*p = der->data;

	*out = NULL;
	if (der->len == 0 || der->len > CLI_MAX_KEY_DER)
		return WICK_ERR_INVALID;
	ERR_set_mark();
	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der->len);
	if (p8 != NULL && p == der->data + der->len)
		*out = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8);
	ERR_pop_to_mark();
	return *out != NULL ? 0 : WICK_ERR_INVALID;
}

static int
parse_svid(const X509SVID *in, int64_t now, struct cli_svid *s, char *err,
    size_t errlen)
{
	struct spiffeid	 id;
	const char	*why = NULL;
	char		*leafid = NULL;
	X509		*leaf;
	int		 r;

	if ((r = spiffeid_parse(in->spiffe_id, 0, &id, &why)) != 0) {
		snprintf(err, errlen, "invalid SPIFFE ID: %s", why);
		return r;
	}
	snprintf(s->td_id, sizeof(s->td_id), "%s%s", SPIFFEID_SCHEME, id.td);
	if (strlen(in->hint) > CLI_MAX_HINT) {
		snprintf(err, errlen, "hint longer than %d bytes",
		    CLI_MAX_HINT);
		return WICK_ERR_LIMIT;
	}
	if ((s->spiffe_id = strdup(in->spiffe_id)) == NULL ||
	    (s->hint = strdup(in->hint)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return WICK_ERR_ALLOC;
	}
	if (in->x509_svid.len == 0) {
		snprintf(err, errlen, "no certificates found");
		return WICK_ERR_INVALID;
	}
	if ((r = x509_chain_from_der(in->x509_svid.data, in->x509_svid.len,
	    CLI_MAX_CHAIN, &s->chain)) != 0) {
		snprintf(err, errlen, "cannot parse the certificates: %s",
		    der_why(r));
		return r;
	}
	leaf = sk_X509_value(s->chain, 0);
	if ((r = x509_spiffe_id(leaf, &leafid, &why)) != 0) {
		snprintf(err, errlen, "leaf certificate: %s",
		    why != NULL ? why : wick_strerror(r));
		return r;
	}
	r = strcmp(leafid, in->spiffe_id);
	free(leafid);
	if (r != 0) {
		snprintf(err, errlen, "the leaf certificate's URI SAN is not "
		    "the SVID's SPIFFE ID");
		return WICK_ERR_INVALID;
	}
	if (X509_check_ca(leaf) != 0) {
		snprintf(err, errlen, "the leaf certificate is a CA");
		return WICK_ERR_INVALID;
	}
	if ((r = parse_key(&in->x509_svid_key, &s->key)) != 0) {
		snprintf(err, errlen, "failed to parse private key: not an "
		    "unencrypted PKCS#8 key");
		return r;
	}
	ERR_set_mark();
	r = X509_check_private_key(leaf, s->key);
	ERR_pop_to_mark();
	if (r != 1) {
		snprintf(err, errlen, "the private key does not match the "
		    "leaf certificate");
		return WICK_ERR_INVALID;
	}
	if (in->bundle.len == 0) {
		snprintf(err, errlen, "no certificates in trust bundle");
		return WICK_ERR_INVALID;
	}
	if ((r = x509_chain_from_der(in->bundle.data, in->bundle.len,
	    CLI_MAX_BUNDLE, &s->bundle)) != 0) {
		snprintf(err, errlen, "failed to parse trust bundle: %s",
		    der_why(r));
		return r;
	}
	if ((r = verify_chain(s->chain, s->bundle, now, &why)) != 0) {
		snprintf(err, errlen, "SVID failed verification against "
		    "bundle: %s", why);
		return r;
	}
	return 0;
}

static int
fed_cmp(const void *a, const void *b)
{
	const struct cli_fed *x = a, *y = b;

	return strcmp(x->td, y->td);
}

static int
parse_feds(const X509SVIDResponse *resp, struct cli_x509 *x, char *err,
    size_t errlen)
{
	const X509SVIDResponse__FederatedBundlesEntry	*e;
	struct cli_fed					*f;
	char td[SPIFFEID_MAX_TD_LEN + 1];
	char						 safe[128];
	const char					*why;
	size_t						 i;
	int						 r;

	if (resp->n_federated_bundles == 0)
		return 0;
	if ((x->feds = calloc(resp->n_federated_bundles,
	    sizeof(*x->feds))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return WICK_ERR_ALLOC;
	}
	for (i = 0; i < resp->n_federated_bundles; i++) {
		e = resp->federated_bundles[i];
		cli_safe_copy(e->key, safe, sizeof(safe));
		if ((r = spiffeid_td_parse(e->key, 0, td, &why)) != 0) {
			snprintf(err, errlen, "invalid trust domain \"%s\" in "
			    "the federated bundles: %s", safe, why);
			return r;
		}
		f = &x->feds[x->nfeds];
		if ((f->td = malloc(strlen(SPIFFEID_SCHEME) + strlen(td) +
		    1)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return WICK_ERR_ALLOC;
		}
		sprintf(f->td, "%s%s", SPIFFEID_SCHEME, td);
		x->nfeds++;
		if (e->value.len == 0) {
			snprintf(err, errlen, "no certificates in bundle for "
			    "federated domain \"%s\"", f->td);
			return WICK_ERR_INVALID;
		}
		if ((r = x509_chain_from_der(e->value.data, e->value.len,
		    CLI_MAX_BUNDLE, &f->certs)) != 0) {
			snprintf(err, errlen, "failed to parse bundle for "
			    "federated domain \"%s\": %s", f->td, der_why(r));
			return r;
		}
	}
	qsort(x->feds, x->nfeds, sizeof(*x->feds), fed_cmp);
	for (i = 1; i < x->nfeds; i++)
		if (strcmp(x->feds[i].td, x->feds[i - 1].td) == 0) {
			snprintf(err, errlen, "more than one bundle for "
			    "federated domain \"%s\"", x->feds[i].td);
			return WICK_ERR_INVALID;
		}
	return 0;
}

int
cli_x509_parse(const X509SVIDResponse *resp, int64_t now,
    struct cli_x509 **out, char *err, size_t errlen)
{
	struct cli_x509	*x;
	char		 msg[CLI_MAX_ERR], safe[128];
	size_t		 i;
	int		 r;

	*out = NULL;
	*err = '\0';
	if (resp->n_svids == 0) {
		snprintf(err, errlen, "workload response contains no svids");
		return WICK_ERR_INVALID;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (x->svids = calloc(resp->n_svids, sizeof(*x->svids))) == NULL) {
		free(x);
		snprintf(err, errlen, "out of memory");
		return WICK_ERR_ALLOC;
	}
	if ((r = parse_feds(resp, x, err, errlen)) != 0)
		goto out;
	for (i = 0; i < resp->n_svids; i++) {
		x->nsvids++;
		if ((r = parse_svid(resp->svids[i], now, &x->svids[i], msg,
		    sizeof(msg))) != 0) {
			cli_safe_copy(resp->svids[i]->spiffe_id, safe,
			    sizeof(safe));
			snprintf(err, errlen, "failed to parse svid entry %zu "
			    "for spiffe id \"%s\": %s", i, safe, msg);
			goto out;
		}
	}
	*out = x;
	x = NULL;
	r = 0;
out:
	cli_x509_free(x);
	return r;
}

static int
print_validity(FILE *f, const char *label, X509 *c)
{
	char	nb[CLI_TIME_LEN], na[CLI_TIME_LEN];
	int	r;

	if ((r = cli_asn1_time(X509_get0_notBefore(c), 0, nb,
	    sizeof(nb))) != 0 ||
	    (r = cli_asn1_time(X509_get0_notAfter(c), 0, na, sizeof(na))) != 0)
		return r;
	fprintf(f, "%s Valid After:\t%s\n", label, nb);
	fprintf(f, "%s Valid Until:\t%s\n", label, na);
	return 0;
}

int
cli_x509_print(FILE *f, const struct cli_x509 *x, uint64_t elapsed_ns)
{
	const struct cli_svid	*s;
	char			 d[48], label[SPIFFEID_MAX_TD_LEN + 48];
	size_t			 i, j;
	int			 k, r;

	cli_go_duration(elapsed_ns, d, sizeof(d));
	fprintf(f, "Received %zu svid%s after %s\n", x->nsvids,
	    x->nsvids != 1 ? "s" : "", d);
	for (i = 0; i < x->nsvids; i++) {
		s = &x->svids[i];
		fprintf(f, "\nSPIFFE ID:\t\t%s\n", s->spiffe_id);
		if (s->hint[0] != '\0') {
			fprintf(f, "Hint:\t\t\t");
			cli_put_safe(f, s->hint);
			fputc('\n', f);
		}
		if ((r = print_validity(f, "SVID", sk_X509_value(s->chain,
		    0))) != 0)
			return r;
		for (k = 1; k < sk_X509_num(s->chain); k++) {
			snprintf(label, sizeof(label), "Intermediate #%d", k);
			if ((r = print_validity(f, label,
			    sk_X509_value(s->chain, k))) != 0)
				return r;
		}
		for (k = 0; k < sk_X509_num(s->bundle); k++) {
			snprintf(label, sizeof(label), "CA #%d", k + 1);
			if ((r = print_validity(f, label,
			    sk_X509_value(s->bundle, k))) != 0)
				return r;
		}
		for (j = 0; j < x->nfeds; j++)
			for (k = 0; k < sk_X509_num(x->feds[j].certs); k++) {
				snprintf(label, sizeof(label), "[%s] CA #%d",
				    x->feds[j].td, k + 1);
				if ((r = print_validity(f, label,
				    sk_X509_value(x->feds[j].certs, k))) != 0)
					return r;
			}
	}
	fputc('\n', f);
	return 0;
}

/* Certificates as PEM in a new JSON string. */
static json_t *
certs_pem_json(STACK_OF(X509) *sk)
{
	BIO	*b;
	char	*p;
	long	 n;
	json_t	*j = NULL;
	int	 i;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	for (i = 0; i < sk_X509_num(sk); i++)
		if (PEM_write_bio_X509(b, sk_X509_value(sk, i)) != 1)
			goto out;
	if ((n = BIO_get_mem_data(b, &p)) > 0)
		j = json_stringn(p, (size_t)n);
out:
	BIO_free(b);
	return j;
}

static json_t *
serial_json(X509 *c)
{
	BIGNUM	*bn;
	char	*dec = NULL;
	json_t	*j = NULL;

	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL)) !=
	    NULL && (dec = BN_bn2dec(bn)) != NULL)
		j = json_string(dec);
	OPENSSL_free(dec);
	BN_free(bn);
	return j;
}

int
cli_x509_json(const struct cli_x509 *x, json_t **out)
{
	const struct cli_svid	*s;
	json_t			*root, *svids, *bundles, *feds, *o, *v;
	char			 exp[CLI_TIME_LEN];
	size_t			 i;
	X509			*leaf;

	*out = NULL;
	root = json_object();
	svids = json_array();
	bundles = json_object();
	feds = json_object();
	if (root == NULL || svids == NULL || bundles == NULL || feds == NULL)
		goto oom;
	for (i = 0; i < x->nsvids; i++) {
		s = &x->svids[i];
		leaf = sk_X509_value(s->chain, 0);
		if (cli_asn1_time(X509_get0_notAfter(leaf), 1, exp,
		    sizeof(exp)) != 0)
			goto oom;
		if ((o = json_object()) == NULL ||
		    json_array_append_new(svids, o) != 0)
			goto oom;
		if (json_object_set_new(o, "spiffe_id",
		    json_string(s->spiffe_id)) != 0 ||
		    json_object_set_new(o, "hint", json_string(s->hint)) != 0 ||
		    json_object_set_new(o, "x509_svid",
		    certs_pem_json(s->chain)) != 0 ||
		    json_object_set_new(o, "expires_at",
		    json_string(exp)) != 0 ||
		    json_object_set_new(o, "serial", serial_json(leaf)) != 0)
			goto oom;
		if (json_object_get(bundles, s->td_id) == NULL &&
		    json_object_set_new(bundles, s->td_id,
		    certs_pem_json(s->bundle)) != 0)
			goto oom;
	}
	for (i = 0; i < x->nfeds; i++)
		if ((v = certs_pem_json(x->feds[i].certs)) == NULL ||
		    json_object_set_new(feds, x->feds[i].td, v) != 0)
			goto oom;
	if (json_object_set_new(root, "svids", svids) != 0) {
		svids = NULL;
		goto oom;
	}
	svids = NULL;
	if (json_object_set_new(root, "bundles", bundles) != 0) {
		bundles = NULL;
		goto oom;
	}
	bundles = NULL;
	if (json_object_set_new(root, "federated_bundles", feds) != 0) {
		feds = NULL;
		goto oom;
	}
	*out = root;
	return 0;
oom:
	json_decref(root);
	json_decref(svids);
	json_decref(bundles);
	json_decref(feds);
	return WICK_ERR_ALLOC;
}

static int
write_certs(STACK_OF(X509) *sk, const char *path, char *err, size_t errlen)
{
	BIO	*b;
	char	*p;
	long	 n;
	int	 i, r = WICK_ERR_ALLOC;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		goto oom;
	for (i = 0; i < sk_X509_num(sk); i++)
		if (PEM_write_bio_X509(b, sk_X509_value(sk, i)) != 1)
			goto oom;
	if ((n = BIO_get_mem_data(b, &p)) <= 0)
		goto oom;
	r = cli_write_file(path, p, (size_t)n, 0644, err, errlen);
	BIO_free(b);
	return r;
oom:
	BIO_free(b);
	snprintf(err, errlen, "cannot encode %s", path);
	return r;
}

static int
write_key(EVP_PKEY *key, const char *path, char *err, size_t errlen)
{
	BIO	*b;
	char	*p;
	long	 n;
	int	 r;

	/* A secure-memory BIO: its buffer is wiped when freed. */
	if ((b = BIO_new(BIO_s_secmem())) == NULL ||
	    PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL,
	    NULL) != 1 || (n = BIO_get_mem_data(b, &p)) <= 0) {
		BIO_free(b);
		snprintf(err, errlen, "cannot encode %s", path);
		return WICK_ERR_CRYPTO;
	}
	r = cli_write_file(path, p, (size_t)n, 0600, err, errlen);
	BIO_free(b);
	return r;
}

static int
write_path(const char *dir, char *path, size_t pathlen, char *err,
    size_t errlen, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int
write_path(const char *dir, char *path, size_t pathlen, char *err,
    size_t errlen, const char *fmt, ...)
{
	va_list	ap;
	char	name[64];

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	if (cli_path_join(dir, name, path, pathlen) != 0) {
		snprintf(err, errlen, "%s: path too long", dir);
		return WICK_ERR_LIMIT;
	}
	return 0;
}

int
cli_x509_write(const struct cli_x509 *x, const char *dir, FILE *msgs,
    char *err, size_t errlen)
{
	const struct cli_svid	*s;
	char			 path[4096];
	size_t			 i, j;
	int			 r;

	*err = '\0';
	for (i = 0; i < x->nsvids; i++) {
		s = &x->svids[i];
		if ((r = write_path(dir, path, sizeof(path), err, errlen,
		    "svid.%zu.pem", i)) != 0)
			return r;
		if (msgs != NULL)
			fprintf(msgs, "Writing SVID #%zu to file %s.\n", i,
			    path);
		if ((r = write_certs(s->chain, path, err, errlen)) != 0)
			return r;
		if ((r = write_path(dir, path, sizeof(path), err, errlen,
		    "svid.%zu.key", i)) != 0)
			return r;
		if (msgs != NULL)
			fprintf(msgs, "Writing key #%zu to file %s.\n", i,
			    path);
		if ((r = write_key(s->key, path, err, errlen)) != 0)
			return r;
		if ((r = write_path(dir, path, sizeof(path), err, errlen,
		    "bundle.%zu.pem", i)) != 0)
			return r;
		if (msgs != NULL)
			fprintf(msgs, "Writing bundle #%zu to file %s.\n", i,
			    path);
		if ((r = write_certs(s->bundle, path, err, errlen)) != 0)
			return r;
		for (j = 0; j < x->nfeds; j++) {
			if ((r = write_path(dir, path, sizeof(path), err,
			    errlen, "federated_bundle.%zu.%zu.pem", i, j)) !=
			    0)
				return r;
			if (msgs != NULL)
				fprintf(msgs, "Writing federated bundle #%zu "
				    "for trust domain %s to file %s.\n", j,
				    x->feds[j].td, path);
			if ((r = write_certs(x->feds[j].certs, path, err,
			    errlen)) != 0)
				return r;
		}
	}
	return 0;
}

/* ---- JWT-SVIDs, WIT-SVIDs and JWKS bundles ------------------------------- */

void
cli_tokens_init(struct cli_tokens *ts)
{
	memset(ts, 0, sizeof(*ts));
}

static void
str_wipe_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void
cli_tokens_cleanup(struct cli_tokens *ts)
{
	size_t i;

	for (i = 0; i < ts->n; i++) {
		free(ts->v[i].spiffe_id);
		free(ts->v[i].hint);
		free(ts->v[i].token);
		str_wipe_free(ts->v[i].key);
	}
	for (i = 0; i < ts->nb; i++) {
		free(ts->b[i].td);
		json_decref(ts->b[i].jwks);
	}
	free(ts->v);
	free(ts->b);
	memset(ts, 0, sizeof(*ts));
}

/*
 * A private JWK: an object with a string "kty" and a private member "d".
 * Every string member of the parsed copy is wiped before it is freed.
 */
static int
private_jwk_ok(const char *key)
{
	json_t		*j, *v;
	const char	*name;
	int		 ok;

	if (strlen(key) > JOSE_MAX_JWKS_SIZE ||
	    (j = json_loads(key, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return 0;
	ok = json_is_object(j) && json_is_string(json_object_get(j, "kty")) &&
	    json_is_string(json_object_get(j, "d"));
	/* jansson keeps each string in one buffer of its own. */
	json_object_foreach(j, name, v)
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v),
			    json_string_length(v));
	json_decref(j);
	return ok;
}

int
cli_tokens_add(struct cli_tokens *ts, const char *id, const char *hint,
    const char *token, const char *key, char *err, size_t errlen)
{
	struct spiffeid	 sid;
	struct cli_token *t, *nv;
	json_t		*claims = NULL, *exp;
	const char	*why, *sub;
	char		 safe[128];
	double		 d;
	int		 r;

	*err = '\0';
	cli_safe_copy(id, safe, sizeof(safe));
	if ((r = spiffeid_parse(id, 0, &sid, &why)) != 0) {
		snprintf(err, errlen, "invalid SPIFFE ID \"%s\": %s", safe,
		    why);
		return r;
	}
	if (strlen(hint) > CLI_MAX_HINT) {
		snprintf(err, errlen, "SVID %s: hint longer than %d bytes", id,
		    CLI_MAX_HINT);
		return WICK_ERR_LIMIT;
	}
	if ((r = cli_jwt_payload(token, &claims, &why)) != 0) {
		snprintf(err, errlen, "malformed token for %s: %s", id, why);
		return r;
	}
	sub = json_string_value(json_object_get(claims, "sub"));
	exp = json_object_get(claims, "exp");
	d = json_is_number(exp) ? json_number_value(exp) : -1;
	if (sub == NULL || strcmp(sub, id) != 0) {
		snprintf(err, errlen, "the token's subject is not %s", id);
		r = WICK_ERR_INVALID;
	} else if (!(d >= 0 && d < 253402300800.0)) {
		snprintf(err, errlen, "the token for %s has no valid exp "
		    "claim", id);
		r = WICK_ERR_INVALID;
	} else if (key != NULL && !private_jwk_ok(key)) {
		snprintf(err, errlen, "the key for %s is not a private JWK",
		    id);
		r = WICK_ERR_INVALID;
	}
	json_decref(claims);
	if (r != 0)
		return r;
	if ((nv = reallocarray(ts->v, ts->n + 1, sizeof(*ts->v))) == NULL)
		goto oom;
	ts->v = nv;
	t = &ts->v[ts->n];
	memset(t, 0, sizeof(*t));
	ts->n++;
	t->exp = (int64_t)d;
	if ((t->spiffe_id = strdup(id)) == NULL ||
	    (t->hint = strdup(hint)) == NULL ||
	    (t->token = strdup(token)) == NULL ||
	    (key != NULL && (t->key = strdup(key)) == NULL))
		goto oom;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return WICK_ERR_ALLOC;
}

int
cli_tokens_add_bundle(struct cli_tokens *ts, const char *td,
    const uint8_t *p, size_t n, char *err, size_t errlen)
{
	struct cli_jwks	*nb, *b;
	char		 name[SPIFFEID_MAX_TD_LEN + 1], safe[128];
	const char	*why;
	json_t		*j;
	int		 r;

	*err = '\0';
	cli_safe_copy(td, safe, sizeof(safe));
	if ((r = spiffeid_td_parse(td, 0, name, &why)) != 0) {
		snprintf(err, errlen, "invalid trust domain \"%s\" in the "
		    "bundles: %s", safe, why);
		return r;
	}
	if (n > JOSE_MAX_JWKS_SIZE) {
		snprintf(err, errlen, "bundle for %s%s is too large",
		    SPIFFEID_SCHEME, name);
		return WICK_ERR_LIMIT;
	}
	j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
	if (j == NULL || !json_is_object(j) ||
	    !json_is_array(json_object_get(j, "keys"))) {
		json_decref(j);
		snprintf(err, errlen, "bundle for %s%s is not a JWK set",
		    SPIFFEID_SCHEME, name);
		return WICK_ERR_INVALID;
	}
	if ((nb = reallocarray(ts->b, ts->nb + 1, sizeof(*ts->b))) == NULL) {
		json_decref(j);
		snprintf(err, errlen, "out of memory");
		return WICK_ERR_ALLOC;
	}
	ts->b = nb;
	b = &ts->b[ts->nb++];
	b->jwks = j;
	if ((b->td = malloc(strlen(SPIFFEID_SCHEME) + strlen(name) + 1)) ==
	    NULL) {
		snprintf(err, errlen, "out of memory");
		return WICK_ERR_ALLOC;
	}
	sprintf(b->td, "%s%s", SPIFFEID_SCHEME, name);
	return 0;
}

static int
jwks_cmp(const void *a, const void *b)
{
	const struct cli_jwks *x = a, *y = b;

	return strcmp(x->td, y->td);
}

int
cli_tokens_finish(struct cli_tokens *ts, char *err, size_t errlen)
{
	size_t i;

	*err = '\0';
	if (ts->nb > 1)
		qsort(ts->b, ts->nb, sizeof(*ts->b), jwks_cmp);
	for (i = 1; i < ts->nb; i++)
		if (strcmp(ts->b[i].td, ts->b[i - 1].td) == 0) {
			snprintf(err, errlen, "more than one bundle for %s",
			    ts->b[i].td);
			return WICK_ERR_INVALID;
		}
	return 0;
}

int
cli_tokens_print(FILE *f, const struct cli_tokens *ts, int wit)
{
	const struct cli_token	*t;
	char			 exp[CLI_TIME_LEN], *js;
	size_t			 i;
	int			 r;

	for (i = 0; i < ts->n; i++) {
		t = &ts->v[i];
		fprintf(f, "token(%s):\n\t%s\n", t->spiffe_id, t->token);
		if (!wit)
			continue;
		if ((r = cli_unix_time(t->exp, 0, exp, sizeof(exp))) != 0)
			return r;
		fprintf(f, "expires(%s):\n\t%s\n", t->spiffe_id, exp);
		if (t->hint[0] != '\0') {
			fprintf(f, "hint(%s):\n\t", t->spiffe_id);
			cli_put_safe(f, t->hint);
			fputc('\n', f);
		}
	}
	for (i = 0; i < ts->nb; i++) {
		if ((js = json_dumps(ts->b[i].jwks, JSON_COMPACT)) == NULL)
			return WICK_ERR_ALLOC;
		fprintf(f, "bundle(%s):\n\t%s\n", ts->b[i].td, js);
		free(js);
	}
	return 0;
}

int
cli_tokens_json(const struct cli_tokens *ts, int wit, json_t **out)
{
	const struct cli_token	*t;
	json_t			*root, *svids, *bundles, *o;
	char			 exp[CLI_TIME_LEN];
	size_t			 i;

	*out = NULL;
	root = json_object();
	svids = json_array();
	bundles = json_object();
	if (root == NULL || svids == NULL || bundles == NULL ||
	    json_object_set(root, "svids", svids) != 0 ||
	    json_object_set(root, "bundles", bundles) != 0)
		goto oom;
	for (i = 0; i < ts->n; i++) {
		t = &ts->v[i];
		if (cli_unix_time(t->exp, 1, exp, sizeof(exp)) != 0 ||
		    (o = json_object()) == NULL ||
		    json_array_append_new(svids, o) != 0 ||
		    json_object_set_new(o, "spiffe_id",
		    json_string(t->spiffe_id)) != 0 ||
		    json_object_set_new(o, "hint", json_string(t->hint)) != 0 ||
		    json_object_set_new(o, wit ? "wit_svid" : "svid",
		    json_string(t->token)) != 0 ||
		    json_object_set_new(o, "expires_at", json_string(exp)) != 0)
			goto oom;
	}
	for (i = 0; i < ts->nb; i++)
		if (json_object_set(bundles, ts->b[i].td, ts->b[i].jwks) != 0)
			goto oom;
	json_decref(svids);
	json_decref(bundles);
	*out = root;
	return 0;
oom:
	json_decref(root);
	json_decref(svids);
	json_decref(bundles);
	return WICK_ERR_ALLOC;
}

int
cli_tokens_write(const struct cli_tokens *ts, const char *dir, FILE *msgs,
    char *err, size_t errlen)
{
	const struct cli_token	*t;
	char			 path[4096];
	size_t			 i;
	int			 r;

	*err = '\0';
	for (i = 0; i < ts->n; i++) {
		t = &ts->v[i];
		if ((r = write_path(dir, path, sizeof(path), err, errlen,
		    "wit.%zu.jwt", i)) != 0)
			return r;
		if (msgs != NULL)
			fprintf(msgs, "Writing WIT-SVID #%zu to file %s.\n", i,
			    path);
		if ((r = cli_write_file(path, t->token, strlen(t->token), 0644,
		    err, errlen)) != 0)
			return r;
		if (t->key == NULL)
			continue;
		if ((r = write_path(dir, path, sizeof(path), err, errlen,
		    "wit.%zu.key.jwk", i)) != 0)
			return r;
		if (msgs != NULL)
			fprintf(msgs, "Writing key #%zu to file %s.\n", i,
			    path);
		if ((r = cli_write_file(path, t->key, strlen(t->key), 0600,
		    err, errlen)) != 0)
			return r;
	}
	return 0;
}
