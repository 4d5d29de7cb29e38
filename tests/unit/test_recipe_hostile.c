/* Recipes from many hands: reserved destinations, personalization codes,
 * masked secrets, the parser's limits and its cost, interruption, and
 * finding system tools outside an ordinary user's PATH. The whole-program
 * view (exit 2, one located line, nothing leaked) is tests/recipes/run-bad.sh. */
#include "recipe.h"
#include "recipe_files.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "proc.h"
#include "redact.h"
#include "strset.h"
#include "yamltree.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>


#define HEAD "name: h\nversion: qVSA-1.0\ndisk: {size: 64M}\npersonalization: {platform_url: 'https://p.example/'}\n" \
	     "targets: [kvm]\n"

/* recipe_load_memory fails with exactly want (after "mem.yaml:"). */
static void expect_memory(const char *text, const char *want)
{
	struct recipe *r = NULL;
	err_clear();
	cr_assert_eq(recipe_load_memory("mem.yaml", text, strlen(text), &r), -1, "loaded: %s", text);
	_cleanup_free_ char *full = xasprintf("mem.yaml:%s", want);
	cr_assert_str_eq(err_msg(), full);
}

Test(hostile, reserved_destinations)
{
	static const char *const refused[] = {
		"/etc/qvsa", "/etc/qvsa/personalized", "/etc/qvsa-release", "/etc/qvsa.conf", "/var/lib/cloud",
		"/var/lib/cloud/seed/nocloud/user-data", "/etc/cloud/cloud.cfg", "/etc/shadow", "/etc/passwd",
		"/etc/group", "/boot/vmlinuz", "/boot", "/usr/sbin/qvsa-agent", "/", "/etc", "/usr", "/lib/modules/x.ko",
	};
	static const char *const allowed[] = {
		"/etc/motd", "/etc/shadowsocks.conf", "/etc/groups.txt", "/bootstrap", "/var/lib/cloudy",
		"/usr/local/bin/hello", "/etc/cloudflare", "/usr/sbin/qvsa-agent2",
	};
	for (size_t i = 0; i < ELEMENTSOF(refused); i++)
		cr_assert_not_null(recipe_reserved_dest(refused[i]), "%s allowed", refused[i]);
	for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
		cr_assert_null(recipe_reserved_dest(allowed[i]), "%s refused", allowed[i]);
}

/* Repeated slashes are collapsed before comparing; '.', '..' and a trailing '/' are refused outright. */
Test(hostile, destinations_normalised)
{
	expect_memory(HEAD "files:\n  - {source: a, dest: //etc//shadow}\n",
		      "7:23: 'files[0].dest' '//etc//shadow' is reserved: the base system's accounts");
	expect_memory(HEAD "files:\n  - {source: a, dest: /etc/./shadow}\n",
		      "7:23: 'files[0].dest' '/etc/./shadow': it has a '.' or '..' component: write the path plainly");
	expect_memory(HEAD "files:\n  - {source: a, dest: /.}\n",
		      "7:23: 'files[0].dest' '/.': it has a '.' or '..' component: write the path plainly");
	expect_memory(HEAD "files:\n  - {source: a, dest: /usr/}\n",
		      "7:23: 'files[0].dest' '/usr/': it ends with '/': name a file, not a directory");
	expect_memory(HEAD "files:\n  - {source: a, dest: /etc/motd}\n  - {source: b, dest: /etc//motd}\n",
		      "8:23: 'files[1].dest' '/etc//motd' is already the dest of files[0]");
	struct recipe *r = NULL;
	const char *ok = HEAD "files:\n  - {source: a, dest: //etc//motd}\n";
	cr_assert_eq(recipe_load_memory("mem.yaml", ok, strlen(ok), &r), 0, "%s", err_msg());
	cr_assert_str_eq(recipe_file_at(r, 0)->dest, "/etc/motd");
	cr_assert_str_eq(recipe_file_at(r, 0)->at, "mem.yaml:7:23");
	recipe_free(r);
}

Test(hostile, perscode_found)
{
	static const char *const found[] = {
		"PERSCODE=4242424242\n", "  perscode: 12345678\n", "{\"perscode\":\"12345678\"}",
		"qvsa:\n  perscode: '99'\n", "export PERSCODE='1234'\n",
		"<Property oe:key=\"qvsa.perscode\" oe:value=\"42\"/>\n",
	};
	static const char *const clean[] = {
		"the perscode key is required\n", "PERSCODE=\n", "printf(\"PERSCODE=%s\\n\", code);\n",
		"perscode: <code>\n", "no code here\n", "perscod=1\n",
	};
	unsigned line = 0;
	for (size_t i = 0; i < ELEMENTSOF(found); i++)
		cr_assert(recipe_find_perscode(found[i], strlen(found[i]), &line), "missed: %s", found[i]);
	for (size_t i = 0; i < ELEMENTSOF(clean); i++)
		cr_assert(!recipe_find_perscode(clean[i], strlen(clean[i]), &line), "false alarm: %s", clean[i]);
	const char *text = "a\nb\nc: 1\nPERSCODE=77\n";
	cr_assert(recipe_find_perscode(text, strlen(text), &line));
	cr_assert_eq(line, 4);
}

/* A code in the recipe itself is refused before any message could quote it. */
Test(hostile, perscode_in_recipe_not_shown)
{
	expect_memory(HEAD "templates: ['PERSCODE=31337']\n",
		      "6:13: this value looks like it holds a personalization code (not shown); a code must never be "
		      "in a recipe: it would be baked into every image");
	cr_assert_null(strstr(err_msg(), "31337"));
}

Test(hostile, platform_url_refusals)
{
	expect_memory("name: h\nversion: qVSA-1.0\ndisk: {size: 64M}\npersonalization:\n"
		      "  platform_url: 'https://u:p/a@ss@p.example/'\ntargets: [kvm]\n",
		      "5:17: 'personalization.platform_url' 'https://u:***@p.example/' carries credentials "
		      "(user:password@); they would be in every image: remove them");
	expect_memory("name: h\nversion: qVSA-1.0\ndisk: {size: 64M}\npersonalization:\n"
		      "  platform_url: 'https://p.example/x?token=abc'\ntargets: [kvm]\n",
		      "5:17: 'personalization.platform_url' 'https://p.example/x?***' has a query string; it would be in "
		      "every image (a code or token there is shipped to everyone): remove it");
	expect_memory("name: h\nversion: qVSA-1.0\ndisk: {size: 64M}\npersonalization:\n"
		      "  platform_url: 'https://p.example/#frag'\ntargets: [kvm]\n",
		      "5:17: 'personalization.platform_url' 'https://p.example/#***' has a fragment; it would be in "
		      "every image (a code or token there is shipped to everyone): remove it");
}

Test(hostile, redact_url_whatever_the_password_holds)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "http://user:s3cret@proxy:3128", "http://user:***@proxy:3128" },
		{ "http://user:pa/ss@proxy:3128", "http://user:***@proxy:3128" },
		{ "http://user:p@ss@proxy:3128", "http://user:***@proxy:3128" },
		{ "http://user:p:a@s/s#?@proxy:3128/x", "http://user:***@proxy:3128/x" },
		{ "http://us/er:pw@proxy", "http://***@proxy" },
		{ "http://token@proxy", "http://***@proxy" },
		{ "https://h/p?code=1#x", "https://h/p?***" },
		{ "https://h/p#frag", "https://h/p#***" },
		{ "user:pw@host", "user:***@host" },
		{ "https://plain.example/", "https://plain.example/" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *got = redact_url(cases[i].in);
		cr_assert_str_eq(got, cases[i].out, "%s", cases[i].in);
		cr_assert_eq(redact_needed(cases[i].in), strcmp(cases[i].in, cases[i].out) != 0);
	}
}

/* Long values (a line of some file) are described, never quoted. */
Test(hostile, long_values_not_quoted)
{
	expect_memory("name: 'root:$y$j9T$0123456789abcdefghijklmnopqrstuvwxyz:19000:0:99999:7:::'\n",
		      "1:7: expected a name of lowercase letters, digits and '-' (not first), at most 63 characters, "
		      "for 'name', got a string of 67 characters");
	expect_memory("'root:$y$j9T$0123456789abcdefghijklmnopqrstuvwxyz:19000': 1\n",
		      "1:1: unknown key of 54 characters (not shown) at the top level; expected one of: include, name, "
		      "version, base, disk, templates, files, personalization, targets");
}

static char *many_keys(size_t n, const char *tail)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "k%zu: v\n", i);
	fputs(tail, f);
	fclose(f);
	return buf;
}

/* 80,000 keys took 11 s with pairwise checks; hashed they take milliseconds. */
Test(hostile, duplicate_check_is_linear)
{
	_cleanup_free_ char *text = many_keys(99999, "k0: again\n");
	struct yamltree *t = NULL;
	double t0 = now_monotonic();
	err_clear();
	cr_assert_eq(yamltree_parse("big.yaml", text, strlen(text), &t), -1);
	double dt = now_monotonic() - t0;
	cr_assert_str_eq(err_msg(), "big.yaml:100000:1: duplicate key 'k0' (first at line 1, column 1)");
	cr_assert_lt(dt, 2.0, "took %.2fs", dt);
}

Test(hostile, list_duplicates_linear)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fputs("targets:\n", f);
	for (int i = 0; i < 90000; i++)
		fprintf(f, "  - t%d\n", i);
	fputs("  - t5\n", f);
	fclose(f);
	struct yamltree *t = NULL;
	_cleanup_strv_ char **v = NULL;
	static const struct yamltree_strv_rules rules = { .unique = true };
	cr_assert_eq(yamltree_parse("l.yaml", buf, len, &t), 0);
	double t0 = now_monotonic();
	err_clear();
	cr_assert_eq(yamltree_strv(yamltree_get(t, "targets"), "targets", &rules, &v), -1);
	cr_assert_lt(now_monotonic() - t0, 2.0);
	cr_assert_str_eq(err_msg(), "l.yaml:90002:5: duplicate entry 't5' in 'targets' (first at line 7, column 5)");
	yamltree_free(t);
	free(buf);
}

Test(hostile, limits)
{
	struct yamltree *t = NULL;
	_cleanup_free_ char *text = many_keys(100001, "");
	err_clear();
	cr_assert_eq(yamltree_parse("n.yaml", text, strlen(text), &t), -1);
	cr_assert_str_eq(err_msg(), "n.yaml:100001:1: more than 100000 keys and list items in one file");

	char deep[200] = "";
	for (int i = 0; i < 66; i++)
		strcat(deep, "[");
	err_clear();
	cr_assert_eq(yamltree_parse("d.yaml", deep, strlen(deep), &t), -1);
	cr_assert_str_eq(err_msg(), "d.yaml:1:66: nesting deeper than 64 levels");

	size_t big = YAMLTREE_MAX_BYTES + 1;
	_cleanup_free_ char *huge = malloc(big);
	memset(huge, '#', big);
	err_clear();
	cr_assert_eq(yamltree_parse("h.yaml", huge, big, &t), -1);
	cr_assert_str_eq(err_msg(), "h.yaml:1:1: file is 4194305 bytes; a recipe or data file may be at most 4 MiB");
}

/* The signal handler only sets the flag: the parser must look at it. */
Test(hostile, parse_stops_on_signal)
{
	struct yamltree *t = NULL;
	const char *text = "a: 1\nb: 2\n";
	qvsa_interrupted = SIGINT;
	err_clear();
	int rc = yamltree_parse("i.yaml", text, strlen(text), &t);
	qvsa_interrupted = 0;
	cr_assert_eq(rc, -1);
	cr_assert_eq(err_kind(), ERR_FAIL);
	cr_assert_str_eq(err_msg(), "interrupted");
}

Test(hostile, strset_finds_and_replaces)
{
	_cleanup_strset_ struct strset *s = strset_new();
	char names[1000][8];
	for (size_t i = 0; i < 1000; i++) {
		snprintf(names[i], sizeof(names[i]), "n%zu", i);
		cr_assert_eq(strset_put(s, names[i], i), SIZE_MAX);
	}
	for (size_t i = 0; i < 1000; i++)
		cr_assert_eq(strset_find(s, names[i]), i);
	cr_assert_eq(strset_find(s, "n1000"), SIZE_MAX);
	cr_assert_eq(strset_put(s, "n7", 70), 7);
	cr_assert_eq(strset_find(s, "n7"), 70);
}

/* An ordinary user's PATH lacks /usr/sbin: depmod is found all the same. */
Test(hostile, tools_found_outside_path)
{
	_cleanup_free_ char *old = xstrdup(getenv("PATH") ? getenv("PATH") : "");
	setenv("PATH", "/usr/bin:/bin", 1);
	_cleanup_free_ char *depmod = proc_find("depmod");
	const char *argv[] = { "qvsa-no-such-tool", NULL };
	err_clear();
	int rc = proc_run(argv, NULL, NULL);
	setenv("PATH", old, 1);
	cr_assert_not_null(depmod, "depmod (package kmod) not found in the sbin folders");
	cr_assert_eq(rc, -1);
	cr_assert_str_eq(err_msg(), "running 'qvsa-no-such-tool': not found in PATH (/usr/bin:/bin) nor in "
				    "/usr/local/sbin, /usr/sbin, /sbin; is it installed?");
}
