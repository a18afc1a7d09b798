/*
 * rpc.h: a gRPC server on one libuv loop, over nghttp2 (HTTP/2) and,
 * for TCP listeners, TLS 1.3 (tls.h).  Messages are raw bytes: services
 * pack and unpack them with protobuf-c.
 *
 * Threads: everything here runs on the loop thread only.
 *
 * Call lifetime.  The layer owns every struct rpc_call.  For each call the
 * method's callbacks run in this order:
 *	on_start			once, when the request headers are in
 *	on_message			per request message (0..n)
 *	on_half_close			once, when the client has sent all
 *	on_writable			when a full send queue has drained
 *	on_done				exactly once, last
 * on_done tells the handler the call is over for it: the handler finished
 * it and the stream closed (RPC_END_FINISHED), the client cancelled or the
 * connection went away (RPC_END_CANCELLED), or the deadline passed
 * (RPC_END_DEADLINE; the layer then answers DEADLINE_EXCEEDED itself).
 * The handler frees its per-call state and stops its timers there; after
 * on_done the call pointer is invalid.  A handler may answer at any time
 * before on_done (from a timer, from a thread-pool completion) with
 * rpc_call_send_message() and rpc_call_finish().
 */
#ifndef WICK_RPC_H
#define WICK_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "err.h"
#include "peercred.h"
#include "tls.h"

/*
 * What a peer can make a server hold.  Peers are Unix uids, and on TCP
 * the verified SPIFFE ID of a client certificate or, without one, the
 * address ("anonymous": TLS listeners only).  Each class has its limits
 * (struct rpc_limits); request bytes held (partial messages, call state,
 * metadata) are charged to the call's connection, its peer and the
 * process-wide budget before they are allocated, and a call that would
 * go over any of them ends with RESOURCE_EXHAUSTED saying which.  Flow
 * control follows the budgets: a stream's window is one message, the
 * connection's window its budget, and bytes are acknowledged only once
 * they are no longer held.
 */
#define RPC_DEFAULT_MAX_MESSAGE	(4u * 1024 * 1024)
#define RPC_DEFAULT_CONN_BUDGET	(8u * 1024 * 1024)
#define RPC_DEFAULT_PEER_BUDGET	(16u * 1024 * 1024)
#define RPC_DEFAULT_MAX_STREAMS	100
#define RPC_DEFAULT_PEER_CONNS	256
#define RPC_DEFAULT_ANON_MAX_MESSAGE (64u * 1024)
#define RPC_DEFAULT_ANON_CONN_BUDGET (128u * 1024)
#define RPC_DEFAULT_ANON_PEER_BUDGET (1024u * 1024)
#define RPC_DEFAULT_ANON_STREAMS 1
#define RPC_DEFAULT_ANON_PEER_CONNS 64
#define RPC_DEFAULT_ANON_OUTPUT	(64u * 1024)
#define RPC_DEFAULT_MAX_CONNS	1024
#define RPC_DEFAULT_BUDGET	(64u * 1024 * 1024)	/* process-wide */
#define RPC_DEFAULT_IDLE_MS	(60 * 1000)
#define RPC_DEFAULT_HANDSHAKE_MS (5 * 1000)
#define RPC_DEFAULT_FIRST_CALL_MS (10 * 1000)
#define RPC_DEFAULT_MESSAGE_MS	(30 * 1000)
#define RPC_DEFAULT_ANON_MS	(60 * 1000)
#define RPC_MAX_METADATA	(16 * 1024)	/* request header bytes */
#define RPC_MAX_METADATA_ENTRIES 64
#define RPC_MAX_METADATA_FLOOD	(4 * RPC_MAX_METADATA) /* then the connection goes */
#define RPC_DEFAULT_MAX_OUTPUT	(1024u * 1024)	/* queued on the socket */
#define RPC_DEFAULT_STALL_MS	(10 * 1000)
#define RPC_MAX_CALL_QUEUE	(1024 * 1024)	/* queued per call, beyond one message */
/* Handler steps of one peer waiting for (or running on) opts.offload's
 * thread; past it a call ends RESOURCE_EXHAUSTED.  Anonymous peers are
 * addresses, and may only attest. */
#define RPC_MAX_PEER_QUEUED	64
#define RPC_MAX_ANON_QUEUED	64	/* as many as connections per address */
#define RPC_MAX_LISTENERS	8
#define RPC_LISTEN_BACKLOG	1024
#define RPC_ACCEPT_BURST	32	/* connections accepted per loop turn */
/* What a loop turn spends reading and handling before what else it reads
 * waits for the next turn (at most RPC_STASH_MAX bytes a connection held,
 * the rest left in the kernel): timers and new peers are not held up
 * behind a thousand busy ones. */
#define RPC_TURN_BUDGET_NS	(2 * 1000 * 1000)
#define RPC_STASH_MAX		4096
#define RPC_SHUTDOWN_FLUSH_MS	1000	/* to write the last statuses */

/* gRPC status codes. */
enum rpc_status {
	RPC_OK = 0,
	RPC_CANCELLED = 1,
	RPC_UNKNOWN = 2,
	RPC_INVALID_ARGUMENT = 3,
	RPC_DEADLINE_EXCEEDED = 4,
	RPC_NOT_FOUND = 5,
	RPC_ALREADY_EXISTS = 6,
	RPC_PERMISSION_DENIED = 7,
	RPC_RESOURCE_EXHAUSTED = 8,
	RPC_FAILED_PRECONDITION = 9,
	RPC_ABORTED = 10,
	RPC_OUT_OF_RANGE = 11,
	RPC_UNIMPLEMENTED = 12,
	RPC_INTERNAL = 13,
	RPC_UNAVAILABLE = 14,
	RPC_DATA_LOSS = 15,
	RPC_UNAUTHENTICATED = 16,
};

enum rpc_kind {
	RPC_KIND_UNARY = 0,
	RPC_KIND_SERVER_STREAM,
	RPC_KIND_CLIENT_STREAM,
	RPC_KIND_BIDI,
};

enum rpc_end {
	RPC_END_FINISHED = 0,
	RPC_END_CANCELLED,
	RPC_END_DEADLINE,
};

/* Who is calling. */
struct rpc_peer {
	int	 is_unix;
	struct peercred cred;	/* Unix: SO_PEERCRED and start time at
				 * accept; peercred_check_alive() before
				 * trusting pid-based attestation */
	pid_t	 pid;		/* the same pid, uid, gid, for convenience */
	uid_t	 uid;
	gid_t	 gid;
	const char *spiffe_id;	/* mTLS: the verified client ID, or NULL */
	X509	*cert;		/* mTLS: the verified client leaf, or NULL
				 * (borrowed, valid while the call is) */
	char	 addr[64];	/* TCP: address:port */
};

/* One metadata entry; -bin values are already base64-decoded. */
struct rpc_md {
	const char	*name;
	const uint8_t	*value;
	size_t		 len;
};

struct rpc_server;
struct rpc_job;
struct rpc_call;

struct rpc_method {
	const char	*path;		/* "/pkg.Service/Method" */
	enum rpc_kind	 kind;
	void	(*on_start)(struct rpc_call *, void *arg);
	void	(*on_message)(struct rpc_call *, const uint8_t *, size_t);
	void	(*on_half_close)(struct rpc_call *);
	void	(*on_writable)(struct rpc_call *);
	void	(*on_done)(struct rpc_call *, enum rpc_end);
	void	*arg;
	int	 anonymous;	/* callable by anonymous peers */
};

/* Limits of one class of peers; 0 takes the class's default. */
struct rpc_limits {
	size_t		 max_message;	/* bytes of one request message */
	size_t		 conn_budget;	/* request bytes held per connection */
	size_t		 peer_budget;	/* ... per peer, all its connections */
	uint32_t	 max_streams;	/* concurrent calls per connection */
	uint32_t	 max_conns;	/* connections per peer */
	/* Bytes queued for the socket per connection; then nothing more is
	 * read from the peer until it takes them. */
	size_t		 max_output;
};

/*
 * A budget of request bytes held, shared by the servers of a process.
 * Loop thread only.
 */
struct rpc_budget {
	size_t		 max;
	size_t		 used;
	size_t		 peak;
};

struct rpc_server_opts {
	/* Unix peers (by uid), TCP peers with a verified certificate (by
	 * SPIFFE ID), plain TCP peers (by address; tests). */
	struct rpc_limits known;	/* defaults RPC_DEFAULT_* */
	/* TLS peers without a verified certificate (by address): they may
	 * call only methods marked anonymous. */
	struct rpc_limits anon;		/* defaults RPC_DEFAULT_ANON_* */
	uint32_t	 max_conns;	/* in all; 0: RPC_DEFAULT_MAX_CONNS */
	/* Anonymous connections in all; 0: max_conns / 4. */
	uint32_t	 anon_max_conns;
	/* NULL: a budget of RPC_DEFAULT_BUDGET for this server alone. */
	struct rpc_budget *budget;
	/* A connection with no call for idle_ms gets GOAWAY and is closed. */
	uint64_t	 idle_ms;	/* 0: RPC_DEFAULT_IDLE_MS */
	/* A connection that sent no HTTP/2 frame (or finished no TLS
	 * handshake) within handshake_ms is dropped. */
	uint64_t	 handshake_ms;	/* 0: RPC_DEFAULT_HANDSHAKE_MS */
	/* ... and one that started no call within first_call_ms. */
	uint64_t	 first_call_ms;	/* 0: RPC_DEFAULT_FIRST_CALL_MS */
	/* A request message begun must be complete within message_ms. */
	uint64_t	 message_ms;	/* 0: RPC_DEFAULT_MESSAGE_MS */
	/* An anonymous connection lives at most anon_ms. */
	uint64_t	 anon_ms;	/* 0: RPC_DEFAULT_ANON_MS */
	/* A connection whose output does not move for stall_ms (a peer that
	 * does not read) is closed. */
	uint64_t	 stall_ms;	/* 0: RPC_DEFAULT_STALL_MS */
	/* At shutdown, end server-streaming calls at once (watches, which
	 * never end by themselves) instead of letting them finish. */
	int		 streams_are_watches;
	/* Unix peers: keep /proc/<pid>/status open while connected
	 * (peercred_hold()), one more file descriptor per connection. */
	int		 hold_peer_status;
	/*
	 * Metrics (may be NULL): run as each gRPC call is freed with the
	 * index of its method in the table (nmethods when the method was
	 * unknown or refused), its status (CANCELLED when it never got
	 * one) and the nanoseconds since its headers began.  It must not
	 * call into the server.
	 */
	void		(*observe)(void *arg, size_t method, int status,
			    uint64_t ns);
	void		*observe_arg;
	/*
	 * With offload set, every method hands each on_message and
	 * on_half_close to another thread: offload(offload_arg, job) is
	 * called on the loop and must arrange for rpc_job_run(job) to run
	 * on that thread and then rpc_job_done(job) on the loop.  Until
	 * then the call is busy: the handler's rpc_call_*() functions
	 * record what it does and the loop applies it in rpc_job_done();
	 * nothing else of the call is touched, a stream reset, a deadline
	 * or a closed connection waits for the job, and the next message
	 * or half-close is queued.  A handler that answers later (a timer,
	 * another job) does so on the loop, as usual.  offload returns 0,
	 * or an error and the call ends with RESOURCE_EXHAUSTED.
	 */
	int		(*offload)(void *arg, struct rpc_job *);
	void		*offload_arg;
	/*
	 * With offload set, a request message may first be offered on the
	 * loop (may be NULL): on_loop(on_loop_arg, method, call, p, n)
	 * either answers the call there and returns 1, or returns 0 and
	 * the step goes to offload as usual.  It must not block and may
	 * read only what the loop may: it is for answers that need none of
	 * the other thread's state (an agent whose view is current).
	 */
	int		(*on_loop)(void *arg, const struct rpc_method *,
			    struct rpc_call *, const uint8_t *, size_t);
	void		*on_loop_arg;
};

/* The handler step of a busy call (opts.offload). */
void	 rpc_job_run(struct rpc_job *);		/* the other thread */
void	 rpc_job_done(struct rpc_job *);	/* the loop thread */

/* The method table is borrowed and must outlive the server. */
int	 rpc_server_new(uv_loop_t *, const struct rpc_server_opts *,
	    const struct rpc_method *methods, size_t nmethods,
	    struct rpc_server **out) WICK_WUR;
/*
 * Listen on a Unix socket: a stale socket file is removed first, and the
 * new one gets the given mode (e.g. 0777 for the Workload API, 0600 for an
 * admin socket).
 */
int	 rpc_server_listen_unix(struct rpc_server *, const char *path,
	    int mode) WICK_WUR;
/*
 * Listen on TCP; tls may be NULL for h2c.  The server keeps a pointer to
 * tls (it must outlive the server).  *port_out gets the bound port.
 */
int	 rpc_server_listen_tcp(struct rpc_server *, const char *host, int port,
	    struct tls_ctx *tls, int *port_out) WICK_WUR;
/*
 * Stop accepting, send GOAWAY on every connection and let open calls
 * finish.  With opts.streams_are_watches, server-streaming calls end at
 * once with UNAVAILABLE "server shutting down" (the Workload API's are
 * watches, which never end by themselves); after grace_ms the calls still
 * open end the same way, and
 * connections close once that is written, or RPC_SHUTDOWN_FLUSH_MS later.
 * Handlers see RPC_END_CANCELLED.  done (may be NULL) runs once everything
 * is closed; the server may then be freed.
 */
void	 rpc_server_shutdown(struct rpc_server *, uint64_t grace_ms,
	    void (*done)(struct rpc_server *, void *), void *arg);
/* After rpc_server_shutdown(): close every connection now (a second
 * SIGTERM). */
void	 rpc_server_shutdown_now(struct rpc_server *);
/* Free a server after its shutdown completed (or that never listened). */
void	 rpc_server_free(struct rpc_server *);

struct rpc_server_stats {
	uint64_t	 calls_started;
	uint64_t	 calls_completed;
	uint64_t	 calls_cancelled;
	uint64_t	 deadlines_exceeded;
	uint64_t	 calls_active;
	uint64_t	 connections_active;
	uint64_t	 connections_total;
	uint64_t	 connections_refused;	/* over a connection limit */
	uint64_t	 connections_evicted;	/* to make room for another peer */
	uint64_t	 accepts_deferred;	/* to a later turn of the loop */
	uint64_t	 reads_deferred;	/* the same, RPC_TURN_BUDGET_NS */
	uint64_t	 connections_timed_out;	/* handshake, first call, anon,
						   stalled output */
	uint64_t	 budget_refusals;	/* calls ended by a budget */
	uint64_t	 messages_timed_out;	/* incomplete past message_ms */
	size_t		 bytes_held;		/* this server's request bytes */
	size_t		 bytes_held_peak;
};
void	 rpc_server_get_stats(const struct rpc_server *,
	    struct rpc_server_stats *);

/*
 * State a handler keeps for a call on the peer's behalf (a challenge
 * waiting for its answer): charged to the call's connection, peer and
 * process budgets like request bytes, released when the call ends.
 * WICK_ERR_LIMIT when a budget says no (*what names it: "connection",
 * "peer", "process").
 */
int	 rpc_call_hold(struct rpc_call *, size_t, const char **what) WICK_WUR;
/*
 * The handler waits for another request message (a streaming call's
 * next step): it must begin within message_ms, or the call ends with
 * RESOURCE_EXHAUSTED, as for a message begun and not finished.
 */
void	 rpc_call_await_message(struct rpc_call *);

/* Call accessors (valid until on_done). */
/* Bytes of response messages queued on the call, not yet framed. */
size_t	 rpc_call_queued(const struct rpc_call *);
const char *rpc_call_path(const struct rpc_call *);
enum rpc_kind rpc_call_kind(const struct rpc_call *);
const struct rpc_peer *rpc_call_peer(const struct rpc_call *);
void	 rpc_call_set_data(struct rpc_call *, void *);
void	*rpc_call_data(const struct rpc_call *);
/*
 * One value a service keeps on the call's connection for the calls that
 * follow on it (the peer of a connection never changes: what was checked
 * about it may be remembered); 0 until set.  Set from an offloaded step,
 * it takes effect when the step is back on the loop; read on the loop.
 */
void	 rpc_call_set_conn_note(struct rpc_call *, uint64_t);
uint64_t rpc_call_conn_note(const struct rpc_call *);
/* Milliseconds left before the deadline; -1 when the call has none. */
int64_t	 rpc_call_deadline_left(const struct rpc_call *);
/* Request metadata: count, entry by index, first value by name. */
size_t	 rpc_call_md_count(const struct rpc_call *);
const struct rpc_md *rpc_call_md(const struct rpc_call *, size_t);
const struct rpc_md *rpc_call_md_get(const struct rpc_call *,
	    const char *name);

/*
 * Add response metadata (before the first message or the finish).
 * Names ending in -bin are base64-encoded on the wire.  Reserved names
 * (pseudo-headers, grpc-*, content-type, te) are refused.
 */
int	 rpc_call_add_header(struct rpc_call *, const char *name,
	    const void *value, size_t len) WICK_WUR;
int	 rpc_call_add_trailer(struct rpc_call *, const char *name,
	    const void *value, size_t len) WICK_WUR;
/*
 * Queue one response message.  WICK_ERR_AGAIN when the call's queue is
 * full (on_writable will run once it drained), WICK_ERR_STATE after finish.
 */
int	 rpc_call_send_message(struct rpc_call *, const uint8_t *, size_t)
	    WICK_WUR;
/*
 * For streams where only the newest message matters: queue it when
 * nothing is queued; else WICK_ERR_AGAIN, nothing is queued, and
 * on_writable runs once the queue is empty.  What a workload that does
 * not read makes us hold is then one message per stream.
 */
int	 rpc_call_send_latest(struct rpc_call *, const uint8_t *, size_t)
	    WICK_WUR;
/*
 * End the call with a status and message (percent-encoded on the wire).
 * Queued messages are sent first.  on_done(RPC_END_FINISHED) follows.
 */
int	 rpc_call_finish(struct rpc_call *, enum rpc_status, const char *msg);

/* Map a WICK_ERR_* code to a gRPC status. */
enum rpc_status rpc_status_from_err(int);
const char *rpc_status_name(int);

/* Encoding helpers (exposed for tests). */
int	 rpc_parse_timeout(const char *, int64_t *ms_out) WICK_WUR;
int	 rpc_percent_encode(const char *, char **out) WICK_WUR;
int	 rpc_percent_decode(const char *, char **out) WICK_WUR;
int	 rpc_base64_decode(const char *, size_t, uint8_t **out, size_t *lenp)
	    WICK_WUR;
int	 rpc_base64_encode(const uint8_t *, size_t, char **out) WICK_WUR;

#endif /* WICK_RPC_H */
