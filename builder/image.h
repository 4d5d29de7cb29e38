/* Read-only access to files inside a disk image through libguestfs
 * (one appliance launch per call). */
#ifndef QVSA_IMAGE_H
#define QVSA_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

/* Use TCG in every libguestfs launch (set once accel is resolved to tcg). */
void image_set_force_tcg(bool on);
bool image_force_tcg(void);

/* Open disk (format "raw", "qcow2", "vmdk", "vpc", "vhdx" or NULL to probe)
 * read-only, mount its root filesystem (the partition holding /etc/qvsa-release),
 * and read each of paths. ret_contents[i] gets the file's text or NULL if it
 * does not exist; caller frees each and the array. */
int image_read_files(const char *disk, const char *format, const char *const *paths, char ***ret_contents);
/* The same, binary-safe: (*ret_lens)[i] is the length of ret_contents[i]; caller frees it. */
int image_read_files_len(const char *disk, const char *format, const char *const *paths, char ***ret_contents,
			 size_t **ret_lens);

#endif
