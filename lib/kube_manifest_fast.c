#include "kube_manifest_fast.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

/* the tree builder refuses more than 256 levels first */
#define KMF_DEPTH_MAX 300
/* libyaml looks for a simple key's ':' within 1024 characters */
#define KMF_KEY_MAX 1000

struct block {
	size_t indent;
	bool seq, indentless; /* indentless: a sequence at its parent key's column ("ports:\n- a") */
};

struct scan {
	kmf_event_fn fn;
	void *ctx;
	char *scratch; /* the scalar being handed over, NUL-terminated */
	struct block st[KMF_DEPTH_MAX];
	int depth;
	bool in_doc, doc_content;
	/* a "key:" with nothing after it: a nested block, an indentless sequence or null follows */
	bool pending;
	size_t pending_indent, pending_col;
	const char *l; /* the current line, its number (0-based, as libyaml's marks) */
	size_t line;
};

static bool ok_byte(unsigned char c)
{
	/* printable ASCII: tabs, CR, control and non-ASCII bytes are libyaml's business */
	return c >= 0x20 && c < 0x7f;
}

static bool only_spaces(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ')
			return false;
	return true;
}

static void event_at(const struct scan *s, yaml_event_type_t t, size_t col, yaml_event_t *e)
{
	memset(e, 0, sizeof(*e));
	e->type = t;
	e->start_mark.line = s->line;
	e->start_mark.column = col;
	e->end_mark = e->start_mark;
}

static int emit(struct scan *s, yaml_event_type_t t, size_t col)
{
	yaml_event_t e;
	event_at(s, t, col, &e);
	if (t == YAML_MAPPING_START_EVENT)
		e.data.mapping_start.implicit = 1;
	else if (t == YAML_SEQUENCE_START_EVENT)
		e.data.sequence_start.implicit = 1;
	return s->fn(s->ctx, &e);
}

static int emit_scalar(struct scan *s, size_t len, yaml_scalar_style_t style, size_t col)
{
	yaml_event_t e;
	event_at(s, YAML_SCALAR_EVENT, col, &e);
	s->scratch[len] = '\0';
	e.data.scalar.value = (yaml_char_t *)s->scratch;
	e.data.scalar.length = len;
	e.data.scalar.plain_implicit = style == YAML_PLAIN_SCALAR_STYLE;
	e.data.scalar.quoted_implicit = style != YAML_PLAIN_SCALAR_STYLE;
	e.data.scalar.style = style;
	return s->fn(s->ctx, &e);
}

static int push(struct scan *s, bool seq, bool indentless, size_t indent, size_t col)
{
	if (s->depth >= KMF_DEPTH_MAX)
		return KMF_GIVE_UP;
	s->st[s->depth++] = (struct block){indent, seq, indentless};
	return emit(s, seq ? YAML_SEQUENCE_START_EVENT : YAML_MAPPING_START_EVENT, col);
}

static int pop(struct scan *s, size_t col)
{
	bool seq = s->st[--s->depth].seq;
	return emit(s, seq ? YAML_SEQUENCE_END_EVENT : YAML_MAPPING_END_EVENT, col);
}

/* YAML's indicators: no plain scalar starts with one */
static const bool indicator[256] = {
	['#'] = 1, ['&'] = 1, ['*'] = 1, ['!'] = 1, ['|'] = 1, ['>'] = 1, ['%'] = 1, ['@'] = 1, ['`'] = 1,
	[','] = 1, ['['] = 1, [']'] = 1, ['{'] = 1, ['}'] = 1, ['"'] = 1, ['\''] = 1, ['?'] = 1, [':'] = 1,
};

/* Can a plain scalar start at p? Not at an indicator, nor at "- ", "? ", ": ". */
static bool plain_start(const char *p, const char *end)
{
	unsigned char c = (unsigned char)*p;
	if (!ok_byte(c) || indicator[c])
		return false;
	return !(c == '-' && (p + 1 == end || p[1] == ' '));
}

#define COLON 2
/* The ':' ending a plain key on this line: COLON with *colon set, 0 when there is none, or
 * KMF_GIVE_UP for a byte or a comment the subset leaves to libyaml. */
static int find_colon(const char *p, const char *end, const char **colon)
{
	for (const char *q = p; q < end; q++) {
		unsigned char c = (unsigned char)*q;
		if (!ok_byte(c) || (c == '#' && q > p && q[-1] == ' '))
			return KMF_GIVE_UP;
		if (c == ':' && (q + 1 == end || q[1] == ' ')) {
			*colon = q;
			return COLON;
		}
	}
	return 0;
}

static int plain(struct scan *s, const char *p, const char *end, size_t col)
{
	const char *colon;
	int r = find_colon(p, end, &colon);
	if (r != 0) /* "a: b: c" is a YAML error, a comment is libyaml's */
		return KMF_GIVE_UP;
	while (end > p && end[-1] == ' ')
		end--;
	memcpy(s->scratch, p, (size_t)(end - p));
	return emit_scalar(s, (size_t)(end - p), YAML_PLAIN_SCALAR_STYLE, col);
}

/* 'it''s' and "text": one line, no escapes, nothing but spaces after the closing quote. */
static int quoted(struct scan *s, const char *p, const char *end, size_t col)
{
	char q = *p;
	size_t o = 0;
	const char *x = p + 1;
	for (;; x++) {
		if (x == end)
			return KMF_GIVE_UP; /* a multi-line scalar */
		unsigned char c = (unsigned char)*x;
		if (!ok_byte(c) || (q == '"' && c == '\\'))
			return KMF_GIVE_UP;
		if (c == (unsigned char)q) {
			if (q == '\'' && x + 1 < end && x[1] == '\'') {
				s->scratch[o++] = '\'';
				x++;
				continue;
			}
			break;
		}
		s->scratch[o++] = (char)c;
	}
	if (!only_spaces(x + 1, end))
		return KMF_GIVE_UP;
	return emit_scalar(s, o, q == '"' ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_SINGLE_QUOTED_SCALAR_STYLE, col);
}

/* A value that starts at p (not a space) and ends the line. */
static int value(struct scan *s, const char *p, const char *end)
{
	size_t col = (size_t)(p - s->l);
	if (*p == '"' || *p == '\'')
		return quoted(s, p, end, col);
	if (*p == '{' || *p == '[') {
		bool map = *p == '{';
		if (p + 1 == end || p[1] != (map ? '}' : ']') || !only_spaces(p + 2, end))
			return KMF_GIVE_UP;
		int r = emit(s, map ? YAML_MAPPING_START_EVENT : YAML_SEQUENCE_START_EVENT, col);
		return r ? r : emit(s, map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT, col + 1);
	}
	if (!plain_start(p, end))
		return KMF_GIVE_UP;
	return plain(s, p, end, col);
}

/* "key: value" or "key:" at p, the column of the mapping on top. */
static int key_line(struct scan *s, const char *p, const char *end)
{
	const char *colon;
	if (!plain_start(p, end) || find_colon(p, end, &colon) != COLON)
		return KMF_GIVE_UP;
	const char *k = colon;
	while (k > p && k[-1] == ' ')
		k--;
	if (k - p > KMF_KEY_MAX)
		return KMF_GIVE_UP;
	memcpy(s->scratch, p, (size_t)(k - p));
	int r = emit_scalar(s, (size_t)(k - p), YAML_PLAIN_SCALAR_STYLE, (size_t)(p - s->l));
	if (r)
		return r;
	const char *v = colon + 1;
	while (v < end && *v == ' ')
		v++;
	if (v == end) {
		s->pending = true;
		s->pending_indent = (size_t)(p - s->l);
		s->pending_col = (size_t)(v - s->l);
		return 0;
	}
	return value(s, v, end);
}

/* "- value" or "- key: value" (a mapping opened at the key's column); p is at the '-'. */
static int item(struct scan *s, const char *p, const char *end)
{
	const char *c = p + 1;
	while (c < end && *c == ' ')
		c++;
	if (c == end || (*c == '-' && (c + 1 == end || c[1] == ' ')))
		return KMF_GIVE_UP; /* a nested block after "-", or "- - x" */
	const char *colon;
	if (plain_start(c, end)) {
		int r = find_colon(c, end, &colon);
		if (r == KMF_GIVE_UP)
			return r;
		if (r == COLON) {
			size_t col = (size_t)(c - s->l);
			if ((r = push(s, false, false, col, col)))
				return r;
			return key_line(s, c, end);
		}
	}
	return value(s, c, end);
}

static int null_value(struct scan *s, size_t col)
{
	return emit_scalar(s, 0, YAML_PLAIN_SCALAR_STYLE, col);
}

static int doc_end(struct scan *s)
{
	int r = 0;
	if (s->pending) {
		s->pending = false;
		r = null_value(s, s->pending_col);
	}
	while (!r && s->depth > 0)
		r = pop(s, 0);
	/* an explicit document with nothing in it is an empty scalar, as libyaml reads it */
	if (!r && !s->doc_content)
		r = null_value(s, 0);
	s->in_doc = false;
	return r ? r : emit(s, YAML_DOCUMENT_END_EVENT, 0);
}

static int one_line(struct scan *s, const char *end)
{
	const char *l = s->l, *p = l;
	while (p < end && *p == ' ')
		p++;
	if (p == end)
		return 0; /* blank */
	size_t ind = (size_t)(p - l);
	int r;
	if (ind == 0 && end - p >= 3 && (memcmp(p, "---", 3) == 0 || memcmp(p, "...", 3) == 0)) {
		if (*p == '.' || !only_spaces(p + 3, end))
			return KMF_GIVE_UP; /* "...", "--- a: b", "----" */
		if (s->in_doc && (r = doc_end(s)))
			return r;
		s->in_doc = true;
		s->doc_content = false;
		return emit(s, YAML_DOCUMENT_START_EVENT, 0);
	}
	bool dash = *p == '-' && (p + 1 == end || p[1] == ' ');
	if (!s->in_doc) {
		s->in_doc = true;
		s->doc_content = false;
		if ((r = emit(s, YAML_DOCUMENT_START_EVENT, 0)))
			return r;
	}
	if (s->depth == 0) {
		/* the root: a mapping at column 0 (anything else is libyaml's) */
		if (s->doc_content || ind != 0 || dash)
			return KMF_GIVE_UP;
		s->doc_content = true;
		if ((r = push(s, false, false, 0, 0)))
			return r;
		return key_line(s, p, end);
	}
	if (s->pending) {
		s->pending = false;
		if (ind > s->pending_indent || (ind == s->pending_indent && dash)) {
			if ((r = push(s, dash, ind == s->pending_indent, ind, ind)))
				return r;
			return dash ? item(s, p, end) : key_line(s, p, end);
		}
		if ((r = null_value(s, s->pending_col)))
			return r;
	}
	/* close the blocks this line is left of */
	for (;;) {
		const struct block *t = &s->st[s->depth - 1];
		if (t->indent > ind || (t->indentless && t->indent == ind && !dash)) {
			if ((r = pop(s, ind)))
				return r;
			continue;
		}
		break;
	}
	const struct block *t = &s->st[s->depth - 1];
	/* right of the block on top with no key waiting: a continued scalar or an error */
	if (t->indent != ind || t->seq != dash)
		return KMF_GIVE_UP;
	return dash ? item(s, p, end) : key_line(s, p, end);
}

int kmf_scan(const char *buf, size_t len, kmf_event_fn fn, void *ctx)
{
	struct scan *s = calloc(1, sizeof(*s));
	char *scratch = malloc(len + 1);
	int r = KMF_GIVE_UP;
	if (!s || !scratch)
		goto out;
	s->fn = fn;
	s->ctx = ctx;
	s->scratch = scratch;
	const char *p = buf, *end = buf + len;
	r = 0;
	while (!r && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		s->l = p;
		r = one_line(s, le);
		p = nl ? nl + 1 : end;
		s->line++;
	}
	if (!r && s->in_doc)
		r = doc_end(s);
	if (!r)
		r = emit(s, YAML_STREAM_END_EVENT, 0);
out:
	free(scratch);
	free(s);
	return r;
}

/* ---- JSON, through yajl ------------------------------------------------------------------
 * `kubectl get -o json` and an API server's answers: libyaml reads JSON as flow YAML at a
 * fraction of yajl's speed. The events are the ones libyaml gives for JSON: strings and keys
 * double-quoted (never typed), numbers, true, false and null plain. */

struct jscan {
	struct scan s;
	yajl_handle h;
	const char *buf;
	size_t len;
	size_t off; /* up to where line breaks are counted into s.line */
	int rc;
};

/* The line of the token yajl just read. Line breaks as libyaml counts them: LF, CR LF, and a
 * CR alone (NEL, LS and PS make the buffer libyaml's: json_for_libyaml). */
static void jline(struct jscan *j)
{
	size_t end = yajl_get_bytes_consumed(j->h);
	for (; j->off < end; j->off++) {
		char c = j->buf[j->off];
		j->s.line += c == '\n' || (c == '\r' && (j->off + 1 >= j->len || j->buf[j->off + 1] != '\n'));
	}
}

static int jdone(struct jscan *j, int r)
{
	j->rc = r;
	return r == 0; /* 0 cancels the parse */
}

static int jscalar(struct jscan *j, const char *v, size_t len, yaml_scalar_style_t style)
{
	jline(j);
	memcpy(j->s.scratch, v, len);
	return jdone(j, emit_scalar(&j->s, len, style, 0));
}

static int j_null(void *ctx)
{
	return jscalar(ctx, "null", 4, YAML_PLAIN_SCALAR_STYLE);
}

static int j_bool(void *ctx, int b)
{
	return b ? jscalar(ctx, "true", 4, YAML_PLAIN_SCALAR_STYLE) : jscalar(ctx, "false", 5, YAML_PLAIN_SCALAR_STYLE);
}

static int j_number(void *ctx, const char *v, size_t len)
{
	return jscalar(ctx, v, len, YAML_PLAIN_SCALAR_STYLE);
}

static int j_string(void *ctx, const unsigned char *v, size_t len)
{
	return jscalar(ctx, (const char *)v, len, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

static int jevent(void *ctx, yaml_event_type_t t)
{
	struct jscan *j = ctx;
	jline(j);
	return jdone(j, emit(&j->s, t, 0));
}

static int j_start_map(void *ctx)
{
	return jevent(ctx, YAML_MAPPING_START_EVENT);
}

static int j_end_map(void *ctx)
{
	return jevent(ctx, YAML_MAPPING_END_EVENT);
}

static int j_start_array(void *ctx)
{
	return jevent(ctx, YAML_SEQUENCE_START_EVENT);
}

static int j_end_array(void *ctx)
{
	return jevent(ctx, YAML_SEQUENCE_END_EVENT);
}

static const yajl_callbacks jcallbacks = {
	.yajl_null = j_null,
	.yajl_boolean = j_bool,
	.yajl_number = j_number,
	.yajl_string = j_string,
	.yajl_start_map = j_start_map,
	.yajl_map_key = j_string,
	.yajl_end_map = j_end_map,
	.yajl_start_array = j_start_array,
	.yajl_end_array = j_end_array,
};

/* JSON that libyaml reads otherwise than yajl goes to libyaml, so that both readers give the same
 * tree wherever both accept an input: \u escapes of UTF-16 surrogates (which JSON allows in
 * pairs and libyaml refuses), and raw NEL, LS and PS (U+0085, U+2028, U+2029), which libyaml
 * takes for line breaks, also inside a quoted string, where it folds them into a space. */
static bool json_for_libyaml(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\\') {
			if (i + 3 < len && (buf[i + 1] == 'u' || buf[i + 1] == 'U') && (buf[i + 2] == 'd' || buf[i + 2] == 'D') &&
			    buf[i + 3] && strchr("89abAB", buf[i + 3]))
				return true;
			i++; /* the escaped character, maybe a backslash */
		} else if (c == 0xc2 && i + 1 < len && (unsigned char)buf[i + 1] == 0x85) {
			return true;
		} else if (c == 0xe2 && i + 2 < len && (unsigned char)buf[i + 1] == 0x80 &&
			   ((unsigned char)buf[i + 2] == 0xa8 || (unsigned char)buf[i + 2] == 0xa9)) {
			return true;
		}
	}
	return false;
}

int kmf_scan_json(const char *buf, size_t len, kmf_event_fn fn, void *ctx)
{
	if (json_for_libyaml(buf, len))
		return KMF_GIVE_UP;
	struct jscan *j = calloc(1, sizeof(*j));
	char *scratch = malloc(len + 1);
	int r = KMF_GIVE_UP;
	if (!j || !scratch)
		goto out;
	j->s.fn = fn;
	j->s.ctx = ctx;
	j->s.scratch = scratch;
	j->buf = buf;
	j->len = len;
	if (!(j->h = yajl_alloc(&jcallbacks, NULL, j)))
		goto out;
	if ((r = emit(&j->s, YAML_DOCUMENT_START_EVENT, 0)))
		goto out;
	yajl_status st = yajl_parse(j->h, (const unsigned char *)buf, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(j->h);
	if (st == yajl_status_client_canceled)
		r = j->rc;
	else if (st != yajl_status_ok)
		r = KMF_GIVE_UP; /* not JSON: libyaml reads it, and says what is wrong */
	else if (!(r = emit(&j->s, YAML_DOCUMENT_END_EVENT, 0)))
		r = emit(&j->s, YAML_STREAM_END_EVENT, 0);
out:
	if (j && j->h)
		yajl_free(j->h);
	free(scratch);
	free(j);
	return r;
}
