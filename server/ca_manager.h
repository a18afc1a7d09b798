/*
 * ca_manager.h: the server's signing authorities and their rotation.
 *
 * Three kinds, each with two slots (A, B) as in SPIRE: the X.509 CA, the
 * JWT-SVID signing key and the WIT-SVID signing key.  Each slot's status
 * is PREPARED, ACTIVE or OLD.  ca_manager_tick(now), run every 10 s:
 *   1. no active authority: prepare one and activate it at once;
 *   2. no prepared one and now > NotAfter(active) - min(life/2, 30 d):
 *      prepare the next (it goes into the bundle at once);
 *   3. now > NotAfter(active) - min(life/6, 7 d): activate the prepared
 *      one; the previous becomes OLD.
 * Keys live in the key manager under "x509-A", "jwt-B", ...; everything
 * else (certificates, kids, times, statuses) is the journal, a JSON
 * document the caller stores (ds_ca_journal_set) and hands back on the
 * next start, so a restart keeps the same authorities.
 *
 * X.509 CAs are self-signed, or signed by an upstream authority (cert +
 * key, disk UpstreamAuthority) whose chain then follows every SVID.
 * JWT and WIT keys have a lifetime of ca_ttl too and a kid of 32 random
 * characters [A-Za-z0-9].  Time is an argument.
 */
#ifndef WICK_CA_MANAGER_H
#define WICK_CA_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "ca.h"
#include "err.h"
#include "jose.h"
#include "keymgr.h"
#include "pkey.h"

#define CA_MANAGER_MAX_JOURNAL	(1024 * 1024)
#define CA_PREPARE_MAX		(30 * 86400)	/* min(life/2, 30 d) */
#define CA_ACTIVATE_MAX		(7 * 86400)	/* min(life/6, 7 d) */
#define CA_KID_LEN		32

enum ca_kind {
	CA_KIND_X509 = 0,
	CA_KIND_JWT = 1,
	CA_KIND_WIT = 2,
};
#define CA_NKINDS	3

enum ca_status {
	CA_STATUS_NONE = 0,
	CA_STATUS_PREPARED = 2,
	CA_STATUS_ACTIVE = 3,
	CA_STATUS_OLD = 4,
};

struct ca_manager_config {
	const char		*trust_domain;	/* "example.org" */
	enum pkey_type		 ca_key_type;	/* X.509 CA */
	enum pkey_type		 jwt_key_type;	/* JWT and WIT keys */
	int64_t			 ca_ttl;	/* seconds */
	struct ca_subject	 subject;
	/* Upstream authority: all NULL for a self-signed root.  chain is
	 * upstream_cert's own chain up to (not including) the root; roots
	 * are the upstream trust anchors that go into the bundle. */
	X509			*upstream_cert;
	EVP_PKEY		*upstream_key;
	STACK_OF(X509)		*upstream_chain;
	STACK_OF(X509)		*upstream_roots;
};

/* A read-only view of one authority. */
struct ca_authority {
	enum ca_kind	 kind;
	char		 slot;		/* 'A' or 'B' */
	enum ca_status	 status;
	int64_t		 not_before;
	int64_t		 not_after;
	/* X.509: */
	X509		*cert;
	EVP_PKEY	*key;
	/* X.509: what its SVIDs share, made on first use
	 * (ca_manager_svid_signer()). */
	struct ca_svid_signer *signer;
	/* JWT / WIT: the signing key with its kid; public for the bundle. */
	struct jose_key	*jkey;
	char		 kid[CA_KID_LEN + 1];	/* X.509: SKID hex prefix */
};

struct ca_manager;

/*
 * Create the manager; journal (may be NULL/0 on first start) is what
 * ca_manager_journal() produced earlier.  The configuration is copied.
 * A journal whose keys are missing from the key manager drops those
 * authorities with a warning (they are prepared anew).
 */
int	 ca_manager_new(const struct ca_manager_config *, struct keymgr *,
	    const uint8_t *journal, size_t journal_len,
	    struct ca_manager **out) WICK_WUR;
void	 ca_manager_free(struct ca_manager *);

/*
 * Apply the rotation rules at now.  *changed (if not NULL) is set to 1
 * when an authority was prepared or activated: the caller then saves the
 * journal and refreshes the bundle.
 */
int	 ca_manager_tick(struct ca_manager *, int64_t now, int *changed)
	    WICK_WUR;

/* The active authority of a kind; NULL before the first tick. */
const struct ca_authority *ca_manager_active(const struct ca_manager *,
	    enum ca_kind);
/*
 * The active X.509 authority's SVID signer (ca_svid_signer_new()), made
 * on first use and kept until the authority goes: NULL without an active
 * authority, or when its key is not EC P-256/P-384.  From the thread that
 * ticks the manager; the signer may then be used by any thread until the
 * next tick.
 */
const struct ca_svid_signer *ca_manager_svid_signer(struct ca_manager *);
/* Every authority of every kind that is not NONE (for the bundle):
 * calls fn in kind, slot order. */
typedef void ca_authority_fn(void *arg, const struct ca_authority *);
void	 ca_manager_foreach(const struct ca_manager *, ca_authority_fn *,
	    void *);

/* Serialize the journal (JSON) into out. */
int	 ca_manager_journal(const struct ca_manager *, struct buf *out)
	    WICK_WUR;

/* The chain that follows an SVID signed by the active X.509 CA: the CA
 * certificate itself when it is an intermediate, then upstream_chain.
 * Empty for a self-signed root.  Borrowed. */
STACK_OF(X509) *ca_manager_svid_chain(const struct ca_manager *);

/* Longest SVID lifetime that rotation never cuts short: min(ca_ttl/6,
 * 7 d).  The server warns when a default TTL exceeds it. */
int64_t	 ca_manager_max_svid_ttl(const struct ca_manager *);

#endif /* WICK_CA_MANAGER_H */
