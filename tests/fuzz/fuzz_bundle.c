/*
 * fuzz_bundle.c: a trust bundle from a peer, in the three forms wick reads:
 * the SPIFFE JSON format (bundle set, federation), wick.types.Bundle
 * protobuf (agent sync, datastore) and PEM.  The first byte picks the
 * form.  Whatever parses must encode and parse again to the same content.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct bundle	*b = NULL, *c = NULL;
	struct buf	 out;
	const char	*why;
	char		*json;
	int		 r;

	if (len < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		r = bundle_from_spiffe_json("example.org",
		    (const char *)data + 1, len - 1, &b, &why);
		break;
	case 1:
		r = bundle_unpack(data + 1, len - 1, &b, &why);
		break;
	default:
		r = bundle_from_pem("example.org", data + 1, len - 1, &b, &why);
		break;
	}
	if (r != 0)
		return 0;
	buf_init(&out, BUNDLE_MAX_DOC * 2);
	if (bundle_pack(b, &out) != 0 || bundle_unpack(buf_ptr(&out),
	    buf_len(&out), &c, &why) != 0 || !bundle_same_content(b, c))
		abort();
	bundle_free(c);
	if (bundle_to_spiffe_json(b, &json) != 0 ||
	    bundle_from_spiffe_json(b->td, json, strlen(json), &c, &why) != 0 ||
	    sk_X509_num(c->x509) != sk_X509_num(b->x509))
		abort();
	free(json);
	bundle_free(c);
	buf_cleanup(&out);
	bundle_free(b);
	return 0;
}
