/*
 * fuzz_libwick_x509.c: libwick's X.509 parsers on arbitrary bytes: an
 * X509SVIDResponse from the Workload API decoded into a context, and a
 * DER chain verified as an X.509-SVID against the context's bundles.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wick_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct wick_x509_context	*c = NULL;
	struct wick_bundles		*b = NULL;
	char				 why[160], *id = NULL;

	if (wick_x509_context_decode(data, len, &c, why, sizeof(why)) == 0) {
		if (wick_x509_context_count(c) == 0)
			abort();
		b = wick_x509_context_bundles(c);
	} else if (wick_bundles_new(WICK_BUNDLE_X509, &b) != 0)
		abort();
	else
		c = NULL;
	if (wick_x509svid_verify_der(data, len, b, 1700000000, &id, why,
	    sizeof(why)) == 0 && id == NULL)
		abort();
	free(id);
	if (c != NULL)
		wick_x509_context_free(c);
	else
		wick_bundles_free(b);
	return 0;
}
