#include "audit.h"

#include "base.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "target.h"

#include <stdbool.h>
#include <string.h>

int audit_initramfs(const void *initrd, size_t len, const struct target *t, const char *what)
{
	_cleanup_strv_ char **have = NULL;
	if (base_initrd_modules(initrd, len, what, &have) < 0)
		return -1;
	char missing[512] = "";
	size_t nmissing = 0;
	for (char *const *need = target_modules(t); *need; need++) {
		_cleanup_free_ char *norm = xstrdup(*need);
		for (char *c = norm; *c; c++)
			if (*c == '-')
				*c = '_';
		bool found = false;
		for (char **h = have; *h && !found; h++)
			found = strcmp(*h, norm) == 0;
		if (!found) {
			size_t used = strlen(missing);
			snprintf(missing + used, sizeof(missing) - used, "%s%s", nmissing ? ", " : "", norm);
			nmissing++;
		}
	}
	if (nmissing)
		return err_fail("driver audit '%s' (target %s): initramfs lacks module%s %s needed by the platform's "
				"devices (%s disk, %s NIC)",
				what, target_name(t), nmissing > 1 ? "s" : "", missing, target_verify_disk_bus(t),
				target_verify_nic_model(t));
	return 0;
}
