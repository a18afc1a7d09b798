/*
 * fuzz_csr.c: PKCS#10 requests from agents (BatchNewX509SVID, RenewAgent,
 * AttestAgent): whatever parses has a verified self-signature and a key
 * wick accepts; csr_check(), through one verifier kept from input to
 * input as a signing thread keeps it, gives the same answer and key.
 */
#include <stdint.h>
#include <stdlib.h>

#include "pkey.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct csr_verifier *verifier;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	EVP_PKEY	*pub = NULL, *pub2 = NULL;
	enum pkey_type	 t;
	const uint8_t	*spki;
	const char	*why;
	size_t		 spkilen;
	int		 r, r2;

	if (verifier == NULL && csr_verifier_new(&verifier) != 0)
		abort();
	if ((r = csr_parse(data, len, &pub, &why)) == 0) {
		if (pub == NULL)
			abort();
		if (pkey_type_of(pub, &t) != 0 && !EVP_PKEY_is_a(pub, "RSA"))
			abort();
	} else if (pub != NULL || why == NULL)
		abort();
	r2 = csr_check(verifier, data, len, &pub2, &spki, &spkilen, &why);
	if (r2 != r || (r2 != 0 && (pub2 != NULL || why == NULL)))
		abort();
	if (r2 == 0 && pub2 == NULL && (spki == NULL ||
	    pkey_from_public_der(spki, spkilen, &pub2) != 0))
		abort();
	if (r2 == 0 && !pkey_public_equal(pub, pub2))
		abort();
	EVP_PKEY_free(pub);
	EVP_PKEY_free(pub2);
	return 0;
}
