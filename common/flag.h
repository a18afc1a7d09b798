/*
 * flag.h: command lines in Go's flag syntax, as SPIRE's commands take
 * them: "-name value", "-name=value", "--name", booleans as "-name" or
 * "-name=false".
 */
#ifndef WICK_FLAG_H
#define WICK_FLAG_H

#include "err.h"

/*
 * If argv[*i] is the flag name with a value, point *out at the value
 * (advancing *i past a separate value) and return 1; 0 if it is another
 * argument.  A missing value ends the command with Go's message
 * ("flag needs an argument: -name") and status 1, as Go's flag package.
 */
int	 flag_value(int argc, char **argv, int *i, const char *name,
	    const char **out);
/* Non-zero when arg is the boolean flag name ("-name" or "--name"). */
int	 flag_bool(const char *arg, const char *name);
/* Go's strconv.ParseBool: 1, t, T, TRUE, true, True and the false forms. */
int	 flag_parse_bool(const char *, int *out) WICK_WUR;
/* A TCP port, 0..65535 (min 1 if nonzero); WICK_ERR_INVALID otherwise. */
int	 flag_parse_port(const char *, int nonzero, int *out) WICK_WUR;

#endif /* WICK_FLAG_H */
