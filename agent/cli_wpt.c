/*
 * cli_wpt.c: "wick-agent api wpt sign|verify", WIMSE Workload Proof
 * Tokens from the command line, through libwick.
 *
 * sign fetches the WIT-SVID from the agent (or reads one with its key
 * from files), makes a WPT for the request's target URI and prints the
 * two HTTP header lines of draft-ietf-wimse-wpt-02:
 *	Workload-Identity-Token: <WIT>
 *	Authorization: WPT <WPT>
 * verify checks a WIT and WPT pair against WIT bundles and an audience
 * and prints the reason when it refuses them (exit status 1).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "cli_int.h"
#include "secpath.h"
#include "wick/wick.h"

#define WPT_CLI_MAX_FILE	(1024 * 1024)
#define WPT_CLI_MAX_URL		4096

/* A whole file (or stdin for "-") as a string, at most max bytes. */
static char *
read_all(const char *path, size_t max, FILE *errf)
{
	FILE	*f;
	char	*s;
	size_t	 n;

	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "re")) == NULL) {
		fprintf(errf, "cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if ((s = malloc(max + 1)) == NULL) {
		fprintf(errf, "out of memory\n");
		if (f != stdin)
			fclose(f);
		return NULL;
	}
	n = fread(s, 1, max + 1, f);
	if (f != stdin)
		fclose(f);
	if (n > max) {
		fprintf(errf, "%s: larger than %zu bytes\n", path, max);
		free(s);
		return NULL;
	}
	s[n] = '\0';
	return s;
}

/* Strip surrounding white space in place; returns the start. */
static char *
trim(char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * The WPT audience of a request URL: scheme://authority/path without
 * query and fragment (an empty path is "/").  Only http and https.
 */
static int
url_audience(const char *url, char *out, size_t outlen, const char **why)
{
	const char	*a, *p;
	size_t		 n;

	*why = "the URL must be http:// or https:// with a host";
	if (strncasecmp(url, "https://", 8) == 0)
		a = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		a = url + 7;
	else
		return -1;
	if (*a == '\0' || *a == '/' || *a == '?' || *a == '#')
		return -1;
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			*why = "the URL holds spaces or control characters";
			return -1;
		}
	n = strcspn(url, "?#");
	p = memchr(a, '/', n - (size_t)(a - url));
	if (n + 2 > outlen) {
		*why = "the URL is too long";
		return -1;
	}
	memcpy(out, url, n);
	out[n] = '\0';
	if (p == NULL)
		memcpy(out + n, "/", 2);
	return 0;
}

static int
method_ok(const char *m)
{
	if (*m == '\0')
		return 0;
	for (; *m != '\0'; m++)
		if (!isupper((unsigned char)*m) && *m != '-')
			return 0;
	return 1;
}

static int
cmd_sign(FILE *out, FILE *errf, int argc, char **argv)
{
	const char	*method = NULL, *url = NULL, *audience = NULL;
	const char	*socket_flag = NULL, *spiffe_id = NULL;
	const char	*wit_file = NULL, *key_file = NULL;
	int64_t		 timeout_ms = CLI_DEFAULT_TIMEOUT_MS, ttl_ms = 0;
	const struct cli_flag fl[] = {
		{ "method", CLI_FLAG_STRING, &method, "METHOD",
		    "HTTP method of the request (upper case)" },
		{ "url", CLI_FLAG_STRING, &url, "URL",
		    "Target URL of the request" },
		{ "audience", CLI_FLAG_STRING, &audience, "AUD",
		    "WPT audience (default: the URL without query and "
		    "fragment)" },
		{ "ttl", CLI_FLAG_DURATION, &ttl_ms, "DURATION",
		    "WPT lifetime (default 1m, at most 5m)" },
		{ "spiffeID", CLI_FLAG_STRING, &spiffe_id, "ID",
		    "SPIFFE ID of the WIT-SVID to use (default: the first)" },
		{ "wit", CLI_FLAG_STRING, &wit_file, "FILE",
		    "Use this WIT instead of fetching one (needs -key)" },
		{ "key", CLI_FLAG_STRING, &key_file, "FILE",
		    "The WIT's private key as a JWK (with -wit)" },
		{ "socketPath", CLI_FLAG_STRING, &socket_flag, "PATH",
		    "Path to the Workload API socket (default: "
		    CLI_ENDPOINT_ENV ", else the agent's default socket)" },
		{ "timeout", CLI_FLAG_DURATION, &timeout_ms, "DURATION",
		    "Time to wait for the agent (default 5s)" },
	};
	const char		*syn = "wick-agent api wpt sign -method M "
	    "-url U [flags]";
	struct wick_client	*cl = NULL;
	struct wick_wit_svid	*wit = NULL;
	char			 aud[WPT_CLI_MAX_URL + 2], err[CLI_MAX_ERR];
	char			 path[CLI_MAX_SOCKET_PATH + 1], msg[256];
	char			 spwhy[SECPATH_MAX_WHY];
	char			*wpt = NULL, *wtext = NULL, *ktext = NULL;
	const char		*why;
	int			 next, r, rc = 1;

	r = cli_flags_parse(fl, sizeof(fl) / sizeof(fl[0]), argc, argv, &next,
	    err, sizeof(err));
	if (r == CLI_FLAGS_HELP) {
		cli_flags_usage(out, syn, fl, sizeof(fl) / sizeof(fl[0]));
		return 0;
	}
	if (r == 0 && next < argc) {
		snprintf(err, sizeof(err), "unexpected argument \"%s\"",
		    argv[next]);
		r = -1;
	}
	if (r == 0 && (method == NULL || url == NULL)) {
		snprintf(err, sizeof(err), "-method and -url are required");
		r = -1;
	}
	if (r == 0 && !method_ok(method)) {
		snprintf(err, sizeof(err), "invalid value \"%s\" for flag "
		    "-method: an upper-case HTTP method", method);
		r = -1;
	}
	if (r == 0 && (wit_file == NULL) != (key_file == NULL)) {
		snprintf(err, sizeof(err), "-wit and -key go together");
		r = -1;
	}
	if (r == 0 && (ttl_ms < 0 || ttl_ms % 1000 != 0 ||
	    ttl_ms > WICK_WPT_MAX_TTL * 1000)) {
		snprintf(err, sizeof(err), "-ttl must be whole seconds, at "
		    "most %ds", WICK_WPT_MAX_TTL);
		r = -1;
	}
	if (r != 0) {
		fprintf(errf, "%s\n", err);
		cli_flags_usage(errf, syn, fl, sizeof(fl) / sizeof(fl[0]));
		return 1;
	}
	if (strlen(url) > WPT_CLI_MAX_URL ||
	    url_audience(url, aud, sizeof(aud), &why) != 0) {
		fprintf(errf, "invalid value for flag -url: %s\n",
		    strlen(url) > WPT_CLI_MAX_URL ? "too long" : why);
		return 1;
	}
	if (audience != NULL)
		snprintf(aud, sizeof(aud), "%s", audience);
	if (wit_file != NULL) {
		if ((wtext = read_all(wit_file, WICK_MAX_WIMSE_TOKEN + 2,
		    errf)) == NULL || (ktext = read_all(key_file,
		    WPT_CLI_MAX_FILE, errf)) == NULL)
			goto out;
		if ((r = wick_wit_svid_new(trim(wtext), ktext, &wit)) != 0) {
			fprintf(errf, "%s and %s are not a WIT and its "
			    "private JWK: %s\n", wit_file, key_file,
			    wick_strerror(r));
			goto out;
		}
	} else {
		if (cli_socket_resolve(socket_flag, getenv(CLI_ENDPOINT_ENV),
		    path, sizeof(path), err, sizeof(err)) != 0) {
			fprintf(errf, "%s\n", err);
			goto out;
		}
		/* Another user's socket could be a fake agent. */
		if ((r = secpath_check_socket(path, spwhy,
		    sizeof(spwhy))) != 0 && r != WICK_ERR_NOT_FOUND) {
			fprintf(errf, "refusing the Workload API socket %s: "
			    "%s\n", path, spwhy);
			goto out;
		}
		if ((r = wick_client_new(path, timeout_ms, &cl)) != 0) {
			fprintf(errf, "cannot use socket %s: %s\n", path,
			    wick_strerror(r));
			goto out;
		}
		if ((r = wick_fetch_wit_svid(cl, spiffe_id, &wit)) != 0) {
			wick_client_last_error(cl, msg, sizeof(msg));
			fprintf(errf, "cannot fetch a WIT-SVID from %s: "
			    "%s%s%s\n", path, wick_strerror(r),
			    *msg ? ": " : "", msg);
			goto out;
		}
	}
	if ((r = wick_wpt_create(wit, aud, ttl_ms / 1000, NULL, 0,
	    &wpt)) != 0) {
		fprintf(errf, "cannot create the WPT for \"%s\": %s\n", aud,
		    wick_strerror(r));
		goto out;
	}
	fprintf(out, "%s: %s\n", WICK_WPT_HEADER_WIT, wick_wit_svid_token(wit));
	fprintf(out, "Authorization: %s %s\n", WICK_WPT_AUTH_SCHEME, wpt);
	rc = 0;
out:
	free(wpt);
	free(wtext);
	if (ktext != NULL)
		OPENSSL_clear_free(ktext, strlen(ktext));
	wick_wit_svid_free(wit);
	wick_client_free(cl);
	return rc;
}

/*
 * The trust-domain-to-JWKS map of a bundle file: the file itself, or its
 * "bundles" member ("api fetch wit -output json" writes that).  A new
 * string, or NULL when the file is not such JSON.
 */
static char *
bundle_map(const char *doc)
{
	json_t	*j, *m;
	char	*s = NULL;

	if ((j = json_loads(doc, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return NULL;
	m = json_object_get(j, "bundles");
	if (!json_is_object(m) || json_object_get(j, "svids") == NULL)
		m = j;
	s = json_dumps(m, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* The WPT from a file: a bare JWT, "WPT <jwt>" or "Authorization: ...". */
static char *
wpt_value(char *s)
{
	s = trim(s);
	if (strncasecmp(s, "Authorization:", 14) == 0)
		s = trim(s + 14);
	if (strncasecmp(s, "WPT", 3) == 0 && (s[3] == ' ' || s[3] == '\t'))
		s = trim(s + 4);
	return s;
}

static int
cmd_verify(FILE *out, FILE *errf, int argc, char **argv)
{
	const char	*wit_file = NULL, *wpt_file = NULL;
	const char	*bundle_file = NULL;
	const char	*audience = NULL, *td = NULL;
	const char	*now_flag = NULL;
	long long	 now = 0;
	char		*end;
	int		 any_id = 0, eddsa = 0;
	const struct cli_flag fl[] = {
		{ "wit", CLI_FLAG_STRING, &wit_file, "FILE",
		    "The Workload-Identity-Token value ('-': stdin)" },
		{ "wpt", CLI_FLAG_STRING, &wpt_file, "FILE",
		    "The WPT (bare, or 'WPT <jwt>')" },
		{ "bundle", CLI_FLAG_STRING, &bundle_file, "FILE",
		    "WIT bundles: {\"spiffe://td\": JWKS, ...} (or the output "
		    "of 'api fetch wit -output json'), or one JWKS or SPIFFE "
		    "bundle with -trustDomain" },
		{ "trustDomain", CLI_FLAG_STRING, &td, "TD",
		    "Trust domain of a single JWKS or SPIFFE bundle" },
		{ "audience", CLI_FLAG_STRING, &audience, "AUD",
		    "The audience this verifier accepts" },
		{ "anyWorkloadID", CLI_FLAG_BOOL, &any_id, "",
		    "Accept WIMSE workload identifiers besides SPIFFE IDs" },
		{ "allowEdDSA", CLI_FLAG_BOOL, &eddsa, "",
		    "Accept EdDSA (WIMSE) besides the SPIFFE algorithms" },
		{ "time", CLI_FLAG_STRING, &now_flag, "SECONDS",
		    "Verify as of this Unix time (default: now)" },
	};
	const char			*syn = "wick-agent api wpt verify "
	    "-wit FILE -wpt FILE -bundle FILE -audience A [flags]";
	struct wick_wpt_verifier_config	 cfg;
	struct wick_wpt_verifier	*v = NULL;
	struct wick_wpt_result		 res;
	struct wick_bundles		*b = NULL;
	char				*wit = NULL, *wpt = NULL;
	char				*bdoc = NULL, *map = NULL;
	char				 err[CLI_MAX_ERR];
	int				 next, r, rc = 1;

	r = cli_flags_parse(fl, sizeof(fl) / sizeof(fl[0]), argc, argv, &next,
	    err, sizeof(err));
	if (r == CLI_FLAGS_HELP) {
		cli_flags_usage(out, syn, fl, sizeof(fl) / sizeof(fl[0]));
		return 0;
	}
	if (r == 0 && next < argc) {
		snprintf(err, sizeof(err), "unexpected argument \"%s\"",
		    argv[next]);
		r = -1;
	}
	if (r == 0 && (wit_file == NULL || wpt_file == NULL ||
	    bundle_file == NULL || audience == NULL)) {
		snprintf(err, sizeof(err), "-wit, -wpt, -bundle and -audience "
		    "are required");
		r = -1;
	}
	if (r == 0 && strcmp(wit_file, "-") == 0 && strcmp(wpt_file,
	    "-") == 0) {
		snprintf(err, sizeof(err), "only one of -wit and -wpt can be "
		    "stdin");
		r = -1;
	}
	if (r == 0 && now_flag != NULL) {
		errno = 0;
		now = strtoll(now_flag, &end, 10);
		if (errno != 0 || *end != '\0' || end == now_flag || now <= 0) {
			snprintf(err, sizeof(err), "invalid value \"%s\" for "
			    "flag -time: Unix seconds", now_flag);
			r = -1;
		}
	}
	if (r != 0) {
		fprintf(errf, "%s\n", err);
		cli_flags_usage(errf, syn, fl, sizeof(fl) / sizeof(fl[0]));
		return 1;
	}
	if ((wit = read_all(wit_file, WICK_MAX_WIMSE_TOKEN + 64,
	    errf)) == NULL || (wpt = read_all(wpt_file,
	    WICK_MAX_WIMSE_TOKEN + 64, errf)) == NULL ||
	    (bdoc = read_all(bundle_file, WPT_CLI_MAX_FILE, errf)) == NULL)
		goto out;
	if (td != NULL) {
		if ((r = wick_bundles_new(WICK_BUNDLE_WIT, &b)) == 0)
			r = wick_bundles_add(b, td, bdoc, strlen(bdoc));
	} else if ((map = bundle_map(bdoc)) == NULL)
		r = WICK_E_INVALID;
	else
		r = wick_bundles_from_json_map(WICK_BUNDLE_WIT, map,
		    strlen(map), &b);
	if (r != 0) {
		fprintf(errf, "%s: not %s: %s\n", bundle_file, td != NULL ?
		    "a JWKS or SPIFFE bundle" : "a JSON object of trust "
		    "domains and JWK Sets", wick_strerror(r));
		goto out;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.audience = audience;
	cfg.wit_bundles = b;
	cfg.flags = (any_id ? WICK_WPT_ANY_WORKLOAD_ID : 0) |
	    (eddsa ? WICK_WPT_ALLOW_EDDSA : 0);
	cfg.replay_entries = 16;
	if ((r = wick_wpt_verifier_new(&cfg, &v)) != 0) {
		fprintf(errf, "cannot set up the verifier: %s\n",
		    wick_strerror(r));
		goto out;
	}
	if (wick_wpt_verify(v, trim(wit), wpt_value(wpt), NULL, (int64_t)now,
	    &res) != 0) {
		fprintf(errf, "WPT rejected: %s: %s\n",
		    wick_wpt_reason_str(res.reason), res.detail);
		goto out;
	}
	fprintf(out, "WPT valid for %s\n", res.sub);
	rc = 0;
out:
	wick_wpt_verifier_free(v);
	wick_bundles_free(b);
	free(wit);
	free(wpt);
	free(bdoc);
	free(map);
	return rc;
}

static void
wpt_usage(FILE *f)
{
	fprintf(f,
"Usage: wick-agent api wpt <command> [flags]\n"
"\n"
"Commands:\n"
"  sign     print the Workload-Identity-Token and Authorization: WPT\n"
"           headers for a request (-method, -url)\n"
"  verify   verify a WIT and WPT pair (-wit, -wpt, -bundle, -audience)\n");
}

int
cli_wpt_run(FILE *out, FILE *errf, int argc, char **argv)
{
	if (argc < 1) {
		wpt_usage(errf);
		return 1;
	}
	if (strcmp(argv[0], "sign") == 0)
		return cmd_sign(out, errf, argc - 1, argv + 1);
	if (strcmp(argv[0], "verify") == 0)
		return cmd_verify(out, errf, argc - 1, argv + 1);
	if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "help") == 0) {
		wpt_usage(out);
		return 0;
	}
	fprintf(errf, "unknown command \"api wpt %s\"\n", argv[0]);
	wpt_usage(errf);
	return 1;
}
