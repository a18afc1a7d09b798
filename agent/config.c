/*
 * config.c: wick-agent's configuration in SPIRE's agent.conf syntax.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attestor_docker.h"
#include "config.h"
#include "pcrsel.h"
#include "xmalloc.h"

static const char *const agent_known[] = {
	"trust_domain", "server_address", "server_port", "socket_path",
	"data_dir", "log_level", "log_format", "trust_bundle_path",
	"trust_bundle_format", "insecure_bootstrap", "join_token",
	"allow_unauthenticated_verifiers", "workload_x509_svid_key_type",
	"allowed_foreign_jwt_claims", "log_file",
	"experimental", NULL
};
static const char *const agent_unimpl[] = {
	"trust_bundle_url", "trust_bundle_unix_socket", "join_token_file",
	"availability_target",
	"x509_svid_cache_max_size", "jwt_svid_cache_max_size",
	"admin_socket_path", "authorized_delegates", "sds",
	"log_source_location", "profiling_enabled", "profiling_port",
	"profiling_freq", "profiling_names", "retry_bootstrap",
	"rebootstrap_mode", "rebootstrap_delay",
	"disable_spiffe_cert_validation", NULL
};
static const char *const experimental_known[] = {
	"sync_interval", "use_sync_authorized_entries", NULL
};
static const char *const experimental_unimpl[] = {
	"named_pipe_name", "ratelimit", "require_pq_kem", NULL
};
static const char *const top_known[] = {
	"agent", "plugins", "health_checks", "telemetry", NULL
};
static const char *const top_unimpl[] = { NULL };
static const char *const plugins_known[] = {
	"NodeAttestor", "KeyManager", "WorkloadAttestor", NULL
};
static const char *const plugins_unimpl[] = { "SVIDStore", NULL };
static const char *const disk_km_known[] = { "directory", NULL };
static const char *const unix_known[] = {
	"discover_workload_path", "workload_size_limit", NULL
};
static const char *const empty_known[] = { NULL };
static const char *const tpm_known[] = { "tcti", "pcrs", NULL };

static void
set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s == NULL ? NULL : xstrdup(s);
}

#define get_str	conf_get_string_dup

static int
load_agent_block(const struct conf *c, const json_t *a,
    struct agent_config *cfg, struct conf_error *err)
{
	const json_t	*ex;
	const char	*lvl, *fmt, *kt;
	int64_t		 port;
	int		 r;

	if ((r = conf_check_keys(c, a, "agent", agent_known, agent_unimpl,
	    NULL, NULL, err)) != 0)
		return r;
	if ((r = get_str(c, a, "trust_domain", cfg->trust_domain,
	    &cfg->trust_domain, err)) != 0 ||
	    (r = get_str(c, a, "server_address", cfg->server_address,
	    &cfg->server_address, err)) != 0 ||
	    (r = conf_get_int_range(c, a, "server_port", cfg->server_port, 1,
	    65535, &port, err)) != 0 ||
	    (r = get_str(c, a, "socket_path", cfg->socket_path,
	    &cfg->socket_path, err)) != 0 ||
	    (r = get_str(c, a, "data_dir", cfg->data_dir, &cfg->data_dir,
	    err)) != 0 ||
	    (r = get_str(c, a, "trust_bundle_path", NULL,
	    &cfg->trust_bundle_path, err)) != 0 ||
	    (r = get_str(c, a, "trust_bundle_format", "pem",
	    &cfg->trust_bundle_format, err)) != 0 ||
	    (r = conf_get_bool(c, a, "insecure_bootstrap", 0,
	    &cfg->insecure_bootstrap, err)) != 0 ||
	    (r = get_str(c, a, "join_token", NULL, &cfg->join_token,
	    err)) != 0 ||
	    (r = conf_get_bool(c, a, "allow_unauthenticated_verifiers", 0,
	    &cfg->allow_unauthenticated_verifiers, err)) != 0 ||
	    (r = get_str(c, a, "log_file", NULL, &cfg->log_file, err)) != 0)
		return r;
	cfg->server_port = (int)port;
	if (cfg->log_file != NULL && *cfg->log_file == '\0') {
		free(cfg->log_file);	/* "" is stderr, as unset */
		cfg->log_file = NULL;
	}
	if ((ex = json_object_get(a, "allowed_foreign_jwt_claims")) != NULL) {
		size_t i;

		if (!json_is_array(ex) || json_array_size(ex) >
		    AGENT_MAX_FOREIGN_CLAIMS)
			return conf_error_at(c, a, "allowed_foreign_jwt_claims",
			    err, "\"allowed_foreign_jwt_claims\" must be a list "
			    "of at most %d claim names", AGENT_MAX_FOREIGN_CLAIMS);
		for (i = 0; i < json_array_size(ex); i++) {
			if (!json_is_string(json_array_get(ex, i)))
				return conf_error_at(c, a,
				    "allowed_foreign_jwt_claims", err,
				    "\"allowed_foreign_jwt_claims\" must hold "
				    "strings");
			cfg->foreign_claims[cfg->nforeign_claims++] = xstrdup(
			    json_string_value(json_array_get(ex, i)));
		}
	}
	if (strcmp(cfg->trust_bundle_format, "pem") != 0 &&
	    strcmp(cfg->trust_bundle_format, "spiffe") != 0)
		return conf_error_at(c, a, "trust_bundle_format", err,
		    "\"trust_bundle_format\" must be \"pem\" or \"spiffe\"");
	if ((r = conf_get_string(c, a, "workload_x509_svid_key_type",
	    "ec-p256", &kt, err)) != 0)
		return r;
	if (pkey_type_parse(kt, &cfg->svid_key_type) != 0)
		return conf_error_at(c, a, "workload_x509_svid_key_type", err,
		    "unknown key type \"%s\" (ec-p256, ec-p384, rsa-2048 or "
		    "rsa-4096)", kt);
	if ((r = conf_get_string(c, a, "log_level", "info", &lvl, err)) != 0)
		return r;
	if (log_level_parse(lvl, &cfg->log_level) != 0)
		return conf_error_at(c, a, "log_level", err,
		    "\"log_level\": unknown level \"%s\"", lvl);
	if ((r = conf_get_string(c, a, "log_format", "text", &fmt, err)) != 0)
		return r;
	if (log_format_parse(fmt, &cfg->log_format) != 0)
		return conf_error_at(c, a, "log_format", err,
		    "\"log_format\": must be \"text\" or \"json\"");
	if ((ex = json_object_get(a, "experimental")) != NULL) {
		if ((r = conf_check_keys(c, ex, "experimental",
		    experimental_known, experimental_unimpl, NULL, NULL,
		    err)) != 0)
			return r;
		int64_t s;

		if ((r = conf_get_duration(c, ex, "sync_interval",
		    cfg->sync_interval_ms / 1000, &s, err)) != 0)
			return r;
		if (s < 1 || s > 3600)
			return conf_error_at(c, ex, "sync_interval", err,
			    "\"sync_interval\" must be between 1s and 1h");
		cfg->sync_interval_ms = s * 1000;
	}
	return 0;
}

static int
load_plugins(const struct conf *c, const json_t *pl, struct agent_config *cfg,
    struct conf_error *err)
{
	static const char *const na[] = { "join_token", "tpm", NULL };
	static const char *const km[] = { "disk", "memory", NULL };
	static const char *const wa[] = { "unix", "docker", NULL };
	const json_t	*d, *empty = json_object(), *datas[2];
	const char	*name, *why, *names[2];
	char		*pcrs = NULL;
	size_t		 i, n;
	int		 r;

	if ((r = conf_check_keys(c, pl, "plugins", plugins_known,
	    plugins_unimpl, NULL, NULL, err)) != 0 ||
	    (r = conf_plugin(c, pl, "NodeAttestor", na, &name, &d, err)) != 0)
		goto out;
	if (name != NULL && strcmp(name, "tpm") == 0) {
		d = d != NULL ? d : empty;
		cfg->tpm = 1;
		if ((r = conf_check_keys(c, d, "NodeAttestor \"tpm\"",
		    tpm_known, NULL, NULL, NULL, err)) != 0 ||
		    (r = get_str(c, d, "tcti", AGENT_DEFAULT_TCTI,
		    &cfg->tpm_tcti, err)) != 0 ||
		    (r = get_str(c, d, "pcrs", NULL, &pcrs, err)) != 0)
			goto out;
		if (pcrs != NULL && pcrsel_parse(pcrs, &cfg->tpm_pcrs,
		    &why) != 0) {
			r = conf_error_at(c, d, "pcrs", err, "pcrs \"%s\": %s",
			    pcrs, why);
			goto out;
		}
	} else if (name != NULL && d != NULL && (r = conf_check_keys(c, d,
	    "NodeAttestor \"join_token\"", empty_known, NULL, NULL, NULL,
	    err)) != 0)
		goto out;
	if ((r = conf_plugin(c, pl, "KeyManager", km, &name, &d, err)) != 0)
		goto out;
	if (name != NULL) {
		d = d != NULL ? d : empty;
		set_str(&cfg->keymgr, name);
		if ((r = conf_check_keys(c, d, name, strcmp(name, "disk") == 0 ?
		    disk_km_known : empty_known, NULL, NULL, NULL, err)) != 0 ||
		    (r = get_str(c, d, "directory", cfg->keys_dir,
		    &cfg->keys_dir, err)) != 0)
			goto out;
	}
	/* WorkloadAttestor blocks: every one that is configured runs. */
	if ((r = conf_plugins(c, pl, "WorkloadAttestor", wa, 2, names, datas,
	    &n, err)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		d = datas[i] != NULL ? datas[i] : empty;
		if (strcmp(names[i], "docker") == 0) {
			cfg->docker_attestor = 1;
			if ((r = docker_opts_parse(c, datas[i],
			    &cfg->docker_opts, err)) != 0)
				goto out;
			continue;
		}
		cfg->unix_attestor = 1;
		if ((r = conf_check_keys(c, d, "WorkloadAttestor \"unix\"",
		    unix_known, NULL, NULL, NULL, err)) != 0 ||
		    (r = conf_get_bool(c, d, "discover_workload_path", 0,
		    &cfg->discover_workload_path, err)) != 0 ||
		    (r = conf_get_int(c, d, "workload_size_limit", 0,
		    &cfg->workload_size_limit, err)) != 0)
			goto out;
	}
out:
	free(pcrs);
	json_decref((json_t *)empty);
	return r;
}

static void
defaults(struct agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->server_address = xstrdup("127.0.0.1");
	cfg->server_port = 8081;
	cfg->socket_path = xstrdup(AGENT_DEFAULT_SOCKET);
	cfg->data_dir = xstrdup(AGENT_DEFAULT_DATA_DIR);
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->log_format = LOG_FORMAT_TEXT;
	cfg->trust_bundle_format = xstrdup("pem");
	cfg->sync_interval_ms = AGENT_DEFAULT_SYNC * 1000;
	cfg->svid_key_type = PKEY_EC_P256;
	cfg->keymgr = xstrdup("disk");
	cfg->unix_attestor = 1;
	telemetry_config_init(&cfg->telemetry);
}

static int
finish(const struct agent_flags *fl, struct agent_config *cfg,
    struct conf_error *err)
{
	int r;

	if (fl->data_dir != NULL)
		set_str(&cfg->data_dir, fl->data_dir);
	if (fl->join_token != NULL)
		set_str(&cfg->join_token, fl->join_token);
	if (fl->server_address != NULL)
		set_str(&cfg->server_address, fl->server_address);
	if (fl->server_port > 0)
		cfg->server_port = fl->server_port;
	if (fl->socket_path != NULL)
		set_str(&cfg->socket_path, fl->socket_path);
	if (fl->trust_bundle != NULL)
		set_str(&cfg->trust_bundle_path, fl->trust_bundle);
	if (fl->trust_domain != NULL)
		set_str(&cfg->trust_domain, fl->trust_domain);
	if (fl->log_level != NULL && log_level_parse(fl->log_level,
	    &cfg->log_level) != 0) {
		snprintf(err->msg, sizeof(err->msg),
		    "-logLevel: unknown level \"%s\"", fl->log_level);
		return WICK_ERR_CONFIG;
	}
	if ((r = conf_trust_domain(&cfg->trust_domain, err)) != 0)
		return r;
	if (cfg->keys_dir == NULL || *cfg->keys_dir == '\0')
		set_str(&cfg->keys_dir, cfg->data_dir);
	if (cfg->insecure_bootstrap) {
		/* Trusting whatever answers at the server address on first
		 * contact is the one step wick does not take. */
		snprintf(err->msg, sizeof(err->msg), "insecure_bootstrap is not "
		    "supported: give the server's CA bundle with "
		    "trust_bundle_path (or -trustBundle)");
		return WICK_ERR_CONFIG;
	}
	if (!cfg->unix_attestor && !cfg->docker_attestor) {
		snprintf(err->msg, sizeof(err->msg), "no WorkloadAttestor is "
		    "configured (wick supports WorkloadAttestor \"unix\" and "
		    "\"docker\")");
		return WICK_ERR_CONFIG;
	}
	return 0;
}

int
agent_config_load(const struct agent_flags *fl, struct agent_config *cfg,
    struct conf_error *err)
{
	struct conf	*c = NULL;
	const json_t	*root, *a, *pl;
	int		 r;

	memset(err, 0, sizeof(*err));
	defaults(cfg);
	if (fl->config == NULL) {
		set_str(&cfg->trust_domain, AGENT_DEFAULT_TRUST_DOMAIN);
		return finish(fl, cfg, err);
	}
	if ((r = conf_load_daemon(fl->config, fl->expand_env, "agent",
	    top_known, top_unimpl, &c, &a, err)) != 0)
		return r;
	root = conf_root(c);
	if ((r = load_agent_block(c, a, cfg, err)) != 0 ||
	    (r = telemetry_config_load(c, root, &cfg->telemetry, err)) != 0)
		goto out;
	if ((pl = json_object_get(root, "plugins")) != NULL) {
		cfg->unix_attestor = cfg->docker_attestor = 0;
		if ((r = load_plugins(c, pl, cfg, err)) != 0)
			goto out;
	}
	r = finish(fl, cfg, err);
out:
	conf_free(c);
	return r;
}

void
agent_config_cleanup(struct agent_config *cfg)
{
	size_t i;

	free(cfg->trust_domain);
	free(cfg->server_address);
	free(cfg->socket_path);
	free(cfg->data_dir);
	free(cfg->log_file);
	free(cfg->trust_bundle_path);
	free(cfg->trust_bundle_format);
	if (cfg->join_token != NULL) {
		wipe(cfg->join_token, strlen(cfg->join_token));
		free(cfg->join_token);
	}
	free(cfg->keymgr);
	free(cfg->keys_dir);
	free(cfg->tpm_tcti);
	docker_opts_cleanup(&cfg->docker_opts);
	for (i = 0; i < cfg->nforeign_claims; i++)
		free(cfg->foreign_claims[i]);
	telemetry_config_cleanup(&cfg->telemetry);
	memset(cfg, 0, sizeof(*cfg));
}
