/*
 * wick_int.h: what libwick's files share and do not export.
 */
#ifndef WICK_LIB_INT_H
#define WICK_LIB_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "wick/wick.h"

#define WICK_MAX_BUNDLE_KEYS	64	/* JWT or WIT keys of a domain */
#define WICK_MAX_BUNDLE_CERTS	64	/* X.509 CAs of a domain */
#define WICK_MAX_CHAIN		16	/* certificates in an SVID */
#define WICK_MAX_KID		128
#define WICK_MAX_ALG		8
#define WICK_MAX_TD		255
#define WICK_MAX_JWK		(16 * 1024)

/* ---- jws.c: compact JWS and JWK, over OpenSSL ---------------------------- */

/* A key with the algorithm it signs with (jwk "alg", or derived). */
struct wick_jwk {
	EVP_PKEY	*pkey;
	char		 kid[WICK_MAX_KID + 1];
	char		 alg[WICK_MAX_ALG + 1];	/* "": none given */
	char		 use[16];
};

/* A decoded, not yet verified, compact JWS. */
struct wick_jws {
	json_t		*header;
	json_t		*claims;
	const char	*alg;		/* borrowed from header */
	const char	*typ;		/* the same, or NULL */
	const char	*kid;		/* the same, or NULL */
	size_t		 signed_len;	/* bytes of "h.p" */
	uint8_t		*sig;
	size_t		 siglen;
};

/*
 * Algorithm classes; wick_alg_ok() with a mask says whether alg is
 * allowed.
 */
#define WICK_ALG_RSA	0x1
#define WICK_ALG_PSS	0x2
#define WICK_ALG_EC	0x4
#define WICK_ALG_EDDSA	0x8
#define WICK_ALG_SPIFFE	(WICK_ALG_RSA | WICK_ALG_PSS | WICK_ALG_EC)
int	 wick_alg_ok(const char *alg, unsigned mask);
/* Non-zero when the key's type (and curve) fits alg. */
int	 wick_alg_fits_key(const char *alg, EVP_PKEY *);
/* The JWS alg for a key when the JWK names none: ES*, RS256, EdDSA. */
const char *wick_alg_for_key(EVP_PKEY *);

/* base64url without padding. */
int	 wick_b64url_encode(const uint8_t *, size_t, char **out);
int	 wick_b64url_decode(const char *, size_t, uint8_t **out,
	    size_t *len);

/*
 * Parse a JWK object.  want_private: 1 to require the private part, 0 to
 * refuse one.  *why gets a static sentence.
 */
int	 wick_jwk_parse(json_t *, int want_private, struct wick_jwk *,
	    const char **why);
void	 wick_jwk_cleanup(struct wick_jwk *);
/* The *why of wick_jwk_parse() for an alg that does not fit the key. */
extern const char wick_why_alg_fit[];

/* Split and decode; max is the size limit.  *why on error. */
int	 wick_jws_decode(const char *token, size_t max, struct wick_jws *,
	    const char **why);
void	 wick_jws_cleanup(struct wick_jws *);
/* Verify the signature of a decoded token with key under alg. */
int	 wick_jws_verify_sig(const struct wick_jws *, const char *token,
	    const char *alg, EVP_PKEY *);
/* Sign header and claims (JSON objects) into a compact JWS. */
int	 wick_jws_sign(json_t *header, json_t *claims, const char *alg,
	    EVP_PKEY *, char **out);
/* A claim that must be an integer number of seconds; 0 / -1 absent. */
int	 wick_claim_time(json_t *claims, const char *name, int64_t *out);
/* A "crit" header member is present. */
int	 wick_jws_has_crit(const struct wick_jws *);
/* typ equals want, or "application/" + want, case-insensitively. */
int	 wick_typ_is(const char *typ, const char *want);

/* ---- bundles.c ----------------------------------------------------------- */

struct wick_td_bundle {
	char			 td[WICK_MAX_TD + 1];
	STACK_OF(X509)		*certs;		/* X.509 sets */
	struct wick_jwk		*keys;		/* JWT/WIT sets */
	size_t			 nkeys;
};

struct wick_bundles {
	atomic_int		 refs;
	enum wick_bundle_kind	 kind;
	struct wick_td_bundle	*v;
	size_t			 n;
};

const struct wick_td_bundle *wick_bundles_find(const struct wick_bundles *,
	    const char *td);
/* The key with kid in trust domain td's bundle, or NULL. */
const struct wick_jwk *wick_bundles_key(const struct wick_bundles *,
	    const char *td, const char *kid);
/* Add certs (taken on success). */
int	 wick_bundles_add_certs(struct wick_bundles *, const char *td,
	    STACK_OF(X509) *);

/* ---- x509.c -------------------------------------------------------------- */

struct wick_x509_svid {
	char		*id;
	char		*hint;
	STACK_OF(X509)	*chain;
	EVP_PKEY	*key;
};

struct wick_x509_context {
	atomic_int		 refs;
	struct wick_x509_svid	*svids;
	size_t			 n;
	struct wick_bundles	*bundles;
};

/* Decode an X509SVIDResponse message into a context. */
int	 wick_x509_context_decode(const uint8_t *, size_t,
	    struct wick_x509_context **, char *why, size_t whylen);

/* ---- client.c ------------------------------------------------------------ */

struct wick_client {
	char		 addr[WICK_MAX_ADDR + 16];
	int64_t		 timeout_ms;
	pthread_mutex_t	 mu;		/* last */
	char		 last[256];	/* the last failure's words */
};
/* Record the words of a failure for wick_client_last_error(). */
void	 wick_client_set_error(struct wick_client *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* One call: unary, or the first message of a stream. */
struct wick_call_result {
	int	 status;	/* gRPC status */
	char	 msg[256];
	uint8_t	*resp;		/* the (first) message; wiped */
	size_t	 len;
};
int	 wick_call(struct wick_client *, const char *path,
	    const uint8_t *req, size_t reqlen, struct wick_call_result *);
void	 wick_call_result_cleanup(struct wick_call_result *);
/* A gRPC status as a WICK_E_* code. */
int	 wick_err_from_status(int);
/* SIGPIPE blocked on this thread for a while (see wick_call()). */
struct wick_sigpipe {
	sigset_t	pipe;
	sigset_t	old;
	int		was_pending;
};
void	 wick_sigpipe_block(struct wick_sigpipe *);
void	 wick_sigpipe_restore(struct wick_sigpipe *);

/* ---- wpt.c: bundle-free helpers shared with the JWT-SVID check ----------- */

int	 wick_sha256_b64(const void *, size_t, char out[44]);
void	 wick_why(char *why, size_t whylen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#endif /* WICK_LIB_INT_H */
