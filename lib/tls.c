/*
 * tls.c: SPIFFE mTLS on a caller's OpenSSL SSL_CTX.  The certificate
 * callback presents the watch's current SVID at each handshake, and the
 * verification callback replaces OpenSSL's path check with
 * wick_x509svid_verify() against the watch's current bundles, then asks
 * the authorizer.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "spiffeid.h"
#include "x509.h"
#include "wick_int.h"

struct wick_x509_context *wick_x509_watch_peek(struct wick_x509_watch *);

struct wick_tls {
	struct wick_x509_watch	*watch;
	char			*hint;
	wick_authorizer_fn	*authz;
	void			*arg;
};

int
wick_authorize_any(const char *id, void *arg)
{
	(void)id;
	(void)arg;
	return 1;
}

int
wick_authorize_id(const char *id, void *arg)
{
	return arg != NULL && strcmp(id, (const char *)arg) == 0;
}

int
wick_authorize_member_of(const char *id, void *arg)
{
	struct spiffeid	sid;
	char		td[SPIFFEID_MAX_TD_LEN + 1];

	if (arg == NULL || spiffeid_parse(id, 0, &sid, NULL) != 0 ||
	    spiffeid_td_parse(arg, 0, td, NULL) != 0)
		return 0;
	return strcmp(sid.td, td) == 0;
}

static int
cert_cb(SSL *ssl, void *arg)
{
	struct wick_tls			*t = arg;
	struct wick_x509_context	*c;
	const struct wick_x509_svid	*s;
	STACK_OF(X509)			*extra = NULL;
	int				 i, ok = 0;

	if ((c = wick_x509_watch_peek(t->watch)) == NULL)
		return 0;		/* no SVID yet: fail the handshake */
	if ((s = wick_x509_context_find(c, t->hint)) == NULL ||
	    (extra = sk_X509_new_null()) == NULL)
		goto out;
	for (i = 1; i < sk_X509_num(s->chain); i++)
		if (!sk_X509_push(extra, sk_X509_value(s->chain, i)))
			goto out;
	ok = SSL_use_cert_and_key(ssl, sk_X509_value(s->chain, 0), s->key,
	    extra, 1) == 1;
out:
	sk_X509_free(extra);	/* SSL_use_cert_and_key took references */
	wick_x509_context_free(c);
	return ok;
}

static int
verify_cb(X509_STORE_CTX *sc, void *arg)
{
	struct wick_tls			*t = arg;
	struct wick_x509_context	*c = NULL;
	STACK_OF(X509)			*peer, *chain = NULL;
	X509				*leaf;
	char				*id = NULL, why[160];
	int				 i, ok = 0;

	leaf = X509_STORE_CTX_get0_cert(sc);
	peer = X509_STORE_CTX_get0_untrusted(sc);
	if (leaf == NULL || (chain = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(chain, leaf))
		goto out;
	for (i = 0; peer != NULL && i < sk_X509_num(peer); i++)
		if (sk_X509_value(peer, i) != leaf &&
		    !sk_X509_push(chain, sk_X509_value(peer, i)))
			goto out;
	if ((c = wick_x509_watch_peek(t->watch)) == NULL)
		goto out;
	if (wick_x509svid_verify(chain, c->bundles, 0, &id, why,
	    sizeof(why)) != 0) {
		X509_STORE_CTX_set_error(sc, X509_V_ERR_CERT_REJECTED);
		goto out;
	}
	if (t->authz == NULL || !t->authz(id, t->arg)) {
		X509_STORE_CTX_set_error(sc, X509_V_ERR_CERT_REJECTED);
		goto out;
	}
	X509_STORE_CTX_set_error(sc, X509_V_OK);
	ok = 1;
out:
	free(id);
	sk_X509_free(chain);
	wick_x509_context_free(c);
	return ok;
}

int
wick_tls_setup(void *ssl_ctx, struct wick_x509_watch *w, const char *hint,
    wick_authorizer_fn *authz, void *arg, struct wick_tls **out)
{
	SSL_CTX		*ctx = ssl_ctx;
	struct wick_tls	*t;

	*out = NULL;
	if (ctx == NULL || w == NULL || authz == NULL)
		return WICK_E_INVALID;
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (hint != NULL && (t->hint = strdup(hint)) == NULL)) {
		free(t);
		return WICK_E_ALLOC;
	}
	t->watch = w;
	t->authz = authz;
	t->arg = arg;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		free(t->hint);
		free(t);
		return WICK_E_CRYPTO;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_cb, t);
	SSL_CTX_set_cert_cb(ctx, cert_cb, t);
	*out = t;
	return 0;
}

void
wick_tls_free(struct wick_tls *t)
{
	if (t == NULL)
		return;
	free(t->hint);
	free(t);
}

int
wick_tls_peer_id(void *sslp, char **id)
{
	SSL		*ssl = sslp;
	X509		*peer;
	const char	*why;

	*id = NULL;
	if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK ||
	    (peer = SSL_get0_peer_certificate(ssl)) == NULL)
		return WICK_E_NOT_FOUND;
	return x509_spiffe_id(peer, id, &why) == 0 ? 0 : WICK_E_INVALID;
}
