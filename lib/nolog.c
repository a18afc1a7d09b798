/*
 * nolog.c: the library does not log.  The common/ code libwick links
 * reports through log_msg() only on paths libwick never takes (file
 * loaders, the daemons' TLS setup); here those lines go nowhere, so
 * libwick writes nothing to stderr and keeps no logging state.
 * log_fatal_exit() is reached only by a broken internal invariant
 * (buf.c's sanity check) or by the daemons' exit-on-failure allocators,
 * which libwick does not call: it aborts.
 */
#include <stdlib.h>

#include "log.h"

void
log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	(void)level;
	(void)func;
	(void)fmt;
}

void
log_fatal_exit(const char *func, const char *fmt, ...)
{
	(void)func;
	(void)fmt;
	abort();
}
