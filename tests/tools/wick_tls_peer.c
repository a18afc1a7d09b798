/*
 * wick_tls_peer: SPIFFE mTLS through libwick's SSL_CTX setup, against
 * openssl s_client / s_server in the integration tests.  The SVID and
 * bundles come from the agent at SPIFFE_ENDPOINT_SOCKET, watched.
 *
 *	wick-tls-peer server PORT PEER_ID [COUNT]
 *		accept COUNT connections (default 1) on 127.0.0.1:PORT; for
 *		each, print "peer <ID> serial <hex of our leaf's serial>" and
 *		echo one line back
 *	wick-tls-peer client PORT PEER_ID
 *		connect, print "peer <ID>", send a line, print the answer
 *
 * PEER_ID "any" accepts every SPIFFE ID of a trusted domain.  The SVID
 * presented is the default one, or the one whose hint is in
 * WICK_TLS_PEER_HINT.  Exit 0 when
 * every handshake succeeded, 1 when one failed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "wick/wick.h"

static int
serial_of(SSL *ssl, char *out, size_t outlen)
{
	X509		*me = SSL_get_certificate(ssl);
	BIGNUM		*bn;
	char		*hex;

	if (me == NULL || (bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(me),
	    NULL)) == NULL)
		return -1;
	hex = BN_bn2hex(bn);
	snprintf(out, outlen, "%s", hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
	return 0;
}

static int
serve(SSL_CTX *ctx, int port, int count)
{
	struct sockaddr_in	 sin;
	SSL			*ssl;
	char			 line[256], serial[128], *id;
	int			 ls, fd, one = 1, i, n, rc = 0;

	if ((ls = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(ls, 4) == -1) {
		perror("bind");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (i = 0; i < count; i++) {
		if ((fd = accept(ls, NULL, NULL)) == -1)
			return 1;
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) != 1) {
			printf("handshake failed\n");
			ERR_print_errors_fp(stdout);
			rc = 1;
		} else if (wick_tls_peer_id(ssl, &id) == 0) {
			if (serial_of(ssl, serial, sizeof(serial)) != 0)
				snprintf(serial, sizeof(serial), "?");
			printf("peer %s serial %s\n", id, serial);
			wick_free(id);
			if ((n = SSL_read(ssl, line, sizeof(line) - 1)) > 0)
				(void)SSL_write(ssl, line, n);
			SSL_shutdown(ssl);
		}
		fflush(stdout);
		SSL_free(ssl);
		close(fd);
	}
	close(ls);
	return rc;
}

static int
connect_to(SSL_CTX *ctx, int port)
{
	struct sockaddr_in	 sin;
	SSL			*ssl;
	char			 line[256], *id;
	int			 fd, n, rc = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perror("connect");
		return 1;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		printf("handshake failed\n");
		ERR_print_errors_fp(stdout);
	} else if (wick_tls_peer_id(ssl, &id) == 0) {
		printf("peer %s\n", id);
		wick_free(id);
		(void)SSL_write(ssl, "hello\n", 6);
		if ((n = SSL_read(ssl, line, sizeof(line) - 1)) > 0) {
			line[n] = '\0';
			printf("answer %s", line);
		}
		rc = 0;
	}
	fflush(stdout);
	SSL_free(ssl);
	close(fd);
	return rc;
}

int
main(int argc, char **argv)
{
	struct wick_client	*cl = NULL;
	struct wick_x509_watch	*w = NULL;
	struct wick_tls		*t = NULL;
	SSL_CTX			*ctx;
	int			 server, r, rc;

	if (argc < 4 || (strcmp(argv[1], "server") != 0 &&
	    strcmp(argv[1], "client") != 0)) {
		fprintf(stderr, "usage: wick-tls-peer server|client PORT "
		    "PEER_ID [COUNT]\n");
		return 2;
	}
	server = strcmp(argv[1], "server") == 0;
	if ((r = wick_client_new(NULL, 0, &cl)) != 0 ||
	    (r = wick_x509_watch_new(cl, NULL, NULL, &w)) != 0 ||
	    (r = wick_x509_watch_wait(w, 20000)) != 0) {
		fprintf(stderr, "no X.509 context: %s\n", wick_strerror(r));
		return 1;
	}
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL || (r = wick_tls_setup(ctx, w,
	    getenv("WICK_TLS_PEER_HINT"),
	    strcmp(argv[3], "any") == 0 ? wick_authorize_any :
	    wick_authorize_id, argv[3], &t)) != 0) {
		fprintf(stderr, "cannot set up TLS\n");
		return 1;
	}
	rc = server ? serve(ctx, atoi(argv[2]), argc > 4 ? atoi(argv[4]) : 1) :
	    connect_to(ctx, atoi(argv[2]));
	SSL_CTX_free(ctx);
	wick_tls_free(t);
	wick_x509_watch_free(w);
	wick_client_free(cl);
	return rc;
}
