/*
 * cli_int.h: internals of the admin commands (cli.c, cli_entry.c,
 * cli_entry_build.c, cli_agent.c, cli_bundle.c, cli_audit.c), exposed for
 * tests/unit/test_cli.c.
 *
 * The pure parts: Go flag-package parsing, entries from flags and from
 * SPIRE's -data JSON, the time and number formats, and the text and JSON
 * renderings of entries and agents.  The rest talks to the server through
 * one synchronous unary-call helper on a private libuv loop.
 */
#ifndef WICK_SERVER_CLI_INT_H
#define WICK_SERVER_CLI_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

#include "admin.pb-c.h"
#include "err.h"
#include "rpc_client.h"
#include "types.pb-c.h"

#define CLI_DEFAULT_SOCKET	"/tmp/wick-server/private/api.sock"
#define CLI_MAX_FLAGS		24	/* flags of one command */
#define CLI_MAX_LIST		1024	/* values of one repeatable flag */
#define CLI_MAX_DATA_SIZE	(32 * 1024 * 1024)	/* -data or -file */
#define CLI_MAX_DATA_ENTRIES	10000	/* entries or IDs in one file */
#define CLI_MAX_BATCH_ENTRIES	500	/* items per Batch* call */
#define CLI_MAX_BATCH_BYTES	(2 * 1024 * 1024)	/* one request */
#define CLI_MAX_RECV		(16 * 1024 * 1024)	/* one reply */
#define CLI_MAX_LISTED		1000000	/* entries or agents in a listing */
#define CLI_PAGE_SIZE		500	/* entries and bundles per page */
#define CLI_AGENT_PAGE_SIZE	1000
#define CLI_CALL_TIMEOUT_MS	(60 * 1000)
#define CLI_MAX_HINT_LEN	1024
#define CLI_MAX_ENTRY_ID_LEN	255
#define CLI_ERRLEN		1024	/* one error message */

/* ---- flags (cli.c) ------------------------------------------------------- */

enum cli_flag_type {
	CLI_FLAG_STRING = 0,	/* -name value or -name=value; last one wins */
	CLI_FLAG_BOOL,		/* -name or -name=true|false */
	CLI_FLAG_LIST,		/* -name value, repeatable */
};

struct cli_flag {
	const char		*name;
	enum cli_flag_type	 type;
	const char		*arg;	/* value placeholder in usage */
	const char		*def;	/* default shown in usage, or NULL */
	const char		*help;
};

struct cli_val {
	const char	 *str;	/* STRING: the value (borrowed from argv) */
	int		  set;	/* given at least once */
	int		  on;	/* BOOL */
	const char	**list;	/* LIST: the values (borrowed from argv) */
	size_t		  n;
};

struct cli_args {
	const char		*cmd;	/* "entry create", for usage */
	const struct cli_flag	*defs;
	size_t			 ndefs;
	struct cli_val		 v[CLI_MAX_FLAGS];
};

#define CLI_HELP	1	/* cli_args_parse(): -h or -help was given */

/*
 * Parse argv (the flags only) the way Go's flag package does: -name,
 * --name, -name=value, "-name value" for non-boolean flags, "--" ends the
 * flags.  Unlike Go, a positional argument is an error.  Returns 0,
 * CLI_HELP, or WICK_ERR_INVALID with err set (Go's wording).  Values are
 * borrowed from argv.  Call cli_args_cleanup() after any return.
 */
int	 cli_args_parse(struct cli_args *, const char *cmd,
	    const struct cli_flag *, size_t ndefs, int argc, char **argv,
	    char *err, size_t errlen) WICK_WUR;
void	 cli_args_cleanup(struct cli_args *);
/* Go-style flag list ("Usage of entry create:"), sorted by name. */
void	 cli_usage(FILE *, const struct cli_args *);
/* Accessors; a name the command does not define reads as not given. */
const char *cli_arg_str(const struct cli_args *, const char *name);
int	 cli_arg_bool(const struct cli_args *, const char *name);
int	 cli_arg_given(const struct cli_args *, const char *name);
const char *const *cli_arg_list(const struct cli_args *, const char *name,
	    size_t *n);

/* ---- values (cli.c) ------------------------------------------------------ */

/*
 * A TTL flag: integer seconds (SPIRE) or a Go duration ("1h30m"), at most
 * INT32_MAX seconds, never negative.  err names the flag.
 */
int	 cli_parse_ttl(const char *flag, const char *, int32_t *out,
	    char *err, size_t errlen) WICK_WUR;
/* A decimal integer >= min; err names the flag. */
int	 cli_parse_int64(const char *flag, const char *, int64_t min,
	    int64_t *out, char *err, size_t errlen) WICK_WUR;
/*
 * A point in time: unix seconds, RFC 3339 ("2024-05-01T10:00:00Z",
 * "...+02:00") or SPIRE's "2006-01-02 15:04:05 -0700 -07" (the trailing
 * zone name is ignored).
 */
int	 cli_parse_time(const char *, int64_t *out) WICK_WUR;
/* Go's time.Time.String() in UTC: "2024-05-01 10:00:00 +0000 UTC". */
void	 cli_format_time(int64_t, char *out, size_t outlen);
/* exact|any|superset|subset into a wick.admin.MatchBehavior value. */
int	 cli_parse_match(const char *, int *out) WICK_WUR;
/* gRPC status code as Go names it ("AlreadyExists"); buf for unknowns. */
const char *cli_code_name(int code, char *buf, size_t buflen);
/* s as Go's %q writes it. */
void	 cli_print_quoted(FILE *, const char *);
/*
 * Read a whole file ("-" or NULL: stdin), at most max bytes, as a
 * NUL-terminated heap string.  err names the file.
 */
int	 cli_read_input(const char *path, size_t max, char **out,
	    size_t *lenp, char *err, size_t errlen) WICK_WUR;
/* "spiffe://td/path" split for sorting: td and path as pointer+length. */
void	 cli_id_split(const char *, const char **td, size_t *tdlen,
	    const char **path);

/* ---- entries (cli_entry_build.c, cli_entry.c) -------------------------- */

/* Entries built here: heap messages freed with cli_entry_free(). */
struct cli_entries {
	Wick__Types__Entry	**v;
	size_t			  n;
	size_t			  cap;
};

void	 cli_entries_init(struct cli_entries *);
void	 cli_entries_cleanup(struct cli_entries *);
/* Append e; the list owns it from now on. */
void	 cli_entries_add(struct cli_entries *, Wick__Types__Entry *e);
void	 cli_entry_free(Wick__Types__Entry *);
/* "spiffe://<td>" of a trust domain name or ID into out. */
int	 cli_td_id(const char *, char *out, size_t outlen, const char **why)
	    WICK_WUR;

/*
 * The entry of "entry create" (update 0) or "entry update" (update 1)
 * from its flags, checked as SPIRE's CLI checks it plus the syntax of
 * every value; err names the flag at fault.
 */
int	 cli_entry_from_flags(const struct cli_args *, int update,
	    Wick__Types__Entry **out, char *err, size_t errlen) WICK_WUR;
/* The first entry-describing flag given besides -data, or NULL. */
const char *cli_entry_flag_given(const struct cli_args *);
/*
 * Entries from -data JSON: SPIRE's {"entries":[...]} with its field names
 * (spiffe_id, parent_id as strings or {"trust_domain","path"}, selectors,
 * x509_svid_ttl, jwt_svid_ttl, dns_names, federates_with, admin,
 * downstream, hint, store_svid, entryExpiry or expires_at, entry_id or
 * id; 64-bit numbers also as strings, as protojson writes them).  At most
 * CLI_MAX_DATA_ENTRIES.  With update, every entry needs its ID.  err
 * names the entry and field at fault.
 */
int	 cli_entries_from_json(const char *, size_t, int update,
	    struct cli_entries *, char *err, size_t errlen) WICK_WUR;
/* IDs from "entry delete -file" JSON: {"ids":["..."]}. */
int	 cli_ids_from_json(const char *, size_t, char ***ids, size_t *n,
	    char *err, size_t errlen) WICK_WUR;

/* SPIRE's entry block, blank line included. */
void	 cli_print_entry(FILE *, const Wick__Types__Entry *);
/* Every field, snake_case names; a new reference. */
json_t	*cli_entry_json(const Wick__Types__Entry *);
/* SPIRE's order: SPIFFE ID, parent ID, TTLs, selectors (sorted too). */
void	 cli_sort_entries(Wick__Types__Entry **, size_t);

/* ---- agents (cli_agent.c) ------------------------------------------------ */

/* SPIRE's agent block, blank line included. */
void	 cli_print_agent(FILE *, const Wick__Types__Agent *);
json_t	*cli_agent_json(const Wick__Types__Agent *);

/* ---- talking to the server (cli.c) --------------------------------------- */

struct cli_ctx {
	const char		*socket;	/* -socketPath */
	int			 json;		/* -output json */
	FILE			*out;
	FILE			*err;
	uv_loop_t		 loop;
	int			 loop_open;
	struct rpc_channel	*ch;
	int			 status;	/* of the last failed call */
	char			 errmsg[CLI_ERRLEN];	/* its text */
};

/* Close the connection, if any, and the private loop. */
void	 cli_ctx_close(struct cli_ctx *);
/*
 * One unary call.  On failure ctx->errmsg says why, in grpc-go's words
 * ("rpc error: code = NotFound desc = ...") or as a connection error
 * naming the socket.  *resp is freed by the caller (free_unpacked, or
 * freezero(*resp, *resplen) for raw replies).
 */
int	 cli_rpc(struct cli_ctx *, const char *path, const ProtobufCMessage *,
	    const ProtobufCMessageDescriptor *, ProtobufCMessage **resp)
	    WICK_WUR;
int	 cli_rpc_raw(struct cli_ctx *, const char *path, const uint8_t *,
	    size_t, uint8_t **resp, size_t *resplen) WICK_WUR;
/* "Error: ..." on stderr; returns 1, the exit status. */
int	 cli_fail(struct cli_ctx *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Print j (reference stolen) as one compact line; 0, or 1 on error. */
int	 cli_print_json(struct cli_ctx *, json_t *);
json_t	*cli_selectors_json(Wick__Types__Selector *const *, size_t);
/* A JSON string; bytes that are not UTF-8 come out as '?'. */
json_t	*cli_json_str(const char *);
/* Heap selectors from "type:value", or from type and value; checked. */
int	 cli_selector_parse(const char *str, Wick__Types__Selector **out,
	    const char **why) WICK_WUR;
int	 cli_selector_make(const char *type, const char *value,
	    Wick__Types__Selector **out, const char **why) WICK_WUR;

/* ---- commands ------------------------------------------------------------ */

struct cli_cmd {
	const char		*verb;
	const char		*sub;	/* NULL: flags follow the verb */
	const char		*synopsis;
	const struct cli_flag	*flags;
	size_t			 nflags;
	int			(*run)(struct cli_ctx *,
				    const struct cli_args *);
};

#define CLI_FLAG_SOCKET { "socketPath", CLI_FLAG_STRING, "string",	\
	CLI_DEFAULT_SOCKET, "Path to the wick-server admin API socket" }
#define CLI_FLAG_OUTPUT { "output", CLI_FLAG_STRING, "value", "pretty",	\
	"Desired output format (pretty, json)" }

/* cli_main() with the output streams as parameters. */
int	 cli_run(FILE *out, FILE *err, int argc, char **argv);

extern const struct cli_cmd	cli_entry_cmds[];
extern const size_t		cli_entry_ncmds;
extern const struct cli_cmd	cli_agent_cmds[];
extern const size_t		cli_agent_ncmds;
extern const struct cli_cmd	cli_bundle_cmds[];
extern const size_t		cli_bundle_ncmds;
extern const struct cli_cmd	cli_audit_cmds[];
extern const size_t		cli_audit_ncmds;

/* ---- audit (cli_audit.c) ------------------------------------------------- */

/* -since: a time as cli_parse_time() reads it, or a duration ("24h")
 * back from now; err names the flag. */
int	 cli_parse_since(const char *, int64_t now, int64_t *out, char *err,
	    size_t errlen) WICK_WUR;

#endif /* WICK_SERVER_CLI_INT_H */
