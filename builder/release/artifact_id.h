/* What an artifact is, told by its bytes and never by its file name: its
 * format from its magic numbers, its identity from the stamp inside it
 * (/etc/qvsa-release), and, for a customer, its entry in a signed release
 * manifest. A browser's "appliance.ova" or "qVSA-1.0-vmware (1).ova" is
 * the same artifact as "qVSA-1.0-vmware.ova". */
#ifndef QVSA_ARTIFACT_ID_H
#define QVSA_ARTIFACT_ID_H

#include <stdbool.h>

/* The writer (writer.h) whose format the file at path has: "qcow2", "vmdk",
 * "vhdx", "vhd", "ova" (a ustar archive), "gce" (a gzip'd tar) or "raw" (a
 * disk with an MBR or GPT). ERR_INPUT when it is none of them. The name is static. */
int artifact_sniff(const char *path, const char **ret_writer) __attribute__((nonnull));

/* What is read from inside an artifact. */
struct artifact_stamp {
	const char *writer; /* its format (static), as artifact_sniff or the caller said */
	char *release;      /* /etc/qvsa-release; owned */
	char *os_release;   /* /etc/os-release; owned; NULL when absent */
};

/* Read the stamp of the artifact at path written by writer (NULL: sniff
 * it): a container is unpacked into a temporary folder first; the disk is
 * read without an appliance where the direct reader can. ERR_INPUT when
 * the artifact holds no /etc/qvsa-release. */
int artifact_read_stamp(const char *path, const char *writer, struct artifact_stamp *ret) __attribute__((nonnull(1, 3)));
void artifact_stamp_clear(struct artifact_stamp *s);

/* What a checked artifact is, to boot it. */
struct artifact_identity {
	char *target;  /* target name; owned */
	char *version; /* bootstrap version "qVSA-X.Y"; owned */
	char *file;    /* its published file name ("qVSA-1.0-vmware.ova"); owned */
	char *writer;  /* its writer; owned */
};
void artifact_identity_clear(struct artifact_identity *id);

/* Where the customer's check finds the release's word. */
struct artifact_check_opts {
	const char *manifest;  /* manifest.json; required */
	const char *signature; /* detached signature; NULL: manifest + ".sig" */
	const char *pubkey;    /* the publisher's KEY.pub; required */
};

/* The customer's check of the artifact at path: the manifest's signature
 * with the public key; the entry whose SHA-256 is the file's (any file
 * name); its size and format against the file's; the stamp read from
 * inside against the manifest (version, build id, recipe checksum, build
 * date, kernel, appliance, target). ERR_FAIL naming every difference when
 * one fails; ERR_INPUT for missing or malformed inputs. On success *ret
 * (may be NULL) names the entry. */
int artifact_check(const char *path, const struct artifact_check_opts *o, struct artifact_identity *ret)
	__attribute__((nonnull(1, 2)));

/* Without a manifest: the target and version of the artifact at path from
 * its stamp. target_hint (--target; may be NULL) is taken as given; else
 * the stamp's TARGETS narrowed to those with an artifact of the file's
 * format (datadir's targets/), and when several remain (a disk shared by
 * targets), the one the file name names if it is among them. ERR_INPUT
 * when the stamp cannot tell. */
int artifact_identify(const char *path, const char *datadir, const char *target_hint, struct artifact_identity *ret)
	__attribute__((nonnull(1, 2, 4)));

#endif
