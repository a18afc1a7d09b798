/*
 * tls_echo.c: a blocking TLS echo server for interop tests.
 *
 * tls_echo CERTDIR [COUNT] listens on 127.0.0.1, an ephemeral port, and
 * prints "PORT <n>".  It serves COUNT connections (default: forever), one
 * at a time, with CERTDIR/server.pem and server.key, requiring a client
 * certificate from CERTDIR/ca.pem.  For each it prints "PEER <id>" after
 * the handshake or "REJECT <why>", echoes data back and answers
 * close_notify with its own.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "tls.h"

#define ECHO_IO		16384
#define ECHO_MAX_BUF	(1024 * 1024)

static int
flush_out(struct tls_conn *c, int fd, struct buf *out)
{
	const uint8_t	*p;
	size_t		 len, off = 0;
	ssize_t		 n;
	int		 r;

	r = tls_conn_take_output(c, out);
	if (r != 0 && r != WICK_ERR_LIMIT)
		return r;
	p = buf_ptr(out);
	len = buf_len(out);
	while (off < len) {
		n = write(fd, p + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return WICK_ERR_IO;
		off += (size_t)n;
	}
	buf_reset(out);
	return r == WICK_ERR_LIMIT ? flush_out(c, fd, out) : 0;
}

/* Read from the socket into the engine; WICK_ERR_EOF on socket EOF. */
static int
pull_in(struct tls_conn *c, int fd)
{
	uint8_t	 tmp[ECHO_IO];
	ssize_t	 n;

	do
		n = read(fd, tmp, sizeof(tmp));
	while (n == -1 && errno == EINTR);
	if (n == 0)
		return WICK_ERR_EOF;
	if (n < 0)
		return WICK_ERR_IO;
	return tls_conn_feed(c, tmp, (size_t)n);
}

static void
serve(struct tls_ctx *ctx, int fd)
{
	struct tls_conn	*c = NULL;
	struct buf	 out, plain;
	const char	*id;
	int		 r;

	buf_init(&out, ECHO_MAX_BUF);
	buf_init(&plain, ECHO_MAX_BUF);
	if ((r = tls_conn_new(ctx, NULL, &c)) != 0) {
		printf("ERROR %s\n", wick_strerror(r));
		goto out;
	}
	for (;;) {
		r = tls_conn_handshake(c);
		(void)flush_out(c, fd, &out);
		if (r == 0)
			break;
		if (r != WICK_ERR_AGAIN) {
			printf("REJECT %s: %s\n", wick_strerror(r),
			    tls_conn_error(c));
			goto out;
		}
		if ((r = pull_in(c, fd)) != 0) {
			printf("REJECT %s during handshake\n",
			    wick_strerror(r));
			goto out;
		}
	}
	id = tls_conn_peer_id(c);
	printf("PEER %s\n", id != NULL ? id : "(none)");
	fflush(stdout);
	for (;;) {
		/*
		 * Drain first: application data may have arrived with the
		 * last handshake flight.
		 */
		r = tls_conn_read(c, &plain);
		if (r == WICK_ERR_EOF) {
			printf("EOF\n");
			if (tls_conn_shutdown(c) == 0)
				(void)flush_out(c, fd, &out);
			goto out;
		}
		if (r != 0) {
			printf("ERROR %s: %s\n", wick_strerror(r),
			    tls_conn_error(c));
			(void)flush_out(c, fd, &out);
			goto out;
		}
		if (buf_len(&plain) > 0) {
			if ((r = tls_conn_write(c, buf_ptr(&plain),
			    buf_len(&plain))) != 0) {
				printf("ERROR %s\n", wick_strerror(r));
				goto out;
			}
			buf_reset(&plain);
		}
		if (flush_out(c, fd, &out) != 0) {
			printf("ERROR socket write\n");
			goto out;
		}
		if ((r = pull_in(c, fd)) != 0) {
			printf("CLOSED %s\n", wick_strerror(r));
			goto out;
		}
	}
out:
	fflush(stdout);
	tls_conn_free(c);
	buf_cleanup(&out);
	buf_cleanup(&plain);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	struct tls_ctx		*ctx = NULL;
	char			 cert[4096], key[4096], ca[4096];
	long			 count = -1;
	int			 lfd, fd, r;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: tls_echo CERTDIR [COUNT]\n");
		return 2;
	}
	if (argc == 3)
		count = strtol(argv[2], NULL, 10);
	log_init("tls_echo", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	(void)snprintf(cert, sizeof(cert), "%s/server.pem", argv[1]);
	(void)snprintf(key, sizeof(key), "%s/server.key", argv[1]);
	(void)snprintf(ca, sizeof(ca), "%s/ca.pem", argv[1]);
	if ((r = tls_ctx_new(TLS_ROLE_SERVER, TLS_PEER_CERT_REQUIRED,
	    &ctx)) != 0 ||
	    (r = tls_ctx_load_files(ctx, cert, key, ca)) != 0) {
		fprintf(stderr, "tls_echo: %s\n", wick_strerror(r));
		return 1;
	}
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		perror("socket");
		return 1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 8) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) == -1) {
		perror("bind");
		return 1;
	}
	printf("PORT %u\n", ntohs(sin.sin_port));
	fflush(stdout);
	while (count != 0) {
		if ((fd = accept(lfd, NULL, NULL)) == -1) {
			if (errno == EINTR)
				continue;
			perror("accept");
			break;
		}
		serve(ctx, fd);
		close(fd);
		if (count > 0)
			count--;
	}
	close(lfd);
	tls_ctx_free(ctx);
	return 0;
}
