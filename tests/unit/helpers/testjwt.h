/*
 * testjwt.h: bundles with JWT keys for the agent's cache tests.
 */
#ifndef WICK_TESTJWT_H
#define WICK_TESTJWT_H

#include "bundle.h"

/* A bundle of td with one new P-256 JWT key of the given kid. */
struct bundle	*testjwt_bundle(const char *td, const char *kid);

#endif /* WICK_TESTJWT_H */
