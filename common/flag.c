/*
 * flag.c: Go-style command-line flags.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flag.h"

int
flag_value(int argc, char **argv, int *i, const char *name, const char **out)
{
	const char	*a = argv[*i];
	size_t		 n = strlen(name);

	if (a[0] == '-' && a[1] == '-')
		a++;
	if (a[0] != '-' || strncmp(a + 1, name, n) != 0)
		return 0;
	if (a[1 + n] == '=') {
		*out = a + 2 + n;
		return 1;
	}
	if (a[1 + n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "flag needs an argument: -%s\n", name);
		exit(1);
	}
	*out = argv[++*i];
	return 1;
}

int
flag_bool(const char *arg, const char *name)
{
	if (arg[0] == '-' && arg[1] == '-')
		arg++;
	return arg[0] == '-' && strcmp(arg + 1, name) == 0;
}

int
flag_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true",
	    "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false",
	    "False" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return WICK_ERR_INVALID;
}

int
flag_parse_port(const char *s, int nonzero, int *out)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < (nonzero ? 1 : 0) ||
	    v > 65535)
		return WICK_ERR_INVALID;
	*out = (int)v;
	return 0;
}
