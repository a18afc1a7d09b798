/*
 * x509.c: X.509 helpers (PEM and DER loading, SPIFFE ID, fingerprint).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"
#include "encode.h"
#include "x509.h"
#include "xmalloc.h"

#define SPIFFE_SCHEME	"spiffe://"

/*
 * Read a whole file of at most max bytes into a heap buffer with a NUL
 * after the data.  With secret set the file must not be accessible by group
 * or others.  The caller frees (with freezero when secret).
 */
static int
read_file(const char *path, size_t max, int secret, uint8_t **out,
    size_t *lenp)
{
	struct stat	 st;
	uint8_t		*data = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd = -1, r;

	*out = NULL;
	*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		r = err_from_errno(-errno);
		log_error_f("%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		r = err_from_errno(-errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error_f("%s: not a regular file", path);
		r = WICK_ERR_INVALID;
		goto out;
	}
	if (secret && (st.st_mode & 077) != 0) {
		log_error_f("%s: key file is accessible by group or others",
		    path);
		r = WICK_ERR_PERM;
		goto out;
	}
	if ((uintmax_t)st.st_size > max) {
		log_error_f("%s: larger than %zu bytes", path, max);
		r = WICK_ERR_LIMIT;
		goto out;
	}
	/* One spare byte tells a file that grew past max from one at max. */
	if ((data = malloc(max + 2)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	for (;;) {
		n = read(fd, data + len, max + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = err_from_errno(-errno);
			log_error_f("%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			log_error_f("%s: larger than %zu bytes", path, max);
			r = WICK_ERR_LIMIT;
			goto out;
		}
	}
	data[len] = '\0';
	*out = data;
	*lenp = len;
	data = NULL;
	r = 0;
out:
	if (data != NULL)
		freezero(data, max + 2);
	if (fd != -1)
		close(fd);
	return r;
}

int
x509_certs_from_pem(const uint8_t *pem, size_t len, size_t max_certs,
    STACK_OF(X509) **out)
{
	STACK_OF(X509)	*sk = NULL;
	BIO		*bio = NULL;
	X509		*x = NULL;
	unsigned long	 e;
	int		 r;

	*out = NULL;
	if (len > TLS_MAX_PEM_FILE || len > INT_MAX)
		return WICK_ERR_LIMIT;
	if ((sk = sk_X509_new_null()) == NULL ||
	    (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	ERR_set_mark();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if ((size_t)sk_X509_num(sk) >= max_certs) {
			ERR_pop_to_mark();
			r = WICK_ERR_LIMIT;
			goto out;
		}
		if (!sk_X509_push(sk, x)) {
			ERR_pop_to_mark();
			r = WICK_ERR_ALLOC;
			goto out;
		}
		x = NULL;
	}
	/* The loop ends at "no start line" after the last certificate. */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE &&
	    sk_X509_num(sk) > 0) {
		ERR_pop_to_mark();
	} else {
		ERR_pop_to_mark();
		r = WICK_ERR_INVALID;
		goto out;
	}
	*out = sk;
	sk = NULL;
	r = 0;
out:
	X509_free(x);
	BIO_free(bio);
	sk_X509_pop_free(sk, X509_free);
	return r;
}

int
x509_load_certs_file(const char *path, size_t max_certs,
    STACK_OF(X509) **out)
{
	uint8_t	*data = NULL;
	size_t	 len;
	int	 r;

	*out = NULL;
	if ((r = read_file(path, TLS_MAX_PEM_FILE, 0, &data, &len)) != 0)
		return r;
	if ((r = x509_certs_from_pem(data, len, max_certs, out)) != 0)
		log_error_f("%s: %s", path, r == WICK_ERR_LIMIT ?
		    "too many certificates" : "no valid PEM certificates");
	free(data);
	return r;
}

int
x509_load_chain_file(const char *path, STACK_OF(X509) **out)
{
	return x509_load_certs_file(path, TLS_MAX_CHAIN, out);
}

int
x509_key_from_pem(const uint8_t *pem, size_t len, EVP_PKEY **out)
{
	BIO		*bio = NULL;
	EVP_PKEY	*pk = NULL;
	int		 r;

	*out = NULL;
	if (len > TLS_MAX_PEM_FILE || len > INT_MAX)
		return WICK_ERR_LIMIT;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return WICK_ERR_ALLOC;
	/* Handles PKCS#8 and the traditional EC/RSA forms; no passphrase. */
	ERR_set_mark();
	pk = PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, NULL, NULL);
	ERR_pop_to_mark();
	if (pk == NULL) {
		r = WICK_ERR_INVALID;
		goto out;
	}
	*out = pk;
	r = 0;
out:
	BIO_free(bio);
	return r;
}

int
x509_load_key_file(const char *path, EVP_PKEY **out)
{
	uint8_t	*data = NULL;
	size_t	 len = 0;
	int	 r;

	*out = NULL;
	if ((r = read_file(path, TLS_MAX_PEM_FILE, 1, &data, &len)) != 0)
		return r;
	if ((r = x509_key_from_pem(data, len, out)) != 0)
		log_error_f("%s: no valid unencrypted PEM private key", path);
	freezero(data, TLS_MAX_PEM_FILE + 2);
	return r;
}

int
x509_chain_from_der(const uint8_t *der, size_t len, size_t max_certs,
    STACK_OF(X509) **out)
{
	STACK_OF(X509)	*sk = NULL;
	X509		*x = NULL;
	const uint8_t	*p = der, *end = der + len;
	long		 avail;
	int		 r;

	*out = NULL;
	if (len == 0)
		return WICK_ERR_INVALID;
	if (max_certs > 0 && len > max_certs * (size_t)X509_MAX_CERT_DER)
		return WICK_ERR_LIMIT;
	if ((sk = sk_X509_new_null()) == NULL)
		return WICK_ERR_ALLOC;
	while (p < end) {
		if ((size_t)sk_X509_num(sk) >= max_certs) {
			r = WICK_ERR_LIMIT;
			goto out;
		}
		avail = (end - p) > X509_MAX_CERT_DER ? X509_MAX_CERT_DER :
		    (long)(end - p);
		ERR_set_mark();
		x = d2i_X509(NULL, &p, avail);
		ERR_pop_to_mark();
		if (x == NULL) {
			/* Either malformed or one certificate over the limit. */
			r = WICK_ERR_INVALID;
			goto out;
		}
		if (!sk_X509_push(sk, x)) {
			r = WICK_ERR_ALLOC;
			goto out;
		}
		x = NULL;
	}
	*out = sk;
	sk = NULL;
	r = 0;
out:
	X509_free(x);
	sk_X509_pop_free(sk, X509_free);
	return r;
}

int
x509_chain_to_der(STACK_OF(X509) *sk, struct buf *out)
{
	uint8_t	*p;
	int	 i, n, r;

	if (sk == NULL || sk_X509_num(sk) == 0)
		return WICK_ERR_INVALID;
	for (i = 0; i < sk_X509_num(sk); i++) {
		if ((n = i2d_X509(sk_X509_value(sk, i), NULL)) <= 0)
			return WICK_ERR_CRYPTO;
		if ((r = buf_reserve(out, (size_t)n, &p)) != 0)
			return r;
		if (i2d_X509(sk_X509_value(sk, i), &p) != n)
			return WICK_ERR_CRYPTO;
		buf_commit(out, (size_t)n);
	}
	return 0;
}

int
x509_spiffe_id(X509 *leaf, char **out, const char **why)
{
	GENERAL_NAMES		*gens = NULL;
	const GENERAL_NAME	*gen;
	const ASN1_IA5STRING	*uri = NULL;
	const char		*msg = NULL;
	char			*id = NULL;
	int			 i, nuri = 0, crit = 0, r;
	size_t			 len;

	*out = NULL;
	if (why != NULL)
		*why = NULL;
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL && crit != -1) {
		/* Present but undecodable, or present more than once. */
		msg = "malformed subjectAltName extension";
		r = WICK_ERR_INVALID;
		goto out;
	}
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type != GEN_URI)
			continue;
		nuri++;
		uri = gen->d.uniformResourceIdentifier;
	}
	if (nuri == 0) {
		msg = "certificate has no URI SAN";
		r = WICK_ERR_NOT_FOUND;
		goto out;
	}
	if (nuri > 1) {
		msg = "certificate has more than one URI SAN";
		r = WICK_ERR_INVALID;
		goto out;
	}
	len = (size_t)ASN1_STRING_length(uri);
	if (len > X509_MAX_SPIFFE_ID) {
		msg = "URI SAN too long";
		r = WICK_ERR_INVALID;
		goto out;
	}
	if (len <= strlen(SPIFFE_SCHEME) ||
	    strncmp((const char *)ASN1_STRING_get0_data(uri), SPIFFE_SCHEME,
	    strlen(SPIFFE_SCHEME)) != 0) {
		msg = "URI SAN is not a SPIFFE ID";
		r = WICK_ERR_INVALID;
		goto out;
	}
	if (memchr(ASN1_STRING_get0_data(uri), '\0', len) != NULL) {
		msg = "URI SAN contains a NUL byte";
		r = WICK_ERR_INVALID;
		goto out;
	}
	if ((id = malloc(len + 1)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	memcpy(id, ASN1_STRING_get0_data(uri), len);
	id[len] = '\0';
	*out = id;
	r = 0;
out:
	if (why != NULL)
		*why = msg;
	GENERAL_NAMES_free(gens);
	return r;
}

int
x509_fingerprint(X509 *x, char out[X509_FINGERPRINT_LEN + 1])
{
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0;

	out[0] = '\0';
	if (!X509_digest(x, EVP_sha256(), md, &mdlen) ||
	    mdlen * 2 != X509_FINGERPRINT_LEN)
		return WICK_ERR_CRYPTO;
	hex_encode(md, mdlen, out);
	return 0;
}

static int64_t
asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

int64_t
x509_not_after(const X509 *c)
{
	return asn1_time(X509_get0_notAfter(c));
}

int64_t
x509_not_before(const X509 *c)
{
	return asn1_time(X509_get0_notBefore(c));
}

int
x509_dns_name_ok(const char *s)
{
	size_t	len = strlen(s), lab = 0, i;

	if (len > 253)
		return 0;
	if (strncmp(s, "*.", 2) == 0) {
		s += 2;
		len -= 2;
	}
	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    (s[i] == '-' && lab > 0)) || ++lab > 63)
			return 0;
	}
	return lab > 0 && s[len - 1] != '-';
}
