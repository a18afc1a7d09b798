/*
 * config.c: wick-server's configuration in SPIRE's server.conf syntax.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tpmv.h"
#include "xmalloc.h"

/* Options of the server block.  admin_uids, audit_retention and
 * default_wit_svid_ttl are wick's own; the rest are SPIRE's names. */
static const char *const server_known[] = {
	"trust_domain", "bind_address", "bind_port", "socket_path",
	"data_dir", "log_level", "log_format", "ca_key_type",
	"jwt_key_type", "ca_ttl", "ca_subject", "default_x509_svid_ttl",
	"default_jwt_svid_ttl", "default_wit_svid_ttl", "agent_ttl", "jwt_issuer",
	"admin_uids", "audit_log_enabled", "experimental", "log_file",
	"audit_retention", NULL
};
static const char *const server_unimpl[] = {
	"admin_ids", "federation", "log_source_location",
	"profiling_enabled", "profiling_port", "profiling_freq",
	"profiling_names", "ratelimit", "prune_attested_nodes_expired_for",
	"prune_tainted_attested_nodes_expired_for", "disable_jwt_svids",
	"use_legacy_downstream_x509_ca_ttl", "cache_reload_interval",
	"allow_unsafe_ids", NULL
};
static const char *const experimental_known[] = {
	"wit_issuer", "prune_events_older_than", NULL
};
static const char *const experimental_unimpl[] = {
	"cache_reload_interval", "events_based_cache", "feature_flags",
	"event_timeout", "auth_opa_policy_engine",
	"named_pipe_name", "require_pq_kem", "sql_transaction_timeout",
	NULL
};
static const char *const subject_known[] = {
	"country", "organization", "common_name", NULL
};
static const char *const top_known[] = {
	"server", "plugins", "health_checks", "telemetry", NULL
};
static const char *const top_unimpl[] = { NULL };
static const char *const plugins_known[] = {
	"DataStore", "KeyManager", "NodeAttestor", "UpstreamAuthority", NULL
};
static const char *const plugins_unimpl[] = {
	"Notifier", "BundlePublisher", "CredentialComposer", NULL
};
static const char *const sql_known[] = {
	"database_type", "connection_string", NULL
};
static const char *const sql_unimpl[] = {
	"ro_connection_string", "max_open_conns", "max_idle_conns",
	"conn_max_lifetime", "disable_migration", "log_sql",
	"client_cert_path", "client_key_path", "root_ca_path",
	"database_type_options", NULL
};
static const char *const disk_km_known[] = { "keys_path", NULL };
static const char *const empty_known[] = { NULL };
static const char *const tpm_known[] = {
	"ca_path", "hash_path", "pcrs", NULL
};
static const char *const upstream_known[] = {
	"cert_file_path", "key_file_path", "bundle_file_path", NULL
};

static void
set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s == NULL ? NULL : xstrdup(s);
}

#define get_str	conf_get_string_dup

static int
get_str_list(const struct conf *c, const json_t *o, const char *key,
    char **v, size_t max, size_t *n, struct conf_error *err)
{
	const json_t	*a = json_object_get(o, key);
	size_t		 i;

	if (a == NULL)
		return 0;
	if (json_is_string(a)) {	/* HCL lets one value stand alone */
		v[0] = xstrdup(json_string_value(a));
		*n = 1;
		return 0;
	}
	if (!json_is_array(a) || json_array_size(a) > max)
		return conf_error_at(c, o, key, err,
		    "\"%s\" must be a list of at most %zu strings", key, max);
	for (i = 0; i < json_array_size(a); i++)
		if (!json_is_string(json_array_get(a, i)))
			return conf_error_at(c, o, key, err,
			    "\"%s\" must be a list of strings", key);
	for (i = 0; i < json_array_size(a); i++)
		v[(*n)++] = xstrdup(json_string_value(json_array_get(a, i)));
	return 0;
}

static int
get_key_type(const struct conf *c, const json_t *o, const char *key,
    enum pkey_type *out, struct conf_error *err)
{
	const char	*s;
	int		 r;

	if ((r = conf_get_string(c, o, key, "ec-p256", &s, err)) != 0)
		return r;
	if (pkey_type_parse(s, out) != 0)
		return conf_error_at(c, o, key, err, "\"%s\": unknown key type "
		    "\"%s\" (ec-p256, ec-p384, rsa-2048 or rsa-4096)", key, s);
	return 0;
}

static int
get_ttl(const struct conf *c, const json_t *o, const char *key,
    int64_t def, int64_t *out, struct conf_error *err)
{
	int r;

	if ((r = conf_get_duration(c, o, key, def, out, err)) != 0)
		return r;
	if (*out <= 0 || *out > INT32_MAX)
		return conf_error_at(c, o, key, err,
		    "\"%s\" must be between 1s and %d s", key, INT32_MAX);
	return 0;
}

static int
load_server_block(const struct conf *c, const json_t *s,
    struct server_config *cfg, struct conf_error *err)
{
	const json_t	*sub, *ex, *uids;
	const char	*lvl, *fmt;
	int64_t		 port, v;
	size_t		 i;
	int		 r;

	if ((r = conf_check_keys(c, s, "server", server_known, server_unimpl,
	    NULL, NULL, err)) != 0)
		return r;
	if ((r = get_str(c, s, "trust_domain", cfg->trust_domain,
	    &cfg->trust_domain, err)) != 0 ||
	    (r = get_str(c, s, "bind_address", cfg->bind_address,
	    &cfg->bind_address, err)) != 0 ||
	    (r = conf_get_int_range(c, s, "bind_port", cfg->bind_port, 0,
	    65535, &port, err)) != 0 ||
	    (r = get_str(c, s, "socket_path", cfg->socket_path,
	    &cfg->socket_path, err)) != 0 ||
	    (r = get_str(c, s, "data_dir", cfg->data_dir, &cfg->data_dir,
	    err)) != 0 ||
	    (r = get_key_type(c, s, "ca_key_type", &cfg->ca_key_type,
	    err)) != 0 ||
	    (r = get_key_type(c, s, "jwt_key_type", &cfg->jwt_key_type,
	    err)) != 0 ||
	    (r = get_ttl(c, s, "ca_ttl", cfg->ca_ttl, &cfg->ca_ttl, err)) != 0 ||
	    (r = get_ttl(c, s, "default_x509_svid_ttl", cfg->x509_svid_ttl,
	    &cfg->x509_svid_ttl, err)) != 0 ||
	    (r = get_ttl(c, s, "default_jwt_svid_ttl", cfg->jwt_svid_ttl,
	    &cfg->jwt_svid_ttl, err)) != 0 ||
	    (r = get_ttl(c, s, "default_wit_svid_ttl", cfg->wit_svid_ttl,
	    &cfg->wit_svid_ttl, err)) != 0 ||
	    (r = get_ttl(c, s, "agent_ttl", cfg->x509_svid_ttl,
	    &cfg->agent_ttl, err)) != 0 ||
	    (r = get_str(c, s, "jwt_issuer", "", &cfg->jwt_issuer, err)) != 0 ||
	    (r = get_str(c, s, "log_file", NULL, &cfg->log_file, err)) != 0)
		return r;
	cfg->bind_port = (int)port;
	/* wick's own (SPIRE has no audit trail): 0 keeps every event. */
	if ((r = conf_get_duration(c, s, "audit_retention", 0,
	    &cfg->audit_retention, err)) != 0)
		return r;
	if (cfg->audit_retention < 0)
		return conf_error_at(c, s, "audit_retention", err,
		    "\"audit_retention\" must not be negative");
	if (cfg->log_file != NULL && *cfg->log_file == '\0') {
		free(cfg->log_file);	/* "" is stderr, as unset */
		cfg->log_file = NULL;
	}
	if ((r = conf_get_string(c, s, "log_level", "info", &lvl, err)) != 0)
		return r;
	if (log_level_parse(lvl, &cfg->log_level) != 0)
		return conf_error_at(c, s, "log_level", err,
		    "\"log_level\": unknown level \"%s\"", lvl);
	if ((r = conf_get_string(c, s, "log_format", "text", &fmt, err)) != 0)
		return r;
	if (log_format_parse(fmt, &cfg->log_format) != 0)
		return conf_error_at(c, s, "log_format", err,
		    "\"log_format\": must be \"text\" or \"json\"");
	if ((sub = json_object_get(s, "ca_subject")) != NULL) {
		/* HCL 1 may give a one-element list for a block. */
		if (json_is_array(sub) && json_array_size(sub) == 1)
			sub = json_array_get(sub, 0);
		if ((r = conf_check_keys(c, sub, "ca_subject", subject_known,
		    NULL, NULL, NULL, err)) != 0 ||
		    (r = get_str_list(c, sub, "country", cfg->subject_country,
		    SERVER_MAX_SUBJECT_ITEMS, &cfg->nsubject_country,
		    err)) != 0 ||
		    (r = get_str_list(c, sub, "organization", cfg->subject_org,
		    SERVER_MAX_SUBJECT_ITEMS, &cfg->nsubject_org, err)) != 0 ||
		    (r = get_str(c, sub, "common_name", "", &cfg->subject_cn,
		    err)) != 0)
			return r;
	}
	if ((ex = json_object_get(s, "experimental")) != NULL &&
	    ((r = conf_check_keys(c, ex, "experimental", experimental_known,
	    experimental_unimpl, NULL, NULL, err)) != 0 ||
	    (r = get_str(c, ex, "wit_issuer", "", &cfg->wit_issuer, err)) != 0 ||
	    (r = conf_get_duration(c, ex, "prune_events_older_than",
	    SERVER_EVENTS_RETENTION, &cfg->events_retention, err)) != 0))
		return r;
	if (ex == NULL)
		cfg->events_retention = SERVER_EVENTS_RETENTION;
	if (cfg->events_retention < 60)
		return conf_error_at(c, ex, "prune_events_older_than", err,
		    "\"prune_events_older_than\" must be at least 1m: servers "
		    "that fall further behind read every entry again");
	if ((uids = json_object_get(s, "admin_uids")) != NULL) {
		if (!json_is_array(uids) || json_array_size(uids) >
		    SERVER_MAX_ADMIN_UIDS)
			return conf_error_at(c, s, "admin_uids", err,
			    "\"admin_uids\" must be a list of at most %d uids",
			    SERVER_MAX_ADMIN_UIDS);
		for (i = 0; i < json_array_size(uids); i++) {
			v = json_is_integer(json_array_get(uids, i)) ?
			    json_integer_value(json_array_get(uids, i)) : -1;
			if (v < 0 || v >= UINT32_MAX)
				return conf_error_at(c, s, "admin_uids", err,
				    "\"admin_uids\" must hold numeric uids");
			cfg->admin_uids[cfg->nadmin_uids++] = (uid_t)v;
		}
	}
	return 0;
}

static int
load_plugins(const struct conf *c, const json_t *pl, struct server_config *cfg,
    struct conf_error *err)
{
	static const char *const ds_allowed[] = { "sql", NULL };
	static const char *const km_allowed[] = { "disk", "memory", NULL };
	static const char *const na_allowed[] = { "join_token", "tpm", NULL };
	const char	*names[2];
	const json_t	*datas[2];
	size_t		 i, n;
	static const char *const ua_allowed[] = { "disk", NULL };
	const json_t	*d, *empty = json_object();
	const char	*name;
	int		 r;

	if ((r = conf_check_keys(c, pl, "plugins", plugins_known,
	    plugins_unimpl, NULL, NULL, err)) != 0)
		goto out;
	if ((r = conf_plugin(c, pl, "DataStore", ds_allowed, &name, &d,
	    err)) != 0)
		goto out;
	if (name != NULL) {
		d = d != NULL ? d : empty;
		if ((r = conf_check_keys(c, d, "DataStore \"sql\"", sql_known,
		    sql_unimpl, NULL, NULL, err)) != 0 ||
		    (r = get_str(c, d, "database_type", "sqlite3",
		    &cfg->ds_type, err)) != 0 ||
		    (r = get_str(c, d, "connection_string", cfg->ds_conn,
		    &cfg->ds_conn, err)) != 0)
			goto out;
		if (strcmp(cfg->ds_type, "sqlite3") != 0 &&
		    strcmp(cfg->ds_type, "postgres") != 0) {
			r = conf_error_at(c, d, "database_type", err,
			    "database_type \"%s\" is not supported (sqlite3, "
			    "postgres)", cfg->ds_type);
			goto out;
		}
		if (strcmp(cfg->ds_type, "postgres") == 0 &&
		    (cfg->ds_conn == NULL || *cfg->ds_conn == '\0')) {
			r = conf_error_at(c, d, "connection_string", err,
			    "database_type \"postgres\" needs a "
			    "connection_string (a libpq connection string or "
			    "URI)");
			goto out;
		}
	}
	if ((r = conf_plugin(c, pl, "KeyManager", km_allowed, &name, &d,
	    err)) != 0)
		goto out;
	if (name != NULL) {
		d = d != NULL ? d : empty;
		set_str(&cfg->keymgr, name);
		if ((r = conf_check_keys(c, d, name, strcmp(name, "disk") == 0 ?
		    disk_km_known : empty_known, NULL, NULL, NULL, err)) != 0 ||
		    (r = get_str(c, d, "keys_path", cfg->keys_path,
		    &cfg->keys_path, err)) != 0)
			goto out;
	}
	if ((r = conf_plugins(c, pl, "NodeAttestor", na_allowed, 2, names,
	    datas, &n, err)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		d = datas[i] != NULL ? datas[i] : empty;
		if (strcmp(names[i], "join_token") == 0) {
			cfg->join_token = 1;
			r = conf_check_keys(c, d, "NodeAttestor \"join_token\"",
			    empty_known, NULL, NULL, NULL, err);
		} else {
			cfg->tpm = 1;
			if ((r = conf_check_keys(c, d, "NodeAttestor \"tpm\"",
			    tpm_known, NULL, NULL, NULL, err)) == 0 &&
			    (r = get_str(c, d, "ca_path", NULL,
			    &cfg->tpm_ca_path, err)) == 0 &&
			    (r = get_str(c, d, "hash_path", NULL,
			    &cfg->tpm_hash_path, err)) == 0)
				r = get_str(c, d, "pcrs", NULL, &cfg->tpm_pcrs,
				    err);
			if (r == 0 && cfg->tpm_ca_path == NULL &&
			    cfg->tpm_hash_path == NULL)
				r = conf_error_at(c, d, "ca_path", err,
				    "NodeAttestor \"tpm\" needs ca_path (the "
				    "EK manufacturers' CAs), hash_path (allowed "
				    "EK hashes) or both");
		}
		if (r != 0)
			goto out;
	}
	if ((r = conf_plugin(c, pl, "UpstreamAuthority", ua_allowed, &name,
	    &d, err)) != 0)
		goto out;
	if (name != NULL) {
		d = d != NULL ? d : empty;
		if ((r = conf_check_keys(c, d, "UpstreamAuthority \"disk\"",
		    upstream_known, NULL, NULL, NULL, err)) != 0 ||
		    (r = get_str(c, d, "cert_file_path", NULL,
		    &cfg->upstream_cert, err)) != 0 ||
		    (r = get_str(c, d, "key_file_path", NULL,
		    &cfg->upstream_key, err)) != 0 ||
		    (r = get_str(c, d, "bundle_file_path", NULL,
		    &cfg->upstream_bundle, err)) != 0)
			goto out;
		if (cfg->upstream_cert == NULL || cfg->upstream_key == NULL) {
			r = conf_error_at(c, pl, "UpstreamAuthority", err,
			    "UpstreamAuthority \"disk\" needs cert_file_path "
			    "and key_file_path");
			goto out;
		}
	}
out:
	json_decref((json_t *)empty);
	return r;
}

static void
defaults(struct server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->bind_address = xstrdup("0.0.0.0");
	cfg->bind_port = SERVER_DEFAULT_PORT;
	cfg->socket_path = xstrdup(SERVER_DEFAULT_SOCKET);
	cfg->data_dir = xstrdup(SERVER_DEFAULT_DATA_DIR);
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->log_format = LOG_FORMAT_TEXT;
	cfg->ca_key_type = PKEY_EC_P256;
	cfg->jwt_key_type = PKEY_EC_P256;
	cfg->ca_ttl = 24 * 3600;
	cfg->x509_svid_ttl = 3600;
	cfg->jwt_svid_ttl = 300;
	cfg->wit_svid_ttl = 3600;
	cfg->agent_ttl = 3600;
	cfg->jwt_issuer = xstrdup("");
	cfg->wit_issuer = xstrdup("");
	cfg->subject_cn = xstrdup("");
	cfg->ds_type = xstrdup("sqlite3");
	cfg->keymgr = xstrdup("disk");
	cfg->join_token = 1;
	telemetry_config_init(&cfg->telemetry);
}

static char *
in_dir(const char *dir, const char *name)
{
	size_t	 n = strlen(dir) + strlen(name) + 2;
	char	*p = xmalloc(n);

	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int
finish(const struct server_flags *fl, struct server_config *cfg,
    struct conf_error *err)
{
	int r;

	if (fl->bind_address != NULL)
		set_str(&cfg->bind_address, fl->bind_address);
	if (fl->port > 0)
		cfg->bind_port = fl->port;
	if (fl->socket_path != NULL)
		set_str(&cfg->socket_path, fl->socket_path);
	if (fl->trust_domain != NULL)
		set_str(&cfg->trust_domain, fl->trust_domain);
	if (fl->data_dir != NULL)
		set_str(&cfg->data_dir, fl->data_dir);
	if (fl->log_level != NULL && log_level_parse(fl->log_level,
	    &cfg->log_level) != 0) {
		snprintf(err->msg, sizeof(err->msg),
		    "-logLevel: unknown level \"%s\"", fl->log_level);
		return WICK_ERR_CONFIG;
	}
	if (fl->log_format != NULL && log_format_parse(fl->log_format,
	    &cfg->log_format) != 0) {
		snprintf(err->msg, sizeof(err->msg),
		    "-logFormat: must be \"text\" or \"json\"");
		return WICK_ERR_CONFIG;
	}
	if ((r = conf_trust_domain(&cfg->trust_domain, err)) != 0)
		return r;
	if (cfg->ds_conn == NULL || *cfg->ds_conn == '\0') {
		free(cfg->ds_conn);
		cfg->ds_conn = in_dir(cfg->data_dir, "datastore.sqlite3");
	}
	if (strcmp(cfg->keymgr, "disk") == 0 && (cfg->keys_path == NULL ||
	    *cfg->keys_path == '\0')) {
		free(cfg->keys_path);
		cfg->keys_path = in_dir(cfg->data_dir, "keys.json");
	}
	if (cfg->nsubject_country == 0)
		cfg->subject_country[cfg->nsubject_country++] = xstrdup("US");
	if (cfg->nsubject_org == 0)
		cfg->subject_org[cfg->nsubject_org++] = xstrdup("SPIFFE");
	if (cfg->tpm) {
		struct tpmv_config	*t;
		char			 why[TPMV_MAX_WHY];

		/* The same check as at start: files, hashes, PCRs. */
		if (tpmv_config_load(cfg->tpm_ca_path, cfg->tpm_hash_path,
		    cfg->tpm_pcrs, &t, why, sizeof(why)) != 0) {
			snprintf(err->msg, sizeof(err->msg), "NodeAttestor "
			    "\"tpm\": %.200s", why);
			return WICK_ERR_CONFIG;
		}
		tpmv_config_free(t);
	}
	if (!cfg->join_token && !cfg->tpm) {
		snprintf(err->msg, sizeof(err->msg), "no NodeAttestor is "
		    "configured (wick supports NodeAttestor \"join_token\" "
		    "and \"tpm\")");
		return WICK_ERR_CONFIG;
	}
	if (cfg->ca_ttl < 60) {
		snprintf(err->msg, sizeof(err->msg), "ca_ttl must be at least "
		    "1m");
		return WICK_ERR_CONFIG;
	}
	return 0;
}

int
server_config_load(const struct server_flags *fl, struct server_config *cfg,
    struct conf_error *err)
{
	struct conf	*c = NULL;
	const json_t	*root, *s, *pl;
	int		 r;

	memset(err, 0, sizeof(*err));
	defaults(cfg);
	if (fl->config == NULL) {
		/* Embedded defaults: a single-machine developer setup. */
		set_str(&cfg->trust_domain, SERVER_DEFAULT_TRUST_DOMAIN);
		return finish(fl, cfg, err);
	}
	if ((r = conf_load_daemon(fl->config, fl->expand_env, "server",
	    top_known, top_unimpl, &c, &s, err)) != 0)
		return r;
	root = conf_root(c);
	if ((r = load_server_block(c, s, cfg, err)) != 0 ||
	    (r = telemetry_config_load(c, root, &cfg->telemetry, err)) != 0)
		goto out;
	cfg->join_token = cfg->tpm = 0;
	if ((pl = json_object_get(root, "plugins")) != NULL &&
	    (r = load_plugins(c, pl, cfg, err)) != 0)
		goto out;
	r = finish(fl, cfg, err);
out:
	conf_free(c);
	return r;
}

void
server_config_cleanup(struct server_config *cfg)
{
	size_t i;

	free(cfg->trust_domain);
	free(cfg->bind_address);
	free(cfg->socket_path);
	free(cfg->data_dir);
	free(cfg->log_file);
	free(cfg->jwt_issuer);
	free(cfg->wit_issuer);
	for (i = 0; i < cfg->nsubject_country; i++)
		free(cfg->subject_country[i]);
	for (i = 0; i < cfg->nsubject_org; i++)
		free(cfg->subject_org[i]);
	free(cfg->subject_cn);
	free(cfg->ds_type);
	free(cfg->ds_conn);
	free(cfg->keymgr);
	free(cfg->keys_path);
	free(cfg->upstream_cert);
	free(cfg->tpm_ca_path);
	free(cfg->tpm_hash_path);
	free(cfg->tpm_pcrs);
	free(cfg->upstream_key);
	free(cfg->upstream_bundle);
	telemetry_config_cleanup(&cfg->telemetry);
	memset(cfg, 0, sizeof(*cfg));
}
