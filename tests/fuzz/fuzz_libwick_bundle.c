/*
 * fuzz_libwick_bundle.c: libwick's bundle parsers on arbitrary bytes: a
 * JSON map of trust domains to JWK Sets, one JWKS or SPIFFE bundle for
 * JWT and WIT sets, PEM or DER certificates for X.509 sets; then a
 * JWT-SVID validated against what parsed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wick_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const aud[] = { "a" };
	struct wick_bundles	*b = NULL;
	char			 why[128];
	int			 k;

	if (wick_bundles_from_json_map(WICK_BUNDLE_JWT, (const char *)data,
	    len, &b) == 0) {
		if (wick_jwtsvid_validate("e30.e30.AA", b, aud, 1, 1, NULL,
		    NULL, why, sizeof(why)) == 0)
			abort();	/* an unsigned token never validates */
		wick_bundles_free(b);
	}
	for (k = WICK_BUNDLE_X509; k <= WICK_BUNDLE_WIT; k++) {
		if (wick_bundles_new(k, &b) != 0)
			abort();
		if (wick_bundles_add(b, "example.org", data, len) == 0 &&
		    wick_bundles_count(b) != 1)
			abort();
		wick_bundles_free(b);
	}
	return 0;
}
