/* metrics_fold.h — folding the journal (metrics_journal.h) into the
 * database (metrics_db.h): the facade's sw_m_open does it before anything
 * reads or writes, and a writer does it when the journal has grown past
 * SW_M_FOLD_BYTES.
 *
 * Under the database's write lock (BEGIN IMMEDIATE, so folds take turns
 * and apply the journal in the order it was written):
 *   1. rename <db>.journal to <db>.fold/<time>.<pid>.<random>, so new
 *      writers start a new journal;
 *   2. take LOCK_EX on the piece: this waits for the writers that locked
 *      it before the rename, whose records land before it is read;
 *   3. read it, apply every record in order, and insert the piece's name
 *      and inode into fold_applied, all in the one transaction;
 *   4. commit, then unlink the piece.
 * Pieces left in <db>.fold/ by a folder that died are folded first, oldest
 * first.  One whose folder died after its commit but before the unlink is
 * found in fold_applied and only unlinked: every record is applied exactly
 * once.  A record that cannot be applied (malformed, torn by a full disk,
 * or against a kind the registry no longer has) is skipped and counted in
 * m->fold_bad, with one warning. */
#ifndef SW_METRICS_FOLD_H
#define SW_METRICS_FOLD_H
#include "metrics_db.h"

/* 0 or a sysexits code with m->err; m->folded counts records applied. */
int sw_m_fold(struct sw_mdb *m);
#endif
