/*
 * reload.c: what wick-agent does on SIGHUP.
 *
 * The log file is opened again first (logrotate renamed it), so that
 * rotation works even when the configuration file is broken.  Then the
 * file the agent started with is read again by the code that read it at
 * start (agent_config_load(), the same command-line flags on top), and
 * only once all of it is valid is anything applied: log_level, log_format
 * and log_file.  Every other setting that differs is named as needing a
 * restart; values are never logged (join_token is a secret).
 *
 * The file is small and read on the loop: a SIGHUP is rare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "log.h"

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (!str_eq(a[i], b[i]))
			return 0;
	return 1;
}

static int
docker_eq(const struct docker_opts *a, const struct docker_opts *b)
{
	return str_eq(a->socket_path, b->socket_path) &&
	    str_eq(a->podman_socket_path, b->podman_socket_path) &&
	    str_eq(a->version, b->version) && a->verbose == b->verbose &&
	    a->timeout_ms == b->timeout_ms &&
	    strv_eq(a->matchers, a->nmatchers, b->matchers, b->nmatchers);
}

/* Log one line per setting that differs and that only a restart
 * applies; returns how many. */
static int
restart_needed(const struct agent_config *o, const struct agent_config *n)
{
	const struct {
		const char	*name;
		int		 changed;
	} t[] = {
		{ "trust_domain", !str_eq(o->trust_domain, n->trust_domain) },
		{ "server_address", !str_eq(o->server_address,
		    n->server_address) },
		{ "server_port", o->server_port != n->server_port },
		{ "socket_path", !str_eq(o->socket_path, n->socket_path) },
		{ "data_dir", !str_eq(o->data_dir, n->data_dir) },
		{ "trust_bundle_path", !str_eq(o->trust_bundle_path,
		    n->trust_bundle_path) },
		{ "trust_bundle_format", !str_eq(o->trust_bundle_format,
		    n->trust_bundle_format) },
		{ "join_token", !str_eq(o->join_token, n->join_token) },
		{ "allow_unauthenticated_verifiers",
		    o->allow_unauthenticated_verifiers !=
		    n->allow_unauthenticated_verifiers },
		{ "allowed_foreign_jwt_claims", !strv_eq(o->foreign_claims,
		    o->nforeign_claims, n->foreign_claims,
		    n->nforeign_claims) },
		{ "workload_x509_svid_key_type", o->svid_key_type !=
		    n->svid_key_type },
		{ "experimental sync_interval", o->sync_interval_ms !=
		    n->sync_interval_ms },
		{ "NodeAttestor", o->tpm != n->tpm || !str_eq(o->tpm_tcti,
		    n->tpm_tcti) || o->tpm_pcrs != n->tpm_pcrs },
		{ "KeyManager", !str_eq(o->keymgr, n->keymgr) ||
		    !str_eq(o->keys_dir, n->keys_dir) },
		{ "WorkloadAttestor \"unix\"", o->unix_attestor !=
		    n->unix_attestor || o->discover_workload_path !=
		    n->discover_workload_path || o->workload_size_limit !=
		    n->workload_size_limit },
		{ "WorkloadAttestor \"docker\"", o->docker_attestor !=
		    n->docker_attestor || !docker_eq(&o->docker_opts,
		    &n->docker_opts) },
		{ "health_checks", (telemetry_config_diff(&o->telemetry,
		    &n->telemetry) & TELEMETRY_DIFF_HEALTH) != 0 },
		{ "telemetry", (telemetry_config_diff(&o->telemetry,
		    &n->telemetry) & TELEMETRY_DIFF_PROMETHEUS) != 0 },
	};
	size_t	i;
	int	count = 0;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (!t[i].changed)
			continue;
		log_warn("reload: %s changed: it needs a restart to take "
		    "effect; the running value stays", t[i].name);
		count++;
	}
	return count;
}

void
agent_reload(struct agent *a)
{
	struct agent_config	 nc;
	struct agent_config	*cfg = a->cfg;
	struct conf_error	 err;
	char			 why[LOG_MAX_WHY];
	const char		*path = a->flags->config;
	int			 r, napplied = 0, nrestart;

	if (cfg->log_file != NULL && log_open_file(cfg->log_file, why,
	    sizeof(why)) != 0)
		log_error("reload: cannot open log_file again: %s; lines go "
		    "to the file open before", why);
	if (path == NULL) {
		log_info("reload: the log file was opened again; there is no "
		    "configuration file to read");
		return;
	}
	memset(&nc, 0, sizeof(nc));
	if ((r = agent_config_load(a->flags, &nc, &err)) != 0) {
		log_error("reload: %s: %s; nothing was changed", path,
		    err.msg[0] != '\0' ? err.msg : wick_strerror(r));
		agent_config_cleanup(&nc);
		return;
	}
	/* The one step that can still fail comes first. */
	if (!str_eq(cfg->log_file, nc.log_file)) {
		if (log_open_file(nc.log_file, why, sizeof(why)) != 0) {
			log_error("reload: log_file: %s; nothing was changed",
			    why);
			agent_config_cleanup(&nc);
			return;
		}
		log_info("reload: log_file is now %s (was %s)",
		    nc.log_file != NULL ? nc.log_file : "stderr",
		    cfg->log_file != NULL ? cfg->log_file : "stderr");
		free(cfg->log_file);
		cfg->log_file = nc.log_file;
		nc.log_file = NULL;
		napplied++;
	}
	if (cfg->log_format != nc.log_format) {
		log_set_format(nc.log_format);
		log_info("reload: log_format is now %s",
		    nc.log_format == LOG_FORMAT_JSON ? "json" : "text");
		cfg->log_format = nc.log_format;
		napplied++;
	}
	if (cfg->log_level != nc.log_level) {
		log_set_level(nc.log_level);
		log_info("reload: log_level is now %s (was %s)",
		    log_level_name(nc.log_level),
		    log_level_name(cfg->log_level));
		cfg->log_level = nc.log_level;
		napplied++;
	}
	nrestart = restart_needed(cfg, &nc);
	log_info("reload: %s read again: %d setting%s applied, %d need%s a "
	    "restart", path, napplied, napplied == 1 ? "" : "s", nrestart,
	    nrestart == 1 ? "s" : "");
	agent_config_cleanup(&nc);
}
