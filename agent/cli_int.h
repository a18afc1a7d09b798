/*
 * cli_int.h: the pure parts of the Workload API command-line client
 * (cli.c), exposed for unit tests: Go-style flag parsing, locating the
 * endpoint, checking and formatting what the agent sent.  Nothing here
 * touches a socket or an event loop.
 *
 * Everything that comes from the agent is checked before it is printed
 * or written: SPIFFE IDs are parsed, certificates and keys decoded and
 * the chain verified, tokens decoded, free text (hints) printed with
 * control bytes replaced.  Private keys are never printed.
 */
#ifndef WICK_AGENT_CLI_INT_H
#define WICK_AGENT_CLI_INT_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "spiffeid.h"
#include "workload.pb-c.h"

#define CLI_ENDPOINT_ENV	"SPIFFE_ENDPOINT_SOCKET"
#define CLI_DEFAULT_TIMEOUT_MS	5000
#define CLI_MAX_SOCKET_PATH	107	/* sun_path less its NUL */
#define CLI_MAX_LIST		32	/* values of one list flag */
#define CLI_MAX_CHAIN		16	/* certificates in a chain */
#define CLI_MAX_BUNDLE		1024	/* certificates in a bundle */
#define CLI_MAX_KEY_DER		(16 * 1024)
#define CLI_MAX_HINT		1024
#define CLI_MAX_STRUCT_DEPTH	64	/* nesting of JSON claims */
#define CLI_MAX_PB_DEPTH	(2 * CLI_MAX_STRUCT_DEPTH + 4)
#define CLI_MAX_ERR		512

/* ---- flags (Go's flag package syntax) ------------------------------------ */

enum cli_flag_type {
	CLI_FLAG_STRING = 0,	/* dst: const char ** (borrows argv) */
	CLI_FLAG_BOOL,		/* dst: int * */
	CLI_FLAG_DURATION,	/* dst: int64_t * (milliseconds) */
	CLI_FLAG_LIST,		/* dst: struct cli_list * (comma-split) */
};

struct cli_list {
	char	*v[CLI_MAX_LIST];
	size_t	 n;
};

struct cli_flag {
	const char		*name;
	enum cli_flag_type	 type;
	void			*dst;
	const char		*arg;	/* the value's name in usage */
	const char		*help;
};

#define CLI_FLAGS_HELP	1	/* cli_flags_parse(): -h or -help seen */

/*
 * Parse flags from argv[0] on: "-name value", "-name=value", "--name",
 * booleans as "-name" or "-name=false".  Parsing stops at the first
 * argument that is not a flag, or after "--"; *next gets its index.
 * Returns 0, CLI_FLAGS_HELP, or a negative error with err set in the
 * words of Go's flag package ("flag provided but not defined: -x").
 * A repeated flag overrides, except lists, which append.
 */
int	 cli_flags_parse(const struct cli_flag *, size_t nflags, int argc,
	    char **argv, int *next, char *err, size_t errlen) WICK_WUR;
void	 cli_flags_usage(FILE *, const char *synopsis,
	    const struct cli_flag *, size_t nflags);
void	 cli_list_clear(struct cli_list *);

/* "api wpt sign|verify" (cli_wpt.c): argv after "wpt". */
int	 cli_wpt_run(FILE *out, FILE *err, int argc, char **argv);

/* ---- the endpoint -------------------------------------------------------- */

/*
 * SPIFFE_ENDPOINT_SOCKET: "unix:///abs/path" or "unix:/abs/path"; no
 * host, user info, query, fragment or percent-encoding; TCP is refused.
 * *why gets the broken rule.
 */
int	 cli_endpoint_parse(const char *uri, char *path, size_t pathlen,
	    const char **why) WICK_WUR;
/*
 * The socket path: flag (-socketPath, may be relative) if not NULL, else
 * env (the variable's value) if set and not empty, else the agent's
 * default.  The result is absolute and fits sun_path.
 */
int	 cli_socket_resolve(const char *flag, const char *env, char *path,
	    size_t pathlen, char *err, size_t errlen) WICK_WUR;

/* ---- formatting ---------------------------------------------------------- */

/* Go's time.Duration String(): "1.5ms", "2.000321s", "1m30s". */
void	 cli_go_duration(uint64_t ns, char *out, size_t outlen);
/*
 * A time as Go prints a UTC time.Time ("2006-01-02 15:04:05 +0000 UTC"),
 * or RFC 3339 ("2006-01-02T15:04:05Z") when rfc3339 is set.
 */
int	 cli_asn1_time(const ASN1_TIME *, int rfc3339, char *out,
	    size_t outlen) WICK_WUR;
int	 cli_unix_time(int64_t, int rfc3339, char *out, size_t outlen)
	    WICK_WUR;
/* Print text from the agent with control bytes shown as '?'. */
void	 cli_put_safe(FILE *, const char *);
/* Copy s into out with control bytes replaced by '?' (truncates). */
void	 cli_safe_copy(const char *s, char *out, size_t outlen);
/* Go's gRPC code names: "InvalidArgument", "Unavailable", ... */
const char *cli_code_name(int status);

/* ---- JWT claims ---------------------------------------------------------- */

/*
 * google.protobuf.Struct to a JSON object: null, numbers (integral
 * values within 2^53 as integers), strings, booleans, structs, lists;
 * nesting deeper than CLI_MAX_STRUCT_DEPTH and unset values are errors.
 */
int	 cli_struct_to_json(const Google__Protobuf__Struct *, json_t **out,
	    const char **why) WICK_WUR;
/*
 * Check an encoded ValidateJWTSVIDResponse before unpacking it: the
 * nesting of its messages must stay within max_depth (protobuf-c itself
 * recurses without a limit) and the wire format must be well formed.
 */
int	 cli_claims_depth_check(const uint8_t *, size_t, int max_depth)
	    WICK_WUR;
/* The decoded claims of a compact JWS (not verified). */
int	 cli_jwt_payload(const char *token, json_t **claims,
	    const char **why) WICK_WUR;

/* ---- files --------------------------------------------------------------- */

/* dir "/" name, without doubling a slash; WICK_ERR_LIMIT if too long. */
int	 cli_path_join(const char *dir, const char *name, char *out,
	    size_t outlen) WICK_WUR;
/*
 * Write a file atomically: a temporary file in the same directory with
 * the final mode, then rename.  err names the path and the reason.
 */
int	 cli_write_file(const char *path, const void *, size_t, mode_t,
	    char *err, size_t errlen) WICK_WUR;

/* ---- X.509-SVID responses ------------------------------------------------ */

struct cli_svid {
	char		*spiffe_id;
	char		*hint;
	char		 td_id[SPIFFEID_MAX_TD_LEN + 16]; /* spiffe://td */
	STACK_OF(X509)	*chain;		/* leaf first */
	EVP_PKEY	*key;
	STACK_OF(X509)	*bundle;
};

struct cli_fed {
	char		*td;		/* the map key, as sent */
	STACK_OF(X509)	*certs;
};

struct cli_x509 {
	struct cli_svid	*svids;
	size_t		 nsvids;
	struct cli_fed	*feds;		/* sorted by trust domain */
	size_t		 nfeds;
};

/*
 * Check and decode a response: at least one SVID; each with a valid
 * SPIFFE ID equal to its leaf's URI SAN, a chain, a PKCS#8 key matching
 * the leaf, a bundle, and a chain that verifies against that bundle at
 * time now; federated bundles keyed by trust domain with certificates.
 * err explains a failure.
 */
int	 cli_x509_parse(const X509SVIDResponse *, int64_t now,
	    struct cli_x509 **out, char *err, size_t errlen) WICK_WUR;
void	 cli_x509_free(struct cli_x509 *);
/* spire-agent's text: "Received N svid(s) after D", then each SVID. */
int	 cli_x509_print(FILE *, const struct cli_x509 *, uint64_t elapsed_ns)
	    WICK_WUR;
/* {svids: [...], bundles: {td: pem}, federated_bundles: {td: pem}}. */
int	 cli_x509_json(const struct cli_x509 *, json_t **out) WICK_WUR;
/*
 * svid.<i>.pem (0644), svid.<i>.key (0600), bundle.<i>.pem (0644),
 * federated_bundle.<i>.<j>.pem (0644) into dir; one line per file to msgs
 * (may be NULL).
 */
int	 cli_x509_write(const struct cli_x509 *, const char *dir, FILE *msgs,
	    char *err, size_t errlen) WICK_WUR;

/* ---- JWT-SVID and WIT-SVID responses ------------------------------------- */

struct cli_token {
	char	*spiffe_id;
	char	*hint;
	char	*token;
	char	*key;		/* WIT: the private JWK (secret) */
	int64_t	 exp;
};

struct cli_jwks {
	char	*td;
	json_t	*jwks;
};

struct cli_tokens {
	struct cli_token *v;
	size_t		  n;
	struct cli_jwks	 *b;		/* sorted by trust domain */
	size_t		  nb;
};

void	 cli_tokens_init(struct cli_tokens *);
void	 cli_tokens_cleanup(struct cli_tokens *);
/*
 * Add one SVID: id a valid SPIFFE ID, token a compact JWS whose sub is
 * id and that has a numeric exp; key (WIT only, else NULL) a private JWK.
 */
int	 cli_tokens_add(struct cli_tokens *, const char *id,
	    const char *hint, const char *token, const char *key, char *err,
	    size_t errlen) WICK_WUR;
/* Add a bundle: td a trust domain (ID or name), jwks a JSON object. */
int	 cli_tokens_add_bundle(struct cli_tokens *, const char *td,
	    const uint8_t *, size_t, char *err, size_t errlen) WICK_WUR;
/* Sort bundles by trust domain; duplicate keys are an error. */
int	 cli_tokens_finish(struct cli_tokens *, char *err, size_t errlen)
	    WICK_WUR;
/*
 * spire-agent's "token(<id>):\n\t<jwt>" and "bundle(<td>):\n\t<jwks>";
 * WIT adds the expiry and hint, never the key.
 */
int	 cli_tokens_print(FILE *, const struct cli_tokens *, int wit)
	    WICK_WUR;
/*
 * {svids: [{spiffe_id, hint, svid (wit_svid for WIT), expires_at}],
 *  bundles: {td: jwks}}; keys are left out.
 */
int	 cli_tokens_json(const struct cli_tokens *, int wit, json_t **out)
	    WICK_WUR;
/* WIT: wit.<i>.jwt (0644) and wit.<i>.key.jwk (0600) into dir. */
int	 cli_tokens_write(const struct cli_tokens *, const char *dir,
	    FILE *msgs, char *err, size_t errlen) WICK_WUR;

/* ---- in-process entry point ---------------------------------------------- */

/*
 * agent_cli_main() with its output streams given: for tests that drive
 * the commands against a live agent in the same process.
 */
int	 agent_cli_run(int argc, char **argv, FILE *out, FILE *errf);

#endif /* WICK_AGENT_CLI_INT_H */
