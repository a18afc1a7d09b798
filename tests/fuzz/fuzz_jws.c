/*
 * fuzz_jws.c: compact JWS verification against a fixed key set, and JWKS
 * parsing, on arbitrary bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "jose.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct jose_keyset ks;
static int ready;

static void
setup(void)
{
	EVP_PKEY	*pk;
	struct jose_key	*k;

	jose_keyset_init(&ks);
	pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pk == NULL || jose_key_from_pkey(pk, "k1", &k) != 0 ||
	    jose_keyset_add(&ks, k) != 0)
		abort();
	EVP_PKEY_free(pk);
	ready = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const struct jose_verify_opts	 opts = { { "", "JWT" }, 2 };
	struct jose_keyset		 parsed;
	json_t				*claims = NULL, *hdr = NULL;
	char				*s, why[128];
	const char			*w;

	if (!ready)
		setup();
	if ((s = malloc(len + 1)) == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	if (jose_verify(s, &ks, &opts, &claims, &hdr, why, sizeof(why)) == 0) {
		/* Only a real signature by k1 can get here. */
		if (claims == NULL || hdr == NULL)
			abort();
		if (jose_check_jwt_claims(claims, "aud", 0, why,
		    sizeof(why)) != 0 && why[0] == '\0')
			abort();	/* every failure names its reason */
	}
	json_decref(claims);
	json_decref(hdr);
	jose_keyset_init(&parsed);
	if (jose_keyset_parse(s, len, &parsed, &w) == 0 &&
	    parsed.n > JOSE_MAX_JWKS_KEYS)
		abort();
	jose_keyset_cleanup(&parsed);
	free(s);
	return 0;
}
