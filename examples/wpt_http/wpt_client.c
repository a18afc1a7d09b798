/*
 * wpt_client: a tiny HTTP/1.1 client that proves its identity with a
 * WIT and WPT and checks the server's in the response.
 *
 *	wpt_client PORT URL [-wrong-audience]
 *
 * Sends "GET <path of URL>" to 127.0.0.1:PORT with the proof for URL
 * (without query and fragment); -wrong-audience makes the proof for
 * another URI, which the server must refuse.  Prints the status, the
 * server's verified SPIFFE ID ("server <ID>") and the body; exit 0 on a
 * 200 from a verified server.
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

int
main(int argc, char **argv)
{
	static char			 head[HTTP_MAX_HEAD], proof[20000];
	static char			 req[24000];
	struct wick_client		*cl = NULL;
	struct wick_wpt_verifier	*v = NULL;
	struct wick_wpt_result		 res;
	struct sockaddr_in		 sin;
	const char			*path, *host;
	char				 aud[2048], body[512];
	ssize_t				 n;
	size_t				 hl;
	int				 fd, r, status = 0;

	if (argc < 3 || strncmp(argv[2], "http", 4) != 0 ||
	    (host = strstr(argv[2], "://")) == NULL) {
		fprintf(stderr, "usage: wpt_client PORT URL "
		    "[-wrong-audience]\n");
		return 2;
	}
	host += 3;
	path = strchr(host, '/');
	snprintf(aud, sizeof(aud), "%.*s", (int)strcspn(argv[2], "?#"),
	    argv[2]);
	hl = path != NULL ? (size_t)(path - host) : strlen(host);
	if ((r = wick_client_new(NULL, 0, &cl)) != 0 ||
	    (r = wpt_verifier(cl, aud, &v)) != 0 ||
	    (r = wpt_prove(cl, argc > 3 ? "https://elsewhere.example/" : aud,
	    proof, sizeof(proof))) != 0) {
		fprintf(stderr, "wpt_client: %s\n", wick_strerror(r));
		return 1;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %.*s\r\n%s"
	    "Connection: close\r\n\r\n", path != NULL ? path : "/", (int)hl,
	    host, proof);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    http_write_all(fd, req, strlen(req)) != 0 ||
	    http_read_head(fd, head, sizeof(head)) != 0) {
		perror("wpt_client");
		return 1;
	}
	if (sscanf(head, "HTTP/1.1 %d", &status) != 1)
		return 1;
	printf("status %d\n", status);
	if ((n = read(fd, body, sizeof(body) - 1)) > 0) {
		body[n] = '\0';
		printf("body %s", body);
	}
	close(fd);
	r = 1;
	if (status == 200) {
		if (wpt_check(v, head, &res) == 0) {
			printf("server %s\n", res.sub);
			r = 0;
		} else
			printf("server not verified: %s\n",
			    wick_wpt_reason_str(res.reason));
	}
	wick_wpt_verifier_free(v);
	wick_client_free(cl);
	return r;
}
