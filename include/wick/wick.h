/*
 * wick.h: libwick, the workload's side of SPIFFE and WIMSE in C.
 *
 * What it does: talk to a SPIFFE Workload API (wick-agent, spire-agent)
 * to fetch and watch X.509-SVIDs, JWT-SVIDs, WIT-SVIDs and their bundles;
 * verify X.509-SVIDs and JWT-SVIDs against bundles with go-spiffe's
 * rules; set up an OpenSSL SSL_CTX for mTLS that follows rotation; and
 * create and verify WIMSE Workload Proof Tokens (draft-ietf-wimse-wpt-02).
 *
 * Conventions.
 *  - Every function that can fail returns 0 or a negative WICK_E_* code;
 *    wick_strerror() gives its text.  Results come back through out
 *    parameters, set only on success.  Nothing here exits, aborts on a
 *    failed allocation, prints, or keeps global state.
 *  - Ownership: an object returned through an out parameter belongs to
 *    the caller, who releases it with the matching wick_*_free().  Every
 *    _free(NULL) does nothing.  A const pointer a getter returns is
 *    borrowed: it stays valid as long as the object it came from.
 *    Strings the library returns as char * are the caller's, freed with
 *    wick_free().  Arguments are copied unless a comment says "takes".
 *  - Immutable objects (struct wick_x509_context, wick_bundles,
 *    wick_x509_svid, wick_jwt_svid, wick_wit_svid) may be read from any
 *    number of threads at once.  Contexts and bundle sets are reference
 *    counted: wick_*_ref() adds a reference, _free() drops one.
 *  - struct wick_client, wick_x509_watch and wick_wpt_verifier are
 *    thread-safe: any thread may call them at any time.
 *  - Time: functions that check expiry take "now" (unix seconds); 0 means
 *    the current time.
 *  - Signals: talking to the agent never raises SIGPIPE in the caller
 *    (it is blocked on the calling thread during a call, and on the
 *    watch's thread); the library installs no signal handler.
 *
 * HTTP carriage of WIMSE tokens (wpt-02): the WIT goes in the header
 * "Workload-Identity-Token: <WIT>", the proof in "Authorization: WPT
 * <WPT>" (WICK_WPT_HEADER_WIT, WICK_WPT_AUTH_SCHEME).  The older
 * "Workload-Proof-Token" header (wpt-01 and before) is not produced.
 */
#ifndef WICK_WICK_H
#define WICK_WICK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WICK_VERSION_MAJOR	1
#define WICK_VERSION_MINOR	0

/* Error codes (the same numbers wick's daemons use). */
enum wick_error {
	WICK_E_OK = 0,
	WICK_E_INTERNAL = -1,
	WICK_E_ALLOC = -2,
	WICK_E_INVALID = -3,		/* malformed input or argument */
	WICK_E_LIMIT = -4,		/* a named limit was exceeded */
	WICK_E_NOT_FOUND = -5,
	WICK_E_EXISTS = -6,
	WICK_E_PERM = -7,		/* the agent said PermissionDenied */
	WICK_E_IO = -8,
	WICK_E_CRYPTO = -9,
	WICK_E_UNAVAILABLE = -10,	/* the agent cannot be reached */
	WICK_E_TIMEOUT = -11,
	WICK_E_CANCELLED = -12,
	WICK_E_UNSUPPORTED = -13,	/* e.g. the agent serves no WITs */
	WICK_E_AGAIN = -14,		/* nothing yet: try later */
	WICK_E_EOF = -15,
	WICK_E_PROTOCOL = -16,		/* the agent's answer is wrong */
	WICK_E_EXPIRED = -17,
	WICK_E_SIGNATURE = -18,
	WICK_E_CONFIG = -19,
	WICK_E_STATE = -20,
};

/* Text of a WICK_E_* code; never NULL, static. */
const char	*wick_strerror(int);
/* Free a string the library returned. */
void		 wick_free(void *);

/* ---- limits ------------------------------------------------------------ */

#define WICK_MAX_ADDR		4096	/* Workload API address */
#define WICK_MAX_RESPONSE	(4u * 1024 * 1024)	/* one API message */
#define WICK_MAX_SVIDS		64	/* SVIDs in one answer */
#define WICK_MAX_BUNDLES	256	/* trust domains in a bundle set */
#define WICK_MAX_AUDIENCES	16
#define WICK_MAX_TOKEN		(64 * 1024)	/* JWT-SVID */
#define WICK_MAX_WIMSE_TOKEN	(8 * 1024)	/* WIT or WPT */
#define WICK_MAX_SPIFFE_ID	2048

/* ---- bundles ----------------------------------------------------------- */

/*
 * A set of trust bundles, one per trust domain, of one kind: X.509
 * authorities, or JWT-SVID keys, or WIT-SVID keys.  Immutable once
 * built; reference counted.
 */
struct wick_bundles;

enum wick_bundle_kind {
	WICK_BUNDLE_X509 = 1,
	WICK_BUNDLE_JWT = 2,
	WICK_BUNDLE_WIT = 3,
};

/* An empty set to add to with the functions below (not after sharing). */
int	 wick_bundles_new(enum wick_bundle_kind, struct wick_bundles **)
	    __attribute__((warn_unused_result));
/*
 * Add trust domain td ("example.org" or "spiffe://example.org"):
 * X.509 sets take PEM or concatenated DER certificates; JWT and WIT sets
 * a JWK Set or a SPIFFE bundle document (then only keys whose "use" fits
 * the set's kind, or that have none, are taken).  An existing trust
 * domain is replaced.
 */
int	 wick_bundles_add(struct wick_bundles *, const char *td,
	    const void *doc, size_t len) __attribute__((warn_unused_result));
/*
 * Parse a JSON object mapping trust domains to JWK Sets, the form of
 * FetchJWTBundles/FetchWITBundles: {"spiffe://td": {"keys": [...]}, ...}.
 */
int	 wick_bundles_from_json_map(enum wick_bundle_kind, const char *json,
	    size_t len, struct wick_bundles **)
	    __attribute__((warn_unused_result));
enum wick_bundle_kind wick_bundles_kind(const struct wick_bundles *);
size_t	 wick_bundles_count(const struct wick_bundles *);
/* The i-th trust domain's name, borrowed. */
const char *wick_bundles_td(const struct wick_bundles *, size_t);
/* Keys (JWT, WIT) or certificates (X.509) of trust domain td, 0 if none. */
size_t	 wick_bundles_size(const struct wick_bundles *, const char *td);
struct wick_bundles *wick_bundles_ref(struct wick_bundles *);
void	 wick_bundles_free(struct wick_bundles *);

/* ---- X.509-SVIDs --------------------------------------------------------- */

struct wick_x509_svid;

/* Accessors: borrowed. */
const char *wick_x509_svid_id(const struct wick_x509_svid *);
const char *wick_x509_svid_hint(const struct wick_x509_svid *);
int64_t	 wick_x509_svid_expires(const struct wick_x509_svid *);
/*
 * PEM of the chain (leaf first) and of the PKCS#8 private key, into new
 * strings (the key's is wiped by wick_free_secret()).
 */
int	 wick_x509_svid_chain_pem(const struct wick_x509_svid *, char **)
	    __attribute__((warn_unused_result));
int	 wick_x509_svid_key_pem(const struct wick_x509_svid *, char **)
	    __attribute__((warn_unused_result));
/* Wipe and free a string holding a secret. */
void	 wick_free_secret(char *);
/*
 * OpenSSL objects, borrowed: X509 *, STACK_OF(X509) * (leaf first) and
 * EVP_PKEY *.  Declared void * so that this header needs no OpenSSL.
 */
void	*wick_x509_svid_leaf(const struct wick_x509_svid *);
void	*wick_x509_svid_chain(const struct wick_x509_svid *);
void	*wick_x509_svid_key(const struct wick_x509_svid *);

/*
 * An X.509 context: the SVIDs the agent gives this workload (the first
 * is the default) and the X.509 bundles of its own and federated trust
 * domains.  Immutable, reference counted.
 */
struct wick_x509_context;

size_t	 wick_x509_context_count(const struct wick_x509_context *);
const struct wick_x509_svid *wick_x509_context_svid(
	    const struct wick_x509_context *, size_t);
/* The default SVID, or the one with this hint (NULL: none). */
const struct wick_x509_svid *wick_x509_context_find(
	    const struct wick_x509_context *, const char *hint);
/* Borrowed; take wick_bundles_ref() to keep it longer. */
struct wick_bundles *wick_x509_context_bundles(
	    const struct wick_x509_context *);
struct wick_x509_context *wick_x509_context_ref(struct wick_x509_context *);
void	 wick_x509_context_free(struct wick_x509_context *);

/*
 * Verify a chain (leaf first, as DER certificates concatenated or as a
 * STACK_OF(X509) *) with go-spiffe's x509svid.Verify rules: the leaf is
 * not a CA, has digitalSignature and neither keyCertSign nor cRLSign,
 * and carries exactly one URI SAN, a SPIFFE ID; the chain leads to an
 * authority of that ID's trust domain in bundles (a WICK_BUNDLE_X509
 * set) and every certificate is valid at now.  *id (may be NULL) gets
 * the SPIFFE ID.  why (whylen bytes, may be NULL) names the failure.
 */
int	 wick_x509svid_verify_der(const void *der, size_t len,
	    const struct wick_bundles *, int64_t now, char **id, char *why,
	    size_t whylen) __attribute__((warn_unused_result));
int	 wick_x509svid_verify(void *chain, const struct wick_bundles *,
	    int64_t now, char **id, char *why, size_t whylen)
	    __attribute__((warn_unused_result));

/* ---- JWT-SVIDs and WIT-SVIDs ------------------------------------------- */

struct wick_jwt_svid;

const char *wick_jwt_svid_id(const struct wick_jwt_svid *);
const char *wick_jwt_svid_token(const struct wick_jwt_svid *);
const char *wick_jwt_svid_hint(const struct wick_jwt_svid *);
int64_t	 wick_jwt_svid_expires(const struct wick_jwt_svid *);
void	 wick_jwt_svid_free(struct wick_jwt_svid *);

/*
 * Validate a JWT-SVID locally with go-spiffe's jwtsvid.ParseAndValidate
 * rules: RS/PS/ES 256-512 only, "kid" found in the bundle of the trust
 * domain of "sub" (a SPIFFE ID), typ absent or "JWT" or "JOSE", "exp"
 * present and not past, "aud" holding one of the audiences.  *id (may be
 * NULL) gets the SPIFFE ID, *claims_json (may be NULL) the claims.
 */
int	 wick_jwtsvid_validate(const char *token,
	    const struct wick_bundles *jwt_bundles,
	    const char *const *audiences, size_t naudiences, int64_t now,
	    char **id, char **claims_json, char *why, size_t whylen)
	    __attribute__((warn_unused_result));

/*
 * A WIT-SVID: the token, and its private key (the WIT's cnf key) as a
 * JWK, which the library keeps and wipes.
 */
struct wick_wit_svid;

const char *wick_wit_svid_id(const struct wick_wit_svid *);
const char *wick_wit_svid_token(const struct wick_wit_svid *);
const char *wick_wit_svid_hint(const struct wick_wit_svid *);
/*
 * Make one from a token and its private JWK (both copied), e.g. read
 * from files; the key must be the one in the token's cnf.jwk.
 */
int	 wick_wit_svid_new(const char *token, const char *key_jwk,
	    struct wick_wit_svid **) __attribute__((warn_unused_result));
void	 wick_wit_svid_free(struct wick_wit_svid *);

/* ---- the Workload API client ------------------------------------------- */

/*
 * A client of the agent at addr ("unix:///path", "unix:/path" or
 * "/path"; NULL: the SPIFFE_ENDPOINT_SOCKET environment variable, read
 * here).  No connection is made yet: each fetch connects, calls, and
 * disconnects.  timeout_ms bounds each call (0: 10 s).
 */
struct wick_client;

int	 wick_client_new(const char *addr, int64_t timeout_ms,
	    struct wick_client **) __attribute__((warn_unused_result));
void	 wick_client_free(struct wick_client *);
/* The address used, borrowed. */
const char *wick_client_addr(const struct wick_client *);
/*
 * The words of the last failed call of this client (the agent's gRPC
 * message, or what was wrong with its answer), copied into buf.
 */
void	 wick_client_last_error(struct wick_client *, char *buf,
	    size_t len);

int	 wick_fetch_x509_context(struct wick_client *,
	    struct wick_x509_context **) __attribute__((warn_unused_result));
/* A JWT-SVID for the audiences; spiffe_id may be NULL (the default). */
int	 wick_fetch_jwt_svid(struct wick_client *, const char *const *aud,
	    size_t naud, const char *spiffe_id, struct wick_jwt_svid **)
	    __attribute__((warn_unused_result));
int	 wick_fetch_jwt_bundles(struct wick_client *, struct wick_bundles **)
	    __attribute__((warn_unused_result));
/* WICK_E_UNSUPPORTED when the agent serves no WIT-SVIDs. */
int	 wick_fetch_wit_svid(struct wick_client *, const char *spiffe_id,
	    struct wick_wit_svid **) __attribute__((warn_unused_result));
int	 wick_fetch_wit_bundles(struct wick_client *, struct wick_bundles **)
	    __attribute__((warn_unused_result));

/* ---- watching the X.509 context (go-spiffe's X509Source) --------------- */

/*
 * A watch keeps a FetchX509SVID stream open on a thread of its own,
 * reconnecting with backoff (0.2 s doubling to 5 s) when it breaks, and
 * holds the latest context.  cb (may be NULL) runs on that thread for
 * every new context and for every failure (ctx NULL, err < 0); the
 * context is borrowed during the call (wick_x509_context_ref() keeps
 * it).  cb must not call wick_x509_watch_free().
 *
 * For event loops: wick_x509_watch_fd() is readable once a new context
 * arrived since the last wick_x509_watch_current(), which drains it.
 */
struct wick_x509_watch;

typedef void wick_x509_watch_fn(struct wick_x509_context *ctx, int err,
    void *arg);

int	 wick_x509_watch_new(struct wick_client *, wick_x509_watch_fn *,
	    void *arg, struct wick_x509_watch **)
	    __attribute__((warn_unused_result));
/* Stops the thread (a callback in progress finishes first). */
void	 wick_x509_watch_free(struct wick_x509_watch *);
int	 wick_x509_watch_fd(const struct wick_x509_watch *);
/*
 * A new reference to the latest context; WICK_E_AGAIN before the first.
 * Drains the fd.
 */
int	 wick_x509_watch_current(struct wick_x509_watch *,
	    struct wick_x509_context **) __attribute__((warn_unused_result));
/* Block until there is a context (timeout_ms < 0: forever). */
int	 wick_x509_watch_wait(struct wick_x509_watch *, int64_t timeout_ms)
	    __attribute__((warn_unused_result));
/* How many contexts have arrived so far. */
uint64_t wick_x509_watch_updates(struct wick_x509_watch *);

/* ---- mTLS with OpenSSL ------------------------------------------------- */

/*
 * An authorizer sees the peer's verified SPIFFE ID and returns non-zero
 * to accept it (go-spiffe's tlsconfig.Authorizer).  It runs on the
 * thread doing the handshake.
 */
typedef int wick_authorizer_fn(const char *peer_id, void *arg);

/* Ready-made authorizers: arg is a const char * ID, or trust domain. */
int	 wick_authorize_any(const char *, void *);
int	 wick_authorize_id(const char *, void *);
int	 wick_authorize_member_of(const char *, void *);

/*
 * Set up ssl_ctx (an SSL_CTX *, client or server) for SPIFFE mTLS: each
 * handshake presents the watch's current default SVID (or the one with
 * hint), requires the peer's certificate, verifies it with the rules of
 * wick_x509svid_verify() against the watch's current bundles, and asks
 * authz.  Rotation needs no restart: every handshake reads the latest
 * context.  TLS 1.2 is the minimum version.  *out holds what the
 * callbacks need: free it after the last SSL_CTX_free() of ssl_ctx; the
 * watch must outlive it.  hint is copied.
 */
struct wick_tls;

int	 wick_tls_setup(void *ssl_ctx, struct wick_x509_watch *,
	    const char *hint, wick_authorizer_fn *authz, void *authz_arg,
	    struct wick_tls **out) __attribute__((warn_unused_result));
void	 wick_tls_free(struct wick_tls *);
/* The SPIFFE ID of the peer of a finished handshake on ssl (an SSL *),
 * as a new string. */
int	 wick_tls_peer_id(void *ssl, char **id)
	    __attribute__((warn_unused_result));

/* ---- WIMSE Workload Proof Tokens (draft-ietf-wimse-wpt-02) ------------- */

#define WICK_WPT_HEADER_WIT	"Workload-Identity-Token"
#define WICK_WPT_AUTH_SCHEME	"WPT"
#define WICK_TYP_WPT		"wpt+jwt"
#define WICK_TYP_WIT		"wit+jwt"
#define WICK_WPT_DEFAULT_TTL	60	/* seconds */
#define WICK_WPT_MAX_TTL	300	/* create refuses more, verify too */
#define WICK_WPT_DEFAULT_LEEWAY	30	/* clock skew allowed (s) */
#define WICK_WPT_MAX_LEEWAY	120
#define WICK_WPT_REPLAY_DEFAULT	65536	/* jti cache entries */
#define WICK_WPT_REPLAY_MAX	(1u << 22)
#define WICK_WPT_MAX_OTH	16	/* other tokens bound by oth */
#define WICK_WPT_WIT_CACHE	64	/* WITs a verifier remembers */

/* Tokens a WPT binds besides the WIT (all optional). */
struct wick_wpt_bind {
	const char	*access_token;	/* ath (wpt-01, not wpt-02) */
	const char	*txn_token;	/* tth */
	/* oth: header names (lower case) and values, noth pairs */
	const char *const *oth_names;
	const char *const *oth_values;
	size_t		 noth;
};

/*
 * Create a WPT for aud (the target URI without query and fragment) with
 * the WIT's key: header {"alg": cnf.jwk.alg, "typ": "wpt+jwt"}, claims
 * aud, exp = now + ttl (ttl 0: WICK_WPT_DEFAULT_TTL; at most
 * WICK_WPT_MAX_TTL), jti (128 random bits, base64url), wth, and those of
 * bind (may be NULL).  *wpt is a new string.
 */
int	 wick_wpt_create(const struct wick_wit_svid *, const char *aud,
	    int64_t ttl, const struct wick_wpt_bind *, int64_t now,
	    char **wpt) __attribute__((warn_unused_result));

/* Why a WIT+WPT pair was refused: every check has its own reason. */
enum wick_wpt_reason {
	WICK_WPT_OK = 0,
	WICK_WPT_WIT_MISSING,
	WICK_WPT_WIT_TOO_LARGE,
	WICK_WPT_WIT_MALFORMED,
	WICK_WPT_WIT_TYP,
	WICK_WPT_WIT_CRIT,
	WICK_WPT_WIT_ALG,
	WICK_WPT_WIT_SUB,
	WICK_WPT_WIT_TRUST_DOMAIN,
	WICK_WPT_WIT_KID,
	WICK_WPT_WIT_SIGNATURE,
	WICK_WPT_WIT_EXP_MISSING,
	WICK_WPT_WIT_EXPIRED,
	WICK_WPT_WIT_NOT_YET_VALID,
	WICK_WPT_WIT_AUD,
	WICK_WPT_WIT_CNF_MISSING,
	WICK_WPT_WIT_CNF_KEY,
	WICK_WPT_WIT_CNF_PRIVATE,
	WICK_WPT_WIT_CNF_ALG_MISSING,
	WICK_WPT_WIT_CNF_ALG,
	WICK_WPT_MISSING,
	WICK_WPT_TOO_LARGE,
	WICK_WPT_MALFORMED,
	WICK_WPT_TYP,
	WICK_WPT_CRIT,
	WICK_WPT_ALG_MISMATCH,
	WICK_WPT_SIGNATURE,
	WICK_WPT_AUD_MISSING,
	WICK_WPT_AUD,
	WICK_WPT_EXP_MISSING,
	WICK_WPT_EXPIRED,
	WICK_WPT_EXP_TOO_FAR,
	WICK_WPT_JTI_MISSING,
	WICK_WPT_WTH_MISSING,
	WICK_WPT_WTH,
	WICK_WPT_ATH,
	WICK_WPT_TTH,
	WICK_WPT_OTH,
	WICK_WPT_OTH_UNKNOWN,
	WICK_WPT_REPLAY,
	WICK_WPT_REPLAY_FULL,
	WICK_WPT_INTERNAL,
	WICK_WPT_NREASONS
};

/* A short phrase for a reason ("wpt jti replayed"); never NULL. */
const char *wick_wpt_reason_str(enum wick_wpt_reason);

struct wick_wpt_verifier_config {
	/* The one audience accepted, from configuration (required). */
	const char	*audience;
	/* WIT issuers' keys by trust domain (a WICK_BUNDLE_WIT set). */
	struct wick_bundles *wit_bundles;	/* referenced, not taken */
	int64_t		 leeway;	/* 0: default; < 0: none */
	int64_t		 max_ttl;	/* 0: WICK_WPT_MAX_TTL */
	size_t		 replay_entries;	/* 0: default */
	/* Flags. */
	unsigned	 flags;
};
/* Accept any absolute URI with an authority as the WIT's "sub" (WIMSE
 * Workload Identifiers such as wimse://td/path), not only SPIFFE IDs. */
#define WICK_WPT_ANY_WORKLOAD_ID	0x1
/* Allow EdDSA (WIMSE allows it; SPIFFE's WIT-SVID profile does not). */
#define WICK_WPT_ALLOW_EDDSA		0x2
/* Skip the jti replay cache (tests, or a cache kept elsewhere). */
#define WICK_WPT_NO_REPLAY		0x4

struct wick_wpt_verifier;

int	 wick_wpt_verifier_new(const struct wick_wpt_verifier_config *,
	    struct wick_wpt_verifier **) __attribute__((warn_unused_result));
void	 wick_wpt_verifier_free(struct wick_wpt_verifier *);
/*
 * Replace the WIT bundles (after a rotation); referenced, not taken.  A
 * verifier remembers the last WICK_WPT_WIT_CACHE WITs that verified, so
 * that a WIT sent again is not verified again (its times are); replacing
 * the bundles forgets them.
 */
int	 wick_wpt_verifier_set_bundles(struct wick_wpt_verifier *,
	    struct wick_bundles *) __attribute__((warn_unused_result));
/* jti entries held now. */
size_t	 wick_wpt_verifier_replay_count(struct wick_wpt_verifier *);

struct wick_wpt_result {
	enum wick_wpt_reason reason;
	char		 detail[160];	/* what was wrong, in words */
	char		 sub[WICK_MAX_SPIFFE_ID + 1];	/* WIT sub */
	int64_t		 wit_exp;
	int64_t		 wpt_exp;
};

/*
 * Verify a WIT and WPT pair (the header values: the WPT without the
 * "WPT " scheme): the WIT first (size, typ, crit, alg, sub, trust
 * domain, kid, signature, exp/nbf/iat, no aud, cnf.jwk with alg), then
 * the WPT with cnf.jwk (size, typ, crit, alg equal to cnf.jwk.alg,
 * signature, aud equal to the configured audience, exp within now -
 * leeway .. now + max_ttl + leeway, jti, wth, ath/tth/oth: bind (may be
 * NULL) lists the tokens the request carried, each must be bound and
 * nothing else may be), then jti against the replay cache (kept until
 * the WPT's exp plus leeway).  0 on success; otherwise WICK_E_INVALID,
 * WICK_E_SIGNATURE, WICK_E_EXPIRED, WICK_E_LIMIT or WICK_E_ALLOC, and
 * res->reason says which check refused.
 */
int	 wick_wpt_verify(struct wick_wpt_verifier *, const char *wit,
	    const char *wpt, const struct wick_wpt_bind *, int64_t now,
	    struct wick_wpt_result *res) __attribute__((warn_unused_result));

/* base64url(SHA-256(s)), the hash of wth, ath, tth and oth, into out. */
int	 wick_token_hash(const char *s, char out[44])
	    __attribute__((warn_unused_result));

#ifdef __cplusplus
}
#endif

#endif /* WICK_WICK_H */
