/*
 * tpmtest.h: TPM operations that tests need and the agent never does:
 * the TPM itself as a MakeCredential oracle, PCR extend and read, and
 * finding (and flushing) transient objects and sessions left in a TPM
 * that has no resource manager (swtpm through its own TCTI, P4).
 * Shared by the unit tests and wick-testtpm.
 */
#ifndef WICK_TPMTEST_H
#define WICK_TPMTEST_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_esys.h>

#include "buf.h"
#include "err.h"
#include "na_tpm.h"

#define TPMTEST_ENV_TCTI	"WICK_TEST_TCTI"	/* swtpm.py run */
#define TPMTEST_ENV_DIR		"WICK_TEST_TPM_DIR"	/* its template */

/* A bare ESYS connection. */
struct tpmtest {
	TSS2_TCTI_CONTEXT	*tcti;
	ESYS_CONTEXT		*esys;
};

int	 tpmtest_open(const char *tcti, struct tpmtest *, char *why,
	    size_t whylen) WICK_WUR;
void	 tpmtest_close(struct tpmtest *);

/*
 * Count the transient objects and the loaded or saved sessions in the
 * TPM; with flush set, flush them too (counts are from before).
 */
int	 tpmtest_leftovers(ESYS_CONTEXT *, int flush, uint32_t *objects,
	    uint32_t *sessions, char *why, size_t whylen) WICK_WUR;

/* PCR_Extend of the sha256 bank of pcr with digest (32 bytes). */
int	 tpmtest_pcr_extend(ESYS_CONTEXT *, uint32_t pcr,
	    const uint8_t digest[32], char *why, size_t whylen) WICK_WUR;
/* The sha256 value of pcr. */
int	 tpmtest_pcr_read(ESYS_CONTEXT *, uint32_t pcr, uint8_t out[32],
	    char *why, size_t whylen) WICK_WUR;

/*
 * The TPM as the server: LoadExternal(ek_pub) and MakeCredential of
 * credential to the name of the session's AK; blob gets the marshalled
 * TPM2B_ID_OBJECT, enc the TPM2B_ENCRYPTED_SECRET.
 */
int	 tpmtest_make_credential(struct na_tpm *, const uint8_t *ek_pub,
	    size_t ek_pub_len, const uint8_t *credential, size_t len,
	    struct buf *blob, struct buf *enc, char *why, size_t whylen)
	    WICK_WUR;

/* Remove an NV index defined by the platform (swtpm: empty auth). */
int	 tpmtest_nv_undefine(ESYS_CONTEXT *, uint32_t index, char *why,
	    size_t whylen) WICK_WUR;

/* The AK name, 0x000b || SHA-256(TPMT_PUBLIC), of a marshalled TPM2B_PUBLIC. */
int	 tpmtest_name(const uint8_t *pub, size_t len, uint8_t out[34])
	    WICK_WUR;

#endif /* WICK_TPMTEST_H */
