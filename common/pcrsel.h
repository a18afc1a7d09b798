/*
 * pcrsel.h: a selection of TPM PCRs of the sha256 bank, as configured
 * ("sha256:0,1,2,7") and carried (a bit per PCR, 0..PCRSEL_MAX-1).
 */
#ifndef WICK_PCRSEL_H
#define WICK_PCRSEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PCRSEL_MAX		24	/* PCRs of a PC client TPM */
#define PCRSEL_MAX_TEXT		(8 + PCRSEL_MAX * 3)

/*
 * Parse "sha256:N[,N...]" (no bank other than sha256; each N once,
 * 0..23).  *mask gets a bit per PCR; WICK_ERR_CONFIG with *why naming
 * what is wrong.
 */
int	 pcrsel_parse(const char *, uint32_t *mask, const char **why)
	    WICK_WUR;
/* "sha256:0,1,7" (or "" for none) into out (PCRSEL_MAX_TEXT bytes). */
void	 pcrsel_format(uint32_t mask, char *out, size_t len);

#endif /* WICK_PCRSEL_H */
