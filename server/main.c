/*
 * main.c: the wick-server command.
 *
 *	wick-server run [-config FILE] [flags]	the daemon
 *	wick-server validate -config FILE	check a configuration file
 *	wick-server restore -from DIR [-config FILE]
 *						put a backup in place
 *	wick-server token|entry|agent|bundle|audit|backup|healthcheck ...
 *						admin commands (cli.c)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "flag.h"
#include "log.h"
#include "restore.h"
#include "server.h"
#include "xmalloc.h"

static void
usage(FILE *f)
{
	fprintf(f,
"usage: wick-server <command> [flags]\n"
"\n"
"Commands:\n"
"  run          run the server\n"
"  validate     check a configuration file\n"
"  healthcheck  ask a running server whether it is healthy\n"
"  token        generate join tokens\n"
"  entry        create, show, update, delete and count registration entries\n"
"  agent        list, show, count, evict and ban attested agents\n"
"  bundle       show the trust bundle; list, set, delete federated bundles\n"
"  audit        show the audit trail; verify its hash chain\n"
"  backup       write an online backup of the datastore and the keys\n"
"  restore      put a backup in place for a stopped server\n"
"\n"
"'wick-server <command> -h' describes a command's flags.\n");
}

static void
run_usage(FILE *f, const char *cmd)
{
	fprintf(f,
"usage: wick-server %s [flags]\n"
"  -config FILE        configuration file in SPIRE's server.conf syntax\n"
"                      (without it: embedded defaults, trust domain %s,\n"
"                      data in ./%s)\n"
"  -expandEnv          expand $VAR and ${VAR} in the configuration file\n",
	    cmd, SERVER_DEFAULT_TRUST_DOMAIN, SERVER_DEFAULT_DATA_DIR);
	if (strcmp(cmd, "run") != 0)
		return;
	fprintf(f,
"  -bindAddress ADDR   agent API address (default 0.0.0.0)\n"
"  -serverPort PORT    agent API port (default %d)\n"
"  -socketPath PATH    admin API socket (default %s)\n"
"  -trustDomain TD     trust domain\n"
"  -dataDir DIR        data directory\n"
"  -logLevel LEVEL     debug, info, warn or error\n"
"  -logFormat FORMAT   text or json\n", SERVER_DEFAULT_PORT,
	    SERVER_DEFAULT_SOCKET);
}

static int
cmd_run(int argc, char **argv, int validate_only)
{
	struct server_flags	 fl;
	struct server_config	 cfg;
	struct conf_error	 err;
	char			 why[LOG_MAX_WHY];
	const char		*port = NULL;
	int			 i, r;

	memset(&fl, 0, sizeof(fl));
	for (i = 1; i < argc; i++) {
		if (flag_value(argc, argv, &i, "config", &fl.config) ||
		    flag_value(argc, argv, &i, "bindAddress",
		    &fl.bind_address) ||
		    flag_value(argc, argv, &i, "serverPort", &port) ||
		    flag_value(argc, argv, &i, "socketPath",
		    &fl.socket_path) ||
		    flag_value(argc, argv, &i, "trustDomain",
		    &fl.trust_domain) ||
		    flag_value(argc, argv, &i, "dataDir", &fl.data_dir) ||
		    flag_value(argc, argv, &i, "logLevel", &fl.log_level) ||
		    flag_value(argc, argv, &i, "logFormat", &fl.log_format))
			continue;
		if (flag_bool(argv[i], "expandEnv")) {
			fl.expand_env = 1;
			continue;
		}
		if (flag_bool(argv[i], "h") || flag_bool(argv[i], "help")) {
			run_usage(stdout, argv[0]);
			return 0;
		}
		fprintf(stderr, "unknown flag %s\n", argv[i]);
		run_usage(stderr, argv[0]);
		return 1;
	}
	if (port != NULL && flag_parse_port(port, 0, &fl.port) != 0) {
		fprintf(stderr, "-serverPort: not a port: %s\n", port);
		return 1;
	}
	if (validate_only && fl.config == NULL) {
		fprintf(stderr, "validate needs -config FILE\n");
		return 1;
	}
	log_init("server", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
	if ((r = server_config_load(&fl, &cfg, &err)) != 0) {
		fprintf(stderr, "%s%s%s\n", fl.config != NULL ? fl.config : "",
		    fl.config != NULL ? ": " : "", err.msg[0] != '\0' ?
		    err.msg : wick_strerror(r));
		server_config_cleanup(&cfg);
		return 1;
	}
	if (validate_only) {
		printf("wick-server configuration file is valid.\n");
		server_config_cleanup(&cfg);
		return 0;
	}
	log_init("server", cfg.log_level, cfg.log_format);
	if (cfg.log_file != NULL && (r = log_open_file(cfg.log_file, why,
	    sizeof(why))) != 0) {
		fprintf(stderr, "log_file: %s\n", why);
		server_config_cleanup(&cfg);
		return 1;
	}
	r = server_run(&fl, &cfg);
	server_config_cleanup(&cfg);
	return r;
}

int
main(int argc, char **argv)
{
	/* A peer that closes its end must cost an EPIPE, not the process. */
	signal(SIGPIPE, SIG_IGN);
	secret_json_init();
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1, 0);
	if (strcmp(argv[1], "validate") == 0)
		return cmd_run(argc - 1, argv + 1, 1);
	if (strcmp(argv[1], "restore") == 0)
		return server_restore(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-help") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (cli_is_verb(argv[1]))
		return cli_main(argc - 1, argv + 1);
	fprintf(stderr, "unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 1;
}
