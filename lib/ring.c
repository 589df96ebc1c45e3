#include "ring.h"
#include "agent.h"
#include "atomic.h"
#include "err.h"
#include "fs.h"
#include "id.h"
#include "json.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- what a spec names ---- */

static bool is_path(const char *spec)
{
	return spec[0] == '/' || !strncmp(spec, "./", 2) || !strncmp(spec, "../", 3);
}

static bool is_agents(const char *spec)
{
	return !strncmp(spec, "@agents", 7) && (!spec[7] || spec[7] == ':');
}

/* One node whose name has a '.' ("nodes.txt", "db1.example.com"): as
 * likely a file named without ./ as a host; the user says which. */
static bool file_or_node(const char *spec)
{
	size_t name = strcspn(spec, "=");
	return !strchr(spec, ',') && memchr(spec, '.', name);
}

bool sw_nodes_need_ws(const char *spec)
{
	return is_agents(spec) || !strncmp(spec, "@ring:", 6);
}

int sw_nodes_kind(const char *what, const char *spec, enum sw_nodes_kind *kind, struct sw_err *err)
{
	const char *why;
	*kind = SW_NODES_LIST;
	if (!strncmp(spec, "@ring:", 6)) {
		*kind = SW_NODES_RING;
		if ((why = sw_name_problem(spec + 6)))
			return sw_err_set(err, EX_DATAERR, "bad ring: %s", why);
	} else if (!strncmp(spec, "@list:", 6)) {
		*kind = SW_NODES_LIST;
	} else if (!strncmp(spec, "@file:", 6)) {
		*kind = SW_NODES_FILE;
		if (!spec[6])
			return sw_err_set(err, EX_USAGE, "%s @file: names no file", what);
	} else if (is_agents(spec)) {
		*kind = SW_NODES_AGENTS;
		if (spec[7] == ':' && (why = sw_name_problem(spec + 8)))
			return sw_err_set(err, EX_DATAERR, "bad role: %s", why);
	} else if (spec[0] == '@') {
		return sw_err_set(err, EX_USAGE, "%s %.60s: unknown node source (want a list, @list:LIST, a file "
			    "as ./PATH, /PATH or @file:PATH, @agents[:ROLE] or @ring:NAME)", what, spec);
	} else if (is_path(spec)) {
		*kind = SW_NODES_FILE;
	} else if (strchr(spec, '/')) {
		return sw_err_set(err, EX_USAGE, "%s %.60s: a node name holds no '/'; name a file as ./%.60s or "
			    "@file:%.60s", what, spec, spec, spec);
	} else if (file_or_node(spec)) {
		return sw_err_set(err, EX_USAGE, "%s %.60s: a file or one node? name a file as ./%.60s or "
			    "@file:%.60s, a node as @list:%.60s", what, spec, spec, spec, spec);
	}
	return 0;
}

/* ---- @agents[:ROLE] ---- */

static bool with_role(const json_t *rec, const void *role)
{
	return sw_agent_has_role(rec, role);
}

/* The live agents (with the role), in name order, weight 1 each. */
static int nodes_agents(struct sw_nodes *ns, const char *what, const char *spec,
			const struct sw_ws *ws, struct sw_err *err)
{
	const char *role = spec[7] == ':' ? spec + 8 : NULL;
	char **ids = NULL;
	size_t n = 0;
	int code = 0;
	if (sw_agent_ids(ws, role ? with_role : NULL, role, &ids, &n) < 0)
		code = sw_err_set(err, sw_ex_errno(errno), "%s %s: reading agents: %s", what, spec, strerror(errno));
	else if (n == 0)
		code = sw_err_set(err, EX_TEMPFAIL, "%s %s: no live agents%s%s", what, spec,
			    role ? " with role " : "", role ? role : "");
	struct sw_err why;
	for (size_t i = 0; !code && i < n; i++)
		if ((code = sw_nodes_add(ns, ids[i], strlen(ids[i]), NULL, &why)))
			sw_err_set(err, code, "%s %s: %s", what, spec, why.msg);
	sw_agent_ids_free(ids, n);
	return code;
}

/* ---- rings/<name>.json ---- */

/* rings/ of the workspace, or -1: err set, or errno ENOENT alone when
 * there is none and create is false. */
static int rings_dir(const struct sw_ws *ws, bool create, int *code, struct sw_err *err)
{
	int fd = sw_ws_dir(ws, SW_RING_DIR, create);
	if (fd < 0 && !(errno == ENOENT && !create))
		*code = sw_err_set(err, sw_ex_errno(errno), "%s/%s: %s", ws->path, SW_RING_DIR, strerror(errno));
	return fd;
}

static int ring_file(const char *name, char file[SW_NAME_MAX + 8], struct sw_err *err)
{
	const char *why = sw_name_problem(name);
	if (why)
		return sw_err_set(err, EX_DATAERR, "bad ring: %s", why);
	snprintf(file, SW_NAME_MAX + 8, "%s.json", name);
	return 0;
}

/* rings/ (in *fd) and the file name of an existing ring: 0, or 1 when
 * there is no rings directory, or another code. */
static int ring_at(const struct sw_ws *ws, const char *name, char file[SW_NAME_MAX + 8], int *fd,
		   struct sw_err *err)
{
	int code = ring_file(name, file, err);
	if (code)
		return code;
	*fd = rings_dir(ws, false, &code, err);
	if (*fd < 0)
		return code ? code : sw_err_set(err, SW_EX_FALSE, "no ring '%s'", name);
	return 0;
}

int sw_ring_read(const struct sw_ws *ws, const char *name, json_t **ring, struct sw_err *err)
{
	char file[SW_NAME_MAX + 8];
	int fd;
	*ring = NULL;
	int code = ring_at(ws, name, file, &fd, err);
	if (code)
		return code;
	*ring = sw_json_read(fd, file, SW_RING_FILE_MAX);
	int e = errno;
	close(fd);
	if (*ring)
		return 0;
	if (e == ENOENT)
		return sw_err_set(err, SW_EX_FALSE, "no ring '%s'", name);
	if (e == EBADMSG)
		return sw_err_set(err, EX_DATAERR, "ring %s: not valid JSON", name);
	return sw_err_set(err, sw_ex_errno(e), "ring %s: %s", name, strerror(e));
}

static json_t *ring_json(const char *name, const struct sw_nodes *ns, const struct sw_ring_cfg *cfg,
			 int64_t now_ns)
{
	json_t *nodes = json_array();
	for (size_t i = 0; nodes && i < ns->n; i++)
		if (json_array_append_new(nodes, json_pack("{s:s,s:f}", "name", ns->v[i].name,
							   "weight", ns->v[i].weight)) < 0) {
			json_decref(nodes);
			return NULL;
		}
	json_t *r = json_pack("{s:s,s:s,s:I,s:I,s:o}", "name", name, "algo", sw_algo_name(cfg->algo),
			      "vnodes", (json_int_t)cfg->vnodes, "seed", (json_int_t)cfg->seed,
			      "nodes", nodes);
	if (r)
		sw_json_set_time(r, "updated_at", now_ns);
	return r;
}

int sw_ring_write(const struct sw_ws *ws, const char *name, const struct sw_nodes *ns,
		  const struct sw_ring_cfg *cfg, int64_t now_ns, json_t **ring, struct sw_err *err)
{
	char file[SW_NAME_MAX + 8];
	struct sw_placer pl;
	*ring = NULL;
	int code = ring_file(name, file, err);
	/* refuse settings no placement could use (jump with weights …) */
	if (code || (code = sw_placer_init(&pl, ns, cfg->algo, cfg->vnodes, cfg->seed, 1, err)))
		return code;
	sw_placer_free(&pl);
	json_t *r = ring_json(name, ns, cfg, now_ns);
	char *buf = r ? json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
	if (!buf) {
		json_decref(r);
		return sw_err_set(err, EX_SOFTWARE, "out of memory");
	}
	int fd = rings_dir(ws, true, &code, err);
	if (fd >= 0 && sw_replace(fd, file, buf, strlen(buf), ws->sync, true) < 0)
		code = sw_err_set(err, sw_ex_errno(errno), "writing ring %s: %s", name, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(buf);
	if (code)
		json_decref(r);
	else
		*ring = r;
	return code;
}

int sw_ring_delete(const struct sw_ws *ws, const char *name, struct sw_err *err)
{
	char file[SW_NAME_MAX + 8];
	int fd;
	int code = ring_at(ws, name, file, &fd, err);
	if (code)
		return code;
	if (unlinkat(fd, file, 0) < 0) {
		int e = errno;
		close(fd);
		if (e == ENOENT)
			return sw_err_set(err, SW_EX_FALSE, "no ring '%s'", name);
		return sw_err_set(err, sw_ex_errno(e), "ring %s: %s", name, strerror(e));
	}
	if (sw_sync_wanted(ws->sync, true))
		sw_fsync_dir(fd);
	close(fd);
	return 0;
}

/* ---- @ring:NAME ---- */

static int ring_nodes(struct sw_nodes *ns, const char *what, const char *name, json_t *r, struct sw_err *err)
{
	size_t i;
	json_t *n;
	struct sw_err why;
	json_array_foreach(json_object_get(r, "nodes"), i, n) {
		const char *nm = sw_json_str(n, "name");
		json_t *w = json_object_get(n, "weight");
		if (!nm)
			return sw_err_set(err, EX_DATAERR, "%s @ring:%s: node %zu: no name", what, name, i + 1);
		int code = sw_nodes_add_weight(ns, nm, strlen(nm), json_is_number(w) ?
					       json_number_value(w) : 1.0, &why);
		if (code)
			return sw_err_set(err, code, "%s @ring:%s: node %zu: %s", what, name, i + 1, why.msg);
	}
	return 0;
}

/* The ring's settings where cfg has none yet; the first ring read sets
 * them, so a second (plan --to) may not differ. */
static int ring_settings(struct sw_ring_cfg *cfg, const char *what, const char *name, json_t *r,
			 struct sw_err *err)
{
	const char *algo = sw_json_str(r, "algo");
	int a = sw_algo_parse(algo ? algo : "ring");
	if (a < 0)
		return sw_err_set(err, EX_DATAERR, "%s @ring:%s: unknown algo", what, name);
	if (!cfg->algo_set)
		cfg->algo = (enum sw_algo)a;
	json_int_t v = sw_json_int(r, "vnodes", SW_SHARD_VNODES_DEFAULT);
	if (!cfg->vnodes_set && v >= 1 && v <= 1000000)
		cfg->vnodes = (unsigned)v;
	if (!cfg->seed_set)
		cfg->seed = (uint64_t)sw_json_int(r, "seed", 0);
	cfg->algo_set = cfg->vnodes_set = cfg->seed_set = true;
	return 0;
}

static int nodes_ring(struct sw_nodes *ns, const char *what, const char *name, const struct sw_ws *ws,
		      struct sw_ring_cfg *cfg, struct sw_err *err)
{
	json_t *r;
	int code = sw_ring_read(ws, name, &r, err);
	if (code == SW_EX_FALSE)
		return sw_err_set(err, code, "%s @ring:%s: no such ring", what, name);
	if (code)
		return code;
	code = ring_nodes(ns, what, name, r, err);
	if (!code)
		code = ring_settings(cfg, what, name, r, err);
	json_decref(r);
	return code;
}

/* ---- node files ---- */

/* A node file the user named: any kind of file (a pipe from <(...) too),
 * read up to SW_RING_FILE_MAX. */
static int nodes_file(struct sw_nodes *ns, const char *what, const char *path, const char *spec,
		      struct sw_err *err)
{
	char *text;
	struct sw_err why;
	size_t len;
	int fd = (int)SW_NOINTR(open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC));
	if (fd < 0)
		return sw_err_set(err, errno == ENOENT ? EX_NOINPUT : sw_ex_errno(errno), "%s %s: %s", what, spec,
			    strerror(errno));
	if (sw_read_fd(fd, &text, &len, SW_RING_FILE_MAX) < 0) {
		int e = errno;
		close(fd);
		return sw_err_set(err, e == EFBIG ? EX_DATAERR : e == ENOMEM ? EX_SOFTWARE : EX_IOERR,
			    "%s %s: %s", what, spec, e == EFBIG ? "over 64 MiB" : strerror(e));
	}
	close(fd);
	int code = sw_nodes_parse_text(ns, text, len, &why);
	free(text);
	return code ? sw_err_set(err, code, "%s %s: %s", what, spec, why.msg) : 0;
}

static int nodes_from(struct sw_nodes *ns, enum sw_nodes_kind kind, const char *what,
		      const char *spec, const struct sw_ws *ws, struct sw_ring_cfg *cfg, struct sw_err *err)
{
	struct sw_err why;
	int code;
	switch (kind) {
	case SW_NODES_RING: return nodes_ring(ns, what, spec + 6, ws, cfg, err);
	case SW_NODES_AGENTS: return nodes_agents(ns, what, spec, ws, err);
	case SW_NODES_FILE:
		return nodes_file(ns, what, spec[0] == '@' ? spec + 6 : spec, spec, err);
	case SW_NODES_LIST:
		code = sw_nodes_parse_list(ns, strncmp(spec, "@list:", 6) ? spec : spec + 6, &why);
		return code ? sw_err_set(err, code, "%s: %s", what, why.msg) : 0;
	}
	return sw_err_set(err, EX_SOFTWARE, "unknown node source");
}

int sw_nodes_load(struct sw_nodes *ns, const char *what, const char *spec, const struct sw_ws *ws,
		  struct sw_ring_cfg *cfg, struct sw_err *err)
{
	enum sw_nodes_kind kind;
	struct sw_err why;
	memset(ns, 0, sizeof *ns);
	int code = sw_nodes_kind(what, spec, &kind, err);
	if (!code)
		code = nodes_from(ns, kind, what, spec, ws, cfg, err);
	if (!code && (code = sw_nodes_check(ns, &why)))
		sw_err_set(err, code, "%s %s: %s", what, strchr(spec, ',') ? "list" : spec, why.msg);
	if (code)
		sw_nodes_free(ns);
	return code;
}
