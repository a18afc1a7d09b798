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
/*
 * JSON documents hold private JWKs and the key file's contents: make
 * jansson wipe what it frees.  Once, before any JSON is made.
 */
void	 secret_json_init(void);

#endif /* WICK_XMALLOC_H */
