/*
 * selector.c: sorted selector sets with merge-walk subset tests.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "selector.h"

void
selector_set_init(struct selector_set *s)
{
	memset(s, 0, sizeof(*s));
}

void
selector_set_cleanup(struct selector_set *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->sel[i].type);
		free(s->sel[i].value);
	}
	free(s->sel);
	memset(s, 0, sizeof(*s));
}

static int
sel_cmp(const char *ta, const char *va, const char *tb, const char *vb)
{
	int c;

	if ((c = strcmp(ta, tb)) != 0)
		return c;
	return strcmp(va, vb);
}

/* Index of the first element >= (type, value). */
static size_t
sel_lower_bound(const struct selector_set *s, const char *t, const char *v)
{
	size_t lo = 0, hi = s->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (sel_cmp(s->sel[mid].type, s->sel[mid].value, t, v) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
sel_check(const char *type, size_t tlen, const char *value, size_t vlen,
    const char **why)
{
	size_t i;

	if (tlen == 0) {
		*why = "selector type is empty";
		return WICK_ERR_INVALID;
	}
	if (vlen == 0) {
		*why = "selector value is empty";
		return WICK_ERR_INVALID;
	}
	if (tlen > SELECTOR_MAX_TYPE_LEN || vlen > SELECTOR_MAX_VALUE_LEN) {
		*why = "selector is too long";
		return WICK_ERR_LIMIT;
	}
	for (i = 0; i < tlen; i++)
		if (type[i] == ':' || (unsigned char)type[i] < 0x21 ||
		    (unsigned char)type[i] > 0x7e) {
			*why = "selector type has a character that is not "
			    "allowed";
			return WICK_ERR_INVALID;
		}
	for (i = 0; i < vlen; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
			*why = "selector value has a control character";
			return WICK_ERR_INVALID;
		}
	return 0;
}

int
selector_set_add(struct selector_set *s, const char *type, const char *value,
    const char **why)
{
	const char	*dummy;
	struct selector	*p;
	size_t		 at, ncap;
	char		*t = NULL, *v = NULL;
	int		 r;

	if (why == NULL)
		why = &dummy;
	if ((r = sel_check(type, strlen(type), value, strlen(value), why)) != 0)
		return r;
	at = sel_lower_bound(s, type, value);
	if (at < s->n && sel_cmp(s->sel[at].type, s->sel[at].value, type,
	    value) == 0)
		return 0;
	if (s->n >= SELECTOR_MAX_COUNT) {
		*why = "too many selectors";
		return WICK_ERR_LIMIT;
	}
	if (s->n == s->cap) {
		ncap = s->cap == 0 ? 8 : s->cap * 2;
		if ((p = realloc(s->sel, ncap * sizeof(*p))) == NULL)
			return WICK_ERR_ALLOC;
		s->sel = p;
		s->cap = ncap;
	}
	if ((t = strdup(type)) == NULL || (v = strdup(value)) == NULL) {
		free(t);
		return WICK_ERR_ALLOC;
	}
	memmove(&s->sel[at + 1], &s->sel[at], (s->n - at) * sizeof(*s->sel));
	s->sel[at].type = t;
	s->sel[at].value = v;
	s->n++;
	return 0;
}

void
selector_set_shrink(struct selector_set *s)
{
	struct selector *p;

	if (s->n == s->cap)
		return;
	if (s->n == 0) {
		free(s->sel);
		s->sel = NULL;
		s->cap = 0;
		return;
	}
	/* A failed realloc leaves the larger array, which still works. */
	if ((p = realloc(s->sel, s->n * sizeof(*p))) != NULL) {
		s->sel = p;
		s->cap = s->n;
	}
}

int
selector_set_add_str(struct selector_set *s, const char *str,
    const char **why)
{
	const char	*colon, *dummy;
	char		 type[SELECTOR_MAX_TYPE_LEN + 1];
	size_t		 tlen;

	if (why == NULL)
		why = &dummy;
	if ((colon = strchr(str, ':')) == NULL) {
		*why = "selector must be \"type:value\"";
		return WICK_ERR_INVALID;
	}
	tlen = (size_t)(colon - str);
	if (tlen > SELECTOR_MAX_TYPE_LEN) {
		*why = "selector is too long";
		return WICK_ERR_LIMIT;
	}
	memcpy(type, str, tlen);
	type[tlen] = '\0';
	return selector_set_add(s, type, colon + 1, why);
}

int
selector_set_parse_lines(struct selector_set *s, const char *text,
    const char **why)
{
	const char	*p = text, *nl;
	char		 line[SELECTOR_MAX_TYPE_LEN + SELECTOR_MAX_VALUE_LEN + 2];
	size_t		 n;
	int		 r;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (n > 0) {
			if (n >= sizeof(line)) {
				*why = "selector is too long";
				return WICK_ERR_LIMIT;
			}
			memcpy(line, p, n);
			line[n] = '\0';
			if ((r = selector_set_add_str(s, line, why)) != 0)
				return r;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return 0;
}

int
selector_set_format(const struct selector_set *s, char **out)
{
	struct buf	 b;
	size_t		 i, n;
	int		 r = 0;

	*out = NULL;
	buf_init(&b, 0);
	for (i = 0; i < s->n && r == 0; i++)
		r = buf_putf(&b, "%s:%s\n", s->sel[i].type, s->sel[i].value);
	if (r == 0)
		r = buf_steal(&b, (uint8_t **)out, &n);
	buf_cleanup(&b);
	return r;
}

int
selector_set_contains(const struct selector_set *s, const char *type,
    const char *value)
{
	size_t at = sel_lower_bound(s, type, value);

	return at < s->n &&
	    sel_cmp(s->sel[at].type, s->sel[at].value, type, value) == 0;
}

int
selector_set_is_subset(const struct selector_set *a,
    const struct selector_set *b)
{
	size_t	 i = 0, j = 0;
	int	 c;

	while (i < a->n) {
		if (j == b->n)
			return 0;
		c = sel_cmp(a->sel[i].type, a->sel[i].value, b->sel[j].type,
		    b->sel[j].value);
		if (c < 0)
			return 0;
		if (c == 0)
			i++;
		j++;
	}
	return 1;
}

int
selector_set_equal(const struct selector_set *a, const struct selector_set *b)
{
	return a->n == b->n && selector_set_is_subset(a, b);
}

int
selector_set_union(struct selector_set *dst, const struct selector_set *src)
{
	const char	*why;
	size_t		 i;
	int		 r;

	for (i = 0; i < src->n; i++)
		if ((r = selector_set_add(dst, src->sel[i].type,
		    src->sel[i].value, &why)) != 0)
			return r;
	return 0;
}
