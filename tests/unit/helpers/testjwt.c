/*
 * testjwt.c: bundles with JWT keys for the agent's cache tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pkey.h"
#include "testjwt.h"

struct bundle *
testjwt_bundle(const char *td, const char *kid)
{
	struct bundle	*b;
	EVP_PKEY	*k;
	uint8_t		*der = NULL;
	int		 len;

	assert_int_equal(bundle_new(td, &b), 0);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &k), 0);
	assert_true((len = i2d_PUBKEY(k, &der)) > 0);
	assert_int_equal(bundle_add_key(b, BUNDLE_USE_JWT, kid, der,
	    (size_t)len, 0), 0);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	return b;
}
