/* The one reader of a build's write stage (the nbdcopy model): it walks the
 * raw disk's data extents once (SEEK_DATA/SEEK_HOLE), in 64 KiB grains, has
 * a pool of threads deflate each non-zero grain once (libdeflate), and hands
 * every grain, in order, to every artifact's sink. */
#include "writer.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <fcntl.h>
#include <inttypes.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 64          /* grains read, then deflated in parallel, then fed: 4 MiB */
#define DEFLATE_LEVEL 6   /* zlib's default, what qemu-img uses for VMDK grains */
#define MAX_THREADS 64

static const uint8_t zero_grain[WRITER_GRAIN];

/* One grain of a batch and the buffers it owns. */
struct slot {
	struct writer_grain g; /* what sinks receive; g.data/g.deflated point into the buffers below or constants */
	uint8_t *data;         /* WRITER_GRAIN bytes read from the disk (owned) */
	uint8_t *z;            /* deflate output (owned, deflate_bound bytes) */
	bool read;             /* data holds bytes read from the disk (else a hole) */
};

/* The compressors and the batch they work on. */
struct pool {
	pthread_mutex_t lock;     /* guards everything below */
	pthread_cond_t work;      /* a batch is ready, or quit */
	pthread_cond_t done;      /* the batch's last grain is deflated */
	struct slot *slots;       /* the batch (owned by the pass) */
	size_t n;                 /* grains in the batch */
	size_t next;              /* next grain to take */
	size_t finished;          /* grains deflated */
	unsigned gen;             /* batch number, so a worker takes each batch once */
	bool quit;                /* workers return */
	bool deflate;             /* some sink wants deflated grains */
	size_t bound;             /* capacity of each slot's z */
	const struct writer_grain *zero; /* the deflated all-zero grain */
};

/* Deflate (or recognize as zero) one grain; c is the calling thread's compressor. */
static void grain_prepare(struct pool *p, struct slot *s, struct libdeflate_compressor *c)
{
	struct writer_grain *g = &s->g;
	if (s->read && memcmp(s->data, zero_grain, g->len) != 0) {
		g->zero = false;
		g->data = s->data;
		if (!p->deflate)
			return;
		size_t n = libdeflate_deflate_compress(c, s->data, g->len, s->z, p->bound);
		if (n == 0)
			abort(); /* cannot happen: z holds deflate_compress_bound bytes */
		g->deflated = s->z;
		g->deflated_len = (uint32_t)n;
		g->adler32 = libdeflate_adler32(1, s->data, g->len);
		g->crc32 = libdeflate_crc32(0, s->data, g->len);
		return;
	}
	/* Zero: a hole, or a read grain holding only zeros; a full one shares the constant deflate. */
	g->zero = true;
	g->data = NULL;
	if (!p->deflate)
		return;
	if (g->len == WRITER_GRAIN) {
		g->deflated = p->zero->deflated;
		g->deflated_len = p->zero->deflated_len;
		g->adler32 = p->zero->adler32;
		g->crc32 = p->zero->crc32;
		return;
	}
	size_t n = libdeflate_deflate_compress(c, zero_grain, g->len, s->z, p->bound);
	if (n == 0)
		abort();
	g->deflated = s->z;
	g->deflated_len = (uint32_t)n;
	g->adler32 = libdeflate_adler32(1, zero_grain, g->len);
	g->crc32 = libdeflate_crc32(0, zero_grain, g->len);
}

/* Take grains of the current batch until none is left. */
static void pool_drain(struct pool *p, struct libdeflate_compressor *c)
{
	pthread_mutex_lock(&p->lock);
	while (p->next < p->n) {
		struct slot *s = &p->slots[p->next++];
		pthread_mutex_unlock(&p->lock);
		grain_prepare(p, s, c);
		pthread_mutex_lock(&p->lock);
		if (++p->finished == p->n)
			pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
}

static void *pool_worker(void *arg)
{
	struct pool *p = arg;
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(DEFLATE_LEVEL);
	if (!c)
		abort();
	unsigned seen = 0;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->quit && p->gen == seen)
			pthread_cond_wait(&p->work, &p->lock);
		bool quit = p->quit;
		seen = p->gen;
		pthread_mutex_unlock(&p->lock);
		if (quit)
			break;
		pool_drain(p, c);
	}
	libdeflate_free_compressor(c);
	return NULL;
}

/* Hand a batch of n slots to the workers (they deflate while this thread feeds the previous one). */
static void pool_start(struct pool *p, struct slot *slots, size_t n)
{
	pthread_mutex_lock(&p->lock);
	p->slots = slots;
	p->n = n;
	p->next = p->finished = 0;
	p->gen++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
}

/* Help with the started batch, then wait until all of it is deflated. */
static void pool_wait(struct pool *p, struct libdeflate_compressor *c)
{
	pool_drain(p, c);
	pthread_mutex_lock(&p->lock);
	while (p->finished < p->n)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

/* Where the disk's current data extent lies, from SEEK_DATA/SEEK_HOLE. */
struct extents {
	int fd;         /* the raw disk */
	uint64_t start; /* current (or next) data extent; UINT64_MAX: none left */
	uint64_t end;   /* its end */
};

/* Whether [off, off+len) touches data (else it is a hole and is not read). */
static bool extents_data(struct extents *e, uint64_t off, uint32_t len)
{
	while (e->start != UINT64_MAX && e->end <= off) {
		off_t d = lseek(e->fd, (off_t)off, SEEK_DATA);
		if (d < 0) {
			/* ENXIO: only a hole remains; anything else: no hole support, read all. */
			e->start = errno == ENXIO ? UINT64_MAX : off;
			e->end = UINT64_MAX;
			break;
		}
		off_t h = lseek(e->fd, d, SEEK_HOLE);
		e->start = (uint64_t)d;
		e->end = h < 0 ? UINT64_MAX : (uint64_t)h;
	}
	return e->start != UINT64_MAX && e->start < off + len && e->end > off;
}

static int read_full(int fd, uint8_t *buf, uint32_t len, uint64_t off, const char *path)
{
	uint32_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno(errno, "reading '%s'", path);
		if (r == 0) { /* past the end of the file: the disk continues with zeros */
			memset(buf + done, 0, len - done);
			break;
		}
		done += (uint32_t)r;
	}
	return 0;
}

/* State of one pass, for cleanup on every path. */
struct pass {
	struct pool pool;          /* the compressors */
	pthread_t th[MAX_THREADS]; /* worker threads */
	unsigned n_th;             /* started */
	struct slot slots[2][BATCH]; /* two batches: one deflated while the other is fed to the sinks */
	struct libdeflate_compressor *c; /* this thread's compressor (owned) */
	uint8_t *zero_z;           /* the all-zero grain, deflated (owned) */
	struct writer_grain zero;  /* it as a grain */
	void **sinks;              /* one per job (owned; each freed by its ops) */
	struct writer_job *jobs;   /* the jobs */
	size_t n;                  /* jobs */
	int fd;                    /* the raw disk, -1 when not open */
};

static void pass_clear(struct pass *ps)
{
	pthread_mutex_lock(&ps->pool.lock);
	ps->pool.quit = true;
	pthread_cond_broadcast(&ps->pool.work);
	pthread_mutex_unlock(&ps->pool.lock);
	for (unsigned i = 0; i < ps->n_th; i++)
		pthread_join(ps->th[i], NULL);
	pthread_mutex_destroy(&ps->pool.lock);
	pthread_cond_destroy(&ps->pool.work);
	pthread_cond_destroy(&ps->pool.done);
	for (size_t b = 0; b < 2; b++)
		for (size_t i = 0; i < BATCH; i++) {
			free(ps->slots[b][i].data);
			free(ps->slots[b][i].z);
		}
	for (size_t i = 0; ps->sinks && i < ps->n; i++)
		ps->jobs[i].w->sink->free(ps->sinks[i]);
	free(ps->sinks);
	libdeflate_free_compressor(ps->c);
	free(ps->zero_z);
	if (ps->fd >= 0)
		close(ps->fd);
}

/* Hand the batch to every sink whose disk reaches it. */
static int feed(struct pass *ps, const struct slot *slots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct writer_grain *g = &slots[i].g;
		for (size_t j = 0; j < ps->n; j++) {
			if (g->offset >= ps->jobs[j].in.size)
				continue;
			if (ps->jobs[j].w->sink->grain(ps->sinks[j], g) < 0) {
				err_prefix("writing '%s'", ps->jobs[j].out);
				return -1;
			}
		}
	}
	return check_interrupted();
}

/* Read the next batch of grains from *off into slots (holes are not read); *ret_n of them. */
static int read_batch(struct pass *ps, struct extents *ext, struct slot *slots, uint64_t size, uint64_t *off,
		      size_t *ret_n)
{
	size_t n = 0;
	for (; n < BATCH && *off < size; n++) {
		struct slot *s = &slots[n];
		uint32_t len = size - *off < WRITER_GRAIN ? (uint32_t)(size - *off) : WRITER_GRAIN;
		s->g = (struct writer_grain){.offset = *off, .len = len};
		s->read = extents_data(ext, *off, len);
		if (s->read && read_full(ps->fd, s->data, len, *off, ps->jobs[0].in.raw) < 0)
			return -1;
		*off += len;
	}
	*ret_n = n;
	return 0;
}

static int pass_run(struct pass *ps, unsigned threads)
{
	const char *raw = ps->jobs[0].in.raw;
	uint64_t size = 0;
	for (size_t j = 0; j < ps->n; j++) {
		if (strcmp(ps->jobs[j].in.raw, raw) != 0)
			return err_fail("writing '%s': a pass reads one disk, not '%s' and '%s'", ps->jobs[j].out, raw,
					ps->jobs[j].in.raw);
		ps->pool.deflate = ps->pool.deflate || ps->jobs[j].w->sink->deflate;
		if (ps->jobs[j].in.size > size)
			size = ps->jobs[j].in.size;
	}
	for (size_t j = 0; j < ps->n; j++)
		if (ps->jobs[j].in.size % WRITER_GRAIN != 0 && ps->jobs[j].in.size != size)
			return err_input("writing '%s': virtual size %" PRIu64 " is not a multiple of 64 KiB", ps->jobs[j].out,
					 ps->jobs[j].in.size);
	ps->fd = open(raw, O_RDONLY | O_CLOEXEC);
	if (ps->fd < 0)
		return err_errno(errno, "reading '%s'", raw);
	posix_fadvise(ps->fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	ps->c = libdeflate_alloc_compressor(DEFLATE_LEVEL);
	if (!ps->c)
		abort();
	ps->pool.bound = libdeflate_deflate_compress_bound(ps->c, WRITER_GRAIN);
	for (size_t b = 0; b < 2; b++)
		for (size_t i = 0; i < BATCH; i++)
			if (!(ps->slots[b][i].data = malloc(WRITER_GRAIN)) || !(ps->slots[b][i].z = malloc(ps->pool.bound)))
				abort();
	if (!(ps->zero_z = malloc(ps->pool.bound)))
		abort();
	ps->zero = (struct writer_grain){.len = WRITER_GRAIN, .zero = true, .deflated = ps->zero_z,
					 .adler32 = libdeflate_adler32(1, zero_grain, WRITER_GRAIN),
					 .crc32 = libdeflate_crc32(0, zero_grain, WRITER_GRAIN)};
	ps->zero.deflated_len =
		(uint32_t)libdeflate_deflate_compress(ps->c, zero_grain, WRITER_GRAIN, ps->zero_z, ps->pool.bound);
	ps->pool.zero = &ps->zero;
	if (ps->pool.deflate) {
		if (threads == 0) {
			long nc = sysconf(_SC_NPROCESSORS_ONLN);
			threads = nc > 0 ? (unsigned)nc : 1;
		}
		/* As many workers as cores: this thread mostly feeds sinks, and helps when it waits. */
		for (unsigned i = 0; i < threads && i < MAX_THREADS; i++)
			if (pthread_create(&ps->th[ps->n_th], NULL, pool_worker, &ps->pool) == 0)
				ps->n_th++;
	}

	for (size_t j = 0; j < ps->n; j++)
		if (ps->jobs[j].w->sink->open(&ps->jobs[j].in, ps->jobs[j].out, &ps->sinks[j]) < 0)
			return -1;
	struct extents ext = {.fd = ps->fd, .start = 0, .end = 0};
	uint64_t off = 0;
	size_t n = 0, cur = 0;
	if (read_batch(ps, &ext, ps->slots[cur], size, &off, &n) < 0)
		return -1;
	pool_start(&ps->pool, ps->slots[cur], n);
	while (n > 0) {
		pool_wait(&ps->pool, ps->c);
		size_t n_next = 0;
		if (read_batch(ps, &ext, ps->slots[!cur], size, &off, &n_next) < 0)
			return -1;
		if (n_next)
			pool_start(&ps->pool, ps->slots[!cur], n_next);
		if (feed(ps, ps->slots[cur], n) < 0) {
			if (n_next)
				pool_wait(&ps->pool, ps->c); /* the workers must be done with the buffers first */
			return -1;
		}
		cur = !cur;
		n = n_next;
	}
	for (size_t j = 0; j < ps->n; j++)
		if (ps->jobs[j].w->sink->finish(ps->sinks[j], ps->jobs[j].sha256, &ps->jobs[j].size) < 0) {
			err_prefix("writing '%s'", ps->jobs[j].out);
			return -1;
		}
	return 0;
}

int writer_stream(struct writer_job *jobs, size_t n, unsigned threads)
{
	if (n == 0)
		return 0;
	struct pass *ps = calloc(1, sizeof(*ps));
	if (!ps || !(ps->sinks = calloc(n, sizeof(*ps->sinks))))
		abort();
	ps->jobs = jobs;
	ps->n = n;
	ps->fd = -1;
	pthread_mutex_init(&ps->pool.lock, NULL);
	pthread_cond_init(&ps->pool.work, NULL);
	pthread_cond_init(&ps->pool.done, NULL);
	int rc = pass_run(ps, threads);
	pass_clear(ps);
	free(ps);
	return rc;
}

int writer_stream_one(const struct writer_ops *w, const struct writer_input *in, const char *out)
{
	struct writer_job job = {.w = w, .in = *in, .out = out};
	return writer_stream(&job, 1, 0);
}
