/*
 * test_secpath.c: the checks of secpath.h on real directories in a
 * scratch tree under /tmp: what is made and with which modes, what is
 * refused and what the message names, symbolic links, relative paths,
 * and a directory another user makes between our lstat() and our mkdir()
 * (mkdir() is wrapped).  Cases that need another owner run as root only.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "err.h"
#include "secpath.h"

#define OTHER	65534		/* another user: nobody */

static char	base[64];
static char	why[SECPATH_MAX_WHY];

/* ---- mkdir() seam: another user is first -------------------------------- */

int	__real_mkdir(const char *, mode_t);
int	__wrap_mkdir(const char *, mode_t);

static char	race_path[PATH_MAX];	/* made by OTHER just before us */
static int	race_link;		/* as a symbolic link to / instead */

int
__wrap_mkdir(const char *path, mode_t mode)
{
	if (race_path[0] != '\0' && strcmp(path, race_path) == 0) {
		if (race_link) {
			assert_int_equal(symlink("/", path), 0);
			assert_int_equal(lchown(path, OTHER, OTHER), 0);
		} else {
			assert_int_equal(__real_mkdir(path, 0755), 0);
			assert_int_equal(chown(path, OTHER, OTHER), 0);
		}
	}
	return __real_mkdir(path, mode);
}

/* ---- helpers ------------------------------------------------------------ */

static const char *
at(const char *rel)
{
	static char	buf[4][PATH_MAX];
	static int	i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", base, rel);
	return buf[i];
}

static void
make(const char *rel, mode_t mode, uid_t uid)
{
	assert_int_equal(__real_mkdir(at(rel), mode), 0);
	assert_int_equal(chmod(at(rel), mode), 0);
	assert_int_equal(chown(at(rel), uid, uid), 0);
}

static void
make_file(const char *rel, mode_t mode)
{
	FILE *f = fopen(at(rel), "w");

	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
	assert_int_equal(chmod(at(rel), mode), 0);
}

static mode_t
mode_of(const char *rel)
{
	struct stat st;

	assert_int_equal(lstat(at(rel), &st), 0);
	return st.st_mode & 07777;
}

static int
exists(const char *rel)
{
	struct stat st;

	return lstat(at(rel), &st) == 0;
}

/* why names every one of the strings given. */
static void
why_has(const char *first, ...)
{
	const char	*s;
	va_list		 ap;

	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *))
		if (strstr(why, s) == NULL) {
			print_error("\"%s\" not in \"%s\"\n", s, why);
			fail();
		}
	va_end(ap);
}

static void
need_root(void)
{
	if (geteuid() != 0)
		skip();
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup(void **state)
{
	snprintf(base, sizeof(base), "/tmp/wick-test-secpath.XXXXXX");
	assert_non_null(mkdtemp(base));
	race_path[0] = '\0';
	race_link = 0;
	return 0;
}

static int
teardown(void **state)
{
	assert_int_equal(nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
	return 0;
}

/* ---- making directories ------------------------------------------------- */

static void
test_mkdir_makes_what_is_missing(void **state)
{
	mode_t old = umask(077);

	assert_int_equal(secpath_mkdir(at("a/b/c"), 0700, why, sizeof(why)),
	    0);
	assert_string_equal(why, "");
	/* Exact modes, whatever the umask. */
	assert_int_equal(mode_of("a"), 0755);
	assert_int_equal(mode_of("a/b"), 0755);
	assert_int_equal(mode_of("a/b/c"), 0700);
	/* Again: nothing to do. */
	assert_int_equal(secpath_mkdir(at("a/b/c"), 0700, why, sizeof(why)),
	    0);
	/* A socket's directory, open to all. */
	assert_int_equal(secpath_mkdir_parent(at("pub/api.sock"), 0755, why,
	    sizeof(why)), 0);
	assert_int_equal(mode_of("pub"), 0755);
	assert_false(exists("pub/api.sock"));
	/* ".", ".." and doubled slashes resolve as the kernel does. */
	assert_int_equal(secpath_mkdir(at("./a//b/../b/c/"), 0700, why,
	    sizeof(why)), 0);
	umask(old);
}

static void
test_mkdir_relative(void **state)
{
	char cwd[PATH_MAX];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(base), 0);
	assert_int_equal(secpath_mkdir("rel/x", 0700, why, sizeof(why)), 0);
	assert_int_equal(secpath_mkdir_parent("f.sock", 0700, why,
	    sizeof(why)), 0);	/* the working directory: ours, 0700 */
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(mode_of("rel/x"), 0700);
}

static void
test_mkdir_refuses_open_leaf(void **state)
{
	make("open", 0755, geteuid());
	assert_int_equal(secpath_mkdir(at("open"), 0700, why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("open"), "mode 0755", "0700", NULL);
	/* Never chmod()ed: it might have been /run. */
	assert_int_equal(mode_of("open"), 0755);
	/* Narrower than asked is fine. */
	make("narrow", 0700, geteuid());
	assert_int_equal(secpath_mkdir(at("narrow"), 0755, why, sizeof(why)),
	    0);
}

static void
test_writable_component(void **state)
{
	make("gw", 0775, geteuid());
	assert_int_equal(secpath_mkdir(at("gw/x"), 0700, why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("gw"), "writable by group or others", "mode 0775", NULL);
	assert_false(exists("gw/x"));
	make("ow", 0757, geteuid());
	assert_int_equal(secpath_check_file(at("ow/f"), why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("ow"), "mode 0757", NULL);
	/* Not even a client takes a directory others can write. */
	assert_int_equal(secpath_check_socket(at("ow/s"), why, sizeof(why)),
	    WICK_ERR_PERM);
}

static void
test_sticky_parent(void **state)
{
	make("tmp", 01777, geteuid());
	assert_int_equal(secpath_mkdir(at("tmp/mine/public"), 0755, why,
	    sizeof(why)), 0);
	assert_int_equal(mode_of("tmp/mine"), 0755);
	/* As the last component it is refused, and left alone. */
	assert_int_equal(secpath_mkdir(at("tmp"), 01777, why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("tmp"), "mode 1777", NULL);
	assert_int_equal(secpath_mkdir_parent(at("tmp/api.sock"), 0700, why,
	    sizeof(why)), WICK_ERR_PERM);
	assert_int_equal(mode_of("tmp"), 01777);
}

/* The attack: another user made our directory first, in /tmp. */
static void
test_other_owner_refused(void **state)
{
	need_root();
	make("tmp", 01777, 0);
	make("tmp/wick-agent", 0755, OTHER);
	assert_int_equal(secpath_mkdir(at("tmp/wick-agent/public"), 0755, why,
	    sizeof(why)), WICK_ERR_PERM);
	why_has(at("tmp/wick-agent"), "uid 65534", "mode 0755", NULL);
	assert_false(exists("tmp/wick-agent/public"));
	/* The last one too, and its files. */
	make("theirs", 0700, OTHER);
	assert_int_equal(secpath_mkdir(at("theirs"), 0700, why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("theirs"), "uid 65534", NULL);
	make_file("f", 0644);
	assert_int_equal(chown(at("f"), OTHER, OTHER), 0);
	assert_int_equal(secpath_check_file(at("f"), why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("f"), "uid 65534", "mode 0644", NULL);
	/* A root-owned one is fine as a parent. */
	make("root", 0755, 0);
	assert_int_equal(secpath_mkdir(at("root/x"), 0700, why, sizeof(why)),
	    0);
}

/* Another user makes the directory between our lstat() and mkdir(). */
static void
test_race_recheck(void **state)
{
	need_root();
	make("tmp", 01777, 0);
	snprintf(race_path, sizeof(race_path), "%s", at("tmp/wick-server"));
	assert_int_equal(secpath_mkdir(at("tmp/wick-server/private"), 0700,
	    why, sizeof(why)), WICK_ERR_PERM);
	why_has(at("tmp/wick-server"), "uid 65534", NULL);
	assert_false(exists("tmp/wick-server/private"));
	/* A symbolic link planted in its place. */
	snprintf(race_path, sizeof(race_path), "%s", at("tmp/wick-agent"));
	race_link = 1;
	assert_int_equal(secpath_mkdir(at("tmp/wick-agent/public"), 0755,
	    why, sizeof(why)), WICK_ERR_PERM);
	why_has(at("tmp/wick-agent"), "symbolic link", "uid 65534", NULL);
	race_path[0] = '\0';
}

/* ---- symbolic links ----------------------------------------------------- */

static void
test_links_followed(void **state)
{
	make("real", 0700, geteuid());
	make("d1", 0755, geteuid());
	assert_int_equal(symlink("real", at("rel")), 0);
	assert_int_equal(symlink("../real", at("d1/up")), 0);
	assert_int_equal(symlink(at("real"), at("abs")), 0);
	assert_int_equal(secpath_mkdir(at("rel"), 0700, why, sizeof(why)), 0);
	assert_int_equal(secpath_mkdir(at("d1/up"), 0700, why, sizeof(why)),
	    0);
	assert_int_equal(secpath_mkdir(at("abs/sub"), 0700, why, sizeof(why)),
	    0);
	assert_int_equal(mode_of("real/sub"), 0700);
	/* The target is checked whole: its bad component is named. */
	make("gw", 0775, geteuid());
	make("gw/t", 0700, geteuid());
	assert_int_equal(symlink(at("gw/t"), at("bad")), 0);
	assert_int_equal(secpath_mkdir(at("bad"), 0700, why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("gw"), "mode 0775", NULL);
	/* A file through a link. */
	make_file("real/f", 0644);
	assert_int_equal(secpath_check_file(at("rel/f"), why, sizeof(why)),
	    0);
}

static void
test_link_of_another_user(void **state)
{
	need_root();
	make("real", 0700, 0);
	assert_int_equal(symlink("real", at("l")), 0);
	assert_int_equal(lchown(at("l"), OTHER, OTHER), 0);
	assert_int_equal(secpath_mkdir(at("l"), 0700, why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("l"), "symbolic link owned by uid 65534", NULL);
}

static void
test_link_loop(void **state)
{
	assert_int_equal(symlink("l2", at("l1")), 0);
	assert_int_equal(symlink("l1", at("l2")), 0);
	assert_int_equal(secpath_mkdir(at("l1"), 0700, why, sizeof(why)),
	    WICK_ERR_LIMIT);
	why_has("more than 40 symbolic links", NULL);
}

/* ---- files and sockets -------------------------------------------------- */

static void
test_check_file(void **state)
{
	make_file("f", 0644);
	assert_int_equal(secpath_check_file(at("f"), why, sizeof(why)), 0);
	assert_int_equal(chmod(at("f"), 0664), 0);
	assert_int_equal(secpath_check_file(at("f"), why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("f"), "writable by group or others", "mode 0664", NULL);
	assert_int_equal(secpath_check_file(at("none"), why, sizeof(why)),
	    WICK_ERR_NOT_FOUND);
	why_has(at("none"), "no such file", NULL);
	assert_int_equal(secpath_check_file(base, why, sizeof(why)),
	    WICK_ERR_INVALID);
	why_has("not a regular file", NULL);
	assert_int_equal(secpath_check_file(at("f/x"), why, sizeof(why)),
	    WICK_ERR_INVALID);
	why_has(at("f"), "not a directory", NULL);
}

static void
listen_at(const char *path)
{
	struct sockaddr_un	sa;
	int			fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

static void
test_check_socket(void **state)
{
	make("s", 0700, geteuid());
	listen_at(at("s/api.sock"));
	assert_int_equal(chmod(at("s/api.sock"), 0777), 0);
	/* Its mode is who may connect: not a reason to refuse. */
	assert_int_equal(secpath_check_socket(at("s/api.sock"), why,
	    sizeof(why)), 0);
	assert_int_equal(secpath_check_socket(at("s/none.sock"), why,
	    sizeof(why)), WICK_ERR_NOT_FOUND);
	assert_int_equal(secpath_check_socket(at("gone/api.sock"), why,
	    sizeof(why)), WICK_ERR_NOT_FOUND);
	why_has(at("gone"), NULL);
	make_file("s/file", 0600);
	assert_int_equal(secpath_check_socket(at("s/file"), why, sizeof(why)),
	    WICK_ERR_INVALID);
	why_has("not a socket", NULL);
}

static void
test_check_socket_owners(void **state)
{
	need_root();
	/* The fake: another user's directory in /tmp, and its socket. */
	make("tmp", 01777, 0);
	make("tmp/wick-server", 0755, OTHER);
	make("tmp/wick-server/private", 0700, OTHER);
	listen_at(at("tmp/wick-server/private/api.sock"));
	assert_int_equal(secpath_check_socket(
	    at("tmp/wick-server/private/api.sock"), why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("tmp/wick-server"), "uid 65534", "mode 0755", NULL);
	/* Or only the socket is theirs, in /tmp. */
	listen_at(at("tmp/api.sock"));
	assert_int_equal(chown(at("tmp/api.sock"), OTHER, OTHER), 0);
	assert_int_equal(secpath_check_socket(at("tmp/api.sock"), why,
	    sizeof(why)), WICK_ERR_PERM);
	why_has(at("tmp/api.sock"), "uid 65534", NULL);
	/*
	 * A directory root made for a service user in a directory only root
	 * writes (/run/wick-server): the client takes it, the daemons'
	 * checks do not.
	 */
	make("run", 0755, 0);
	make("run/wick-server", 0755, OTHER);
	make("run/wick-server/private", 0700, OTHER);
	listen_at(at("run/wick-server/private/api.sock"));
	assert_int_equal(chown(at("run/wick-server/private/api.sock"), OTHER,
	    OTHER), 0);
	assert_int_equal(secpath_check_socket(
	    at("run/wick-server/private/api.sock"), why, sizeof(why)), 0);
	assert_int_equal(secpath_mkdir_parent(
	    at("run/wick-server/private/api.sock"), 0700, why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has(at("run/wick-server"), "uid 65534", NULL);
}

/* ---- input that is not a path ------------------------------------------ */

static void
test_bad_input(void **state)
{
	char	*p;
	size_t	 i;

	assert_int_equal(secpath_mkdir("", 0700, why, sizeof(why)),
	    WICK_ERR_INVALID);
	assert_int_equal(secpath_check_file("", why, sizeof(why)),
	    WICK_ERR_INVALID);
	/* Longer than PATH_MAX (the walk is not bound by it). */
	p = malloc(3 * PATH_MAX);
	assert_non_null(p);
	snprintf(p, 3 * PATH_MAX, "%s", base);
	for (i = strlen(p); i + 3 < 3 * PATH_MAX - 1; i += 2)
		memcpy(p + i, "/.", 3);
	assert_int_equal(secpath_check_file(p, why, sizeof(why)),
	    WICK_ERR_INVALID);	/* base itself, not a file */
	/* A name longer than NAME_MAX. */
	snprintf(p, 3 * PATH_MAX, "%s/", base);
	memset(p + strlen(p), 'n', 300);
	p[strlen(base) + 1 + 300] = '\0';
	assert_int_equal(secpath_check_file(p, why, sizeof(why)),
	    WICK_ERR_IO);
	free(p);
	/* A tiny buffer still gets a terminated (cut) message. */
	assert_int_equal(secpath_check_file(at("none"), why, 8),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(strlen(why), 7);
	/* / as the directory: never changed, and 0755 is not 0700. */
	assert_int_equal(secpath_mkdir("/", 0700, why, sizeof(why)),
	    WICK_ERR_PERM);
	why_has("/: ", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_mkdir_makes_what_is_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_relative, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_refuses_open_leaf,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_component, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sticky_parent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_other_owner_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_recheck, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_links_followed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_link_of_another_user,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_loop, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_check_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_check_socket, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_check_socket_owners,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
