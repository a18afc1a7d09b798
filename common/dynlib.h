/*
 * dynlib.h: filling a table of function pointers from a shared library
 * loaded at run time, for the optional engines (the container engine's
 * HTTP client, the TPM stack) that would otherwise be mapped into every
 * daemon whether it uses them or not.
 */
#ifndef WICK_DYNLIB_H
#define WICK_DYNLIB_H

#include <stddef.h>

/* One symbol: its name in the library and its place in the table. */
struct dynlib_sym {
	const char	*name;
	size_t		 off;
};

/*
 * Open lib (a file name the dynamic linker resolves, e.g. "libfoo.so.1")
 * and store each symbol's address at table + off.  All or nothing: on
 * failure the table is untouched, the library is closed and why names
 * the library and what was missing; -1.  On success the library stays
 * loaded until the process exits; 0.
 */
int	dynlib_load(const char *lib, const struct dynlib_sym *syms,
	    size_t nsyms, void *table, size_t tablelen, char *why,
	    size_t whylen);

#endif
