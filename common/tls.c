/*
 * tls.c: TLS 1.3 over memory BIOs (see tls.h).
 *
 * A tls_ctx keeps the identity, roots and policy, and an SSL_CTX built
 * from them.  Changing the identity or roots builds a fresh SSL_CTX and
 * swaps it in: each SSL holds its own reference to the SSL_CTX it was made
 * from, so live connections keep the old one and new ones get the new one.
 * Session resumption is disabled, so every handshake verifies the peer and
 * runs the hook.  Connections hold a reference on their tls_ctx.
 * Everything here runs on one thread (the loop's).
 */
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"
#include "x509.h"
#include "xmalloc.h"

#define TLS_IO_CHUNK	16384
#define TLS_ERR_TEXT	512

static const unsigned char alpn_h2[] = { 2, 'h', '2' };

struct tls_ctx {
	int			 refs;
	enum tls_role		 role;
	enum tls_peer_cert	 peer_cert;
	SSL_CTX			*ssl_ctx;	/* current snapshot */
	STACK_OF(X509)		*chain;		/* leaf first; NULL if none */
	EVP_PKEY		*key;
	STACK_OF(X509)		*roots;
	tls_verify_fn		 verify;
	void			*verify_arg;
	/* Guards ssl_ctx: a server sets its identity and roots on its
	 * state thread while the loop makes connections from it. */
	pthread_mutex_t		 mu;
};

struct tls_conn {
	struct tls_ctx	*ctx;		/* we hold a reference */
	SSL		*ssl;		/* owns both BIOs */
	BIO		*rbio;		/* ciphertext in */
	BIO		*wbio;		/* ciphertext out */
	int		 done;		/* handshake complete and checked */
	int		 verified;	/* the leaf passed chain and hook */
	int		 shut;		/* we queued close_notify */
	int		 failed;	/* sticky error code, 0 if none */
	int		 hook_err;	/* the hook's rejection, 0 if none */
	char		*peer_id;
	char		 err[TLS_ERR_TEXT];
};

static void
err_add(struct tls_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
err_add(struct tls_conn *c, const char *fmt, ...)
{
	va_list	 ap;
	size_t	 len;

	len = strlen(c->err);
	if (len + 3 >= sizeof(c->err))
		return;
	if (len > 0) {
		memcpy(c->err + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	(void)vsnprintf(c->err + len, sizeof(c->err) - len, fmt, ap);
	va_end(ap);
}

/* Drain OpenSSL's error queue into the connection's error text. */
static void
err_drain(struct tls_conn *c)
{
	const char	*data = NULL;
	unsigned long	 e;
	char		 tmp[256];
	int		 flags = 0;

	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		ERR_error_string_n(e, tmp, sizeof(tmp));
		if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0')
			err_add(c, "%s (%s)", tmp, data);
		else
			err_add(c, "%s", tmp);
	}
}

/* Pick the error code for a failed SSL call, then record the text. */
static int
conn_fail(struct tls_conn *c, int sslerr)
{
	unsigned long	 e;
	long		 vr;
	int		 r = WICK_ERR_PROTOCOL;

	e = ERR_peek_error();
	vr = SSL_get_verify_result(c->ssl);
	if (c->hook_err != 0)
		r = c->hook_err;
	else if (vr != X509_V_OK) {
		r = WICK_ERR_PERM;
		err_add(c, "peer certificate: %s",
		    X509_verify_cert_error_string(vr));
	} else if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
		switch (ERR_GET_REASON(e)) {
		case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
			r = WICK_ERR_PERM;
			break;
		}
	} else if (sslerr == SSL_ERROR_SYSCALL)
		err_add(c, "unexpected end of TLS stream");
	err_drain(c);
	if (c->err[0] == '\0')
		err_add(c, "TLS failure (ssl error %d)", sslerr);
	c->failed = r;
	return r;
}

/* Fail for a reason of our own (not in OpenSSL's queue). */
static int
conn_fail_msg(struct tls_conn *c, int r, const char *msg)
{
	err_drain(c);
	err_add(c, "%s", msg);
	c->failed = r;
	return r;
}

static int
verify_cb(int ok, X509_STORE_CTX *sctx)
{
	struct tls_conn	*c;
	SSL		*ssl;
	X509		*leaf;
	const char	*why = NULL;
	char		*id = NULL;
	int		 r;

	ssl = X509_STORE_CTX_get_ex_data(sctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || (c = SSL_get_app_data(ssl)) == NULL)
		return 0;
	if (!ok)
		return 0;	/* conn_fail reports the verify result */
	if (X509_STORE_CTX_get_error_depth(sctx) != 0)
		return 1;
	leaf = X509_STORE_CTX_get_current_cert(sctx);
	r = x509_spiffe_id(leaf, &id, &why);
	if (r != 0 && r != WICK_ERR_NOT_FOUND) {
		/* SVID rules: one URI SAN, and it is a SPIFFE ID. */
		err_add(c, "peer leaf: %s", why != NULL ? why : wick_strerror(r));
		c->hook_err = r == WICK_ERR_ALLOC ? r : WICK_ERR_PERM;
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	if (c->ctx->verify != NULL &&
	    (r = c->ctx->verify(id, leaf, c->ctx->verify_arg)) != 0) {
		err_add(c, "peer %s rejected: %s", id != NULL ? id : "(no id)",
		    wick_strerror(r));
		c->hook_err = r < 0 ? r : WICK_ERR_PERM;
		free(id);
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	free(c->peer_id);
	c->peer_id = id;
	c->verified = 1;
	return 1;
}

/* Server: refuse a ClientHello without ALPN (we speak only h2). */
static int
client_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct tls_conn		*c = SSL_get_app_data(ssl);
	const unsigned char	*ext = NULL;
	size_t			 len = 0;

	if (!SSL_client_hello_get0_ext(ssl,
	    TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len)) {
		if (c != NULL)
			err_add(c, "client offered no ALPN (need h2)");
		*al = SSL_AD_NO_APPLICATION_PROTOCOL;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

static int
alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	struct tls_conn	*c = SSL_get_app_data(ssl);
	unsigned int	 i = 0;

	while (i < inlen) {
		if (in[i] == 0 || in[i] > inlen - i - 1)
			break;
		if (in[i] == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + in[i];
	}
	if (c != NULL)
		err_add(c, "client did not offer ALPN h2");
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Build an SSL_CTX from the given identity and roots. */
static int
ctx_build(const struct tls_ctx *ctx, STACK_OF(X509) *chain, EVP_PKEY *key,
    STACK_OF(X509) *roots, SSL_CTX **out)
{
	STACK_OF(X509)	*extra = NULL;
	X509_STORE	*store = NULL;
	SSL_CTX		*sc = NULL;
	int		 i, mode, r = WICK_ERR_CRYPTO;

	*out = NULL;
	if ((sc = SSL_CTX_new_ex(NULL, NULL, TLS_method())) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if (!SSL_CTX_set_min_proto_version(sc, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION))
		goto out;
	/* No resumption: every connection verifies its peer and the hook. */
	SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
	if (!SSL_CTX_set_num_tickets(sc, 0))
		goto out;
	/*
	 * Decrypted records may hold tokens: OpenSSL wipes them once read.
	 * Where every OpenSSL free wipes already (secret_crypto_frees()),
	 * a record buffer is wiped as it is released, which is as soon as
	 * it is read (SSL_MODE_RELEASE_BUFFERS below): wiping it first as
	 * well doubled the cost of each message received.
	 */
	SSL_CTX_set_options(sc, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	    (secret_crypto_frees() ? 0 : SSL_OP_CLEANSE_PLAINTEXT));
	/* Idle connections keep no record buffers (about 34 KiB each): what
	 * a thousand idle peers cost is what they must. */
	SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS);

	if (chain != NULL && key != NULL) {
		if (SSL_CTX_use_certificate(sc, sk_X509_value(chain, 0)) != 1 ||
		    SSL_CTX_use_PrivateKey(sc, key) != 1 ||
		    SSL_CTX_check_private_key(sc) != 1) {
			r = WICK_ERR_INVALID;
			goto out;
		}
		if ((extra = sk_X509_new_null()) == NULL) {
			r = WICK_ERR_ALLOC;
			goto out;
		}
		for (i = 1; i < sk_X509_num(chain); i++)
			if (!sk_X509_push(extra, sk_X509_value(chain, i))) {
				r = WICK_ERR_ALLOC;
				goto out;
			}
		/* set1 takes its own references. */
		if (SSL_CTX_set1_chain(sc, extra) != 1)
			goto out;
	}

	if ((store = X509_STORE_new()) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	for (i = 0; roots != NULL && i < sk_X509_num(roots); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(roots, i)) != 1)
			goto out;
	SSL_CTX_set_cert_store(sc, store);	/* sc owns store now */
	store = NULL;

	if (ctx->role == TLS_ROLE_CLIENT)
		mode = SSL_VERIFY_PEER;
	else if (ctx->peer_cert == TLS_PEER_CERT_REQUIRED)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	else if (ctx->peer_cert == TLS_PEER_CERT_OPTIONAL)
		mode = SSL_VERIFY_PEER;
	else
		mode = SSL_VERIFY_NONE;
	SSL_CTX_set_verify(sc, mode, verify_cb);
	SSL_CTX_set_verify_depth(sc, TLS_MAX_CHAIN);
	if (ctx->role == TLS_ROLE_SERVER) {
		SSL_CTX_set_client_hello_cb(sc, client_hello_cb, NULL);
		SSL_CTX_set_alpn_select_cb(sc, alpn_select_cb, NULL);
	}
	*out = sc;
	sc = NULL;
	r = 0;
out:
	if (r != 0)
		ERR_clear_error();
	sk_X509_free(extra);
	X509_STORE_free(store);
	SSL_CTX_free(sc);
	return r;
}

int
tls_ctx_new(enum tls_role role, enum tls_peer_cert peer_cert,
    struct tls_ctx **out)
{
	struct tls_ctx	*ctx;
	int		 r;

	*out = NULL;
	if (role != TLS_ROLE_CLIENT && role != TLS_ROLE_SERVER)
		return WICK_ERR_INVALID;
	if (peer_cert != TLS_PEER_CERT_NONE &&
	    peer_cert != TLS_PEER_CERT_OPTIONAL &&
	    peer_cert != TLS_PEER_CERT_REQUIRED)
		return WICK_ERR_INVALID;
	ctx = xcalloc(1, sizeof(*ctx));
	if (pthread_mutex_init(&ctx->mu, NULL) != 0)
		fatal("cannot initialise a mutex");
	ctx->refs = 1;
	ctx->role = role;
	/* A client always verifies the server. */
	ctx->peer_cert = role == TLS_ROLE_CLIENT ? TLS_PEER_CERT_REQUIRED :
	    peer_cert;
	if ((r = ctx_build(ctx, NULL, NULL, NULL, &ctx->ssl_ctx)) != 0) {
		pthread_mutex_destroy(&ctx->mu);
		free(ctx);
		return r;
	}
	*out = ctx;
	return 0;
}

static void
ctx_unref(struct tls_ctx *ctx)
{
	if (ctx == NULL || --ctx->refs > 0)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	sk_X509_pop_free(ctx->chain, X509_free);
	EVP_PKEY_free(ctx->key);
	sk_X509_pop_free(ctx->roots, X509_free);
	pthread_mutex_destroy(&ctx->mu);
	free(ctx);
}

void
tls_ctx_free(struct tls_ctx *ctx)
{
	ctx_unref(ctx);
}

int
tls_ctx_set_identity(struct tls_ctx *ctx, STACK_OF(X509) *chain,
    EVP_PKEY *key)
{
	STACK_OF(X509)	*nchain = NULL;
	SSL_CTX		*sc = NULL;
	int		 r;

	if (chain == NULL || key == NULL || sk_X509_num(chain) < 1)
		return WICK_ERR_INVALID;
	if (sk_X509_num(chain) > TLS_MAX_CHAIN)
		return WICK_ERR_LIMIT;
	if ((r = ctx_build(ctx, chain, key, ctx->roots, &sc)) != 0)
		return r;
	/* New stack with a reference per cert; ctx->chain drops them. */
	if ((nchain = X509_chain_up_ref(chain)) == NULL) {
		SSL_CTX_free(sc);
		return WICK_ERR_ALLOC;
	}
	/* Reference dropped by ctx_unref or the next set_identity. */
	if (!EVP_PKEY_up_ref(key)) {
		sk_X509_pop_free(nchain, X509_free);
		SSL_CTX_free(sc);
		return WICK_ERR_CRYPTO;
	}
	sk_X509_pop_free(ctx->chain, X509_free);
	EVP_PKEY_free(ctx->key);
	ctx->chain = nchain;
	ctx->key = key;
	/* Live SSLs hold their own reference to the old SSL_CTX. */
	pthread_mutex_lock(&ctx->mu);
	SSL_CTX_free(ctx->ssl_ctx);
	ctx->ssl_ctx = sc;
	pthread_mutex_unlock(&ctx->mu);
	return 0;
}

int
tls_ctx_set_roots(struct tls_ctx *ctx, STACK_OF(X509) *roots)
{
	STACK_OF(X509)	*nroots = NULL;
	SSL_CTX		*sc = NULL;
	int		 r;

	if (roots == NULL)
		return WICK_ERR_INVALID;
	if (sk_X509_num(roots) > TLS_MAX_ROOTS)
		return WICK_ERR_LIMIT;
	if ((r = ctx_build(ctx, ctx->chain, ctx->key, roots, &sc)) != 0)
		return r;
	/* ctx->roots holds a reference per cert, dropped on replace/free. */
	if ((nroots = X509_chain_up_ref(roots)) == NULL) {
		SSL_CTX_free(sc);
		return WICK_ERR_ALLOC;
	}
	sk_X509_pop_free(ctx->roots, X509_free);
	ctx->roots = nroots;
	pthread_mutex_lock(&ctx->mu);
	SSL_CTX_free(ctx->ssl_ctx);
	ctx->ssl_ctx = sc;
	pthread_mutex_unlock(&ctx->mu);
	return 0;
}

void
tls_ctx_set_verify(struct tls_ctx *ctx, tls_verify_fn fn, void *arg)
{
	ctx->verify = fn;
	ctx->verify_arg = arg;
}

int
tls_ctx_load_files(struct tls_ctx *ctx, const char *chain_pem,
    const char *key_pem, const char *roots_pem)
{
	STACK_OF(X509)	*chain = NULL, *roots = NULL;
	EVP_PKEY	*key = NULL;
	int		 r;

	if ((chain_pem == NULL) != (key_pem == NULL))
		return WICK_ERR_INVALID;
	if (chain_pem != NULL) {
		if ((r = x509_load_chain_file(chain_pem, &chain)) != 0 ||
		    (r = x509_load_key_file(key_pem, &key)) != 0)
			goto out;
	}
	if (roots_pem != NULL &&
	    (r = x509_load_certs_file(roots_pem, TLS_MAX_ROOTS, &roots)) != 0)
		goto out;
	if (roots != NULL && (r = tls_ctx_set_roots(ctx, roots)) != 0) {
		log_error_f("%s: cannot use as trust roots", roots_pem);
		goto out;
	}
	if (chain != NULL && (r = tls_ctx_set_identity(ctx, chain, key)) != 0) {
		log_error_f("%s, %s: certificate and key do not make an "
		    "identity", chain_pem, key_pem);
		goto out;
	}
	r = 0;
out:
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(roots, X509_free);
	EVP_PKEY_free(key);
	return r;
}

int
tls_conn_new(struct tls_ctx *ctx, const char *sni, struct tls_conn **out)
{
	struct tls_conn	*c = NULL;
	int		 r = WICK_ERR_ALLOC;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return WICK_ERR_ALLOC;
	c->ctx = ctx;
	ctx->refs++;			/* dropped in tls_conn_free */
	/* SSL_new takes a reference on the current SSL_CTX. */
	pthread_mutex_lock(&ctx->mu);
	c->ssl = SSL_new(ctx->ssl_ctx);
	pthread_mutex_unlock(&ctx->mu);
	if (c->ssl == NULL)
		goto out;
	if ((c->rbio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if ((c->wbio = BIO_new(BIO_s_mem())) == NULL) {
		BIO_free(c->rbio);
		c->rbio = NULL;
		goto out;
	}
	BIO_set_mem_eof_return(c->rbio, -1);	/* empty means "retry" */
	BIO_set_mem_eof_return(c->wbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);	/* ssl owns both */
	SSL_set_app_data(c->ssl, c);
	if (ctx->role == TLS_ROLE_CLIENT) {
		SSL_set_connect_state(c->ssl);
		/* Returns 0 on success, unlike most of OpenSSL. */
		if (SSL_set_alpn_protos(c->ssl, alpn_h2, sizeof(alpn_h2)) != 0)
			goto out;
		if (sni != NULL && SSL_set_tlsext_host_name(c->ssl, sni) != 1) {
			r = WICK_ERR_INVALID;
			goto out;
		}
	} else
		SSL_set_accept_state(c->ssl);
	*out = c;
	c = NULL;
	r = 0;
out:
	if (r != 0)
		ERR_clear_error();
	tls_conn_free(c);
	return r;
}

void
tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	free(c->peer_id);
	ctx_unref(c->ctx);
	free(c);
}

int
tls_conn_feed(struct tls_conn *c, const uint8_t *p, size_t len)
{
	size_t	 pending;

	if (c->failed != 0)
		return c->failed;
	pending = BIO_ctrl_pending(c->rbio);
	if (len > TLS_MAX_INPUT || pending > TLS_MAX_INPUT - len)
		return WICK_ERR_LIMIT;
	if (len == 0)
		return 0;
	if (BIO_write(c->rbio, p, (int)len) != (int)len)
		return WICK_ERR_ALLOC;
	return 0;
}

int
tls_conn_handshake(struct tls_conn *c)
{
	const unsigned char	*proto = NULL;
	unsigned int		 plen = 0;
	int			 rc, e;

	if (c->failed != 0)
		return c->failed;
	if (c->done)
		return 0;
	ERR_clear_error();
	rc = SSL_do_handshake(c->ssl);
	if (rc != 1) {
		e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_WANT_READ)
			return WICK_ERR_AGAIN;
		return conn_fail(c, e);
	}
	SSL_get0_alpn_selected(c->ssl, &proto, &plen);
	if (plen != 2 || memcmp(proto, "h2", 2) != 0)
		return conn_fail_msg(c, WICK_ERR_PROTOCOL,
		    "peer did not select ALPN h2");
	if (SSL_get0_peer_certificate(c->ssl) != NULL) {
		if (SSL_get_verify_result(c->ssl) != X509_V_OK || !c->verified)
			return conn_fail_msg(c, WICK_ERR_PERM,
			    "peer certificate not verified");
	} else if (c->ctx->role == TLS_ROLE_CLIENT ||
	    c->ctx->peer_cert == TLS_PEER_CERT_REQUIRED)
		return conn_fail_msg(c, WICK_ERR_PERM,
		    "peer sent no certificate");
	c->done = 1;
	return 0;
}

/* Reserve up to want bytes in out, halving on WICK_ERR_LIMIT. */
static int
reserve_some(struct buf *out, size_t want, uint8_t **p, size_t *got)
{
	int	 r;

	*got = 0;
	for (;;) {
		if ((r = buf_reserve(out, want, p)) == 0) {
			*got = want;
			return 0;
		}
		if (r != WICK_ERR_LIMIT || want == 1)
			return r;
		want /= 2;
	}
}

int
tls_conn_readable(const struct tls_conn *c)
{
	return c->failed != 0 || !c->done || SSL_has_pending(c->ssl) ||
	    BIO_ctrl_pending(c->rbio) > 0;
}

int
tls_conn_read(struct tls_conn *c, struct buf *out)
{
	uint8_t	*p;
	size_t	 room, n, total = 0;
	int	 rc, e, r;

	if (c->failed != 0)
		return c->failed;
	if (!c->done)
		return WICK_ERR_STATE;
	for (;;) {
		/*
		 * Once something was read, read on only when there is more:
		 * a read that finds nothing sets up a record buffer and
		 * releases it again (SSL_MODE_RELEASE_BUFFERS), wiped twice,
		 * for every message a peer sends.
		 */
		if (total > 0 && !tls_conn_readable(c))
			return 0;
		if ((r = reserve_some(out, TLS_IO_CHUNK, &p, &room)) != 0)
			return total > 0 && r == WICK_ERR_LIMIT ? 0 : r;
		ERR_clear_error();
		n = 0;
		rc = SSL_read_ex(c->ssl, p, room, &n);
		if (rc == 1) {
			buf_commit(out, n);
			total += n;
			continue;
		}
		/* Nothing was written: the reservation need not be wiped. */
		buf_commit(out, 0);
		e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_WANT_READ)
			return 0;
		if (e == SSL_ERROR_ZERO_RETURN)
			return total > 0 ? 0 : WICK_ERR_EOF;
		if (total > 0) {
			/* Hand over what came before the error first. */
			(void)conn_fail(c, e);
			return 0;
		}
		return conn_fail(c, e);
	}
}

int
tls_conn_write(struct tls_conn *c, const uint8_t *p, size_t len)
{
	size_t	 off = 0, n, chunk;
	int	 e;

	if (c->failed != 0)
		return c->failed;
	if (!c->done || c->shut)
		return WICK_ERR_STATE;
	while (off < len) {
		chunk = len - off > INT_MAX ? INT_MAX : len - off;
		ERR_clear_error();
		n = 0;
		if (SSL_write_ex(c->ssl, p + off, chunk, &n) != 1) {
			e = SSL_get_error(c->ssl, 0);
			return conn_fail(c, e);
		}
		off += n;
	}
	return 0;
}

int
tls_conn_take_output(struct tls_conn *c, struct buf *out)
{
	uint8_t	*p;
	size_t	 pending, room;
	int	 n, r;

	while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
		if ((r = reserve_some(out, pending > TLS_IO_CHUNK ?
		    TLS_IO_CHUNK : pending, &p, &room)) != 0)
			return r;
		if ((n = BIO_read(c->wbio, p, (int)room)) <= 0)
			return WICK_ERR_INTERNAL;
		buf_commit(out, (size_t)n);
	}
	return 0;
}

int
tls_conn_shutdown(struct tls_conn *c)
{
	int	 rc;

	if (c->failed != 0)
		return c->failed;
	if (!c->done)
		return WICK_ERR_STATE;
	if (c->shut)
		return 0;
	ERR_clear_error();
	rc = SSL_shutdown(c->ssl);
	if (rc < 0)
		return conn_fail(c, SSL_get_error(c->ssl, rc));
	c->shut = 1;
	return 0;
}

const char *
tls_conn_peer_id(const struct tls_conn *c)
{
	return c->done ? c->peer_id : NULL;
}

X509 *
tls_conn_peer_cert(const struct tls_conn *c)
{
	return c->done ? SSL_get0_peer_certificate(c->ssl) : NULL;
}

const char *
tls_conn_error(const struct tls_conn *c)
{
	return c->err[0] != '\0' ? c->err : "no error";
}
