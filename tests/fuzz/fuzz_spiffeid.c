/*
 * fuzz_spiffeid.c: SPIFFE ID and trust-domain parsing in both modes; what
 * parses must format back to exactly the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spiffeid.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct spiffeid	 id;
	char		*s, out[SPIFFEID_MAX_LEN + 1];
	char		 td[SPIFFEID_MAX_TD_LEN + 1];
	const char	*why;
	unsigned	 flags;

	if (len > SPIFFEID_MAX_LEN + 16 || (s = malloc(len + 1)) == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	for (flags = 0; flags < 4; flags++) {
		if (spiffeid_parse(s, flags, &id, &why) == 0) {
			if (spiffeid_format(&id, out, sizeof(out)) != 0 ||
			    strcmp(out, s) != 0)
				abort();
		}
		/* A trust domain that parses is a valid root ID too. */
		if (spiffeid_td_parse(s, flags, td, &why) == 0 &&
		    strlen(td) > SPIFFEID_MAX_TD_LEN)
			abort();
	}
	free(s);
	return 0;
}
