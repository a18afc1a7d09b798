/*
 * wpt_common.c: see wpt_common.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_min.h"
#include "wpt_common.h"

int
wpt_prove(struct wick_client *cl, const char *aud, char *out, size_t outlen)
{
	struct wick_wit_svid	*wit = NULL;
	char			*wpt = NULL;
	int			 r, n;

	if ((r = wick_fetch_wit_svid(cl, NULL, &wit)) != 0)
		return r;
	if ((r = wick_wpt_create(wit, aud, 0, NULL, 0, &wpt)) == 0) {
		n = snprintf(out, outlen, "%s: %s\r\nAuthorization: %s %s\r\n",
		    WICK_WPT_HEADER_WIT, wick_wit_svid_token(wit),
		    WICK_WPT_AUTH_SCHEME, wpt);
		if (n < 0 || (size_t)n >= outlen)
			r = WICK_E_LIMIT;
	}
	free(wpt);
	wick_wit_svid_free(wit);
	return r;
}

int
wpt_verifier(struct wick_client *cl, const char *aud,
    struct wick_wpt_verifier **out)
{
	struct wick_wpt_verifier_config	 cfg;
	struct wick_bundles		*b = NULL;
	int				 r;

	if ((r = wick_fetch_wit_bundles(cl, &b)) != 0)
		return r;
	memset(&cfg, 0, sizeof(cfg));
	cfg.audience = aud;
	cfg.wit_bundles = b;
	r = wick_wpt_verifier_new(&cfg, out);
	wick_bundles_free(b);
	return r;
}

int
wpt_check(struct wick_wpt_verifier *v, const char *head,
    struct wick_wpt_result *res)
{
	static char	 wit[WICK_MAX_WIMSE_TOKEN + 1];
	static char	 auth[WICK_MAX_WIMSE_TOKEN + 16];
	const char	*wpt = "";
	int		 r;

	wit[0] = auth[0] = '\0';
	if ((r = http_header(head, WICK_WPT_HEADER_WIT, wit,
	    sizeof(wit))) < 0)
		wit[0] = '\0';	/* repeated or too long: "no WIT" */
	if (http_header(head, "Authorization", auth, sizeof(auth)) == 0 &&
	    strncasecmp(auth, "WPT ", 4) == 0)
		wpt = auth + 4;
	return wick_wpt_verify(v, wit, wpt, NULL, 0, res);
}
