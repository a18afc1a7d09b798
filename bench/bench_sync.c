/*
 * bench_sync.c: many simulated agents syncing with a real server over
 * mutual TLS, as wick-agent does, on one event loop.
 *
 *	bench_sync -s HOST:PORT -T TD -b BUNDLE.pem -f TOKENS
 *	    [-i INTERVAL] [-B TOKEN] [-c CONCURRENT]
 *
 * Every join token in TOKENS (one a line) attests one agent (AttestAgent,
 * CONCURRENT at a time); each agent then syncs in full once and, from
 * then on, every INTERVAL seconds (default 5) from the revision it
 * holds, paging as the server asks, the agents spread evenly over the
 * interval.  The agent of -B attests too but syncs only when told.
 *
 * It prints "ready SECONDS" once every agent has attested and synced,
 * and "changed T" (T: CLOCK_MONOTONIC seconds) whenever the first
 * agent's sync brings an entry that changed.  It reads commands on
 * standard input, one a line:
 *	stats	print {"syncs":..,"errors":..,"p50_ms":..,...} for the syncs
 *		since the last stats
 *	resync	sync the -B agent from revision 0 and print
 *		"resync SECONDS ENTRIES PAGES BYTES"
 *	quit	(or end of input) stop
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "agent.pb-c.h"
#include "log.h"
#include "nodeclient.h"
#include "pkey.h"
#include "x509.h"
#include "xmalloc.h"

#define MAX_AGENTS	20000
#define MAX_SAMPLES	(1024 * 1024)

struct sim {
	struct nodeclient	*nc;
	EVP_PKEY		*key;
	STACK_OF(X509)		*chain;
	uv_timer_t		 timer;
	char			*token;
	char			*page;		/* next page token, or NULL */
	int64_t			 revision;	/* synced up to */
	int64_t			 next_rev;	/* the pass's revision */
	double			 t0;		/* the pass's start */
	size_t			 changed;	/* entries the pass brought */
	size_t			 pages;
	size_t			 bytes;
	int			 busy;
	int			 index;
};

static uv_loop_t	 loop;
static uv_pipe_t	 in;
static struct sim	*sims;
static int		 nsims, big = -1, conc = 16, next_attest;
static int		 attested, synced, failed, quitting;
static double		 interval = 5, t_start, t_attested;
static STACK_OF(X509)	*roots;
static const char	*addr, *td;
static double		*samples;
static size_t		 nsamples;
static long		 syncs, errors, pages_total;
static size_t		 bytes_total;
static char		 line[256];
static size_t		 linelen;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void	attest_next(void);
static void	sync_page(struct sim *);

/* A pass (a full sync from revision 0 or an incremental one) ended. */
static void
pass_done(struct sim *s, int ok)
{
	s->busy = 0;
	if (t_attested > 0 && s->index != big) {
		if (ok && nsamples < MAX_SAMPLES)
			samples[nsamples++] = now_s() - s->t0;
		syncs++;
		errors += !ok;
		pages_total += (long)s->pages;
		bytes_total += s->bytes;
		if (s->index == 0 && ok && s->changed > 0) {
			printf("changed %.6f\n", now_s());
			fflush(stdout);
		}
		return;
	}
	if (s->index == big && synced >= nsims) {
		printf("resync %.6f %zu %zu %zu\n", now_s() - s->t0, s->changed,
		    s->pages, s->bytes);
		fflush(stdout);
		return;
	}
	if (!ok)
		failed++;
	if (++synced == nsims) {
		t_attested = now_s();
		printf("ready %.3f\n", t_attested - t_start);
		fflush(stdout);
	}
}

/* The trust bundle's sequence, as the last answer carrying it said. */
static uint64_t	bundle_seq;

static void
sync_done(int status, const char *msg, const uint8_t *p, size_t n,
    void *arg)
{
	Wick__Agent__SyncAuthorizedResponse	*resp;
	struct sim				*s = arg;

	if (status != 0 || (resp =
	    wick__agent__sync_authorized_response__unpack(NULL, n, p)) ==
	    NULL) {
		if (errors < 3 && !quitting)
			fprintf(stderr, "agent %d: SyncAuthorized: %d %s\n",
			    s->index, status, msg != NULL ? msg : "");
		free(s->page);
		s->page = NULL;
		pass_done(s, 0);
		return;
	}
	if (resp->bundle != NULL)
		bundle_seq = resp->bundle->sequence_number;
	s->changed += resp->n_entries;
	s->pages++;
	s->bytes += n;
	if (s->pages == 1)
		s->next_rev = resp->revision;
	free(s->page);
	s->page = NULL;
	if (resp->next_page_token != NULL && resp->next_page_token[0] != '\0')
		s->page = xstrdup(resp->next_page_token);
	wick__agent__sync_authorized_response__free_unpacked(resp, NULL);
	if (s->page != NULL) {
		sync_page(s);
		return;
	}
	s->revision = s->next_rev;
	pass_done(s, 1);
}

static void
sync_page(struct sim *s)
{
	Wick__Agent__SyncAuthorizedRequest req =
	    WICK__AGENT__SYNC_AUTHORIZED_REQUEST__INIT;

	/* As wick-agent asks: "unchanged" when nothing changed, the
	 * bundle only when its sequence moved. */
	req.since_revision = s->revision;
	req.accept_unchanged = 1;
	req.bundle_sequence = bundle_seq;
	req.page_token = s->page != NULL ? s->page : "";
	if (nodeclient_call(s->nc, NODE_PATH_SYNC, &req.base, 60000,
	    sync_done, s) != 0)
		pass_done(s, 0);
}

static void
sync_start(struct sim *s, int64_t since)
{
	if (s->busy)
		return;
	s->busy = 1;
	s->revision = since;
	s->t0 = now_s();
	s->changed = s->pages = s->bytes = 0;
	sync_page(s);
}

static void
tick_cb(uv_timer_t *t)
{
	struct sim *s = t->data;

	sync_start(s, s->revision);
}

static void
attest_done(int status, const char *msg, const uint8_t *p, size_t n,
    void *arg)
{
	Wick__Agent__AttestAgentResponse	*resp = NULL;
	struct sim				*s = arg;
	const uint8_t				*q;
	X509					*c;
	size_t					 i;

	if (status != 0 || (resp = wick__agent__attest_agent_response__unpack(
	    NULL, n, p)) == NULL || resp->step_case !=
	    WICK__AGENT__ATTEST_AGENT_RESPONSE__STEP_RESULT) {
		fprintf(stderr, "agent %d: AttestAgent: %d %s\n", s->index,
		    status, msg != NULL ? msg : "");
		exit(1);
	}
	s->chain = sk_X509_new_null();
	for (i = 0; i < resp->result->n_svid; i++) {
		q = resp->result->svid[i].data;
		if ((c = d2i_X509(NULL, &q, (long)resp->result->svid[i].len)) ==
		    NULL || sk_X509_push(s->chain, c) == 0) {
			fprintf(stderr, "agent %d: bad SVID\n", s->index);
			exit(1);
		}
	}
	wick__agent__attest_agent_response__free_unpacked(resp, NULL);
	if (nodeclient_set_identity(s->nc, s->chain, s->key) != 0) {
		fprintf(stderr, "agent %d: cannot use its SVID\n", s->index);
		exit(1);
	}
	attested++;
	/* Its first sync, in full; the next agent's attestation. */
	sync_start(s, 0);
	attest_next();
}

static void
attest_next(void)
{
	Wick__Agent__AttestAgentRequest		 req =
	    WICK__AGENT__ATTEST_AGENT_REQUEST__INIT;
	Wick__Agent__AttestAgentRequest__Params	 params =
	    WICK__AGENT__ATTEST_AGENT_REQUEST__PARAMS__INIT;
	Wick__Agent__AttestationData		 data =
	    WICK__AGENT__ATTESTATION_DATA__INIT;
	struct sim				*s;
	struct buf				 csr;

	if (next_attest >= nsims)
		return;
	s = &sims[next_attest++];
	buf_init(&csr, PKEY_MAX_DER);
	if (nodeclient_new(&loop, addr, td, roots, &s->nc) != 0 ||
	    pkey_generate(PKEY_EC_P256, &s->key) != 0 ||
	    csr_make(s->key, &csr) != 0) {
		fprintf(stderr, "agent %d: cannot start\n", s->index);
		exit(1);
	}
	data.type = "join_token";
	data.payload.data = (uint8_t *)s->token;
	data.payload.len = strlen(s->token);
	params.data = &data;
	params.csr.data = (uint8_t *)buf_ptr(&csr);
	params.csr.len = buf_len(&csr);
	req.step_case = WICK__AGENT__ATTEST_AGENT_REQUEST__STEP_PARAMS;
	req.params = &params;
	if (nodeclient_call(s->nc, NODE_PATH_ATTEST, &req.base, 60000,
	    attest_done, s) != 0) {
		fprintf(stderr, "agent %d: cannot attest\n", s->index);
		exit(1);
	}
	buf_cleanup(&csr);
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
print_stats(void)
{
	double	p50 = 0, p99 = 0, max = 0;

	qsort(samples, nsamples, sizeof(*samples), cmp);
	if (nsamples > 0) {
		p50 = samples[nsamples / 2];
		p99 = samples[nsamples * 99 / 100];
		max = samples[nsamples - 1];
	}
	printf("{\"syncs\":%ld,\"errors\":%ld,\"pages\":%ld,\"bytes\":%zu,"
	    "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n", syncs, errors,
	    pages_total, bytes_total, p50 * 1e3, p99 * 1e3, max * 1e3);
	fflush(stdout);
	nsamples = 0;
	syncs = errors = pages_total = 0;
	bytes_total = 0;
}

static void
start_ticking(void)
{
	uint64_t	 every = (uint64_t)(interval * 1000);
	int		 i;

	for (i = 0; i < nsims; i++) {
		if (i == big)
			continue;
		uv_timer_init(&loop, &sims[i].timer);
		sims[i].timer.data = &sims[i];
		uv_timer_start(&sims[i].timer, tick_cb,
		    every * (uint64_t)i / (uint64_t)nsims + 1, every);
	}
}

static void
stop_all(void)
{
	int i;

	quitting = 1;
	uv_close((uv_handle_t *)&in, NULL);
	for (i = 0; i < nsims; i++) {
		if (sims[i].timer.data != NULL)
			uv_close((uv_handle_t *)&sims[i].timer, NULL);
		if (sims[i].nc != NULL)
			nodeclient_free(sims[i].nc);
		sims[i].nc = NULL;
	}
}

static void
command(const char *cmd)
{
	if (strcmp(cmd, "stats") == 0)
		print_stats();
	else if (strcmp(cmd, "resync") == 0 && big >= 0)
		sync_start(&sims[big], 0);
	else if (strcmp(cmd, "quit") == 0)
		stop_all();
	else
		fprintf(stderr, "bench_sync: unknown command %s\n", cmd);
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char space[1024];

	b->base = space;
	b->len = sizeof(space);
}

static void
read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	ssize_t i;

	if (n < 0) {
		stop_all();
		return;
	}
	for (i = 0; i < n; i++) {
		if (b->base[i] == '\n') {
			line[linelen] = '\0';
			linelen = 0;
			command(line);
			if (uv_is_closing((uv_handle_t *)&in))
				return;
		} else if (linelen + 1 < sizeof(line))
			line[linelen++] = b->base[i];
	}
}

static void
wait_ready_cb(uv_timer_t *t)
{
	if (synced < nsims)
		return;
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, NULL);
	if (failed > 0) {
		fprintf(stderr, "bench_sync: %d first syncs failed\n", failed);
		exit(1);
	}
	start_ticking();
	uv_pipe_init(&loop, &in, 0);
	if (uv_pipe_open(&in, 0) != 0 ||
	    uv_read_start((uv_stream_t *)&in, alloc_cb, read_cb) != 0) {
		fprintf(stderr, "bench_sync: cannot read standard input\n");
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	uv_timer_t	 ready;
	const char	*bundle = NULL, *tokens = NULL, *bigtok = NULL;
	char		 buf[512];
	FILE		*f;
	int		 ch, i;

	while ((ch = getopt(argc, argv, "s:T:b:f:i:B:c:")) != -1) {
		switch (ch) {
		case 's': addr = optarg; break;
		case 'T': td = optarg; break;
		case 'b': bundle = optarg; break;
		case 'f': tokens = optarg; break;
		case 'i': interval = atof(optarg); break;
		case 'B': bigtok = optarg; break;
		case 'c': conc = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (addr == NULL || td == NULL || bundle == NULL || tokens == NULL ||
	    interval <= 0 || conc < 1)
		goto usage;
	log_init("bench", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	if (x509_load_certs_file(bundle, 64, &roots) != 0) {
		fprintf(stderr, "bench_sync: cannot read %s\n", bundle);
		return 1;
	}
	sims = xcalloc(MAX_AGENTS + 1, sizeof(*sims));
	if ((f = fopen(tokens, "r")) == NULL) {
		perror(tokens);
		return 1;
	}
	while (fgets(buf, sizeof(buf), f) != NULL && nsims < MAX_AGENTS) {
		buf[strcspn(buf, "\r\n")] = '\0';
		if (buf[0] == '\0')
			continue;
		sims[nsims].index = nsims;
		sims[nsims++].token = xstrdup(buf);
	}
	fclose(f);
	if (bigtok != NULL) {
		big = nsims;
		sims[nsims].index = nsims;
		sims[nsims++].token = xstrdup(bigtok);
	}
	if (nsims == 0)
		goto usage;
	samples = xcalloc(MAX_SAMPLES, sizeof(*samples));
	uv_loop_init(&loop);
	t_start = now_s();
	for (i = 0; i < conc; i++)
		attest_next();
	uv_timer_init(&loop, &ready);
	uv_timer_start(&ready, wait_ready_cb, 50, 50);
	uv_run(&loop, UV_RUN_DEFAULT);
	for (i = 0; i < nsims; i++) {
		free(sims[i].token);
		free(sims[i].page);
		EVP_PKEY_free(sims[i].key);
		if (sims[i].chain != NULL)
			sk_X509_pop_free(sims[i].chain, X509_free);
	}
	free(sims);
	free(samples);
	sk_X509_pop_free(roots, X509_free);
	return 0;
usage:
	fprintf(stderr, "usage: bench_sync -s HOST:PORT -T TD -b BUNDLE.pem "
	    "-f TOKENS [-i INTERVAL] [-B TOKEN] [-c CONCURRENT]\n");
	return 1;
}
