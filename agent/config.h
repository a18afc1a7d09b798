/*
 * config.h: wick-agent's configuration, from a file in SPIRE's agent.conf
 * syntax, command-line overrides, or the embedded defaults.  An unknown
 * option is an error naming it and its line; a SPIRE option wick does not
 * implement is a warning naming it.
 */
#ifndef WICK_AGENT_CONFIG_H
#define WICK_AGENT_CONFIG_H

#include <stdint.h>

#include "attestor_docker.h"
#include "conf.h"
#include "log.h"
#include "pkey.h"
#include "telemetry.h"

#define AGENT_DEFAULT_SOCKET		"/tmp/wick-agent/public/api.sock"
#define AGENT_DEFAULT_TRUST_DOMAIN	"example.org"	/* embedded only */
#define AGENT_DEFAULT_DATA_DIR		".data-agent"
#define AGENT_DEFAULT_SYNC		5		/* seconds */
#define AGENT_MAX_FOREIGN_CLAIMS	64

#define AGENT_DEFAULT_TCTI	"device:/dev/tpmrm0"

struct agent_config {
	char		*trust_domain;
	char		*server_address;
	int		 server_port;
	char		*socket_path;
	char		*data_dir;
	enum log_level	 log_level;
	enum log_format	 log_format;
	char		*log_file;		/* NULL: stderr */
	char		*trust_bundle_path;
	char		*trust_bundle_format;	/* "pem" or "spiffe" */
	int		 insecure_bootstrap;
	char		*join_token;		/* secret: wiped on cleanup */
	/* NodeAttestor "tpm" (else "join_token") */
	int		 tpm;
	char		*tpm_tcti;		/* "device:/dev/tpmrm0" */
	uint32_t	 tpm_pcrs;		/* sha256 PCRs, a bit each */
	int64_t		 sync_interval_ms;
	enum pkey_type	 svid_key_type;
	int		 allow_unauthenticated_verifiers;
	/* Claims ValidateJWTSVID passes on for other trust domains' tokens
	 * besides sub, aud and exp. */
	char		*foreign_claims[AGENT_MAX_FOREIGN_CLAIMS];
	size_t		 nforeign_claims;
	char		*keymgr;		/* "disk" or "memory" */
	char		*keys_dir;
	int		 unix_attestor;
	int		 docker_attestor;
	struct docker_opts docker_opts;
	int		 discover_workload_path;
	int64_t		 workload_size_limit;
	/* health_checks {} and telemetry { Prometheus {} } */
	struct telemetry_config telemetry;
};

struct agent_flags {
	const char	*config;
	const char	*data_dir;
	const char	*join_token;
	const char	*server_address;
	int		 server_port;
	const char	*socket_path;
	const char	*trust_bundle;
	const char	*trust_domain;
	const char	*log_level;
	int		 expand_env;
};

int	 agent_config_load(const struct agent_flags *, struct agent_config *,
	    struct conf_error *) WICK_WUR;
void	 agent_config_cleanup(struct agent_config *);

#endif /* WICK_AGENT_CONFIG_H */
