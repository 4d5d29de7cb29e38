#include "modules.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <stdbool.h>
#include <string.h>

/* One module known to modules.dep. */
struct mod {
	char *name;   /* normalised name ('-' -> '_') */
	char *path;   /* path relative to moddir */
	char **deps;  /* names of hard dependencies, as listed */
	size_t ndeps; /* entries in deps */
	char **pre;   /* names/aliases from softdep "pre:" */
	size_t npre;  /* entries in pre */
	int mark;     /* DFS state: 0 new, 1 in progress, 2 done */
};

/* A pair from modules.alias ("alias PATTERN MODULE"); only exact patterns are used. */
struct alias {
	char *alias;  /* the alias text */
	char *module; /* normalised module name */
};

/* The parsed index files of one kernel. */
struct modindex {
	struct mod *mods;      /* all modules from modules.dep */
	size_t nmods;          /* entries in mods */
	struct alias *aliases; /* exact aliases from modules.alias */
	size_t naliases;       /* entries in aliases */
	char **builtin;        /* normalised names of built-in modules */
	size_t nbuiltin;       /* entries in builtin */
	char *release;         /* last path component of moddir, for messages */
};

static void normalise(char *s)
{
	for (; *s; s++)
		if (*s == '-')
			*s = '_';
}

char *module_name_of(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strcspn(base, ".");
	char *name = xasprintf("%.*s", (int)n, base);
	normalise(name);
	return name;
}

static void push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		abort();
	nv[(*n)++] = s;
	*v = nv;
}

void modindex_free(struct modindex *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nmods; i++) {
		free(m->mods[i].name);
		free(m->mods[i].path);
		for (size_t j = 0; j < m->mods[i].ndeps; j++)
			free(m->mods[i].deps[j]);
		free(m->mods[i].deps);
		for (size_t j = 0; j < m->mods[i].npre; j++)
			free(m->mods[i].pre[j]);
		free(m->mods[i].pre);
	}
	free(m->mods);
	for (size_t i = 0; i < m->naliases; i++) {
		free(m->aliases[i].alias);
		free(m->aliases[i].module);
	}
	free(m->aliases);
	for (size_t i = 0; i < m->nbuiltin; i++)
		free(m->builtin[i]);
	free(m->builtin);
	free(m->release);
	free(m);
}

static struct mod *find_mod(const struct modindex *m, const char *name)
{
	for (size_t i = 0; i < m->nmods; i++)
		if (strcmp(m->mods[i].name, name) == 0)
			return &m->mods[i];
	return NULL;
}

static bool is_builtin(const struct modindex *m, const char *name)
{
	for (size_t i = 0; i < m->nbuiltin; i++)
		if (strcmp(m->builtin[i], name) == 0)
			return true;
	return false;
}

static int parse_dep(struct modindex *m, char *text)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = 0;
		struct mod *nm = realloc(m->mods, (m->nmods + 1) * sizeof(*nm));
		if (!nm)
			abort();
		m->mods = nm;
		struct mod *mod = &m->mods[m->nmods++];
		memset(mod, 0, sizeof(*mod));
		mod->path = xstrdup(line);
		mod->name = module_name_of(line);
		char *save2 = NULL;
		for (char *d = strtok_r(colon + 1, " \t", &save2); d; d = strtok_r(NULL, " \t", &save2))
			push(&mod->deps, &mod->ndeps, module_name_of(d));
	}
	return 0;
}

/* "softdep MOD pre: A B post: C" -> MOD.pre = {A, B}. */
static void parse_softdep(struct modindex *m, char *text)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *save2 = NULL;
		char *w = strtok_r(line, " \t", &save2);
		if (!w || strcmp(w, "softdep") != 0)
			continue;
		char *modname = strtok_r(NULL, " \t", &save2);
		if (!modname)
			continue;
		_cleanup_free_ char *n = xstrdup(modname);
		normalise(n);
		struct mod *mod = find_mod(m, n);
		bool in_pre = false;
		for (w = strtok_r(NULL, " \t", &save2); w; w = strtok_r(NULL, " \t", &save2)) {
			if (strcmp(w, "pre:") == 0)
				in_pre = true;
			else if (strcmp(w, "post:") == 0)
				in_pre = false;
			else if (in_pre && mod)
				push(&mod->pre, &mod->npre, xstrdup(w));
		}
	}
}

static void parse_alias(struct modindex *m, char *text)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *save2 = NULL;
		char *w = strtok_r(line, " \t", &save2);
		char *pat = w && strcmp(w, "alias") == 0 ? strtok_r(NULL, " \t", &save2) : NULL;
		char *mod = pat ? strtok_r(NULL, " \t", &save2) : NULL;
		if (!mod || strpbrk(pat, "*?[") || strchr(pat, ':'))
			continue; /* device-id patterns are irrelevant here */
		struct alias *na = realloc(m->aliases, (m->naliases + 1) * sizeof(*na));
		if (!na)
			abort();
		m->aliases = na;
		m->aliases[m->naliases].alias = xstrdup(pat);
		m->aliases[m->naliases].module = xstrdup(mod);
		normalise(m->aliases[m->naliases].module);
		m->naliases++;
	}
}

int modindex_load(const char *moddir, struct modindex **ret)
{
	struct modindex *m = calloc(1, sizeof(*m));
	if (!m)
		return err_errno(ENOMEM, "module index");
	const char *rel = strrchr(moddir, '/');
	m->release = xstrdup(rel ? rel + 1 : moddir);

	_cleanup_free_ char *dep_path = xasprintf("%s/modules.dep", moddir);
	_cleanup_free_ char *dep = NULL;
	if (fs_read_file(dep_path, &dep, NULL) < 0) {
		modindex_free(m);
		return -1;
	}
	parse_dep(m, dep);

	const char *optional[] = {"modules.softdep", "modules.alias", "modules.builtin"};
	for (size_t i = 0; i < ELEMENTSOF(optional); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", moddir, optional[i]);
		_cleanup_free_ char *text = NULL;
		if (!fs_exists(p))
			continue;
		if (fs_read_file(p, &text, NULL) < 0) {
			modindex_free(m);
			return -1;
		}
		if (i == 0) {
			parse_softdep(m, text);
		} else if (i == 1) {
			parse_alias(m, text);
		} else {
			char *save = NULL;
			for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
				push(&m->builtin, &m->nbuiltin, module_name_of(line));
		}
	}
	*ret = m;
	return 0;
}

/* Name of the module that provides name_or_alias, or NULL (built-in: returns ""). */
static const char *lookup(const struct modindex *m, const char *want)
{
	_cleanup_free_ char *n = xstrdup(want);
	normalise(n);
	struct mod *mod = find_mod(m, n);
	if (mod)
		return mod->name;
	if (is_builtin(m, n))
		return "";
	/* Several modules may provide an alias (crc32c: crc32c_intel, crc32c_generic);
	 * the generic one loads on every CPU, so it wins. */
	const char *found = NULL;
	for (size_t i = 0; i < m->naliases; i++) {
		if (strcmp(m->aliases[i].alias, want) != 0 || !find_mod(m, m->aliases[i].module))
			continue;
		size_t len = strlen(m->aliases[i].module);
		if (!found || (len > 8 && strcmp(m->aliases[i].module + len - 8, "_generic") == 0))
			found = m->aliases[i].module;
	}
	return found;
}

/* Depth-first post-order: everything a module needs is emitted before it. */
static void visit(const struct modindex *m, struct mod *mod, char ***out, size_t *nout)
{
	if (mod->mark)
		return; /* done, or a cycle (depmod forbids them; stop rather than loop) */
	mod->mark = 1;
	for (size_t i = 0; i < mod->npre; i++) {
		const char *p = lookup(m, mod->pre[i]);
		if (p && *p)
			visit(m, find_mod(m, p), out, nout);
	}
	for (size_t i = 0; i < mod->ndeps; i++) {
		struct mod *d = find_mod(m, mod->deps[i]);
		if (d)
			visit(m, d, out, nout);
	}
	mod->mark = 2;
	push(out, nout, xstrdup(mod->path));
}

int modindex_resolve(const struct modindex *m, char *const *wanted, const char *who, char ***ret_paths)
{
	for (size_t i = 0; i < m->nmods; i++)
		m->mods[i].mark = 0;
	char **out = NULL;
	size_t nout = 0;
	for (char *const *w = wanted; *w; w++) {
		const char *name = lookup(m, *w);
		if (!name) {
			for (size_t i = 0; i < nout; i++)
				free(out[i]);
			free(out);
			return err_input("kernel module '%s' (%s): not found in kernel %s", *w, who, m->release);
		}
		if (*name)
			visit(m, find_mod(m, name), &out, &nout);
	}
	push(&out, &nout, NULL);
	*ret_paths = out;
	return 0;
}
