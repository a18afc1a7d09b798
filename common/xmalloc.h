/*
 * xmalloc.h: allocation for daemon-internal state (startup, config,
 * long-lived objects).  These stop the process on failure.  Code reached
 * from a peer request uses plain malloc and returns WICK_ERR_ALLOC.
 */
#ifndef WICK_XMALLOC_H
#define WICK_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
/* Wipe then free; for anything that held a secret.  NULL is fine. */
void	 freezero(void *, size_t);
/* Wipe memory in a way the compiler cannot elide. */
void	 wipe(void *, size_t);
/* Wipe and free a block of malloc()'s (its whole usable size). */
void	 secret_free(void *);
/* realloc() that wipes the block it leaves (secret_free()). */
void	*secret_realloc(void *, size_t);
/*
 * JSON documents hold private JWKs, the key file's contents and tokens:
 * make jansson and cjose wipe what they free.  Once, before any JSON is
 * made.
 */
void	 secret_json_init(void);
/* 1 when secret_json_init() made OpenSSL's own frees wipe too. */
int	 secret_crypto_frees(void);

#endif /* WICK_XMALLOC_H */
