/* Scope-bound cleanup helpers (systemd style): a variable declared with one
 * of these is released on every exit path; TAKE_PTR hands ownership on. */
#ifndef QVSA_CLEANUP_H
#define QVSA_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

static inline void cleanup_freep(void *p) { free(*(void **)p); }
static inline void cleanup_fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void cleanup_closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void cleanup_closedirp(DIR **d) { if (*d) closedir(*d); }
static inline void cleanup_strvp(char ***v)
{
	if (*v) {
		for (char **s = *v; *s; s++)
			free(*s);
		free(*v);
	}
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(cleanup_freep)
#define _cleanup_fclose_ _cleanup_(cleanup_fclosep)
#define _cleanup_close_ _cleanup_(cleanup_closep)
#define _cleanup_closedir_ _cleanup_(cleanup_closedirp)
#define _cleanup_strv_ _cleanup_(cleanup_strvp)

/* Return *pp and set it to NULL, so a _cleanup_ variable gives its value away. */
#define TAKE_PTR(p) ({ __typeof__(p) take_ptr_tmp_ = (p); (p) = NULL; take_ptr_tmp_; })
/* Same for file descriptors. */
#define TAKE_FD(fd) ({ int take_fd_tmp_ = (fd); (fd) = -1; take_fd_tmp_; })

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#endif
