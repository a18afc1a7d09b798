/*
 * test_agent_cli.c: the Workload API command-line client (agent/cli*.c).
 *
 * The pure parts first: Go-style flags, SPIFFE_ENDPOINT_SOCKET, times and
 * durations, Struct to JSON, the checks and output of X.509-SVID, JWT-SVID
 * and WIT-SVID answers built here from certificates and keys made with
 * OpenSSL, and the files of -write.  Then the commands themselves against
 * a fake Workload API served by a child process on a Unix socket.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "buf.h"
#include "cli.h"
#include "cli_int.h"
#include "health.pb-c.h"
#include "jose.h"
#include "rpc.h"
#include "workload.pb-c.h"
#include "x509.h"

#define TD		"spiffe://example.org"
#define FED_TD		"spiffe://fed.example"
#define ID_W		"spiffe://example.org/workload"
#define ID_UNIMPL	"spiffe://example.org/unimplemented"
#define NOW		1700000000	/* 2023-11-14 */
#define JWT_EXP		4102444800LL	/* 2100-01-01 */

/* ---- the test PKI and answers -------------------------------------------- */

static struct {
	EVP_PKEY	*rootk, *interk, *leafk, *fedk, *otherk;
	X509		*root, *inter, *leaf, *fed;
	struct buf	 chain_der, bundle_der, fed_der;
	uint8_t		*key_der;
	size_t		 key_len;
	struct jose_key	*jk;
	char		*jwt, *wit, *wit_key, *jwks;
	uint8_t		*x509_resp;	/* packed X509SVIDResponse */
	size_t		 x509_len;
} P;

static EVP_PKEY *
ec_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	return k;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* issuer NULL: self-signed.  Times are ASN.1 GeneralizedTime text. */
static X509 *
make_cert(const char *cn, const char *uri, EVP_PKEY *key, X509 *issuer,
    EVP_PKEY *ikey, int ca, long serial, const char *nb, const char *na)
{
	X509		*x = X509_new();
	X509_NAME	*name = X509_NAME_new();
	char		 san[256];

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial),
	    1);
	assert_int_equal(ASN1_TIME_set_string(X509_getm_notBefore(x), nb), 1);
	assert_int_equal(ASN1_TIME_set_string(X509_getm_notAfter(x), na), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name), 1);
	X509_NAME_free(name);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (issuer == NULL)
		issuer = x;
	add_ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" :
	    "critical,CA:FALSE");
	add_ext(x, issuer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" :
	    "critical,digitalSignature");
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (issuer != x)
		add_ext(x, issuer, NID_authority_key_identifier, "keyid");
	snprintf(san, sizeof(san), "URI:%s", uri);
	add_ext(x, issuer, NID_subject_alt_name, san);
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static void
put_der(struct buf *b, X509 *x)
{
	uint8_t	*p;
	int	 n = i2d_X509(x, NULL);

	assert_true(n > 0);
	assert_int_equal(buf_reserve(b, (size_t)n, &p), 0);
	assert_int_equal(i2d_X509(x, &p), n);
	buf_commit(b, (size_t)n);
}

static char *
sign_token(const char *typ, json_t *claims)
{
	char *tok = NULL;

	assert_int_equal(jose_sign(P.jk, typ, claims, &tok), 0);
	json_decref(claims);
	return tok;
}

/*
 * An encoded ValidateJWTSVIDResponse whose claims nest levels deep, built
 * inside out: claims(2), then Struct.fields(1), Entry.value(2),
 * Value.struct_value(5) over and over.
 */
static void
deep_claims(struct buf *b, size_t levels)
{
	static const uint8_t	 cycle[3] = { 0x0a, 0x12, 0x2a };
	uint8_t			 hdr[16], *tmp;
	size_t			 i, len, h, k;

	buf_init(b, 0);
	for (i = levels; i-- > 0;) {
		len = buf_len(b);
		h = 0;
		hdr[h++] = i == 0 ? 0x12 : cycle[(i - 1) % 3];
		for (k = len; k >= 0x80; k >>= 7)
			hdr[h++] = (uint8_t)(k | 0x80);
		hdr[h++] = (uint8_t)k;
		tmp = malloc(len + h);
		assert_non_null(tmp);
		memcpy(tmp, hdr, h);
		if (len > 0)
			memcpy(tmp + h, buf_ptr(b), len);
		buf_reset(b);
		assert_int_equal(buf_put(b, tmp, len + h), 0);
		free(tmp);
	}
}

/* A response with one SVID (leaf + intermediate) and one federated TD. */
static void
fill_response(X509SVIDResponse *r, X509SVID *s,
    X509SVIDResponse__FederatedBundlesEntry *fe,
    X509SVIDResponse__FederatedBundlesEntry **fes, X509SVID **svids)
{
	x509_svidresponse__init(r);
	x509_svid__init(s);
	x509_svidresponse__federated_bundles_entry__init(fe);
	s->spiffe_id = ID_W;
	s->x509_svid.data = (uint8_t *)buf_ptr(&P.chain_der);
	s->x509_svid.len = buf_len(&P.chain_der);
	s->x509_svid_key.data = P.key_der;
	s->x509_svid_key.len = P.key_len;
	s->bundle.data = (uint8_t *)buf_ptr(&P.bundle_der);
	s->bundle.len = buf_len(&P.bundle_der);
	fe->key = FED_TD;
	fe->value.data = (uint8_t *)buf_ptr(&P.fed_der);
	fe->value.len = buf_len(&P.fed_der);
	svids[0] = s;
	fes[0] = fe;
	r->n_svids = 1;
	r->svids = svids;
	r->n_federated_bundles = 1;
	r->federated_bundles = fes;
}

static int
group_setup(void **state)
{
	X509SVIDResponse			 r;
	X509SVID				 s, *svids[1];
	X509SVIDResponse__FederatedBundlesEntry	 fe, *fes[1];
	struct jose_keyset			 ks;
	struct jose_key				*pub;
	json_t					*jwk = NULL, *jwks = NULL;
	PKCS8_PRIV_KEY_INFO			*p8;
	int					 n;

	P.rootk = ec_key();
	P.interk = ec_key();
	P.leafk = ec_key();
	P.fedk = ec_key();
	P.otherk = ec_key();
	P.root = make_cert("root", TD, P.rootk, NULL, NULL, 1, 1,
	    "20200101000000Z", "20991231235959Z");
	P.inter = make_cert("inter", TD, P.interk, P.root, P.rootk, 1, 2,
	    "20200601120000Z", "20980101000000Z");
	P.leaf = make_cert("leaf", ID_W, P.leafk, P.inter, P.interk, 0,
	    123456789, "20210203040506Z", "20970101000000Z");
	P.fed = make_cert("fed", FED_TD, P.fedk, NULL, NULL, 1, 4,
	    "20220101000000Z", "20960101000000Z");
	buf_init(&P.chain_der, 0);
	buf_init(&P.bundle_der, 0);
	buf_init(&P.fed_der, 0);
	put_der(&P.chain_der, P.leaf);
	put_der(&P.chain_der, P.inter);
	put_der(&P.bundle_der, P.root);
	put_der(&P.fed_der, P.fed);
	p8 = EVP_PKEY2PKCS8(P.leafk);
	assert_non_null(p8);
	n = i2d_PKCS8_PRIV_KEY_INFO(p8, &P.key_der);
	assert_true(n > 0);
	P.key_len = (size_t)n;
	PKCS8_PRIV_KEY_INFO_free(p8);
	fill_response(&r, &s, &fe, fes, svids);
	P.x509_len = x509_svidresponse__get_packed_size(&r);
	P.x509_resp = malloc(P.x509_len);
	assert_non_null(P.x509_resp);
	x509_svidresponse__pack(&r, P.x509_resp);

	assert_int_equal(jose_key_from_pkey(P.otherk, "kid-1", &P.jk), 0);
	P.jwt = sign_token("JWT", json_pack("{s:s, s:[s], s:I, s:I}", "sub",
	    ID_W, "aud", "svc", "exp", (json_int_t)JWT_EXP, "iat",
	    (json_int_t)NOW));
	assert_int_equal(jose_key_to_jwk(P.jk, 1, &jwk), 0);
	P.wit_key = json_dumps(jwk, JSON_COMPACT);
	json_decref(jwk);
	assert_int_equal(jose_key_to_jwk(P.jk, 0, &jwk), 0);
	P.wit = sign_token("wit+jwt", json_pack("{s:s, s:I, s:I, s:{s:o}}",
	    "sub", ID_W, "exp", (json_int_t)JWT_EXP, "iat", (json_int_t)NOW,
	    "cnf", "jwk", jwk));
	jose_keyset_init(&ks);
	assert_int_equal(jose_key_from_pkey(P.otherk, "kid-1", &pub), 0);
	assert_int_equal(jose_keyset_add(&ks, pub), 0);
	assert_int_equal(jose_keyset_to_jwks(&ks, &jwks), 0);
	P.jwks = json_dumps(jwks, JSON_COMPACT);
	json_decref(jwks);
	jose_keyset_cleanup(&ks);
	*state = NULL;
	return 0;
}

static int
group_teardown(void **state)
{
	EVP_PKEY_free(P.rootk);
	EVP_PKEY_free(P.interk);
	EVP_PKEY_free(P.leafk);
	EVP_PKEY_free(P.fedk);
	EVP_PKEY_free(P.otherk);
	X509_free(P.root);
	X509_free(P.inter);
	X509_free(P.leaf);
	X509_free(P.fed);
	buf_cleanup(&P.chain_der);
	buf_cleanup(&P.bundle_der);
	buf_cleanup(&P.fed_der);
	OPENSSL_free(P.key_der);
	jose_key_free(P.jk);
	free(P.jwt);
	free(P.wit);
	free(P.wit_key);
	free(P.jwks);
	free(P.x509_resp);
	return 0;
}

/* ---- flags --------------------------------------------------------------- */

struct fl_vals {
	const char	*sock;
	int		 silent;
	int64_t		 ms;
	struct cli_list	 aud;
};

static int
parse(struct fl_vals *v, char *err, size_t errlen, int *next, int argc,
    ...)
{
	const struct cli_flag fl[] = {
		{ "socketPath", CLI_FLAG_STRING, &v->sock, "PATH", "socket" },
		{ "silent", CLI_FLAG_BOOL, &v->silent, NULL, "quiet" },
		{ "timeout", CLI_FLAG_DURATION, &v->ms, "D", "timeout" },
		{ "audience", CLI_FLAG_LIST, &v->aud, "A", "audiences" },
	};
	char	*argv[16];
	va_list	 ap;
	int	 i;

	va_start(ap, argc);
	for (i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return cli_flags_parse(fl, 4, argc, argv, next, err, errlen);
}

static void
test_flags(void **state)
{
	struct fl_vals	 v;
	char		 err[256];
	int		 next;

	memset(&v, 0, sizeof(v));
	assert_int_equal(parse(&v, err, sizeof(err), &next, 7, "-socketPath",
	    "/a.sock", "--silent", "-timeout=1500ms", "-audience", "a,b",
	    "--audience=c"), 0);
	assert_int_equal(next, 7);
	assert_string_equal(v.sock, "/a.sock");
	assert_int_equal(v.silent, 1);
	assert_int_equal(v.ms, 1500);
	assert_int_equal(v.aud.n, 3);
	assert_string_equal(v.aud.v[0], "a");
	assert_string_equal(v.aud.v[1], "b");
	assert_string_equal(v.aud.v[2], "c");
	cli_list_clear(&v.aud);

	/* -flag=value, booleans with a value, the last one wins. */
	assert_int_equal(parse(&v, err, sizeof(err), &next, 4,
	    "--socketPath=/b", "-silent=false", "-timeout", "2s"), 0);
	assert_string_equal(v.sock, "/b");
	assert_int_equal(v.silent, 0);
	assert_int_equal(v.ms, 2000);

	/* Parsing stops at a positional argument and after "--". */
	assert_int_equal(parse(&v, err, sizeof(err), &next, 3, "-silent",
	    "extra", "-timeout"), 0);
	assert_int_equal(next, 1);
	assert_int_equal(parse(&v, err, sizeof(err), &next, 3, "--",
	    "-silent", "x"), 0);
	assert_int_equal(next, 1);
	assert_int_equal(parse(&v, err, sizeof(err), &next, 1, "-"), 0);
	assert_int_equal(next, 0);

	/* Help and errors, in the words of Go's flag package. */
	assert_int_equal(parse(&v, err, sizeof(err), &next, 1, "-h"),
	    CLI_FLAGS_HELP);
	assert_int_equal(parse(&v, err, sizeof(err), &next, 1, "--help"),
	    CLI_FLAGS_HELP);
	assert_true(parse(&v, err, sizeof(err), &next, 1, "-nope") < 0);
	assert_string_equal(err, "flag provided but not defined: -nope");
	assert_true(parse(&v, err, sizeof(err), &next, 1, "-socketPath") < 0);
	assert_string_equal(err, "flag needs an argument: -socketPath");
	assert_true(parse(&v, err, sizeof(err), &next, 1, "-silent=maybe") <
	    0);
	assert_string_equal(err, "invalid boolean value \"maybe\" for -silent: "
	    "parse error");
	assert_true(parse(&v, err, sizeof(err), &next, 2, "-timeout", "5") <
	    0);
	assert_non_null(strstr(err, "invalid value \"5\" for flag -timeout"));
	assert_true(parse(&v, err, sizeof(err), &next, 2, "-timeout",
	    "-1s") < 0);
	assert_true(parse(&v, err, sizeof(err), &next, 1, "---x") < 0);
	assert_string_equal(err, "bad flag syntax: ---x");
	assert_true(parse(&v, err, sizeof(err), &next, 1, "-=x") < 0);
	assert_true(parse(&v, err, sizeof(err), &next, 2, "-audience",
	    "a,,b") < 0);
	assert_non_null(strstr(err, "empty item"));
	cli_list_clear(&v.aud);
}

/* ---- the endpoint -------------------------------------------------------- */

static void
test_endpoint(void **state)
{
	static const char *const bad[] = {
		"tcp://127.0.0.1:8000", "unix://host/run/a.sock",
		"unix://user@/run/a.sock", "unix:run/a.sock",
		"unix:///run/a.sock?x=1", "unix:///run/a.sock#frag",
		"unix://", "unix:", "unix:///", "/run/a.sock", "",
		"http://x/y", "unix:///run/%61.sock",
	};
	char		 path[256], err[512], longp[300];
	const char	*why;
	size_t		 i;

	assert_int_equal(cli_endpoint_parse("unix:///run/spire/a.sock", path,
	    sizeof(path), &why), 0);
	assert_string_equal(path, "/run/spire/a.sock");
	assert_int_equal(cli_endpoint_parse("unix:/run/a.sock", path,
	    sizeof(path), &why), 0);
	assert_string_equal(path, "/run/a.sock");
	assert_int_equal(cli_endpoint_parse("UNIX:///x", path, sizeof(path),
	    &why), 0);
	assert_string_equal(path, "/x");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_true(cli_endpoint_parse(bad[i], path, sizeof(path),
		    &why) < 0);
		assert_non_null(why);
	}
	assert_int_equal(cli_endpoint_parse("unix://host/x", path,
	    sizeof(path), &why), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "host"));
	assert_int_equal(cli_endpoint_parse("tcp://127.0.0.1:1", path,
	    sizeof(path), &why), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "TCP"));

	/* Precedence: -socketPath, then the variable, then the default. */
	assert_int_equal(cli_socket_resolve("/flag.sock", "unix:///env.sock",
	    path, sizeof(path), err, sizeof(err)), 0);
	assert_string_equal(path, "/flag.sock");
	assert_int_equal(cli_socket_resolve(NULL, "unix:///env.sock", path,
	    sizeof(path), err, sizeof(err)), 0);
	assert_string_equal(path, "/env.sock");
	assert_int_equal(cli_socket_resolve(NULL, "", path, sizeof(path), err,
	    sizeof(err)), 0);
	assert_string_equal(path, "/tmp/wick-agent/public/api.sock");
	assert_int_equal(cli_socket_resolve(NULL, NULL, path, sizeof(path),
	    err, sizeof(err)), 0);
	assert_string_equal(path, "/tmp/wick-agent/public/api.sock");
	assert_true(cli_socket_resolve(NULL, "tcp://127.0.0.1:8000", path,
	    sizeof(path), err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "SPIFFE_ENDPOINT_SOCKET"));
	assert_non_null(strstr(err, "tcp://127.0.0.1:8000"));
	/* A bad variable does not matter when the flag is given. */
	assert_int_equal(cli_socket_resolve("/f", "tcp://x", path,
	    sizeof(path), err, sizeof(err)), 0);
	/* A relative -socketPath is made absolute. */
	assert_int_equal(cli_socket_resolve("rel.sock", NULL, path,
	    sizeof(path), err, sizeof(err)), 0);
	assert_true(path[0] == '/');
	assert_non_null(strstr(path, "/rel.sock"));
	assert_true(cli_socket_resolve("", NULL, path, sizeof(path), err,
	    sizeof(err)) < 0);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(cli_socket_resolve(longp, NULL, path, sizeof(path),
	    err, sizeof(err)), WICK_ERR_LIMIT);
	assert_non_null(strstr(err, "too long"));
}

/* ---- times, durations, text ---------------------------------------------- */

static void
test_formatting(void **state)
{
	static const struct {
		uint64_t	 ns;
		const char	*s;
	} d[] = {
		{ 0, "0s" }, { 999, "999ns" }, { 1500, "1.5\xc2\xb5s" },
		{ 2345678, "2.345678ms" }, { 100000000, "100ms" },
		{ 1000000000, "1s" }, { 1500000000, "1.5s" },
		{ 90000000000ULL, "1m30s" }, { 3600000000000ULL, "1h0m0s" },
		{ 3723000000001ULL, "1h2m3.000000001s" },
	};
	ASN1_TIME	*t;
	char		 s[64];
	size_t		 i;
	FILE		*f;
	char		*mem = NULL;
	size_t		 memlen = 0;

	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		cli_go_duration(d[i].ns, s, sizeof(s));
		assert_string_equal(s, d[i].s);
	}
	assert_int_equal(cli_unix_time(0, 0, s, sizeof(s)), 0);
	assert_string_equal(s, "1970-01-01 00:00:00 +0000 UTC");
	assert_int_equal(cli_unix_time(JWT_EXP, 1, s, sizeof(s)), 0);
	assert_string_equal(s, "2100-01-01T00:00:00Z");
	assert_true(cli_unix_time(253402300800LL, 1, s, sizeof(s)) < 0);
	assert_true(cli_unix_time(INT64_MIN, 1, s, sizeof(s)) < 0);
	t = ASN1_TIME_new();
	assert_int_equal(ASN1_TIME_set_string(t, "20240229235958Z"), 1);
	assert_int_equal(cli_asn1_time(t, 0, s, sizeof(s)), 0);
	assert_string_equal(s, "2024-02-29 23:59:58 +0000 UTC");
	assert_int_equal(cli_asn1_time(t, 1, s, sizeof(s)), 0);
	assert_string_equal(s, "2024-02-29T23:59:58Z");
	ASN1_TIME_free(t);
	assert_true(cli_asn1_time(NULL, 0, s, sizeof(s)) < 0);

	cli_safe_copy("a\x1b[31mb\n", s, sizeof(s));
	assert_string_equal(s, "a?[31mb?");
	cli_safe_copy("abcdef", s, 4);
	assert_string_equal(s, "abc");
	f = open_memstream(&mem, &memlen);
	cli_put_safe(f, "x\ty\x7f");
	fclose(f);
	assert_string_equal(mem, "x?y?");
	free(mem);
	assert_string_equal(cli_code_name(RPC_INVALID_ARGUMENT),
	    "InvalidArgument");
	assert_string_equal(cli_code_name(RPC_UNAVAILABLE), "Unavailable");
	assert_string_equal(cli_code_name(RPC_CANCELLED), "Canceled");
	assert_string_equal(cli_code_name(99), "Unknown");
}

/* ---- Struct to JSON ------------------------------------------------------ */

static void
test_struct_json(void **state)
{
	Google__Protobuf__Struct		 st, inner;
	Google__Protobuf__Struct__FieldsEntry	 e[8], ie, *ep[8], *iep[1];
	Google__Protobuf__Value			 v[8], iv, lv[2];
	Google__Protobuf__Value			*lvp[2];
	Google__Protobuf__ListValue		 list;
	ValidateJWTSVIDResponse			 resp, *back;
	json_t					*j;
	const char				*why;
	char					*s;
	uint8_t					*packed;
	size_t					 i, n;

	google__protobuf__struct__init(&st);
	google__protobuf__struct__init(&inner);
	google__protobuf__list_value__init(&list);
	for (i = 0; i < 8; i++) {
		google__protobuf__struct__fields_entry__init(&e[i]);
		google__protobuf__value__init(&v[i]);
		e[i].value = &v[i];
		ep[i] = &e[i];
	}
	e[0].key = "sub";
	v[0].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
	v[0].string_value = ID_W;
	e[1].key = "exp";
	v[1].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
	v[1].number_value = 1700000000.0;
	e[2].key = "ratio";
	v[2].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
	v[2].number_value = 0.5;
	e[3].key = "admin";
	v[3].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
	v[3].bool_value = 1;
	e[4].key = "nothing";
	v[4].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
	e[5].key = "aud";
	v[5].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
	v[5].list_value = &list;
	for (i = 0; i < 2; i++) {
		google__protobuf__value__init(&lv[i]);
		lvp[i] = &lv[i];
	}
	lv[0].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
	lv[0].string_value = "a";
	lv[1].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
	lv[1].number_value = -3;
	list.n_values = 2;
	list.values = lvp;
	e[6].key = "nested";
	v[6].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
	v[6].struct_value = &inner;
	google__protobuf__struct__fields_entry__init(&ie);
	google__protobuf__value__init(&iv);
	ie.key = "k";
	ie.value = &iv;
	iv.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
	iv.string_value = "v";
	iep[0] = &ie;
	inner.n_fields = 1;
	inner.fields = iep;
	e[7].key = "unset";		/* kind not set: null */
	st.n_fields = 8;
	st.fields = ep;

	assert_int_equal(cli_struct_to_json(&st, &j, &why), 0);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"admin\":true,\"aud\":[\"a\",-3],"
	    "\"exp\":1700000000,\"nested\":{\"k\":\"v\"},\"nothing\":null,"
	    "\"ratio\":0.5,\"sub\":\"" ID_W "\",\"unset\":null}");
	free(s);
	json_decref(j);

	/* Through the wire and the depth check. */
	validate_jwtsvidresponse__init(&resp);
	resp.spiffe_id = ID_W;
	resp.claims = &st;
	n = validate_jwtsvidresponse__get_packed_size(&resp);
	packed = malloc(n);
	assert_non_null(packed);
	validate_jwtsvidresponse__pack(&resp, packed);
	assert_int_equal(cli_claims_depth_check(packed, n, CLI_MAX_PB_DEPTH),
	    0);
	assert_int_equal(cli_claims_depth_check(packed, n, 3),
	    WICK_ERR_LIMIT);
	assert_int_equal(cli_claims_depth_check(packed, n - 1,
	    CLI_MAX_PB_DEPTH), WICK_ERR_INVALID);
	back = validate_jwtsvidresponse__unpack(NULL, n, packed);
	assert_non_null(back);
	assert_int_equal(cli_struct_to_json(back->claims, &j, &why), 0);
	json_decref(j);
	validate_jwtsvidresponse__free_unpacked(back, NULL);
	free(packed);

	/* Non-finite numbers become strings; invalid UTF-8 is an error. */
	v[2].number_value = 1.0 / 0.0;
	v[0].string_value = "\xff\xfe";
	assert_int_equal(cli_struct_to_json(&st, &j, &why), WICK_ERR_INVALID);
	assert_non_null(why);
	v[0].string_value = ID_W;
	assert_int_equal(cli_struct_to_json(&st, &j, &why), 0);
	assert_string_equal(json_string_value(json_object_get(j, "ratio")),
	    "Infinity");
	json_decref(j);
	assert_int_equal(cli_struct_to_json(NULL, &j, &why), 0);
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);
}

static void
test_struct_deep(void **state)
{
	enum { LEVELS = 200, DEEP_LEVELS = 2000 };
	Google__Protobuf__Struct		 st[LEVELS];
	Google__Protobuf__Struct__FieldsEntry	 e[LEVELS], *ep[LEVELS];
	Google__Protobuf__Value			 v[LEVELS];
	struct buf				 b;
	json_t					*j;
	const char				*why;
	uint8_t					*p;
	size_t					 i, n;

	for (i = 0; i < LEVELS; i++) {
		google__protobuf__struct__init(&st[i]);
		google__protobuf__struct__fields_entry__init(&e[i]);
		google__protobuf__value__init(&v[i]);
		e[i].key = "n";
		e[i].value = &v[i];
		ep[i] = &e[i];
		st[i].n_fields = 1;
		st[i].fields = &ep[i];
		if (i + 1 < LEVELS) {
			v[i].kind_case =
			    GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
			v[i].struct_value = &st[i + 1];
		} else
			v[i].kind_case =
			    GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
	}
	assert_int_equal(cli_struct_to_json(&st[0], &j, &why),
	    WICK_ERR_LIMIT);
	assert_non_null(strstr(why, "deeply"));

	/* A hostile answer nested 2000 times: refused before protobuf-c. */
	deep_claims(&b, DEEP_LEVELS);
	n = buf_len(&b);
	p = malloc(n + 2);
	assert_non_null(p);
	memcpy(p, buf_ptr(&b), n);
	assert_int_equal(cli_claims_depth_check(p, n, CLI_MAX_PB_DEPTH),
	    WICK_ERR_LIMIT);
	assert_int_equal(cli_claims_depth_check(p, n, DEEP_LEVELS + 1), 0);
	/* Groups and truncated varints are malformed. */
	p[0] = 0x13;
	assert_int_equal(cli_claims_depth_check(p, 1, CLI_MAX_PB_DEPTH),
	    WICK_ERR_INVALID);
	p[0] = 0x08;
	p[1] = 0x80;
	assert_int_equal(cli_claims_depth_check(p, 2, CLI_MAX_PB_DEPTH),
	    WICK_ERR_INVALID);
	assert_int_equal(cli_claims_depth_check(p, 0, CLI_MAX_PB_DEPTH), 0);
	free(p);
	buf_cleanup(&b);
}

/* ---- token payloads ------------------------------------------------------ */

static void
test_jwt_payload(void **state)
{
	json_t		*c;
	const char	*why;

	assert_int_equal(cli_jwt_payload(P.jwt, &c, &why), 0);
	assert_string_equal(json_string_value(json_object_get(c, "sub")),
	    ID_W);
	json_decref(c);
	assert_true(cli_jwt_payload("a.b", &c, &why) < 0);
	assert_true(cli_jwt_payload("a.b.c.d", &c, &why) < 0);
	assert_true(cli_jwt_payload("a..c", &c, &why) < 0);
	assert_true(cli_jwt_payload("a.b+/.c", &c, &why) < 0);
	/* "bnVsbA" is "null": not an object. */
	assert_true(cli_jwt_payload("eyJ9.bnVsbA.c2ln", &c, &why) < 0);
	assert_non_null(strstr(why, "object"));
	assert_true(cli_jwt_payload("x.\x1b[0m.y", &c, &why) < 0);
}

/* ---- X.509-SVID responses ------------------------------------------------ */

static FILE *
mstream(char **mem, size_t *len)
{
	FILE *f;

	*mem = NULL;
	f = open_memstream(mem, len);
	assert_non_null(f);
	return f;
}

static const char *expected_pretty =
"Received 1 svid after 1.234567ms\n"
"\n"
"SPIFFE ID:\t\t" ID_W "\n"
"Hint:\t\t\tinternal?\n"
"SVID Valid After:\t2021-02-03 04:05:06 +0000 UTC\n"
"SVID Valid Until:\t2097-01-01 00:00:00 +0000 UTC\n"
"Intermediate #1 Valid After:\t2020-06-01 12:00:00 +0000 UTC\n"
"Intermediate #1 Valid Until:\t2098-01-01 00:00:00 +0000 UTC\n"
"CA #1 Valid After:\t2020-01-01 00:00:00 +0000 UTC\n"
"CA #1 Valid Until:\t2099-12-31 23:59:59 +0000 UTC\n"
"[" FED_TD "] CA #1 Valid After:\t2022-01-01 00:00:00 +0000 UTC\n"
"[" FED_TD "] CA #1 Valid Until:\t2096-01-01 00:00:00 +0000 UTC\n"
"\n";

static void
test_x509_output(void **state)
{
	X509SVIDResponse			 r;
	X509SVID				 s, *svids[1];
	X509SVIDResponse__FederatedBundlesEntry	 fe, *fes[1];
	struct cli_x509				*x = NULL;
	json_t					*j, *sv;
	char					 err[CLI_MAX_ERR];
	char					*mem, *dump;
	size_t					 len;
	FILE					*f;

	fill_response(&r, &s, &fe, fes, svids);
	s.hint = "internal\n";
	assert_int_equal(cli_x509_parse(&r, NOW, &x, err, sizeof(err)), 0);
	assert_int_equal(x->nsvids, 1);
	assert_int_equal(x->nfeds, 1);
	f = mstream(&mem, &len);
	assert_int_equal(cli_x509_print(f, x, 1234567), 0);
	fclose(f);
	assert_string_equal(mem, expected_pretty);
	free(mem);

	assert_int_equal(cli_x509_json(x, &j), 0);
	dump = json_dumps(j, JSON_COMPACT);
	assert_null(strstr(dump, "PRIVATE KEY"));
	assert_null(strstr(dump, "key\""));
	free(dump);
	sv = json_array_get(json_object_get(j, "svids"), 0);
	assert_string_equal(json_string_value(json_object_get(sv,
	    "spiffe_id")), ID_W);
	assert_string_equal(json_string_value(json_object_get(sv,
	    "expires_at")), "2097-01-01T00:00:00Z");
	assert_string_equal(json_string_value(json_object_get(sv, "serial")),
	    "123456789");
	assert_string_equal(json_string_value(json_object_get(sv, "hint")),
	    "internal\n");
	assert_non_null(strstr(json_string_value(json_object_get(sv,
	    "x509_svid")), "-----BEGIN CERTIFICATE-----"));
	assert_non_null(json_object_get(json_object_get(j, "bundles"), TD));
	assert_non_null(json_object_get(json_object_get(j,
	    "federated_bundles"), FED_TD));
	json_decref(j);
	cli_x509_free(x);

	/* Several SVIDs: "svids", and the federated bundles after each. */
	{
		X509SVID *two[2] = { &s, &s };

		s.hint = "";
		r.n_svids = 2;
		r.svids = two;
		assert_int_equal(cli_x509_parse(&r, NOW, &x, err, sizeof(err)),
		    0);
		f = mstream(&mem, &len);
		assert_int_equal(cli_x509_print(f, x, 2000000000), 0);
		fclose(f);
		assert_true(strncmp(mem, "Received 2 svids after 2s\n", 26) ==
		    0);
		assert_null(strstr(mem, "Hint:"));
		assert_non_null(strstr(strstr(mem, "[" FED_TD "]") + 1,
		    "[" FED_TD "]"));
		free(mem);
		cli_x509_free(x);
	}
}

/* Every broken field of an answer is an error with a message. */
static void
test_x509_bad(void **state)
{
	X509SVIDResponse			 r;
	X509SVID				 s, *svids[1];
	X509SVIDResponse__FederatedBundlesEntry	 fe, *fes[1];
	struct cli_x509				*x = NULL;
	struct buf				 b;
	char					 err[CLI_MAX_ERR];
	uint8_t					 junk[3] = { 1, 2, 3 };
	uint8_t					*other = NULL;
	PKCS8_PRIV_KEY_INFO			*p8;
	size_t					 olen;

#define BAD(what) do {							\
	fill_response(&r, &s, &fe, fes, svids);				\
	what;								\
	x = NULL;							\
	assert_true(cli_x509_parse(&r, NOW, &x, err, sizeof(err)) < 0);	\
	assert_null(x);							\
	assert_true(err[0] != '\0');					\
} while (0)

	BAD(r.n_svids = 0);
	assert_string_equal(err, "workload response contains no svids");
	BAD(s.spiffe_id = "spiffe://Example.org/w");
	assert_non_null(strstr(err, "invalid SPIFFE ID"));
	BAD(s.spiffe_id = "spiffe://example.org/other");
	assert_non_null(strstr(err, "URI SAN"));
	BAD(s.spiffe_id = "spiffe://example.org/\x1b");
	assert_null(strchr(err, '\x1b'));
	BAD(s.x509_svid.len = 0);
	BAD(s.x509_svid.len -= 1);
	assert_non_null(strstr(err, "cannot parse the certificates"));
	BAD((s.x509_svid.data = junk, s.x509_svid.len = sizeof(junk)));
	BAD(s.x509_svid_key.len = 0);
	BAD(s.x509_svid_key.len -= 1);
	assert_non_null(strstr(err, "private key"));
	p8 = EVP_PKEY2PKCS8(P.otherk);
	olen = (size_t)i2d_PKCS8_PRIV_KEY_INFO(p8, &other);
	PKCS8_PRIV_KEY_INFO_free(p8);
	BAD((s.x509_svid_key.data = other, s.x509_svid_key.len = olen));
	assert_non_null(strstr(err, "does not match"));
	OPENSSL_free(other);
	BAD(s.bundle.len = 0);
	assert_non_null(strstr(err, "no certificates in trust bundle"));
	BAD((s.bundle.data = junk, s.bundle.len = sizeof(junk)));
	assert_non_null(strstr(err, "trust bundle"));
	/* The wrong trust anchors: verification fails. */
	BAD((s.bundle.data = (uint8_t *)buf_ptr(&P.fed_der),
	    s.bundle.len = buf_len(&P.fed_der)));
	assert_non_null(strstr(err, "failed verification"));
	/* The chain without its intermediate does not verify either. */
	buf_init(&b, 0);
	put_der(&b, P.leaf);
	BAD((s.x509_svid.data = (uint8_t *)buf_ptr(&b),
	    s.x509_svid.len = buf_len(&b)));
	assert_non_null(strstr(err, "failed verification"));
	buf_cleanup(&b);
	/* A leaf that is a CA. */
	buf_init(&b, 0);
	put_der(&b, P.root);
	BAD((s.spiffe_id = TD "/x", s.x509_svid.data =
	    (uint8_t *)buf_ptr(&b), s.x509_svid.len = buf_len(&b)));
	buf_cleanup(&b);
	/* Federated bundles. */
	BAD(fe.key = "not a td");
	assert_non_null(strstr(err, "invalid trust domain"));
	BAD(fe.value.len = 0);
	BAD((fe.value.data = junk, fe.value.len = sizeof(junk)));
	assert_non_null(strstr(err, FED_TD));
	{
		X509SVIDResponse__FederatedBundlesEntry fe2, *two[2];

		BAD((fe2 = fe, fe2.key = "fed.example", two[0] = &fe,
		    two[1] = &fe2, r.n_federated_bundles = 2,
		    r.federated_bundles = two));
		assert_non_null(strstr(err, "more than one"));
	}
	/* Expired at "now". */
	fill_response(&r, &s, &fe, fes, svids);
	assert_true(cli_x509_parse(&r, 4200000000LL, &x, err, sizeof(err)) <
	    0);
	assert_non_null(strstr(err, "expired"));
#undef BAD
}

static int
count_entries(const char *dir)
{
	DIR		*d = opendir(dir);
	struct dirent	*e;
	int		 n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
		else if (strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0)
			n += 100;	/* a temporary file was left */
	closedir(d);
	return n;
}

static void
check_file(const char *dir, const char *name, mode_t mode)
{
	struct stat	st;
	char		path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, mode);
}

static void
rm_dir(const char *dir)
{
	DIR		*d = opendir(dir);
	struct dirent	*e;
	char		 path[512];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		(void)unlink(path);
	}
	closedir(d);
	(void)rmdir(dir);
}

static void
test_x509_write(void **state)
{
	X509SVIDResponse			 r;
	X509SVID				 s, *svids[1];
	X509SVIDResponse__FederatedBundlesEntry	 fe, *fes[1];
	struct cli_x509				*x = NULL;
	STACK_OF(X509)				*sk = NULL;
	EVP_PKEY				*k = NULL;
	char					 dir[64], slash[80];
	char					 path[512];
	char					 err[CLI_MAX_ERR], *mem;
	size_t					 len;
	FILE					*f;
	mode_t					 um;

	snprintf(dir, sizeof(dir), "/tmp/wick-acli-XXXXXX");
	assert_non_null(mkdtemp(dir));
	fill_response(&r, &s, &fe, fes, svids);
	assert_int_equal(cli_x509_parse(&r, NOW, &x, err, sizeof(err)), 0);
	um = umask(0);		/* modes come from us, not the umask */
	f = mstream(&mem, &len);
	snprintf(slash, sizeof(slash), "%s/", dir);
	assert_int_equal(cli_x509_write(x, slash, f, err, sizeof(err)), 0);
	fclose(f);
	umask(um);
	snprintf(path, sizeof(path),
	    "Writing SVID #0 to file %s/svid.0.pem.\n"
	    "Writing key #0 to file %s/svid.0.key.\n"
	    "Writing bundle #0 to file %s/bundle.0.pem.\n"
	    "Writing federated bundle #0 for trust domain " FED_TD " to file "
	    "%s/federated_bundle.0.0.pem.\n", dir, dir, dir, dir);
	assert_string_equal(mem, path);
	free(mem);
	check_file(dir, "svid.0.pem", 0644);
	check_file(dir, "svid.0.key", 0600);
	check_file(dir, "bundle.0.pem", 0644);
	check_file(dir, "federated_bundle.0.0.pem", 0644);
	assert_int_equal(count_entries(dir), 4);

	/* The files read back: chain of two, the key, one root. */
	snprintf(path, sizeof(path), "%s/svid.0.pem", dir);
	assert_int_equal(x509_load_certs_file(path, 16, &sk), 0);
	assert_int_equal(sk_X509_num(sk), 2);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), P.leaf), 0);
	sk_X509_pop_free(sk, X509_free);
	snprintf(path, sizeof(path), "%s/svid.0.key", dir);
	assert_int_equal(x509_load_key_file(path, &k), 0);
	assert_int_equal(EVP_PKEY_eq(k, P.leafk), 1);
	EVP_PKEY_free(k);
	snprintf(path, sizeof(path), "%s/federated_bundle.0.0.pem", dir);
	assert_int_equal(x509_load_certs_file(path, 16, &sk), 0);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), P.fed), 0);
	sk_X509_pop_free(sk, X509_free);

	/* Writing again replaces the files; a missing directory fails. */
	assert_int_equal(cli_x509_write(x, dir, NULL, err, sizeof(err)), 0);
	assert_int_equal(count_entries(dir), 4);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_true(cli_x509_write(x, path, NULL, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "missing/svid.0.pem"));
	cli_x509_free(x);
	rm_dir(dir);
}

/* ---- JWT-SVIDs and WIT-SVIDs --------------------------------------------- */

static void
test_tokens(void **state)
{
	struct cli_tokens	 ts;
	json_t			*j;
	char			 err[CLI_MAX_ERR], dir[64], *mem, *dump;
	char			 want[4096];
	size_t			 len;
	FILE			*f;

	cli_tokens_init(&ts);
	assert_int_equal(cli_tokens_add(&ts, ID_W, "", P.jwt, NULL, err,
	    sizeof(err)), 0);
	assert_true(cli_tokens_add(&ts, TD "/other", "", P.jwt, NULL, err,
	    sizeof(err)) < 0);
	assert_non_null(strstr(err, "subject"));
	assert_true(cli_tokens_add(&ts, "spiffe://x/\x1b", "", P.jwt, NULL,
	    err, sizeof(err)) < 0);
	assert_null(strchr(err, '\x1b'));
	assert_true(cli_tokens_add(&ts, ID_W, "", "garbage", NULL, err,
	    sizeof(err)) < 0);
	assert_non_null(strstr(err, "malformed token"));
	assert_int_equal(cli_tokens_add_bundle(&ts, "spiffe://b.example",
	    (const uint8_t *)P.jwks, strlen(P.jwks), err, sizeof(err)), 0);
	assert_int_equal(cli_tokens_add_bundle(&ts, "example.org",
	    (const uint8_t *)P.jwks, strlen(P.jwks), err, sizeof(err)), 0);
	assert_true(cli_tokens_add_bundle(&ts, "bad td!",
	    (const uint8_t *)P.jwks, strlen(P.jwks), err, sizeof(err)) < 0);
	assert_true(cli_tokens_add_bundle(&ts, TD, (const uint8_t *)"[1]", 3,
	    err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "not a JWK set"));
	assert_int_equal(cli_tokens_finish(&ts, err, sizeof(err)), 0);
	f = mstream(&mem, &len);
	assert_int_equal(cli_tokens_print(f, &ts, 0), 0);
	fclose(f);
	snprintf(want, sizeof(want), "token(" ID_W "):\n\t%s\n"
	    "bundle(spiffe://b.example):\n\t%s\n"
	    "bundle(" TD "):\n\t%s\n", P.jwt, P.jwks, P.jwks);
	assert_string_equal(mem, want);
	free(mem);
	assert_int_equal(cli_tokens_json(&ts, 0, &j), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(j, "svids"), 0), "expires_at")),
	    "2100-01-01T00:00:00Z");
	assert_non_null(json_object_get(json_object_get(j, "bundles"), TD));
	json_decref(j);
	/* Two bundles for one trust domain. */
	assert_int_equal(cli_tokens_add_bundle(&ts, TD,
	    (const uint8_t *)P.jwks, strlen(P.jwks), err, sizeof(err)), 0);
	assert_true(cli_tokens_finish(&ts, err, sizeof(err)) < 0);
	cli_tokens_cleanup(&ts);

	/* WIT: the key must be private, is written, is never printed. */
	cli_tokens_init(&ts);
	assert_true(cli_tokens_add(&ts, ID_W, "", P.wit, P.jwks, err,
	    sizeof(err)) < 0);
	assert_non_null(strstr(err, "private JWK"));
	assert_true(cli_tokens_add(&ts, ID_W, "", P.wit, "{", err,
	    sizeof(err)) < 0);
	assert_int_equal(cli_tokens_add(&ts, ID_W, "h\x07", P.wit, P.wit_key,
	    err, sizeof(err)), 0);
	assert_int_equal(cli_tokens_finish(&ts, err, sizeof(err)), 0);
	f = mstream(&mem, &len);
	assert_int_equal(cli_tokens_print(f, &ts, 1), 0);
	fclose(f);
	snprintf(want, sizeof(want), "token(" ID_W "):\n\t%s\n"
	    "expires(" ID_W "):\n\t2100-01-01 00:00:00 +0000 UTC\n"
	    "hint(" ID_W "):\n\th?\n", P.wit);
	assert_string_equal(mem, want);
	free(mem);
	assert_int_equal(cli_tokens_json(&ts, 1, &j), 0);
	dump = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(dump, "\"wit_svid\""));
	assert_null(strstr(dump, "\"d\""));
	free(dump);
	json_decref(j);
	snprintf(dir, sizeof(dir), "/tmp/wick-acli-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(cli_tokens_write(&ts, dir, NULL, err, sizeof(err)),
	    0);
	check_file(dir, "wit.0.jwt", 0644);
	check_file(dir, "wit.0.key.jwk", 0600);
	assert_int_equal(count_entries(dir), 2);
	rm_dir(dir);
	cli_tokens_cleanup(&ts);
}

/* ---- the commands against a fake Workload API ---------------------------- */

enum fake_mode {
	FAKE_NORMAL = 0,
	FAKE_SILENT,		/* FetchX509SVID never answers */
	FAKE_HOSTILE,		/* malformed answers */
};

static enum fake_mode fake_mode;

static int
fake_send(struct rpc_call *call, const ProtobufCMessage *m)
{
	size_t	 n = protobuf_c_message_get_packed_size(m);
	uint8_t	*p = malloc(n + 1);
	int	 r;

	if (p == NULL)
		return WICK_ERR_ALLOC;
	protobuf_c_message_pack(m, p);
	r = rpc_call_send_message(call, p, n);
	free(p);
	return r;
}

static void
fake_start(struct rpc_call *call, void *arg)
{
	const struct rpc_md *md = rpc_call_md_get(call, "workload.spiffe.io");

	if (md == NULL || md->len != 4 || memcmp(md->value, "true", 4) != 0) {
		rpc_call_set_data(call, call);
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    "security header missing from request");
	}
}

static void
fake_x509(struct rpc_call *call, const uint8_t *p, size_t n)
{
	static const uint8_t	 trunc[3] = { 0x0a, 0x05, 0x01 };

	if (rpc_call_data(call) != NULL || fake_mode == FAKE_SILENT)
		return;
	if (fake_mode == FAKE_HOSTILE &&
	    rpc_call_send_message(call, trunc, sizeof(trunc)) != 0)
		return;
	/* Two updates, then the entry goes away. */
	if (rpc_call_send_message(call, P.x509_resp, P.x509_len) != 0 ||
	    rpc_call_send_message(call, P.x509_resp, P.x509_len) != 0)
		return;
	(void)rpc_call_finish(call, RPC_PERMISSION_DENIED,
	    "no identity issued");
}

static void
fake_jwt(struct rpc_call *call, const uint8_t *p, size_t n)
{
	JWTSVIDRequest	*req;
	JWTSVIDResponse	 resp = JWTSVIDRESPONSE__INIT;
	JWTSVID		 s = JWTSVID__INIT, *sp = &s;

	if (rpc_call_data(call) != NULL)
		return;
	if ((req = jwtsvidrequest__unpack(NULL, n, p)) == NULL ||
	    req->n_audience != 2 || strcmp(req->audience[1], "b") != 0) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    "audience must be specified");
		jwtsvidrequest__free_unpacked(req, NULL);
		return;
	}
	s.spiffe_id = ID_W;
	s.svid = fake_mode == FAKE_HOSTILE &&
	    strcmp(req->audience[0], "junk") == 0 ? "not.a.token" : P.jwt;
	jwtsvidrequest__free_unpacked(req, NULL);
	resp.n_svids = 1;
	resp.svids = &sp;
	if (fake_send(call, &resp.base) == 0)
		(void)rpc_call_finish(call, RPC_OK, NULL);
}

static void
fake_jwt_bundles(struct rpc_call *call, const uint8_t *p, size_t n)
{
	JWTBundlesResponse			 resp =
	    JWTBUNDLES_RESPONSE__INIT;
	JWTBundlesResponse__BundlesEntry	 e =
	    JWTBUNDLES_RESPONSE__BUNDLES_ENTRY__INIT, *ep = &e;

	if (rpc_call_data(call) != NULL)
		return;
	e.key = TD;
	e.value.data = (uint8_t *)(fake_mode == FAKE_HOSTILE ? "{\"keys\"" :
	    P.jwks);
	e.value.len = strlen((const char *)e.value.data);
	resp.n_bundles = 1;
	resp.bundles = &ep;
	(void)fake_send(call, &resp.base);
}

static void
fake_validate(struct rpc_call *call, const uint8_t *p, size_t n)
{
	ValidateJWTSVIDRequest			*req;
	ValidateJWTSVIDResponse			 resp =
	    VALIDATE_JWTSVIDRESPONSE__INIT;
	Google__Protobuf__Struct		 st =
	    GOOGLE__PROTOBUF__STRUCT__INIT;
	Google__Protobuf__Struct__FieldsEntry	 e[2], *ep[2];
	Google__Protobuf__Value			 v[2];
	int					 ok;

	if (rpc_call_data(call) != NULL)
		return;
	if (fake_mode == FAKE_HOSTILE) {
		struct buf b;

		deep_claims(&b, 1000);
		if (rpc_call_send_message(call, buf_ptr(&b), buf_len(&b)) == 0)
			(void)rpc_call_finish(call, RPC_OK, NULL);
		buf_cleanup(&b);
		return;
	}
	req = validate_jwtsvidrequest__unpack(NULL, n, p);
	ok = req != NULL && strcmp(req->svid, P.jwt) == 0 &&
	    strcmp(req->audience, "svc") == 0;
	validate_jwtsvidrequest__free_unpacked(req, NULL);
	if (!ok) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    "token has expired");
		return;
	}
	google__protobuf__struct__fields_entry__init(&e[0]);
	google__protobuf__struct__fields_entry__init(&e[1]);
	google__protobuf__value__init(&v[0]);
	google__protobuf__value__init(&v[1]);
	e[0].key = "sub";
	e[0].value = &v[0];
	v[0].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
	v[0].string_value = ID_W;
	e[1].key = "exp";
	e[1].value = &v[1];
	v[1].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
	v[1].number_value = (double)JWT_EXP;
	ep[0] = &e[0];
	ep[1] = &e[1];
	st.n_fields = 2;
	st.fields = ep;
	resp.spiffe_id = ID_W;
	resp.claims = &st;
	if (fake_send(call, &resp.base) == 0)
		(void)rpc_call_finish(call, RPC_OK, NULL);
}

static void
fake_wit(struct rpc_call *call, const uint8_t *p, size_t n)
{
	WITSVIDRequest	*req;
	WITSVIDResponse	 resp = WITSVIDRESPONSE__INIT;
	WITSVID		 s = WITSVID__INIT, *sp = &s;
	int		 unimpl;

	if (rpc_call_data(call) != NULL)
		return;
	req = witsvidrequest__unpack(NULL, n, p);
	unimpl = req == NULL || strcmp(req->spiffe_id, ID_UNIMPL) == 0;
	witsvidrequest__free_unpacked(req, NULL);
	if (unimpl) {
		(void)rpc_call_finish(call, RPC_UNIMPLEMENTED,
		    "fetching WIT-SVIDs is not implemented");
		return;
	}
	if (fake_mode == FAKE_HOSTILE) {
		(void)rpc_call_finish(call, RPC_OK, NULL);
		return;
	}
	s.spiffe_id = ID_W;
	s.wit_svid = P.wit;
	s.wit_svid_key = P.wit_key;
	resp.n_svids = 1;
	resp.svids = &sp;
	(void)fake_send(call, &resp.base);
}

static void
fake_wit_bundles(struct rpc_call *call, const uint8_t *p, size_t n)
{
	WITBundlesResponse			 resp =
	    WITBUNDLES_RESPONSE__INIT;
	WITBundlesResponse__BundlesEntry	 e =
	    WITBUNDLES_RESPONSE__BUNDLES_ENTRY__INIT, *ep = &e;

	if (rpc_call_data(call) != NULL)
		return;
	e.key = TD;
	e.value = P.jwks;
	resp.n_bundles = 1;
	resp.bundles = &ep;
	(void)fake_send(call, &resp.base);
}

static void
fake_health(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Grpc__Health__V1__HealthCheckResponse resp =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	if (rpc_call_data(call) != NULL)
		return;
	/* grpc.health.v1 ServingStatus: 1 SERVING, 2 NOT_SERVING. */
	resp.status = fake_mode == FAKE_SILENT ? 2 : 1;
	if (fake_send(call, &resp.base) == 0 && (fake_mode != FAKE_HOSTILE ||
	    fake_send(call, &resp.base) == 0))
		(void)rpc_call_finish(call, RPC_OK, NULL);
}

#define FSTREAM(path, fn) { path, RPC_KIND_SERVER_STREAM, fake_start, fn, \
	NULL, NULL, NULL, NULL, 0 }
#define FUNARY(path, fn) { path, RPC_KIND_UNARY, fake_start, fn, NULL, NULL, \
	NULL, NULL, 0 }

static const struct rpc_method fake_methods[] = {
	FSTREAM("/SpiffeWorkloadAPI/FetchX509SVID", fake_x509),
	FUNARY("/SpiffeWorkloadAPI/FetchJWTSVID", fake_jwt),
	FSTREAM("/SpiffeWorkloadAPI/FetchJWTBundles", fake_jwt_bundles),
	FUNARY("/SpiffeWorkloadAPI/ValidateJWTSVID", fake_validate),
	FSTREAM("/SpiffeWorkloadAPI/FetchWITSVID", fake_wit),
	FSTREAM("/SpiffeWorkloadAPI/FetchWITBundles", fake_wit_bundles),
	FUNARY("/grpc.health.v1.Health/Check", fake_health),
};

struct fake {
	pid_t	pid;
	char	dir[64];
	char	sock[96];
};

/* The server running now, stopped by fake_teardown() if a test fails. */
static struct fake *fake_live;

/* Serve the fake Workload API from a child process until killed. */
static void
fake_start_server(struct fake *fk, enum fake_mode mode)
{
	struct rpc_server	*rs;
	uv_loop_t		 loop;
	int			 pfd[2];
	char			 c;

	snprintf(fk->dir, sizeof(fk->dir), "/tmp/wick-acli-XXXXXX");
	assert_non_null(mkdtemp(fk->dir));
	snprintf(fk->sock, sizeof(fk->sock), "%s/api.sock", fk->dir);
	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	fflush(stderr);
	fk->pid = fork();
	assert_true(fk->pid >= 0);
	if (fk->pid == 0) {
		/* Die with the test, whatever happens to it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
			_exit(1);
		close(pfd[0]);
		fake_mode = mode;
		if (uv_loop_init(&loop) != 0 ||
		    rpc_server_new(&loop, NULL, fake_methods,
		    sizeof(fake_methods) / sizeof(fake_methods[0]), &rs) != 0 ||
		    rpc_server_listen_unix(rs, fk->sock, 0700) != 0)
			_exit(1);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		(void)uv_run(&loop, UV_RUN_DEFAULT);
		_exit(0);
	}
	close(pfd[1]);
	fake_live = fk;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
}

static void
fake_stop(struct fake *fk)
{
	int st;

	(void)kill(fk->pid, SIGKILL);
	(void)waitpid(fk->pid, &st, 0);
	(void)unlink(fk->sock);
	rm_dir(fk->dir);
	fake_live = NULL;
}

static int
fake_teardown(void **state)
{
	if (fake_live != NULL)
		fake_stop(fake_live);
	return 0;
}

struct run {
	int	 rc;
	char	*out;
	char	*err;
};

static void
run_cli(struct run *r, int argc, ...)
{
	char	*argv[24];
	size_t	 olen, elen;
	FILE	*o, *e;
	va_list	 ap;
	int	 i;

	assert_true(argc < 24);
	va_start(ap, argc);
	for (i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	r->out = r->err = NULL;
	o = open_memstream(&r->out, &olen);
	e = open_memstream(&r->err, &elen);
	assert_non_null(o);
	assert_non_null(e);
	r->rc = agent_cli_run(argc, argv, o, e);
	fclose(o);
	fclose(e);
}

static void
run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static void
test_cmd_fetch_x509(void **state)
{
	struct fake	 fk;
	struct run	 r;
	char		 dir[64], want[512];
	json_t		*j;

	fake_start_server(&fk, FAKE_NORMAL);
	run_cli(&r, 5, "api", "fetch", "x509", "-socketPath", fk.sock);
	assert_int_equal(r.rc, 0);
	assert_true(strncmp(r.out, "Received 1 svid after ", 22) == 0);
	assert_non_null(strstr(r.out, "SPIFFE ID:\t\t" ID_W "\n"));
	assert_non_null(strstr(r.out, "Intermediate #1 Valid Until:\t"));
	assert_string_equal(r.err, "");
	run_free(&r);

	/* "api fetch" alone is x509; -write; the variable names the socket. */
	snprintf(dir, sizeof(dir), "/tmp/wick-acli-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(want, sizeof(want), "unix://%s", fk.sock);
	assert_int_equal(setenv(CLI_ENDPOINT_ENV, want, 1), 0);
	run_cli(&r, 5, "api", "fetch", "-silent", "-write", dir);
	assert_int_equal(unsetenv(CLI_ENDPOINT_ENV), 0);
	assert_int_equal(r.rc, 0);
	snprintf(want, sizeof(want), "Writing SVID #0 to file %s/svid.0.pem.\n",
	    dir);
	assert_true(strncmp(r.out, want, strlen(want)) == 0);
	assert_null(strstr(r.out, "Received"));
	check_file(dir, "svid.0.key", 0600);
	run_free(&r);
	rm_dir(dir);

	/* JSON, with no key in it. */
	run_cli(&r, 7, "api", "fetch", "x509", "-output", "json",
	    "--socketPath", fk.sock);
	assert_int_equal(r.rc, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "svids")), 1);
	assert_null(strstr(r.out, "PRIVATE"));
	json_decref(j);
	run_free(&r);

	/* Usage errors. */
	run_cli(&r, 5, "api", "fetch", "x509", "-output", "yaml");
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "invalid value \"yaml\" for flag "
	    "-output"));
	run_free(&r);
	run_cli(&r, 4, "api", "fetch", "x509", "stray");
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "unexpected argument \"stray\""));
	run_free(&r);
	run_cli(&r, 3, "api", "fetch", "-h");
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "-socketPath PATH"));
	assert_non_null(strstr(r.out, "-write DIR"));
	run_free(&r);
	fake_stop(&fk);
}

static void
test_cmd_jwt(void **state)
{
	struct fake	 fk;
	struct run	 r;
	char		 want[4096];

	fake_start_server(&fk, FAKE_NORMAL);
	run_cli(&r, 7, "api", "fetch", "jwt", "-audience", "a,b",
	    "-socketPath", fk.sock);
	assert_int_equal(r.rc, 0);
	snprintf(want, sizeof(want), "token(" ID_W "):\n\t%s\n"
	    "bundle(" TD "):\n\t%s\n", P.jwt, P.jwks);
	assert_string_equal(r.out, want);
	run_free(&r);
	run_cli(&r, 10, "api", "fetch", "jwt", "-audience", "a", "-audience",
	    "b", "-socketPath", fk.sock, "-output=json");
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "{\"svids\":[{\"spiffe_id\":\"" ID_W
	    "\""));
	assert_non_null(strstr(r.out, "\"bundles\":{\"" TD "\":{\"keys\""));
	run_free(&r);
	run_cli(&r, 5, "api", "fetch", "jwt", "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "audience must be specified\n");
	run_free(&r);
	/* The server's InvalidArgument, as Go's gRPC prints it. */
	run_cli(&r, 7, "api", "fetch", "jwt", "-audience", "a",
	    "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "rpc error: code = InvalidArgument desc = "
	    "audience must be specified\n");
	run_free(&r);
	run_cli(&r, 9, "api", "fetch", "jwt", "-audience", "a", "-spiffeID",
	    "nope", "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "-spiffeID"));
	run_free(&r);

	run_cli(&r, 9, "api", "validate", "jwt", "-audience", "svc", "-svid",
	    P.jwt, "-socketPath", fk.sock);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "SVID is valid.\nSPIFFE ID : " ID_W "\n"
	    "Claims    : {\"exp\":4102444800,\"sub\":\"" ID_W "\"}\n");
	run_free(&r);
	run_cli(&r, 11, "api", "validate", "jwt", "-audience", "svc", "-svid",
	    P.jwt, "-socketPath", fk.sock, "-output", "json");
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "\"spiffe_id\":\"" ID_W "\""));
	run_free(&r);
	run_cli(&r, 9, "api", "validate", "jwt", "-audience", "other", "-svid",
	    P.jwt, "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "SVID is not valid: token has expired\n");
	run_free(&r);
	run_cli(&r, 5, "api", "validate", "jwt", "-audience", "svc");
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "svid must be specified\n");
	run_free(&r);
	fake_stop(&fk);
}

static void
test_cmd_wit(void **state)
{
	struct fake	 fk;
	struct run	 r;
	char		 dir[64];

	fake_start_server(&fk, FAKE_NORMAL);
	run_cli(&r, 7, "api", "fetch", "wit", "-spiffeID", ID_UNIMPL,
	    "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "the agent does not serve WIT-SVIDs\n");
	run_free(&r);
	snprintf(dir, sizeof(dir), "/tmp/wick-acli-XXXXXX");
	assert_non_null(mkdtemp(dir));
	run_cli(&r, 7, "api", "fetch", "wit", "-socketPath", fk.sock,
	    "-write", dir);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "token(" ID_W "):\n\t"));
	assert_non_null(strstr(r.out, "bundle(" TD "):\n\t"));
	assert_non_null(strstr(r.out, "Writing key #0 to file "));
	assert_null(strstr(r.out, "\"d\""));
	check_file(dir, "wit.0.key.jwk", 0600);
	run_free(&r);
	rm_dir(dir);
	run_cli(&r, 6, "api", "fetch", "wit", "-socketPath", fk.sock,
	    "-output=json");
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "\"wit_svid\":"));
	assert_null(strstr(r.out, "\"d\""));
	run_free(&r);
	fake_stop(&fk);
}

static void
test_cmd_watch(void **state)
{
	struct fake	 fk;
	struct run	 r;
	const char	*second;
	pid_t		 pid;
	int		 st;

	/* Two updates, then the stream ends with PermissionDenied. */
	fake_start_server(&fk, FAKE_NORMAL);
	run_cli(&r, 4, "api", "watch", "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_true(strncmp(r.out, "Received 1 svid after ", 22) == 0);
	second = strstr(r.out + 1, "Received 1 svid after ");
	assert_non_null(second);
	assert_string_equal(r.err, "rpc error: code = PermissionDenied desc = "
	    "no identity issued\n");
	run_free(&r);
	run_cli(&r, 2, "healthcheck", "-socketPath");
	assert_int_equal(r.rc, 1);
	run_free(&r);
	run_cli(&r, 4, "healthcheck", "-socketPath", fk.sock, "-shallow");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "Agent is healthy.\n");
	run_free(&r);
	fake_stop(&fk);

	/* No first update within -timeout. */
	fake_start_server(&fk, FAKE_SILENT);
	run_cli(&r, 6, "api", "watch", "-socketPath", fk.sock, "-timeout",
	    "200ms");
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "DeadlineExceeded"));
	run_free(&r);
	run_cli(&r, 6, "api", "fetch", "x509", "-socketPath", fk.sock,
	    "-timeout=200ms");
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "rpc error: code = DeadlineExceeded"));
	run_free(&r);

	/* SIGINT ends the watch cleanly, with status 0. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(300000);
		(void)kill(getppid(), SIGINT);
		_exit(0);
	}
	run_cli(&r, 6, "api", "watch", "-socketPath", fk.sock, "-timeout",
	    "0");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	run_free(&r);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	signal(SIGINT, SIG_DFL);

	run_cli(&r, 4, "healthcheck", "-verbose", "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "Checking agent health...\n");
	assert_string_equal(r.err, "Agent is unhealthy: agent returned status "
	    "\"NOT_SERVING\"\n");
	run_free(&r);
	fake_stop(&fk);
}

/* Whatever the agent sends, the client reports it and does not crash. */
static void
test_cmd_hostile(void **state)
{
	struct fake	 fk;
	struct run	 r;

	fake_start_server(&fk, FAKE_HOSTILE);
	run_cli(&r, 4, "api", "fetch", "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "malformed X509SVIDResponse from the "
	    "agent\n");
	run_free(&r);
	/* The watch reports a bad update and goes on with the next ones. */
	run_cli(&r, 4, "api", "watch", "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.out, "Received 1 svid after "));
	assert_non_null(strstr(r.err, "malformed X509SVIDResponse"));
	assert_non_null(strstr(r.err, "PermissionDenied"));
	run_free(&r);
	run_cli(&r, 7, "api", "fetch", "jwt", "-audience", "junk,b",
	    "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "malformed token for " ID_W));
	run_free(&r);
	run_cli(&r, 7, "api", "fetch", "jwt", "-audience", "a,b",
	    "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "bundle for " TD " is not a JWK set\n");
	run_free(&r);
	run_cli(&r, 9, "api", "validate", "jwt", "-audience", "svc", "-svid",
	    P.jwt, "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "malformed ValidateJWTSVIDResponse from "
	    "the agent\n");
	run_free(&r);
	run_cli(&r, 5, "api", "fetch", "wit", "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "rpc error: code = Internal desc = the "
	    "stream ended without a response\n");
	run_free(&r);
	run_cli(&r, 3, "healthcheck", "-socketPath", fk.sock);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "Agent is unhealthy: unable to determine "
	    "health: rpc error: code = Internal desc = more than one response "
	    "message\n");
	run_free(&r);
	fake_stop(&fk);
}

static void
test_cmd_errors(void **state)
{
	struct run r;

	run_cli(&r, 4, "api", "fetch", "-socketPath", "/nonexistent/a.sock");
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "rpc error: code = Unavailable desc = "
	    "connection error: dial unix /nonexistent/a.sock: connect: no "
	    "such file or directory\n");
	run_free(&r);
	run_cli(&r, 3, "healthcheck", "-socketPath", "/nonexistent/a.sock");
	assert_int_equal(r.rc, 1);
	assert_true(strncmp(r.err, "Agent is unhealthy: ", 20) == 0);
	assert_non_null(strstr(r.err, "/nonexistent/a.sock"));
	run_free(&r);
	assert_int_equal(setenv(CLI_ENDPOINT_ENV, "unix:relative", 1), 0);
	run_cli(&r, 2, "api", "watch");
	assert_int_equal(unsetenv(CLI_ENDPOINT_ENV), 0);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "invalid SPIFFE_ENDPOINT_SOCKET "
	    "\"unix:relative\""));
	run_free(&r);
	run_cli(&r, 2, "api", "bogus");
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "unknown command \"api bogus\""));
	run_free(&r);
	run_cli(&r, 1, "api");
	assert_int_equal(r.rc, 1);
	run_free(&r);
	run_cli(&r, 2, "api", "-h");
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "validate jwt"));
	run_free(&r);
	run_cli(&r, 3, "api", "validate", "x509");
	assert_int_equal(r.rc, 1);
	run_free(&r);
	assert_true(agent_cli_is_verb("api"));
	assert_true(agent_cli_is_verb("healthcheck"));
	assert_false(agent_cli_is_verb("run"));
	assert_false(agent_cli_is_verb(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_formatting),
		cmocka_unit_test(test_struct_json),
		cmocka_unit_test(test_struct_deep),
		cmocka_unit_test(test_jwt_payload),
		cmocka_unit_test(test_x509_output),
		cmocka_unit_test(test_x509_bad),
		cmocka_unit_test(test_x509_write),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test_teardown(test_cmd_fetch_x509, fake_teardown),
		cmocka_unit_test_teardown(test_cmd_jwt, fake_teardown),
		cmocka_unit_test_teardown(test_cmd_wit, fake_teardown),
		cmocka_unit_test_teardown(test_cmd_watch, fake_teardown),
		cmocka_unit_test_teardown(test_cmd_hostile, fake_teardown),
		cmocka_unit_test(test_cmd_errors),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
