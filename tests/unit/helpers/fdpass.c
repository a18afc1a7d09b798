/*
 * fdpass.c: one descriptor over a Unix socket (SCM_RIGHTS), for tests whose
 * peer must be another process than the test's.
 */
#include <sys/socket.h>

#include <string.h>

#include "fdpass.h"

int
fdpass_send(int sock, int fd)
{
	struct msghdr	 m = { 0 };
	char		 cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec	 iov = { (void *)"f", 1 };
	struct cmsghdr	*cm;

	memset(cbuf, 0, sizeof(cbuf));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	m.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

int
fdpass_recv(int sock)
{
	struct msghdr	 m = { 0 };
	char		 cbuf[CMSG_SPACE(sizeof(int))], x;
	struct iovec	 iov = { &x, 1 };
	struct cmsghdr	*cm;
	int		 fd;

	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	m.msg_controllen = sizeof(cbuf);
	if (recvmsg(sock, &m, 0) != 1 || (cm = CMSG_FIRSTHDR(&m)) == NULL ||
	    cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}
