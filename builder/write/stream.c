/* The one reader of a build's write stage (the nbdcopy model): it maps the
 * raw disk's data extents (SEEK_DATA/SEEK_HOLE), reads them once in 64 KiB
 * grains, lays each job's patches over the grains they touch (one copy per
 * distinct patch set), has a pool of threads deflate each non-zero grain
 * once, and hands every grain, in order, to every artifact's sink. */
#include "writer.h"
#include "deflate.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 64          /* grains read, then deflated in parallel, then fed: 4 MiB */
#define MAX_THREADS 64
#define BOUND DEFLATE_BOUND(WRITER_GRAIN)

static const uint8_t zero_grain[WRITER_GRAIN];

/* One grain as one patch set sees it, and the buffers it owns. */
struct unit {
	struct writer_grain g; /* what sinks receive; g.data/g.deflated point into the buffers below or constants */
	uint8_t *data;         /* WRITER_GRAIN bytes read from the disk, patched (owned) */
	uint8_t *z;            /* deflate output (owned, BOUND bytes) */
	bool read;             /* data holds bytes (else a hole) */
};

/* A batch: its grains as the unpatched disk has them, and the patched copies. */
struct batch {
	struct unit base[BATCH]; /* grain i of the batch, no patches */
	struct unit *var;        /* patched copies (owned, buffers kept across batches) */
	size_t n_var, cap_var;   /* used, allocated */
	int *var_of;             /* [i * n_groups + group]: index in var, -1: the base (owned) */
	size_t n;                /* grains */
};

static struct unit *batch_unit(struct batch *b, size_t k) { return k < b->n ? &b->base[k] : &b->var[k - b->n]; }

/* The compressors and the batch they work on. */
struct pool {
	pthread_mutex_t lock;     /* guards everything below */
	pthread_cond_t work;      /* a batch is ready, or quit */
	pthread_cond_t done;      /* the batch's last unit is deflated */
	struct batch *b;          /* the batch (owned by the pass) */
	size_t n;                 /* units in the batch: grains and patched copies */
	size_t next;              /* next unit to take */
	size_t finished;          /* units deflated */
	unsigned gen;             /* batch number, so a worker takes each batch once */
	bool quit;                /* workers return */
	bool deflate;             /* some sink wants deflated grains */
	const struct writer_grain *zero; /* the deflated all-zero grain */
};

static void unit_deflate(struct unit *u, const uint8_t *data, struct deflater *c)
{
	struct writer_grain *g = &u->g;
	g->deflated_len = (uint32_t)deflater_run(c, data, g->len, u->z, BOUND);
	g->deflated = u->z;
	g->adler32 = deflate_adler32(data, g->len);
	g->crc32 = deflate_crc32(data, g->len);
}

/* Deflate (or recognize as zero) one unit; c is the calling thread's compressor. */
static void unit_prepare(struct pool *p, struct unit *u, struct deflater *c)
{
	struct writer_grain *g = &u->g;
	if (u->read && memcmp(u->data, zero_grain, g->len) != 0) {
		g->zero = false;
		g->data = u->data;
		if (p->deflate)
			unit_deflate(u, u->data, c);
		return;
	}
	/* Zero: a hole, or a grain holding only zeros; a full one shares the constant deflate. */
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
	unit_deflate(u, zero_grain, c);
}

/* Take units of the current batch until none is left. */
static void pool_drain(struct pool *p, struct deflater *c)
{
	pthread_mutex_lock(&p->lock);
	while (p->next < p->n) {
		struct unit *u = batch_unit(p->b, p->next++);
		pthread_mutex_unlock(&p->lock);
		unit_prepare(p, u, c);
		pthread_mutex_lock(&p->lock);
		if (++p->finished == p->n)
			pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
}

static void *pool_worker(void *arg)
{
	struct pool *p = arg;
	struct deflater *c = deflater_new();
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
	deflater_free(c);
	return NULL;
}

/* Hand a batch to the workers (they deflate while this thread feeds the previous one). */
static void pool_start(struct pool *p, struct batch *b)
{
	pthread_mutex_lock(&p->lock);
	p->b = b;
	p->n = b->n + b->n_var;
	p->next = p->finished = 0;
	p->gen++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
}

/* Help with the started batch, then wait until all of it is deflated. */
static void pool_wait(struct pool *p, struct deflater *c)
{
	pool_drain(p, c);
	pthread_mutex_lock(&p->lock);
	while (p->finished < p->n)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

/* A growable list of extents. */
struct extent_list {
	struct writer_extent *e; /* owned */
	size_t n, cap;
};

/* Append [off, off + len) rounded out to grains and clipped to size, merging with the last. */
static void extent_add(struct extent_list *l, uint64_t off, uint64_t len, uint64_t size)
{
	uint64_t end = off + len;
	off -= off % WRITER_GRAIN;
	end = end > size - size % WRITER_GRAIN ? size : (end + WRITER_GRAIN - 1) / WRITER_GRAIN * WRITER_GRAIN;
	if (end > size)
		end = size;
	if (off >= end)
		return;
	if (l->n && l->e[l->n - 1].offset + l->e[l->n - 1].len >= off) {
		struct writer_extent *last = &l->e[l->n - 1];
		if (end > last->offset + last->len)
			last->len = end - last->offset;
		return;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		if (!(l->e = realloc(l->e, l->cap * sizeof(*l->e))))
			abort();
	}
	l->e[l->n++] = (struct writer_extent){off, end - off};
}

/* The raw file's data extents in [0, size) (a file without hole support: all of it). */
static int map_extents(int fd, uint64_t size, const char *path, struct extent_list *ret)
{
	for (uint64_t off = 0; off < size;) {
		off_t d = lseek(fd, (off_t)off, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0 && errno != EINVAL)
			return err_errno(errno, "mapping '%s'", path);
		if (d < 0) { /* no SEEK_DATA here: read everything */
			extent_add(ret, off, size - off, size);
			break;
		}
		off_t h = lseek(fd, d, SEEK_HOLE);
		uint64_t end = h < 0 ? size : (uint64_t)h;
		if ((uint64_t)d >= size)
			break;
		extent_add(ret, (uint64_t)d, (end > size ? size : end) - (uint64_t)d, size);
		off = end;
	}
	return 0;
}

/* Whether [off, off + len) meets an extent of l; *cur advances (queries come in order). */
static bool extents_touch(const struct extent_list *l, size_t *cur, uint64_t off, uint32_t len)
{
	while (*cur < l->n && l->e[*cur].offset + l->e[*cur].len <= off)
		(*cur)++;
	return *cur < l->n && l->e[*cur].offset < off + len;
}

static bool patches_equal(const struct writer_input *a, const struct writer_input *b)
{
	if (a->n_patches != b->n_patches)
		return false;
	for (size_t i = 0; i < a->n_patches; i++) {
		const struct writer_patch *x = &a->patches[i], *y = &b->patches[i];
		if (x->offset != y->offset || x->len != y->len || memcmp(x->data, y->data, x->len) != 0)
			return false;
	}
	return true;
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
	unsigned n_feed;           /* threads that feed a batch to the sinks (the cores) */
	struct batch b[2];         /* two batches: one deflated while the other is fed to the sinks */
	struct deflater *c;        /* this thread's compressor (owned) */
	uint8_t *zero_z;           /* the all-zero grain, deflated (owned) */
	struct writer_grain zero;  /* it as a grain */
	void **sinks;              /* one per job (owned; each freed by its ops) */
	struct writer_job *jobs;   /* the jobs */
	size_t n;                  /* jobs */
	size_t *group;             /* per job: its patch set, 0: none (owned) */
	size_t *rep;               /* per patch set: a job that has it (owned) */
	size_t *pcur;              /* per patch set: first patch not yet behind the reader (owned) */
	size_t n_groups;           /* patch sets, the empty one included */
	struct extent_list ext;    /* the raw file's data extents */
	size_t ecur;               /* reader's place in ext */
	int fd;                    /* the raw disk, -1 when not open */
};

static void unit_clear(struct unit *u)
{
	free(u->data);
	free(u->z);
}

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
	for (size_t b = 0; b < 2; b++) {
		for (size_t i = 0; i < BATCH; i++)
			unit_clear(&ps->b[b].base[i]);
		for (size_t i = 0; i < ps->b[b].cap_var; i++)
			unit_clear(&ps->b[b].var[i]);
		free(ps->b[b].var);
		free(ps->b[b].var_of);
	}
	for (size_t i = 0; ps->sinks && i < ps->n; i++)
		ps->jobs[i].w->sink->free(ps->sinks[i]);
	free(ps->sinks);
	free(ps->group);
	free(ps->rep);
	free(ps->pcur);
	free(ps->ext.e);
	deflater_free(ps->c);
	free(ps->zero_z);
	if (ps->fd >= 0)
		close(ps->fd);
}

/* Hand the batch to job j's sink, each grain as its patch set has it. */
static int feed_job(struct pass *ps, struct batch *b, size_t j)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->base[i].g.offset >= ps->jobs[j].in.size)
			break;
		int v = b->var_of[i * ps->n_groups + ps->group[j]];
		const struct writer_grain *g = v < 0 ? &b->base[i].g : &b->var[v].g;
		if (ps->jobs[j].w->sink->grain(ps->sinks[j], g) < 0) {
			err_prefix("writing '%s'", ps->jobs[j].out);
			return -1;
		}
	}
	return 0;
}

/* One batch fed to every sink by several threads: each takes whole sinks,
 * so a sink's grains stay in order, while the sinks' own work (SHA-256 of
 * every byte, writes) spreads over the cores. */
struct feeder {
	struct pass *ps;        /* the pass */
	struct batch *b;        /* the batch fed */
	size_t next;            /* next job to take (atomic) */
	pthread_mutex_t lock;   /* guards the failure below */
	bool failed;            /* a sink failed; err/kind hold its message */
	char err[4096];         /* the first failure's message (errors are per thread) */
	enum err_kind kind;     /* and its kind */
};

static void feeder_take(struct feeder *f)
{
	for (;;) {
		size_t j = __atomic_fetch_add(&f->next, 1, __ATOMIC_RELAXED);
		if (j >= f->ps->n)
			return;
		if (feed_job(f->ps, f->b, j) < 0) {
			pthread_mutex_lock(&f->lock);
			if (!f->failed) {
				f->failed = true;
				snprintf(f->err, sizeof(f->err), "%s", err_msg());
				f->kind = err_kind();
			}
			pthread_mutex_unlock(&f->lock);
		}
	}
}

static void *feeder_run(void *arg)
{
	feeder_take(arg);
	return NULL;
}

/* Hand the batch to every sink whose disk reaches it, on up to ps->n_feed threads. */
static int feed(struct pass *ps, struct batch *b)
{
	struct feeder f = {.ps = ps, .b = b};
	pthread_mutex_init(&f.lock, NULL);
	pthread_t th[MAX_THREADS];
	unsigned nt = 0;
	for (unsigned i = 1; i < ps->n_feed && i < ps->n && nt < MAX_THREADS; i++)
		if (pthread_create(&th[nt], NULL, feeder_run, &f) == 0)
			nt++;
	feeder_take(&f);
	for (unsigned i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&f.lock);
	if (f.failed)
		return f.kind == ERR_INPUT ? err_input("%s", f.err) : err_fail("%s", f.err);
	return check_interrupted();
}

/* A patched copy of base for patch set grp, if any of its patches touch the grain; -1: none. */
static int patch_unit(struct pass *ps, struct batch *b, const struct unit *base, size_t grp)
{
	const struct writer_input *in = &ps->jobs[ps->rep[grp]].in;
	uint64_t off = base->g.offset, end = off + base->g.len;
	size_t *k = &ps->pcur[grp];
	while (*k < in->n_patches && in->patches[*k].offset + in->patches[*k].len <= off)
		(*k)++;
	if (*k == in->n_patches || in->patches[*k].offset >= end)
		return -1;
	if (b->n_var == b->cap_var) {
		size_t cap = b->cap_var ? 2 * b->cap_var : 8;
		if (!(b->var = realloc(b->var, cap * sizeof(*b->var))))
			abort();
		for (size_t i = b->cap_var; i < cap; i++)
			if (!(b->var[i].data = malloc(WRITER_GRAIN)) || !(b->var[i].z = malloc(BOUND)))
				abort();
		b->cap_var = cap;
	}
	struct unit *u = &b->var[b->n_var];
	u->g = (struct writer_grain){.offset = off, .len = base->g.len};
	u->read = true;
	memcpy(u->data, base->read ? base->data : zero_grain, base->g.len);
	/* Every patch overlapping the grain (a patch may span grains: it stays current for the next). */
	for (size_t i = *k; i < in->n_patches && in->patches[i].offset < end; i++) {
		const struct writer_patch *p = &in->patches[i];
		uint64_t from = p->offset > off ? p->offset : off;
		uint64_t to = p->offset + p->len < end ? p->offset + p->len : end;
		memcpy(u->data + (from - off), p->data + (from - p->offset), to - from);
	}
	return (int)b->n_var++;
}

/* Read the next batch of grains from *off into b (holes are not read), with the patched copies. */
static int read_batch(struct pass *ps, struct batch *b, uint64_t size, uint64_t *off)
{
	b->n = b->n_var = 0;
	for (; b->n < BATCH && *off < size; b->n++) {
		struct unit *s = &b->base[b->n];
		uint32_t len = size - *off < WRITER_GRAIN ? (uint32_t)(size - *off) : WRITER_GRAIN;
		s->g = (struct writer_grain){.offset = *off, .len = len};
		s->read = extents_touch(&ps->ext, &ps->ecur, *off, len);
		if (s->read && read_full(ps->fd, s->data, len, *off, ps->jobs[0].in.raw) < 0)
			return -1;
		int *vo = &b->var_of[b->n * ps->n_groups];
		vo[0] = -1;
		for (size_t grp = 1; grp < ps->n_groups; grp++)
			vo[grp] = patch_unit(ps, b, s, grp);
		*off += len;
	}
	return 0;
}

/* Group the jobs by patch set (equal content, equal set) and check their patches lie in their disks. */
static int pass_groups(struct pass *ps)
{
	if (!(ps->group = calloc(ps->n, sizeof(*ps->group))) || !(ps->rep = calloc(ps->n + 1, sizeof(*ps->rep))) ||
	    !(ps->pcur = calloc(ps->n + 1, sizeof(*ps->pcur))))
		abort();
	ps->n_groups = 1;
	for (size_t j = 0; j < ps->n; j++) {
		const struct writer_input *in = &ps->jobs[j].in;
		for (size_t i = 0; i < in->n_patches; i++)
			if (in->patches[i].offset + in->patches[i].len > in->size ||
			    (i && in->patches[i].offset < in->patches[i - 1].offset + in->patches[i - 1].len))
				return err_fail("writing '%s': patch %zu lies outside the disk or out of order", ps->jobs[j].out, i);
		if (in->n_patches == 0)
			continue;
		size_t k = 1;
		while (k < ps->n_groups && !patches_equal(&ps->jobs[ps->rep[k]].in, in))
			k++;
		if (k == ps->n_groups)
			ps->rep[ps->n_groups++] = j;
		ps->group[j] = k;
	}
	for (size_t b = 0; b < 2; b++)
		if (!(ps->b[b].var_of = calloc(BATCH * ps->n_groups, sizeof(int))))
			abort();
	return 0;
}

/* Tell every sink that wants it where its disk's data lies: the file's extents and its patches. */
static int pass_plan(struct pass *ps)
{
	for (size_t j = 0; j < ps->n; j++) {
		const struct writer_sink_ops *ops = ps->jobs[j].w->sink;
		const struct writer_input *in = &ps->jobs[j].in;
		if (!ops->plan)
			continue;
		struct extent_list l = {0};
		size_t p = 0;
		for (size_t e = 0; e <= ps->ext.n; e++) {
			/* Merge in order: the patches that start before the next file extent go first. */
			uint64_t next = e < ps->ext.n ? ps->ext.e[e].offset : UINT64_MAX;
			for (; p < in->n_patches && in->patches[p].offset < next; p++)
				extent_add(&l, in->patches[p].offset, in->patches[p].len, in->size);
			if (e < ps->ext.n)
				extent_add(&l, ps->ext.e[e].offset, ps->ext.e[e].len, in->size);
		}
		int rc = ops->plan(ps->sinks[j], l.e, l.n);
		free(l.e);
		if (rc < 0) {
			err_prefix("writing '%s'", ps->jobs[j].out);
			return -1;
		}
	}
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
	if (pass_groups(ps) < 0)
		return -1;
	ps->fd = open(raw, O_RDONLY | O_CLOEXEC);
	if (ps->fd < 0)
		return err_errno(errno, "reading '%s'", raw);
	if (map_extents(ps->fd, size, raw, &ps->ext) < 0)
		return -1;
	posix_fadvise(ps->fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	ps->c = deflater_new();
	for (size_t b = 0; b < 2; b++)
		for (size_t i = 0; i < BATCH; i++)
			if (!(ps->b[b].base[i].data = malloc(WRITER_GRAIN)) || !(ps->b[b].base[i].z = malloc(BOUND)))
				abort();
	if (!(ps->zero_z = malloc(BOUND)))
		abort();
	ps->zero = (struct writer_grain){.len = WRITER_GRAIN, .zero = true, .deflated = ps->zero_z,
					 .adler32 = deflate_adler32(zero_grain, WRITER_GRAIN),
					 .crc32 = deflate_crc32(zero_grain, WRITER_GRAIN)};
	ps->zero.deflated_len = (uint32_t)deflater_run(ps->c, zero_grain, WRITER_GRAIN, ps->zero_z, BOUND);
	ps->pool.zero = &ps->zero;
	if (threads == 0) {
		long nc = sysconf(_SC_NPROCESSORS_ONLN);
		threads = nc > 0 ? (unsigned)nc : 1;
	}
	ps->n_feed = threads;
	if (ps->pool.deflate) {
		/* As many workers as cores: this thread mostly feeds sinks, and helps when it waits. */
		for (unsigned i = 0; i < threads && i < MAX_THREADS; i++)
			if (pthread_create(&ps->th[ps->n_th], NULL, pool_worker, &ps->pool) == 0)
				ps->n_th++;
	}

	for (size_t j = 0; j < ps->n; j++)
		if (ps->jobs[j].w->sink->open(&ps->jobs[j].in, ps->jobs[j].out, &ps->sinks[j]) < 0)
			return -1;
	if (pass_plan(ps) < 0)
		return -1;
	uint64_t off = 0;
	size_t cur = 0;
	if (read_batch(ps, &ps->b[cur], size, &off) < 0)
		return -1;
	pool_start(&ps->pool, &ps->b[cur]);
	while (ps->b[cur].n > 0) {
		pool_wait(&ps->pool, ps->c);
		struct batch *next = &ps->b[!cur];
		if (read_batch(ps, next, size, &off) < 0)
			return -1;
		if (next->n)
			pool_start(&ps->pool, next);
		if (feed(ps, &ps->b[cur]) < 0) {
			if (next->n)
				pool_wait(&ps->pool, ps->c); /* the workers must be done with the buffers first */
			return -1;
		}
		cur = !cur;
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
