/* ring.h — where sw-shard's node lists come from: a list on the command
 * line, a node file, the live agents of the workspace, or a ring kept in
 * the workspace (rings/<name>.json, with its placement settings).
 *
 * A value names a file only when it says so: "/PATH", "./PATH", "../PATH"
 * or "@file:PATH".  Anything else is a list "a,b=2,c", even when a file
 * of that name happens to exist in the current directory (which could be
 * anyone's: `--nodes web1` must mean the node web1), or "@list:LIST".
 * One node with a '.' in its name ("nodes.txt", "db1.example.com") is
 * refused: a file named without ./ or a host, the user must say which
 * (./nodes.txt, @list:db1.example.com).  The rule reads no file, so what
 * a value means never depends on the current directory.
 *
 * Functions return 0 or a sysexits code with a one-line reason in err
 * (err.h); they never exit. */
#ifndef SW_RING_H
#define SW_RING_H
#include "shard.h"
#include "ws.h"
#include <jansson.h>
#include <stdbool.h>

#define SW_RING_DIR "rings"
/* The largest ring or node file read (a million nodes fit). */
#define SW_RING_FILE_MAX (64 * 1024 * 1024)

/* Placement settings: a ring keeps them, and @ring:NAME gives them to a
 * command that did not set them itself (the *_set flags). */
struct sw_ring_cfg {
	enum sw_algo algo;
	unsigned vnodes;
	uint64_t seed;
	bool algo_set, vnodes_set, seed_set;
};

enum sw_nodes_kind { SW_NODES_LIST, SW_NODES_FILE, SW_NODES_AGENTS, SW_NODES_RING };

/* What spec names, checked before anything is read: 0, 64 (an unknown
 * @source, a '/' in what would be a list, one node with a '.' in its name
 * not given as @list:, "@file:" alone) or 65 (a bad
 * role or ring name).  what names the option in messages ("--nodes"). */
int sw_nodes_kind(const char *what, const char *spec, enum sw_nodes_kind *kind, struct sw_err *err);
/* Whether spec's nodes come from the workspace (@agents, @ring:). */
bool sw_nodes_need_ws(const char *spec);
/* Loads the nodes spec names into ns (which it sets up) and checks them
 * (sw_nodes_check).  ws: the open workspace, for the sources that need
 * it, else unused.  A @ring:NAME sets in cfg what is not set yet, and marks
 * it set.  0, or 1 (no such ring), 64, 65, 66 (no such file), 69, 74, 75 (no
 * live agents) with err. */
int sw_nodes_load(struct sw_nodes *ns, const char *what, const char *spec, const struct sw_ws *ws,
		  struct sw_ring_cfg *cfg, struct sw_err *err);

/* The ring called name as stored: 0 with *ring, 1 when there is none
 * (nor a rings directory), or another code. */
int sw_ring_read(const struct sw_ws *ws, const char *name, json_t **ring, struct sw_err *err);
/* Stores ns and cfg as the ring called name (temp + rename), made at
 * now_ns; *ring gets what was stored.  The settings are checked first
 * (sw_placer_init), so no ring holds what no placement can use. */
int sw_ring_write(const struct sw_ws *ws, const char *name, const struct sw_nodes *ns,
		  const struct sw_ring_cfg *cfg, int64_t now_ns, json_t **ring, struct sw_err *err);
/* 0, or 1 when there is no such ring. */
int sw_ring_delete(const struct sw_ws *ws, const char *name, struct sw_err *err);
#endif
