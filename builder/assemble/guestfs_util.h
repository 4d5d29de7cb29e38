/* Shared libguestfs handling: handles with silenced default error printing,
 * TCG forced when KVM does not work, and errors forwarded into ours. */
#ifndef QVSA_GUESTFS_UTIL_H
#define QVSA_GUESTFS_UTIL_H

#include <guestfs.h>

/* A new handle for the operation named by what (errors say "what: ..."). NULL on error. */
guestfs_h *gfs_open(const char *what);
/* For _cleanup_(gfs_close): shut the appliance down and close. */
void gfs_close(guestfs_h **g);
/* Record libguestfs's last error as "what: libguestfs: ..."; returns -1. */
int gfs_fail(guestfs_h *g, const char *what);

#endif
