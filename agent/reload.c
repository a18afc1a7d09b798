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
docker_eq(const struct docker_opts *a, const struct docker_opts *b)
{
	return conf_str_eq(a->socket_path, b->socket_path) &&
	    conf_str_eq(a->podman_socket_path, b->podman_socket_path) &&
	    conf_str_eq(a->version, b->version) && a->verbose == b->verbose &&
	    a->timeout_ms == b->timeout_ms && conf_strv_eq(a->matchers,
	    a->nmatchers, b->matchers, b->nmatchers);
}

/* Log one line per setting that differs and that only a restart
 * applies; returns how many. */
static int
restart_needed(const struct agent_config *o, const struct agent_config *n)
{
	const struct log_reload_change t[] = {
		{ "trust_domain", !conf_str_eq(o->trust_domain,
		    n->trust_domain) },
		{ "server_address", !conf_str_eq(o->server_address,
		    n->server_address) },
		{ "server_port", o->server_port != n->server_port },
		{ "socket_path", !conf_str_eq(o->socket_path,
		    n->socket_path) },
		{ "data_dir", !conf_str_eq(o->data_dir, n->data_dir) },
		{ "trust_bundle_path", !conf_str_eq(o->trust_bundle_path,
		    n->trust_bundle_path) },
		{ "trust_bundle_format", !conf_str_eq(o->trust_bundle_format,
		    n->trust_bundle_format) },
		{ "join_token", !conf_str_eq(o->join_token, n->join_token) },
		{ "allow_unauthenticated_verifiers",
		    o->allow_unauthenticated_verifiers !=
		    n->allow_unauthenticated_verifiers },
		{ "allowed_foreign_jwt_claims",
		    !conf_strv_eq(o->foreign_claims, o->nforeign_claims,
		    n->foreign_claims, n->nforeign_claims) },
		{ "workload_x509_svid_key_type", o->svid_key_type !=
		    n->svid_key_type },
		{ "experimental sync_interval", o->sync_interval_ms !=
		    n->sync_interval_ms },
		{ "NodeAttestor", o->tpm != n->tpm ||
		    !conf_str_eq(o->tpm_tcti, n->tpm_tcti) ||
		    o->tpm_pcrs != n->tpm_pcrs },
		{ "KeyManager", !conf_str_eq(o->keymgr, n->keymgr) ||
		    !conf_str_eq(o->keys_dir, n->keys_dir) },
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

	return log_reload_restart(t, sizeof(t) / sizeof(t[0]));
}

void
agent_reload(struct agent *a)
{
	struct agent_config	 nc;
	struct agent_config	*cfg = a->cfg;
	struct conf_error	 err;
	const char		*path = a->flags->config;
	int			 r, napplied = 0, nrestart;

	if (!log_reload_begin(cfg->log_file, path))
		return;
	memset(&nc, 0, sizeof(nc));
	if ((r = agent_config_load(a->flags, &nc, &err)) != 0) {
		log_error("reload: %s: %s; nothing was changed", path,
		    err.msg[0] != '\0' ? err.msg : wick_strerror(r));
		agent_config_cleanup(&nc);
		return;
	}
	if (log_reload_apply(&cfg->log_file, &cfg->log_format,
	    &cfg->log_level, &nc.log_file, nc.log_format, nc.log_level,
	    &napplied) != 0) {
		agent_config_cleanup(&nc);
		return;
	}
	nrestart = restart_needed(cfg, &nc);
	log_reload_done(path, napplied, nrestart);
	agent_config_cleanup(&nc);
}
