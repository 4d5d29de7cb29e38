/* An artifact file written front to back, its SHA-256 taken from the bytes
 * as they go out (never by reading the file back). Runs of zeros may be left
 * as holes in the file; they are still hashed. */
#ifndef QVSA_OUTFILE_H
#define QVSA_OUTFILE_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

struct outfile;

/* Create path (truncating it); md is the digest to take (NULL: SHA-256). */
int outfile_open(const char *path, const EVP_MD *md, struct outfile **ret);
/* Append len bytes. */
int outfile_write(struct outfile *f, const void *data, size_t len);
/* Append len zero bytes, leaving a hole in the file where the filesystem can. */
int outfile_zeros(struct outfile *f, uint64_t len);
/* Bytes written so far (the offset of the next byte). */
uint64_t outfile_offset(const struct outfile *f);
/* Flush, set the file's length, fsync; the hex digest of every byte (ret_hex
 * holds 2 * EVP_MAX_MD_SIZE + 1, or 65 for SHA-256) and the size. */
int outfile_finish(struct outfile *f, char *ret_hex, uint64_t *ret_size);
/* Close without finishing (on error); accepts NULL. Removes nothing. */
void outfile_free(struct outfile *f);

#endif
