/* Disk groups and the per-target layer: see build_layer.h. */
#include "build_layer.h"

#include "assemble.h"
#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "recipe.h"
#include "target.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool strv_has(char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(*nv));
	if (!nv)
		abort();
	nv[(*n)++] = xstrdup(s);
	nv[*n] = NULL;
	*v = nv;
}

static void push_list(char ***out, size_t *n, char *const *list, char *const *omit)
{
	for (char *const *m = list; m && *m; m++)
		if (!strv_has(omit, *m) && !strv_has(*out, *m))
			strv_push(out, n, *m);
}

char **build_module_union(const struct recipe *r, const char *const *base_modules, struct target *const *ts,
			  size_t n)
{
	char **out = NULL;
	size_t len = 0;
	char *const *omit = recipe_modules_omit(r);
	push_list(&out, &len, (char *const *)base_modules, omit);
	push_list(&out, &len, recipe_modules_add(r), omit);
	for (size_t i = 0; i < n; i++)
		push_list(&out, &len, target_modules(ts[i]), omit);
	if (!out && !(out = calloc(1, sizeof(*out))))
		abort();
	return out;
}

int build_datasource_cfg(const struct target *t, char ret[BUILD_DS_SIZE])
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (!f)
		abort();
	/* Which targets the disk serves is the stamp's to say: here equal lists must give equal bytes. */
	/* #cloud-config first, so that cloud-init's validator takes the file as it is. */
	fprintf(f, "#cloud-config\n"
		   "# qvsa: cloud-init datasources (fixed size: each artifact carries its own list)\n"
		   "datasource_list: [");
	for (char *const *d = target_datasources(t); *d; d++)
		fprintf(f, "%s%s", d == target_datasources(t) ? " " : ", ", *d);
	fprintf(f, " ]\n");
	fclose(f);
	_cleanup_free_ char *text = s;
	/* The padding is one comment line: '#', spaces, '\n'. */
	if (len + 2 > BUILD_DS_SIZE)
		return err_input("target '%s': datasource list takes %zu bytes, at most %d fit in %s",
				 target_name(t), len, BUILD_DS_SIZE - 2, BUILD_DS_PATH);
	memcpy(ret, text, len);
	ret[len] = '#';
	memset(ret + len + 1, ' ', BUILD_DS_SIZE - len - 2);
	ret[BUILD_DS_SIZE - 1] = '\n';
	return 0;
}

char *build_group_key(const struct recipe *r, const struct target *t)
{
	/* GPT holds a BIOS boot partition and an ESP side by side: one disk boots both ways. */
	if (strcmp(recipe_disk_partition_table(r), "gpt") == 0)
		return xstrdup("gpt");
	return xstrdup(target_firmware(t));
}

const char *build_group_firmware(struct target *const *members, size_t n)
{
	bool bios = false, uefi = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(target_firmware(members[i]), "uefi") == 0)
			uefi = true;
		else
			bios = true;
	}
	return bios && uefi ? ASSEMBLE_HYBRID : uefi ? "uefi" : "bios";
}
