/*
 * fuzz_x509.c: concatenated DER certificates (the Workload API's chain and
 * bundle encoding) and SPIFFE ID extraction from whatever parses.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "x509.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	STACK_OF(X509)	*chain = NULL;
	char		*id = NULL;
	const char	*why = NULL;
	struct buf	 out;
	int		 i;

	if (x509_chain_from_der(data, len, 16, &chain) != 0)
		return 0;
	for (i = 0; i < sk_X509_num(chain); i++) {
		if (x509_spiffe_id(sk_X509_value(chain, i), &id, &why) == 0)
			free(id);
		id = NULL;
	}
	/* What parsed must encode back to exactly the input. */
	buf_init(&out, 0);
	if (x509_chain_to_der(chain, &out) != 0 || buf_len(&out) != len)
		abort();
	buf_cleanup(&out);
	sk_X509_pop_free(chain, X509_free);
	return 0;
}
