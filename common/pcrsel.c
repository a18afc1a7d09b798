/*
 * pcrsel.c: PCR selections of the sha256 bank.
 */
#include <stdio.h>
#include <string.h>

#include "pcrsel.h"

int
pcrsel_parse(const char *s, uint32_t *mask, const char **why)
{
	unsigned	 n;
	const char	*p;

	*mask = 0;
	if (strncmp(s, "sha256:", 7) != 0) {
		*why = "PCRs must be given as \"sha256:N,N,...\" (only the "
		    "sha256 bank is supported)";
		return WICK_ERR_CONFIG;
	}
	for (p = s + 7;;) {
		if (*p < '0' || *p > '9') {
			*why = "a PCR must be a number from 0 to 23";
			return WICK_ERR_CONFIG;
		}
		for (n = 0; *p >= '0' && *p <= '9' && n < PCRSEL_MAX; p++)
			n = n * 10 + (unsigned)(*p - '0');
		if (n >= PCRSEL_MAX) {
			*why = "a PCR must be a number from 0 to 23";
			return WICK_ERR_CONFIG;
		}
		if (*mask & (1u << n)) {
			*why = "a PCR is listed twice";
			return WICK_ERR_CONFIG;
		}
		*mask |= 1u << n;
		if (*p == '\0')
			return 0;
		if (*p++ != ',') {
			*why = "PCRs must be separated by commas";
			return WICK_ERR_CONFIG;
		}
	}
}

void
pcrsel_format(uint32_t mask, char *out, size_t len)
{
	size_t	 off = 0;
	int	 i, first = 1;

	if (len > 0)
		*out = '\0';
	for (i = 0; i < PCRSEL_MAX; i++) {
		if (!(mask & (1u << i)))
			continue;
		if (off >= len)
			break;
		off += (size_t)snprintf(out + off, off < len ? len - off : 0,
		    "%s%d", first ? "sha256:" : ",", i);
		first = 0;
	}
}
