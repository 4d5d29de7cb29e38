/* Artifact writers: one constant table of operations per format. A target's
 * data file names its writer; adding a format is one file plus one row in
 * writer.c's table. */
#ifndef QVSA_WRITER_H
#define QVSA_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct target;
struct target_artifact;

/* Bytes that replace the disk's own at an offset, for one artifact only: the
 * small per-target layer (e.g. the datasource list) over a disk that several
 * targets share, applied as the disk is read, without re-assembling. */
struct writer_patch {
	uint64_t offset;     /* byte offset in the disk */
	const uint8_t *data; /* replacement bytes (the caller's, valid while the artifact is written) */
	size_t len;          /* bytes at data; [offset, offset + len) lies inside the raw file */
};

/* What a writer is given. */
struct writer_input {
	const char *raw;             /* assembled raw disk (read only) */
	uint64_t size;               /* its size in bytes, already aligned for the target */
	const struct target *target; /* the target (name, firmware, devices) */
	const struct target_artifact *artifact; /* this file's writer options */
	const char *version;         /* "qVSA-X.Y" (for descriptors such as OVF) */
	const char *workdir;         /* scratch folder the writer may use */
	int64_t epoch;               /* SOURCE_DATE_EPOCH: the only time an artifact may carry (archive mtimes,
					VHD footer); 0 when unset */
	const char *build_id;        /* identity derived from the build's inputs: seeds the ids some formats
					need (VMDK CID, VHD/VHDX GUIDs); may be NULL */
	const char *name;            /* final file name, e.g. "qVSA-1.0-vmware.ova", for names inside the
					artifact (OVA members, VMDK extent); NULL: VERSION-TARGET.EXTENSION */
	const struct writer_patch *patches; /* this artifact's layer over raw, sorted by offset, not
					       overlapping; NULL when n_patches is 0. Artifacts of one pass
					       with equal patches share every grain (and its deflate). */
	size_t n_patches;            /* entries in patches */
};

/* The reader hands the disk to sinks in grains of this many bytes (the
 * streamOptimized VMDK grain, 128 sectors). */
#define WRITER_GRAIN (64u << 10)

/* Every deflate the reader makes looks back at most this far: QEMU inflates
 * qcow2 compressed clusters with a 4 KiB window (windowBits -12), and VMDK
 * grains and gzip members accept any window, so one deflate serves all. */
#define WRITER_DEFLATE_WINDOW (4u << 10)

/* One grain of the disk, as every sink of a pass receives it, in order;
 * with the job's patches applied (jobs with equal patches get the same grain). */
struct writer_grain {
	uint64_t offset;         /* byte offset in the disk, a multiple of WRITER_GRAIN */
	uint32_t len;            /* bytes: WRITER_GRAIN, less only for the last grain of a disk */
	const uint8_t *data;     /* the bytes (reader's buffer, valid during the call); NULL: a hole */
	bool zero;               /* every byte is zero (always for a hole) */
	const uint8_t *deflated; /* raw deflate (RFC 1951, final block included) of the len bytes, back
				    references within 4 KiB (WRITER_DEFLATE_WINDOW); NULL unless a sink of
				    the pass set deflate */
	uint32_t deflated_len;   /* bytes at deflated */
	uint32_t adler32;        /* Adler-32 of the bytes (zlib wrapper), with deflated */
	uint32_t crc32;          /* CRC-32 of the bytes (gzip wrapper), with deflated */
};

/* Where an artifact's disk may hold data: the raw file's data extents
 * (SEEK_DATA/SEEK_HOLE) and the artifact's patches, rounded out to grains,
 * merged, sorted, within [0, in.size). Every grain outside them is a hole
 * (zero); a grain inside may still turn out all zero. */
struct writer_extent {
	uint64_t offset; /* a multiple of WRITER_GRAIN */
	uint64_t len;    /* bytes; whole grains except at the end of the disk */
};

/* A format written as a stream: the reader opens every sink of a pass,
 * tells it the disk's extents, hands it the disk grain by grain, then
 * finishes it. Sinks append (so the file's SHA-256 is taken as it is
 * written); a format whose metadata precedes data it cannot size in advance
 * (qcow2's compressed clusters) fills it in at finish and says so. */
struct writer_sink_ops {
	bool deflate; /* the sink uses writer_grain.deflated (the reader deflates each grain once for all) */
	/* Whether this artifact's options are written as a stream (else by write); NULL: always. */
	bool (*accepts)(const struct target_artifact *a);
	/* Start writing out (a temporary name) for in; *ret_sink is the sink's state. */
	int (*open)(const struct writer_input *in, const char *out, void **ret_sink);
	/* Before the first grain: where the data lies (n extents, see struct
	 * writer_extent), for formats whose allocation tables precede the data
	 * (VHDX, dynamic VHD, qcow2, a sparse tar's map); NULL: not needed. */
	int (*plan)(void *sink, const struct writer_extent *ext, size_t n);
	/* The next grain; grains come in order, each once, covering [0, in->size). */
	int (*grain)(void *sink, const struct writer_grain *g);
	/* Complete the file; its SHA-256 (hex) and size. */
	int (*finish)(void *sink, char ret_sha256[65], uint64_t *ret_size);
	/* Release the state (after finish, or on error); accepts NULL; removes no file. */
	void (*free)(void *sink);
};

/* Operations of one artifact format. */
struct writer_ops {
	const char *name;        /* as named by targets' artifact.writer */
	const char *disk_format; /* QEMU/libvirt/libguestfs format of the bootable disk in the artifact */
	/* Write the artifact to out (a temporary name the caller renames). For a
	 * streamed format, a pass of its sink alone. */
	int (*write)(const struct writer_input *in, const char *out);
	/* The format as a stream fed by the one reader (writer_stream); NULL: write
	 * does all (qemu-img), and the caller hashes the file it leaves. */
	const struct writer_sink_ops *sink;
	/* Check a finished artifact against the format's and the target's rules
	 * (virtual size, structure); independent of how it was written. */
	int (*check)(const char *path, uint64_t expect_size, const struct target_artifact *a);
	/* Container formats only (OVA, GCE tar.gz), else NULL: extract the bootable
	 * disk (of disk_format) into dir; *ret_disk is its path, caller frees. */
	int (*unpack)(const char *artifact, const char *dir, char **ret_disk);
};

/* One artifact of a streamed pass. */
struct writer_job {
	const struct writer_ops *w; /* its writer (w->sink non-NULL) */
	struct writer_input in;     /* its input; in.raw is the same for every job of a pass, in.size its own */
	const char *out;            /* temporary file to write */
	char sha256[65];            /* set on success: hex SHA-256 of the file, taken while writing */
	uint64_t size;              /* set on success: the file's size */
};

/* Read jobs[0].in.raw once, skipping holes, and feed every job's sink; deflate
 * grains once for every sink that wants it, on threads workers (0: every
 * core). Each job reads [0, in.size) with its in.patches applied; beyond the
 * raw file's end is zeros. Grains no patch touches are shared by every job;
 * a patched grain is built (and deflated) once per distinct patch set. */
int writer_stream(struct writer_job *jobs, size_t n, unsigned threads);
/* A pass with w's sink alone: the write operation of a streamed format. */
int writer_stream_one(const struct writer_ops *w, const struct writer_input *in, const char *out);

/* The writer called name, or NULL. */
const struct writer_ops *writer_find(const char *name);

/* What `qemu-img info --output=json` says of an image. */
struct writer_img_info {
	char format[16];       /* "format": "qcow2", "vmdk", "raw", ... */
	uint64_t virtual_size; /* "virtual-size" in bytes, > 0 */
	char compat[8];        /* qcow2's format-specific "compat" ("1.1"); "" for other formats */
	char create_type[32];  /* vmdk's format-specific "create-type" ("streamOptimized"); "" for others */
};

/* Parse qemu-img info's JSON output about path (named in messages) into
 * ret. Returns 0, or -1 with an error recorded when it is not one JSON
 * object with a "format" string and a positive whole "virtual-size". */
int writer_img_info_parse(const char *json, const char *path, struct writer_img_info *ret) __attribute__((nonnull));
/* Run qemu-img info on path, of format fmt (NULL: qemu-img probes it), and
 * parse its output: 0, or -1 with an error recorded. */
int writer_img_info(const char *path, const char *fmt, struct writer_img_info *ret) __attribute__((nonnull(1, 3)));

/* Shared by writers that use qemu-img: virtual size and format as qemu-img
 * reports them; records an error naming the artifact if they differ. */
int writer_qemu_img_check(const char *artifact, const char *format, uint64_t expect_size);
/* The same, also handing back what qemu-img info said (for a writer's own
 * further checks, without a second qemu-img run); ret_info may be NULL. */
int writer_qemu_img_check_info(const char *artifact, const char *format, uint64_t expect_size,
			       struct writer_img_info *ret_info);

/* Shared by the vmdk and ova writers (writer_vmdk.c): a stream-optimized
 * VMDK written at path grain by grain, whose embedded extent is called
 * extent_name (its CID derives from in->build_id, extent_name and the size),
 * its digest taken with md (NULL: SHA-256) while written. */
struct vmdk_stream;
struct evp_md_st;
int vmdk_stream_open(const struct writer_input *in, const char *extent_name, const char *path,
		     const struct evp_md_st *md, struct vmdk_stream **ret);
int vmdk_stream_grain(struct vmdk_stream *v, const struct writer_grain *g);
/* Directory, footer, end-of-stream; ret_hex holds the digest (2 * EVP_MAX_MD_SIZE + 1 bytes). */
int vmdk_stream_finish(struct vmdk_stream *v, char *ret_hex, uint64_t *ret_size);
void vmdk_stream_free(struct vmdk_stream *v);
/* Check a VMDK's first len bytes (enough to hold its embedded descriptor):
 * sparse header, stream-optimized, capacity expect_size. what prefixes error
 * messages, e.g. "artifact 'x.ova': member 'x-disk1.vmdk'". */
int writer_vmdk_check_head(const void *head, size_t len, uint64_t expect_size, const char *what);

#endif
