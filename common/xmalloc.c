/*
 * xmalloc.c: allocation wrappers that stop on failure, and wiping.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "log.h"
#include "xmalloc.h"

/* Set once by secret_json_init(), before any other thread exists. */
static int	crypto_frees_wiped;

void *
xmalloc(size_t n)
{
	void *p;

	if (n == 0)
		fatal("zero-size allocation");
	if ((p = malloc(n)) == NULL)
		fatal("out of memory allocating %zu bytes", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		fatal("zero-size allocation");
	if (SIZE_MAX / nmemb < size)
		fatal("allocation overflow: %zu * %zu", nmemb, size);
	if ((p = calloc(nmemb, size)) == NULL)
		fatal("out of memory allocating %zu * %zu bytes", nmemb, size);
	return p;
}

void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		fatal("zero-size allocation");
	if (SIZE_MAX / nmemb < size)
		fatal("allocation overflow: %zu * %zu", nmemb, size);
	if ((p = realloc(ptr, nmemb * size)) == NULL)
		fatal("out of memory allocating %zu * %zu bytes", nmemb, size);
	return p;
}

char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		fatal("out of memory duplicating a string");
	return p;
}

void
wipe(void *p, size_t n)
{
	/* glibc's is a memset the compiler may not drop: as sure as
	 * OPENSSL_cleanse() and several times faster on every call's
	 * buffers. */
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

void
freezero(void *p, size_t n)
{
	if (p == NULL)
		return;
	wipe(p, n);
	free(p);
}

void
secret_free(void *p)
{
	if (p != NULL)
		freezero(p, malloc_usable_size(p));
}

void *
secret_realloc(void *p, size_t n)
{
	void	*q;
	size_t	 old;

	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		secret_free(p);
		return NULL;
	}
	if ((q = malloc(n)) == NULL)
		return NULL;
	old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	secret_free(p);
	return q;
}

void
secret_json_init(void)
{
	CRYPTO_malloc_fn	m;
	CRYPTO_realloc_fn	r;
	CRYPTO_free_fn		f;

	json_set_alloc_funcs(malloc, secret_free);
	/* cjose serializes tokens and keys in buffers of its own.  It
	 * also makes OpenSSL allocate through these, which OpenSSL allows
	 * only before its first allocation: whether it did is asked. */
	cjose_set_alloc_funcs(malloc, secret_realloc, secret_free);
	CRYPTO_get_mem_functions(&m, &r, &f);
	crypto_frees_wiped = f != NULL && f != CRYPTO_free;
}

int
secret_crypto_frees(void)
{
	return crypto_frees_wiped;
}
