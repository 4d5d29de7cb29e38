/* The write stage's one deflate: ISA-L (igzip) at level 2 with a 4 KiB
 * history (WRITER_DEFLATE_WINDOW), raw RFC 1951 that QEMU's qcow2 reader,
 * VMDK readers and gzip all inflate. Why this one: docs/design.md, "Deflate". */
#ifndef QVSA_DEFLATE_H
#define QVSA_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

struct deflater;

/* Room deflate_run needs for len input bytes (incompressible input becomes stored blocks). */
#define DEFLATE_BOUND(len) ((len) + (len) / 8 + 1024)

/* A compressor for one thread; never fails (aborts when out of memory). */
struct deflater *deflater_new(void);
void deflater_free(struct deflater *d);
/* Raw deflate of len bytes (final block included) into out (cap bytes, at
 * least DEFLATE_BOUND(len)); its length. */
size_t deflater_run(struct deflater *d, const void *in, size_t len, void *out, size_t cap);
/* Checksums of the bytes, for the zlib (Adler-32) and gzip (CRC-32) wrappers. */
uint32_t deflate_adler32(const void *p, size_t len);
uint32_t deflate_crc32(const void *p, size_t len);

#endif
