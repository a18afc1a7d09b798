/*
 * config.h: wick-server's configuration, from a file in SPIRE's
 * server.conf syntax, command-line overrides, or the embedded defaults.
 *
 * server_config_load() checks every block against the options wick
 * knows: an unknown option is an error naming it and its line; a SPIRE
 * option wick does not implement is a warning naming it.
 */
#ifndef WICK_SERVER_CONFIG_H
#define WICK_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "log.h"
#include "pkey.h"
#include "telemetry.h"

#define SERVER_DEFAULT_PORT		8081
#define SERVER_DEFAULT_SOCKET		"/tmp/wick-server/private/api.sock"
#define SERVER_DEFAULT_TRUST_DOMAIN	"example.org"	/* embedded only */
#define SERVER_DEFAULT_DATA_DIR		".data"
#define SERVER_MAX_ADMIN_UIDS		64
#define SERVER_MAX_SUBJECT_ITEMS	8
#define SERVER_EVENTS_RETENTION		(12 * 3600)	/* as SPIRE's */

struct server_config {
	char		*trust_domain;
	char		*bind_address;
	int		 bind_port;
	char		*socket_path;
	char		*data_dir;
	enum log_level	 log_level;
	enum log_format	 log_format;
	char		*log_file;	/* NULL: stderr */
	enum pkey_type	 ca_key_type;
	enum pkey_type	 jwt_key_type;
	int64_t		 ca_ttl;
	int64_t		 x509_svid_ttl;
	int64_t		 jwt_svid_ttl;
	int64_t		 wit_svid_ttl;
	int64_t		 agent_ttl;
	char		*jwt_issuer;	/* "" = no iss claim */
	char		*wit_issuer;
	char		*subject_country[SERVER_MAX_SUBJECT_ITEMS];
	size_t		 nsubject_country;
	char		*subject_org[SERVER_MAX_SUBJECT_ITEMS];
	size_t		 nsubject_org;
	char		*subject_cn;
	uid_t		 admin_uids[SERVER_MAX_ADMIN_UIDS];
	size_t		 nadmin_uids;
	int64_t		 audit_retention; /* seconds; 0 = keep forever */
	/* experimental.prune_events_older_than: the change log's retention
	 * (seconds), as SPIRE's events table. */
	int64_t		 events_retention;
	/* plugins */
	char		*ds_type;	/* "sqlite3" */
	char		*ds_conn;
	char		*keymgr;	/* "disk" or "memory" */
	char		*keys_path;
	int		 join_token;	/* NodeAttestor "join_token" */
	int		 tpm;		/* NodeAttestor "tpm": */
	char		*tpm_ca_path;	/* EK manufacturer CAs, or NULL */
	char		*tpm_hash_path;	/* allowed EK hashes, or NULL */
	char		*tpm_pcrs;	/* "sha256:0,1,...", or NULL */
	char		*upstream_cert;	/* UpstreamAuthority "disk" */
	char		*upstream_key;
	char		*upstream_bundle;
	/* health_checks {} and telemetry { Prometheus {} } */
	struct telemetry_config telemetry;
};

/* Command-line overrides of "run" (NULL / 0 = not given). */
struct server_flags {
	const char	*config;
	const char	*bind_address;
	int		 port;
	const char	*socket_path;
	const char	*trust_domain;
	const char	*data_dir;
	const char	*log_level;
	const char	*log_format;
	int		 expand_env;
};

/*
 * Load the file named by flags->config (or the embedded defaults when it
 * is NULL), apply the flags and fill *cfg.  On error, err->msg says what
 * and where.  Warnings go to the log.
 */
int	 server_config_load(const struct server_flags *,
	    struct server_config *, struct conf_error *err) WICK_WUR;
void	 server_config_cleanup(struct server_config *);

#endif /* WICK_SERVER_CONFIG_H */
