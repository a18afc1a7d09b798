/*
 * cli.h: wick-server's admin commands, the client side of the admin API
 * on the server's private Unix socket, with spire-server's verbs, flags
 * and output texts:
 *
 *	token generate
 *	entry create|update|delete|show|count
 *	agent list|show|count|evict|ban
 *	bundle show|list|set|delete|count
 *	healthcheck
 */
#ifndef WICK_SERVER_CLI_H
#define WICK_SERVER_CLI_H

/*
 * Run one command.  argv[0] is the verb ("entry"), argv[1] usually the
 * subcommand ("create"), then the flags.  Output goes to stdout, errors to
 * stderr.  Returns the process exit status: 0 on success, 1 otherwise.
 */
int	 cli_main(int argc, char **argv);
/* Non-zero when name is one of the verbs above. */
int	 cli_is_verb(const char *name);

#endif /* WICK_SERVER_CLI_H */
