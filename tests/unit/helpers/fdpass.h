/*
 * fdpass.h: one descriptor over a Unix socket (SCM_RIGHTS), for tests whose
 * peer must be another process than the test's (a socketpair made in a
 * child has the child as its peer).
 */
#ifndef WICK_TEST_FDPASS_H
#define WICK_TEST_FDPASS_H

/* Sends fd with one byte: 0, or -1. */
int	 fdpass_send(int sock, int fd);
/* The descriptor sent, or -1. */
int	 fdpass_recv(int sock);

#endif /* WICK_TEST_FDPASS_H */
