/*
 * der.h: the few DER rules wick reads and writes by hand, where going
 * through OpenSSL's ASN.1 objects costs more than the signature they
 * carry (pkey.c's requests, ca.c's SVIDs).  Definite lengths of at most
 * two bytes (64 KiB), one-byte tags: what those structures use.
 */
#ifndef WICK_DER_H
#define WICK_DER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define DER_BOOL	0x01
#define DER_INT		0x02
#define DER_BITS	0x03
#define DER_OCTETS	0x04
#define DER_OID		0x06
#define DER_UTF8	0x0c
#define DER_PRINTABLE	0x13
#define DER_UTCTIME	0x17
#define DER_GENTIME	0x18
#define DER_SEQ		0x30
#define DER_SET		0x31
#define DER_MAX_LEN	0xffff

struct der {
	const uint8_t	*tlv;		/* the whole element */
	size_t		 tlvlen;
	const uint8_t	*v;		/* its contents */
	size_t		 len;
	int		 tag;
};

/*
 * The next element of [*p, end) into d, *p moved past it: -1 unless its
 * tag is one byte and its length definite, minimal and inside end.
 */
int	 der_next(const uint8_t **p, const uint8_t *end, struct der *d);
/* d is tag with exactly the len contents v. */
int	 der_is(const struct der *d, int tag, const void *v, size_t len);

/* Append an element: tag, length, the n bytes of v (WICK_ERR_LIMIT past
 * DER_MAX_LEN). */
int	 der_put(struct buf *, int tag, const void *v, size_t n) WICK_WUR;
/* Append an element whose contents are all of inner (then emptied). */
int	 der_wrap(struct buf *, int tag, struct buf *inner) WICK_WUR;

#endif /* WICK_DER_H */
