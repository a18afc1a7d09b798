/*
 * fuzz_docker.c: what the docker workload attestor reads: a container
 * engine's inspect answer, /proc/<pid>/cgroup (with the built-in rules or
 * container_id_cgroup_matchers) and /proc/<pid>/mountinfo.  The first
 * byte picks the parser.  A container ID found must be 64 lower-case hex
 * digits that the input holds; selectors must be docker ones of the four
 * kinds; a failure leaves nothing behind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attestor_docker.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_id(const struct docker_found *f, int r, const uint8_t *data,
    size_t len, int verbatim)
{
	size_t	 i;

	if (r != 0) {
		if (f->id[0] != '\0')
			abort();
		return;
	}
	if (strlen(f->id) != DOCKER_ID_LEN)
		abort();
	for (i = 0; i < DOCKER_ID_LEN; i++)
		if (!((f->id[i] >= '0' && f->id[i] <= '9') ||
		    (f->id[i] >= 'a' && f->id[i] <= 'f')))
			abort();
	/* From the text itself (mountinfo may escape it). */
	if (verbatim && memmem(data, len, f->id, DOCKER_ID_LEN) == NULL)
		abort();
}

static void
check_inspect(const struct docker_info *info, int r)
{
	static const char *const kinds[] = {
		"label:", "env:", "image_id:", "image_config_digest:", NULL
	};
	const char *const	*k;
	size_t			 i;

	if (r != 0)
		return;
	if (strlen(info->id) != DOCKER_ID_LEN ||
	    info->sel.n > DOCKER_MAX_LABELS + DOCKER_MAX_ENV + 2)
		abort();
	for (i = 0; i < info->sel.n; i++) {
		if (strcmp(info->sel.sel[i].type, "docker") != 0)
			abort();
		for (k = kinds; *k != NULL; k++)
			if (strncmp(info->sel.sel[i].value, *k,
			    strlen(*k)) == 0)
				break;
		if (*k == NULL)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static char		*pats[] = { "/docker/<id>",
				    "/my.slice/*/<id>/*", "/kubepods/*/*/<id>" };
	struct docker_opts	 o;
	struct docker_found	 f;
	struct docker_info	 info;
	char			 why[256];
	int			 r;

	if (len < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		r = docker_parse_inspect(data + 1, len - 1, &info, why,
		    sizeof(why));
		check_inspect(&info, r);
		docker_info_cleanup(&info);
		break;
	case 1:
		r = docker_container_id((const char *)data + 1, len - 1, NULL,
		    &f, why, sizeof(why));
		check_id(&f, r, data + 1, len - 1, 1);
		break;
	case 2:
		memset(&o, 0, sizeof(o));
		o.matchers = pats;
		o.nmatchers = sizeof(pats) / sizeof(pats[0]);
		r = docker_container_id((const char *)data + 1, len - 1, &o,
		    &f, why, sizeof(why));
		check_id(&f, r, data + 1, len - 1, 1);
		if (f.hidden)
			abort();
		break;
	default:
		r = docker_mountinfo_id((const char *)data + 1, len - 1, &f,
		    why, sizeof(why));
		check_id(&f, r, data + 1, len - 1, 0);
		break;
	}
	return 0;
}
