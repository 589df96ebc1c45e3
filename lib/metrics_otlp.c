#include "metrics_otlp.h"
#include "id.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_OBJ, T_ARR, T_STR, T_NUM, T_LIT };

struct sw_otlp_tok {
	unsigned char type;
	size_t start, end;   /* strings: inside the quotes */
	size_t next;         /* index of the first token after this subtree */
};

#define DEPTH_MAX 64

/* A syntax error, with the column where reading stopped. */
static int bad(struct sw_otlp *p, const char *why)
{
	snprintf(p->why, sizeof p->why, "%s at column %zu", why, p->pos + 1);
	return -1;
}

/* Well-formed JSON that is not a usable span line. */
static int unfit(struct sw_otlp *p, const char *why)
{
	snprintf(p->why, sizeof p->why, "%s", why);
	return -1;
}

static void skip_ws(struct sw_otlp *p)
{
	while (p->pos < p->len) {
		char c = p->line[p->pos];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			break;
		p->pos++;
	}
}

static long new_tok(struct sw_otlp *p, int type)
{
	if (p->ntok == p->captok) {
		size_t nc = p->captok ? p->captok * 2 : 256;
		struct sw_otlp_tok *t = realloc(p->tok, nc * sizeof *t);
		if (!t)
			return bad(p, "out of memory");
		p->tok = t;
		p->captok = nc;
	}
	struct sw_otlp_tok *t = &p->tok[p->ntok];
	t->type = (unsigned char)type;
	t->start = p->pos;
	return (long)p->ntok++;
}

static int hex4(const char *s)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= c - '0';
		else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
		else return -1;
	}
	return v;
}

static int scan_string(struct sw_otlp *p)
{
	long t = new_tok(p, T_STR);
	if (t < 0)
		return -1;
	p->pos++;   /* opening quote */
	p->tok[t].start = p->pos;
	const char *s = p->line;
	for (;;) {
		/* the common case: plain bytes up to the next quote or escape */
		while (p->pos < p->len && s[p->pos] != '"' && s[p->pos] != '\\' &&
		       (unsigned char)s[p->pos] >= 0x20)
			p->pos++;
		if (p->pos >= p->len)
			return bad(p, "unterminated string");
		char c = s[p->pos];
		if (c == '"')
			break;
		if (c != '\\')
			return bad(p, "control character in string");
		if (p->pos + 1 >= p->len)
			return bad(p, "unterminated string");
		char e = s[p->pos + 1];
		if (e == 'u') {
			if (p->pos + 6 > p->len || hex4(s + p->pos + 2) < 0)
				return bad(p, "bad \\u escape");
			p->pos += 6;
		} else if (strchr("\"\\/bfnrt", e) && e) {
			p->pos += 2;
		} else {
			return bad(p, "bad escape");
		}
	}
	p->tok[t].end = p->pos++;
	p->tok[t].next = (size_t)t + 1;
	return 0;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int scan_number(struct sw_otlp *p)
{
	long t = new_tok(p, T_NUM);
	if (t < 0)
		return -1;
	const char *s = p->line;
	size_t i = p->pos;
	if (i < p->len && s[i] == '-')
		i++;
	if (i < p->len && s[i] == '0')
		i++;
	else if (i < p->len && is_digit(s[i]))
		while (i < p->len && is_digit(s[i])) i++;
	else
		return bad(p, "bad number");
	if (i < p->len && s[i] == '.') {
		if (++i >= p->len || !is_digit(s[i]))
			return bad(p, "bad number");
		while (i < p->len && is_digit(s[i])) i++;
	}
	if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < p->len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= p->len || !is_digit(s[i]))
			return bad(p, "bad number");
		while (i < p->len && is_digit(s[i])) i++;
	}
	p->tok[t].end = p->pos = i;
	p->tok[t].next = (size_t)t + 1;
	return 0;
}

static int scan_value(struct sw_otlp *p, int depth);

static int scan_container(struct sw_otlp *p, int depth, bool obj)
{
	if (depth > DEPTH_MAX)
		return bad(p, "nested too deeply");
	long t = new_tok(p, obj ? T_OBJ : T_ARR);
	if (t < 0)
		return -1;
	char close = obj ? '}' : ']';
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->line[p->pos] == close) {
		p->pos++;
		p->tok[t].next = p->ntok;
		return 0;
	}
	for (;;) {
		skip_ws(p);
		if (obj) {
			if (p->pos >= p->len || p->line[p->pos] != '"')
				return bad(p, "expected a key");
			if (scan_string(p) < 0)
				return -1;
			skip_ws(p);
			if (p->pos >= p->len || p->line[p->pos] != ':')
				return bad(p, "expected ':'");
			p->pos++;
			skip_ws(p);
		}
		if (scan_value(p, depth + 1) < 0)
			return -1;
		skip_ws(p);
		if (p->pos >= p->len)
			return bad(p, "unexpected end of line");
		char c = p->line[p->pos++];
		if (c == close)
			break;
		if (c != ',')
			return bad(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
	p->tok[t].next = p->ntok;
	return 0;
}

static int scan_literal(struct sw_otlp *p, const char *lit)
{
	size_t n = strlen(lit);
	if (p->len - p->pos < n || memcmp(p->line + p->pos, lit, n))
		return bad(p, "bad literal");
	long t = new_tok(p, T_LIT);
	if (t < 0)
		return -1;
	p->tok[t].end = p->pos += n;
	p->tok[t].next = (size_t)t + 1;
	return 0;
}

static int scan_value(struct sw_otlp *p, int depth)
{
	if (p->pos >= p->len)
		return bad(p, "unexpected end of line");
	switch (p->line[p->pos]) {
	case '{': return scan_container(p, depth, true);
	case '[': return scan_container(p, depth, false);
	case '"': return scan_string(p);
	case 't': return scan_literal(p, "true");
	case 'f': return scan_literal(p, "false");
	case 'n': return scan_literal(p, "null");
	default: return scan_number(p);
	}
}

/* ---- walking the tokens ---- */

static bool key_is(const struct sw_otlp *p, size_t k, const char *key)
{
	const struct sw_otlp_tok *t = &p->tok[k];
	size_t n = strlen(key);
	return t->end - t->start == n && !memcmp(p->line + t->start, key, n);
}

/* Value token of key in object o, or 0 (token 0 is a placeholder, so 0
 * means none throughout). */
static size_t get(const struct sw_otlp *p, size_t o, const char *key)
{
	if (!o || p->tok[o].type != T_OBJ)
		return 0;
	for (size_t k = o + 1; k < p->tok[o].next; k = p->tok[k + 1].next)
		if (key_is(p, k, key))
			return k + 1;
	return 0;
}

static size_t get_type(const struct sw_otlp *p, size_t o, const char *key, int type)
{
	size_t v = get(p, o, key);
	return v && p->tok[v].type == type ? v : 0;
}

/* Unescapes string token t into p->str; returns its offset or -1. */
static long unescape(struct sw_otlp *p, size_t t)
{
	const char *s = p->line + p->tok[t].start;
	size_t n = p->tok[t].end - p->tok[t].start;
	size_t off = p->nstr;
	char *o = p->str + off;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			o[j++] = s[i];
			continue;
		}
		char e = s[++i];
		switch (e) {
		case 'b': o[j++] = '\b'; break;
		case 'f': o[j++] = '\f'; break;
		case 'n': o[j++] = '\n'; break;
		case 'r': o[j++] = '\r'; break;
		case 't': o[j++] = '\t'; break;
		case 'u': {
			long cp = hex4(s + i + 1);
			i += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && i + 2 < n && s[i + 1] == '\\' &&
			    s[i + 2] == 'u') {
				long lo = hex4(s + i + 3);
				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					i += 6;
				}
			}
			if (cp == 0 || (cp >= 0xd800 && cp < 0xe000))
				return -1;   /* NUL or a lone surrogate */
			if (cp < 0x80) {
				o[j++] = (char)cp;
			} else if (cp < 0x800) {
				o[j++] = (char)(0xc0 | (cp >> 6));
				o[j++] = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				o[j++] = (char)(0xe0 | (cp >> 12));
				o[j++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				o[j++] = (char)(0x80 | (cp & 0x3f));
			} else {
				o[j++] = (char)(0xf0 | (cp >> 18));
				o[j++] = (char)(0x80 | ((cp >> 12) & 0x3f));
				o[j++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				o[j++] = (char)(0x80 | (cp & 0x3f));
			}
			break;
		}
		default: o[j++] = e; break;   /* \" \\ \/ */
		}
	}
	if (!sw_utf8_valid(o, j))
		return -1;
	o[j] = 0;
	p->nstr += j + 1;
	return (long)off;
}

/* Unix-nanosecond time: a string of digits (protobuf JSON's int64) or a
 * plain integer. */
static bool get_ns(const struct sw_otlp *p, size_t o, const char *key, int64_t *ns)
{
	size_t v = get(p, o, key);
	if (!v || (p->tok[v].type != T_STR && p->tok[v].type != T_NUM))
		return false;
	const char *s = p->line + p->tok[v].start;
	size_t n = p->tok[v].end - p->tok[v].start;
	if (n == 0 || n > 19)
		return false;
	int64_t r = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]) || r > (INT64_MAX - (s[i] - '0')) / 10)
			return false;   /* not a time sw can hold: no such span */
		r = r * 10 + (s[i] - '0');
	}
	*ns = r;
	return true;
}

static int get_status(const struct sw_otlp *p, size_t span)
{
	size_t st = get_type(p, span, "status", T_OBJ);
	size_t c = st ? get(p, st, "code") : 0;
	if (!c)
		return SW_OTLP_UNSET;
	const char *s = p->line + p->tok[c].start;
	size_t n = p->tok[c].end - p->tok[c].start;
	if (p->tok[c].type == T_NUM && n == 1 && s[0] >= '0' && s[0] <= '2')
		return s[0] - '0';
	if (p->tok[c].type == T_STR) {
		if (key_is(p, c, "STATUS_CODE_OK")) return SW_OTLP_OK;
		if (key_is(p, c, "STATUS_CODE_ERROR")) return SW_OTLP_ERROR;
		if (key_is(p, c, "STATUS_CODE_UNSET")) return SW_OTLP_UNSET;
	}
	return -1;
}

/* service.name from resource.attributes, as an offset into p->str. */
static long service_name(struct sw_otlp *p, size_t rs)
{
	size_t attrs = get_type(p, get_type(p, rs, "resource", T_OBJ), "attributes", T_ARR);
	for (size_t a = attrs ? attrs + 1 : 0; attrs && a < p->tok[attrs].next; a = p->tok[a].next) {
		size_t k = get_type(p, a, "key", T_STR);
		if (!k || !key_is(p, k, "service.name"))
			continue;
		size_t v = get_type(p, get_type(p, a, "value", T_OBJ), "stringValue", T_STR);
		if (v)
			return unescape(p, v);
	}
	return -2;
}

static int add_span(struct sw_otlp *p, size_t sp, long service)
{
	if (p->tok[sp].type != T_OBJ)
		return unfit(p, "a span is not an object");
	size_t nm = get_type(p, sp, "name", T_STR);
	if (!nm)
		return unfit(p, "a span has no name");
	long name = unescape(p, nm);
	if (name < 0)
		return unfit(p, "a span name is not valid UTF-8");
	struct sw_otlp_span s = {0};
	if (!get_ns(p, sp, "startTimeUnixNano", &s.start_ns) ||
	    !get_ns(p, sp, "endTimeUnixNano", &s.end_ns))
		return unfit(p, "a span lacks startTimeUnixNano or endTimeUnixNano");
	if (s.end_ns < s.start_ns)
		return unfit(p, "a span ends before it starts");
	if ((s.status = get_status(p, sp)) < 0)
		return unfit(p, "a span has a bad status code");
	if (p->nspan == p->capspan) {
		size_t nc = p->capspan ? p->capspan * 2 : 16;
		struct sw_otlp_span *n = realloc(p->span, nc * sizeof *n);
		if (!n)
			return unfit(p, "out of memory");
		p->span = n;
		p->capspan = nc;
	}
	/* offsets now; pointers once p->str stops moving */
	s.name = (const char *)(uintptr_t)name;
	s.service = (const char *)(intptr_t)service;
	p->span[p->nspan++] = s;
	return 0;
}

static int walk(struct sw_otlp *p, size_t rss)
{
	for (size_t rs = rss + 1; rs < p->tok[rss].next; rs = p->tok[rs].next) {
		if (p->tok[rs].type != T_OBJ)
			return unfit(p, "a resourceSpans entry is not an object");
		long service = service_name(p, rs);
		if (service == -1)
			return unfit(p, "service.name is not valid UTF-8");
		size_t ss = get(p, rs, "scopeSpans");
		if (!ss)
			ss = get(p, rs, "instrumentationLibrarySpans");
		if (!ss)
			continue;
		if (p->tok[ss].type != T_ARR)
			return unfit(p, "scopeSpans is not an array");
		for (size_t sc = ss + 1; sc < p->tok[ss].next; sc = p->tok[sc].next) {
			size_t spans = get(p, sc, "spans");
			if (!spans)
				continue;
			if (p->tok[spans].type != T_ARR)
				return unfit(p, "spans is not an array");
			for (size_t sp = spans + 1; sp < p->tok[spans].next; sp = p->tok[sp].next)
				if (add_span(p, sp, service) < 0)
					return -1;
		}
	}
	return 0;
}

int sw_otlp_line(struct sw_otlp *p, const char *line, size_t len)
{
	p->ntok = p->nstr = p->nspan = 0;
	p->line = line;
	p->len = len;
	p->pos = 0;
	p->why[0] = 0;
	/* the fast exit for data lines */
	if (len < 16 || !memmem(line, len, "\"resourceSpans\"", 15))
		return SW_OTLP_OTHER;
	if (p->capstr < len + 1) {
		char *s = realloc(p->str, len + 1);
		if (!s) {
			snprintf(p->why, sizeof p->why, "out of memory");
			return SW_OTLP_BAD;
		}
		p->str = s;
		p->capstr = len + 1;
	}
	if (new_tok(p, T_LIT) < 0)
		return SW_OTLP_BAD;
	skip_ws(p);
	if (p->pos >= len || line[p->pos] != '{')
		return SW_OTLP_OTHER;   /* only an object can be a span line */
	if (scan_value(p, 0) < 0)
		return SW_OTLP_BAD;
	skip_ws(p);
	if (p->pos != len)
		return bad(p, "trailing characters"), SW_OTLP_BAD;
	size_t rss = get(p, 1, "resourceSpans");
	if (!rss)
		return SW_OTLP_OTHER;   /* a data line that mentions the word */
	if (p->tok[rss].type != T_ARR)
		return unfit(p, "resourceSpans is not an array"), SW_OTLP_BAD;
	if (walk(p, rss) < 0)
		return SW_OTLP_BAD;
	for (size_t i = 0; i < p->nspan; i++) {
		long svc = (long)(intptr_t)p->span[i].service;
		p->span[i].name = p->str + (uintptr_t)p->span[i].name;
		p->span[i].service = svc >= 0 ? p->str + svc : "unknown_service";
	}
	return SW_OTLP_SPANS;
}

void sw_otlp_free(struct sw_otlp *p)
{
	free(p->tok);
	free(p->str);
	free(p->span);
	memset(p, 0, sizeof *p);
}
