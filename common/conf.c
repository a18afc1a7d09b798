/*
 * conf.c: SPIRE-syntax HCL configuration into a jansson tree, with a side
 * table of positions.  Syntax, tree shape and limits: see conf.h.
 *
 * The lexer works on a length-delimited buffer (NUL bytes in the input
 * are just bad characters) and keeps line and column.  Every length that
 * comes from the text is checked against a CONF_MAX_* limit before
 * anything is allocated for it.  Allocation failure is returned as
 * WICK_ERR_ALLOC, never fatal, so the parser can be fuzzed and
 * fail-malloc tested.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "encode.h"
#include "spiffeid.h"
#include "log.h"
#include "xmalloc.h"

#define QNAME_MAX		64	/* bytes of a name quoted in a message */

/* Position side table: (container, key) or (array, index) -> place. */
struct pos_ent {
	const json_t	*parent;	/* NULL: empty slot */
	char		*key;		/* NULL: array index */
	size_t		 index;
	int		 line, col;
	int		 labelled;	/* object made to hold block labels */
};

struct conf {
	json_t		*root;
	struct pos_ent	*tab;
	size_t		 cap;		/* power of two, or 0 */
	size_t		 n;
};

enum tok_type {
	TOK_EOF = 0,
	TOK_IDENT,
	TOK_STRING,		/* quoted string or heredoc, decoded in str */
	TOK_NUMBER,
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_LBRACK,
	TOK_RBRACK,
	TOK_ASSIGN,		/* '=' or ':' */
	TOK_COMMA,
};

struct token {
	enum tok_type	 type;
	int		 line, col;
	const char	*raw;		/* start in the text */
	size_t		 rawlen;
	char		*str;		/* TOK_STRING: NUL-terminated, owned */
	size_t		 slen;
	int		 heredoc;
};

struct parser {
	const char		*p, *end;
	int			 line, col;
	struct token		 tok;
	struct conf		*conf;
	struct conf_error	*err;
	int			 depth;
};

/* A name copied out of a token, NUL-terminated. */
struct name {
	char	s[CONF_MAX_NAME_LEN + 1];
	int	line, col;
};

/* ---- errors ---------------------------------------------------------- */

static void __attribute__((format(printf, 4, 0)))
err_vset(struct conf_error *err, int line, int col, const char *fmt,
    va_list ap)
{
	int	n = 0;

	if (err == NULL)
		return;
	err->line = line;
	err->col = col;
	err->msg[0] = '\0';
	if (line > 0) {
		n = snprintf(err->msg, sizeof(err->msg),
		    "line %d, column %d: ", line, col);
		if (n < 0 || (size_t)n >= sizeof(err->msg))
			return;
	}
	(void)vsnprintf(err->msg + n, sizeof(err->msg) - n, fmt, ap);
}

static int __attribute__((format(printf, 5, 6)))
err_set(struct conf_error *err, int rc, int line, int col,
    const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	err_vset(err, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

static void
err_clear(struct conf_error *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
}

/*
 * Copy a name from the input into dst for use in a message: printable
 * ASCII only (others become '?'), at most QNAME_MAX bytes then "...".
 */
static const char *
qname(char *dst, size_t dstsz, const char *s, size_t len)
{
	size_t	i, o = 0;

	for (i = 0; i < len && o + 4 < dstsz; i++) {
		if (i == QNAME_MAX) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		dst[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	}
	dst[o] = '\0';
	return dst;
}

#define QBUF	(QNAME_MAX + 8)

/* ---- position table -------------------------------------------------- */

static uint64_t
pos_hash(const json_t *parent, const char *key, size_t index)
{
	uint64_t	h = (uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ULL;
	const unsigned char *k;

	if (key != NULL) {
		for (k = (const unsigned char *)key; *k != '\0'; k++) {
			h ^= *k;
			h *= 0x100000001b3ULL;
		}
	} else
		h ^= (uint64_t)index * 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h;
}

static int
pos_match(const struct pos_ent *e, const json_t *parent, const char *key,
    size_t index)
{
	if (e->parent != parent)
		return 0;
	if (key == NULL)
		return e->key == NULL && e->index == index;
	return e->key != NULL && strcmp(e->key, key) == 0;
}

static struct pos_ent *
pos_find(const struct conf *c, const json_t *parent, const char *key,
    size_t index)
{
	size_t	i;

	if (c == NULL || c->cap == 0 || parent == NULL)
		return NULL;
	i = pos_hash(parent, key, index) & (c->cap - 1);
	while (c->tab[i].parent != NULL) {
		if (pos_match(&c->tab[i], parent, key, index))
			return &c->tab[i];
		i = (i + 1) & (c->cap - 1);
	}
	return NULL;
}

static void
pos_put(struct pos_ent *tab, size_t cap, const struct pos_ent *e)
{
	size_t	i = pos_hash(e->parent, e->key, e->index) & (cap - 1);

	while (tab[i].parent != NULL)
		i = (i + 1) & (cap - 1);
	tab[i] = *e;
}

static int
pos_grow(struct conf *c)
{
	struct pos_ent	*ntab;
	size_t		 ncap, i;

	ncap = c->cap == 0 ? 64 : c->cap * 2;
	if ((ntab = calloc(ncap, sizeof(*ntab))) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < c->cap; i++)
		if (c->tab[i].parent != NULL)
			pos_put(ntab, ncap, &c->tab[i]);
	free(c->tab);
	c->tab = ntab;
	c->cap = ncap;
	return 0;
}

/* Record a new member; the caller has checked it is not there yet. */
static int
pos_add(struct conf *c, const json_t *parent, const char *key, size_t index,
    int line, int col, int labelled)
{
	struct pos_ent	e;
	int		r;

	if ((c->n + 1) * 2 > c->cap && (r = pos_grow(c)) != 0)
		return r;
	memset(&e, 0, sizeof(e));
	e.parent = parent;
	e.index = index;
	e.line = line;
	e.col = col;
	e.labelled = labelled;
	if (key != NULL && (e.key = strdup(key)) == NULL)
		return WICK_ERR_ALLOC;
	pos_put(c->tab, c->cap, &e);
	c->n++;
	return 0;
}

/* ---- lexer ----------------------------------------------------------- */

static int
perr(struct parser *ps, int rc, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
perr(struct parser *ps, int rc, int line, int col, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	err_vset(ps->err, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

static void
adv(struct parser *ps)
{
	if (*ps->p == '\n') {
		ps->line++;
		ps->col = 1;
	} else
		ps->col++;
	ps->p++;
}

static int
at(const struct parser *ps, size_t off, char c)
{
	return (size_t)(ps->end - ps->p) > off && ps->p[off] == c;
}

static int
is_ident_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_ident_char(int c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '-' ||
	    c == '.';
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/*
 * Length of the valid UTF-8 sequence at s (at most avail bytes), or 0.
 * Rejects overlong forms, surrogates and code points above U+10FFFF.
 */
static size_t
utf8_len(const unsigned char *s, size_t avail)
{
	uint32_t	cp;
	size_t		n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static size_t
utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int
skip_space(struct parser *ps)
{
	int	line, col;

	while (ps->p < ps->end) {
		switch (*ps->p) {
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			adv(ps);
			continue;
		case '#':
			while (ps->p < ps->end && *ps->p != '\n')
				adv(ps);
			continue;
		case '/':
			if (at(ps, 1, '/')) {
				while (ps->p < ps->end && *ps->p != '\n')
					adv(ps);
				continue;
			}
			if (!at(ps, 1, '*'))
				return 0;
			line = ps->line;
			col = ps->col;
			adv(ps);
			adv(ps);
			for (;;) {
				if (ps->p >= ps->end)
					return perr(ps, WICK_ERR_CONFIG, line,
					    col, "unterminated comment");
				if (*ps->p == '*' && at(ps, 1, '/')) {
					adv(ps);
					adv(ps);
					break;
				}
				adv(ps);
			}
			continue;
		default:
			return 0;
		}
	}
	return 0;
}

/* Read 4 hex digits at ps->p (after "\u"). */
static int
read_hex4(struct parser *ps, uint32_t *out)
{
	int	i, h;

	*out = 0;
	for (i = 0; i < 4; i++) {
		if (ps->p >= ps->end || (h = hex_digit(*ps->p)) < 0)
			return -1;
		*out = (*out << 4) | (uint32_t)h;
		adv(ps);
	}
	return 0;
}

/*
 * One pass over a quoted string starting at the opening quote.  With
 * out == NULL it validates and counts the decoded bytes into *lenp; with
 * out it writes them (the text is known to be valid then).
 */
static int
string_pass(struct parser *ps, char *out, size_t *lenp)
{
	int		 line = ps->line, col = ps->col, eline, ecol;
	size_t		 n = 0, u;
	uint32_t	 cp, lo;
	unsigned char	 c;

	adv(ps);			/* opening quote */
	for (;;) {
		if (ps->p >= ps->end || *ps->p == '\n')
			return perr(ps, WICK_ERR_CONFIG, line, col,
			    "unterminated string");
		c = (unsigned char)*ps->p;
		if (c == '"') {
			adv(ps);
			break;
		}
		if (n >= CONF_MAX_STRING_LEN)
			return perr(ps, WICK_ERR_LIMIT, line, col,
			    "string longer than %d bytes", CONF_MAX_STRING_LEN);
		if (c != '\\') {
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return perr(ps, WICK_ERR_CONFIG, ps->line,
				    ps->col, "control character 0x%02x in "
				    "string", c);
			if ((u = utf8_len((const unsigned char *)ps->p,
			    ps->end - ps->p)) == 0)
				return perr(ps, WICK_ERR_CONFIG, ps->line,
				    ps->col, "invalid UTF-8 in string");
			if (n + u > CONF_MAX_STRING_LEN)
				return perr(ps, WICK_ERR_LIMIT, line, col,
				    "string longer than %d bytes",
				    CONF_MAX_STRING_LEN);
			if (out != NULL)
				memcpy(out + n, ps->p, u);
			n += u;
			while (u-- > 0)
				adv(ps);
			continue;
		}
		eline = ps->line;
		ecol = ps->col;
		adv(ps);
		if (ps->p >= ps->end)
			return perr(ps, WICK_ERR_CONFIG, line, col,
			    "unterminated string");
		c = (unsigned char)*ps->p;
		switch (c) {
		case 'n': cp = '\n'; break;
		case 't': cp = '\t'; break;
		case 'r': cp = '\r'; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case '"': cp = '"'; break;
		case '\\': cp = '\\'; break;
		case '/': cp = '/'; break;
		case 'u':
			adv(ps);
			if (read_hex4(ps, &cp) != 0)
				return perr(ps, WICK_ERR_CONFIG, eline, ecol,
				    "invalid \\u escape in string");
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return perr(ps, WICK_ERR_CONFIG, eline, ecol,
				    "unpaired surrogate in \\u escape");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (!at(ps, 0, '\\') || !at(ps, 1, 'u'))
					return perr(ps, WICK_ERR_CONFIG, eline,
					    ecol, "unpaired surrogate in \\u "
					    "escape");
				adv(ps);
				adv(ps);
				if (read_hex4(ps, &lo) != 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return perr(ps, WICK_ERR_CONFIG, eline,
					    ecol, "unpaired surrogate in \\u "
					    "escape");
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			if (cp == 0)
				return perr(ps, WICK_ERR_CONFIG, eline, ecol,
				    "NUL character in string");
			goto put;
		default:
			if (c >= 0x20 && c < 0x7f)
				return perr(ps, WICK_ERR_CONFIG, eline, ecol,
				    "invalid escape sequence \"\\%c\" in "
				    "string", c);
			return perr(ps, WICK_ERR_CONFIG, eline, ecol,
			    "invalid escape sequence in string");
		}
		adv(ps);
 put:
		u = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		if (n + u > CONF_MAX_STRING_LEN)
			return perr(ps, WICK_ERR_LIMIT, line, col,
			    "string longer than %d bytes", CONF_MAX_STRING_LEN);
		if (out != NULL)
			(void)utf8_put(out + n, cp);
		n += u;
	}
	*lenp = n;
	return 0;
}

static int
lex_string(struct parser *ps, struct token *t)
{
	const char	*p = ps->p;
	size_t		 len, len2;
	int		 r, line = ps->line, col = ps->col;

	if ((r = string_pass(ps, NULL, &len)) != 0)
		return r;
	if ((t->str = malloc(len + 1)) == NULL)
		return WICK_ERR_ALLOC;
	ps->p = p;
	ps->line = line;
	ps->col = col;
	if ((r = string_pass(ps, t->str, &len2)) != 0 || len2 != len)
		return r != 0 ? r : WICK_ERR_INTERNAL;
	t->str[len] = '\0';
	t->slen = len;
	t->type = TOK_STRING;
	return 0;
}

/* The line at p: its length up to '\n' (exclusive) or the end. */
static size_t
line_len(const char *p, const char *end)
{
	const char	*nl = memchr(p, '\n', end - p);

	return nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
}

static size_t
blank_prefix(const char *p, size_t len)
{
	size_t	i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i;
}

/* Is the line [p, p+len) the closing marker? */
static int
heredoc_is_end(const char *p, size_t len, const char *marker, size_t mlen,
    int indent)
{
	size_t	skip = indent ? blank_prefix(p, len) : 0;

	p += skip;
	len -= skip;
	if (len > 0 && p[len - 1] == '\r')
		len--;
	return len == mlen && memcmp(p, marker, mlen) == 0;
}

/*
 * <<MARKER or <<-MARKER, a newline, lines, then a line that is the
 * marker (indented only with <<-).  Pass 1 validates and measures, pass 2
 * copies.
 */
static int
lex_heredoc(struct parser *ps, struct token *t)
{
	const char	*marker, *p, *body;
	size_t		 mlen = 0, ll, total = 0, minind = SIZE_MAX, ind, u, i;
	size_t		 o;
	int		 line = ps->line, col = ps->col, indent = 0;
	int		 found = 0, lines = 0;

	adv(ps);
	adv(ps);
	if (at(ps, 0, '-')) {
		indent = 1;
		adv(ps);
	}
	marker = ps->p;
	while (ps->p < ps->end && (is_ident_start(*ps->p) ||
	    is_digit(*ps->p))) {
		if (++mlen > CONF_MAX_NAME_LEN)
			return perr(ps, WICK_ERR_LIMIT, line, col,
			    "heredoc marker longer than %d bytes",
			    CONF_MAX_NAME_LEN);
		adv(ps);
	}
	if (mlen == 0)
		return perr(ps, WICK_ERR_CONFIG, line, col,
		    "expected a heredoc marker after '<<'");
	if (at(ps, 0, '\r'))
		adv(ps);
	if (!at(ps, 0, '\n'))
		return perr(ps, WICK_ERR_CONFIG, ps->line, ps->col,
		    "expected a newline after heredoc marker");
	adv(ps);
	body = ps->p;

	/* Pass 1: find the end, validate, measure. */
	for (p = body; p < ps->end; p += ll + 1) {
		ll = line_len(p, ps->end);
		if (heredoc_is_end(p, ll, marker, mlen, indent)) {
			found = 1;
			break;
		}
		for (i = 0; i < ll; i += u) {
			unsigned char c = (unsigned char)p[i];

			if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
				return perr(ps, WICK_ERR_CONFIG,
				    ps->line + lines, (int)i + 1,
				    "control character 0x%02x in heredoc", c);
			if ((u = utf8_len((const unsigned char *)p + i,
			    ll - i)) == 0)
				return perr(ps, WICK_ERR_CONFIG,
				    ps->line + lines, (int)i + 1,
				    "invalid UTF-8 in heredoc");
		}
		ind = blank_prefix(p, ll);
		if (ind < ll && ind < minind)
			minind = ind;
		total += ll + 1;
		if (total > CONF_MAX_STRING_LEN)
			return perr(ps, WICK_ERR_LIMIT, line, col,
			    "heredoc longer than %d bytes",
			    CONF_MAX_STRING_LEN);
		lines++;
		if (p + ll >= ps->end)
			break;
	}
	if (!found) {
		char	q[QBUF];

		return perr(ps, WICK_ERR_CONFIG, line, col,
		    "unterminated heredoc, missing closing \"%s\"",
		    qname(q, sizeof(q), marker, mlen));
	}
	if (!indent || minind == SIZE_MAX)
		minind = 0;

	/* Pass 2: copy, dropping the common indentation with <<-. */
	if ((t->str = malloc(total + 1)) == NULL)
		return WICK_ERR_ALLOC;
	o = 0;
	for (p = body; lines-- > 0; p += ll + 1) {
		ll = line_len(p, ps->end);
		ind = blank_prefix(p, ll);
		if (ind > minind)
			ind = minind;
		memcpy(t->str + o, p + ind, ll - ind);
		o += ll - ind;
		t->str[o++] = '\n';
	}
	t->str[o] = '\0';
	t->slen = o;
	t->type = TOK_STRING;
	t->heredoc = 1;

	/* Move the lexer past the closing marker. */
	while (ps->p < p)
		adv(ps);
	ll = line_len(p, ps->end);
	while (ll-- > 0)
		adv(ps);
	return 0;
}

static int
lex_number(struct parser *ps, struct token *t)
{
	const char	*start = ps->p;
	int		 hex = 0;

	if (*ps->p == '-' || *ps->p == '+') {
		if (ps->end - ps->p < 2 || !is_digit(ps->p[1]))
			return perr(ps, WICK_ERR_CONFIG, ps->line, ps->col,
			    "unexpected character '%c'", *ps->p);
		adv(ps);
	}
	if (at(ps, 0, '0') && (at(ps, 1, 'x') || at(ps, 1, 'X')))
		hex = 1;
	while (ps->p < ps->end) {
		char c = *ps->p;

		if (is_ident_char(c)) {
			adv(ps);
			if (!hex && (c == 'e' || c == 'E') &&
			    (at(ps, 0, '+') || at(ps, 0, '-')))
				adv(ps);
			continue;
		}
		break;
	}
	t->type = TOK_NUMBER;
	t->raw = start;
	t->rawlen = ps->p - start;
	return 0;
}

/* Advance to the next token; frees the previous token's string. */
static int
next(struct parser *ps)
{
	struct token	*t = &ps->tok;
	size_t		 n;
	int		 r;
	unsigned char	 c;

	free(t->str);
	memset(t, 0, sizeof(*t));
	if ((r = skip_space(ps)) != 0)
		return r;
	t->line = ps->line;
	t->col = ps->col;
	t->raw = ps->p;
	if (ps->p >= ps->end) {
		t->type = TOK_EOF;
		return 0;
	}
	c = (unsigned char)*ps->p;
	switch (c) {
	case '{': t->type = TOK_LBRACE; break;
	case '}': t->type = TOK_RBRACE; break;
	case '[': t->type = TOK_LBRACK; break;
	case ']': t->type = TOK_RBRACK; break;
	case '=': t->type = TOK_ASSIGN; break;
	case ':': t->type = TOK_ASSIGN; break;
	case ',': t->type = TOK_COMMA; break;
	case '"':
		return lex_string(ps, t);
	case '<':
		if (at(ps, 1, '<'))
			return lex_heredoc(ps, t);
		return perr(ps, WICK_ERR_CONFIG, t->line, t->col,
		    "unexpected character '<'");
	default:
		if (is_digit(c) || c == '-' || c == '+')
			return lex_number(ps, t);
		if (is_ident_start(c)) {
			for (n = 0; ps->p < ps->end && is_ident_char(*ps->p);
			    n++) {
				if (n == CONF_MAX_NAME_LEN)
					return perr(ps, WICK_ERR_LIMIT,
					    t->line, t->col, "name longer "
					    "than %d bytes", CONF_MAX_NAME_LEN);
				adv(ps);
			}
			t->type = TOK_IDENT;
			t->rawlen = n;
			return 0;
		}
		if (c >= 0x20 && c < 0x7f)
			return perr(ps, WICK_ERR_CONFIG, t->line, t->col,
			    "unexpected character '%c'", c);
		return perr(ps, WICK_ERR_CONFIG, t->line, t->col,
		    "unexpected byte 0x%02x", c);
	}
	adv(ps);
	t->rawlen = 1;
	return 0;
}

/* A short description of a token for "found ..." in messages. */
static const char *
tok_describe(const struct token *t, char *buf, size_t sz)
{
	char	q[QBUF];

	switch (t->type) {
	case TOK_EOF:
		return "end of input";
	case TOK_IDENT:
		(void)snprintf(buf, sz, "\"%s\"",
		    qname(q, sizeof(q), t->raw, t->rawlen));
		return buf;
	case TOK_STRING:
		return t->heredoc ? "a heredoc" : "a string";
	case TOK_NUMBER:
		return "a number";
	default:
		(void)snprintf(buf, sz, "'%c'", t->raw[0]);
		return buf;
	}
}

/* ---- parser ---------------------------------------------------------- */

static int	parse_value(struct parser *, const char *, json_t **);
static int	parse_body(struct parser *, json_t *, enum tok_type, int, int);

/* Copy the current IDENT or STRING token into a name. */
static int
take_name(struct parser *ps, struct name *nm, const char *what)
{
	const struct token	*t = &ps->tok;
	const char		*s;
	size_t			 len;

	if (t->type == TOK_IDENT) {
		s = t->raw;
		len = t->rawlen;
	} else {
		s = t->str;
		len = t->slen;
	}
	if (len == 0)
		return perr(ps, WICK_ERR_CONFIG, t->line, t->col, "empty %s",
		    what);
	if (len > CONF_MAX_NAME_LEN)
		return perr(ps, WICK_ERR_LIMIT, t->line, t->col,
		    "%s longer than %d bytes", what, CONF_MAX_NAME_LEN);
	memcpy(nm->s, s, len);
	nm->s[len] = '\0';
	nm->line = t->line;
	nm->col = t->col;
	return 0;
}

static int
depth_enter(struct parser *ps)
{
	if (ps->depth >= CONF_MAX_DEPTH)
		return perr(ps, WICK_ERR_LIMIT, ps->tok.line, ps->tok.col,
		    "nesting deeper than %d levels", CONF_MAX_DEPTH);
	ps->depth++;
	return 0;
}

static int
parse_number(struct parser *ps, json_t **out)
{
	const struct token	*t = &ps->tok;
	const char		*s = t->raw, *e = t->raw + t->rawlen, *q;
	char			 tmp[CONF_MAX_NUMBER_LEN + 1], qb[QBUF];
	uint64_t		 v = 0, lim;
	double			 d;
	int			 neg = 0, base = 10, dig, seen, fexp = 0;

	*out = NULL;
	if (t->rawlen > CONF_MAX_NUMBER_LEN)
		return perr(ps, WICK_ERR_LIMIT, t->line, t->col,
		    "number longer than %d bytes", CONF_MAX_NUMBER_LEN);
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (e - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	} else if (e - s > 1 && s[0] == '0' && is_digit(s[1]))
		base = 8;
	for (q = s; q < e; q++) {
		dig = hex_digit(*q);
		if (dig < 0 || dig >= base)
			break;
		if (v > (lim - dig) / base)
			return perr(ps, WICK_ERR_CONFIG, t->line, t->col,
			    "integer out of range \"%s\"",
			    qname(qb, sizeof(qb), t->raw, t->rawlen));
		v = v * base + dig;
	}
	if (q == e && q > s) {
		if (neg)
			*out = json_integer(v == (uint64_t)INT64_MAX + 1 ?
			    INT64_MIN : -(json_int_t)v);
		else
			*out = json_integer((json_int_t)v);
		return *out == NULL ? WICK_ERR_ALLOC : 0;
	}
	if (base == 16)
		goto bad;
	/* Float: digits [. digits] [e [+-] digits], with '.' or 'e'. */
	for (q = s, seen = 0; q < e && is_digit(*q); q++)
		seen = 1;
	if (!seen)
		goto bad;
	if (q < e && *q == '.') {
		fexp = 1;
		for (q++, seen = 0; q < e && is_digit(*q); q++)
			seen = 1;
		if (!seen)
			goto bad;
	}
	if (q < e && (*q == 'e' || *q == 'E')) {
		fexp = 1;
		q++;
		if (q < e && (*q == '+' || *q == '-'))
			q++;
		for (seen = 0; q < e && is_digit(*q); q++)
			seen = 1;
		if (!seen)
			goto bad;
	}
	if (q != e || !fexp)
		goto bad;
	memcpy(tmp, t->raw, t->rawlen);
	tmp[t->rawlen] = '\0';
	errno = 0;
	d = strtod(tmp, NULL);
	if (!isfinite(d) || errno == ERANGE)
		return perr(ps, WICK_ERR_CONFIG, t->line, t->col,
		    "number out of range \"%s\"",
		    qname(qb, sizeof(qb), t->raw, t->rawlen));
	if ((*out = json_real(d)) == NULL)
		return WICK_ERR_ALLOC;
	return 0;
 bad:
	return perr(ps, WICK_ERR_CONFIG, t->line, t->col,
	    "invalid number \"%s\"", qname(qb, sizeof(qb), t->raw, t->rawlen));
}

static int
parse_list(struct parser *ps, const char *forname, json_t **out)
{
	json_t	*arr = NULL, *v = NULL;
	size_t	 n = 0;
	int	 r, line = ps->tok.line, col = ps->tok.col, eline, ecol;
	char	 q[QBUF], d[QBUF + 8];

	*out = NULL;
	if ((r = depth_enter(ps)) != 0)
		return r;
	if ((arr = json_array()) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if ((r = next(ps)) != 0)
		goto out;
	for (;;) {
		if (ps->tok.type == TOK_RBRACK)
			break;
		if (n == CONF_MAX_LIST_LEN) {
			r = perr(ps, WICK_ERR_LIMIT, ps->tok.line, ps->tok.col,
			    "list \"%s\" has more than %d elements",
			    qname(q, sizeof(q), forname, strlen(forname)),
			    CONF_MAX_LIST_LEN);
			goto out;
		}
		eline = ps->tok.line;
		ecol = ps->tok.col;
		if ((r = parse_value(ps, forname, &v)) != 0)
			goto out;
		if (json_array_append_new(arr, v) != 0) {
			r = WICK_ERR_ALLOC;
			goto out;
		}
		if ((r = pos_add(ps->conf, arr, NULL, n, eline, ecol, 0)) != 0)
			goto out;
		n++;
		if (ps->tok.type == TOK_COMMA) {
			if ((r = next(ps)) != 0)
				goto out;
			continue;
		}
		if (ps->tok.type == TOK_RBRACK)
			break;
		r = perr(ps, WICK_ERR_CONFIG, ps->tok.line, ps->tok.col,
		    "expected ',' or ']' in list \"%s\" opened at line %d, "
		    "column %d, found %s",
		    qname(q, sizeof(q), forname, strlen(forname)), line, col,
		    tok_describe(&ps->tok, d, sizeof(d)));
		goto out;
	}
	if ((r = next(ps)) != 0)	/* ']' */
		goto out;
	ps->depth--;
	*out = arr;
	arr = NULL;
 out:
	json_decref(arr);
	return r;
}

/* Parse one value at the current token; consumes it. */
static int
parse_value(struct parser *ps, const char *forname, json_t **out)
{
	struct token	*t = &ps->tok;
	json_t		*v = NULL;
	int		 r, line, col;
	char		 q[QBUF], d[QBUF + 8];

	*out = NULL;
	switch (t->type) {
	case TOK_STRING:
		if ((v = json_stringn_nocheck(t->str, t->slen)) == NULL)
			return WICK_ERR_ALLOC;
		break;
	case TOK_NUMBER:
		if ((r = parse_number(ps, &v)) != 0)
			return r;
		break;
	case TOK_IDENT:
		if (t->rawlen == 4 && memcmp(t->raw, "true", 4) == 0)
			v = json_true();
		else if (t->rawlen == 5 && memcmp(t->raw, "false", 5) == 0)
			v = json_false();
		else
			goto bad;
		break;
	case TOK_LBRACK:
		return parse_list(ps, forname, out);
	case TOK_LBRACE:
		line = t->line;
		col = t->col;
		if ((r = depth_enter(ps)) != 0)
			return r;
		if ((v = json_object()) == NULL)
			return WICK_ERR_ALLOC;
		if ((r = next(ps)) != 0 ||
		    (r = parse_body(ps, v, TOK_RBRACE, line, col)) != 0) {
			json_decref(v);
			return r;
		}
		ps->depth--;
		*out = v;
		return 0;
	default:
		goto bad;
	}
	if ((r = next(ps)) != 0) {
		json_decref(v);
		return r;
	}
	*out = v;
	return 0;
 bad:
	return perr(ps, WICK_ERR_CONFIG, t->line, t->col,
	    "expected a value for \"%s\", found %s",
	    qname(q, sizeof(q), forname, strlen(forname)),
	    tok_describe(t, d, sizeof(d)));
}

static int
dup_error(struct parser *ps, const struct pos_ent *first, int line, int col,
    const char *what, const char *name)
{
	char	q[QBUF];

	return perr(ps, WICK_ERR_CONFIG, line, col,
	    "duplicate %s \"%s\" (first defined at line %d, column %d)", what,
	    qname(q, sizeof(q), name, strlen(name)),
	    first != NULL ? first->line : 0, first != NULL ? first->col : 0);
}

/*
 * A block: name is taken, the current token is '{' or the first label.
 * Labels become nested objects marked as label holders in the position
 * table, so later blocks of the same type join them.
 */
static int
parse_block(struct parser *ps, json_t *obj, const struct name *nm)
{
	struct name		 labels[CONF_MAX_LABELS];
	const struct name	*key = nm;
	struct pos_ent		*pe;
	json_t			*container = obj, *v, *body;
	int			 nlabels = 0, i, r, line, col;
	char			 q[QBUF], q2[QBUF], d[QBUF + 8];

	while (ps->tok.type == TOK_STRING && !ps->tok.heredoc) {
		if (nlabels == CONF_MAX_LABELS)
			return perr(ps, WICK_ERR_LIMIT, ps->tok.line,
			    ps->tok.col, "block \"%s\" has more than %d labels",
			    qname(q, sizeof(q), nm->s, strlen(nm->s)),
			    CONF_MAX_LABELS);
		if ((r = take_name(ps, &labels[nlabels], "block label")) != 0)
			return r;
		nlabels++;
		if ((r = next(ps)) != 0)
			return r;
	}
	if (ps->tok.type != TOK_LBRACE)
		return perr(ps, WICK_ERR_CONFIG, ps->tok.line, ps->tok.col,
		    "expected '{' after label \"%s\" of block \"%s\", found %s",
		    qname(q2, sizeof(q2), labels[nlabels - 1].s,
		    strlen(labels[nlabels - 1].s)),
		    qname(q, sizeof(q), nm->s, strlen(nm->s)),
		    tok_describe(&ps->tok, d, sizeof(d)));

	for (i = 0; i < nlabels; i++) {
		if ((v = json_object_get(container, key->s)) != NULL) {
			pe = pos_find(ps->conf, container, key->s, 0);
			if (pe == NULL || !pe->labelled || !json_is_object(v))
				return dup_error(ps, pe, key->line, key->col,
				    "definition of", key->s);
		} else {
			if ((v = json_object()) == NULL)
				return WICK_ERR_ALLOC;
			if (json_object_set_new_nocheck(container, key->s,
			    v) != 0)
				return WICK_ERR_ALLOC;
			if ((r = pos_add(ps->conf, container, key->s, 0,
			    key->line, key->col, 1)) != 0)
				return r;
		}
		container = v;
		key = &labels[i];
	}
	if (json_object_get(container, key->s) != NULL) {
		pe = pos_find(ps->conf, container, key->s, 0);
		if (nlabels == 0)
			return dup_error(ps, pe, key->line, key->col, "block",
			    key->s);
		return perr(ps, WICK_ERR_CONFIG, key->line, key->col,
		    "duplicate block %s \"%s\" (first defined at line %d, "
		    "column %d)", qname(q, sizeof(q), nm->s, strlen(nm->s)),
		    qname(q2, sizeof(q2), key->s, strlen(key->s)),
		    pe != NULL ? pe->line : 0, pe != NULL ? pe->col : 0);
	}
	if ((body = json_object()) == NULL)
		return WICK_ERR_ALLOC;
	if (json_object_set_new_nocheck(container, key->s, body) != 0)
		return WICK_ERR_ALLOC;
	if ((r = pos_add(ps->conf, container, key->s, 0, key->line, key->col,
	    0)) != 0)
		return r;
	line = ps->tok.line;
	col = ps->tok.col;
	if ((r = depth_enter(ps)) != 0)
		return r;
	if ((r = next(ps)) != 0 ||
	    (r = parse_body(ps, body, TOK_RBRACE, line, col)) != 0)
		return r;
	ps->depth--;
	return 0;
}

static int
parse_item(struct parser *ps, json_t *obj)
{
	struct name	 nm;
	struct pos_ent	*pe;
	json_t		*v = NULL;
	int		 r;
	char		 q[QBUF], d[QBUF + 8];

	if (ps->tok.type != TOK_IDENT && ps->tok.type != TOK_STRING)
		return perr(ps, WICK_ERR_CONFIG, ps->tok.line, ps->tok.col,
		    "expected an attribute or block name, found %s",
		    tok_describe(&ps->tok, d, sizeof(d)));
	if (ps->tok.type == TOK_STRING && ps->tok.heredoc)
		return perr(ps, WICK_ERR_CONFIG, ps->tok.line, ps->tok.col,
		    "expected an attribute or block name, found a heredoc");
	if ((r = take_name(ps, &nm, "name")) != 0)
		return r;
	if ((r = next(ps)) != 0)
		return r;
	switch (ps->tok.type) {
	case TOK_ASSIGN:
		if (json_object_get(obj, nm.s) != NULL) {
			pe = pos_find(ps->conf, obj, nm.s, 0);
			return dup_error(ps, pe, nm.line, nm.col, "attribute",
			    nm.s);
		}
		if ((r = next(ps)) != 0 ||
		    (r = parse_value(ps, nm.s, &v)) != 0)
			return r;
		if (json_object_set_new_nocheck(obj, nm.s, v) != 0)
			return WICK_ERR_ALLOC;
		return pos_add(ps->conf, obj, nm.s, 0, nm.line, nm.col, 0);
	case TOK_LBRACE:
	case TOK_STRING:
		if (ps->tok.heredoc)
			break;
		return parse_block(ps, obj, &nm);
	default:
		break;
	}
	return perr(ps, WICK_ERR_CONFIG, ps->tok.line, ps->tok.col,
	    "expected '=' or '{' after \"%s\", found %s",
	    qname(q, sizeof(q), nm.s, strlen(nm.s)),
	    tok_describe(&ps->tok, d, sizeof(d)));
}

/*
 * Items until closer: TOK_EOF for the top level, TOK_RBRACE (consumed)
 * for a block opened at line/col.
 */
static int
parse_body(struct parser *ps, json_t *obj, enum tok_type closer, int line,
    int col)
{
	int	r;

	for (;;) {
		if (ps->tok.type == TOK_EOF) {
			if (closer == TOK_EOF)
				return 0;
			return perr(ps, WICK_ERR_CONFIG, ps->tok.line,
			    ps->tok.col, "expected '}' to close the block "
			    "opened at line %d, column %d, found end of input",
			    line, col);
		}
		if (ps->tok.type == TOK_RBRACE && closer == TOK_RBRACE)
			return next(ps);
		if ((r = parse_item(ps, obj)) != 0)
			return r;
		if (ps->tok.type == TOK_COMMA && (r = next(ps)) != 0)
			return r;
	}
}

static int
parse_text(const char *text, size_t len, struct conf *c,
    struct conf_error *err)
{
	struct parser	ps;
	char		d[QBUF + 8];
	int		r, line, col;

	memset(&ps, 0, sizeof(ps));
	ps.p = text;
	ps.end = text + len;
	ps.line = 1;
	ps.col = 1;
	ps.conf = c;
	ps.err = err;
	/* A UTF-8 byte order mark is not part of the text. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		ps.p += 3;
	if ((r = next(&ps)) != 0)
		goto out;
	if (ps.tok.type == TOK_LBRACE) {
		/* JSON: one object. */
		line = ps.tok.line;
		col = ps.tok.col;
		ps.depth = 1;
		if ((r = next(&ps)) != 0 ||
		    (r = parse_body(&ps, c->root, TOK_RBRACE, line, col)) != 0)
			goto out;
		if (ps.tok.type != TOK_EOF) {
			r = perr(&ps, WICK_ERR_CONFIG, ps.tok.line,
			    ps.tok.col, "unexpected %s after the closing '}'",
			    tok_describe(&ps.tok, d, sizeof(d)));
			goto out;
		}
	} else if ((r = parse_body(&ps, c->root, TOK_EOF, 0, 0)) != 0)
		goto out;
 out:
	free(ps.tok.str);
	return r;
}

/* ---- public: parse, load, free, positions ----------------------------- */

void
conf_free(struct conf *c)
{
	size_t	i;

	if (c == NULL)
		return;
	for (i = 0; i < c->cap; i++)
		free(c->tab[i].key);
	free(c->tab);
	json_decref(c->root);
	free(c);
}

int
conf_parse(const char *text, size_t len, unsigned flags, struct conf **out,
    struct conf_error *err)
{
	struct conf	*c = NULL;
	char		*exp = NULL;
	size_t		 explen = 0;
	int		 r;

	*out = NULL;
	err_clear(err);
	if (len > CONF_MAX_FILE_SIZE)
		return err_set(err, WICK_ERR_LIMIT, 0, 0,
		    "configuration is larger than %u bytes",
		    CONF_MAX_FILE_SIZE);
	if (flags & CONF_EXPAND_ENV) {
		if ((r = conf_expand_env(text, len, &exp, &explen, err)) != 0)
			return r;
		text = exp;
		len = explen;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->root = json_object()) == NULL) {
		r = err_set(err, WICK_ERR_ALLOC, 0, 0, "out of memory");
		goto out;
	}
	if ((r = parse_text(text, len, c, err)) != 0) {
		if (r == WICK_ERR_ALLOC)
			(void)err_set(err, r, 0, 0, "out of memory");
		goto out;
	}
	*out = c;
	c = NULL;
 out:
	conf_free(c);
	if (exp != NULL)
		freezero(exp, explen + 1);
	return r;
}

int
conf_load_file(const char *path, unsigned flags, struct conf **out,
    struct conf_error *err)
{
	struct stat	 st;
	char		*text = NULL;
	size_t		 size = 0, got = 0;
	ssize_t		 n;
	int		 fd = -1, r;

	*out = NULL;
	err_clear(err);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		r = errno == EACCES ? WICK_ERR_PERM : WICK_ERR_IO;
		(void)err_set(err, r, 0, 0, "cannot open: %s",
		    strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		r = err_set(err, WICK_ERR_IO, 0, 0, "cannot stat: %s",
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = err_set(err, WICK_ERR_CONFIG, 0, 0, "not a regular file");
		goto out;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > CONF_MAX_FILE_SIZE) {
		r = err_set(err, WICK_ERR_LIMIT, 0, 0,
		    "file is larger than %u bytes", CONF_MAX_FILE_SIZE);
		goto out;
	}
	size = (size_t)st.st_size;
	/* One spare byte to notice a file that grew since fstat. */
	if ((text = malloc(size + 1)) == NULL) {
		r = err_set(err, WICK_ERR_ALLOC, 0, 0, "out of memory");
		goto out;
	}
	while (got < size + 1) {
		n = read(fd, text + got, size + 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = err_set(err, WICK_ERR_IO, 0, 0, "cannot read: %s",
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > size) {
		r = err_set(err, WICK_ERR_IO, 0, 0,
		    "file changed while being read");
		goto out;
	}
	r = conf_parse(text, got, flags, out, err);
 out:
	if (fd != -1)
		(void)close(fd);
	if (text != NULL)
		freezero(text, size + 1);
	return r;
}

const json_t *
conf_root(const struct conf *c)
{
	return c->root;
}

int
conf_lookup_pos(const struct conf *c, const json_t *parent, const char *key,
    struct conf_pos *out)
{
	const struct pos_ent	*e;

	memset(out, 0, sizeof(*out));
	if (parent == NULL || key == NULL)
		return WICK_ERR_NOT_FOUND;
	if ((e = pos_find(c, parent, key, 0)) == NULL)
		return WICK_ERR_NOT_FOUND;
	out->line = e->line;
	out->col = e->col;
	return 0;
}

int
conf_lookup_index_pos(const struct conf *c, const json_t *array,
    size_t index, struct conf_pos *out)
{
	const struct pos_ent	*e;

	memset(out, 0, sizeof(*out));
	if ((e = pos_find(c, array, NULL, index)) == NULL)
		return WICK_ERR_NOT_FOUND;
	out->line = e->line;
	out->col = e->col;
	return 0;
}

int
conf_error_at(const struct conf *c, const json_t *parent, const char *key,
    struct conf_error *err, const char *fmt, ...)
{
	struct conf_pos	pos;
	va_list		ap;

	if (c == NULL || conf_lookup_pos(c, parent, key, &pos) != 0)
		pos.line = pos.col = 0;
	va_start(ap, fmt);
	err_vset(err, pos.line, pos.col, fmt, ap);
	va_end(ap);
	return WICK_ERR_CONFIG;
}

/* ---- durations ------------------------------------------------------- */

#define NS_MAX	((uint64_t)INT64_MAX)

static const struct {
	const char	*name;
	uint64_t	 ns;
} duration_units[] = {
	{ "ns", 1ULL },
	{ "us", 1000ULL },
	{ "\xc2\xb5s", 1000ULL },	/* U+00B5 micro sign */
	{ "\xce\xbcs", 1000ULL },	/* U+03BC greek mu */
	{ "ms", 1000000ULL },
	{ "s", 1000000000ULL },
	{ "m", 60ULL * 1000000000ULL },
	{ "h", 3600ULL * 1000000000ULL },
};

/* time.ParseDuration's grammar, without the sign; nanoseconds. */
static int
duration_ns(const char *s, uint64_t *out, const char **why)
{
	uint64_t	 total = 0, v, f, unit;
	double		 scale;
	const char	*u;
	size_t		 ulen, i;
	int		 pre, post, over;

	*out = 0;
	if (*s == '-') {
		*why = "negative duration";
		return WICK_ERR_INVALID;
	}
	if (*s == '+')
		s++;
	if (*s == '\0') {
		*why = "empty duration";
		return WICK_ERR_INVALID;
	}
	if (strcmp(s, "0") == 0)
		return 0;
	while (*s != '\0') {
		if (!is_digit(*s) && *s != '.') {
			*why = "expected a number";
			return WICK_ERR_INVALID;
		}
		v = 0;
		pre = post = 0;
		for (; is_digit(*s); s++) {
			pre = 1;
			if (v > NS_MAX / 10) {
				*why = "duration out of range";
				return WICK_ERR_INVALID;
			}
			v = v * 10 + (uint64_t)(*s - '0');
			if (v > NS_MAX + 1) {
				*why = "duration out of range";
				return WICK_ERR_INVALID;
			}
		}
		f = 0;
		scale = 1;
		if (*s == '.') {
			s++;
			for (over = 0; is_digit(*s); s++) {
				post = 1;
				if (over || f > NS_MAX / 10) {
					over = 1;
					continue;
				}
				f = f * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
		}
		if (!pre && !post) {
			*why = "expected a number";
			return WICK_ERR_INVALID;
		}
		for (u = s; *s != '\0' && *s != '.' && !is_digit(*s); s++)
			;
		ulen = s - u;
		if (ulen == 0) {
			*why = "missing unit";
			return WICK_ERR_INVALID;
		}
		unit = 0;
		for (i = 0; i < sizeof(duration_units) /
		    sizeof(duration_units[0]); i++) {
			if (strlen(duration_units[i].name) == ulen &&
			    memcmp(duration_units[i].name, u, ulen) == 0)
				unit = duration_units[i].ns;
		}
		if (unit == 0) {
			*why = "unknown unit";
			return WICK_ERR_INVALID;
		}
		if (v > NS_MAX / unit) {
			*why = "duration out of range";
			return WICK_ERR_INVALID;
		}
		v *= unit;
		if (f > 0) {
			v += (uint64_t)((double)f * ((double)unit / scale));
			if (v > NS_MAX) {
				*why = "duration out of range";
				return WICK_ERR_INVALID;
			}
		}
		if (v > NS_MAX - total) {
			*why = "duration out of range";
			return WICK_ERR_INVALID;
		}
		total += v;
	}
	*out = total;
	return 0;
}

static int
duration_in(const char *s, uint64_t per, int64_t *out, const char **why)
{
	const char	*w = NULL;
	uint64_t	 ns;
	int		 r;

	*out = 0;
	if (why != NULL)
		*why = NULL;
	if (s == NULL) {
		w = "empty duration";
		r = WICK_ERR_INVALID;
	} else if ((r = duration_ns(s, &ns, &w)) == 0) {
		if (ns % per != 0) {
			w = per == 1000000000ULL ?
			    "fraction of a second not allowed" :
			    "fraction of a millisecond not allowed";
			r = WICK_ERR_INVALID;
		} else
			*out = (int64_t)(ns / per);
	}
	if (r != 0 && why != NULL)
		*why = w;
	return r;
}

int
conf_parse_duration(const char *s, int64_t *seconds, const char **why)
{
	return duration_in(s, 1000000000ULL, seconds, why);
}

int
conf_parse_duration_ms(const char *s, int64_t *ms, const char **why)
{
	return duration_in(s, 1000000ULL, ms, why);
}

/* ---- environment expansion ------------------------------------------- */

int
conf_expand_env(const char *text, size_t len, char **out, size_t *outlen,
    struct conf_error *err)
{
	struct buf	 b;
	const char	*p = text, *end = text + len, *name, *val;
	uint8_t		*res = NULL;
	char		 nbuf[CONF_MAX_NAME_LEN + 1];
	size_t		 nlen;
	int		 r = 0, line = 1, col = 1, braced;

	*out = NULL;
	*outlen = 0;
	err_clear(err);
	buf_init(&b, CONF_MAX_FILE_SIZE);
	buf_set_secret(&b);
	while (p < end) {
		if (*p != '$' || end - p < 2 || (p[1] != '{' &&
		    !is_ident_start(p[1]))) {
			if ((r = buf_put(&b, p, 1)) != 0)
				goto fail;
			if (*p == '\n') {
				line++;
				col = 1;
			} else
				col++;
			p++;
			continue;
		}
		braced = p[1] == '{';
		name = p + 1 + braced;
		for (nlen = 0; name + nlen < end && (is_ident_start(name[nlen])
		    || is_digit(name[nlen])); nlen++)
			;
		if (braced && (nlen == 0 || !is_ident_start(name[0]) ||
		    name + nlen >= end || name[nlen] != '}')) {
			r = err_set(err, WICK_ERR_CONFIG, line, col,
			    "invalid ${...} environment reference");
			goto out;
		}
		if (nlen > CONF_MAX_NAME_LEN) {
			r = err_set(err, WICK_ERR_LIMIT, line, col,
			    "environment variable name longer than %d bytes",
			    CONF_MAX_NAME_LEN);
			goto out;
		}
		memcpy(nbuf, name, nlen);
		nbuf[nlen] = '\0';
		if ((val = getenv(nbuf)) != NULL &&
		    (r = buf_put_cstr(&b, val)) != 0)
			goto fail;
		col += (int)(1 + braced * 2 + nlen);
		p = name + nlen + braced;
	}
	if ((r = buf_steal(&b, &res, outlen)) != 0)
		goto fail;
	*out = (char *)res;
	goto out;
 fail:
	if (r == WICK_ERR_LIMIT)
		(void)err_set(err, r, 0, 0, "configuration is larger than %u "
		    "bytes after expanding environment variables",
		    CONF_MAX_FILE_SIZE);
	else
		(void)err_set(err, r, 0, 0, "out of memory");
 out:
	buf_cleanup(&b);
	return r;
}

/* ---- schema check and typed getters ----------------------------------- */

static int
in_list(const char *const *list, const char *s)
{
	if (list == NULL)
		return 0;
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

static int
pos_before(const struct conf_pos *a, const struct conf_pos *b)
{
	return a->line < b->line || (a->line == b->line && a->col < b->col);
}

int
conf_check_keys(const struct conf *c, const json_t *block,
    const char *block_name, const char *const *known,
    const char *const *unimplemented, conf_warn_fn *warn, void *arg,
    struct conf_error *err)
{
	struct conf_error	 w;
	struct conf_pos		 pos, best = { INT_MAX, INT_MAX };
	const char		*key, *bad = NULL;
	json_t			*v;
	char			 q[QBUF], qb[QBUF];

	err_clear(err);
	qname(qb, sizeof(qb), block_name, strlen(block_name));
	if (!json_is_object(block))
		return err_set(err, WICK_ERR_CONFIG, 0, 0,
		    "\"%s\" must be a block", qb);
	json_object_foreach((json_t *)block, key, v) {
		if (in_list(known, key))
			continue;
		if (conf_lookup_pos(c, block, key, &pos) != 0)
			pos.line = pos.col = 0;
		qname(q, sizeof(q), key, strlen(key));
		if (in_list(unimplemented, key)) {
			err_clear(&w);
			(void)err_set(&w, 0, pos.line, pos.col,
			    "option \"%s\" in \"%s\" is not implemented by "
			    "wick and is ignored", q, qb);
			if (warn != NULL)
				warn(arg, &w);
			else
				log_warn("%s", w.msg);
			continue;
		}
		if (bad == NULL || pos_before(&pos, &best)) {
			bad = key;
			best = pos;
		}
	}
	if (bad != NULL)
		return err_set(err, WICK_ERR_CONFIG, best.line, best.col,
		    "unknown option \"%s\" in \"%s\"",
		    qname(q, sizeof(q), bad, strlen(bad)), qb);
	return 0;
}

static json_t *
get_member(const json_t *obj, const char *key)
{
	if (obj == NULL || !json_is_object(obj))
		return NULL;
	return json_object_get(obj, key);
}

int
conf_get_string(const struct conf *c, const json_t *obj, const char *key,
    const char *def, const char **out, struct conf_error *err)
{
	const json_t	*v;
	char		 q[QBUF];

	*out = def;
	err_clear(err);
	if ((v = get_member(obj, key)) == NULL)
		return 0;
	if (!json_is_string(v))
		return conf_error_at(c, obj, key, err,
		    "\"%s\" must be a string",
		    qname(q, sizeof(q), key, strlen(key)));
	*out = json_string_value(v);
	return 0;
}

/* A whole string as a decimal int64: [+-]digits, nothing else. */
static int
str_to_int64(const char *s, int64_t *out)
{
	uint64_t	v = 0, lim = INT64_MAX;
	int		neg = 0;

	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	if (neg)
		lim = (uint64_t)INT64_MAX + 1;
	if (!is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		if (v > (lim - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != '\0')
		return -1;
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return 0;
}

int
conf_get_int_range(const struct conf *c, const json_t *obj, const char *key,
    int64_t def, int64_t min, int64_t max, int64_t *out,
    struct conf_error *err)
{
	const json_t	*v;
	int64_t		 n;
	char		 q[QBUF];

	*out = def;
	err_clear(err);
	if ((v = get_member(obj, key)) == NULL)
		return 0;
	qname(q, sizeof(q), key, strlen(key));
	if (json_is_integer(v))
		n = json_integer_value(v);
	else if (!json_is_string(v) ||
	    str_to_int64(json_string_value(v), &n) != 0)
		return conf_error_at(c, obj, key, err,
		    "\"%s\" must be an integer", q);
	if (n < min || n > max)
		return conf_error_at(c, obj, key, err,
		    "\"%s\" must be between %lld and %lld", q,
		    (long long)min, (long long)max);
	*out = n;
	return 0;
}

int
conf_get_int(const struct conf *c, const json_t *obj, const char *key,
    int64_t def, int64_t *out, struct conf_error *err)
{
	return conf_get_int_range(c, obj, key, def, INT64_MIN, INT64_MAX, out,
	    err);
}

int
conf_get_bool(const struct conf *c, const json_t *obj, const char *key,
    int def, int *out, struct conf_error *err)
{
	const json_t	*v;
	char		 q[QBUF];

	*out = def;
	err_clear(err);
	if ((v = get_member(obj, key)) == NULL)
		return 0;
	if (!json_is_boolean(v))
		return conf_error_at(c, obj, key, err,
		    "\"%s\" must be true or false",
		    qname(q, sizeof(q), key, strlen(key)));
	*out = json_is_true(v);
	return 0;
}

int
conf_get_duration(const struct conf *c, const json_t *obj, const char *key,
    int64_t def, int64_t *out_seconds, struct conf_error *err)
{
	const json_t	*v;
	const char	*why = NULL;
	int64_t		 s;
	char		 q[QBUF], qv[QBUF];

	*out_seconds = def;
	err_clear(err);
	if ((v = get_member(obj, key)) == NULL)
		return 0;
	qname(q, sizeof(q), key, strlen(key));
	if (!json_is_string(v))
		return conf_error_at(c, obj, key, err,
		    "\"%s\" must be a duration string such as \"1h\"", q);
	if (conf_parse_duration(json_string_value(v), &s, &why) != 0)
		return conf_error_at(c, obj, key, err,
		    "invalid duration \"%s\" for \"%s\": %s",
		    qname(qv, sizeof(qv), json_string_value(v),
		    json_string_length(v)), q, why);
	*out_seconds = s;
	return 0;
}

/* ---- helpers for the daemons' configuration loaders ---------------------- */

int
conf_get_string_dup(const struct conf *c, const json_t *obj, const char *key,
    const char *def, char **dst, struct conf_error *err)
{
	const char	*s;
	char		*copy = NULL;
	int		 r;

	if ((r = conf_get_string(c, obj, key, def, &s, err)) != 0)
		return r;
	if (s != NULL && (copy = strdup(s)) == NULL)
		return WICK_ERR_ALLOC;
	free(*dst);
	*dst = copy;
	return 0;
}

static const char *const plugin_block_known[] = {
	"plugin_data", "enabled", NULL
};
static const char *const plugin_block_unimpl[] = {
	"plugin_cmd", "plugin_checksum", "plugin_data_file", NULL
};

int
conf_plugins(const struct conf *c, const json_t *plugins, const char *type,
    const char *const *allowed, size_t max, const char **names,
    const json_t **data, size_t *n, struct conf_error *err)
{
	const json_t	*t = get_member(plugins, type), *p, *d;
	const char	*label;
	size_t		 i;
	int		 r, on;

	*n = 0;
	err_clear(err);
	if (t == NULL)
		return 0;
	if (!json_is_object(t) || json_object_size(t) == 0)
		return conf_error_at(c, plugins, type, err,
		    "a %s plugin needs a name: %s \"name\" { ... }", type,
		    type);
	if (json_object_size(t) > max && max == 1)
		return conf_error_at(c, plugins, type, err,
		    "exactly one %s plugin must be configured", type);
	if (json_object_size(t) > max)
		return conf_error_at(c, plugins, type, err,
		    "at most %zu %s plugins may be configured", max, type);
	json_object_foreach((json_t *)t, label, p) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], label) == 0)
				break;
		if (allowed[i] == NULL)
			return conf_error_at(c, t, label, err,
			    "%s \"%s\" is not supported by wick", type, label);
		if ((r = conf_check_keys(c, p, label, plugin_block_known,
		    plugin_block_unimpl, NULL, NULL, err)) != 0 ||
		    (r = conf_get_bool(c, p, "enabled", 1, &on, err)) != 0)
			return r;
		if (!on)
			continue;
		d = get_member(p, "plugin_data");
		/* HCL 1 may give a one-element list for a block. */
		if (d != NULL && json_is_array(d) && json_array_size(d) == 1)
			d = json_array_get(d, 0);
		if (d != NULL && !json_is_object(d))
			return conf_error_at(c, p, "plugin_data", err,
			    "\"plugin_data\" must be a block");
		names[*n] = label;
		data[*n] = d;
		(*n)++;
	}
	return 0;
}

int
conf_plugin(const struct conf *c, const json_t *plugins, const char *type,
    const char *const *allowed, const char **name, const json_t **data,
    struct conf_error *err)
{
	size_t	n;
	int	r;

	*name = NULL;
	*data = NULL;
	if ((r = conf_plugins(c, plugins, type, allowed, 1, name, data, &n,
	    err)) != 0)
		return r;
	return 0;
}

int
conf_load_daemon(const char *path, int expand_env, const char *block,
    const char *const *top_known, const char *const *top_unimpl,
    struct conf **out, const json_t **blk, struct conf_error *err)
{
	struct conf	*c;
	const json_t	*root;
	int		 r;

	*out = NULL;
	*blk = NULL;
	if ((r = conf_load_file(path, expand_env ? CONF_EXPAND_ENV : 0, &c,
	    err)) != 0)
		return r;
	root = conf_root(c);
	if ((r = conf_check_keys(c, root, "top level", top_known, top_unimpl,
	    NULL, NULL, err)) != 0) {
		conf_free(c);
		return r;
	}
	if ((*blk = get_member(root, block)) == NULL) {
		snprintf(err->msg, sizeof(err->msg), "no \"%s\" block", block);
		conf_free(c);
		return WICK_ERR_CONFIG;
	}
	*out = c;
	return 0;
}

int
conf_trust_domain(char **td, struct conf_error *err)
{
	char		 name[SPIFFEID_MAX_TD_LEN + 1];
	const char	*why;

	if (*td == NULL || **td == '\0') {
		snprintf(err->msg, sizeof(err->msg),
		    "trust_domain must be configured");
		return WICK_ERR_CONFIG;
	}
	if (spiffeid_td_parse(*td, 0, name, &why) != 0) {
		snprintf(err->msg, sizeof(err->msg), "trust_domain \"%.100s\": "
		    "%s", *td, why);
		return WICK_ERR_CONFIG;
	}
	free(*td);
	if ((*td = strdup(name)) == NULL)
		return WICK_ERR_ALLOC;
	return 0;
}

int
conf_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

int
conf_strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t	i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (!conf_str_eq(a[i], b[i]))
			return 0;
	return 1;
}
