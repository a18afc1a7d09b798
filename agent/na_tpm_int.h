/*
 * na_tpm_int.h: what tests and the test tool need from a TPM session
 * beyond na_tpm.h: test switches (an AK the server must refuse), and its
 * ESYS context and object handles, to run oracle operations
 * (MakeCredential by the TPM, PCR reads and extends) on the same
 * connection.  The daemon never uses these.
 */
#ifndef WICK_NA_TPM_INT_H
#define WICK_NA_TPM_INT_H

#include <tss2/tss2_esys.h>

#include "na_tpm.h"

/* na_tpm_identity_flags() flags. */
#define NA_TPM_AK_UNRESTRICTED	0x1	/* an AK without restricted, which
					   the server must refuse */

/*
 * na_tpm_identity() with test switches: flags 0 is na_tpm_identity().
 */
int		 na_tpm_identity_flags(struct na_tpm *, unsigned flags,
		    struct buf *ek_cert, struct buf *ek_pub,
		    struct buf *ak_pub, char *why, size_t whylen) WICK_WUR;

/* Borrowed; valid until na_tpm_close(). */
ESYS_CONTEXT	*na_tpm_esys(struct na_tpm *);
/* ESYS_TR_NONE until na_tpm_identity() (AK) or na_tpm_endorsement(). */
ESYS_TR		 na_tpm_ek_handle(const struct na_tpm *);
ESYS_TR		 na_tpm_ak_handle(const struct na_tpm *);

/*
 * Put "what: <Tss2_RC_Decode text> (0x...)" into why; returns the
 * WICK_ERR_* that rc maps to.
 */
int		 na_tpm_rc_why(TSS2_RC rc, const char *what, char *why,
		    size_t whylen);

#endif /* WICK_NA_TPM_INT_H */
