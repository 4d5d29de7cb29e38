#include "deflate.h"
#include "writer.h"

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <stdlib.h>

#define LEVEL 2
#define LEVEL_BUF ISAL_DEF_LVL2_DEFAULT

_Static_assert(WRITER_DEFLATE_WINDOW == 1u << 12, "hist_bits below is the window");

struct deflater {
	uint8_t *level_buf; /* ISA-L's hash tables for the level (owned) */
};

struct deflater *deflater_new(void)
{
	struct deflater *d = malloc(sizeof(*d));
	if (!d || !(d->level_buf = malloc(LEVEL_BUF)))
		abort();
	return d;
}

void deflater_free(struct deflater *d)
{
	if (!d)
		return;
	free(d->level_buf);
	free(d);
}

size_t deflater_run(struct deflater *d, const void *in, size_t len, void *out, size_t cap)
{
	struct isal_zstream s;
	isal_deflate_stateless_init(&s);
	s.level = LEVEL;
	s.level_buf = d->level_buf;
	s.level_buf_size = LEVEL_BUF;
	s.hist_bits = 12;
	s.end_of_stream = 1;
	s.flush = NO_FLUSH;
	s.next_in = (uint8_t *)in;
	s.avail_in = (uint32_t)len;
	s.next_out = out;
	s.avail_out = (uint32_t)cap;
	if (cap < DEFLATE_BOUND(len) || isal_deflate_stateless(&s) != COMP_OK)
		abort(); /* cannot happen with DEFLATE_BOUND's room */
	return s.total_out;
}

uint32_t deflate_adler32(const void *p, size_t len) { return isal_adler32(1, p, len); }
uint32_t deflate_crc32(const void *p, size_t len) { return crc32_gzip_refl(0, p, len); }
