/*
 * conf.h: configuration files in SPIRE's HCL syntax, parsed into a
 * jansson tree with the position of every value kept beside it.
 *
 * Owner: the conf module.  conf_parse()/conf_load_file() return a
 * struct conf that owns the tree and the position table; everything
 * borrowed from it (conf_root(), strings from the getters) stays valid
 * until conf_free().  Callers must not modify the tree.
 *
 * Accepted syntax (the subset of HCL 1 that server.conf and agent.conf
 * use):
 *
 *   body      = { item [","] }
 *   item      = name ("=" | ":") value        attribute
 *             | name { label } "{" body "}"    block
 *   name      = identifier | quoted string (not empty)
 *   label     = quoted string (not empty)
 *   value     = string | heredoc | number | true | false
 *             | "[" [ value { "," value } [","] ] "]"
 *             | "{" body "}"
 *   identifier: [A-Za-z_][A-Za-z0-9_.-]*
 *   string:   "...", escapes \n \t \r \b \f \" \\ \/ \uXXXX (surrogate pairs
 *             combined); no raw newline or control byte, no NUL, valid
 *             UTF-8 only
 *   heredoc:  <<EOF newline lines EOF, or <<-EOF where the closing marker
 *             may be indented and the lines' common leading blanks are
 *             removed; the value keeps a newline after every line
 *   number:   [+-] decimal integer, 0x hex or 0-prefixed octal integer
 *             (as HCL 1), or decimal float with '.' and/or exponent
 *   comments: '#' and '//' to end of line, '/' '*' ... '*' '/' (no nesting)
 *
 * Newlines are whitespace.  A file whose first token is '{' is read as
 * one object, so JSON configuration (keys quoted, ':' separators,
 * commas) parses to the same tree.
 *
 * Tree shape: the root is a JSON object.
 *   key = value                 root["key"] = value
 *   name { ... }, name = {...}  root["name"] = {...}
 *   Type "a" { ... }            root["Type"]["a"] = {...}
 *   Type "a" "b" { ... }        root["Type"]["a"]["b"] = {...}
 * Blocks of one type with different labels share the Type object, so
 * every plugin is kept:  plugins { NodeAttestor "join_token" {...}
 * NodeAttestor "x509pop" {...} } gives
 * {"plugins": {"NodeAttestor": {"join_token": {...}, "x509pop": {...}}}}.
 * A name defined twice (two attributes, two unlabelled blocks, an
 * attribute and a block, or two blocks with the same type and labels) is
 * an error naming it and the line of both definitions.
 *
 * Positions: a side table maps (container, key) and (array, index) to
 * the line and column (both 1-based, column in bytes, a tab counts one)
 * where that member starts: the name of an attribute or block, the type
 * name (of the first such block) for a Type object, the label for a
 * labelled block, the value for an array element.  With
 * CONF_EXPAND_ENV positions refer to the text after expansion.
 *
 * Errors: struct conf_error gets line and column (0 when the error is
 * not tied to a place, e.g. a file too large) and msg, the full text
 * including a "line L, column C: " prefix when line > 0, e.g.
 * "line 4, column 10: unterminated string".  Syntax and type errors
 * return WICK_ERR_CONFIG, exceeded limits WICK_ERR_LIMIT, out of memory
 * WICK_ERR_ALLOC, file access WICK_ERR_IO / WICK_ERR_PERM.
 */
#ifndef WICK_CONF_H
#define WICK_CONF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define CONF_MAX_FILE_SIZE	(1024u * 1024)	/* bytes of text, also expanded */
#define CONF_MAX_DEPTH		32	/* nested '{' and '[' */
#define CONF_MAX_STRING_LEN	65536	/* bytes of one decoded string */
#define CONF_MAX_LIST_LEN	4096	/* elements of one list */
#define CONF_MAX_NAME_LEN	256	/* bytes of a name, label or heredoc marker */
#define CONF_MAX_LABELS		4	/* labels on one block */
#define CONF_MAX_NUMBER_LEN	64	/* bytes of a number literal */
#define CONF_MAX_ERROR_MSG	256

/* conf_parse()/conf_load_file() flags. */
#define CONF_EXPAND_ENV		0x1	/* run conf_expand_env() on the text first */

struct conf;

struct conf_error {
	int	line, col;
	char	msg[CONF_MAX_ERROR_MSG];
};

struct conf_pos {
	int	line, col;
};

/*
 * Parse len bytes of text.  On success *out owns the result (free with
 * conf_free()); on failure *out stays NULL and err says why.
 */
int	 conf_parse(const char *text, size_t len, unsigned flags,
	    struct conf **out, struct conf_error *err) WICK_WUR;
/*
 * Read and parse a regular file of at most CONF_MAX_FILE_SIZE bytes.  The
 * text is wiped after parsing (it may hold a join token).
 */
int	 conf_load_file(const char *path, unsigned flags, struct conf **out,
	    struct conf_error *err) WICK_WUR;
void	 conf_free(struct conf *);

/* The root object; borrowed. */
const json_t *conf_root(const struct conf *);

/*
 * Where parent[key] (an object member) or array[index] was defined.
 * WICK_ERR_NOT_FOUND if the value was not produced by this parse.
 */
int	 conf_lookup_pos(const struct conf *, const json_t *parent,
	    const char *key, struct conf_pos *out) WICK_WUR;
int	 conf_lookup_index_pos(const struct conf *, const json_t *array,
	    size_t index, struct conf_pos *out) WICK_WUR;

/*
 * Fill err with a message at the position of parent[key] (no position if
 * unknown) and return WICK_ERR_CONFIG, for callers' own checks:
 *	return conf_error_at(c, srv, "ca_ttl", err, "ca_ttl must be ...");
 */
int	 conf_error_at(const struct conf *, const json_t *parent,
	    const char *key, struct conf_error *, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

/*
 * Go duration syntax as time.ParseDuration reads it (what SPIRE uses for
 * TTLs and intervals): one or more <decimal>[.<decimal>]<unit> with units
 * h, m, s, ms, us (or the micro sign), ns, e.g. "1h30m", "1.5h", "300ms";
 * "0" alone is zero.  Negative values, missing units, unknown units and
 * anything beyond int64 nanoseconds are rejected.  conf_parse_duration()
 * gives whole seconds and rejects a fraction of a second ("1500ms");
 * conf_parse_duration_ms() gives milliseconds and rejects a fraction of
 * a millisecond.  why (may be NULL) gets a static reason on failure.
 */
int	 conf_parse_duration(const char *, int64_t *seconds,
	    const char **why) WICK_WUR;
int	 conf_parse_duration_ms(const char *, int64_t *ms,
	    const char **why) WICK_WUR;

/*
 * -expandEnv: replace $NAME and ${NAME} (NAME = [A-Za-z_][A-Za-z0-9_]*)
 * with the variable's value, or nothing if it is unset (as SPIRE does).
 * A '$' not followed by a name or '{' is kept.  "${" without a valid
 * name and '}' is an error.  The result is NUL-terminated, at most
 * CONF_MAX_FILE_SIZE bytes, and owned by the caller (wipe it with
 * freezero(*out, *outlen + 1)).
 */
int	 conf_expand_env(const char *text, size_t len, char **out,
	    size_t *outlen, struct conf_error *err) WICK_WUR;

/*
 * Schema check of one block.  Every key of block must be in known (a
 * NULL-terminated list); a key listed in unimplemented (SPIRE options
 * wick knows of but does not implement; may be NULL) gives a warning
 * through warn(arg, &w), or log_warn() if warn is NULL, naming it and
 * where it is.  The unknown key that comes first in the file is an error:
 *	line 12, column 3: unknown option "foo" in "server"
 * block_name is used in messages only.  block that is not an object is
 * an error too.
 */
typedef void conf_warn_fn(void *arg, const struct conf_error *);
int	 conf_check_keys(const struct conf *, const json_t *block,
	    const char *block_name, const char *const *known,
	    const char *const *unimplemented, conf_warn_fn *warn, void *arg,
	    struct conf_error *err) WICK_WUR;

/*
 * Typed getters for obj[key].  A missing key (or obj NULL) gives the
 * default and returns 0; a value of the wrong type is an error at its
 * position naming the key, e.g.
 *	line 3, column 5: "bind_port" must be an integer
 * conf_get_string: *out is borrowed (def itself when missing).
 * conf_get_int: an integer, or a string holding a decimal integer (HCL 1
 *	decodes bind_port = "8081" into an int); conf_get_int_range also
 *	checks min <= value <= max.
 * conf_get_bool: true or false.
 * conf_get_duration: a string in conf_parse_duration() syntax; seconds.
 */
int	 conf_get_string(const struct conf *, const json_t *obj,
	    const char *key, const char *def, const char **out,
	    struct conf_error *) WICK_WUR;
int	 conf_get_int(const struct conf *, const json_t *obj, const char *key,
	    int64_t def, int64_t *out, struct conf_error *) WICK_WUR;
int	 conf_get_int_range(const struct conf *, const json_t *obj,
	    const char *key, int64_t def, int64_t min, int64_t max,
	    int64_t *out, struct conf_error *) WICK_WUR;
int	 conf_get_bool(const struct conf *, const json_t *obj, const char *key,
	    int def, int *out, struct conf_error *) WICK_WUR;
int	 conf_get_duration(const struct conf *, const json_t *obj,
	    const char *key, int64_t def, int64_t *out_seconds,
	    struct conf_error *) WICK_WUR;

/*
 * conf_get_string() into a heap copy: *dst (freed first) gets obj[key] or
 * a copy of def (NULL stays NULL).
 */
int	 conf_get_string_dup(const struct conf *, const json_t *obj,
	    const char *key, const char *def, char **dst, struct conf_error *)
	    WICK_WUR;
/*
 * The one plugin of a type in a plugins block, e.g. KeyManager "disk":
 * its label must be in allowed (else an error naming it), its block keys
 * SPIRE's (plugin_data, enabled; plugin_cmd, plugin_checksum and
 * plugin_data_file warn as unimplemented).  *name is NULL when the type
 * is absent or enabled = false; *data is its plugin_data block or NULL.
 */
int	 conf_plugin(const struct conf *, const json_t *plugins,
	    const char *type, const char *const *allowed, const char **name,
	    const json_t **data, struct conf_error *) WICK_WUR;
/*
 * The same for a type of which several may be configured (NodeAttestor
 * on the server, WorkloadAttestor): up to max enabled ones, their labels
 * in names[] and plugin_data blocks (or NULL) in data[], *n of them.
 */
int	 conf_plugins(const struct conf *, const json_t *plugins,
	    const char *type, const char *const *allowed, size_t max,
	    const char **names, const json_t **data, size_t *n,
	    struct conf_error *) WICK_WUR;

/*
 * A daemon's configuration file: load it (CONF_EXPAND_ENV when
 * expand_env), check its top-level keys and find its main block
 * ("server", "agent"), an error naming it when absent.
 */
int	 conf_load_daemon(const char *path, int expand_env, const char *block,
	    const char *const *top_known, const char *const *top_unimpl,
	    struct conf **out, const json_t **blk, struct conf_error *)
	    WICK_WUR;
/* Check a trust domain setting and replace it by its normalised name. */
int	 conf_trust_domain(char **td, struct conf_error *) WICK_WUR;

/* Settings compared (a reload): strings, NULL equal only to NULL, and
 * vectors of them. */
int	 conf_str_eq(const char *, const char *);
int	 conf_strv_eq(char *const *a, size_t na, char *const *b, size_t nb);

#endif /* WICK_CONF_H */
