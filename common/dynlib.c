/*
 * dynlib.c: see dynlib.h.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynlib.h"

/* dlsym() hands back functions as data pointers, which POSIX makes the
 * same size; tables are filled through that. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)),
    "function pointers are not the size of data pointers");

int
dynlib_load(const char *lib, const struct dynlib_sym *syms, size_t nsyms,
    void *table, size_t tablelen, char *why, size_t whylen)
{
	const char	*e;
	void		*h, *sym, *t;
	size_t		 i;

	if ((t = calloc(1, tablelen)) == NULL) {
		snprintf(why, whylen, "cannot load %s: out of memory", lib);
		return -1;
	}
	if ((h = dlopen(lib, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		e = dlerror();
		snprintf(why, whylen, "cannot load %s: %s", lib,
		    e != NULL ? e : "unknown error");
		free(t);
		return -1;
	}
	for (i = 0; i < nsyms; i++) {
		if (syms[i].off > tablelen - sizeof(sym))
			abort();	/* a table that does not fit its list */
		(void)dlerror();
		if ((sym = dlsym(h, syms[i].name)) == NULL) {
			e = dlerror();
			snprintf(why, whylen, "%s has no %s: %s", lib,
			    syms[i].name, e != NULL ? e :
			    "the symbol is NULL");
			/* Not a library we can use: give its memory back. */
			(void)dlclose(h);
			free(t);
			return -1;
		}
		memcpy((char *)t + syms[i].off, &sym, sizeof(sym));
	}
	/* Only the entries this list names; others keep their values. */
	for (i = 0; i < nsyms; i++)
		memcpy((char *)table + syms[i].off, (char *)t + syms[i].off,
		    sizeof(sym));
	free(t);
	return 0;
}
