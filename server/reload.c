/*
 * reload.c: what wick-server does on SIGHUP.
 *
 * The log file is opened again first (logrotate renamed it), so that
 * rotation works even when the configuration file is broken.  Then the
 * file the server started with is read again by the code that read it at
 * start (server_config_load(), the same command-line flags on top), and
 * only once all of it is valid is anything applied: the settings that can
 * change under a running server (log_level, log_format, log_file, the
 * default SVID TTLs and agent_ttl, which are read at each signing).
 * Every other setting that differs is named as needing a restart; values
 * are never logged, since some options may hold secrets.  The relayd
 * lesson: a new configuration is built beside the running one, never
 * edited into it.
 *
 * The file is small and read on the loop: a SIGHUP is rare, and the
 * daemon should answer nothing in between with a half-read configuration
 * anyway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "server.h"

/* Log one line per setting that differs and that only a restart
 * applies; returns how many. */
static int
restart_needed(const struct server_config *o, const struct server_config *n)
{
	const struct log_reload_change t[] = {
		{ "trust_domain", !conf_str_eq(o->trust_domain,
		    n->trust_domain) },
		{ "bind_address", !conf_str_eq(o->bind_address,
		    n->bind_address) },
		{ "bind_port", o->bind_port != n->bind_port },
		{ "socket_path", !conf_str_eq(o->socket_path,
		    n->socket_path) },
		{ "data_dir", !conf_str_eq(o->data_dir, n->data_dir) },
		{ "ca_key_type", o->ca_key_type != n->ca_key_type },
		{ "jwt_key_type", o->jwt_key_type != n->jwt_key_type },
		{ "ca_ttl", o->ca_ttl != n->ca_ttl },
		{ "jwt_issuer", !conf_str_eq(o->jwt_issuer, n->jwt_issuer) },
		{ "experimental wit_issuer", !conf_str_eq(o->wit_issuer,
		    n->wit_issuer) },
		{ "ca_subject", !conf_strv_eq(o->subject_country,
		    o->nsubject_country, n->subject_country,
		    n->nsubject_country) || !conf_strv_eq(o->subject_org,
		    o->nsubject_org, n->subject_org, n->nsubject_org) ||
		    !conf_str_eq(o->subject_cn, n->subject_cn) },
		{ "admin_uids", o->nadmin_uids != n->nadmin_uids ||
		    memcmp(o->admin_uids, n->admin_uids, o->nadmin_uids *
		    sizeof(o->admin_uids[0])) != 0 },
		{ "DataStore \"sql\"", !conf_str_eq(o->ds_type,
		    n->ds_type) || !conf_str_eq(o->ds_conn, n->ds_conn) },
		{ "KeyManager", !conf_str_eq(o->keymgr, n->keymgr) ||
		    !conf_str_eq(o->keys_path, n->keys_path) },
		{ "NodeAttestor", o->join_token != n->join_token ||
		    o->tpm != n->tpm || !conf_str_eq(o->tpm_ca_path,
		    n->tpm_ca_path) || !conf_str_eq(o->tpm_hash_path,
		    n->tpm_hash_path) || !conf_str_eq(o->tpm_pcrs,
		    n->tpm_pcrs) },
		{ "UpstreamAuthority \"disk\"",
		    !conf_str_eq(o->upstream_cert, n->upstream_cert) ||
		    !conf_str_eq(o->upstream_key, n->upstream_key) ||
		    !conf_str_eq(o->upstream_bundle, n->upstream_bundle) },
		{ "health_checks", (telemetry_config_diff(&o->telemetry,
		    &n->telemetry) & TELEMETRY_DIFF_HEALTH) != 0 },
		{ "telemetry", (telemetry_config_diff(&o->telemetry,
		    &n->telemetry) & TELEMETRY_DIFF_PROMETHEUS) != 0 },
	};

	return log_reload_restart(t, sizeof(t) / sizeof(t[0]));
}

static void
apply_ttl(const char *name, int64_t *cur, int64_t next, int *napplied)
{
	if (*cur == next)
		return;
	log_info("reload: %s is now %lld s (was %lld s)", name,
	    (long long)next, (long long)*cur);
	*cur = next;
	(*napplied)++;
}

void
server_reload(struct server *srv)
{
	struct server_config	 nc;
	struct server_config	*cfg = srv->cfg;
	struct conf_error	 err;
	const char		*path = srv->flags->config;
	int64_t			 max;
	int			 r, napplied = 0, nrestart;

	if (!log_reload_begin(cfg->log_file, path))
		return;
	memset(&nc, 0, sizeof(nc));
	if ((r = server_config_load(srv->flags, &nc, &err)) != 0) {
		log_error("reload: %s: %s; nothing was changed", path,
		    err.msg[0] != '\0' ? err.msg : wick_strerror(r));
		server_config_cleanup(&nc);
		return;
	}
	if (log_reload_apply(&cfg->log_file, &cfg->log_format,
	    &cfg->log_level, &nc.log_file, nc.log_format, nc.log_level,
	    &napplied) != 0) {
		server_config_cleanup(&nc);
		return;
	}
	apply_ttl("default_x509_svid_ttl", &cfg->x509_svid_ttl,
	    nc.x509_svid_ttl, &napplied);
	apply_ttl("default_jwt_svid_ttl", &cfg->jwt_svid_ttl, nc.jwt_svid_ttl,
	    &napplied);
	apply_ttl("default_wit_svid_ttl", &cfg->wit_svid_ttl, nc.wit_svid_ttl,
	    &napplied);
	apply_ttl("agent_ttl", &cfg->agent_ttl, nc.agent_ttl, &napplied);
	/* Read by every tick's prune: takes effect at the next one. */
	apply_ttl("audit_retention", &cfg->audit_retention,
	    nc.audit_retention, &napplied);
	max = ca_manager_max_svid_ttl(srv->cam);
	if (cfg->x509_svid_ttl > max || cfg->jwt_svid_ttl > max ||
	    cfg->agent_ttl > max)
		log_warn("an SVID TTL exceeds %lld s, ca_ttl/6: rotation of "
		    "the CA will cut such SVIDs short", (long long)max);
	nrestart = restart_needed(cfg, &nc);
	log_reload_done(path, napplied, nrestart);
	server_config_cleanup(&nc);
}
