/*
 * test_tls.c: TLS 1.3 over memory BIOs, a client and a server tls_conn
 * (or a raw OpenSSL peer) pumped against each other in memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "tls.h"
#include "helpers/testpki.h"

#define ID_CA		"spiffe://example.org"
#define ID_SERVER	"spiffe://example.org/server"
#define ID_CLIENT	"spiffe://example.org/client"

static struct {
	X509		*ca, *oca, *srv, *cli, *ocli;
	EVP_PKEY	*cak, *ocak, *srvk, *clik, *oclik;
} pki;

struct hook_log {
	int	 calls;
	int	 ret;
	char	 last[256];
	int	 last_null;
};

static int
hook(const char *id, X509 *leaf, void *arg)
{
	struct hook_log	*h = arg;

	assert_non_null(leaf);
	h->calls++;
	h->last_null = id == NULL;
	if (id != NULL)
		snprintf(h->last, sizeof(h->last), "%s", id);
	return h->ret;
}

static int
setup(void **state)
{
	if (testpki_make_ca("ca", ID_CA, &pki.ca, &pki.cak) != 0 ||
	    testpki_make_ca("other", ID_CA, &pki.oca, &pki.ocak) != 0 ||
	    testpki_make_leaf(pki.ca, pki.cak, "srv",
	    "URI:" ID_SERVER ",DNS:localhost", &pki.srv, &pki.srvk) != 0 ||
	    testpki_make_leaf(pki.ca, pki.cak, "cli", "URI:" ID_CLIENT,
	    &pki.cli, &pki.clik) != 0 ||
	    testpki_make_leaf(pki.oca, pki.ocak, "ocli", "URI:" ID_CLIENT,
	    &pki.ocli, &pki.oclik) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	X509_free(pki.ca);
	X509_free(pki.oca);
	X509_free(pki.srv);
	X509_free(pki.cli);
	X509_free(pki.ocli);
	EVP_PKEY_free(pki.cak);
	EVP_PKEY_free(pki.ocak);
	EVP_PKEY_free(pki.srvk);
	EVP_PKEY_free(pki.clik);
	EVP_PKEY_free(pki.oclik);
	return 0;
}

static STACK_OF(X509) *
one(X509 *x)
{
	STACK_OF(X509)	*sk = sk_X509_new_null();

	assert_non_null(sk);
	assert_true(X509_up_ref(x));
	assert_true(sk_X509_push(sk, x) > 0);
	return sk;
}

static struct tls_ctx *
make_ctx(enum tls_role role, enum tls_peer_cert pc, X509 *leaf,
    EVP_PKEY *key, X509 *root)
{
	struct tls_ctx	*ctx = NULL;
	STACK_OF(X509)	*sk;

	assert_int_equal(tls_ctx_new(role, pc, &ctx), 0);
	if (leaf != NULL) {
		sk = one(leaf);
		assert_int_equal(tls_ctx_set_identity(ctx, sk, key), 0);
		sk_X509_pop_free(sk, X509_free);
	}
	if (root != NULL) {
		sk = one(root);
		assert_int_equal(tls_ctx_set_roots(ctx, sk), 0);
		sk_X509_pop_free(sk, X509_free);
	}
	return ctx;
}

/* Move ciphertext from one conn to the other; returns bytes moved. */
static size_t
xfer(struct tls_conn *from, struct tls_conn *to)
{
	struct buf	 b;
	size_t		 n;
	int		 r;

	buf_init(&b, TLS_MAX_INPUT);
	r = tls_conn_take_output(from, &b);
	assert_true(r == 0 || r == WICK_ERR_LIMIT);
	n = buf_len(&b);
	/* A failed receiver refuses input; its next call reports why. */
	if (n > 0 && tls_conn_feed(to, buf_ptr(&b), n) != 0)
		n = 0;
	buf_cleanup(&b);
	return n;
}

static void
handshake(struct tls_conn *c, struct tls_conn *s, int *rc, int *rs)
{
	int	 i;

	*rc = *rs = WICK_ERR_AGAIN;
	for (i = 0; i < 20; i++) {
		*rc = tls_conn_handshake(c);
		xfer(c, s);
		*rs = tls_conn_handshake(s);
		if (xfer(s, c) == 0 && *rc != WICK_ERR_AGAIN &&
		    *rs != WICK_ERR_AGAIN)
			break;
	}
	*rc = tls_conn_handshake(c);
}

static void
test_mtls_data_and_close(void **state)
{
	struct tls_ctx	*sctx, *cctx;
	struct tls_conn	*s = NULL, *c = NULL;
	struct hook_log	 hs = { 0 }, hc = { 0 };
	struct buf	 got, out;
	uint8_t		*big;
	size_t		 bigsz = 1024 * 1024;
	int		 rc, rs, r, i;

	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_REQUIRED, pki.srv,
	    pki.srvk, pki.ca);
	cctx = make_ctx(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED, pki.cli,
	    pki.clik, pki.ca);
	tls_ctx_set_verify(sctx, hook, &hs);
	tls_ctx_set_verify(cctx, hook, &hc);
	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	assert_int_equal(tls_conn_new(cctx, "localhost", &c), 0);
	/* Nothing can be read or written before the handshake. */
	buf_init(&got, 2 * bigsz);
	assert_int_equal(tls_conn_read(c, &got), WICK_ERR_STATE);
	assert_int_equal(tls_conn_write(c, (const uint8_t *)"x", 1),
	    WICK_ERR_STATE);

	handshake(c, s, &rc, &rs);
	assert_int_equal(rc, 0);
	assert_int_equal(rs, 0);
	assert_int_equal(hs.calls, 1);
	assert_string_equal(hs.last, ID_CLIENT);
	assert_int_equal(hc.calls, 1);
	assert_string_equal(hc.last, ID_SERVER);
	assert_string_equal(tls_conn_peer_id(s), ID_CLIENT);
	assert_string_equal(tls_conn_peer_id(c), ID_SERVER);
	assert_int_equal(X509_cmp(tls_conn_peer_cert(s), pki.cli), 0);
	assert_int_equal(X509_cmp(tls_conn_peer_cert(c), pki.srv), 0);

	/* Client to server, small. */
	assert_int_equal(tls_conn_write(c, (const uint8_t *)"ping", 4), 0);
	xfer(c, s);
	assert_int_equal(tls_conn_read(s, &got), 0);
	assert_int_equal(buf_len(&got), 4);
	assert_memory_equal(buf_ptr(&got), "ping", 4);
	buf_reset(&got);
	/* Nothing more pending: 0 and no bytes. */
	assert_int_equal(tls_conn_read(s, &got), 0);
	assert_int_equal(buf_len(&got), 0);

	/* Server to client, 1 MiB, through a small output buffer. */
	big = malloc(bigsz);
	assert_non_null(big);
	assert_int_equal(RAND_bytes(big, (int)bigsz), 1);
	assert_int_equal(tls_conn_write(s, big, bigsz), 0);
	buf_init(&out, 64 * 1024);
	for (i = 0; i < 1000; i++) {
		r = tls_conn_take_output(s, &out);
		assert_true(r == 0 || r == WICK_ERR_LIMIT);
		if (buf_len(&out) == 0)
			break;
		assert_int_equal(tls_conn_feed(c, buf_ptr(&out),
		    buf_len(&out)), 0);
		buf_reset(&out);
		assert_int_equal(tls_conn_read(c, &got), 0);
	}
	assert_int_equal(buf_len(&got), bigsz);
	assert_memory_equal(buf_ptr(&got), big, bigsz);
	buf_reset(&got);

	/* close_notify from the client: the server reads EOF, twice. */
	assert_int_equal(tls_conn_shutdown(c), 0);
	assert_int_equal(tls_conn_write(c, (const uint8_t *)"x", 1),
	    WICK_ERR_STATE);
	xfer(c, s);
	assert_int_equal(tls_conn_read(s, &got), WICK_ERR_EOF);
	assert_int_equal(tls_conn_read(s, &got), WICK_ERR_EOF);
	assert_int_equal(buf_len(&got), 0);
	assert_int_equal(tls_conn_shutdown(s), 0);
	xfer(s, c);
	assert_int_equal(tls_conn_read(c, &got), WICK_ERR_EOF);

	free(big);
	buf_cleanup(&got);
	buf_cleanup(&out);
	tls_conn_free(s);
	tls_conn_free(c);
	/* Contexts may go before or after their conns; here after. */
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
}

/* Run a client/server pair that is expected to fail; returns both codes. */
static void
run_failing(struct tls_ctx *cctx, struct tls_ctx *sctx, int *rc, int *rs,
    int *rread)
{
	struct tls_conn	*s = NULL, *c = NULL;
	struct buf	 got;

	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	assert_int_equal(tls_conn_new(cctx, NULL, &c), 0);
	handshake(c, s, rc, rs);
	buf_init(&got, 1024);
	*rread = *rc == 0 ? tls_conn_read(c, &got) : *rc;
	assert_string_not_equal(tls_conn_error(*rs != 0 ? s : c), "no error");
	buf_cleanup(&got);
	tls_conn_free(s);
	tls_conn_free(c);
}

static void
test_foreign_ca_client_rejected(void **state)
{
	struct tls_ctx	*sctx, *cctx;
	struct hook_log	 hs = { 0 };
	int		 rc, rs, rr;

	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_REQUIRED, pki.srv,
	    pki.srvk, pki.ca);
	tls_ctx_set_verify(sctx, hook, &hs);
	/* Same SPIFFE ID, but signed by a CA the server does not trust. */
	cctx = make_ctx(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED, pki.ocli,
	    pki.oclik, pki.ca);
	run_failing(cctx, sctx, &rc, &rs, &rr);
	assert_int_equal(rs, WICK_ERR_PERM);
	assert_int_equal(hs.calls, 0);
	/* TLS 1.3: the client learns it from the alert, on read. */
	assert_true(rr < 0 && rr != WICK_ERR_EOF && rr != WICK_ERR_AGAIN);
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
}

static void
test_hook_rejects(void **state)
{
	struct tls_ctx	*sctx, *cctx;
	struct hook_log	 hs = { .ret = WICK_ERR_PERM };
	struct hook_log	 hc = { .ret = WICK_ERR_NOT_FOUND };
	int		 rc, rs, rr;

	/* The server's hook refuses the client. */
	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_REQUIRED, pki.srv,
	    pki.srvk, pki.ca);
	cctx = make_ctx(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED, pki.cli,
	    pki.clik, pki.ca);
	tls_ctx_set_verify(sctx, hook, &hs);
	run_failing(cctx, sctx, &rc, &rs, &rr);
	assert_int_equal(rs, WICK_ERR_PERM);
	assert_int_equal(hs.calls, 1);
	assert_string_equal(hs.last, ID_CLIENT);
	assert_true(rr < 0 && rr != WICK_ERR_AGAIN);

	/* The client's hook refuses the server, with its own code. */
	tls_ctx_set_verify(sctx, NULL, NULL);
	tls_ctx_set_verify(cctx, hook, &hc);
	run_failing(cctx, sctx, &rc, &rs, &rr);
	assert_int_equal(rc, WICK_ERR_NOT_FOUND);
	assert_int_equal(hc.calls, 1);
	assert_string_equal(hc.last, ID_SERVER);
	assert_true(rs < 0 && rs != WICK_ERR_AGAIN);
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
}

static void
test_client_cert_policy(void **state)
{
	struct tls_ctx	*sctx, *cctx;
	struct tls_conn	*s = NULL, *c = NULL;
	struct hook_log	 hs = { 0 };
	int		 rc, rs, rr;

	/* REQUIRED and the client has no certificate. */
	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_REQUIRED, pki.srv,
	    pki.srvk, pki.ca);
	cctx = make_ctx(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED, NULL, NULL,
	    pki.ca);
	run_failing(cctx, sctx, &rc, &rs, &rr);
	assert_int_equal(rs, WICK_ERR_PERM);
	assert_true(rr < 0 && rr != WICK_ERR_AGAIN);
	tls_ctx_free(sctx);

	/* OPTIONAL: accepted without an ID. */
	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_OPTIONAL, pki.srv,
	    pki.srvk, pki.ca);
	tls_ctx_set_verify(sctx, hook, &hs);
	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	assert_int_equal(tls_conn_new(cctx, NULL, &c), 0);
	handshake(c, s, &rc, &rs);
	assert_int_equal(rc, 0);
	assert_int_equal(rs, 0);
	assert_null(tls_conn_peer_id(s));
	assert_null(tls_conn_peer_cert(s));
	assert_string_equal(tls_conn_peer_id(c), ID_SERVER);
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);

	/* NONE: the client's certificate is not asked for. */
	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_NONE, pki.srv,
	    pki.srvk, NULL);
	cctx = make_ctx(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED, pki.cli,
	    pki.clik, pki.ca);
	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	assert_int_equal(tls_conn_new(cctx, NULL, &c), 0);
	handshake(c, s, &rc, &rs);
	assert_int_equal(rc, 0);
	assert_int_equal(rs, 0);
	assert_null(tls_conn_peer_id(s));
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
}

static void
test_client_needs_roots_and_valid_svid(void **state)
{
	struct tls_ctx	*sctx, *cctx;
	X509		*multi = NULL, *noid = NULL;
	EVP_PKEY	*mk = NULL, *nk = NULL;
	struct hook_log	 hc = { 0 };
	struct tls_conn	*s = NULL, *c = NULL;
	int		 rc, rs, rr;

	/* A client whose roots do not include the server's CA. */
	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_NONE, pki.srv,
	    pki.srvk, NULL);
	cctx = make_ctx(TLS_ROLE_CLIENT, TLS_PEER_CERT_NONE, NULL, NULL,
	    pki.oca);
	run_failing(cctx, sctx, &rc, &rs, &rr);
	assert_int_equal(rc, WICK_ERR_PERM);
	tls_ctx_free(sctx);

	/* A server leaf with two URI SANs is no SVID: rejected. */
	assert_int_equal(testpki_make_leaf(pki.ca, pki.cak, "multi",
	    "URI:" ID_SERVER ",URI:spiffe://example.org/x", &multi, &mk), 0);
	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_NONE, multi, mk, NULL);
	assert_int_equal(tls_ctx_set_roots(cctx, (STACK_OF(X509) *)NULL),
	    WICK_ERR_INVALID);
	tls_ctx_free(cctx);
	cctx = make_ctx(TLS_ROLE_CLIENT, TLS_PEER_CERT_NONE, NULL, NULL,
	    pki.ca);
	tls_ctx_set_verify(cctx, hook, &hc);
	run_failing(cctx, sctx, &rc, &rs, &rr);
	assert_int_equal(rc, WICK_ERR_PERM);
	assert_int_equal(hc.calls, 0);
	tls_ctx_free(sctx);

	/* A leaf without URI SAN: the hook sees a NULL ID. */
	assert_int_equal(testpki_make_leaf(pki.ca, pki.cak, "noid",
	    "DNS:localhost", &noid, &nk), 0);
	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_NONE, noid, nk, NULL);
	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	assert_int_equal(tls_conn_new(cctx, NULL, &c), 0);
	handshake(c, s, &rc, &rs);
	assert_int_equal(rc, 0);
	assert_int_equal(hc.calls, 1);
	assert_true(hc.last_null);
	assert_null(tls_conn_peer_id(c));
	assert_non_null(tls_conn_peer_cert(c));
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
	X509_free(multi);
	X509_free(noid);
	EVP_PKEY_free(mk);
	EVP_PKEY_free(nk);
}

/* A raw OpenSSL client against our server. */
static int
raw_client_vs_server(int maxver, const unsigned char *alpn, size_t alpnlen)
{
	struct tls_ctx	*sctx;
	struct tls_conn	*s = NULL;
	SSL_CTX		*rctx;
	SSL		*ssl;
	BIO		*rb, *wb;
	struct buf	 b;
	uint8_t		 tmp[16384];
	int		 i, n, rs = WICK_ERR_AGAIN, rr = 0;

	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_NONE, pki.srv,
	    pki.srvk, NULL);
	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	rctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(rctx);
	assert_int_equal(SSL_CTX_set_max_proto_version(rctx, maxver), 1);
	SSL_CTX_set_verify(rctx, SSL_VERIFY_NONE, NULL);
	ssl = SSL_new(rctx);
	assert_non_null(ssl);
	if (alpn != NULL)
		assert_int_equal(SSL_set_alpn_protos(ssl, alpn,
		    (unsigned int)alpnlen), 0);
	rb = BIO_new(BIO_s_mem());
	wb = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(rb, -1);
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	buf_init(&b, TLS_MAX_INPUT);
	for (i = 0; i < 10; i++) {
		rr = SSL_do_handshake(ssl);
		while ((n = BIO_read(wb, tmp, sizeof(tmp))) > 0)
			if (tls_conn_feed(s, tmp, (size_t)n) != 0)
				break;
		rs = tls_conn_handshake(s);
		assert_true(tls_conn_take_output(s, &b) == 0);
		if (buf_len(&b) > 0)
			assert_int_equal(BIO_write(rb, buf_ptr(&b),
			    (int)buf_len(&b)), (int)buf_len(&b));
		buf_reset(&b);
		if (rs != WICK_ERR_AGAIN && rr == 1)
			break;
	}
	rr = SSL_do_handshake(ssl);
	if (rs == 0)
		assert_int_equal(rr, 1);
	else
		assert_int_not_equal(rr, 1);
	buf_cleanup(&b);
	SSL_free(ssl);
	SSL_CTX_free(rctx);
	tls_conn_free(s);
	tls_ctx_free(sctx);
	return rs;
}

static void
test_version_and_alpn_enforced(void **state)
{
	static const unsigned char h2[] = { 2, 'h', '2' };
	static const unsigned char h11[] = { 8, 'h', 't', 't', 'p', '/', '1',
	    '.', '1' };
	static const unsigned char both[] = { 8, 'h', 't', 't', 'p', '/', '1',
	    '.', '1', 2, 'h', '2' };

	/* Baseline: the raw client succeeds with TLS 1.3 and h2. */
	assert_int_equal(raw_client_vs_server(TLS1_3_VERSION, h2,
	    sizeof(h2)), 0);
	assert_int_equal(raw_client_vs_server(TLS1_3_VERSION, both,
	    sizeof(both)), 0);
	/* TLS 1.2 only. */
	assert_int_equal(raw_client_vs_server(TLS1_2_VERSION, h2,
	    sizeof(h2)), WICK_ERR_PROTOCOL);
	/* No ALPN, or no h2 in it. */
	assert_int_equal(raw_client_vs_server(TLS1_3_VERSION, NULL, 0),
	    WICK_ERR_PROTOCOL);
	assert_int_equal(raw_client_vs_server(TLS1_3_VERSION, h11,
	    sizeof(h11)), WICK_ERR_PROTOCOL);
}

static void
test_identity_rotation(void **state)
{
	struct tls_ctx	*sctx, *cctx;
	struct tls_conn	*s1 = NULL, *c1 = NULL, *s2 = NULL, *c2 = NULL;
	STACK_OF(X509)	*sk;
	X509		*srv2 = NULL;
	EVP_PKEY	*k2 = NULL;
	struct buf	 got;
	int		 rc, rs;

	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_REQUIRED, pki.srv,
	    pki.srvk, pki.ca);
	cctx = make_ctx(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED, pki.cli,
	    pki.clik, pki.ca);
	assert_int_equal(tls_conn_new(sctx, NULL, &s1), 0);
	assert_int_equal(tls_conn_new(cctx, NULL, &c1), 0);
	handshake(c1, s1, &rc, &rs);
	assert_int_equal(rc, 0);
	assert_int_equal(rs, 0);
	assert_int_equal(X509_cmp(tls_conn_peer_cert(c1), pki.srv), 0);

	/* Rotate: a key that does not match the leaf is refused. */
	assert_int_equal(testpki_make_leaf(pki.ca, pki.cak, "srv2",
	    "URI:spiffe://example.org/server2", &srv2, &k2), 0);
	sk = one(srv2);
	assert_int_equal(tls_ctx_set_identity(sctx, sk, pki.srvk),
	    WICK_ERR_INVALID);
	assert_int_equal(tls_ctx_set_identity(sctx, sk, k2), 0);
	sk_X509_pop_free(sk, X509_free);

	/* The old connection keeps working. */
	buf_init(&got, 1024);
	assert_int_equal(tls_conn_write(s1, (const uint8_t *)"old", 3), 0);
	xfer(s1, c1);
	assert_int_equal(tls_conn_read(c1, &got), 0);
	assert_int_equal(buf_len(&got), 3);
	assert_memory_equal(buf_ptr(&got), "old", 3);

	/* A new one sees the new leaf. */
	assert_int_equal(tls_conn_new(sctx, NULL, &s2), 0);
	assert_int_equal(tls_conn_new(cctx, NULL, &c2), 0);
	handshake(c2, s2, &rc, &rs);
	assert_int_equal(rc, 0);
	assert_int_equal(rs, 0);
	assert_int_equal(X509_cmp(tls_conn_peer_cert(c2), srv2), 0);
	assert_string_equal(tls_conn_peer_id(c2),
	    "spiffe://example.org/server2");
	tls_conn_free(s2);
	tls_conn_free(c2);

	/* Rotating the client's roots away from our CA breaks new conns. */
	sk = one(pki.oca);
	assert_int_equal(tls_ctx_set_roots(cctx, sk), 0);
	sk_X509_pop_free(sk, X509_free);
	assert_int_equal(tls_conn_new(sctx, NULL, &s2), 0);
	assert_int_equal(tls_conn_new(cctx, NULL, &c2), 0);
	handshake(c2, s2, &rc, &rs);
	assert_int_equal(rc, WICK_ERR_PERM);

	/* Freeing the contexts first is fine: conns hold a reference. */
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
	assert_int_equal(tls_conn_write(c1, (const uint8_t *)"late", 4), 0);
	xfer(c1, s1);
	buf_reset(&got);
	assert_int_equal(tls_conn_read(s1, &got), 0);
	assert_int_equal(buf_len(&got), 4);
	tls_conn_free(s2);
	tls_conn_free(c2);
	tls_conn_free(s1);
	tls_conn_free(c1);
	buf_cleanup(&got);
	X509_free(srv2);
	EVP_PKEY_free(k2);
}

static void
test_garbage_and_limits(void **state)
{
	struct tls_ctx	*sctx, *cctx;
	struct tls_conn	*s = NULL, *c = NULL;
	uint8_t		 junk[4096], *big;
	struct buf	 got;
	int		 r, rc, rs;

	sctx = make_ctx(TLS_ROLE_SERVER, TLS_PEER_CERT_REQUIRED, pki.srv,
	    pki.srvk, pki.ca);
	cctx = make_ctx(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED, pki.cli,
	    pki.clik, pki.ca);

	/* Random bytes, and a handshake record header with a huge length. */
	assert_int_equal(RAND_bytes(junk, sizeof(junk)), 1);
	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	assert_int_equal(tls_conn_feed(s, junk, sizeof(junk)), 0);
	r = tls_conn_handshake(s);
	assert_true(r < 0 && r != WICK_ERR_AGAIN);
	assert_string_not_equal(tls_conn_error(s), "no error");
	/* Sticky. */
	assert_int_equal(tls_conn_handshake(s), r);
	tls_conn_free(s);
	memcpy(junk, "\x16\x03\x01\xff\xff\x01\xff\xff\xff", 9);
	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	assert_int_equal(tls_conn_feed(s, junk, sizeof(junk)), 0);
	r = tls_conn_handshake(s);
	assert_true(r < 0 && r != WICK_ERR_AGAIN);
	tls_conn_free(s);

	/* Input buffering is bounded. */
	big = calloc(1, TLS_MAX_INPUT + 1);
	assert_non_null(big);
	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	assert_int_equal(tls_conn_feed(s, big, TLS_MAX_INPUT + 1),
	    WICK_ERR_LIMIT);
	assert_int_equal(tls_conn_feed(s, big, TLS_MAX_INPUT - 10), 0);
	assert_int_equal(tls_conn_feed(s, big, 11), WICK_ERR_LIMIT);
	tls_conn_free(s);
	free(big);

	/* Garbage after an established handshake: an error on read. */
	assert_int_equal(tls_conn_new(sctx, NULL, &s), 0);
	assert_int_equal(tls_conn_new(cctx, NULL, &c), 0);
	handshake(c, s, &rc, &rs);
	assert_int_equal(rs, 0);
	junk[0] = 0x17;	/* application data, bad MAC */
	junk[1] = 0x03;
	junk[2] = 0x03;
	junk[3] = 0x00;
	junk[4] = 0x40;
	assert_int_equal(tls_conn_feed(s, junk, 5 + 0x40), 0);
	buf_init(&got, 1024);
	r = tls_conn_read(s, &got);
	assert_true(r < 0 && r != WICK_ERR_EOF);
	assert_int_equal(buf_len(&got), 0);
	assert_int_equal(tls_conn_write(s, junk, 1), r);
	buf_cleanup(&got);
	tls_conn_free(s);
	tls_conn_free(c);

	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
}

static void
test_load_files(void **state)
{
	char		 dir[] = "/tmp/wick-tls-XXXXXX", a[256], b[256], ca[256];
	struct tls_ctx	*ctx = NULL;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(testpki_write_dir(dir), 0);
	snprintf(a, sizeof(a), "%s/server.pem", dir);
	snprintf(b, sizeof(b), "%s/server.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	assert_int_equal(tls_ctx_new(TLS_ROLE_SERVER, TLS_PEER_CERT_REQUIRED,
	    &ctx), 0);
	assert_int_equal(tls_ctx_load_files(ctx, a, b, ca), 0);
	/* The client's key does not match the server's certificate. */
	snprintf(b, sizeof(b), "%s/client.key", dir);
	assert_int_equal(tls_ctx_load_files(ctx, a, b, ca), WICK_ERR_INVALID);
	snprintf(b, sizeof(b), "%s/missing.key", dir);
	assert_int_equal(tls_ctx_load_files(ctx, a, b, ca),
	    WICK_ERR_NOT_FOUND);
	tls_ctx_free(ctx);
	snprintf(a, sizeof(a), "rm -rf '%s'", dir);
	assert_int_equal(system(a), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mtls_data_and_close),
		cmocka_unit_test(test_foreign_ca_client_rejected),
		cmocka_unit_test(test_hook_rejects),
		cmocka_unit_test(test_client_cert_policy),
		cmocka_unit_test(test_client_needs_roots_and_valid_svid),
		cmocka_unit_test(test_version_and_alpn_enforced),
		cmocka_unit_test(test_identity_rotation),
		cmocka_unit_test(test_garbage_and_limits),
		cmocka_unit_test(test_load_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
