/*
 * tpmv.h: the server's side of TPM node attestation (type "tpm").
 *
 * The exchange (proto/tpm.proto) runs in one AttestAgent stream:
 *
 * 1. The agent sends a TpmAttestation: the EK certificate (optional), the
 *    EK and a fresh AK (marshalled TPM2B_PUBLIC), PCRs it asks for.
 * 2. tpmv_params() checks the EK (TCG template L-1, RSA-2048) and that
 *    it is trusted: its certificate chains to ca_path, or its pub_hash
 *    is in hash_path; checks the AK (a restricted signing key); and
 *    makes a TpmChallenge: a fresh secret sealed to the EK and the AK's
 *    name (MakeCredential), a nonce, the PCRs to quote.
 * 3. The agent answers with a TpmChallengeResponse: the secret
 *    (ActivateCredential) and a quote by the AK whose qualifyingData is
 *    SHA-256(nonce || the CSR's SubjectPublicKeyInfo).
 * 4. tpmv_answer() checks both; the node's pub_hash and selectors
 *    come out.
 *
 * Loop-free and without a TPM: tss2-mu parses the TPM structures, OpenSSL
 * does the rest.  The configuration is immutable once loaded and may be
 * shared by threads; a state is used by one thread at a time.
 *
 * What a peer sends is bounded before anything is allocated for it
 * (TPMV_MAX_*); a state holds a few hundred bytes and the AK.  Every
 * rejection returns a negative WICK_ERR_* and a sentence in why (at most
 * whylen bytes, TPMV_MAX_WHY are enough) that names what is wrong and
 * never holds a secret or a server path, so that it can go to the agent
 * and to the audit log as it is.  Codes:
 *	WICK_ERR_LIMIT		a field is larger than its TPMV_MAX_*
 *	WICK_ERR_INVALID	malformed, or not what the protocol asks for
 *	WICK_ERR_UNSUPPORTED	a key or scheme wick does not accept
 *	WICK_ERR_PERM		the EK is not trusted, or a proof failed
 *				(wrong secret, quote not for this challenge)
 *	WICK_ERR_SIGNATURE	the quote's signature does not verify
 *	WICK_ERR_STATE		the challenge was answered already
 *	WICK_ERR_ALLOC, WICK_ERR_CRYPTO, WICK_ERR_INTERNAL: ours, not the
 *				peer's
 */
#ifndef WICK_TPMV_H
#define WICK_TPMV_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "selector.h"

#define TPMV_MAX_PAYLOAD	(16 * 1024)	/* packed TpmAttestation */
#define TPMV_MAX_RESPONSE	(8 * 1024)	/* TpmChallengeResponse */
#define TPMV_MAX_EK_CERT	(8 * 1024)	/* EK certificate, DER */
#define TPMV_MAX_PUBLIC	1024	/* a marshalled TPM2B_PUBLIC */
#define TPMV_MAX_QUOTE	1024	/* a marshalled TPM2B_ATTEST */
#define TPMV_MAX_SIGNATURE	1024	/* marshalled TPMT_SIGNATURE */
#define TPMV_MAX_SPKI		(16 * 1024)	/* CSR key, DER */
#define TPMV_MAX_PCRS		24	/* sha256 PCRs 0..23 */
#define TPMV_MAX_CA_FILES	256	/* files in a ca_path directory */
#define TPMV_MAX_CA_CERTS	1024	/* certificates in ca_path */
#define TPMV_MAX_CHAIN	8	/* EK certificate up to its root */
#define TPMV_MAX_CN		256	/* bytes of an issuer CN */
#define TPMV_MAX_MANUFACTURER	64	/* manufacturer id */
#define TPMV_MAX_CHALLENGE	1024	/* a packed TpmChallenge */
#define TPMV_MAX_WHY		512	/* enough for any why */

#define TPMV_SECRET_LEN	32	/* the credential, and the seed */
#define TPMV_NONCE_LEN	32
#define TPMV_PCR_LEN		32	/* a sha256 PCR value */
#define TPMV_PUB_HASH_LEN	64	/* hex digits of SHA-256 */

struct tpmv_config;
struct tpmv_state;

/* What an accepted node is. */
struct tpmv_result {
	/* Lower-case hex SHA-256 of the EK's DER SubjectPublicKeyInfo. */
	char			pub_hash[TPMV_PUB_HASH_LEN + 1];
	int			ek_cert_verified; /* else: hash_path */
	/*
	 * Type "tpm": pub_hash:<hex>; when the EK certificate chained to
	 * ca_path ek_cert:issuer:cn:<CN>, ek_cert:ca:fingerprint:<hex
	 * SHA-256 of each CA certificate of the chain> and
	 * manufacturer:<id> (TPM SAN attribute 2.23.133.2.1, as
	 * "id:00001014"); a CN or id that cannot be a selector value is
	 * left out.  Per quoted PCR pcr:sha256:<n>:<hex>.
	 */
	struct selector_set	selectors;
};

/*
 * The NodeAttestor "tpm" plugin_data, loaded once at start-up.  At least
 * one of ca_path and hash_path; NULL for an absent option.
 *
 * ca_path: a PEM file, or a directory whose regular files are all PEM
 * files (names starting with "." are skipped).  Self-signed certificates
 * are the trust anchors, the others intermediates that a chain may use
 * (an agent's certificates never are).  Each file must be a trusted path
 * (secpath_check_file()).  Read once: a change needs a restart.
 *
 * hash_path: a directory holding one file per allowed EK, named by its
 * pub_hash.  Looked up at each attestation (one path check), so that a
 * hash added or removed counts at once, and nothing is held per hash.  A
 * listed file must itself be a trusted path; one that is not refuses
 * the EK.
 *
 * pcrs: "sha256:N,N,..." (common/pcrsel.h), the PCRs every agent must
 * quote, besides those it asks for itself.
 *
 * tss2-mu writes errors about malformed structures to stderr unless
 * TSS2_LOG says otherwise: those would be log lines any peer could cause,
 * so when TSS2_LOG is unset this sets it to "marshal+none".  Call it at
 * start-up, before threads and before anything else uses tss2-mu (which
 * reads TSS2_LOG once).  On error why names the option and value.
 */
int	 tpmv_config_load(const char *ca_path, const char *hash_path,
	    const char *pcrs, struct tpmv_config **out, char *why,
	    size_t whylen) WICK_WUR;
void	 tpmv_config_free(struct tpmv_config *);

/*
 * Check a TpmAttestation (payload) and make its challenge, appended to
 * challenge as a packed TpmChallenge (at most TPMV_MAX_CHALLENGE
 * bytes).  csr_spki is the DER SubjectPublicKeyInfo of the CSR's key, to
 * which the quote must be bound; now (unix seconds) is when the EK
 * certificate chain must be valid.  *state gets what the answer is
 * checked against; it belongs to the caller (tpmv_state_free()).
 *
 * The EK is trusted when its certificate verifies to ca_path or, failing
 * that, when its pub_hash is in hash_path.  An EK certificate is never
 * required, but one that is sent must be for the EK; when it carries an
 * extended key usage, that must include tcg-kp-EKCertificate
 * (2.23.133.8.1): a certificate its CA limited to other uses is not an
 * EK certificate.  Validity is checked at now; purposes are not.
 */
int	 tpmv_params(const struct tpmv_config *, const uint8_t *payload,
	    size_t len, const uint8_t *csr_spki, size_t spki_len, int64_t now,
	    struct tpmv_state **state, struct buf *challenge, char *why,
	    size_t whylen) WICK_WUR;

/*
 * The node's pub_hash (borrowed, valid until the state is freed), and
 * the audit fields of the attempt as a new JSON object for the caller:
 * {"type": "tpm", "pub_hash": ..., "trusted_by": "ek_cert" | "hash_path"}.
 */
const char	*tpmv_state_pub_hash(const struct tpmv_state *);
json_t		*tpmv_state_detail(const struct tpmv_state *);
/* Wipes the secret and the nonce; NULL does nothing. */
void		 tpmv_state_free(struct tpmv_state *);

/*
 * Check a TpmChallengeResponse against state: the secret, then the quote
 * (signed by the AK, TPM-generated, a quote, qualifyingData as above,
 * exactly the PCRs of the challenge, their digest over pcr_values).
 * A state takes one answer: any answer, right or wrong, spends it
 * (WICK_ERR_STATE after that).  *out is initialized here (what it held
 * is not freed) and filled only on success; the caller cleans it up.
 */
int	 tpmv_answer(struct tpmv_state *, const uint8_t *response,
	    size_t len, struct tpmv_result *out, char *why, size_t whylen)
	    WICK_WUR;

void	 tpmv_result_init(struct tpmv_result *);
void	 tpmv_result_cleanup(struct tpmv_result *);

#endif /* WICK_TPMV_H */
