/* Files, directories and temporary state that must not outlive an error. */
#ifndef QVSA_FS_H
#define QVSA_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* asprintf that aborts on out-of-memory (the only allocation failure we do not recover from). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), returns_nonnull));
char *xstrdup(const char *s) __attribute__((returns_nonnull));

/* mkdir -p; records an error on failure. */
int fs_mkdir_p(const char *path, unsigned mode);
/* rm -rf; best effort, returns 0 if path is gone afterwards. */
int fs_rm_rf(const char *path);
/* Read a whole file (NUL-terminated). ret_len may be NULL. */
int fs_read_file(const char *path, char **ret_buf, size_t *ret_len);
/* Write data to path atomically: a new ".NAME.XXXXXX" beside it (mkostemp:
 * O_EXCL, never a planted file or symlink), mode, fsync, then rename. */
int fs_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* Copy a file (sparse-aware: skips all-zero blocks by seeking). */
int fs_copy_file(const char *src, const char *dst, unsigned mode);
bool fs_exists(const char *path);
/* Directory part / last component, newly allocated. */
char *fs_dirname(const char *path);
/* Make path absolute relative to the cwd, without resolving links. */
char *fs_abspath(const char *path);

/* SHA-256 of a file as 64 lowercase hex chars (+NUL) into hex[65]. */
int fs_sha256_file(const char *path, char hex[65], uint64_t *ret_size);
/* SHA-256 of a buffer, hex. */
void sha256_hex(const void *data, size_t len, char hex[65]);

/* Cache directory: $QVSA_CACHE_DIR, else $XDG_CACHE_HOME/qvsa, else ~/.cache/qvsa. */
char *fs_cache_dir(void);

/* Temporary directories registered here are removed by fs_tmp_cleanup_all()
 * (called on every exit path of main, including after SIGINT/SIGTERM), and
 * listed in the run registry (runs.h) so that the next run removes them
 * after a kill -9. */
char *fs_tmpdir_new(const char *tag);
/* A private folder PARENT/PREFIXxxxxxx (mkdtemp: mode 0700), registered the
 * same way (and in the run registry, runs.h). */
char *fs_tmpdir_new_in(const char *parent, const char *prefix);
void fs_tmpdir_release(char *dir); /* rm -rf and unregister; frees dir */
void fs_tmp_cleanup_all(void);

/* Set by the SIGINT/SIGTERM handler; long loops poll it and bail out. */
extern volatile int qvsa_interrupted;
/* Returns -1 and records "interrupted" if a signal arrived. */
int check_interrupted(void);

#endif
