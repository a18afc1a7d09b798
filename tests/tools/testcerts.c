/*
 * testcerts.c: wick-testcerts DIR writes a test PKI into DIR.
 *
 * ca.pem, server.pem/.key, client.pem/.key (trusted CA) and other-ca.pem,
 * other-client.pem/.key (a foreign CA).  Keys are PKCS#8 PEM, mode 0600.
 */
#include <stdio.h>

#include "../unit/helpers/testpki.h"

int
main(int argc, char *argv[])
{
	int	 r;

	if (argc != 2) {
		fprintf(stderr, "usage: wick-testcerts DIR\n");
		return 2;
	}
	if ((r = testpki_write_dir(argv[1])) != 0) {
		fprintf(stderr, "wick-testcerts: %s\n", wick_strerror(r));
		return 1;
	}
	return 0;
}
