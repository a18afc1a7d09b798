/*
 * test_docker.c: the docker workload attestor: container IDs from
 * real-shaped /proc/<pid>/cgroup and mountinfo samples of every naming
 * form, the engine-answer parser, the options, and the engine client's
 * failure handling against real Unix sockets that misbehave (accept and
 * never answer, answer garbage or too much, hang up).  The client's
 * success path is proved against a real engine by the integration tests.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "attestor_docker.h"

/*
 * Container IDs: A and B of podman 4.3 containers on this machine (runc,
 * hybrid cgroups), C and D from SPIRE's samples.
 */
#define ID_A	"3a9a92cb8e8677d8a7d15f5ff7d3009f" \
	"07c31183b08b2dcffd2bd24b49095775"
#define ID_B	"a8638ad77e9eb12b4baa843d96905277" \
	"7260920a501e918752e8f46a090b427f"
#define ID_C	"0123456789abcdef0123456789abcdef" \
	"0123456789abcdef0123456789abcdef"
#define ID_D	"93529524695bb00d91c1f6dba692ea8d" \
	"3550c3b94fb2463af7bc9ec82f992d26"
#define POD_UID	"0b5f4d2c-5b35-4f1a-9a7c-3b4c5d6e7f80"
#define POD_SD	"0b5f4d2c_5b35_4f1a_9a7c_3b4c5d6e7f80"

/*
 * /proc/<pid>/cgroup samples.
 */

/* A podman container on this machine, seen from the host. */
static const char cg_podman_hybrid[] =
	"9:name=systemd:/libpod_parent/libpod-" ID_A "\n"
	"8:pids:/libpod_parent/libpod-" ID_A "\n"
	"7:blkio:/libpod_parent/libpod-" ID_A "\n"
	"6:freezer:/libpod_parent/libpod-" ID_A "\n"
	"5:devices:/libpod_parent/libpod-" ID_A "\n"
	"4:memory:/libpod_parent/libpod-" ID_A "\n"
	"3:cpuset:/libpod_parent/libpod-" ID_A "\n"
	"2:cpuacct:/libpod_parent/libpod-" ID_A "\n"
	"1:cpu:/libpod_parent/libpod-" ID_A "\n"
	"0::/libpod_parent/libpod-" ID_A "\n";

/* A host process on this machine: a 32-hex name, never a container. */
static const char cg_host_hybrid[] =
	"9:name=systemd:/\n"
	"8:pids:/\n"
	"7:blkio:/\n"
	"6:freezer:/\n"
	"5:devices:/\n"
	"4:memory:/process_api/eab33c8b5c6113163ad4f7796ff57665\n"
	"3:cpuset:/\n"
	"2:cpuacct:/\n"
	"1:cpu:/\n"
	"0::/\n";

/* Inside a container with a private cgroup namespace (podman here). */
static const char cg_hidden[] =
	"9:name=systemd:/\n"
	"8:pids:/\n"
	"7:blkio:/\n"
	"6:freezer:/\n"
	"5:devices:/\n"
	"4:memory:/\n"
	"3:cpuset:/\n"
	"2:cpuacct:/\n"
	"1:cpu:/\n"
	"0::/\n";

/* Docker, cgroupfs driver, cgroup v1. */
static const char cg_docker_v1[] =
	"12:hugetlb:/docker/" ID_C "\n"
	"11:memory:/docker/" ID_C "\n"
	"10:cpu,cpuacct:/docker/" ID_C "\n"
	"9:net_cls,net_prio:/docker/" ID_C "\n"
	"8:pids:/docker/" ID_C "\n"
	"7:devices:/docker/" ID_C "\n"
	"6:freezer:/docker/" ID_C "\n"
	"5:blkio:/docker/" ID_C "\n"
	"4:cpuset:/docker/" ID_C "\n"
	"3:perf_event:/docker/" ID_C "\n"
	"2:rdma:/\n"
	"1:name=systemd:/docker/" ID_C "\n"
	"0::/system.slice/containerd.service\n";

/* Docker, systemd driver, cgroup v2. */
static const char cg_docker_v2[] =
	"0::/system.slice/docker-" ID_C ".scope\n";

/* Kubernetes, containerd (CRI), systemd driver, cgroup v2. */
static const char cg_cri_v2[] =
	"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
	POD_SD ".slice/cri-containerd-" ID_C ".scope\n";

/* Kubernetes, cgroupfs driver, cgroup v1. */
static const char cg_kubepods_v1[] =
	"11:memory:/kubepods/besteffort/pod" POD_UID "/" ID_C "\n"
	"4:cpu,cpuacct:/kubepods/besteffort/pod" POD_UID "/" ID_C "\n"
	"1:name=systemd:/kubepods/besteffort/pod" POD_UID "/" ID_C "\n"
	"0::/\n";

/* CRI-O: the container, and its monitor (conmon), which is not one. */
static const char cg_crio_v2[] =
	"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
	POD_SD ".slice/crio-" ID_C ".scope\n";
static const char cg_crio_conmon[] =
	"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
	POD_SD ".slice/crio-conmon-" ID_C ".scope\n";

/* podman with the systemd cgroup manager; its conmon scope. */
static const char cg_podman_systemd[] =
	"0::/machine.slice/libpod-" ID_A ".scope/container\n";
static const char cg_podman_conmon[] =
	"0::/machine.slice/libpod-conmon-" ID_A ".scope\n";

/* Kubernetes in docker (kind): the docker engine knows the node. */
static const char cg_kind[] =
	"1:cpuset:/docker/" ID_D "/kubepods/besteffort/pod" POD_UID "/"
	ID_C "\n"
	"0::/docker/" ID_D "/system.slice/containerd.service\n";

/* A container that made a cgroup named after another one inside it. */
static const char cg_nested_claim[] =
	"0::/libpod_parent/libpod-" ID_A "/" ID_B "\n";

/* The agent in a cgroup namespace of its own (SPIRE's sample). */
static const char cg_above_ns[] =
	"0::/../" ID_C "\n";

/* Long hex strings that are not container IDs. */
static const char cg_not_ids[] =
	"5:memory:/process_api/eab33c8b5c6113163ad4f7796ff57665\n"
	"4:pids:/system.slice/" ID_C "x.service\n"
	"3:cpu:/user.slice/0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
	"0123456789ABCDEF\n"
	"2:blkio:/x/0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	"abcde\n"
	"1:name=systemd:/nerdctl-" ID_C ".scope\n"
	"0::/user.slice/user-1000.slice/session-3.scope/" ID_C ".scope\n";

/* A systemd host, cgroup v2. */
static const char cg_systemd_user[] =
	"0::/user.slice/user-1000.slice/session-3.scope\n";

struct cg_case {
	const char	*name;
	const char	*text;
	const char	*id;		/* NULL: none */
	int		 podman;
	int		 hidden;
};

static const struct cg_case cg_cases[] = {
	{ "podman, hybrid (this machine)", cg_podman_hybrid, ID_A, 1, 0 },
	{ "host, hybrid (this machine)", cg_host_hybrid, NULL, 0, 0 },
	{ "cgroup namespace", cg_hidden, NULL, 0, 1 },
	{ "docker cgroupfs v1", cg_docker_v1, ID_C, 0, 0 },
	{ "docker systemd v2", cg_docker_v2, ID_C, 0, 0 },
	{ "containerd CRI v2", cg_cri_v2, ID_C, 0, 0 },
	{ "kubepods cgroupfs v1", cg_kubepods_v1, ID_C, 0, 0 },
	{ "cri-o v2", cg_crio_v2, ID_C, 0, 0 },
	{ "cri-o conmon", cg_crio_conmon, NULL, 0, 0 },
	{ "podman systemd", cg_podman_systemd, ID_A, 1, 0 },
	{ "podman conmon", cg_podman_conmon, NULL, 0, 0 },
	{ "kind: the outer container", cg_kind, ID_D, 0, 0 },
	{ "a cgroup inside a container", cg_nested_claim, ID_A, 1, 0 },
	{ "above the agent's namespace", cg_above_ns, ID_C, 0, 0 },
	{ "long hex that is no ID", cg_not_ids, NULL, 0, 0 },
	{ "systemd user session", cg_systemd_user, NULL, 0, 0 },
};

static void
test_cgroup_forms(void **state)
{
	struct docker_found	 f;
	char			 why[256];
	size_t			 i;
	int			 r;

	for (i = 0; i < sizeof(cg_cases) / sizeof(cg_cases[0]); i++) {
		const struct cg_case *c = &cg_cases[i];

		why[0] = '\0';
		r = docker_container_id(c->text, strlen(c->text), NULL, &f, why,
		    sizeof(why));
		if (c->id != NULL) {
			if (r != 0)
				fail_msg("%s: %d %s", c->name, r, why);
			assert_string_equal(f.id, c->id);
			assert_int_equal(f.podman, c->podman);
		} else {
			if (r != WICK_ERR_NOT_FOUND)
				fail_msg("%s: %d %s (%s)", c->name, r, why,
				    f.id);
			assert_string_equal(f.id, "");
			assert_int_equal(f.hidden, c->hidden);
		}
	}
}

static void
expect_cgroup_error(const char *text, size_t len, int want)
{
	struct docker_found	 f;
	char			 why[256] = "";

	assert_int_equal(docker_container_id(text, len, NULL, &f, why,
	    sizeof(why)), want);
	assert_true(why[0] != '\0');
	assert_string_equal(f.id, "");
}

#define EXPECT_CG(s, want)	expect_cgroup_error((s), strlen(s), (want))

static void
test_cgroup_malformed(void **state)
{
	static const char nul[] = "0::/docker/" ID_C "\0x\n";
	char	 big[DOCKER_MAX_CGROUP_LINES * 8 + 64];
	size_t	 i, n = 0;

	/* Two containers. */
	EXPECT_CG("1:cpu:/docker/" ID_C "\n0::/docker/" ID_D "\n",
	    WICK_ERR_INVALID);
	EXPECT_CG("no colons here\n", WICK_ERR_INVALID);
	EXPECT_CG("0:/docker\n", WICK_ERR_INVALID);
	EXPECT_CG("0::docker/" ID_C "\n", WICK_ERR_INVALID);
	EXPECT_CG("x::/\n", WICK_ERR_INVALID);
	EXPECT_CG("0::/\n\n", WICK_ERR_INVALID);
	expect_cgroup_error(nul, sizeof(nul) - 1, WICK_ERR_INVALID);
	/* One hierarchy twice: a line that was smuggled in. */
	EXPECT_CG("0::/\n0::/docker/" ID_C "\n", WICK_ERR_INVALID);
	for (i = 0; i <= DOCKER_MAX_CGROUP_LINES; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%zu::/\n", i);
	expect_cgroup_error(big, n, WICK_ERR_LIMIT);
}

static void
matchers(struct docker_opts *o, const char **m, size_t n)
{
	memset(o, 0, sizeof(*o));
	o->matchers = (char **)m;
	o->nmatchers = n;
}

static void
test_cgroup_matchers(void **state)
{
	const char		*m[] = { "/docker/<id>", "/my.slice/*/<id>/*" };
	struct docker_opts	 o;
	struct docker_found	 f;
	char			 why[256];
	const char		*t;

	matchers(&o, m, 2);
	assert_int_equal(docker_container_id(cg_docker_v1,
	    strlen(cg_docker_v1), &o, &f, why, sizeof(why)), 0);
	assert_string_equal(f.id, ID_C);
	t = "0::/my.slice/x.scope/" ID_C "/sub\n";
	assert_int_equal(docker_container_id(t, strlen(t), &o, &f, why,
	    sizeof(why)), 0);
	assert_string_equal(f.id, ID_C);
	/* The whole path must match: one element too many or too few. */
	t = "0::/my.slice/x.scope/" ID_C "/sub/more\n";
	assert_int_equal(docker_container_id(t, strlen(t), &o, &f, why,
	    sizeof(why)), WICK_ERR_NOT_FOUND);
	t = "0::/docker/" ID_C "/sub\n";
	assert_int_equal(docker_container_id(t, strlen(t), &o, &f, why,
	    sizeof(why)), WICK_ERR_NOT_FOUND);
	/* The built-in rules are off, and so is the mountinfo fallback. */
	assert_int_equal(docker_container_id(cg_docker_v2,
	    strlen(cg_docker_v2), &o, &f, why, sizeof(why)),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(docker_container_id(cg_hidden, strlen(cg_hidden),
	    &o, &f, why, sizeof(why)), WICK_ERR_NOT_FOUND);
	assert_false(f.hidden);
	/* <id> must capture a container ID, not a name or a 32-hex one. */
	t = "0::/docker/web\n";
	assert_int_equal(docker_container_id(t, strlen(t), &o, &f, why,
	    sizeof(why)), WICK_ERR_INVALID);
	t = "0::/docker/eab33c8b5c6113163ad4f7796ff57665\n";
	assert_int_equal(docker_container_id(t, strlen(t), &o, &f, why,
	    sizeof(why)), WICK_ERR_INVALID);
}

/*
 * /proc/<pid>/mountinfo samples.
 */

/* A podman container on this machine, seen from the host. */
static const char mi_podman[] =
	"76 51 0:41 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/"
	"containers/storage/overlay/l/IACO2267GY6RVIM6QLK5INXGCD,upperdir=/var/"
	"lib/containers/storage/overlay/b79718944e57859b3941ec30d29fc9eabaa238c"
	"4d930a3eaaa4f19a1c1f1416e/diff,workdir=/var/lib/containers/storage/"
	"overlay/b79718944e57859b3941ec30d29fc9eabaa238c4d930a3eaaa4f19a1c1f141"
	"6e/work,uuid=on\n"
	"77 76 0:44 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
	"78 76 0:45 / /dev rw,nosuid,noexec - tmpfs tmpfs rw,size=65536k,"
	"mode=755\n"
	"79 76 0:46 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
	"82 76 254:0 /run/containers/storage/overlay-containers/" ID_A
	"/userdata/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n"
	"83 76 254:0 /run/containers/storage/overlay-containers/" ID_A
	"/userdata/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw\n"
	"84 78 0:40 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm "
	"rw,size=64000k\n"
	"85 76 254:0 /run/containers/storage/overlay-containers/" ID_A
	"/userdata/.containerenv /run/.containerenv rw,relatime - ext4 "
	"/dev/vda rw\n"
	"86 79 0:48 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs "
	"tmpfs rw,mode=755\n"
	"87 86 0:29 /libpod_parent/libpod-" ID_A " /sys/fs/cgroup/cpu ro,"
	"nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu\n"
	"95 86 0:37 /libpod_parent/libpod-" ID_A " /sys/fs/cgroup/systemd ro,"
	"nosuid,nodev,noexec,relatime - cgroup cgroup rw,name=systemd\n"
	"57 77 0:45 /null /proc/keys rw,nosuid,noexec - tmpfs tmpfs rw,"
	"size=65536k,mode=755\n";

/* Docker with a private cgroup namespace: only its bind mounts say. */
static const char mi_docker[] =
	"736 735 0:57 / / rw,relatime master:300 - overlay overlay rw,lowerdir="
	"/var/lib/docker/overlay2/l/ABCDEFGHIJ:/var/lib/docker/overlay2/l/KLMN"
	"OPQRST,upperdir=/var/lib/docker/overlay2/" ID_D "/diff,workdir=/var/"
	"lib/docker/overlay2/" ID_D "/work\n"
	"737 736 0:61 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
	"742 741 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - "
	"cgroup2 cgroup rw,nsdelegate,memory_recursiveprot\n"
	"744 736 8:1 /var/lib/docker/containers/" ID_C "/resolv.conf "
	"/etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw,errors=remount-ro\n"
	"745 736 8:1 /var/lib/docker/containers/" ID_C "/hostname /etc/hostname"
	" rw,relatime - ext4 /dev/sda1 rw,errors=remount-ro\n"
	"746 736 8:1 /var/lib/docker/containers/" ID_C "/hosts /etc/hosts "
	"rw,relatime - ext4 /dev/sda1 rw,errors=remount-ro\n"
	"747 736 8:1 /var/lib/docker/volumes/" ID_D "/_data /data rw,relatime "
	"- ext4 /dev/sda1 rw,errors=remount-ro\n";

/* This machine's host: cgroup hierarchies at "/", nothing named. */
static const char mi_host[] =
	"23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw\n"
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,"
	"memory\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,"
	"name=systemd\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	"50 1 0:40 / /var/lib/containers/storage/overlay-containers/" ID_A
	"/userdata/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw\n"
	"119 206 0:68 / /local rw,relatime - tmpfs  rw,size=8192k\n";

/* SPIRE's samples: cgroup v2 roots above the reader's namespace. */
static const char mi_ns_v2[] =
	"2356 2355 0:30 /../" ID_C " /sys/fs/cgroup ro,nosuid,nodev,noexec,"
	"relatime - cgroup2 cgroup rw\n";
static const char mi_k8s_v2[] =
	"1543 1542 0:32 /../../kubelet-kubepods-besteffort.slice/kubelet-"
	"kubepods-besteffort-pod" POD_SD ".slice/cri-containerd-" ID_C
	".scope /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 "
	"cgroup rw,nsdelegate,memory\n";
static const char mi_conflict[] =
	"2356 2355 0:30 /../" ID_C " /sys/fs/cgroup ro - cgroup2 cgroup rw\n"
	"2357 2355 0:30 /../" ID_D " /sys/fs/cgroup ro - cgroup2 cgroup rw\n";
/* An escaped space in the root; the file's name does not matter. */
static const char mi_escaped[] =
	"745 736 8:1 /var/lib/docker/containers/" ID_C "/host\\040name "
	"/etc/host\\040name rw - ext4 /dev/sda1 rw\n";
/* The directory alone is not an engine's bind mount. */
static const char mi_dir_only[] =
	"745 736 8:1 /var/lib/docker/containers/" ID_C " /mnt rw - ext4 "
	"/dev/sda1 rw\n";

static void
test_mountinfo_forms(void **state)
{
	struct docker_found	 f;
	char			 why[256];

	assert_int_equal(docker_mountinfo_id(mi_podman, strlen(mi_podman), &f,
	    why, sizeof(why)), 0);
	assert_string_equal(f.id, ID_A);
	assert_true(f.podman);
	assert_int_equal(docker_mountinfo_id(mi_docker, strlen(mi_docker), &f,
	    why, sizeof(why)), 0);
	assert_string_equal(f.id, ID_C);
	assert_false(f.podman);
	assert_int_equal(docker_mountinfo_id(mi_host, strlen(mi_host), &f,
	    why, sizeof(why)), WICK_ERR_NOT_FOUND);
	assert_int_equal(docker_mountinfo_id(mi_ns_v2, strlen(mi_ns_v2), &f,
	    why, sizeof(why)), 0);
	assert_string_equal(f.id, ID_C);
	assert_int_equal(docker_mountinfo_id(mi_k8s_v2, strlen(mi_k8s_v2), &f,
	    why, sizeof(why)), 0);
	assert_string_equal(f.id, ID_C);
	assert_int_equal(docker_mountinfo_id(mi_escaped, strlen(mi_escaped),
	    &f, why, sizeof(why)), 0);
	assert_string_equal(f.id, ID_C);
	assert_int_equal(docker_mountinfo_id(mi_dir_only, strlen(mi_dir_only),
	    &f, why, sizeof(why)), WICK_ERR_NOT_FOUND);
	assert_int_equal(docker_mountinfo_id(mi_conflict, strlen(mi_conflict),
	    &f, why, sizeof(why)), WICK_ERR_INVALID);
	assert_string_equal(f.id, "");
}

static void
test_mountinfo_malformed(void **state)
{
	struct docker_found	 f;
	char			 why[256];
	const char		*t;

	t = "1543 1542 0:32 /x /sys/fs/cgroup ro,nosuid\n";
	assert_int_equal(docker_mountinfo_id(t, strlen(t), &f, why,
	    sizeof(why)), WICK_ERR_INVALID);
	t = "1543 1542 0:32 /x /sys/fs/cgroup ro - \n";
	assert_int_equal(docker_mountinfo_id(t, strlen(t), &f, why,
	    sizeof(why)), WICK_ERR_INVALID);
	t = "1 2 / /y - cgroup2 cgroup rw\n";
	assert_int_equal(docker_mountinfo_id(t, strlen(t), &f, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_int_equal(docker_mountinfo_id("a\0b", 3, &f, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_int_equal(docker_mountinfo_id("", 0, &f, why, sizeof(why)),
	    WICK_ERR_NOT_FOUND);
}

/*
 * The engine's answer.
 */

/* GET /v1.41/containers/wl1/json from podman 4.3 on this machine. */
static const char inspect_podman[] =
	"{\"Id\":\"3a9a92cb8e8677d8a7d15f5ff7d3009f07c31183b08b2dcffd2bd24b49"
	"095775\",\"Created\":\"2026-12-03T11:30:21.05922591Z\",\"Path\":\"sl"
	"eep\",\"Args\":[\"600\"],\"State\":{\"Status\":\"running\",\"Running"
	"\":true,\"Paused\":false,\"Restarting\":false,\"OOMKilled\":false,\""
	"Dead\":false,\"Pid\":26370,\"ExitCode\":0,\"Error\":\"\",\"StartedAt"
	"\":\"2026-12-03T11:30:21.175305359Z\",\"FinishedAt\":\"0001-01-01T00"
	":00:00Z\",\"Health\":{\"Status\":\"\",\"FailingStreak\":0,\"Log\":nu"
	"ll}},\"Image\":\"sha256:40ca145e2386bc495ab65f867f1d7e44d3b75de18dbf"
	"76f1fd6a345c9f4d29b5\",\"ResolvConfPath\":\"\",\"HostnamePath\":\"/r"
	"un/containers/storage/overlay-containers/3a9a92cb8e8677d8a7d15f5ff7d"
	"3009f07c31183b08b2dcffd2bd24b49095775/userdata/hostname\",\"HostsPat"
	"h\":\"/run/containers/storage/overlay-containers/3a9a92cb8e8677d8a7d"
	"15f5ff7d3009f07c31183b08b2dcffd2bd24b49095775/userdata/hosts\",\"Log"
	"Path\":\"/var/lib/containers/storage/overlay-containers/3a9a92cb8e86"
	"77d8a7d15f5ff7d3009f07c31183b08b2dcffd2bd24b49095775/userdata/ctr.lo"
	"g\",\"Name\":\"/wl1\",\"RestartCount\":0,\"Driver\":\"overlay\",\"Pl"
	"atform\":\"linux\",\"MountLabel\":\"\",\"ProcessLabel\":\"\",\"AppAr"
	"morProfile\":\"\",\"ExecIDs\":[],\"HostConfig\":{\"Binds\":[],\"Cont"
	"ainerIDFile\":\"\",\"LogConfig\":{\"Type\":\"json-file\",\"Config\":"
	"null},\"NetworkMode\":\"none\",\"PortBindings\":{},\"RestartPolicy\""
	":{\"Name\":\"\",\"MaximumRetryCount\":0},\"AutoRemove\":false,\"Volu"
	"meDriver\":\"\",\"VolumesFrom\":null,\"CapAdd\":[],\"CapDrop\":[],\""
	"CgroupnsMode\":\"\",\"Dns\":[],\"DnsOptions\":[],\"DnsSearch\":[],\""
	"ExtraHosts\":[],\"GroupAdd\":[],\"IpcMode\":\"shareable\",\"Cgroup\""
	":\"\",\"Links\":null,\"OomScoreAdj\":0,\"PidMode\":\"private\",\"Pri"
	"vileged\":false,\"PublishAllPorts\":false,\"ReadonlyRootfs\":false,"
	"\"SecurityOpt\":[],\"UTSMode\":\"private\",\"UsernsMode\":\"\",\"Shm"
	"Size\":65536000,\"Runtime\":\"oci\",\"ConsoleSize\":[0,0],\"Isolatio"
	"n\":\"\",\"CpuShares\":0,\"Memory\":0,\"NanoCpus\":0,\"CgroupParent"
	"\":\"\",\"BlkioWeight\":0,\"BlkioWeightDevice\":null,\"BlkioDeviceRe"
	"adBps\":null,\"BlkioDeviceWriteBps\":null,\"BlkioDeviceReadIOps\":nu"
	"ll,\"BlkioDeviceWriteIOps\":null,\"CpuPeriod\":0,\"CpuQuota\":0,\"Cp"
	"uRealtimePeriod\":0,\"CpuRealtimeRuntime\":0,\"CpusetCpus\":\"\",\"C"
	"pusetMems\":\"\",\"Devices\":[],\"DeviceCgroupRules\":null,\"DeviceR"
	"equests\":null,\"KernelMemory\":0,\"KernelMemoryTCP\":0,\"MemoryRese"
	"rvation\":0,\"MemorySwap\":0,\"MemorySwappiness\":0,\"OomKillDisable"
	"\":false,\"PidsLimit\":2048,\"Ulimits\":[{\"Name\":\"RLIMIT_NOFILE\""
	",\"Hard\":1024,\"Soft\":1024},{\"Name\":\"RLIMIT_NPROC\",\"Hard\":10"
	"24,\"Soft\":1024}],\"CpuCount\":0,\"CpuPercent\":0,\"IOMaximumIOps\""
	":0,\"IOMaximumBandwidth\":0,\"MaskedPaths\":null,\"ReadonlyPaths\":n"
	"ull},\"GraphDriver\":{\"Data\":{\"LowerDir\":\"/var/lib/containers/s"
	"torage/overlay/b4119dcb4f59087fdff49d9afddf6bb1497ac592da304d9f71d30"
	"873e308976d/diff\",\"MergedDir\":\"/var/lib/containers/storage/overl"
	"ay/b79718944e57859b3941ec30d29fc9eabaa238c4d930a3eaaa4f19a1c1f1416e/"
	"merged\",\"UpperDir\":\"/var/lib/containers/storage/overlay/b7971894"
	"4e57859b3941ec30d29fc9eabaa238c4d930a3eaaa4f19a1c1f1416e/diff\",\"Wo"
	"rkDir\":\"/var/lib/containers/storage/overlay/b79718944e57859b3941ec"
	"30d29fc9eabaa238c4d930a3eaaa4f19a1c1f1416e/work\"},\"Name\":\"overla"
	"y\"},\"SizeRootFs\":0,\"Mounts\":[],\"Config\":{\"Hostname\":\"3a9a9"
	"2cb8e86\",\"Domainname\":\"\",\"User\":\"\",\"AttachStdin\":false,\""
	"AttachStdout\":false,\"AttachStderr\":false,\"Tty\":false,\"OpenStdi"
	"n\":false,\"StdinOnce\":false,\"Env\":[\"PATH=/usr/local/sbin:/usr/l"
	"ocal/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"TERM=xterm\",\"container="
	"podman\",\"FOO=bar\",\"HOSTNAME=3a9a92cb8e86\"],\"Cmd\":[\"sleep\","
	"\"600\"],\"Image\":\"localhost/probe-busybox:1\",\"Volumes\":null,\""
	"WorkingDir\":\"/\",\"Entrypoint\":[],\"OnBuild\":null,\"Labels\":{\""
	"app\":\"web\",\"probe.role\":\"workload\"},\"StopSignal\":\"15\",\"S"
	"topTimeout\":10},\"NetworkSettings\":{\"Bridge\":\"\",\"SandboxID\":"
	"\"\",\"HairpinMode\":false,\"LinkLocalIPv6Address\":\"\",\"LinkLocal"
	"IPv6PrefixLen\":0,\"Ports\":{},\"SandboxKey\":\"\",\"SecondaryIPAddr"
	"esses\":null,\"SecondaryIPv6Addresses\":null,\"EndpointID\":\"\",\"G"
	"ateway\":\"\",\"GlobalIPv6Address\":\"\",\"GlobalIPv6PrefixLen\":0,"
	"\"IPAddress\":\"\",\"IPPrefixLen\":0,\"IPv6Gateway\":\"\",\"MacAddre"
	"ss\":\"\",\"Networks\":{}}}";

static void
parse_ok(const char *json, struct docker_info *info)
{
	char	 why[256] = "";
	int	 r;

	r = docker_parse_inspect((const uint8_t *)json, strlen(json), info,
	    why, sizeof(why));
	if (r != 0)
		fail_msg("%d %s", r, why);
}

static void
test_inspect_podman(void **state)
{
	struct docker_info	 info;

	parse_ok(inspect_podman, &info);
	assert_string_equal(info.id, ID_A);
	assert_true(info.running);
	assert_int_equal(info.pid, 26370);
	assert_int_equal(info.skipped, 0);
	assert_true(selector_set_contains(&info.sel, "docker",
	    "label:app:web"));
	assert_true(selector_set_contains(&info.sel, "docker",
	    "label:probe.role:workload"));
	assert_true(selector_set_contains(&info.sel, "docker", "env:FOO=bar"));
	assert_true(selector_set_contains(&info.sel, "docker",
	    "env:container=podman"));
	assert_true(selector_set_contains(&info.sel, "docker",
	    "image_id:localhost/probe-busybox:1"));
	assert_true(selector_set_contains(&info.sel, "docker",
	    "image_config_digest:sha256:40ca145e2386bc495ab65f867f1d7e44d3b75de"
	    "18dbf76f1fd6a345c9f4d29b5"));
	/* 2 labels, 5 environment variables, 2 image selectors. */
	assert_int_equal(info.sel.n, 9);
	docker_info_cleanup(&info);
}

/* A Docker-shaped answer, stopped, with no labels and no environment. */
static void
test_inspect_minimal(void **state)
{
	struct docker_info	 info;

	parse_ok("{\"Id\":\"" ID_C "\",\"State\":{\"Running\":false,\"Pid\":0},"
	    "\"Image\":\"busybox\",\"Config\":{\"Labels\":null,\"Env\":null,"
	    "\"Image\":\"\"},\"Extra\":[1,{\"x\":null}]}", &info);
	assert_string_equal(info.id, ID_C);
	assert_false(info.running);
	/* No image name, and an Image that is not sha256:<hex>. */
	assert_int_equal(info.sel.n, 0);
	docker_info_cleanup(&info);
	parse_ok("{\"Id\":\"" ID_C "\",\"State\":{\"Running\":true,\"Pid\":7},"
	    "\"Config\":{}}", &info);
	assert_true(info.running);
	assert_int_equal(info.sel.n, 0);
	docker_info_cleanup(&info);
}

/* Values that cannot be selectors are skipped, never cut short. */
static void
test_inspect_skips(void **state)
{
	struct docker_info	 info;
	char			*json, *big;
	size_t			 i;

	big = malloc(SELECTOR_MAX_VALUE_LEN + 1);
	assert_non_null(big);
	for (i = 0; i < SELECTOR_MAX_VALUE_LEN; i++)
		big[i] = 'v';
	big[i] = '\0';
	assert_true(asprintf(&json, "{\"Id\":\"" ID_C "\",\"State\":{"
	    "\"Running\":true,\"Pid\":1},\"Config\":{\"Labels\":{"
	    "\"ok\":\"yes\",\"a:b\":\"c\",\"\":\"empty\",\"nl\":\"x\\ny\","
	    "\"esc\":\"\\u001b[31m\",\"long\":\"%s\",\"empty\":\"\"},"
	    "\"Env\":[\"A=1\",\"\",\"B=x\\ty\",\"C=%s\"],"
	    "\"Image\":\"img\\r\"}}", big, big) > 0);
	parse_ok(json, &info);
	assert_true(selector_set_contains(&info.sel, "docker", "label:ok:yes"));
	assert_true(selector_set_contains(&info.sel, "docker", "label:empty:"));
	assert_true(selector_set_contains(&info.sel, "docker", "env:A=1"));
	assert_int_equal(info.sel.n, 3);
	/* a:b, "", nl, esc, long; B, C; the image name. */
	assert_int_equal(info.skipped, 8);
	docker_info_cleanup(&info);
	free(json);
	free(big);
}

static void
parse_bad(const char *json, size_t len, int want)
{
	struct docker_info	 info;
	char			 why[256] = "";

	assert_int_equal(docker_parse_inspect((const uint8_t *)json, len,
	    &info, why, sizeof(why)), want);
	assert_true(why[0] != '\0');
	docker_info_cleanup(&info);
}

#define BAD(s, want)	parse_bad((s), strlen(s), (want))
#define OK_STATE	"\"State\":{\"Running\":true,\"Pid\":1}"
#define OK_ID		"\"Id\":\"" ID_C "\""

static void
test_inspect_hostile(void **state)
{
	char	*deep, *many;
	size_t	 i, n;

	BAD("", WICK_ERR_INVALID);
	BAD("[]", WICK_ERR_INVALID);
	BAD("{\"Id\":\"" ID_C "\"} trailing", WICK_ERR_INVALID);
	/* Duplicate keys, at the top and in labels. */
	BAD("{" OK_ID "," OK_ID "," OK_STATE ",\"Config\":{}}",
	    WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE ",\"Config\":{\"Labels\":{\"app\":\"web\","
	    "\"app\":\"db\"}}}", WICK_ERR_INVALID);
	/* Wrong types and missing fields. */
	BAD("{\"Id\":\"abc\"," OK_STATE ",\"Config\":{}}", WICK_ERR_INVALID);
	BAD("{\"Id\":\"" ID_C "x\"," OK_STATE ",\"Config\":{}}",
	    WICK_ERR_INVALID);
	BAD("{\"Id\":7," OK_STATE ",\"Config\":{}}", WICK_ERR_INVALID);
	BAD("{" OK_STATE ",\"Config\":{}}", WICK_ERR_INVALID);
	BAD("{" OK_ID ",\"Config\":{}}", WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE "}", WICK_ERR_INVALID);
	BAD("{" OK_ID ",\"State\":{\"Running\":\"true\",\"Pid\":1},"
	    "\"Config\":{}}", WICK_ERR_INVALID);
	BAD("{" OK_ID ",\"State\":{\"Running\":true,\"Pid\":\"1\"},"
	    "\"Config\":{}}", WICK_ERR_INVALID);
	BAD("{" OK_ID ",\"State\":{\"Running\":true,\"Pid\":-1},"
	    "\"Config\":{}}", WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE ",\"Config\":[]}", WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE ",\"Config\":{\"Labels\":[\"a=b\"]}}",
	    WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE ",\"Config\":{\"Labels\":{\"a\":1}}}",
	    WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE ",\"Config\":{\"Env\":\"A=1\"}}",
	    WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE ",\"Config\":{\"Env\":[\"A=1\",2]}}",
	    WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE ",\"Config\":{\"Image\":{}}}",
	    WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE ",\"Config\":{},\"Image\":3}",
	    WICK_ERR_INVALID);
	/* A NUL inside a string, and bytes that are not UTF-8. */
	BAD("{" OK_ID "," OK_STATE ",\"Config\":{\"Env\":[\"A=\\u0000\"]}}",
	    WICK_ERR_INVALID);
	BAD("{" OK_ID "," OK_STATE ",\"Config\":{\"Env\":[\"A=\xff\"]}}",
	    WICK_ERR_INVALID);
	/* Nesting far deeper than any answer. */
	n = 100000;
	deep = malloc(2 * n + 1);
	assert_non_null(deep);
	for (i = 0; i < n; i++) {
		deep[i] = '[';
		deep[n + i] = ']';
	}
	deep[2 * n] = '\0';
	parse_bad(deep, 2 * n, WICK_ERR_INVALID);
	free(deep);
	/* Beyond the size and count limits. */
	parse_bad("{}", DOCKER_MAX_RESPONSE + 1, WICK_ERR_LIMIT);
	many = malloc(64 * (DOCKER_MAX_LABELS + 1) + 256);
	assert_non_null(many);
	n = (size_t)sprintf(many, "{" OK_ID "," OK_STATE ",\"Config\":{"
	    "\"Labels\":{");
	for (i = 0; i <= DOCKER_MAX_LABELS; i++)
		n += (size_t)sprintf(many + n, "%s\"k%zu\":\"v\"", i ? "," : "",
		    i);
	strcpy(many + n, "}}}");
	BAD(many, WICK_ERR_LIMIT);
	n = (size_t)sprintf(many, "{" OK_ID "," OK_STATE ",\"Config\":{"
	    "\"Env\":[");
	for (i = 0; i <= DOCKER_MAX_ENV; i++)
		n += (size_t)sprintf(many + n, "%s\"K%zu=v\"", i ? "," : "", i);
	strcpy(many + n, "]}}");
	BAD(many, WICK_ERR_LIMIT);
	free(many);
}

/*
 * Options, from SPIRE's agent.conf syntax.
 */

static int
opts_from(const char *text, struct docker_opts *o, struct conf_error *err)
{
	struct conf	*c = NULL;
	const json_t	*pd;
	int		 r;

	memset(o, 0, sizeof(*o));
	if ((r = conf_parse(text, strlen(text), 0, &c, err)) != 0)
		return r;
	pd = json_object_get(conf_root(c), "plugin_data");
	r = docker_opts_parse(c, pd, o, err);
	conf_free(c);
	return r;
}

static void
test_opts(void **state)
{
	struct docker_opts	 o;
	struct conf_error	 err;

	/* Defaults, as SPIRE's. */
	assert_int_equal(docker_opts_parse(NULL, NULL, &o, &err), 0);
	assert_string_equal(o.socket_path, "/var/run/docker.sock");
	assert_string_equal(o.podman_socket_path, "/run/podman/podman.sock");
	assert_string_equal(o.version, "");
	assert_int_equal(o.nmatchers, 0);
	assert_int_equal(o.timeout_ms, DOCKER_DEFAULT_TIMEOUT_MS);
	docker_opts_cleanup(&o);
	assert_int_equal(opts_from("plugin_data {\n"
	    "  docker_socket_path = \"unix:///run/d.sock\"\n"
	    "  podman_socket_path = \"/run/p.sock\"\n"
	    "  docker_version = \"v1.41\"\n"
	    "  verbose_container_locator_logs = true\n"
	    "  sigstore { rekor_url = \"https://rekor.example\" }\n"
	    "  podman_socket_path_template = \"unix:///run/user/%d/p.sock\"\n"
	    "}\n", &o, &err), 0);
	assert_string_equal(o.socket_path, "/run/d.sock");
	assert_string_equal(o.podman_socket_path, "/run/p.sock");
	assert_string_equal(o.version, "1.41");
	assert_true(o.verbose);
	docker_opts_cleanup(&o);
	/* SPIRE's rule: custom matchers need the old locator. */
	assert_int_equal(opts_from("plugin_data {\n"
	    "  container_id_cgroup_matchers = [\"/docker/<id>\"]\n"
	    "}\n", &o, &err), WICK_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "use_new_container_locator"));
	docker_opts_cleanup(&o);
	assert_int_equal(opts_from("plugin_data {\n"
	    "  use_new_container_locator = false\n"
	    "  container_id_cgroup_matchers = [\"/docker/<id>\", "
	    "\"/my.slice/*/<id>/*\"]\n"
	    "}\n", &o, &err), 0);
	assert_int_equal(o.nmatchers, 2);
	docker_opts_cleanup(&o);
}

static void
expect_opts_error(const char *body, const char *words)
{
	struct docker_opts	 o;
	struct conf_error	 err;
	char			*text;

	assert_true(asprintf(&text, "plugin_data {\n"
	    "  use_new_container_locator = false\n%s\n}\n", body) > 0);
	assert_int_equal(opts_from(text, &o, &err), WICK_ERR_CONFIG);
	if (strstr(err.msg, words) == NULL)
		fail_msg("\"%s\" not in \"%s\"", words, err.msg);
	docker_opts_cleanup(&o);
	free(text);
}

static void
test_opts_errors(void **state)
{
	expect_opts_error("docker_socket_path = \"tcp://127.0.0.1:2375\"",
	    "Unix sockets");
	expect_opts_error("docker_socket_path = \"run/docker.sock\"",
	    "absolute path");
	expect_opts_error("docker_socket_path = \"/run/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"",
	    "longer than");
	expect_opts_error("docker_socket_path = 3", "docker_socket_path");
	expect_opts_error("docker_version = \"latest\"", "docker_version");
	expect_opts_error("docker_version = \"1.41.0\"", "docker_version");
	expect_opts_error("container_id_cgroup_matchers = \"/docker/<id>\"",
	    "list");
	expect_opts_error("container_id_cgroup_matchers = [\"/docker/*\"]",
	    "exactly once");
	expect_opts_error("container_id_cgroup_matchers = "
	    "[\"/<id>/docker/<id>\"]", "exactly once");
	expect_opts_error("container_id_cgroup_matchers = [\"/a/b/<id>\", "
	    "\"/*/b/<id>\"]", "ambiguous");
	expect_opts_error("container_id_cgroup_matchers = [3]", "strings");
	expect_opts_error("docker_sock_path = \"/x\"", "unknown option");
}

/*
 * The engine client, against real sockets that misbehave.  A fake /proc
 * (proc_root) says which container this process is in, and a directory
 * tree stands for the cgroup2 hierarchy the agent sees.
 */

enum srv_mode {
	SRV_HANG,	/* accept, read, never answer */
	SRV_GARBAGE,	/* answer something that is not HTTP */
	SRV_BIG,	/* 200 and more than DOCKER_MAX_RESPONSE, no length */
	SRV_BIG_CL,	/* the same with a Content-Length */
	SRV_HANGUP,	/* accept and close at once */
	SRV_REDIRECT,	/* 307 to a URL that would answer */
};

#define SRV_MAX_CONNS	64

struct srv {
	enum srv_mode	 mode;
	int		 lfd, stop[2];
	int		 fds[SRV_MAX_CONNS];
	int		 nfds;
	pthread_t	 th;
	pthread_mutex_t	 mu;
	int		 accepted, open, maxopen;
	char		 first[256];	/* the first request line seen */
};

static void
srv_note_request(struct srv *s, const char *buf, size_t n)
{
	const char	*nl;

	pthread_mutex_lock(&s->mu);
	if (s->first[0] == '\0' && (nl = memchr(buf, '\r', n)) != NULL)
		snprintf(s->first, sizeof(s->first), "%.*s",
		    (int)(nl - buf), buf);
	pthread_mutex_unlock(&s->mu);
}

/* Read one request's head (blocking), then answer as the mode says. */
static void
srv_answer(struct srv *s, int fd)
{
	static const char garbage[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
	char		 buf[4096], hdr[256];
	size_t		 n = 0, sent;
	ssize_t		 k;
	int		 len;

	while (n < sizeof(buf) - 1 && (k = read(fd, buf + n,
	    sizeof(buf) - 1 - n)) > 0) {
		n += (size_t)k;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
	srv_note_request(s, buf, n);
	if (s->mode == SRV_GARBAGE) {
		(void)send(fd, garbage, sizeof(garbage) - 1, MSG_NOSIGNAL);
		return;
	}
	if (s->mode == SRV_REDIRECT) {
		len = snprintf(hdr, sizeof(hdr), "HTTP/1.1 307 Temporary "
		    "Redirect\r\nLocation: http://127.0.0.1:9/v1.41/"
		    "containers/%s/json\r\nContent-Length: 0\r\n\r\n", ID_A);
		(void)send(fd, hdr, (size_t)len, MSG_NOSIGNAL);
		return;
	}
	len = snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\n%s\r\n",
	    s->mode == SRV_BIG_CL ? "Content-Length: 2097152\r\n" :
	    "Connection: close\r\n");
	if (send(fd, hdr, (size_t)len, MSG_NOSIGNAL) != len)
		return;
	memset(buf, ' ', sizeof(buf));
	for (sent = 0; sent < 2 * 1024 * 1024; sent += (size_t)k)
		if ((k = send(fd, buf, sizeof(buf), MSG_NOSIGNAL)) <= 0)
			break;
}

static void *
srv_main(void *arg)
{
	struct srv	*s = arg;
	struct pollfd	 p[2 + SRV_MAX_CONNS];
	char		 buf[4096];
	ssize_t		 k;
	int		 fd, i, np;

	for (;;) {
		p[0].fd = s->stop[0];
		p[0].events = POLLIN;
		p[1].fd = s->lfd;
		p[1].events = POLLIN;
		for (i = 0; i < s->nfds; i++) {
			p[2 + i].fd = s->fds[i];
			p[2 + i].events = POLLIN;
		}
		np = 2 + s->nfds;
		if (poll(p, (nfds_t)np, -1) < 0)
			continue;
		if (p[0].revents != 0)
			break;
		/* A client that hung up: count it closed. */
		for (i = s->nfds - 1; i >= 0; i--) {
			if (p[2 + i].revents == 0)
				continue;
			k = read(s->fds[i], buf, sizeof(buf));
			if (k > 0) {
				srv_note_request(s, buf, (size_t)k);
				continue;
			}
			close(s->fds[i]);
			s->fds[i] = s->fds[--s->nfds];
			pthread_mutex_lock(&s->mu);
			s->open--;
			pthread_mutex_unlock(&s->mu);
		}
		if ((p[1].revents & POLLIN) == 0 ||
		    (fd = accept(s->lfd, NULL, NULL)) < 0)
			continue;
		pthread_mutex_lock(&s->mu);
		s->accepted++;
		pthread_mutex_unlock(&s->mu);
		if (s->mode == SRV_HANG && s->nfds < SRV_MAX_CONNS) {
			s->fds[s->nfds++] = fd;
			pthread_mutex_lock(&s->mu);
			if (++s->open > s->maxopen)
				s->maxopen = s->open;
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		if (s->mode != SRV_HANGUP)
			srv_answer(s, fd);
		close(fd);
	}
	for (i = 0; i < s->nfds; i++)
		close(s->fds[i]);
	return NULL;
}

static void
srv_start(struct srv *s, const char *path, enum srv_mode mode)
{
	struct sockaddr_un	 sun;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	pthread_mutex_init(&s->mu, NULL);
	assert_int_equal(pipe(s->stop), 0);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	assert_int_equal(listen(s->lfd, 64), 0);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static int
srv_accepted(struct srv *s)
{
	int	 n;

	pthread_mutex_lock(&s->mu);
	n = s->accepted;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void
srv_stop(struct srv *s)
{
	assert_int_equal(write(s->stop[1], "x", 1), 1);
	assert_int_equal(pthread_join(s->th, NULL), 0);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
	pthread_mutex_destroy(&s->mu);
}

struct fix {
	char			 dir[64];
	char			 proc[128];
	char			 cg[128];
	char			 sock[128];
	uv_loop_t		 loop;
	struct docker		*d;
	struct docker_opts	 o;
	struct peercred		 pc;
	int			 closed;
};

static void
write_file(const char *dir, const char *name, const char *text)
{
	char	 path[PATH_MAX];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* The process's /proc/<pid>/cgroup, as the fake /proc says. */
static void
fix_cgroup(struct fix *x, const char *text)
{
	char	 name[64];

	snprintf(name, sizeof(name), "%ld/cgroup", (long)getpid());
	write_file(x->proc, name, text);
}

static void
fix_mountinfo(struct fix *x, const char *text)
{
	char	 name[64];

	snprintf(name, sizeof(name), "%ld/mountinfo", (long)getpid());
	write_file(x->proc, name, text);
}

/* A container's cgroup under libpod_parent in the fake hierarchy. */
static void
fix_container(struct fix *x, const char *id)
{
	char	 path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/libpod_parent", x->cg);
	(void)mkdir(path, 0755);
	assert_int_equal(chmod(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/libpod_parent/libpod-%s", x->cg, id);
	assert_int_equal(mkdir(path, 0755), 0);
}

/*
 * A fake /proc in which this process is in container ID_A (podman's
 * form), the agent sees a cgroup2 hierarchy at x->cg (unless self_mi
 * says otherwise), and the engines listen at x->sock.
 */
static void
fix_setup(struct fix *x, const char *self_mi, const char *version,
    int64_t timeout_ms)
{
	char	 path[PATH_MAX], *mi;
	int	 sv[2];

	memset(x, 0, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "/tmp/wick-docker-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->proc, sizeof(x->proc), "%s/proc", x->dir);
	snprintf(x->cg, sizeof(x->cg), "%s/cg", x->dir);
	snprintf(x->sock, sizeof(x->sock), "%s/engine.sock", x->dir);
	assert_int_equal(mkdir(x->proc, 0755), 0);
	assert_int_equal(mkdir(x->cg, 0755), 0);
	assert_int_equal(chmod(x->cg, 0755), 0);
	snprintf(path, sizeof(path), "%s/self", x->proc);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/%ld", x->proc, (long)getpid());
	assert_int_equal(mkdir(path, 0755), 0);
	if (self_mi == NULL) {
		assert_true(asprintf(&mi, "31 23 0:28 / /sys/fs/cgroup rw - "
		    "tmpfs tmpfs rw,mode=755\n"
		    "41 31 0:38 / %s rw,relatime - cgroup2 cgroup2 rw\n",
		    x->cg) > 0);
		write_file(x->proc, "self/mountinfo", mi);
		free(mi);
	} else
		write_file(x->proc, "self/mountinfo", self_mi);
	fix_container(x, ID_A);
	fix_cgroup(x, "0::/libpod_parent/libpod-" ID_A "\n");
	x->o.socket_path = strdup(x->sock);
	x->o.podman_socket_path = strdup(x->sock);
	x->o.version = strdup(version);
	x->o.timeout_ms = timeout_ms;
	x->o.proc_root = x->proc;
	assert_int_equal(uv_loop_init(&x->loop), 0);
	assert_int_equal(docker_new(&x->loop, &x->o, &x->d), 0);
	/* Our own credentials, as the Workload API would see them. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(peercred_get(sv[0], &x->pc), 0);
	close(sv[0]);
	close(sv[1]);
}

static void
closed_cb(void *arg)
{
	((struct fix *)arg)->closed++;
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Close (unless done already), and every handle must be gone. */
static void
fix_teardown(struct fix *x)
{
	if (x->d != NULL)
		docker_close(x->d, closed_cb, x);
	x->d = NULL;
	assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(x->closed, 1);
	assert_int_equal(uv_loop_close(&x->loop), 0);
	docker_opts_cleanup(&x->o);
	(void)nftw(x->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

struct result {
	int		 called;
	int		 r;
	char		 why[256];
	uint64_t	 start, at;	/* ms */
	struct fix	*x;
	int		 close_in_cb;
};

static void
done_cb(void *arg, int r, const char *why)
{
	struct result	*res = arg;

	res->called++;
	res->r = r;
	snprintf(res->why, sizeof(res->why), "%s", why != NULL ? why : "");
	res->at = uv_hrtime() / 1000000;
	if (res->close_in_cb && res->x->d != NULL) {
		docker_close(res->x->d, closed_cb, res->x);
		res->x->d = NULL;
	}
}

static void
attest(struct fix *x, struct selector_set *out, struct result *res,
    struct docker_req **req)
{
	res->start = uv_hrtime() / 1000000;
	res->x = x;
	assert_int_equal(docker_attest(x->d, &x->pc, out, done_cb, res, req),
	    0);
}

/* Run the loop until every result has come (at most 10 s). */
static void
wait_for(struct fix *x, struct result *res, size_t n)
{
	uint64_t	 until = uv_hrtime() / 1000000 + 10000;
	size_t		 i;

	for (;;) {
		for (i = 0; i < n && res[i].called; i++)
			;
		if (i == n)
			return;
		assert_true(uv_hrtime() / 1000000 < until);
		(void)uv_run(&x->loop, UV_RUN_ONCE);
	}
}

static void
expect_sync(struct fix *x, int want, const char *words)
{
	struct selector_set	 out;
	struct result		 res;
	struct docker_req	*req = (struct docker_req *)1;

	memset(&res, 0, sizeof(res));
	selector_set_init(&out);
	assert_int_equal(selector_set_add(&out, "unix", "uid:0", NULL), 0);
	attest(x, &out, &res, &req);
	assert_null(req);
	assert_int_equal(res.called, 1);
	if (res.r != want)
		fail_msg("want %d, got %d: %s", want, res.r, res.why);
	if (words != NULL && strstr(res.why, words) == NULL)
		fail_msg("\"%s\" not in \"%s\"", words, res.why);
	/* Nothing added, nothing taken. */
	assert_int_equal(out.n, 1);
	selector_set_cleanup(&out);
}

/* A process in no container: no selectors, no error, no engine. */
static void
test_client_no_container(void **state)
{
	struct fix	 x;
	struct srv	 s;

	fix_setup(&x, NULL, "", 300);
	srv_start(&s, x.sock, SRV_HANG);
	fix_cgroup(&x, cg_host_hybrid);
	expect_sync(&x, 0, NULL);
	fix_cgroup(&x, cg_systemd_user);
	expect_sync(&x, 0, NULL);
	/* Hidden by a namespace, and the mounts say nothing either. */
	fix_cgroup(&x, cg_hidden);
	fix_mountinfo(&x, mi_host);
	expect_sync(&x, 0, NULL);
	srv_stop(&s);
	assert_int_equal(s.accepted, 0);
	fix_teardown(&x);
}

/* Containers whose cgroup others may have made are refused at once. */
static void
test_client_untrusted_cgroup(void **state)
{
	struct fix	 x;
	char		 path[PATH_MAX];

	fix_setup(&x, NULL, "", 300);
	/* The container's cgroup does not exist in the hierarchy. */
	fix_cgroup(&x, "0::/libpod_parent/libpod-" ID_B "\n");
	expect_sync(&x, WICK_ERR_STATE, "cannot stat");
	/* A cgroup directory others may write to (a delegated subtree). */
	snprintf(path, sizeof(path), "%s/libpod_parent", x.cg);
	assert_int_equal(chmod(path, 0777), 0);
	fix_cgroup(&x, "0::/libpod_parent/libpod-" ID_A "\n");
	expect_sync(&x, WICK_ERR_PERM, "cannot be trusted");
	assert_int_equal(chmod(path, 0755), 0);
	/* Owned by someone else (only root can make that here). */
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 4242, 4242), 0);
		expect_sync(&x, WICK_ERR_PERM, "owner uid 4242");
		assert_int_equal(chown(path, 0, 0), 0);
	}
	/* Seen from another cgroup namespace: nothing to check it by. */
	fix_cgroup(&x, "0::/../libpod-" ID_A "\n");
	expect_sync(&x, WICK_ERR_PERM, "cannot check");
	/* Two containers, and a malformed file. */
	fix_cgroup(&x, "1:cpu:/docker/" ID_C "\n0::/libpod_parent/libpod-"
	    ID_A "\n");
	expect_sync(&x, WICK_ERR_INVALID, "two containers");
	fix_cgroup(&x, "garbage\n");
	expect_sync(&x, WICK_ERR_INVALID, NULL);
	fix_teardown(&x);
}

/* The agent sees no hierarchy the container is in. */
static void
test_client_unmounted(void **state)
{
	struct fix	 x;

	fix_setup(&x, "23 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n", "", 300);
	expect_sync(&x, WICK_ERR_PERM, "cannot check");
	fix_teardown(&x);
}

/* A process that is gone, or never was. */
static void
test_client_gone(void **state)
{
	struct fix	 x;

	fix_setup(&x, NULL, "", 300);
	x.pc.pid = 0x7ffffff0;
	expect_sync(&x, WICK_ERR_STATE, "cannot read");
	fix_teardown(&x);
}

/*
 * A process at the root of the agent's cgroup namespace: its mounts are
 * believed only when they name the agent's own container.
 */
static void
test_client_hidden(void **state)
{
	struct fix		 x;
	struct srv		 s;
	struct selector_set	 out;
	struct result		 res;
	struct docker_req	*req;
	char			*self;

	/*
	 * The agent runs in no container: no container can be believed, so
	 * the mounts (which a process in a user namespace can make megabytes
	 * of, read on the loop at every call) are not even read: not when
	 * they name a container, nor when they are no mount table at all.
	 */
	fix_setup(&x, NULL, "", 300);
	fix_cgroup(&x, cg_hidden);
	fix_mountinfo(&x, mi_docker);
	expect_sync(&x, 0, NULL);
	fix_mountinfo(&x, mi_conflict);
	expect_sync(&x, 0, NULL);
	assert_true(asprintf(&self, "%s/%ld/mountinfo", x.proc,
	    (long)getpid()) > 0);
	assert_int_equal(unlink(self), 0);
	assert_int_equal(mkdir(self, 0755), 0);
	expect_sync(&x, 0, NULL);
	free(self);
	fix_teardown(&x);

	/* The agent runs in container ID_C: the engine is asked for it. */
	assert_true(asprintf(&self, "%s", mi_docker) > 0);
	fix_setup(&x, self, "1.41", 300);
	free(self);
	srv_start(&s, x.sock, SRV_HANG);
	fix_cgroup(&x, cg_hidden);
	fix_mountinfo(&x, mi_podman);
	expect_sync(&x, WICK_ERR_PERM, "which the agent is not in");
	fix_mountinfo(&x, mi_docker);
	memset(&res, 0, sizeof(res));
	selector_set_init(&out);
	attest(&x, &out, &res, &req);
	assert_non_null(req);
	wait_for(&x, &res, 1);
	assert_int_equal(res.r, WICK_ERR_TIMEOUT);
	srv_stop(&s);
	assert_string_equal(s.first, "GET /v1.41/containers/" ID_C
	    "/json HTTP/1.1");
	selector_set_cleanup(&out);
	fix_teardown(&x);
}

/*
 * The engine accepts and never answers: every attestation ends within
 * the timeout, the ones of one container share one request.
 */
static void
test_client_hang(void **state)
{
	struct fix		 x;
	struct srv		 s;
	struct selector_set	 out[5];
	struct result		 res[5];
	struct docker_req	*req;
	size_t			 i;

	fix_setup(&x, NULL, "", 300);
	srv_start(&s, x.sock, SRV_HANG);
	memset(res, 0, sizeof(res));
	for (i = 0; i < 5; i++) {
		selector_set_init(&out[i]);
		attest(&x, &out[i], &res[i], &req);
		assert_non_null(req);
		assert_int_equal(res[i].called, 0);
	}
	wait_for(&x, res, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(res[i].called, 1);
		if (res[i].r != WICK_ERR_TIMEOUT)
			fail_msg("%d %s", res[i].r, res[i].why);
		assert_non_null(strstr(res[i].why, "300 ms"));
		/* Bounded by the timeout (generously: a loaded machine). */
		assert_true(res[i].at - res[i].start >= 250);
		assert_true(res[i].at - res[i].start < 3300);
		assert_int_equal(out[i].n, 0);
		selector_set_cleanup(&out[i]);
	}
	srv_stop(&s);
	assert_int_equal(s.accepted, 1);
	/* Negotiation came first. */
	assert_string_equal(s.first, "GET /_ping HTTP/1.1");
	fix_teardown(&x);
}

/*
 * More containers than requests in flight: the rest wait in the queue,
 * and still end within their timeout.
 */
static void
test_client_queue(void **state)
{
	enum { N = DOCKER_MAX_FETCHES + 4 };
	struct fix		 x;
	struct srv		 s;
	struct selector_set	 out;
	struct result		 res[N];
	struct docker_req	*req;
	char			 id[DOCKER_ID_LEN + 1], cg[128];
	size_t			 i;

	fix_setup(&x, NULL, "1.41", 300);
	srv_start(&s, x.sock, SRV_HANG);
	memset(res, 0, sizeof(res));
	selector_set_init(&out);
	for (i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "%064zx", i + 1);
		fix_container(&x, id);
		snprintf(cg, sizeof(cg), "0::/libpod_parent/libpod-%s\n", id);
		fix_cgroup(&x, cg);
		attest(&x, &out, &res[i], &req);
		assert_non_null(req);
	}
	wait_for(&x, res, N);
	for (i = 0; i < N; i++) {
		if (res[i].r != WICK_ERR_TIMEOUT)
			fail_msg("%zu: %d %s", i, res[i].r, res[i].why);
		assert_true(res[i].at - res[i].start < 3300);
	}
	srv_stop(&s);
	assert_true(s.maxopen <= DOCKER_MAX_FETCHES);
	assert_true(s.accepted >= DOCKER_MAX_FETCHES);
	selector_set_cleanup(&out);
	fix_teardown(&x);
}

/*
 * One container floods (its engine answer slow in coming): it cannot
 * take every waiting place, so another container is still asked about.
 */
static void
test_client_flood(void **state)
{
	enum { N = DOCKER_MAX_REQS };
	struct fix		 x;
	struct srv		 s;
	struct selector_set	 out;
	struct result		*res;
	struct docker_req	*req;
	size_t			 i, waiting = 0, refused = 0;

	fix_setup(&x, NULL, "1.41", 300);
	srv_start(&s, x.sock, SRV_HANG);
	assert_non_null(res = calloc(N + 1, sizeof(*res)));
	selector_set_init(&out);
	for (i = 0; i < N; i++) {
		attest(&x, &out, &res[i], &req);
		if (req != NULL)
			waiting++;
		else {
			assert_int_equal(res[i].called, 1);
			assert_int_equal(res[i].r, WICK_ERR_LIMIT);
			assert_non_null(strstr(res[i].why, "this container"));
			refused++;
		}
	}
	assert_int_equal(waiting, DOCKER_MAX_WAITERS);
	assert_int_equal(refused, N - DOCKER_MAX_WAITERS);
	/* Another container waits for its own answer. */
	fix_container(&x, ID_B);
	fix_cgroup(&x, "0::/libpod_parent/libpod-" ID_B "\n");
	attest(&x, &out, &res[N], &req);
	assert_non_null(req);
	assert_int_equal(res[N].called, 0);
	wait_for(&x, res, N + 1);
	assert_int_equal(res[N].r, WICK_ERR_TIMEOUT);
	assert_int_equal(out.n, 0);
	selector_set_cleanup(&out);
	free(res);
	srv_stop(&s);
	fix_teardown(&x);
}

static void
expect_async(enum srv_mode mode, const char *version, int want,
    const char *words)
{
	struct fix		 x;
	struct srv		 s;
	struct selector_set	 out;
	struct result		 res;
	struct docker_req	*req;

	fix_setup(&x, NULL, version, 2000);
	srv_start(&s, x.sock, mode);
	memset(&res, 0, sizeof(res));
	selector_set_init(&out);
	attest(&x, &out, &res, &req);
	assert_non_null(req);
	wait_for(&x, &res, 1);
	if (res.r != want)
		fail_msg("want %d, got %d: %s", want, res.r, res.why);
	if (words != NULL && strstr(res.why, words) == NULL)
		fail_msg("\"%s\" not in \"%s\"", words, res.why);
	assert_int_equal(out.n, 0);
	selector_set_cleanup(&out);
	srv_stop(&s);
	fix_teardown(&x);
}

static void
test_client_bad_answers(void **state)
{
	expect_async(SRV_GARBAGE, "", WICK_ERR_PROTOCOL, "not an answer");
	expect_async(SRV_GARBAGE, "1.41", WICK_ERR_PROTOCOL, "not an answer");
	expect_async(SRV_BIG, "1.41", WICK_ERR_LIMIT, "larger than");
	expect_async(SRV_BIG_CL, "1.41", WICK_ERR_LIMIT, "larger than");
	expect_async(SRV_HANGUP, "1.41", WICK_ERR_UNAVAILABLE,
	    "not reachable");
}

/*
 * Only the engine's socket is spoken to: no redirect is followed and no
 * proxy from the environment is used.
 */
static void
test_client_restricted(void **state)
{
	static const char *const vars[] = {
		"http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy", NULL
	};
	size_t	 i;

	for (i = 0; vars[i] != NULL; i++)
		assert_int_equal(setenv(vars[i], "http://127.0.0.1:9", 1), 0);
	expect_async(SRV_REDIRECT, "1.41", WICK_ERR_PROTOCOL, "answered 307");
	expect_async(SRV_REDIRECT, "", WICK_ERR_PROTOCOL, "answered 307");
	for (i = 0; vars[i] != NULL; i++)
		assert_int_equal(unsetenv(vars[i]), 0);
}

/* Nobody listens: the engine is down. */
static void
test_client_down(void **state)
{
	struct fix		 x;
	struct selector_set	 out;
	struct result		 res[2];
	struct docker_req	*req;

	fix_setup(&x, NULL, "", 2000);
	memset(res, 0, sizeof(res));
	selector_set_init(&out);
	attest(&x, &out, &res[0], &req);
	wait_for(&x, res, 1);
	assert_int_equal(res[0].r, WICK_ERR_UNAVAILABLE);
	/* Not after a timeout: at once. */
	assert_true(res[0].at - res[0].start < 1500);
	/* Again: nothing is cached of a failure. */
	attest(&x, &out, &res[1], &req);
	wait_for(&x, res + 1, 1);
	assert_int_equal(res[1].r, WICK_ERR_UNAVAILABLE);
	selector_set_cleanup(&out);
	fix_teardown(&x);
}

/* A cancelled attestation never hears back; closing ends the others. */
static void
test_client_cancel_close(void **state)
{
	struct fix		 x;
	struct srv		 s;
	struct selector_set	 out[3];
	struct result		 res[3];
	struct docker_req	*req[3];
	size_t			 i;

	fix_setup(&x, NULL, "", 300);
	srv_start(&s, x.sock, SRV_HANG);
	memset(res, 0, sizeof(res));
	for (i = 0; i < 3; i++) {
		selector_set_init(&out[i]);
		attest(&x, &out[i], &res[i], &req[i]);
		assert_non_null(req[i]);
	}
	docker_cancel(req[1]);
	docker_cancel(NULL);
	/* Let the request reach the engine. */
	while (srv_accepted(&s) == 0) {
		(void)uv_run(&x.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	docker_close(x.d, closed_cb, &x);
	x.d = NULL;
	/* Before docker_close() returned. */
	assert_int_equal(res[0].called, 1);
	assert_int_equal(res[0].r, WICK_ERR_CANCELLED);
	assert_int_equal(res[2].called, 1);
	assert_int_equal(res[2].r, WICK_ERR_CANCELLED);
	assert_int_equal(x.closed, 0);
	fix_teardown(&x);
	assert_int_equal(res[1].called, 0);
	for (i = 0; i < 3; i++)
		selector_set_cleanup(&out[i]);
	srv_stop(&s);
}

/* Closing from inside a done callback, with a request in flight. */
static void
test_client_close_in_callback(void **state)
{
	struct fix		 x;
	struct srv		 s;
	struct selector_set	 out[2];
	struct result		 res[2];
	struct docker_req	*req;

	fix_setup(&x, NULL, "1.41", 300);
	srv_start(&s, x.sock, SRV_HANG);
	memset(res, 0, sizeof(res));
	selector_set_init(&out[0]);
	selector_set_init(&out[1]);
	res[0].close_in_cb = 1;
	attest(&x, &out[0], &res[0], &req);
	/* A second container, so a second request is in flight. */
	fix_container(&x, ID_B);
	fix_cgroup(&x, "0::/libpod_parent/libpod-" ID_B "\n");
	attest(&x, &out[1], &res[1], &req);
	wait_for(&x, res, 2);
	assert_int_equal(res[0].r, WICK_ERR_TIMEOUT);
	assert_true(res[1].r == WICK_ERR_TIMEOUT ||
	    res[1].r == WICK_ERR_CANCELLED);
	selector_set_cleanup(&out[0]);
	selector_set_cleanup(&out[1]);
	srv_stop(&s);
	fix_teardown(&x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_forms),
		cmocka_unit_test(test_cgroup_malformed),
		cmocka_unit_test(test_cgroup_matchers),
		cmocka_unit_test(test_mountinfo_forms),
		cmocka_unit_test(test_mountinfo_malformed),
		cmocka_unit_test(test_inspect_podman),
		cmocka_unit_test(test_inspect_minimal),
		cmocka_unit_test(test_inspect_skips),
		cmocka_unit_test(test_inspect_hostile),
		cmocka_unit_test(test_opts),
		cmocka_unit_test(test_opts_errors),
		cmocka_unit_test(test_client_no_container),
		cmocka_unit_test(test_client_untrusted_cgroup),
		cmocka_unit_test(test_client_unmounted),
		cmocka_unit_test(test_client_gone),
		cmocka_unit_test(test_client_hidden),
		cmocka_unit_test(test_client_hang),
		cmocka_unit_test(test_client_queue),
		cmocka_unit_test(test_client_flood),
		cmocka_unit_test(test_client_bad_answers),
		cmocka_unit_test(test_client_restricted),
		cmocka_unit_test(test_client_down),
		cmocka_unit_test(test_client_cancel_close),
		cmocka_unit_test(test_client_close_in_callback),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
