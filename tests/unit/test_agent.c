/*
 * test_agent.c: the unix workload attestor on this very process, and the
 * agent's configuration loader on SPIRE's agent.conf.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <grp.h>

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "attestor.h"
#include "config.h"
#include "nodeclient.h"
#include "helpers/fdpass.h"

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
	struct attestor_unix_opts	 o = { 0, 0, NULL, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct selector_set		 s;
	struct peercred			 pc;
	char				 why[256], v[64];

	self_cred(&pc);
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)), 0);
	snprintf(v, sizeof(v), "uid:%lu", (unsigned long)geteuid());
	assert_true(selector_set_contains(&s, "unix", v));
	snprintf(v, sizeof(v), "gid:%lu", (unsigned long)getegid());
	assert_true(selector_set_contains(&s, "unix", v));
	if (geteuid() == 0)
		assert_true(selector_set_contains(&s, "unix", "user:root"));
	selector_set_cleanup(&s);
}

/*
 * A caller that is another process, attested with and without its groups
 * (ATTEST_NO_GROUPS: through its pidfd where the kernel gives the ids so,
 * the status file otherwise): the same ids, the groups only when asked
 * for; a caller that changed its effective uid is refused either way, and
 * so is one that is gone.
 */
static void
test_unix_attestor_no_groups(void **state)
{
	struct attestor_unix_opts	 o = { 0, 0, NULL, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct selector_set		 s, g;
	struct peercred			 pc;
	gid_t				 grp = 4242;
	pid_t				 caller;
	char				 why[256], c;
	int				 p[2], sv[2], status;

	if (geteuid() != 0) {
		print_message("needs root (setgroups, setresuid)\n");
		skip();
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	caller = fork();
	assert_true(caller >= 0);
	if (caller == 0) {
		close(p[0]);
		if (setgroups(1, &grp) != 0 ||
		    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 ||
		    fdpass_send(p[1], sv[0]) != 0)
			_exit(1);
		/* 'u': another effective uid; 'x': gone. */
		while (read(p[1], &c, 1) == 1 && c == 'u')
			if (setresuid(-1, 65534, -1) != 0 ||
			    write(p[1], "k", 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(p[1]);
	assert_true((sv[0] = fdpass_recv(p[0])) >= 0);
	assert_int_equal(peercred_ucred(sv[0], &pc), 0);
	assert_int_equal(peercred_complete(&pc, 1), 0);
	selector_set_init(&s);
	selector_set_init(&g);
	assert_int_equal(attestor_unix(&a, &pc, ATTEST_NO_GROUPS, &s, why,
	    sizeof(why)), 0);
	assert_int_equal(attestor_unix(&a, &pc, 0, &g, why, sizeof(why)), 0);
	assert_true(selector_set_contains(&s, "unix", "uid:0"));
	assert_true(selector_set_contains(&s, "unix", "gid:0"));
	assert_true(selector_set_contains(&g, "unix", "supplementary_gid:4242"));
	/* Through the pidfd no group is read; without one, the status file
	 * gives them anyway. */
	assert_int_equal(selector_set_contains(&s, "unix",
	    "supplementary_gid:4242"), !pc.pidfd_held);
	assert_true(selector_set_is_subset(&s, &g));
	selector_set_cleanup(&s);
	selector_set_cleanup(&g);

	assert_int_equal(write(p[0], "u", 1), 1);
	assert_int_equal(read(p[0], &c, 1), 1);
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, ATTEST_NO_GROUPS, &s, why,
	    sizeof(why)), WICK_ERR_PERM);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)),
	    WICK_ERR_PERM);
	assert_int_equal(write(p[0], "x", 1), 1);
	assert_int_equal(waitpid(caller, &status, 0), caller);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(attestor_unix(&a, &pc, ATTEST_NO_GROUPS, &s, why,
	    sizeof(why)), WICK_ERR_STATE);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)),
	    WICK_ERR_STATE);
	selector_set_cleanup(&s);
	peercred_release(&pc);
	close(sv[0]);
	close(p[0]);
}

static void
test_unix_attestor_path_and_hash(void **state)
{
	struct attestor_unix_opts	 o = { 1, 0, NULL, NULL };
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
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)), 0);
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
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)),
	    WICK_ERR_LIMIT);
	assert_non_null(strstr(why, "workload_size_limit"));
	selector_set_cleanup(&s);
}

/*
 * With a cache, an unhashed binary is hashed off the call (AGAIN, then the
 * job), and the answer is the same as hashing within the call; a held
 * status file serves the ids.
 */
static void
test_unix_attestor_cache_and_hash_job(void **state)
{
	struct attestor_unix_opts	 o = { 1, 0, NULL, NULL };
	struct attestor_unix_opts	 oc = { 1, 0, NULL, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct attestor			 ac = { "unix", attestor_unix,
					    &oc };
	struct attestor_hash		*h = NULL;
	struct selector_set		 s, sc;
	struct peercred			 pc;
	char				 why[256];
	int				 i;

	oc.cache = attestor_unix_cache_new();
	self_cred(&pc);
	assert_int_equal(peercred_hold(&pc), 0);
	selector_set_init(&s);
	selector_set_init(&sc);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)), 0);
	assert_int_equal(attestor_unix(&ac, &pc, 0, &sc, why, sizeof(why)),
	    WICK_ERR_AGAIN);
	assert_int_equal(sc.n, 0);
	assert_int_equal(attestor_unix_hash_new(&ac, &pc, &h, why,
	    sizeof(why)), 0);
	attestor_unix_hash_run(h);
	assert_int_equal(attestor_unix_hash_done(&ac, h, why, sizeof(why)), 0);
	/* Kept now: every later call is answered at once, names too. */
	for (i = 0; i < 3; i++) {
		selector_set_cleanup(&sc);
		selector_set_init(&sc);
		assert_int_equal(attestor_unix(&ac, &pc, 0, &sc, why,
		    sizeof(why)), 0);
		assert_true(selector_set_equal(&s, &sc));
	}
	/* A size limit below the binary's size fails the job. */
	oc.workload_size_limit = 16;
	assert_int_equal(attestor_unix_hash_new(&ac, &pc, &h, why,
	    sizeof(why)), 0);
	attestor_unix_hash_run(h);
	assert_int_equal(attestor_unix_hash_done(&ac, h, why, sizeof(why)),
	    WICK_ERR_LIMIT);
	assert_non_null(strstr(why, "workload_size_limit"));
	selector_set_cleanup(&s);
	selector_set_cleanup(&sc);
	peercred_release(&pc);
	attestor_unix_cache_free(oc.cache);
}

static void
test_unix_attestor_pid_reuse(void **state)
{
	struct attestor_unix_opts	 o = { 0, 0, NULL, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct selector_set		 s;
	struct peercred			 pc;
	char				 why[256];

	self_cred(&pc);
	pc.starttime += 1;	/* as if the pid now named another process */
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)),
	    WICK_ERR_STATE);
	assert_non_null(strstr(why, "gone or was replaced"));
	selector_set_cleanup(&s);
	/* A pid that does not exist. */
	pc.pid = 0x3ffffff0;
	pc.starttime = 0;
	selector_set_init(&s);
	assert_int_not_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)), 0);
	selector_set_cleanup(&s);
}

/* A fake /proc holding <pid>/status with these Uid, Gid, Groups lines. */
static void
fake_status(const char *root, pid_t pid, const char *uid, const char *gid,
    const char *groups)
{
	char	 path[PATH_MAX];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%ld", root, (long)pid);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%ld/status", root, (long)pid);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "Name:\ttest\nUmask:\t0022\nState:\tS (sleeping)\n"
	    "Uid:\t%s\nGid:\t%s\nFDSize:\t64\nGroups:\t%s\n", uid, gid, groups);
	fclose(f);
}

static void
fake_status_cleanup(const char *root, pid_t pid)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%ld/status", root, (long)pid);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s/%ld", root, (long)pid);
	(void)rmdir(path);
	(void)rmdir(root);
}

/*
 * uid and gid come from the connection (SO_PEERCRED); /proc/<pid>/status
 * must agree on all four of real, effective, saved and filesystem ids.
 */
static void
test_unix_attestor_ids_from_connect(void **state)
{
	struct attestor_unix_opts	 o = { 0, 0, NULL, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct selector_set		 s;
	struct peercred			 pc;
	char				 root[] = "/tmp/wick-fakeproc-XXXXXX";
	char				 why[256], ids[64];
	int				 i, gid;

	assert_non_null(mkdtemp(root));
	o.proc_root = root;
	self_cred(&pc);
	/* As if the kernel had recorded these ids at connect. */
	pc.uid = 4242;
	pc.gid = 4343;
	fake_status(root, pc.pid, "4242\t4242\t4242\t4242",
	    "4343\t4343\t4343\t4343", "10 20");
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)), 0);
	assert_true(selector_set_contains(&s, "unix", "uid:4242"));
	assert_true(selector_set_contains(&s, "unix", "gid:4343"));
	assert_true(selector_set_contains(&s, "unix", "supplementary_gid:10"));
	assert_true(selector_set_contains(&s, "unix", "supplementary_gid:20"));
	selector_set_cleanup(&s);
	/* Any one id that differs now (as after exec of a setuid or setgid
	 * program) refuses the caller, naming both sets of ids. */
	for (gid = 0; gid < 2; gid++)
		for (i = 0; i < 4; i++) {
			snprintf(ids, sizeof(ids), "%s\t%s\t%s\t%s",
			    i == 0 ? "0" : (gid ? "4343" : "4242"),
			    i == 1 ? "0" : (gid ? "4343" : "4242"),
			    i == 2 ? "0" : (gid ? "4343" : "4242"),
			    i == 3 ? "0" : (gid ? "4343" : "4242"));
			fake_status(root, pc.pid,
			    gid ? "4242\t4242\t4242\t4242" : ids,
			    gid ? ids : "4343\t4343\t4343\t4343", "");
			selector_set_init(&s);
			assert_int_equal(attestor_unix(&a, &pc, 0, &s, why,
			    sizeof(why)), WICK_ERR_PERM);
			assert_non_null(strstr(why, "connected as uid 4242 "
			    "gid 4343"));
			assert_non_null(strstr(why, "now runs as"));
			assert_false(selector_set_contains(&s, "unix",
			    "uid:0"));
			selector_set_cleanup(&s);
		}
	fake_status_cleanup(root, pc.pid);
}

/*
 * A child that connects to path, says so on *ack, then obeys one-byte
 * commands from *ctl: 'u' changes its effective ids to 65534 (answering on
 * *ack), 'x' execs another binary that keeps the connection open.
 */
static pid_t
spawn_peer(const char *path, int *ctl, int *ack)
{
	struct sockaddr_un	 sa;
	pid_t			 pid;
	int			 p[2], q[2], fd;
	char			 c;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(q), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		close(q[0]);
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			_exit(1);
		while (write(q[1], "c", 1) == 1 && read(p[0], &c, 1) == 1) {
			if (c == 'u') {
				if (setresgid(-1, 65534, -1) != 0 ||
				    setresuid(-1, 65534, -1) != 0)
					_exit(1);
			} else if (c == 'x') {
				if (dup2(p[0], 0) != 0)
					_exit(1);
				execl("/bin/sh", "sh", "-c", "read x", NULL);
				_exit(1);
			} else {
				_exit(0);
			}
		}
		_exit(0);
	}
	close(p[0]);
	close(q[1]);
	assert_int_equal(read(q[0], &c, 1), 1);
	*ctl = p[1];
	*ack = q[0];
	return pid;
}

static int
listen_at(char *path, size_t len)
{
	struct sockaddr_un	 sa;
	int			 fd;

	snprintf(path, len, "/tmp/wick-attest-%ld.sock", (long)getpid());
	(void)unlink(path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static void
end_peer(pid_t pid, int ctl, int ack)
{
	int status;

	close(ctl);
	close(ack);
	(void)kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

/*
 * A real process that changes its ids after connecting is refused: its
 * connection says uid 0, its effective uid is now 65534.  (Root only.)
 */
static void
test_unix_attestor_ids_change_after_connect(void **state)
{
	struct attestor_unix_opts	 o = { 0, 0, NULL, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct selector_set		 s;
	struct peercred			 pc;
	char				 path[108], why[256], want[128], c;
	pid_t				 pid;
	int				 lfd, fd, ctl, ack;

	if (getuid() != 0 || geteuid() != 0)
		skip();
	lfd = listen_at(path, sizeof(path));
	pid = spawn_peer(path, &ctl, &ack);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	assert_int_equal(peercred_get(fd, &pc), 0);
	assert_int_equal(pc.pid, pid);
	assert_int_equal(pc.uid, 0);
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)), 0);
	assert_true(selector_set_contains(&s, "unix", "uid:0"));
	selector_set_cleanup(&s);
	/* Effective ids 65534 now, real and saved still 0. */
	assert_int_equal(write(ctl, "u", 1), 1);
	assert_int_equal(read(ack, &c, 1), 1);
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)),
	    WICK_ERR_PERM);
	snprintf(want, sizeof(want), "connected as uid 0 gid %lu but now "
	    "runs as uid 0/65534/0/65534 gid %lu/65534/%lu/65534",
	    (unsigned long)getegid(), (unsigned long)getgid(),
	    (unsigned long)getegid());
	assert_non_null(strstr(why, want));
	selector_set_cleanup(&s);
	end_peer(pid, ctl, ack);
	close(fd);
	close(lfd);
	unlink(path);
}

/*
 * path and sha256 describe the binary the process ran when its connection
 * was accepted; after an exec of another binary the caller is refused (its
 * uid is unchanged, so uid selectors alone still attest it).
 */
static void
test_unix_attestor_exec_after_connect(void **state)
{
	struct attestor_unix_opts	 o = { 1, 0, NULL, NULL };
	struct attestor			 a = { "unix", attestor_unix, &o };
	struct selector_set		 s;
	struct peercred			 pc;
	char				 path[108], why[256], link[64];
	char				 self[PATH_MAX], now[PATH_MAX + 8];
	struct timespec			 ts = { 0, 1000000 };
	ssize_t				 n;
	pid_t				 pid;
	int				 lfd, fd, ctl, ack, tries;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	lfd = listen_at(path, sizeof(path));
	pid = spawn_peer(path, &ctl, &ack);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	assert_int_equal(peercred_get(fd, &pc), 0);
	assert_true(pc.exe_known);
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)), 0);
	snprintf(now, sizeof(now), "path:%s", self);
	assert_true(selector_set_contains(&s, "unix", now));
	selector_set_cleanup(&s);
	assert_int_equal(write(ctl, "x", 1), 1);
	snprintf(link, sizeof(link), "/proc/%ld/exe", (long)pid);
	for (tries = 0; tries < 5000; tries++) {
		n = readlink(link, now, PATH_MAX - 1);
		if (n > 0 && ((now[n] = '\0'), strcmp(now, self) != 0))
			break;
		nanosleep(&ts, NULL);
	}
	assert_true(tries < 5000);
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)),
	    WICK_ERR_PERM);
	assert_non_null(strstr(why, "binary changed since connect"));
	selector_set_cleanup(&s);
	/* Without path selectors the uid alone is attested, as before. */
	o.discover_workload_path = 0;
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)), 0);
	selector_set_cleanup(&s);
	/* A binary that could not be read at accept proves nothing. */
	o.discover_workload_path = 1;
	self_cred(&pc);
	pc.exe_known = 0;
	selector_set_init(&s);
	assert_int_equal(attestor_unix(&a, &pc, 0, &s, why, sizeof(why)),
	    WICK_ERR_PERM);
	assert_non_null(strstr(why, "binary at connect is unknown"));
	selector_set_cleanup(&s);
	end_peer(pid, ctl, ack);
	close(fd);
	close(lfd);
	unlink(path);
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

/* The pause between rounds: 1 s doubling to 30 s, jittered down <= 1/5. */
static void
test_nodeclient_backoff(void **state)
{
	uint64_t	expect[] = { 0, 1000, 2000, 4000, 8000, 16000, 30000,
			    30000 };
	unsigned	i;

	(void)state;
	for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		assert_int_equal(nodeclient_backoff_ms(i, 0), expect[i]);
		assert_int_equal(nodeclient_backoff_ms(i, 1000),
		    expect[i] - expect[i] / 5);
		assert_true(nodeclient_backoff_ms(i, 0xffffffffu) <=
		    expect[i]);
		assert_true(nodeclient_backoff_ms(i, 0xffffffffu) >=
		    expect[i] - expect[i] / 5);
	}
	assert_int_equal(nodeclient_backoff_ms(64, 0),
	    NODECLIENT_BACKOFF_MAX_MS);
}

/* Resolved addresses: both families, in order, deduplicated, bounded. */
static void
test_nodeclient_addrs(void **state)
{
	struct addrinfo		 ai[NODECLIENT_MAX_ADDRS + 4];
	struct sockaddr_in	 v4[NODECLIENT_MAX_ADDRS + 4];
	struct sockaddr_in6	 v6;
	char			 out[NODECLIENT_MAX_ADDRS]
				    [NODECLIENT_TARGET_LEN];
	size_t			 i, n;

	(void)state;
	memset(ai, 0, sizeof(ai));
	memset(v4, 0, sizeof(v4));
	memset(&v6, 0, sizeof(v6));
	v6.sin6_family = AF_INET6;
	v6.sin6_addr = in6addr_loopback;
	ai[0].ai_family = AF_INET6;
	ai[0].ai_addr = (struct sockaddr *)&v6;
	ai[0].ai_addrlen = sizeof(v6);
	for (i = 1; i < NODECLIENT_MAX_ADDRS + 4; i++) {
		v4[i].sin_family = AF_INET;
		/* 127.0.0.1 twice (i = 1, 2), then 127.0.0.2, ... */
		v4[i].sin_addr.s_addr = htonl(0x7f000000u |
		    (uint32_t)(i < 2 ? 1 : i - 1));
		ai[i].ai_family = AF_INET;
		ai[i].ai_addr = (struct sockaddr *)&v4[i];
		ai[i].ai_addrlen = sizeof(v4[i]);
		ai[i - 1].ai_next = &ai[i];
	}
	n = nodeclient_addrs(ai, "8081", out, 3);
	assert_int_equal(n, 3);
	assert_string_equal(out[0], "::1:8081");
	assert_string_equal(out[1], "127.0.0.1:8081");
	assert_string_equal(out[2], "127.0.0.2:8081");
	n = nodeclient_addrs(ai, "8081", out, NODECLIENT_MAX_ADDRS);
	assert_int_equal(n, NODECLIENT_MAX_ADDRS);
	assert_string_equal(out[NODECLIENT_MAX_ADDRS - 1], "127.0.0.15:8081");
	assert_int_equal(nodeclient_addrs(NULL, "1", out, 4), 0);
}

/* "host:port", with IPv6 literals bracketed or not; a port is needed. */
static void
test_nodeclient_new(void **state)
{
	const char	*good[] = { "server.example.org:8081", "127.0.0.1:1",
			    "[::1]:8081", "::1:8081" };
	const char	*bad[] = { "server", "server:", ":8081",
			    "server:1234567890" };
	STACK_OF(X509)	*roots = sk_X509_new_null();
	struct nodeclient *nc;
	uv_loop_t	 loop;
	size_t		 i;

	(void)state;
	assert_non_null(roots);
	assert_int_equal(uv_loop_init(&loop), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(nodeclient_new(&loop, bad[i], "example.org",
		    roots, &nc), WICK_ERR_INVALID);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(nodeclient_new(&loop, good[i], "example.org",
		    roots, &nc), 0);
		nodeclient_free(nc);
		(void)uv_run(&loop, UV_RUN_DEFAULT);
	}
	assert_int_equal(uv_loop_close(&loop), 0);
	sk_X509_free(roots);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix_attestor_self),
		cmocka_unit_test(test_unix_attestor_no_groups),
		cmocka_unit_test(test_unix_attestor_path_and_hash),
		cmocka_unit_test(test_unix_attestor_cache_and_hash_job),
		cmocka_unit_test(test_unix_attestor_pid_reuse),
		cmocka_unit_test(test_unix_attestor_ids_from_connect),
		cmocka_unit_test(test_unix_attestor_ids_change_after_connect),
		cmocka_unit_test(test_unix_attestor_exec_after_connect),
		cmocka_unit_test(test_agent_config),
		cmocka_unit_test(test_nodeclient_backoff),
		cmocka_unit_test(test_nodeclient_addrs),
		cmocka_unit_test(test_nodeclient_new),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
