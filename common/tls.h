/*
 * tls.h: TLS 1.3 over memory BIOs, for use on a libuv loop.
 *
 * The TLS engine does no I/O: ciphertext read from the socket is fed in
 * with tls_conn_feed(), plaintext comes out of tls_conn_read(), plaintext
 * to send goes in with tls_conn_write(), and the ciphertext to put on the
 * socket is taken with tls_conn_take_output().  ALPN "h2" only.
 *
 * Peer verification: the peer's chain is verified against the context's
 * trust roots; then the peer leaf's SPIFFE ID (its single URI SAN, or NULL
 * when it has none) is given to the verify hook, which accepts (0) or
 * rejects (negative WICK_ERR_*).  A server context may require a client
 * certificate (mTLS) or not.  A leaf with more than one URI SAN, or whose
 * URI SAN is not a SPIFFE ID, is rejected before the hook (SVID rules).
 * The hook is not called when an OPTIONAL peer sends no certificate.
 * Session resumption is off: every handshake verifies and runs the hook.
 * TLS 1.3 detail: a client's handshake completes before the server has
 * checked the client certificate; a rejection reaches the client as an
 * error from tls_conn_read().
 */
#ifndef WICK_TLS_H
#define WICK_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "err.h"

#define TLS_MAX_CHAIN		16	/* certificates in a chain we load */
#define TLS_MAX_ROOTS		1024	/* trust roots in a bundle */
#define TLS_MAX_PEM_FILE	(1024 * 1024)
#define TLS_MAX_INPUT		(256 * 1024)	/* ciphertext fed, not yet read */

enum tls_role {
	TLS_ROLE_CLIENT = 0,
	TLS_ROLE_SERVER,
};

enum tls_peer_cert {
	TLS_PEER_CERT_NONE = 0,		/* server: do not ask for one */
	TLS_PEER_CERT_OPTIONAL,		/* server: verify if presented */
	TLS_PEER_CERT_REQUIRED,		/* server: mTLS; client: always */
};

/* Verify hook: peer_id is the leaf's SPIFFE ID or NULL; return 0 to accept. */
typedef int (*tls_verify_fn)(const char *peer_id, X509 *leaf, void *arg);

struct tls_ctx;
struct tls_conn;

/* A context holds identity, roots and policy; shared by many conns. */
int	 tls_ctx_new(enum tls_role, enum tls_peer_cert, struct tls_ctx **out)
	    WICK_WUR;
void	 tls_ctx_free(struct tls_ctx *);
/*
 * Replace the identity (leaf first, then intermediates) and its key.
 * The context takes its own references; new connections use the new one.
 */
int	 tls_ctx_set_identity(struct tls_ctx *, STACK_OF(X509) *chain,
	    EVP_PKEY *key) WICK_WUR;
/* Replace the trust roots (the context takes its own references). */
int	 tls_ctx_set_roots(struct tls_ctx *, STACK_OF(X509) *roots) WICK_WUR;
void	 tls_ctx_set_verify(struct tls_ctx *, tls_verify_fn, void *arg);
/* Convenience: load PEM files (chain, PKCS#8 or traditional key, roots). */
int	 tls_ctx_load_files(struct tls_ctx *, const char *chain_pem,
	    const char *key_pem, const char *roots_pem) WICK_WUR;

/* sni may be NULL (it is then not sent). */
int	 tls_conn_new(struct tls_ctx *, const char *sni, struct tls_conn **out)
	    WICK_WUR;
void	 tls_conn_free(struct tls_conn *);
/* Ciphertext from the network. WICK_ERR_LIMIT if too much is buffered. */
int	 tls_conn_feed(struct tls_conn *, const uint8_t *, size_t) WICK_WUR;
/*
 * Advance the handshake.  0 when complete (ALPN h2 agreed and peer
 * verified), WICK_ERR_AGAIN when it needs more input, or an error; in every
 * case check tls_conn_take_output() afterwards (alerts and handshake data).
 */
int	 tls_conn_handshake(struct tls_conn *) WICK_WUR;
/*
 * Append available plaintext to out (0 also when none is available yet);
 * WICK_ERR_EOF after close_notify.  When out is full, what fits is
 * appended and the rest stays for the next call (WICK_ERR_LIMIT only when
 * nothing fits).
 */
int	 tls_conn_read(struct tls_conn *, struct buf *out) WICK_WUR;
/*
 * 1 when tls_conn_read() may have something to say (input not yet read,
 * or a failure to report); 0 when it would only find nothing.
 */
int	 tls_conn_readable(const struct tls_conn *);
/* Encrypt plaintext; the ciphertext is then in the output. */
int	 tls_conn_write(struct tls_conn *, const uint8_t *, size_t) WICK_WUR;
/*
 * Move all pending ciphertext into out.  When out is full, what fits is
 * moved and WICK_ERR_LIMIT returned; call again after sending.
 */
int	 tls_conn_take_output(struct tls_conn *, struct buf *out) WICK_WUR;
/* Queue a close_notify alert. */
int	 tls_conn_shutdown(struct tls_conn *) WICK_WUR;
/* The verified peer's SPIFFE ID, or NULL (borrowed, valid until free). */
const char *tls_conn_peer_id(const struct tls_conn *);
/* The verified peer's leaf certificate, or NULL (borrowed). */
X509	*tls_conn_peer_cert(const struct tls_conn *);
/* Last error text (OpenSSL's queue drained into one line), for logs. */
const char *tls_conn_error(const struct tls_conn *);

#endif /* WICK_TLS_H */
