/* The command line's shared parts: the options main.c parsed, and the
 * handlers that live outside main.c (cli.c: the data folder and verify;
 * inspect.c: inspect). */
#ifndef QVSA_CLI_H
#define QVSA_CLI_H

#include <stdbool.h>
#include <stddef.h>

/* The personalization code the verification stub accepts unless told otherwise. */
#define DEFAULT_TEST_CODE "4242424242"

/* Options shared by the subcommands (each uses the ones it documents). */
struct cli {
	char *targets[64];        /* --target, repeated */
	size_t n_targets;         /* entries in targets */
	const char *out_dir;      /* --out */
	const char *accel;        /* --accel */
	const char *connect;      /* --connect */
	const char *pool;         /* --pool */
	const char *perscode;     /* --perscode */
	const char *accept_code;  /* --accept-code */
	unsigned timeout_s;       /* --timeout */
	bool json;                /* --json */
	unsigned jobs;            /* -j N: writers at once */
	const char *ova_digest;   /* --ova-digest sha256|sha1 */
	bool all;                 /* --all */
	bool wrong_ca;            /* --wrong-ca */
	const char *sign_key;     /* build --sign KEY */
	bool refresh;             /* build --refresh */
	const char *key;          /* sign --key KEY */
	bool offline;             /* verify --offline: no boot */
	const char *manifest;     /* verify --manifest */
	const char *pubkey;       /* verify --pubkey */
	const char *signature;    /* verify/sign --signature: the detached signature's path */
	const char *format;       /* matrix --format */
	char *const *args;        /* positional arguments */
	int nargs;                /* entries in args */
};

/* The data folder (targets/, templates/): $QVSA_DATADIR, the source tree
 * or prefix the binary runs from, else the configured one. Caller frees. */
char *cli_datadir_find(void);

/* `qvsa verify` and `qvsa inspect`; 0, or -1 with an error recorded. */
int cmd_verify(struct cli *c);
int cmd_inspect(struct cli *c);

#endif
