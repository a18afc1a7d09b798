/*
 * fuzz_libwick_wpt.c: libwick's WIT+WPT verification and WIT-SVID
 * parsing on arbitrary bytes.  The input is "WIT\nWPT" (or "WIT\nJWK"
 * for the WIT-SVID constructor); the verifier trusts the WIMSE example
 * issuer key, so well-formed tokens reach every check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wick_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char jwks[] =
    "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"June 5\",\"crv\":\"P-256\","
    "\"x\":\"kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks\","
    "\"y\":\"n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo\"}]}";

static struct wick_wpt_verifier *v;

static void
setup(void)
{
	struct wick_wpt_verifier_config	 c;
	struct wick_bundles		*b;

	if (wick_bundles_new(WICK_BUNDLE_WIT, &b) != 0 ||
	    wick_bundles_add(b, "example.com", jwks, strlen(jwks)) != 0)
		abort();
	memset(&c, 0, sizeof(c));
	c.audience = "https://workload.example.com/path";
	c.wit_bundles = b;
	c.replay_entries = 64;
	c.flags = WICK_WPT_ANY_WORKLOAD_ID | WICK_WPT_ALLOW_EDDSA;
	if (wick_wpt_verifier_new(&c, &v) != 0)
		abort();
	wick_bundles_free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct wick_wpt_result	 res;
	struct wick_wit_svid	*w = NULL;
	char			*s, *nl, *wpt = NULL;
	int			 r;

	if (v == NULL)
		setup();
	if ((s = malloc(len + 1)) == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	if ((nl = strchr(s, '\n')) != NULL)
		*nl++ = '\0';
	r = wick_wpt_verify(v, s, nl != NULL ? nl : "", NULL, 1745510000,
	    &res);
	/* every refusal names its reason */
	if ((r == 0) != (res.reason == WICK_WPT_OK) ||
	    (r != 0 && res.detail[0] == '\0'))
		abort();
	if (nl != NULL && wick_wit_svid_new(s, nl, &w) == 0) {
		if (wick_wpt_create(w, "https://a.example/", 10, NULL, 0,
		    &wpt) != 0)
			abort();	/* a parsed WIT-SVID can always sign */
		free(wpt);
		wick_wit_svid_free(w);
	}
	free(s);
	return 0;
}
