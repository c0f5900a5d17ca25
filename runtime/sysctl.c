#include "sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include <linux/openat2.h>

#include "fs.h"

/* Which namespace a sysctl belongs to, or -1 when it is global (never allowed). */
static int sysctl_ns(const char *key)
{
	static const char *const ipc[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
					   "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
					   NULL };
	for (const char *const *p = ipc; *p; p++)
		if (strcmp(key, *p) == 0)
			return NS_IPC;
	if (strncmp(key, "fs.mqueue.", 10) == 0)
		return NS_IPC;
	if (strncmp(key, "net.", 4) == 0)
		return NS_NET;
	if (strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0)
		return NS_UTS;
	return -1;
}

/* "net/ipv4/ip_forward" and "net.ipv4.ip_forward" name the same sysctl. Only the characters
 * of real sysctl names, no empty or ".." components. */
static int normalize_key(const char *in, char *out, size_t size)
{
	size_t n = strlen(in);
	if (n == 0 || n >= size)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '/')
			c = '.';
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
			  c == '-' || c == '.';
		if (!ok)
			return -1;
		out[i] = c;
	}
	out[n] = '\0';
	if (out[0] == '.' || out[n - 1] == '.' || strstr(out, ".."))
		return -1;
	return 0;
}

/* The runtime's own namespace of type t: a container "owns" a namespace only if it is new or a
 * joined one that is not the runtime's (the host's). */
static bool owns(const struct spec_linux *l, int t)
{
	if (!l->ns[t].present)
		return false;
	if (!l->ns[t].path)
		return true;
	char own[64];
	struct stat a, b;
	snprintf(own, sizeof(own), "/proc/self/ns/%s", ns_proc_names[t]);
	if (stat(l->ns[t].path, &a) < 0 || stat(own, &b) < 0)
		return false;
	return a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

int sysctl_validate(const struct spec *s, struct kelp_err *err)
{
	const struct spec_linux *l = &s->linux_;
	for (size_t i = 0; l->sysctl_keys && l->sysctl_keys[i]; i++) {
		const char *k = l->sysctl_keys[i], *v = l->sysctl_values[i];
		char key[256];
		if (normalize_key(k, key, sizeof(key)) < 0)
			return kelp_fail(err, EINVAL, "linux.sysctl.%s: not a valid sysctl name", k);
		/* a value is one setting: nothing that a writer or a later parser could split */
		if (strpbrk(v, "\n\r=") || strlen(v) > 4096)
			return kelp_fail(err, EINVAL, "linux.sysctl.%s: value '%s' is not a single setting", k, v);
		int t = sysctl_ns(key);
		if (t < 0)
			return kelp_fail(err, EPERM, "linux.sysctl.%s: not a namespaced sysctl, refused", k);
		if (!owns(l, t))
			return kelp_fail(err, EPERM, "linux.sysctl.%s: needs the container's own %s namespace", k,
					 ns_type_names[t]);
	}
	return 0;
}

int sysctl_apply(const struct spec *s, struct kelp_err *err)
{
	const struct spec_linux *l = &s->linux_;
	for (size_t i = 0; l->sysctl_keys && l->sysctl_keys[i]; i++) {
		char key[256], path[300];
		if (normalize_key(l->sysctl_keys[i], key, sizeof(key)) < 0)
			return kelp_fail(err, EINVAL, "linux.sysctl.%s: not a valid sysctl name", l->sysctl_keys[i]);
		for (char *p = key; *p; p++)
			if (*p == '.')
				*p = '/';
		snprintf(path, sizeof(path), "/proc/sys/%s", key);
		/* no symlinks: /proc/sys has none, so any found is not a sysctl */
		cleanup_close int fd = kelp_openat2(AT_FDCWD, path, O_WRONLY | O_TRUNC, 0,
						    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, err);
		if (fd < 0)
			return kelp_error_wrap(err, "sysctl %s", l->sysctl_keys[i]);
		const char *v = l->sysctl_values[i];
		if (kelp_write_all(fd, v, strlen(v)) < 0)
			return kelp_error(err, errno, "sysctl %s = %s", l->sysctl_keys[i], v);
	}
	return 0;
}
