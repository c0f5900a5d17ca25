/* Scope-bound cleanup (as in crun and systemd): variables free themselves when they go out of
 * scope; TAKE_FD / TAKE_PTR hand ownership to the caller. */
#pragma once
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void kelp_freep(void *p) { free(*(void **)p); }
static inline void kelp_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void kelp_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
static inline void kelp_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
/* A NULL-terminated array of strings. */
static inline void kelp_strvfreep(char ***v)
{
	if (!*v)
		return;
	for (char **p = *v; *p; p++)
		free(*p);
	free(*v);
}

#define cleanup_free __attribute__((cleanup(kelp_freep)))
#define cleanup_close __attribute__((cleanup(kelp_closep)))
#define cleanup_fclose __attribute__((cleanup(kelp_fclosep)))
#define cleanup_closedir __attribute__((cleanup(kelp_closedirp)))
#define cleanup_strv __attribute__((cleanup(kelp_strvfreep)))

#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_fd;                                                                               \
	})
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p = (p);                                                            \
		(p) = NULL;                                                                        \
		_p;                                                                                \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation failure is not recoverable for a node agent; abort like crun does. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void strv_free(char **v);
size_t strv_len(char *const *v);
