/*
 * wpt_server: a tiny HTTP/1.1 server that authenticates each request by
 * its WIT and WPT (draft-ietf-wimse-wpt-02) and proves its own identity
 * the same way in the response.
 *
 *	wpt_server PORT AUDIENCE [COUNT]
 *
 * AUDIENCE is this server's URI as clients address it (the WPT aud it
 * accepts).  The WIT-SVID, its key and the WIT bundles come from the
 * agent at SPIFFE_ENDPOINT_SOCKET.  Serves COUNT requests (default 1) on
 * 127.0.0.1:PORT; prints "accepted <SPIFFE ID>" or "rejected <reason>"
 * for each.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_min.h"
#include "wpt_common.h"

static void
answer(int fd, struct wick_client *cl, struct wick_wpt_verifier *v,
    const char *aud)
{
	static char		 head[HTTP_MAX_HEAD], proof[20000];
	struct wick_wpt_result	 res;
	char			 body[WICK_MAX_SPIFFE_ID + 64];
	char			 msg[20000 + 8192];
	int			 n;

	if (http_read_head(fd, head, sizeof(head)) != 0)
		return;
	if (wpt_check(v, head, &res) != 0) {
		printf("rejected %s\n", wick_wpt_reason_str(res.reason));
		n = snprintf(body, sizeof(body), "%s\n",
		    wick_wpt_reason_str(res.reason));
		n = snprintf(msg, sizeof(msg), "HTTP/1.1 401 Unauthorized\r\n"
		    "WWW-Authenticate: WPT\r\nContent-Length: %d\r\n"
		    "Connection: close\r\n\r\n%s", n, body);
	} else {
		printf("accepted %s\n", res.sub);
		if (wpt_prove(cl, aud, proof, sizeof(proof)) != 0) {
			n = snprintf(msg, sizeof(msg), "HTTP/1.1 503 Service "
			    "Unavailable\r\nContent-Length: 0\r\n"
			    "Connection: close\r\n\r\n");
		} else {
			n = snprintf(body, sizeof(body), "hello %s\n",
			    res.sub);
			n = snprintf(msg, sizeof(msg), "HTTP/1.1 200 OK\r\n%s"
			    "Content-Type: text/plain\r\nContent-Length: %d\r\n"
			    "Connection: close\r\n\r\n%s", proof, n, body);
		}
	}
	fflush(stdout);
	if (n > 0 && (size_t)n < sizeof(msg))
		(void)http_write_all(fd, msg, (size_t)n);
}

int
main(int argc, char **argv)
{
	struct wick_client		*cl = NULL;
	struct wick_wpt_verifier	*v = NULL;
	struct sockaddr_in		 sin;
	int				 ls, fd, one = 1, i, count, r;

	if (argc < 3) {
		fprintf(stderr, "usage: wpt_server PORT AUDIENCE [COUNT]\n");
		return 2;
	}
	count = argc > 3 ? atoi(argv[3]) : 1;
	if ((r = wick_client_new(NULL, 0, &cl)) != 0 ||
	    (r = wpt_verifier(cl, argv[2], &v)) != 0) {
		fprintf(stderr, "wpt_server: no WIT bundles from the agent: "
		    "%s\n", wick_strerror(r));
		return 1;
	}
	if ((ls = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(ls, 8) == -1) {
		perror("wpt_server: bind");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (i = 0; i < count; i++) {
		if ((fd = accept(ls, NULL, NULL)) == -1)
			break;
		answer(fd, cl, v, argv[2]);
		close(fd);
	}
	close(ls);
	wick_wpt_verifier_free(v);
	wick_client_free(cl);
	return 0;
}
