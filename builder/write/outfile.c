#include "outfile.h"

#include "cleanup.h"
#include "err.h"
#include "fs.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE (1u << 20) /* writes reach the kernel in pieces this large */
#define ZERO_SIZE (64u << 10)

static const uint8_t zero[ZERO_SIZE];

struct outfile {
	char *path;       /* the file, for messages (owned) */
	int fd;           /* open for writing; -1 after close */
	EVP_MD_CTX *md;   /* SHA-256 of every byte so far (owned) */
	uint8_t *buf;     /* bytes not yet written (owned, BUF_SIZE) */
	size_t used;      /* bytes in buf */
	uint64_t offset;  /* bytes appended so far, buffered ones included */
};

int outfile_open(const char *path, const EVP_MD *md, struct outfile **ret)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_errno(errno, "writing '%s'", path);
	struct outfile *f = calloc(1, sizeof(*f));
	if (!f || !(f->buf = malloc(BUF_SIZE)) || !(f->md = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(f->md, md ? md : EVP_sha256(), NULL))
		abort();
	f->path = xstrdup(path);
	f->fd = fd;
	*ret = f;
	return 0;
}

static int flush(struct outfile *f)
{
	size_t done = 0;
	while (done < f->used) {
		ssize_t n = write(f->fd, f->buf + done, f->used - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno(errno, "writing '%s'", f->path);
		done += (size_t)n;
	}
	f->used = 0;
	return 0;
}

int outfile_write(struct outfile *f, const void *data, size_t len)
{
	EVP_DigestUpdate(f->md, data, len);
	f->offset += len;
	const uint8_t *p = data;
	while (len > 0) {
		size_t n = BUF_SIZE - f->used < len ? BUF_SIZE - f->used : len;
		memcpy(f->buf + f->used, p, n);
		f->used += n;
		p += n;
		len -= n;
		if (f->used == BUF_SIZE && flush(f) < 0)
			return -1;
	}
	return 0;
}

int outfile_zeros(struct outfile *f, uint64_t len)
{
	/* Short runs are written; whole runs of 64 KiB become a hole. */
	if (len < ZERO_SIZE) {
		return outfile_write(f, zero, (size_t)len);
	}
	if (flush(f) < 0)
		return -1;
	for (uint64_t left = len; left > 0;) {
		size_t n = left < ZERO_SIZE ? (size_t)left : ZERO_SIZE;
		EVP_DigestUpdate(f->md, zero, n);
		left -= n;
	}
	f->offset += len;
	if (lseek(f->fd, (off_t)f->offset, SEEK_SET) < 0)
		return err_errno(errno, "writing '%s'", f->path);
	return 0;
}

uint64_t outfile_offset(const struct outfile *f) { return f->offset; }

int outfile_finish(struct outfile *f, char *ret_hex, uint64_t *ret_size)
{
	if (flush(f) < 0)
		return -1;
	/* A hole at the end moved only the offset: the length comes from ftruncate. */
	if (ftruncate(f->fd, (off_t)f->offset) < 0 || fsync(f->fd) < 0)
		return err_errno(errno, "writing '%s'", f->path);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(f->md, md, &n);
	for (unsigned i = 0; i < n; i++)
		sprintf(ret_hex + 2 * i, "%02x", md[i]);
	ret_hex[2 * n] = 0;
	*ret_size = f->offset;
	return 0;
}

void outfile_free(struct outfile *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	EVP_MD_CTX_free(f->md);
	free(f->buf);
	free(f->path);
	free(f);
}
