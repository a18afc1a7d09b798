/*
 * fuzz_csr.c: PKCS#10 requests from agents (BatchNewX509SVID, RenewAgent,
 * AttestAgent): whatever parses has a verified self-signature and a key
 * wick accepts.
 */
#include <stdint.h>
#include <stdlib.h>

#include "pkey.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	EVP_PKEY	*pub = NULL;
	enum pkey_type	 t;
	const char	*why;

	if (csr_parse(data, len, &pub, &why) == 0) {
		if (pub == NULL)
			abort();
		if (pkey_type_of(pub, &t) != 0 && !EVP_PKEY_is_a(pub, "RSA"))
			abort();
		EVP_PKEY_free(pub);
	} else if (pub != NULL || why == NULL)
		abort();
	return 0;
}
