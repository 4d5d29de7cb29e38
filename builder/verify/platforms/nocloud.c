/* NoCloud: the cidata seed (seed.c) holding the run's user-data, attached
 * as a disk. No services. */
#include "platform_impl.h"

#include "cleanup.h"
#include "err.h"
#include "seed.h"

int nocloud_make_media(const struct platform_env *env, const char *path)
{
	/* meta-data as seed.c writes it; the user-data is the run's own */
	const struct seed_params sp = {
		.instance_id = env->instance_id, .hostname = env->hostname, .perscode = env->perscode,
	};
	_cleanup_free_ char *md = NULL;
	if (seed_meta_data(&sp, &md) < 0)
		return -1;
	return seed_write_iso_docs(env->user_data, md, path);
}
