/*
 * bench_floor.c: the memory a process holds for OpenSSL alone, as a
 * reference for the agent's.
 *
 *	bench_floor
 *
 * Does what any TLS client with one P-256 key does and nothing else:
 * initialises libssl, makes a TLS client context and generates a key;
 * then prints its resident set (VmRSS, KiB) as one JSON object.  The
 * agent does all of this and more, so its idle RSS minus this figure is
 * what the agent itself adds.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

static long
rss_kib(void)
{
	FILE	*f;
	char	 line[256];
	long	 v = -1;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0 &&
		    sscanf(line + 6, "%ld", &v) != 1)
			v = -1;
	fclose(f);
	return v;
}

int
main(void)
{
	SSL_CTX		*ctx;
	EVP_PKEY	*key;
	long		 rss;

	if (OPENSSL_init_ssl(0, NULL) != 1 ||
	    (ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    (key = EVP_EC_gen("P-256")) == NULL) {
		fprintf(stderr, "bench_floor: OpenSSL failed\n");
		return 1;
	}
	rss = rss_kib();
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	if (rss < 0) {
		fprintf(stderr, "bench_floor: cannot read VmRSS\n");
		return 1;
	}
	printf("{\"rss_kib\":%ld}\n", rss);
	return 0;
}
