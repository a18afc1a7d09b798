/*
 * restore.h: "wick-server restore" (restore.c).
 */
#ifndef WICK_SERVER_RESTORE_H
#define WICK_SERVER_RESTORE_H

/* argv[0] is "restore"; returns the exit status. */
int	 server_restore(int argc, char **argv);

#endif /* WICK_SERVER_RESTORE_H */
