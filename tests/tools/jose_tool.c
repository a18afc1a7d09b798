/*
 * jose_tool.c: our JOSE code on the command line, for the PyJWT interop
 * test.
 *   jose_tool sign DIR      keys (P-256, RSA-2048), jwks.json, a private
 *                           P-256 PEM for the peer, and tokens we signed
 *   jose_tool verify JWKS TOKEN AUDIENCE
 *                           prints "OK <sub>" or "ERROR <why>"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "jose.h"

static void
write_str(const char *dir, const char *name, const char *s)
{
	char	 path[1024];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fputs(s, f) == EOF ||
	    fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static int
cmd_sign(const char *dir)
{
	struct jose_keyset	 ks;
	struct jose_key		*ec, *rsa;
	EVP_PKEY		*pec, *prsa, *peer;
	json_t			*claims, *jwks;
	char			*tok, *s, path[1024];
	FILE			*f;
	int64_t			 now = (int64_t)time(NULL);

	jose_keyset_init(&ks);
	pec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	prsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pec == NULL || prsa == NULL || peer == NULL ||
	    jose_key_from_pkey(pec, "ec-1", &ec) != 0 ||
	    jose_key_from_pkey(prsa, "rsa-1", &rsa) != 0)
		return 1;
	claims = json_pack("{s:s, s:[s,s], s:I, s:I}", "sub",
	    "spiffe://example.org/workload", "aud", "svc-a", "svc-b", "exp",
	    (json_int_t)(now + 300), "iat", (json_int_t)now);
	if (jose_sign(ec, "JWT", claims, &tok) != 0)
		return 1;
	write_str(dir, "token-es256.txt", tok);
	free(tok);
	if (jose_sign(rsa, "JWT", claims, &tok) != 0)
		return 1;
	write_str(dir, "token-rs256.txt", tok);
	free(tok);
	/* The peer's key joins our JWKS, so we can verify what it signs. */
	{
		struct jose_key *pk;

		if (jose_key_from_pkey(peer, "peer-1", &pk) != 0 ||
		    jose_keyset_add(&ks, pk) != 0)
			return 1;
	}
	if (jose_keyset_add(&ks, ec) != 0 || jose_keyset_add(&ks, rsa) != 0 ||
	    jose_keyset_to_jwks(&ks, &jwks) != 0)
		return 1;
	s = json_dumps(jwks, JSON_INDENT(1));
	write_str(dir, "jwks.json", s);
	free(s);
	snprintf(path, sizeof(path), "%s/peer.key", dir);
	if ((f = fopen(path, "w")) == NULL ||
	    !PEM_write_PrivateKey(f, peer, NULL, NULL, 0, NULL, NULL) ||
	    fclose(f) != 0)
		return 1;
	json_decref(jwks);
	json_decref(claims);
	jose_keyset_cleanup(&ks);
	EVP_PKEY_free(pec);
	EVP_PKEY_free(prsa);
	EVP_PKEY_free(peer);
	return 0;
}

static char *
slurp(const char *path)
{
	FILE	*f;
	char	*buf;
	size_t	 n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	buf = calloc(1, JOSE_MAX_JWKS_SIZE + 1);
	n = buf != NULL ? fread(buf, 1, JOSE_MAX_JWKS_SIZE, f) : 0;
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

static int
cmd_verify(const char *jwks_path, const char *tok_path, const char *aud)
{
	const struct jose_verify_opts	 opts = { { "", "JWT", "JOSE" }, 3 };
	struct jose_keyset		 ks;
	json_t				*claims = NULL;
	char				*jwks, *tok, why[256];
	const char			*w;
	int				 r;

	jose_keyset_init(&ks);
	if ((jwks = slurp(jwks_path)) == NULL || (tok = slurp(tok_path)) ==
	    NULL)
		return 2;
	if (jose_keyset_parse(jwks, strlen(jwks), &ks, &w) != 0) {
		printf("ERROR jwks: %s\n", w);
		return 1;
	}
	r = jose_verify(tok, &ks, &opts, &claims, NULL, why, sizeof(why));
	if (r == 0)
		r = jose_check_jwt_claims(claims, aud, (int64_t)time(NULL),
		    why, sizeof(why));
	if (r != 0)
		printf("ERROR %s\n", why);
	else
		printf("OK %s\n", json_string_value(json_object_get(claims,
		    "sub")));
	json_decref(claims);
	jose_keyset_cleanup(&ks);
	free(jwks);
	free(tok);
	return r == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "sign") == 0)
		return cmd_sign(argv[2]);
	if (argc == 5 && strcmp(argv[1], "verify") == 0)
		return cmd_verify(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: jose_tool sign DIR | verify JWKS TOKEN AUD\n");
	return 2;
}
