/* sb_spool - the ingress's durable queue (DESIGN.md "Why acks flow backwards").
 *
 * Append-only segment files under SPOOL_DIR named "<first seq, %020>.seg". Every record
 * is framed [header with length, seq, type, append time][payload] with a CRC32C over
 * header and payload. Data records hold one encoded envelope; ack records hold seqs that
 * the writer committed, so a restart does not resend what was already stored (an ack that
 * was lost only costs a harmless redelivery). A segment whose data records are all acked,
 * and that is no longer the active one, is deleted.
 *
 * Calling sequence of the ingress (one owner thread):
 *   spool = sb_spool_new(dir, max_bytes, &err);   // scans: unacked records are pending
 *   sb_spool_append(spool, payload, len, &seq, &err);  // buffered, NOT durable
 *   ... more appends ...
 *   sb_spool_sync(spool, &err);   // one write + fdatasync for the whole group
 *   -> answer 200 for those records, then push them downstream and sb_spool_sent()
 *   sb_spool_ack(spool, seq, now);  // when the writer's ack arrives
 *   sb_spool_due(spool, now, max, fn, arg);  // periodically: redeliver what is overdue
 *
 * Never push a record downstream before the sync that covers it: a crash could still
 * erase it, and a new record would later reuse its seq. A failed sync is never retried
 * (PostgreSQL fd.c): the spool stays failed, every later append and sync fails, and the
 * ingress answers 503 until it is restarted. A torn or corrupt record found by the scan
 * is skipped with a count (sb_spool_torn); the scan never aborts on bad data. */
#ifndef SB_SPOOL_H
#define SB_SPOOL_H
#include <stddef.h>
#include <stdint.h>
#include "sb_err.h"

typedef struct sb_spool sb_spool_t;

// Open or create the spool in dir (created if missing). max_bytes bounds the bytes
// of live segments; 0 means no bound. The spool's epoch (random hex, stored in
// dir/epoch the first time) is part of every event id, so that an emptied spool
// directory never hands out an old id again.
sb_spool_t *sb_spool_new(const char *dir, uint64_t max_bytes, sb_err_t *err);
void sb_spool_destroy(sb_spool_t **self_p);

const char *sb_spool_epoch(const sb_spool_t *self);
// Redelivery backoff: first after the timeout below, doubling per attempt up to max_ms.
void sb_spool_set_redelivery(sb_spool_t *self, int64_t base_ms, int64_t max_ms);
// The first wait after a push: max(base_ms, srtt + 4 x rttvar) of the push-to-ack times
// measured by sb_spool_ack (RFC 6298, Karn's rule), at most max_ms.
int64_t sb_spool_rto_ms(const sb_spool_t *self);
// The first wait of a record pushed at now_ms: the timeout above, or longer when the
// records already pushed need longer to drain at the measured ack rate (2 x pushed / rate,
// at most 6 x base_ms; only while acks keep coming).
int64_t sb_spool_first_wait_ms(const sb_spool_t *self, int64_t now_ms);
// While held, records already pushed are not redelivered (never-pushed ones still are):
// the owner holds while downstream reports that it is queueing, not losing, events
// (no writer reaches the database). Releasing restarts their clocks at now_ms.
void sb_spool_hold(sb_spool_t *self, int hold, int64_t now_ms);

// Buffer one data record; *seq gets its sequence number (the next one after every
// record ever found or appended). Fails with err->code ENOSPC when max_bytes would be
// exceeded, EIO when the spool has failed. Borrows payload.
int sb_spool_append(sb_spool_t *self, const void *payload, size_t len, uint64_t *seq,
                    sb_err_t *err);
// The seq that the next sb_spool_append will return, so that a caller can put the
// event id into the record it appends.
uint64_t sb_spool_next_seq(const sb_spool_t *self);
// Make every appended record durable: one write and one fdatasync (rotating to a new
// segment when the active one is large). 0, or -1 and the spool is failed for good.
int sb_spool_sync(sb_spool_t *self, sb_err_t *err);

// The same sync in three steps, so that the write and fdatasync can run on another
// thread while the owner thread keeps appending (group commit without stalling the
// loop). Only one flush may be in flight; the owner calls begin and finish, any thread
// calls write, which touches nothing but the flush. While a flush is in flight
// sb_spool_sync must not be called.
typedef struct {
    int fd;              // the active segment
    unsigned char *buf;  // the group's bytes, owned by the flush until finish
    size_t len;          // 0: nothing to write (finish is still required)
    uint64_t off;        // where in the segment they go
    uint64_t zero_from;  // then zeros from here to zero_to (none when equal): written
    uint64_t zero_to;    //   ahead, so that later syncs do not grow the file
    uint64_t upto_seq;   // every data record <= this is in buf or already durable
    uint64_t ack_low;    // lowest seq named by the group's ack records
    int fail_write;      // test hook decided by the owner: this write fails
    int fail_sync;       // test hook: this fdatasync fails
    int io_errno;        // set by write: 0, or the errno of the failure
    const char *io_what; // set by write on failure: "write" or "fdatasync"
} sb_spool_flush_t;

// Take everything appended and acked since the last flush. 0, or -1 with err (the
// spool has failed, or a segment rotation failed).
int sb_spool_sync_begin(sb_spool_t *self, sb_spool_flush_t *flush, sb_err_t *err);
// pwrite(2) and one fdatasync. Any thread; 0 or -1 (flush->io_errno set).
int sb_spool_flush_write(sb_spool_flush_t *flush);
// Account for the flush after write returned: records <= upto_seq are durable. 0, or
// -1 with err when the write failed (the spool is then failed for good).
int sb_spool_sync_finish(sb_spool_t *self, sb_spool_flush_t *flush, sb_err_t *err);

// All records with seq <= this are durable.
uint64_t sb_spool_synced_seq(const sb_spool_t *self);
// The caller pushed seq downstream at now_ms: its redelivery clock starts.
void sb_spool_sent(sb_spool_t *self, uint64_t seq, int64_t now_ms);
// The writer committed seq at now_ms (< 0: do not sample its push-to-ack time). Idempotent; unknown
// or old seqs are ignored. The ack is buffered and becomes durable with the next sync (or destroy).
// 1 when seq was pending, 0 when it was unknown or already acked (a second copy's ack).
int sb_spool_ack(sb_spool_t *self, uint64_t seq, int64_t now_ms);
// Flow control: records pushed since open and not acked yet (the credit in use), and
// whether seq is one of them (a push of it would be a redelivery, not a new credit).
size_t sb_spool_pushed(const sb_spool_t *self);
int sb_spool_was_pushed(sb_spool_t *self, uint64_t seq);

// Visit up to max durable, unacked records that are due: never sent since open, or
// sent and not acked within the backoff. fn gets the payload (valid during the call)
// and returns 0 when it pushed the record (its clock restarts, backoff doubles) or -1
// when it could not (iteration stops, the record stays due). Returns how many were
// pushed, or -1 with err when a segment could not be read.
typedef int (*sb_spool_visit_fn)(void *arg, uint64_t seq, const void *payload, size_t len);
int sb_spool_due(sb_spool_t *self, int64_t now_ms, size_t max, sb_spool_visit_fn fn, void *arg,
                 sb_err_t *err);

size_t sb_spool_depth(const sb_spool_t *self);      // durable or buffered, not yet acked
uint64_t sb_spool_bytes(const sb_spool_t *self);    // bytes in live segment files
int64_t sb_spool_oldest_ms(const sb_spool_t *self); // append time of the oldest unacked, 0 if none
size_t sb_spool_torn(const sb_spool_t *self);       // records skipped by the scan at open
int sb_spool_failed(const sb_spool_t *self);        // 1 after a failed write or sync

#endif
