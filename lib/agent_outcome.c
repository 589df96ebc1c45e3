/* agent_outcome.c — what the commands of `sw-agent run` came to
 * (agent_run_int.h): each item's outcome from its command's exit and
 * output, or from what a batch's command said of each of its items, told
 * to the queue in as few commits as can be. */
#include "agent_run_int.h"
#include "json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* ---- outcomes ----------------------------------------------------------- */

/* Replaces bytes that are not UTF-8 by U+FFFD, so any output can be kept
 * as a JSON string. */
json_t *run_utf8_string(const char *s, size_t n)
{
	if (sw_utf8_valid(s, n))
		return json_stringn(s, n);
	char *b = malloc(n * 3 + 1);
	if (!b)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t k = 1;
		while (k <= 4 && i + k <= n && !sw_utf8_valid(s + i, k))
			k++;
		if (k <= 4 && i + k <= n) {
			memcpy(b + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(b + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	json_t *j = json_stringn(b, o);
	free(b);
	return j;
}

/* stdout as the result: JSON when it parses, else the text with one
 * trailing newline removed; nothing for empty output.  room: the bytes of
 * JSON the item can still take (see SW_ITEM_SLACK); a result over it is
 * cut as if the output had been longer than RESULT_MAX. */
static json_t *result_of(struct slot *s, size_t room)
{
	if (!s->outlen)
		return NULL;
	if (s->outlen + 2 > room) {
		/* an escaped byte takes at most 6 */
		s->outlen = room > 16 ? (room - 16) / 6 : 0;
		s->truncated = true;
		if (!s->outlen)
			return NULL;
	}
	json_t *j = s->truncated ? NULL : sw_json_parse(s->out, s->outlen, NULL);
	if (j)
		return j;
	size_t n = s->outlen;
	if (!s->truncated && s->out[n - 1] == '\n')
		n--;
	return run_utf8_string(s->out, n);
}

static void error_of(struct slot *s, char *buf, size_t n)
{
	int st = s->status;
	char what[64];
	if (WIFSIGNALED(st))
		snprintf(what, sizeof what, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(what, sizeof what, "exit status %d", WEXITSTATUS(st));
	size_t len = s->errlen;
	const char *tail = s->err;
	if (len > ERR_TAIL) {
		tail += len - ERR_TAIL;
		len = ERR_TAIL;
	}
	while (len && (tail[len - 1] == '\n' || tail[len - 1] == '\r'))
		len--;
	/* the tail may start inside a character, or hold any bytes at all:
	 * the error is kept as a JSON string, so make it valid UTF-8 */
	json_t *t = run_utf8_string(tail, len);
	size_t tl = t ? json_string_length(t) : 0;
	int off = snprintf(buf, n, "%s%s", what, tl ? ": " : "");
	if (t && off > 0 && (size_t)off < n) {
		memcpy(buf + off, json_string_value(t), tl < n - (size_t)off ? tl + 1 : n - (size_t)off);
		buf[n - 1] = 0;
		for (char *p = buf + off; p < buf + n - 1 && p < buf + off + tl; p++)
			if (!*p)
				*p = ' ';   /* a NUL would end the C string early */
	}
	json_decref(t);
}

static int exit_code_of(int st)
{
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* The bytes of JSON a result of item may take (see SW_ITEM_SLACK). */
static size_t result_room(const struct run *r, const json_t *item)
{
	size_t have = json_dumpb(item, NULL, 0, JSON_COMPACT);
	size_t cap = r->q.item_max + SW_ITEM_SLACK;
	return cap > have + 1024 ? cap - have - 1024 : 0;
}

static void count_state(struct run *r, const char *state)
{
	if (!strcmp(state, "done")) r->done++;
	else if (!strcmp(state, "released")) r->released++;
	else if (!strcmp(state, "lost")) r->lost++;
	else r->failed++;
}

/* What the queue is told of one item whose command and tree are gone,
 * and what it answered. */
struct told {
	bool call;                /* the queue is told (not for a lost claim) */
	enum sw_fin_verb verb;
	json_t *res;              /* done: its result (owned) */
	const char *state;
	int code;
	char err[3 * ERR_TAIL + 64];   /* U+FFFD takes 3 bytes */
};

/* The item's outcome, from how its command ended. */
static void plan_item(struct run *r, struct slot *s, struct told *t)
{
	t->code = exit_code_of(s->status);
	t->call = true;
	if (s->abandoned && !strcmp(s->abandoned, "released")) {
		t->verb = SW_FIN_RELEASE;
		t->state = "released";
	} else if (s->abandoned) {
		t->call = false;
		t->state = s->abandoned;
	} else if (WIFEXITED(s->status) && t->code == 0) {
		size_t room = result_room(r, s->item);
		json_t *res = result_of(s, room);
		if (res && json_dumpb(res, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) > room) {
			/* escaping made it larger than its bytes: cut it further */
			json_decref(res);
			s->outlen = room > 16 ? (room - 16) / 6 : 0;
			s->truncated = true;
			res = s->outlen ? result_of(s, room) : NULL;
		}
		t->verb = SW_FIN_DONE;
		t->res = res;
		t->state = "done";
	} else if (WIFEXITED(s->status) && t->code == EX_TEMPFAIL) {
		t->verb = SW_FIN_RELEASE;
		t->state = "released";
	} else {
		error_of(s, t->err, sizeof t->err);
		t->verb = SW_FIN_FAIL;
		t->state = "pending";
	}
}

/* The queue has the item's outcome (f: what it answered): count it, log
 * it, end its span, print its line. */
static void told_item(struct run *r, struct slot *s, struct told *t, const struct sw_fin *f)
{
	if (t->call && f->rc) {
		/* the lease ran out (this agent stalled) and someone else may
		 * have the item now: its outcome is theirs to report */
		sw_warn("item %s: %s", s->id, f->err.msg);
		t->state = "lost";
	} else if (t->call && t->verb == SW_FIN_FAIL && f->out) {
		t->state = sw_json_str(f->out, "state");
	}
	count_state(r, t->state);
	if (r->o->once)
		r->once_status = t->code;
	run_joblog_line(r, s);
	sw_span_int(&s->sp, "sw.exit_code", t->code);
	sw_span_str(&s->sp, "sw.item.state", t->state);
	sw_span_end(&s->sp, strcmp(t->state, "done") != 0, *t->err ? t->err : NULL);
	run_report(r, s, &s->b[0], t->state, t->code, t->err);
	run_slot_clear(s);
	r->claims_dirty = true;
}

static void finish_batch(struct run *r, struct slot *s);

/* The items of r->fin, whose commands and trees are gone: their outcomes
 * go to the queue in one commit (group commit: one sync for all of them,
 * every one durable before any is reported), then each is reported. */
void run_finish_group(struct run *r)
{
	size_t n = r->nfin, m = 0;
	r->nfin = 0;
	if (r->o->batch) {   /* a batch commits its items together already */
		for (size_t i = 0; i < n; i++)
			finish_batch(r, &r->fin[i]);
		return;
	}
	struct told *t = calloc(n, sizeof *t);
	struct sw_fin *f = calloc(n, sizeof *f);
	enum sw_fin_verb *v = calloc(n, sizeof *v);
	size_t *ix = calloc(n, sizeof *ix);
	if (!t || !f || !v || !ix) {
		free(t);
		free(f);
		free(v);
		free(ix);
		run_out_of_memory(r);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &r->fin[i];
		plan_item(r, s, &t[i]);
		if (!t[i].call)
			continue;
		f[m] = (struct sw_fin){ .id = s->id, .token = s->token, .result = t[i].res,
					.error = t[i].err, .retry_ns = -1 };
		v[m] = t[i].verb;
		ix[i] = m++;
	}
	/* one item alone commits as the one-item verbs do (an fsync of its
	 * file and directory, not of the whole filesystem) */
	if (m == 1 && (f[0].rc = sw_queue_apply_one(&r->q, v[0], &f[0])) != 0)
		f[0].err = r->q.err;
	else if (m > 1)
		sw_queue_apply_each(&r->q, v, f, m);
	for (size_t i = 0; i < n; i++)
		told_item(r, &r->fin[i], &t[i], &f[ix[i]]);
	for (size_t k = 0; k < m; k++) {
		json_decref(f[k].out);
		json_decref(f[k].result);
	}
	free(t);
	free(f);
	free(v);
	free(ix);
}

/* ---- a batch's outcomes ------------------------------------------------ */

enum { OUT_DONE, OUT_FAIL, OUT_RELEASE, OUT_LOST };

/* What the command said of each item of its batch: the lines of its
 * stdout that are a JSON object with the id of one of them and "ok" true
 * or false (the last such line of an item counts).  Other lines are no
 * item's, and left alone. */
static int batch_lines(const struct slot *s, int *verb, json_t **said)
{
	json_t *ix = json_object();
	if (!ix)
		return -1;
	for (size_t i = 0; i < s->nb; i++)
		json_object_set_new(ix, s->b[i].id, json_integer((json_int_t)i));
	const char *p = s->out, *end = s->out + s->outlen;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *j = len ? sw_json_parse(p, len, NULL) : NULL;
		const char *id = sw_json_str(j, "id");
		json_t *k = id ? json_object_get(ix, id) : NULL, *ok = json_object_get(j, "ok");
		if (k && json_is_boolean(ok)) {
			size_t i = (size_t)json_integer_value(k);
			json_decref(said[i]);
			said[i] = json_incref(j);
			verb[i] = json_is_true(ok) ? OUT_DONE : OUT_FAIL;
		}
		json_decref(j);
		p += len + 1;
	}
	json_decref(ix);
	return 0;
}

/* A result the item has room for: res, or its JSON text cut to fit, as
 * a string (as output too long is kept).  NULL for none. */
static json_t *fit_result(const struct run *r, const json_t *item, json_t *res)
{
	if (!res)
		return NULL;
	size_t room = result_room(r, item);
	if (json_dumpb(res, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) <= room)
		return json_incref(res);
	char *t = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t keep = room > 16 ? (room - 16) / 6 : 0;   /* an escaped byte takes at most 6 */
	json_t *cut = t && keep ? run_utf8_string(t, keep < strlen(t) ? keep : strlen(t)) : NULL;
	free(t);
	return cut;
}

/* Tells the queue how the items of s whose verb is v went, in one
 * commit, and prints their lines.  err: the error of an item the command
 * said nothing of. */
static void apply_outcome(struct run *r, struct slot *s, int v, const int *verb, json_t **said,
			  int code, const char *err)
{
	static const enum sw_fin_verb fv[] = { SW_FIN_DONE, SW_FIN_FAIL, SW_FIN_RELEASE };
	struct sw_fin *f = calloc(s->nb, sizeof *f);
	size_t *ix = calloc(s->nb, sizeof *ix), m = 0;
	if (!f || !ix) {
		free(f);
		free(ix);
		run_out_of_memory(r);
		return;
	}
	for (size_t i = 0; i < s->nb; i++) {
		if (verb[i] != v)
			continue;
		ix[m] = i;
		f[m] = (struct sw_fin){ .id = s->b[i].id, .token = s->b[i].token, .retry_ns = -1, .error = err };
		if (v == OUT_DONE)
			f[m].result = fit_result(r, s->b[i].item, json_object_get(said[i], "result"));
		if (v == OUT_FAIL && said[i])
			f[m].error = json_is_string(json_object_get(said[i], "error")) ?
				sw_json_str(said[i], "error") : "the command said it failed";
		m++;
	}
	if (m && v != OUT_LOST)
		sw_queue_apply(&r->q, fv[v], f, m);
	for (size_t k = 0; k < m; k++) {
		static const char *const name[] = { "done", "pending", "released", "lost" };
		const char *state = name[v];
		if (v == OUT_FAIL && f[k].out)
			state = sw_json_str(f[k].out, "state");
		if (f[k].rc) {
			/* the lease ran out: the item's outcome is its new holder's */
			sw_warn("item %s: %s", f[k].id, f[k].err.msg);
			state = "lost";
		}
		count_state(r, state ? state : "pending");
		run_report(r, s, &s->b[ix[k]], state ? state : "pending", code, v == OUT_FAIL ? f[k].error : NULL);
		json_decref(f[k].out);
		json_decref(f[k].result);
	}
	free(f);
	free(ix);
}

/* A batch's command and tree are gone: each item it printed an outcome
 * for goes that way, the others the way its exit status says; one verb
 * at a time, each committed with one sync. */
static void finish_batch(struct run *r, struct slot *s)
{
	int code = exit_code_of(s->status), all;
	char err[3 * ERR_TAIL + 64] = "";   /* U+FFFD takes 3 bytes */
	int *verb = calloc(s->nb, sizeof *verb);
	json_t **said = calloc(s->nb, sizeof *said);
	if (!verb || !said) {
		free(verb);
		free(said);
		run_out_of_memory(r);
		return;
	}
	if (s->abandoned)
		all = strcmp(s->abandoned, "released") ? OUT_LOST : OUT_RELEASE;
	else if (WIFEXITED(s->status) && code == 0)
		all = OUT_DONE;
	else if (WIFEXITED(s->status) && code == EX_TEMPFAIL)
		all = OUT_RELEASE;
	else {
		all = OUT_FAIL;
		error_of(s, err, sizeof err);
	}
	for (size_t i = 0; i < s->nb; i++)
		verb[i] = all;
	if (!s->abandoned) {
		if (batch_lines(s, verb, said) < 0) {
			free(verb);
			free(said);
			run_out_of_memory(r);
			return;
		}
		if (s->truncated)
			sw_warn("batch of %s: its output was cut at %zu bytes: the items it names no further "
				"went as its exit status says", s->id, s->outmax);
	}
	bool all_done = true;
	for (size_t i = 0; i < s->nb; i++) {
		if (s->b[i].lost)
			verb[i] = OUT_LOST;
		all_done &= verb[i] == OUT_DONE;
	}
	for (int v = OUT_DONE; v <= OUT_LOST; v++)
		apply_outcome(r, s, v, verb, said, code, err);
	if (r->o->once)
		r->once_status = code;
	run_joblog_line(r, s);
	sw_span_int(&s->sp, "sw.exit_code", code);
	sw_span_end(&s->sp, !all_done, *err ? err : NULL);
	for (size_t i = 0; i < s->nb; i++)
		json_decref(said[i]);
	free(said);
	free(verb);
	run_slot_clear(s);
	r->claims_dirty = true;
}
