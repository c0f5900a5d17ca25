#include "ref.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "digest.h"

/* A path component: [a-z0-9]+ separated by ".", "_", "__" or runs of "-". */
static bool component_ok(const char *s, size_t n)
{
	if (n == 0 || (!islower((unsigned char)s[0]) && !isdigit((unsigned char)s[0])))
		return false;
	for (size_t i = 0; i < n;) {
		char c = s[i];
		if (islower((unsigned char)c) || isdigit((unsigned char)c)) {
			i++;
			continue;
		}
		size_t sep = i;
		if (c == '.' || c == '_') {
			i++;
			if (c == '_' && i < n && s[i] == '_')
				i++;
		} else if (c == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == n || i == sep || !(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
			return false;
	}
	return true;
}

static bool domain_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t host_len = colon ? (size_t)(colon - s) : strlen(s);
	if (host_len == 0)
		return false;
	for (size_t i = 0; i < host_len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	if (colon) {
		if (!colon[1] || strlen(colon + 1) > 5)
			return false;
		for (const char *p = colon + 1; *p; p++)
			if (!isdigit((unsigned char)*p))
				return false;
	}
	return true;
}

static bool tag_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

void kimg_ref_free(struct kimg_ref *r)
{
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	free(r->name);
	free(r->full);
	memset(r, 0, sizeof(*r));
}

int kimg_ref_parse(const char *s, struct kimg_ref *ret, struct kelp_err *err)
{
	if (!s || !*s)
		return kelp_fail(err, EINVAL, "image reference is empty");
	if (strlen(s) > 512)
		return kelp_fail(err, EINVAL, "image reference %.40s...: longer than 512 characters", s);
	cleanup_free char *copy = xstrdup(s);
	cleanup_free char *digest = NULL, *tag = NULL, *domain = NULL, *path = NULL;
	char *at = strchr(copy, '@');
	if (at) {
		*at = '\0';
		if (!kimg_digest_valid(at + 1))
			return kelp_fail(err, EINVAL, "image reference %s: bad digest %s (want sha256:<64 hex digits>)", s, at + 1);
		digest = xstrdup(at + 1);
	}
	char *slash = strrchr(copy, '/');
	char *colon = strrchr(slash ? slash : copy, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_ok(colon + 1))
			return kelp_fail(err, EINVAL, "image reference %s: bad tag \"%s\"", s, colon + 1);
		tag = xstrdup(colon + 1);
	}
	char *first_slash = strchr(copy, '/');
	const char *rest = copy;
	if (first_slash) {
		size_t n = (size_t)(first_slash - copy);
		bool is_domain = memchr(copy, '.', n) || memchr(copy, ':', n) || (n == 9 && !memcmp(copy, "localhost", 9));
		for (size_t i = 0; i < n && !is_domain; i++)
			if (isupper((unsigned char)copy[i]))
				is_domain = true;
		if (is_domain) {
			domain = strndup(copy, n);
			if (!domain)
				abort();
			rest = first_slash + 1;
		}
	}
	if (!domain)
		domain = xstrdup("docker.io");
	if (!domain_ok(domain))
		return kelp_fail(err, EINVAL, "image reference %s: bad registry host \"%s\"", s, domain);
	if (!strcmp(domain, "index.docker.io")) {
		free(domain);
		domain = xstrdup("docker.io");
	}
	if (!strcmp(domain, "docker.io") && !strchr(rest, '/'))
		path = xasprintf("library/%s", rest);
	else
		path = xstrdup(rest);
	if (!*rest)
		return kelp_fail(err, EINVAL, "image reference %s: no repository name", s);
	for (const char *p = path; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!component_ok(p, n))
			return kelp_fail(err, EINVAL, "image reference %s: bad repository name \"%s\" (lowercase letters, digits and separators . _ __ -)", s, path);
		p += n + (e ? 1 : 0);
		if (e && !*p)
			return kelp_fail(err, EINVAL, "image reference %s: repository name ends with /", s);
	}
	if (!tag && !digest)
		tag = xstrdup("latest");
	struct kimg_ref r = {0};
	r.name = xasprintf("%s/%s", domain, path);
	r.full = xasprintf("%s%s%s%s%s", r.name, tag ? ":" : "", tag ? tag : "", digest ? "@" : "", digest ? digest : "");
	r.domain = TAKE_PTR(domain);
	r.path = TAKE_PTR(path);
	r.tag = TAKE_PTR(tag);
	r.digest = TAKE_PTR(digest);
	*ret = r;
	return 0;
}

const char *kimg_ref_registry_host(const char *domain)
{
	return strcmp(domain, "docker.io") ? domain : "registry-1.docker.io";
}
