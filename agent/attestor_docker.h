/*
 * attestor_docker.h: the docker workload attestor (SPIRE's "docker").
 *
 * Which container a calling process runs in comes from the kernel:
 * /proc/<pid>/cgroup, read when the call is attested.  What the container
 * is comes from the container engine's API (Docker, or podman's
 * Docker-compatible service) over its Unix socket: GET
 * /v<version>/containers/<id>/json, through libcurl's multi interface
 * driven by the agent's libuv loop.  The selectors, of type "docker", are
 * SPIRE's:
 *
 *	label:<key>:<value>	each Config.Labels entry
 *	env:<NAME>=<value>	each Config.Env entry, as the engine has it
 *	image_id:<Config.Image>	the image name the container was created
 *				from, e.g. "envoyproxy/envoy:v1"
 *	image_config_digest:<Image>  the image ID the container runs,
 *				"sha256:<64 hex>" only
 *
 * A value that cannot be a selector (longer than SELECTOR_MAX_VALUE_LEN,
 * a control character, a label key holding ':') is skipped, never
 * shortened: a workload never gets a selector its container did not ask
 * for.
 *
 * Finding the container.  Each cgroup line names a path; the first path
 * element (from the root) that is a container ID names the container:
 * exactly 64 lower-case hex digits, alone or as docker-<id>,
 * libpod-<id>, cri-containerd-<id> or crio-<id> with an optional
 * ".scope" (cgroupfs /docker/<id>, systemd docker-<id>.scope, kubepods,
 * podman /libpod_parent/libpod-<id>).  No other hex string counts (hosts
 * here sit in cgroups with 32-hex names).  Every line that names a
 * container must name the same one.  The cgroup that holds the
 * container's must be one that only root (or the agent's own user) can
 * create cgroups in: every directory from the hierarchy's mount point
 * down to the container's cgroup is checked, so a user who was delegated
 * a cgroup subtree (systemd user sessions) cannot name a cgroup after
 * someone else's container and be taken for it.  This also refuses
 * rootless containers.
 *
 * Where every cgroup path of the process is "/" (it sits at the root of
 * the agent's cgroup namespace: a cgroup namespace hides the path), the
 * container ID is looked for in /proc/<pid>/mountinfo instead: the root
 * of cgroup mounts, and the files engines bind-mount into containers
 * (.../containers/<id>/hostname for Docker,
 * .../overlay-containers/<id>/userdata/... for podman).  A process can
 * rewrite its own mount table (user namespaces), so that answer is taken
 * only when it is the container the agent itself runs in, as the agent's
 * own mountinfo says: the process shares the agent's cgroup, so that is
 * the only container it can be in.  An agent in no container does not
 * read the process's mounts at all (it could believe none of them).
 *
 * Engines.  A container named in libpod's form is asked of
 * podman_socket_path, any other of docker_socket_path (as SPIRE).  The
 * API version is docker_version, or negotiated once per engine: the
 * lower of DOCKER_API_VERSION and the engine's (the API-Version header
 * of GET /_ping), again after the engine could not be reached or
 * refused the version (400).  Answers
 * are bounded (DOCKER_MAX_RESPONSE), parsed strictly, and must name the
 * container asked for, running.  No request waits longer than
 * timeout_ms, at most DOCKER_MAX_FETCHES are in flight (attestations of
 * one container share one, at most DOCKER_MAX_WAITERS of them), the rest
 * queue, each with its deadline.
 *
 * Cache.  Answers are kept per engine and container ID for at most
 * DOCKER_CACHE_TTL_MS, and only for the same cgroup directory (device
 * and inode): a restarted container gets a new cgroup, so its next
 * attestation asks the engine again.  An engine that says 404 drops the
 * entry.  A container's labels, environment and image cannot change
 * while it keeps its ID; a re-created one has a new ID.
 *
 * Loop thread only; nothing here blocks on the engine.  Reading
 * /proc/<pid>/{cgroup,mountinfo} and stat() of cgroup directories are
 * done on the loop (procfs and cgroupfs, as the unix attestor does).
 * Allocation failures are errors, never fatal.
 */
#ifndef WICK_ATTESTOR_DOCKER_H
#define WICK_ATTESTOR_DOCKER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "conf.h"
#include "err.h"
#include "peercred.h"
#include "selector.h"

/* Container IDs, engine answers, /proc files. */
#define DOCKER_ID_LEN		64	/* hex digits */
#define DOCKER_MAX_RESPONSE	(1024 * 1024)	/* one engine answer */
#define DOCKER_MAX_CGROUP_FILE	(64 * 1024)	/* /proc/<pid>/cgroup */
#define DOCKER_MAX_CGROUP_LINES	64	/* hierarchies in it */
#define DOCKER_MAX_MOUNTINFO	(4 * 1024 * 1024) /* a mountinfo */
#define DOCKER_MAX_LABELS	200	/* Config.Labels entries */
#define DOCKER_MAX_ENV		200	/* Config.Env entries */
/* Configuration. */
#define DOCKER_MAX_MATCHERS	32	/* container_id_cgroup_matchers */
#define DOCKER_MAX_MATCHER_LEN	512	/* bytes of one pattern */
#define DOCKER_MAX_SOCKET_PATH	107	/* sun_path less its NUL */
#define DOCKER_DEFAULT_TIMEOUT_MS 5000
#define DOCKER_DEFAULT_SOCKET	"/var/run/docker.sock"
#define DOCKER_DEFAULT_PODMAN_SOCKET "/run/podman/podman.sock"
/* The client and the cache. */
#define DOCKER_MAX_FETCHES	16	/* engine requests in flight */
#define DOCKER_MAX_QUEUED	256	/* requests waiting for a slot */
#define DOCKER_MAX_REQS		1024	/* attestations waiting */
#define DOCKER_MAX_WAITERS	256	/* ... of one container, so one
					   that floods cannot take them all */
#define DOCKER_MAX_CACHE	256	/* containers cached */
#define DOCKER_MAX_CACHE_BYTES	(8 * 1024 * 1024) /* their selectors */
#define DOCKER_CACHE_TTL_MS	30000
#define DOCKER_API_VERSION	"1.51"	/* the newest we ask for */
#define DOCKER_API_VERSION_OLD	"1.24"	/* if /_ping does not say */

struct docker;		/* config, engine client, cache; loop thread */
struct docker_req;	/* one attestation in flight */

/*
 * plugin_data of WorkloadAttestor "docker".  Socket paths are plain
 * absolute paths here ("unix://" removed).  Owned strings: free with
 * docker_opts_cleanup().
 */
struct docker_opts {
	char		*socket_path;	/* docker_socket_path */
	char		*podman_socket_path;
	char		*version;	/* docker_version; "" negotiate */
	char		**matchers;	/* container_id_cgroup_matchers */
	size_t		 nmatchers;
	int		 verbose;	/* verbose_container_locator_logs */
	int64_t		 timeout_ms;	/* ours, not an option of SPIRE's:
					   DOCKER_DEFAULT_TIMEOUT_MS */
	const char	*proc_root;	/* "/proc"; tests point elsewhere;
					   not owned */
};

/*
 * Read plugin_data (NULL: all defaults) into *o (cleared first; clean it
 * up even on failure).  SPIRE's options:
 *	docker_socket_path	"unix:///var/run/docker.sock";
 *				"unix://<path>" or an absolute path
 *	podman_socket_path	"unix:///run/podman/podman.sock"
 *	docker_version		"" (negotiate) or "1.41" / "v1.41"
 *	container_id_cgroup_matchers  SPIRE's patterns: '/'-separated
 *				elements, "*" any one element, "<id>" the
 *				container ID element (exactly once, and it
 *				must be a 64-hex ID), others literal; the
 *				whole path must match; two patterns that
 *				could match one path are an error.  As
 *				SPIRE, they need use_new_container_locator
 *				= false, and replace the built-in rules
 *				(no mountinfo fallback with them).
 *	use_new_container_locator, verbose_container_locator_logs  booleans
 * and warns (as not implemented) of podman_socket_path_template
 * (rootless podman), sigstore and docker_host (Windows).  Anything else
 * is an error naming it.
 */
int	 docker_opts_parse(const struct conf *, const json_t *plugin_data,
	    struct docker_opts *, struct conf_error *) WICK_WUR;
void	 docker_opts_cleanup(struct docker_opts *);

/*
 * Start the attestor: reads the agent's own <proc_root>/self/mountinfo
 * (its cgroup hierarchies, and the container it runs in, if any).  The
 * options are copied (NULL sockets and proc_root, and a timeout_ms of 0,
 * give the defaults).  libcurl is loaded here, once per process:
 * WICK_ERR_CONFIG, logged with the loader's reason, when it cannot be.
 */
int	 docker_new(uv_loop_t *, const struct docker_opts *,
	    struct docker **) WICK_WUR;
/*
 * Stop: attestations still waiting complete with WICK_ERR_CANCELLED
 * (before docker_close() returns), then curl's and libuv's handles are
 * closed and done(arg) (done may be NULL) runs from a close callback,
 * after which the struct is gone.  Once; may be called from a done
 * callback.
 */
void	 docker_close(struct docker *, void (*done)(void *), void *arg);

/*
 * The result of one attestation.  r is 0 when the docker selectors were
 * added to out, or when the process is in no container (nothing added).
 * Otherwise out is unchanged and why says what happened:
 *	WICK_ERR_NOT_FOUND	the engine does not know the container
 *	WICK_ERR_STATE		the process is gone, or its container is
 *				not running
 *	WICK_ERR_PERM		the process's container cannot be trusted
 *				(a cgroup others may create, a mount table
 *				that names another container)
 *	WICK_ERR_INVALID	a /proc file or engine answer that is not
 *				what it must be
 *	WICK_ERR_TIMEOUT	no answer within timeout_ms
 *	WICK_ERR_UNAVAILABLE	the engine cannot be reached
 *	WICK_ERR_PROTOCOL	not an HTTP answer, or an unexpected status
 *	WICK_ERR_LIMIT		an answer or a count beyond our limits,
 *				too many attestations waiting, too many
 *				selectors for out
 *	WICK_ERR_CANCELLED	docker_close()
 *	WICK_ERR_ALLOC
 * Engine failures are also logged here (rate-limited), once per request.
 */
typedef void docker_done_fn(void *arg, int r, const char *why);

/*
 * Attest the process cred names.  done runs exactly once, unless
 * docker_cancel(): it may run before docker_attest() returns (no
 * container, a cached container, or an error found at once) and then
 * *req is NULL; otherwise *req is the attestation in flight and done
 * runs from the loop.  out must stay valid until done has run or the
 * request is cancelled.  The caller checks afterwards that the process
 * is still the one that connected (peercred_check_alive()): the cgroup
 * was read while it was.  Returns 0, or WICK_ERR_STATE after
 * docker_close() (done does not run then).
 */
int	 docker_attest(struct docker *, const struct peercred *,
	    struct selector_set *out, docker_done_fn *, void *arg,
	    struct docker_req **req) WICK_WUR;
/*
 * The caller is gone: done never runs and out is not touched again.
 * NULL is fine; a request whose done has run must not be cancelled.
 * The engine request goes on (its answer is cached).
 */
void	 docker_cancel(struct docker_req *);

/*
 * Pure functions, for the attestor itself, unit tests and the fuzz
 * target.
 */
struct docker_found {
	char	 id[DOCKER_ID_LEN + 1];	/* "" when none */
	int	 podman;	/* libpod's naming: podman_socket_path */
	int	 hidden;	/* (cgroup) no ID, every path is "/" */
};

/*
 * The container of a process from its /proc/<pid>/cgroup text (with
 * opts->matchers if any, else the built-in rules above; opts may be
 * NULL).  WICK_ERR_NOT_FOUND when no line names one (f->hidden says
 * whether the mountinfo fallback applies); WICK_ERR_INVALID for a
 * malformed file, two containers, or a matcher whose <id> is not an ID;
 * WICK_ERR_LIMIT beyond DOCKER_MAX_CGROUP_LINES.
 */
int	 docker_container_id(const char *text, size_t len,
	    const struct docker_opts *, struct docker_found *, char *why,
	    size_t whylen) WICK_WUR;
/*
 * The container named by a /proc/<pid>/mountinfo text (see above).
 * WICK_ERR_NOT_FOUND when none; WICK_ERR_INVALID for a malformed line or
 * two containers.
 */
int	 docker_mountinfo_id(const char *text, size_t len,
	    struct docker_found *, char *why, size_t whylen) WICK_WUR;

/* What an engine's inspect answer says, as selectors. */
struct docker_info {
	char			 id[DOCKER_ID_LEN + 1]; /* Id */
	int			 running;	/* State.Running */
	int64_t			 pid;		/* State.Pid */
	struct selector_set	 sel;		/* type "docker" */
	size_t			 skipped;	/* not selectors */
};

/*
 * Parse GET /containers/<id>/json: at most DOCKER_MAX_RESPONSE bytes,
 * one JSON object, duplicate keys rejected, and Id (64 hex), Config
 * (object; Labels an object of strings or null, at most
 * DOCKER_MAX_LABELS; Env an array of strings or null, at most
 * DOCKER_MAX_ENV; Image a string or null), Image (string or null) and
 * State (object; Running a boolean, Pid an integer) checked for type;
 * other fields are ignored.  *info is set up first: clean it up with
 * docker_info_cleanup() in every case.
 */
int	 docker_parse_inspect(const uint8_t *json, size_t len,
	    struct docker_info *, char *why, size_t whylen) WICK_WUR;
void	 docker_info_cleanup(struct docker_info *);

#endif /* WICK_ATTESTOR_DOCKER_H */
