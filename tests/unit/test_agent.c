/*
 * test_agent.c: the unix workload attestor on this very process, and the
 * agent's configuration loader on SPIRE's agent.conf.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "attestor.h"
#include "config.h"

/* Our own credentials, as the Workload API server would see them. */
static void
self_cred(struct peercred *pc)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(peercred_get(sv[0], pc), 0);
	assert_int_equal(pc->pid, getpid());
	close(sv[0]);
	close(sv[1]);
}

static void
test_unix_attestor_self(void **state)
{
	struct attestor_unix_opts	 o = { 0, 0, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct selector_set		 s;
	struct peercred			 pc;
	char				 why[256], v[64];

	self_cred(&pc);
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, &s, why, sizeof(why)), 0);
	snprintf(v, sizeof(v), "uid:%lu", (unsigned long)geteuid());
	assert_true(selector_set_contains(&s, "unix", v));
	snprintf(v, sizeof(v), "gid:%lu", (unsigned long)getegid());
	assert_true(selector_set_contains(&s, "unix", v));
	if (geteuid() == 0)
		assert_true(selector_set_contains(&s, "unix", "user:root"));
	selector_set_cleanup(&s);
}

static void
test_unix_attestor_path_and_hash(void **state)
{
	struct attestor_unix_opts	 o = { 1, 0, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct selector_set		 s;
	struct peercred			 pc;
	char				 why[256], exe[4096], want[4200];
	uint8_t				 buf[65536], md[32];
	unsigned			 mdlen, i;
	EVP_MD_CTX			*ctx = EVP_MD_CTX_new();
	ssize_t				 n;
	FILE				*f;

	self_cred(&pc);
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, &s, why, sizeof(why)), 0);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	snprintf(want, sizeof(want), "path:%s", exe);
	assert_true(selector_set_contains(&s, "unix", want));
	/* The digest is of the binary this process runs. */
	f = fopen(exe, "rb");
	assert_non_null(f);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = (ssize_t)fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	fclose(f);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	strcpy(want, "sha256:");
	for (i = 0; i < 32; i++)
		snprintf(want + 7 + 2 * i, 3, "%02x", md[i]);
	assert_true(selector_set_contains(&s, "unix", want));
	selector_set_cleanup(&s);
	/* A size limit below the binary's size fails the attestation. */
	o.workload_size_limit = 16;
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, &s, why, sizeof(why)),
	    WICK_ERR_LIMIT);
	assert_non_null(strstr(why, "workload_size_limit"));
	selector_set_cleanup(&s);
}

static void
test_unix_attestor_pid_reuse(void **state)
{
	struct attestor_unix_opts	 o = { 0, 0, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct selector_set		 s;
	struct peercred			 pc;
	char				 why[256];

	self_cred(&pc);
	pc.starttime += 1;	/* as if the pid now named another process */
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, &s, why, sizeof(why)),
	    WICK_ERR_STATE);
	assert_non_null(strstr(why, "gone or was replaced"));
	selector_set_cleanup(&s);
	/* A pid that does not exist. */
	pc.pid = 0x3ffffff0;
	pc.starttime = 0;
	selector_set_init(&s);
	assert_int_not_equal(attestor_unix(&a, &pc, &s, why, sizeof(why)), 0);
	selector_set_cleanup(&s);
}

static char *
write_conf(const char *text)
{
	static char	path[64];
	FILE		*f;
	int		 fd;

	snprintf(path, sizeof(path), "/tmp/wick-agentconf-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static const char spire_agent_conf[] =
	"agent {\n"
	"    data_dir = \"/opt/spire/data/agent\"\n"
	"    log_level = \"DEBUG\"\n"
	"    server_address = \"spire-server\"\n"
	"    server_port = \"8081\"\n"
	"    socket_path = \"/tmp/spire-agent/public/api.sock\"\n"
	"    trust_bundle_path = \"/opt/spire/conf/agent/bootstrap.crt\"\n"
	"    trust_domain = \"example.org\"\n"
	"    admin_socket_path = \"/tmp/spire-agent/private/admin.sock\"\n"
	"}\n"
	"plugins {\n"
	"    NodeAttestor \"join_token\" {\n"
	"        plugin_data {}\n"
	"    }\n"
	"    KeyManager \"disk\" {\n"
	"        plugin_data { directory = \"/opt/spire/data/agent\" }\n"
	"    }\n"
	"    WorkloadAttestor \"unix\" {\n"
	"        plugin_data {}\n"
	"    }\n"
	"}\n";

static void
test_agent_config(void **state)
{
	struct agent_flags	fl;
	struct agent_config	cfg;
	struct conf_error	err;
	char			*path, text[2048];

	memset(&fl, 0, sizeof(fl));
	fl.config = path = write_conf(spire_agent_conf);
	assert_int_equal(agent_config_load(&fl, &cfg, &err), 0);
	assert_string_equal(cfg.trust_domain, "example.org");
	assert_string_equal(cfg.server_address, "spire-server");
	assert_int_equal(cfg.server_port, 8081);
	assert_string_equal(cfg.keymgr, "disk");
	assert_int_equal(cfg.sync_interval_ms, 5000);
	assert_int_equal(cfg.svid_key_type, PKEY_EC_P256);
	assert_true(cfg.unix_attestor);
	agent_config_cleanup(&cfg);
	unlink(path);
	/* An unknown option is an error naming it and its line. */
	snprintf(text, sizeof(text), "%s", spire_agent_conf);
	memcpy(strstr(text, "log_level"), "log_levle", 9);
	fl.config = path = write_conf(text);
	assert_int_not_equal(agent_config_load(&fl, &cfg, &err), 0);
	assert_non_null(strstr(err.msg, "log_levle"));
	assert_non_null(strstr(err.msg, "line 3"));
	agent_config_cleanup(&cfg);
	unlink(path);
	/* insecure_bootstrap is refused, saying what to do instead. */
	fl.config = path = write_conf("agent {\n trust_domain = \"example.org\"\n"
	    " insecure_bootstrap = true\n}\n");
	assert_int_equal(agent_config_load(&fl, &cfg, &err), WICK_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "trust_bundle_path"));
	agent_config_cleanup(&cfg);
	unlink(path);
	/* Flags override the file; the embedded defaults need no file. */
	memset(&fl, 0, sizeof(fl));
	fl.join_token = "tok";
	fl.server_port = 9000;
	assert_int_equal(agent_config_load(&fl, &cfg, &err), 0);
	assert_string_equal(cfg.trust_domain, "example.org");
	assert_string_equal(cfg.socket_path, AGENT_DEFAULT_SOCKET);
	assert_string_equal(cfg.join_token, "tok");
	assert_int_equal(cfg.server_port, 9000);
	agent_config_cleanup(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix_attestor_self),
		cmocka_unit_test(test_unix_attestor_path_and_hash),
		cmocka_unit_test(test_unix_attestor_pid_reuse),
		cmocka_unit_test(test_agent_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
