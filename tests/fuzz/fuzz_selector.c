/*
 * fuzz_selector.c: selector sets from text lines; a set must format and
 * re-parse to an equal set, and be a subset of itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct selector_set	 a, b;
	const char		*why;
	char			*s, *text = NULL;

	if ((s = malloc(len + 1)) == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	selector_set_init(&a);
	selector_set_init(&b);
	if (selector_set_parse_lines(&a, s, &why) == 0) {
		if (selector_set_format(&a, &text) != 0)
			abort();
		if (selector_set_parse_lines(&b, text, &why) != 0 ||
		    !selector_set_equal(&a, &b) ||
		    !selector_set_is_subset(&a, &a))
			abort();
		free(text);
	}
	selector_set_cleanup(&a);
	selector_set_cleanup(&b);
	free(s);
	return 0;
}
