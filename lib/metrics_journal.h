/* metrics_journal.h — how sw-metrics writes without opening SQLite.  The
 * journal layer of the metrics library: it uses only the model
 * (metrics_model.h); the protocol of a write is the facade's sw_m_write.
 *
 * Opening a WAL database (schema, shared memory, WAL index) costs more
 * than a one-shot write may.  So inc, set and observe append one record
 * to a journal beside the database, <db>.journal, and whatever opens the
 * database folds the journal into it first (metrics_fold.h).
 *
 * Appending: open(O_APPEND|O_CREAT), flock(LOCK_SH), then fstat(fd)
 * against stat(path): when a folder renamed the journal away meanwhile
 * the inodes differ and the writer starts again on the new journal; else
 * one write(2) of the whole record, which O_APPEND keeps whole and in one
 * piece.  The folder renames the journal before it takes LOCK_EX, so
 * every writer that checked the old inode has written before it reads.
 *
 * A record is one line:
 *   RS TYPE ' ' T_NS ' ' VALUE ' ' NAME ' ' JSON '\n'
 * RS is the byte 0x1e, which JSON text never holds raw, TYPE C (counter
 * add), G (gauge set), O (histogram observation) with JSON the canonical
 * label set, or H (HELP text; VALUE the kind, JSON a string).  A write
 * cut short (a full disk) leaves a record without its newline; the reader
 * takes every line from its last RS, so the torn piece is skipped and
 * never spoils the record after it.
 *
 * The kind of each metric lives in a registry a writer checks with one
 * readlink(2): <db>.kinds/NAME is a symbolic link whose target is
 * "counter", "gauge" or "histogram:BOUNDS", created exclusively
 * (symlink(2)) on first use and never changed.  The database's own metric
 * table follows it. */
#ifndef SW_METRICS_JOURNAL_H
#define SW_METRICS_JOURNAL_H
#include "atomic.h"
#include "metrics_model.h"
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SW_M_RS '\x1e'
#define SW_M_JOURNAL ".journal"
#define SW_M_KINDS ".kinds"
#define SW_M_FOLD ".fold"
/* A writer that finds the journal this big folds it itself, so a host
 * that writes and never reads keeps a bounded journal. */
#define SW_M_FOLD_BYTES (1 << 20)
/* sw_m_kind_claim: there is no registry yet (a database not yet opened by
 * this version): open the database, which makes it, and try again. */
#define SW_M_NOREG (-1)
#define SW_M_KIND_TARGET_MAX (SW_M_BUCKETS_MAX * 32 + 16)

struct sw_mrec {
	char type;            /* 'C', 'G', 'O', 'H' */
	int64_t t_ns;
	double value;
	const char *name;     /* point into the parsed line */
	const char *json;
	size_t json_len;
};

/* "<db><suffix>" into out; false when it does not fit. */
bool sw_m_path_of(char out[PATH_MAX], const char *db, const char *suffix);

/* Appends one record (type, the time, the value, name, canonical labels)
 * to buf (malloc'd, grown as needed; *len is its length so far), and
 * first an H record when help is not NULL.  0, or -1 with errno ENOMEM. */
int sw_m_record(char **buf, size_t *len, char type, int64_t t_ns, double v, const char *name,
		 const char *labels, const char *help, enum sw_mkind kind);
/* Parses one line (no newline) from its last RS.  NULL, or why not. */
const char *sw_m_record_parse(const char *line, size_t len, struct sw_mrec *r);

/* Appends rec[len] (whole records) to db's journal; syncs it under
 * SW_SYNC_FULL.  *fold_due says the journal has grown past
 * SW_M_FOLD_BYTES.  0 or a sysexits code with err. */
int sw_m_append(const char *db, const void *rec, size_t len, enum sw_sync sync, bool *fold_due,
		 struct sw_err *err);

/* Makes sure name has kind in db's registry, registering it when new
 * (histograms with want, NULL meaning the default buckets; an existing
 * histogram must have want when strict).  The bounds in force come back
 * in b and nb when b is not NULL.  0, 65 on a conflict, SW_M_NOREG,
 * or another sysexits code, with err. */
int sw_m_kind_claim(const char *db, const char *name, enum sw_mkind kind, const double *want,
		   size_t nwant, bool strict, enum sw_sync sync, double *b, size_t *nb, struct sw_err *err);
/* The registry's link target for kind (and bounds); false when too long. */
bool sw_m_kind_target(enum sw_mkind kind, const double *b, size_t nb, char out[SW_M_KIND_TARGET_MAX]);
/* Reads a link target back; false when it is none of ours. */
bool sw_m_kind_parse(const char *target, enum sw_mkind *kind, double *b, size_t *nb);
#endif
