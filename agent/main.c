/*
 * main.c: the wick-agent command.
 *
 *	wick-agent run [-config FILE] [-joinToken T] [flags]	the daemon
 *	wick-agent validate -config FILE			check a file
 *	wick-agent api fetch x509|jwt|wit, api validate jwt, api watch,
 *	wick-agent healthcheck					Workload API
 *								clients (cli.c)
 *	wick-agent tpm pubhash [-tcti TCTI]			the EK hash
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cli.h"
#include "config.h"
#include "flag.h"
#include "log.h"
#include "xmalloc.h"

static void
usage(FILE *f)
{
	fprintf(f,
"usage: wick-agent <command> [flags]\n"
"\n"
"Commands:\n"
"  run          run the agent\n"
"  validate     check a configuration file\n"
"  api          fetch x509|jwt|wit, validate jwt, watch: Workload API calls\n"
"  healthcheck  ask a running agent whether it is healthy\n"
"  tpm pubhash  print this node's TPM EK hash (for the server's hash_path)\n"
"\n"
"'wick-agent <command> -h' describes a command's flags.\n");
}

static void
run_usage(FILE *f, const char *cmd)
{
	fprintf(f,
"usage: wick-agent %s [flags]\n"
"  -config FILE          configuration file in SPIRE's agent.conf syntax\n"
"                        (without it: embedded defaults, trust domain %s,\n"
"                        data in ./%s, server 127.0.0.1:8081)\n"
"  -expandEnv            expand $VAR and ${VAR} in the configuration file\n",
	    cmd, AGENT_DEFAULT_TRUST_DOMAIN, AGENT_DEFAULT_DATA_DIR);
	if (strcmp(cmd, "run") != 0)
		return;
	fprintf(f,
"  -joinToken TOKEN      join token for the first node attestation\n"
"  -dataDir DIR          data directory (agent SVID, bundle, keys)\n"
"  -serverAddress ADDR   server address\n"
"  -serverPort PORT      server port\n"
"  -socketPath PATH      Workload API socket (default %s)\n"
"  -trustBundle FILE     the server's CA bundle (PEM) for the first start\n"
"  -trustDomain TD       trust domain\n"
"  -logLevel LEVEL       debug, info, warn or error\n", AGENT_DEFAULT_SOCKET);
}

static int
cmd_run(int argc, char **argv, int validate_only)
{
	struct agent_flags	 fl;
	struct agent_config	 cfg;
	struct conf_error	 err;
	char			 why[LOG_MAX_WHY];
	const char		*port = NULL;
	int			 i, r;

	memset(&fl, 0, sizeof(fl));
	for (i = 1; i < argc; i++) {
		if (flag_value(argc, argv, &i, "config", &fl.config) ||
		    flag_value(argc, argv, &i, "joinToken", &fl.join_token) ||
		    flag_value(argc, argv, &i, "dataDir", &fl.data_dir) ||
		    flag_value(argc, argv, &i, "serverAddress",
		    &fl.server_address) ||
		    flag_value(argc, argv, &i, "serverPort", &port) ||
		    flag_value(argc, argv, &i, "socketPath",
		    &fl.socket_path) ||
		    flag_value(argc, argv, &i, "trustBundle",
		    &fl.trust_bundle) ||
		    flag_value(argc, argv, &i, "trustDomain",
		    &fl.trust_domain) ||
		    flag_value(argc, argv, &i, "logLevel", &fl.log_level))
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
	if (port != NULL && flag_parse_port(port, 1, &fl.server_port) != 0) {
		fprintf(stderr, "-serverPort: not a port: %s\n", port);
		return 1;
	}
	if (validate_only && fl.config == NULL) {
		fprintf(stderr, "validate needs -config FILE\n");
		return 1;
	}
	log_init("agent", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
	if ((r = agent_config_load(&fl, &cfg, &err)) != 0) {
		fprintf(stderr, "%s%s%s\n", fl.config != NULL ? fl.config : "",
		    fl.config != NULL ? ": " : "", err.msg[0] != '\0' ?
		    err.msg : wick_strerror(r));
		agent_config_cleanup(&cfg);
		return 1;
	}
	if (validate_only) {
		printf("wick-agent configuration file is valid.\n");
		agent_config_cleanup(&cfg);
		return 0;
	}
	log_init("agent", cfg.log_level, cfg.log_format);
	if (cfg.log_file != NULL && (r = log_open_file(cfg.log_file, why,
	    sizeof(why))) != 0) {
		fprintf(stderr, "log_file: %s\n", why);
		agent_config_cleanup(&cfg);
		return 1;
	}
	r = agent_run(&fl, &cfg);
	agent_config_cleanup(&cfg);
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
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-help") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (agent_cli_is_verb(argv[1]))
		return agent_cli_main(argc - 1, argv + 1);
	fprintf(stderr, "unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 1;
}
