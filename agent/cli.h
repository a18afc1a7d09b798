/*
 * cli.h: the Workload API command-line client of wick-agent, the
 * equivalent of "spire-agent api ..." and "spire-agent healthcheck".
 *
 *	wick-agent api fetch [x509] [-write DIR] [-silent] [-output json]
 *	wick-agent api fetch jwt -audience A[,B...] [-spiffeID ID]
 *	wick-agent api fetch wit [-spiffeID ID] [-write DIR]
 *	wick-agent api validate jwt -audience A -svid TOKEN
 *	wick-agent api watch
 *	wick-agent healthcheck [-shallow] [-verbose]
 *	wick-agent tpm pubhash [-tcti TCTI]
 *
 * Every command takes -socketPath PATH (else SPIFFE_ENDPOINT_SOCKET, else
 * the agent's default socket) and -timeout DURATION.
 */
#ifndef WICK_AGENT_CLI_H
#define WICK_AGENT_CLI_H

/*
 * Run a command: argv[0] is "api", "healthcheck" or "tpm".  Returns the
 * process exit status (0 success, 1 failure).
 */
int	 agent_cli_main(int argc, char **argv);
/* Non-zero when argv[1] of wick-agent names a command of this module. */
int	 agent_cli_is_verb(const char *);

#endif /* WICK_AGENT_CLI_H */
