/*
 * na_tpm.h: the agent's side of TPM node attestation (type "tpm"), on
 * tpm2-tss ESYS.
 *
 * A session is one connection to the TPM through a TCTI ("device:/dev/
 * tpmrm0" on a host, "swtpm:path=SOCKET" in tests) and the transient
 * objects made for one attestation:
 *
 *	na_tpm_open()		connect; never sends TPM2_Startup (the
 *				firmware or the simulator's flags did)
 *	na_tpm_identity()	EK certificate, EK (TCG template L-1,
 *				RSA-2048) and a fresh AK (ECC P-256,
 *				ECDSA-SHA256, restricted signing key under
 *				a storage primary that is flushed at once)
 *	na_tpm_answer()		ActivateCredential and a quote, for the
 *				server's challenge
 *	na_tpm_endorsement()	(instead of the two above) the EK alone,
 *				for "wick-agent tpm pubhash"
 *	na_tpm_close()		flush every transient object and session,
 *				disconnect
 *
 * Every call blocks for as long as the TPM takes (tens to hundreds of
 * milliseconds on a real one): run them off the event loop.  Nothing is
 * global: sessions on different threads are independent; one session is
 * used by one thread at a time.  TPM structures come and go in their TPM
 * wire form (Tss2_MU marshalling), as proto/tpm.proto carries them.
 *
 * Failures return a negative WICK_ERR_* and put a sentence in why (TPM
 * return codes decoded by Tss2_RC_Decode), never secrets.  Outputs are
 * reset on entry and hold something only on success.
 *
 * ESYS itself logs TPM errors to stderr unless TSS2_LOG says otherwise;
 * that is the environment's business, nothing here sets it.
 */
#ifndef WICK_NA_TPM_H
#define WICK_NA_TPM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define NA_TPM_DEFAULT_TCTI	"device:/dev/tpmrm0"
#define NA_TPM_MAX_TCTI		512	/* bytes of a TCTI string */
#define NA_TPM_MAX_WHY		256	/* a useful size for why */
#define NA_TPM_MAX_EK_CERT	4096	/* bytes of the EK certificate NV */
#define NA_TPM_MAX_PUBLIC	1024	/* a marshalled TPM2B_PUBLIC */
#define NA_TPM_MAX_BLOB		1024	/* credential_blob, encrypted_secret */
#define NA_TPM_MIN_NONCE	16
#define NA_TPM_MAX_NONCE	64
#define NA_TPM_MAX_SPKI		(16 * 1024)	/* the CSR's key, DER */
#define NA_TPM_MAX_PCRS		24	/* sha256 PCRs 0..23 */
#define NA_TPM_PCR_LEN		32	/* a sha256 PCR value */
#define NA_TPM_QUOTE_TRIES	3	/* PCRs changed under the quote */
#define NA_TPM_PUB_HASH_LEN	64	/* hex digits */

#define NA_TPM_EK_CERT_NV	0x01c00002u	/* RSA-2048 EK certificate */

struct na_tpm;

/* The answer to a challenge (TpmChallengeResponse). */
struct na_tpm_answer {
	struct buf	 secret;	/* what ActivateCredential recovered;
					   a secret buf (wiped when freed) */
	struct buf	 quote;		/* TPM2B_ATTEST */
	struct buf	 signature;	/* TPMT_SIGNATURE by the AK */
	size_t		 npcrs;		/* values of the quoted PCRs, */
	uint8_t		 pcr_values[NA_TPM_MAX_PCRS][NA_TPM_PCR_LEN];
					/* in the order asked */
};

void	 na_tpm_answer_init(struct na_tpm_answer *);
void	 na_tpm_answer_cleanup(struct na_tpm_answer *);

/*
 * Load tpm2-tss (its ESYS, marshalling, return-code and TCTI-loader
 * libraries), once per process; na_tpm_open() and na_tpm_pub_hash() do
 * it themselves.  WICK_ERR_CONFIG, why naming the missing library or
 * symbol, when it cannot be.
 */
int	 na_tpm_load(char *why, size_t whylen) WICK_WUR;

/*
 * Connect to the TPM through tcti (NULL: NA_TPM_DEFAULT_TCTI).
 * WICK_ERR_UNAVAILABLE when the TCTI cannot be loaded or reached; why
 * does not repeat the TCTI string.
 */
int	 na_tpm_open(const char *tcti, struct na_tpm **out, char *why,
	    size_t whylen) WICK_WUR;

/*
 * Flush every transient object and session this session made, then
 * disconnect.  na_tpm_close(NULL) does nothing.
 */
void	 na_tpm_close(struct na_tpm *);

/*
 * The endorsement key only (for "tpm pubhash"): ek_cert gets the DER
 * certificate from NV NA_TPM_EK_CERT_NV, trimmed to its DER length
 * (empty when the TPM has none), ek_pub the marshalled TPM2B_PUBLIC of
 * the EK made with template L-1.  A certificate whose key is not that
 * EK is an error (WICK_ERR_INVALID).  The EK stays loaded for
 * na_tpm_identity().
 */
int	 na_tpm_endorsement(struct na_tpm *, struct buf *ek_cert,
	    struct buf *ek_pub, char *why, size_t whylen) WICK_WUR;

/*
 * EK as na_tpm_endorsement() plus a fresh AK, loaded until
 * na_tpm_close(); ak_pub gets its marshalled TPM2B_PUBLIC.  Once per
 * session, and not after na_tpm_endorsement() (WICK_ERR_STATE).
 */
int	 na_tpm_identity(struct na_tpm *, struct buf *ek_cert,
	    struct buf *ek_pub, struct buf *ak_pub, char *why, size_t whylen)
	    WICK_WUR;

/*
 * Answer the server's challenge (TpmChallenge) with the EK and AK of
 * na_tpm_identity(): recover the secret from credential_blob
 * (TPM2B_ID_OBJECT) and encrypted_secret (TPM2B_ENCRYPTED_SECRET) with
 * ActivateCredential, the EK authorized by a policy session satisfied by
 * PolicySecret(TPM_RH_ENDORSEMENT) with the empty endorsement password;
 * then quote the sha256 PCRs pcrs (strictly ascending, each below
 * NA_TPM_MAX_PCRS; there may be none) with the AK and qualifyingData =
 * SHA-256(nonce || csr_spki), csr_spki being the DER
 * SubjectPublicKeyInfo of the CSR's key (the TPM vouches for the key the
 * SVID is issued to), and read their values.
 *
 * The quote is checked here before it is returned (qualifying data,
 * selection, PCR digest); if the PCRs changed between the quote and the
 * read it is made again, up to NA_TPM_QUOTE_TRIES times.  Input that
 * does not parse exactly, or breaks the limits above, is
 * WICK_ERR_INVALID or WICK_ERR_LIMIT before any TPM command; a
 * credential the TPM refuses (not made for this EK and AK, tampered) is
 * WICK_ERR_PROTOCOL.  May be called again in the same session.
 */
int	 na_tpm_answer(struct na_tpm *, const uint8_t *credential_blob,
	    size_t credential_blob_len, const uint8_t *encrypted_secret,
	    size_t encrypted_secret_len, const uint8_t *nonce,
	    size_t nonce_len, const uint32_t *pcrs, size_t npcrs,
	    const uint8_t *csr_spki, size_t csr_spki_len,
	    struct na_tpm_answer *out, char *why, size_t whylen) WICK_WUR;

/*
 * The EK's pub hash: lower-case hex of SHA-256 over the DER
 * SubjectPublicKeyInfo of the RSA key in ek_pub (a marshalled
 * TPM2B_PUBLIC), as SPIRE's TPM plugin computes it; the agent ID is
 * spiffe://<td>/spire/agent/tpm/<hash>.
 */
int	 na_tpm_pub_hash(const uint8_t *ek_pub, size_t len,
	    char hex[NA_TPM_PUB_HASH_LEN + 1]) WICK_WUR;

#endif /* WICK_NA_TPM_H */
