/* sb_spool - the ingress's durable queue; sb_spool.h is the manual.
 *
 * On disk. dir/epoch holds 16 lower-case hex digits and a newline. dir/<first seq,
 * %020>.seg are append-only segments, each a run of records (integers little-endian):
 *
 *   offset size  field
 *        0    4  magic | type  0x53425301 data, 0x53425302 ack ("SBS" and the type)
 *        4    4  payload bytes data: at most SB_SPOOL_MAX_PAYLOAD; ack: 8-byte multiple
 *        8    8  seq           data: its sequence number; ack: 0
 *       16    8  append time   ms since 1970 (CLOCK_REALTIME), signed
 *       24    4  crc32c        over bytes 0-23, then the payload
 *       28    n  payload       data: one encoded envelope; ack: n/8 acked seqs (u64)
 *
 * In memory. An index of the data records that are not acked, ordered by seq (acked
 * ones stay as tombstones until a compaction), with where each record lives; payloads
 * are read back with pread when due. Per segment a count of live records.
 *
 * Invariants that the code relies on:
 * - Data seqs increase through the segments in name order. A segment's name is <= every
 *   data seq in it and > every data seq in an older segment; names never repeat.
 * - Only the process that created a segment writes to it: open always starts a new
 *   one, so nothing is ever appended after a torn tail.
 * - The newest segment is never deleted: its name keeps next_seq from going back when
 *   every record was acked and every older file is gone (the epoch only protects
 *   against a wiped directory).
 * - An ack record lies in the same or a newer segment than the data it acks. A segment
 *   without live data is kept while an older kept segment holds a seq that one of its
 *   acks names; deleting it would resurrect those records on the next open.
 * - The scan stops reading a segment at the first record whose framing or CRC is bad:
 *   its length field cannot be trusted, so the rest of the file has no framing. The
 *   unread rest holds at most ceil(bytes / header) records, and next_seq skips all the
 *   seqs they could have had (DESIGN.md: never hand out a torn record's seq again).
 *
 * Preallocation. fdatasync of a write that grows the file must also write the inode and
 * the block map; overwriting blocks that already hold zeros needs neither, and took half
 * the time and CPU on the build machine (0.15-0.19 ms against 0.27-0.68 ms a sync). So
 * each flush also writes zeros ahead of the data when fewer than SB_SPOOL_ZERO_AHEAD / 2
 * are left (one growing sync per half MiB instead of one per group), and records are
 * written with pwrite into the zeros. A clean close cuts the zeros off again; after a
 * crash the scan ends a segment at a header of zeros without counting it as torn. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "sb_crc32c.h"
#include "sb_mem.h"
#include "sb_spool.h"
#include "sb_time.h"
#include "sb_banned.h"

#define SB_SPOOL_HDR 28                    // record header bytes (layout above)
#define SB_SPOOL_MAGIC 0x53425300u         // "SBS" in the top three bytes, type below
#define SB_SPOOL_DATA 1u                   // record type: one envelope
#define SB_SPOOL_ACK 2u                    // record type: acked seqs
#define SB_SPOOL_MAX_PAYLOAD (256u << 20)  // one record; MAX_BODY_BYTES is at most 64 MiB
#define SB_SPOOL_SEGMENT_BYTES (64u << 20) // rotate past this; at most max_bytes/4
#define SB_SPOOL_ACKS_PER_RECORD 65536u    // seqs per ack record (512 KiB)
#define SB_SPOOL_READ_BYTES (1u << 20)     // read size of the scan at open
#define SB_SPOOL_BUF_KEEP (8u << 20)       // write buffer capacity kept after a sync
#define SB_SPOOL_COMPACT_MIN 1024u         // tombstones tolerated before a compaction
#define SB_SPOOL_BASE_MS 10000             // default first redelivery (REDELIVER_AFTER_MS)
#define SB_SPOOL_MAX_MS 300000             // default backoff cap (REDELIVER_MAX_MS)
#define SB_SPOOL_NAME_MAX 32               // "%020" PRIu64 ".seg" and its NUL fit
// Seqs and segment names at or above this are corrupt: next_seq = highest + 1 must not
// wrap to 0 (found by fuzz/fuzz_spool.c). 2^62 events at 10^6/s take 146,000 years.
#define SB_SPOOL_SEQ_LIMIT (UINT64_C(1) << 62)
#define SB_SPOOL_ZERO_AHEAD (1u << 20) // zeros kept written ahead of the data (above)

typedef struct {
    uint64_t first;   // seq in the file name (see the invariants)
    int fd;           // reads; the active segment's is also the append descriptor
    uint64_t size;    // bytes of records in the file (the zeros after them not counted)
    uint64_t zeroed;  // file bytes written so far, records and zeros ahead of them
    size_t live;      // durable data records here that are not acked
    uint64_t max_seq; // highest data seq written here, 0 if none
    uint64_t ack_min; // lowest seq named by an ack record here, UINT64_MAX if none
} s_segment_t;

typedef struct {
    uint64_t seq;      // sequence number, the index's key
    s_segment_t *seg;  // where the record lives; NULL while it is only in the buffer
    uint64_t off;      // record header offset in seg, or in the write buffer
    uint32_t len;      // payload bytes
    uint32_t attempts; // pushes after the first one since open: the backoff exponent
    int64_t append_ms; // from the record header
    int64_t due_ms;    // next redelivery; meaningful once sent
    bool sent;         // pushed at least once since open
    bool acked;        // tombstone: the writer committed it
    uint32_t wait_ms;  // the backoff chosen at the last push (due_ms - wait_ms = sent at)
} s_entry_t;

struct sb_spool {
    char *dir;              // as given to sb_spool_new, for paths and messages
    int dir_fd;             // for openat/unlinkat, fsync and the flock
    char epoch[17];         // 16 hex digits and a NUL
    uint64_t max_bytes;     // bound on bytes + buffered; 0: none
    uint64_t segment_bytes; // rotate once the active segment has this many
    int64_t base_ms;        // first redelivery after a push, at least
    int64_t max_ms;         // backoff cap
    double srtt_ms;         // smoothed push-to-ack time (RFC 6298), once have_rtt
    double rttvar_ms;       // its mean deviation
    bool have_rtt;          // an ack of a record pushed once has been seen
    double ack_rate;        // acks per second, smoothed over 1 s buckets; 0: unknown
    int64_t rate_start_ms;  // start of the current bucket (0: none yet)
    uint32_t rate_count;    // acks in it
    bool held;              // sb_spool_hold: pushed records are not redelivered
    s_segment_t **segs;     // by name; the last one is the active segment
    size_t n_segs;          // entries used in segs
    size_t cap_segs;        // entries allocated in segs
    uint64_t bytes;         // sum of the segments' sizes
    s_entry_t *ents;        // the index; ents[head..n_ents) ordered by seq
    size_t head;            // first entry that may be live
    size_t n_ents;          // entries used in ents
    size_t cap_ents;        // entries allocated in ents
    size_t live;            // entries not acked: the depth
    size_t pushed;          // entries pushed since open and not acked: the credit in use
    unsigned char *buf;     // records appended since the last sync
    size_t buf_len;         // bytes used in buf
    size_t buf_cap;         // bytes allocated in buf
    size_t inflight_len;    // bytes of the flush between begin and finish
    bool flushing;          // a flush is between sb_spool_sync_begin and _finish
    uint64_t *acks;         // seqs acked since the last sync, not yet in buf
    size_t n_acks;          // entries used in acks
    size_t cap_acks;        // entries allocated in acks
    uint64_t next_seq;      // what the next append gets
    uint64_t synced_seq;    // every seq <= this is durable
    int64_t due_floor;      // no durable pending record is due before this
    unsigned char *scratch; // one record read back by sb_spool_due
    size_t scratch_cap;     // bytes allocated in scratch
    size_t torn;            // records skipped: by the scan, or corrupt when read
    bool failed;            // a write or fsync failed: stays failed for good
    bool visiting;          // inside sb_spool_due: entries must not move
    int fail_write_nth;     // test hook: the nth write from now fails; 0: none
    int fail_sync_nth;      // test hook: the nth fsync/fdatasync from now fails
};

// Test hooks, not in sb_spool.h: tests/unit/test_spool.c declares them too.
void sb_spool_test_set_segment_bytes(sb_spool_t *self, uint64_t bytes);
void sb_spool_test_fail_io(sb_spool_t *self, int nth_write, int nth_sync);

static void
s_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void
s_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
s_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
s_get64(const unsigned char *p)
{
    return (uint64_t)s_get32(p) | (uint64_t)s_get32(p + 4) << 32;
}

static void
s_segment_name(char name[SB_SPOOL_NAME_MAX], uint64_t first)
{
    snprintf(name, SB_SPOOL_NAME_MAX, "%020" PRIu64 ".seg", first);
}

// Fill the header at rec, whose payload follows it, including the CRC.
static void
s_frame(unsigned char *rec, uint32_t type, uint32_t len, uint64_t seq, int64_t ms)
{
    s_put32(rec, SB_SPOOL_MAGIC | type);
    s_put32(rec + 4, len);
    s_put64(rec + 8, seq);
    s_put64(rec + 16, (uint64_t)ms);
    uint32_t crc = sb_crc32c(0, rec, 24);
    s_put32(rec + 24, sb_crc32c(crc, rec + SB_SPOOL_HDR, len));
}

// Whether a header read from disk frames a plausible record of at most avail payload
// bytes. Checked before anything trusts the length.
static bool
s_header_ok(const unsigned char *h, uint64_t avail)
{
    uint32_t magic = s_get32(h), len = s_get32(h + 4);
    if (magic == (SB_SPOOL_MAGIC | SB_SPOOL_DATA))
        return len <= SB_SPOOL_MAX_PAYLOAD && len <= avail;
    if (magic == (SB_SPOOL_MAGIC | SB_SPOOL_ACK))
        return len > 0 && len % 8 == 0 && len <= avail && s_get64(h + 8) == 0;
    return false;
}

static bool
s_crc_ok(const unsigned char *rec)
{
    uint32_t crc = sb_crc32c(0, rec, 24);
    return sb_crc32c(crc, rec + SB_SPOOL_HDR, s_get32(rec + 4)) == s_get32(rec + 24);
}

static unsigned char *
s_buf_reserve(sb_spool_t *self, size_t n)
{
    if (self->buf_cap - self->buf_len < n) {
        size_t cap = self->buf_cap ? self->buf_cap : 64 * 1024;
        while (cap - self->buf_len < n)
            cap *= 2;
        self->buf = sb_xrealloc(self->buf, cap);
        self->buf_cap = cap;
    }
    unsigned char *p = self->buf + self->buf_len;
    self->buf_len += n;
    return p;
}

// --- I/O, with the test hooks -------------------------------------------------------

// pwrite all n bytes at off. 0, or -1 with errno (EIO when no progress: no spin).
static int
s_pwrite_all(int fd, const unsigned char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t rc = pwrite(fd, p, n, (off_t)off);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            if (rc == 0)
                errno = EIO;
            return -1;
        }
        p += rc;
        off += (uint64_t)rc;
        n -= (size_t)rc;
    }
    return 0;
}

// All n bytes at the start of a new (truncated) file; the write test hook applies.
static int
s_write_all(sb_spool_t *self, int fd, const unsigned char *p, size_t n)
{
    if (self->fail_write_nth > 0 && --self->fail_write_nth == 0) {
        errno = EIO;
        return -1;
    }
    return s_pwrite_all(fd, p, n, 0);
}

// fdatasync for data, fsync for a directory (its entries are what matters there).
static int
s_sync_fd(sb_spool_t *self, int fd, bool data)
{
    if (self->fail_sync_nth > 0 && --self->fail_sync_nth == 0) {
        errno = EIO;
        return -1;
    }
    return data ? fdatasync(fd) : fsync(fd);
}

static int
s_read_at(int fd, unsigned char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t rc = pread(fd, p, n, (off_t)off);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            if (rc == 0)
                errno = EIO; // shorter than the index says: someone truncated it
            return -1;
        }
        p += rc;
        n -= (size_t)rc;
        off += (uint64_t)rc;
    }
    return 0;
}

// The spool stops for good. Never retry a failed fsync: the kernel may have dropped
// the dirty pages and marked them clean, so a second fsync can succeed with the data
// gone (PostgreSQL fd.c, data_sync_elevel). The same holds after a failed write, whose
// bytes may be half on disk. The ingress answers 503 until it is restarted.
static int
s_fail(sb_spool_t *self, sb_err_t *err, const char *what)
{
    int code = errno;
    self->failed = true;
    sb_err_set(err, code, "could not %s spool \"%s\"", what, self->dir);
    return -1;
}

// --- segments ------------------------------------------------------------------------

static s_segment_t *
s_active(const sb_spool_t *self)
{
    return self->n_segs ? self->segs[self->n_segs - 1] : NULL;
}

static s_segment_t *
s_segment_add(sb_spool_t *self, uint64_t first, int fd, uint64_t size)
{
    if (self->n_segs == self->cap_segs) {
        self->cap_segs = self->cap_segs ? self->cap_segs * 2 : 16;
        self->segs = sb_xrealloc(self->segs, self->cap_segs * sizeof *self->segs);
    }
    s_segment_t *seg = sb_xcalloc(1, sizeof *seg);
    seg->first = first;
    seg->fd = fd;
    seg->size = size;
    seg->ack_min = UINT64_MAX;
    self->segs[self->n_segs++] = seg;
    self->bytes += size;
    return seg;
}

// Start the segment that holds records from first on. Its name is made durable before
// any record goes in, so a crash cannot lose the file that holds acked records.
static int
s_segment_open(sb_spool_t *self, uint64_t first, sb_err_t *err)
{
    char name[SB_SPOOL_NAME_MAX];
    s_segment_name(name, first);
    // Not O_APPEND: flushes pwrite into the zeros written ahead (see Preallocation).
    int fd = openat(self->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        sb_err_set(err, errno, "could not create spool segment \"%s/%s\"", self->dir, name);
        return -1;
    }
    if (s_sync_fd(self, self->dir_fd, false) != 0) {
        sb_err_set(err, errno, "could not fsync spool directory \"%s\"", self->dir);
        close(fd);
        unlinkat(self->dir_fd, name, 0); // no half-made segment survives a failure
        return -1;
    }
    s_segment_add(self, first, fd, 0);
    return 0;
}

// Cut the zeros written ahead off a segment that takes no more records. Not fsynced:
// after a crash the scan ends at the zeros anyway. A failure only leaves them there.
static void
s_trim(s_segment_t *seg)
{
    if (seg->zeroed > seg->size && ftruncate(seg->fd, (off_t)seg->size) == 0)
        seg->zeroed = seg->size;
}

// Delete every segment that holds nothing needed any more: not the active one, no
// live data, and no ack naming a seq that an older kept segment still holds. Unlinks
// are not fsynced: a segment that comes back after a crash only costs redeliveries.
static void
s_gc(sb_spool_t *self)
{
    uint64_t kept_max = 0; // highest data seq in the older segments that stay
    size_t j = 0;
    for (size_t i = 0; i < self->n_segs; i++) {
        s_segment_t *seg = self->segs[i];
        char name[SB_SPOOL_NAME_MAX];
        s_segment_name(name, seg->first);
        bool dead = i + 1 < self->n_segs && seg->live == 0 && kept_max < seg->ack_min;
        if (dead && unlinkat(self->dir_fd, name, 0) == 0) {
            close(seg->fd);
            self->bytes -= seg->size;
            free(seg);
            continue;
        }
        if (seg->max_seq > kept_max)
            kept_max = seg->max_seq;
        self->segs[j++] = seg;
    }
    self->n_segs = j;
}

// --- the index -----------------------------------------------------------------------

static s_entry_t *
s_find(sb_spool_t *self, uint64_t seq)
{
    size_t lo = self->head, hi = self->n_ents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->ents[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < self->n_ents && self->ents[lo].seq == seq ? &self->ents[lo] : NULL;
}

static s_entry_t *
s_entry_add(sb_spool_t *self, uint64_t seq, uint32_t len, int64_t append_ms)
{
    if (self->n_ents == self->cap_ents) {
        self->cap_ents = self->cap_ents ? self->cap_ents * 2 : 1024;
        self->ents = sb_xrealloc(self->ents, self->cap_ents * sizeof *self->ents);
    }
    s_entry_t *e = &self->ents[self->n_ents++];
    *e = (s_entry_t){.seq = seq, .len = len, .append_ms = append_ms};
    self->live++;
    return e;
}

// Keep head on the oldest live entry, and squeeze out the tombstones once they
// outnumber the live entries (amortized O(1) per ack). Not while sb_spool_due walks
// the entries by position.
static void
s_compact(sb_spool_t *self)
{
    while (self->head < self->n_ents && self->ents[self->head].acked)
        self->head++;
    size_t dead = self->n_ents - self->head - self->live;
    if (self->visiting)
        return;
    if (self->head < SB_SPOOL_COMPACT_MIN && dead < SB_SPOOL_COMPACT_MIN)
        return;
    if (self->head + dead <= self->live)
        return;
    size_t j = 0;
    for (size_t i = self->head; i < self->n_ents; i++)
        if (!self->ents[i].acked)
            self->ents[j++] = self->ents[i];
    self->n_ents = j;
    self->head = 0;
}

// Mark the live entry e acked in memory. Returns the segment left without live data, or
// NULL.
static s_segment_t *
s_entry_ack(sb_spool_t *self, s_entry_t *e)
{
    e->acked = true;
    self->live--;
    if (e->sent)
        self->pushed--;
    s_segment_t *seg = e->seg;
    s_compact(self);
    if (seg == NULL) // still in the buffer: the segment count starts at the sync
        return NULL;
    seg->live--;
    return seg->live == 0 ? seg : NULL;
}

// Mark seq acked in memory, if it is live (*found).
static s_segment_t *
s_index_ack(sb_spool_t *self, uint64_t seq, bool *found)
{
    s_entry_t *e = s_find(self, seq);
    *found = e != NULL && !e->acked;
    return *found ? s_entry_ack(self, e) : NULL;
}

// --- open: directory, epoch, scan ----------------------------------------------------

// mkdir of the last component; when it is new, fsync its parent so that the name
// survives a crash together with the records put in it.
static int
s_mkdir(const char *dir, sb_err_t *err)
{
    if (mkdir(dir, 0700) != 0) {
        if (errno == EEXIST)
            return 0;
        sb_err_set(err, errno, "could not create spool directory \"%s\"", dir);
        return -1;
    }
    char *parent = sb_xstrdup(dir);
    char *slash = strrchr(parent, '/');
    while (slash && slash > parent && slash[1] == '\0') { // "a/b/" names "a/b"
        *slash = '\0';
        slash = strrchr(parent, '/');
    }
    const char *path = slash == NULL ? "." : slash == parent ? "/" : parent;
    if (slash && slash != parent)
        *slash = '\0';
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    if (rc != 0)
        sb_err_set(err, errno, "could not fsync the parent of spool directory \"%s\"", dir);
    if (fd >= 0)
        close(fd);
    free(parent);
    return rc;
}

static int
s_epoch_create(sb_spool_t *self, sb_err_t *err)
{
    unsigned char raw[8];
    for (size_t got = 0; got < sizeof raw;) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno != EINTR) {
            sb_err_set(err, errno, "could not get random bytes for the spool epoch");
            return -1;
        }
        got += n > 0 ? (size_t)n : 0;
    }
    char text[18];
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(text + 2 * i, 3, "%02x", raw[i]);
    text[16] = '\n';
    // Write, fsync, rename, fsync the directory: the epoch file is whole or absent.
    int fd = openat(self->dir_fd, "epoch.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        sb_err_set(err, errno, "could not create \"%s/epoch.tmp\"", self->dir);
        return -1;
    }
    int rc = -1;
    if (s_write_all(self, fd, (unsigned char *)text, 17) != 0 || s_sync_fd(self, fd, false) != 0)
        sb_err_set(err, errno, "could not write \"%s/epoch.tmp\"", self->dir);
    else if (renameat(self->dir_fd, "epoch.tmp", self->dir_fd, "epoch") != 0)
        sb_err_set(err, errno, "could not rename \"%s/epoch.tmp\" to epoch", self->dir);
    else if (s_sync_fd(self, self->dir_fd, false) != 0)
        sb_err_set(err, errno, "could not fsync spool directory \"%s\"", self->dir);
    else
        rc = 0;
    close(fd);
    if (rc != 0)
        unlinkat(self->dir_fd, "epoch.tmp", 0);
    memcpy(self->epoch, text, 16);
    self->epoch[16] = '\0';
    return rc;
}

static int
s_epoch_load(sb_spool_t *self, sb_err_t *err)
{
    int fd = openat(self->dir_fd, "epoch", O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return s_epoch_create(self, err);
    if (fd < 0) {
        sb_err_set(err, errno, "could not open \"%s/epoch\"", self->dir);
        return -1;
    }
    char text[64];
    ssize_t n;
    do
        n = read(fd, text, sizeof text);
    while (n < 0 && errno == EINTR);
    int code = errno;
    close(fd);
    if (n < 0) {
        sb_err_set(err, code, "could not read \"%s/epoch\"", self->dir);
        return -1;
    }
    bool ok = n == 16 || (n == 17 && text[16] == '\n');
    for (int i = 0; ok && i < 16; i++)
        ok = (text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f');
    if (!ok) {
        sb_err_set(err, 0, "invalid spool epoch file \"%s/epoch\": expected 16 hex digits",
                   self->dir);
        return -1;
    }
    memcpy(self->epoch, text, 16);
    self->epoch[16] = '\0';
    return 0;
}

// Sequential reader over one segment for the scan: hands out views of the file.
typedef struct {
    int fd;             // the segment
    uint64_t size;      // its bytes
    unsigned char *buf; // file bytes [buf_off, buf_off + len)
    size_t cap;         // bytes allocated in buf
    uint64_t buf_off;   // file offset of buf[0]
    size_t len;         // valid bytes in buf
} s_reader_t;

// Point *out at n file bytes from off (off only grows, off + n <= size). 0, or -1
// with errno.
static int
s_reader_get(s_reader_t *r, uint64_t off, size_t n, const unsigned char **out)
{
    if (off + n > r->buf_off + r->len) {
        size_t keep = off < r->buf_off + r->len ? (size_t)(r->buf_off + r->len - off) : 0;
        if (keep > 0)
            memmove(r->buf, r->buf + (off - r->buf_off), keep);
        r->buf_off = off;
        r->len = keep;
        if (n > r->cap) {
            r->cap = n > 2 * r->cap ? n : 2 * r->cap;
            r->buf = sb_xrealloc(r->buf, r->cap);
        }
        uint64_t left = r->size - (off + r->len);
        size_t want = r->cap - r->len < left ? r->cap - r->len : (size_t)left;
        if (s_read_at(r->fd, r->buf + r->len, want, off + r->len) != 0)
            return -1;
        r->len += want;
    }
    *out = r->buf + (off - r->buf_off);
    return 0;
}

// Apply one valid record found by the scan. false when it breaks the seq order, which
// only corruption that kept the CRC intact can do: treat it like a bad CRC.
static bool
s_scan_record(sb_spool_t *self, s_segment_t *seg, const unsigned char *rec, uint64_t off,
              uint64_t *max_seen)
{
    uint32_t len = s_get32(rec + 4);
    if (s_get32(rec) == (SB_SPOOL_MAGIC | SB_SPOOL_ACK)) {
        for (uint32_t i = 0; i < len; i += 8) {
            uint64_t seq = s_get64(rec + SB_SPOOL_HDR + i);
            bool found;
            s_index_ack(self, seq, &found); // segments are deleted after the scan
            if (seq < seg->ack_min)
                seg->ack_min = seq;
        }
        return true;
    }
    uint64_t seq = s_get64(rec + 8);
    if (seq <= *max_seen || seq < seg->first || seq >= SB_SPOOL_SEQ_LIMIT)
        return false;
    s_entry_t *e = s_entry_add(self, seq, len, (int64_t)s_get64(rec + 16));
    e->seg = seg;
    e->off = off;
    seg->live++;
    seg->max_seq = seq;
    *max_seen = seq;
    return true;
}

// Whether the header at off is all zeros (or the file ends in zeros before a header).
static bool
s_is_zero_header(s_reader_t *r, uint64_t off, uint64_t avail)
{
    size_t n = avail < SB_SPOOL_HDR ? (size_t)avail : SB_SPOOL_HDR;
    const unsigned char *h;
    if (n == 0 || s_reader_get(r, off, n, &h) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (h[i] != 0)
            return false;
    return true;
}

// Read one segment's records into the index. A bad record ends this segment (torn);
// *seq_floor rises past every seq its unreadable rest could hold. -1 only on I/O errors.
static int
s_scan_segment(sb_spool_t *self, s_segment_t *seg, s_reader_t *r, uint64_t *max_seen,
               uint64_t *seq_floor, sb_err_t *err)
{
    *r = (s_reader_t){.fd = seg->fd, .size = seg->size, .buf = r->buf, .cap = r->cap};
    uint64_t off = 0;
    while (off < seg->size) {
        const unsigned char *rec;
        uint64_t avail = seg->size - off;
        bool ok = avail >= SB_SPOOL_HDR;
        if (ok && s_reader_get(r, off, SB_SPOOL_HDR, &rec) != 0)
            goto io_error;
        ok = ok && s_header_ok(rec, avail - SB_SPOOL_HDR);
        size_t n = ok ? SB_SPOOL_HDR + (size_t)s_get32(rec + 4) : 0;
        if (ok && s_reader_get(r, off, n, &rec) != 0)
            goto io_error;
        if (!ok || !s_crc_ok(rec) || !s_scan_record(self, seg, rec, off, max_seen)) {
            // Zeros: the end of what a crashed ingress had written (its preallocation),
            // or a group whose write never reached the disk, so never answered 200.
            if (!s_is_zero_header(r, off, avail))
                self->torn++;
            seg->size = off; // the records; the zeros or the torn rest are not counted
            self->bytes -= avail;
            uint64_t base = seg->max_seq >= seg->first ? seg->max_seq + 1 : seg->first;
            uint64_t bound = base + (avail + SB_SPOOL_HDR - 1) / SB_SPOOL_HDR;
            if (bound > *seq_floor)
                *seq_floor = bound;
            return 0;
        }
        off += n;
    }
    return 0;
io_error:
    sb_err_set(err, errno, "could not read spool segment \"%s/%020" PRIu64 ".seg\"", self->dir,
               seg->first);
    return -1;
}

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

// The first seqs of the segment files in dir, sorted. Other names are not ours.
static int
s_list_segments(sb_spool_t *self, uint64_t **firsts, size_t *n, sb_err_t *err)
{
    DIR *d = opendir(self->dir);
    if (d == NULL) {
        sb_err_set(err, errno, "could not list spool directory \"%s\"", self->dir);
        return -1;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strlen(name) != 24 || strcmp(name + 20, ".seg") != 0 ||
            strspn(name, "0123456789") != 20)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *firsts = sb_xrealloc(*firsts, cap * sizeof **firsts);
        }
        errno = 0;
        uint64_t first = strtoull(name, NULL, 10);
        if (errno == 0 && first > 0 && first < SB_SPOOL_SEQ_LIMIT)
            (*firsts)[(*n)++] = first;
    }
    closedir(d);
    if (*n > 1)
        qsort(*firsts, *n, sizeof **firsts, s_cmp_u64);
    return 0;
}

// Open one existing segment for reading. fdatasync it first: after a crash of the
// process (not of the machine) its records may still sit only in the page cache, and
// pushing those downstream before they are durable is the trap DESIGN.md names.
static int
s_segment_load(sb_spool_t *self, uint64_t first, sb_err_t *err)
{
    char name[SB_SPOOL_NAME_MAX];
    s_segment_name(name, first);
    int fd = openat(self->dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        sb_err_set(err, errno, "could not open spool segment \"%s/%s\"", self->dir, name);
        goto fail;
    }
    if (s_sync_fd(self, fd, true) != 0) {
        sb_err_set(err, errno, "could not fsync spool segment \"%s/%s\"", self->dir, name);
        goto fail;
    }
    s_segment_add(self, first, fd, (uint64_t)st.st_size);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

static int
s_scan(sb_spool_t *self, sb_err_t *err)
{
    uint64_t *firsts = NULL, max_seen = 0, seq_floor = 1;
    size_t n = 0;
    s_reader_t r = {.buf = sb_xmalloc(SB_SPOOL_READ_BYTES), .cap = SB_SPOOL_READ_BYTES};
    int rc = -1;
    if (s_list_segments(self, &firsts, &n, err) != 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (s_segment_load(self, firsts[i], err) != 0 ||
            s_scan_segment(self, s_active(self), &r, &max_seen, &seq_floor, err) != 0)
            goto cleanup;
    }
    // Past every seq seen, every seq a torn rest could hold and every segment name.
    uint64_t next = max_seen + 1;
    if (seq_floor > next)
        next = seq_floor;
    if (n > 0 && firsts[n - 1] + 1 > next)
        next = firsts[n - 1] + 1;
    self->next_seq = next;
    self->synced_seq = next - 1;
    rc = 0;
cleanup:
    free(firsts);
    free(r.buf);
    return rc;
}

// --- public --------------------------------------------------------------------------

sb_spool_t *
sb_spool_new(const char *dir, uint64_t max_bytes, sb_err_t *err)
{
    assert(dir);
    sb_spool_t *self = sb_xcalloc(1, sizeof *self); // aborts on OOM
    self->dir_fd = -1;                              // so destroy copes with a half-built spool
    self->dir = sb_xstrdup(dir);
    self->max_bytes = max_bytes;
    self->segment_bytes = SB_SPOOL_SEGMENT_BYTES;
    // Under a small bound, rotate sooner: the active segment cannot be deleted, so it
    // must stay a small part of max_bytes or acked records would keep the spool full.
    if (max_bytes > 0 && max_bytes / 4 < self->segment_bytes)
        self->segment_bytes = max_bytes / 4 > 0 ? max_bytes / 4 : 1;
    self->base_ms = SB_SPOOL_BASE_MS;
    self->max_ms = SB_SPOOL_MAX_MS;
    self->due_floor = INT64_MIN; // everything found is due at once
    if (s_mkdir(dir, err) != 0)
        goto fail;
    self->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0) {
        sb_err_set(err, errno, "could not open spool directory \"%s\"", dir);
        goto fail;
    }
    // Two processes appending to one spool would interleave records and reuse seqs.
    if (flock(self->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        sb_err_set(err, errno, "could not lock spool directory \"%s\" (another ingress?)", dir);
        goto fail;
    }
    if (s_epoch_load(self, err) != 0 || s_scan(self, err) != 0)
        goto fail;
    // Only a corrupt segment gets here (2^62 events at 10^6/s take 146,000 years): a new
    // segment named at or past the limit would be ignored by the next open, and its seqs
    // handed out again (found by fuzz/fuzz_spool.c).
    if (self->next_seq >= SB_SPOOL_SEQ_LIMIT - 1) { // the same bound as sb_spool_append
        sb_err_set(err, ERANGE,
                   "spool \"%s\" holds sequence numbers near 2^62: corrupt segments? Move "
                   "the directory away to start a new spool",
                   dir);
        goto fail;
    }
    // New records always go to a new segment: never append after a torn tail.
    if (s_segment_open(self, self->next_seq, err) != 0)
        goto fail;
    s_gc(self);
    s_compact(self);
    return self;
fail:
    sb_spool_destroy(&self); // one teardown path, whatever was built so far
    return NULL;
}

static int s_sync(sb_spool_t *self, sb_err_t *err);

void
sb_spool_destroy(sb_spool_t **self_p)
{
    assert(self_p);
    sb_spool_t *self = *self_p;
    if (self == NULL)
        return;
    // Buffered acks (and appends) get written now: the header promises it for acks,
    // and unsynced appends never got a 200, so writing them is harmless.
    if (!self->failed && !self->flushing && s_active(self) &&
        (self->buf_len > 0 || self->n_acks > 0))
        s_sync(self, NULL);
    if (!self->flushing && s_active(self))
        s_trim(s_active(self));
    for (size_t i = 0; i < self->n_segs; i++) {
        close(self->segs[i]->fd);
        free(self->segs[i]);
    }
    if (self->dir_fd >= 0)
        close(self->dir_fd); // also drops the flock
    free(self->segs);
    free(self->ents);
    free(self->buf);
    free(self->acks);
    free(self->scratch);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

const char *
sb_spool_epoch(const sb_spool_t *self)
{
    assert(self);
    return self->epoch;
}

void
sb_spool_set_redelivery(sb_spool_t *self, int64_t base_ms, int64_t max_ms)
{
    assert(self);
    self->base_ms = base_ms > 0 ? base_ms : 1;
    self->max_ms = max_ms > self->base_ms ? max_ms : self->base_ms;
}

int
sb_spool_append(sb_spool_t *self, const void *payload, size_t len, uint64_t *seq, sb_err_t *err)
{
    assert(self && (payload || len == 0) && seq);
    if (self->failed) {
        sb_err_set(err, EIO, "cannot append to spool \"%s\" after a failed write or fsync",
                   self->dir);
        return -1;
    }
    if (len > SB_SPOOL_MAX_PAYLOAD) {
        sb_err_set(err, EMSGSIZE, "cannot append %zu bytes to spool \"%s\" (at most %u)", len,
                   self->dir, SB_SPOOL_MAX_PAYLOAD);
        return -1;
    }
    if (self->next_seq >= SB_SPOOL_SEQ_LIMIT - 1) {
        sb_err_set(err, ERANGE, "spool \"%s\" has used up its sequence numbers", self->dir);
        return -1;
    }
    uint64_t used = self->bytes + self->inflight_len + self->buf_len;
    if (self->max_bytes > 0 && used + SB_SPOOL_HDR + len > self->max_bytes) {
        sb_err_set(err, ENOSPC,
                   "could not append to spool \"%s\" (%" PRIu64 " of %" PRIu64 " bytes in use)",
                   self->dir, used, self->max_bytes);
        return -1;
    }
    size_t off = self->buf_len;
    unsigned char *rec = s_buf_reserve(self, SB_SPOOL_HDR + len);
    if (len > 0)
        memcpy(rec + SB_SPOOL_HDR, payload, len);
    int64_t now = sb_wall_ms();
    s_frame(rec, SB_SPOOL_DATA, (uint32_t)len, self->next_seq, now);
    s_entry_t *e = s_entry_add(self, self->next_seq, (uint32_t)len, now);
    e->off = off;
    *seq = self->next_seq++;
    return 0;
}

uint64_t
sb_spool_next_seq(const sb_spool_t *self)
{
    assert(self);
    return self->next_seq;
}

// Frame the acks gathered since the last sync at the end of the buffer, after every
// data record they might name. Returns the lowest seq among them.
static uint64_t
s_buf_acks(sb_spool_t *self)
{
    uint64_t low = UINT64_MAX;
    int64_t now = sb_wall_ms();
    for (size_t i = 0; i < self->n_acks; i += SB_SPOOL_ACKS_PER_RECORD) {
        size_t n = self->n_acks - i;
        if (n > SB_SPOOL_ACKS_PER_RECORD)
            n = SB_SPOOL_ACKS_PER_RECORD;
        unsigned char *rec = s_buf_reserve(self, SB_SPOOL_HDR + 8 * n);
        for (size_t k = 0; k < n; k++) {
            s_put64(rec + SB_SPOOL_HDR + 8 * k, self->acks[i + k]);
            if (self->acks[i + k] < low)
                low = self->acks[i + k];
        }
        s_frame(rec, SB_SPOOL_ACK, (uint32_t)(8 * n), 0, now);
    }
    self->n_acks = 0;
    return low;
}

// Move to a new segment when the active one is full. Its name is the first seq it
// will hold, which must be above the active one's name (names never repeat).
static int
s_maybe_rotate(sb_spool_t *self, sb_err_t *err)
{
    s_segment_t *active = s_active(self);
    uint64_t first = self->next_seq - 1 > self->synced_seq ? self->synced_seq + 1 : self->next_seq;
    if (active->size < self->segment_bytes || first <= active->first)
        return 0;
    if (s_segment_open(self, first, err) != 0) {
        self->failed = true; // nothing was written, but the directory fsync may have failed
        return -1;
    }
    s_trim(active); // no more writes there: its zeros ahead go
    return 0;
}

// The flushed records (seq <= upto) are now in active from file offset at on.
static void
s_assign(sb_spool_t *self, s_segment_t *active, uint64_t at, uint64_t ack_low, uint64_t upto)
{
    for (size_t i = self->n_ents; i-- > self->head && self->ents[i].seq > self->synced_seq;) {
        s_entry_t *e = &self->ents[i];
        if (e->acked || e->seg != NULL || e->seq > upto)
            continue;
        e->seg = active;
        e->off += at;
        active->live++;
    }
    if (upto > self->synced_seq) {
        active->max_seq = upto;
        self->due_floor = INT64_MIN; // never-sent records are due at once
    }
    if (ack_low < active->ack_min)
        active->ack_min = ack_low;
    self->synced_seq = upto;
}

int
sb_spool_sync_begin(sb_spool_t *self, sb_spool_flush_t *flush, sb_err_t *err)
{
    assert(self && flush && !self->flushing);
    memset(flush, 0, sizeof *flush);
    flush->fd = -1;
    if (self->failed) {
        sb_err_set(err, EIO, "cannot sync spool \"%s\" after a failed write or fsync", self->dir);
        return -1;
    }
    if (s_maybe_rotate(self, err) != 0)
        return -1;
    flush->ack_low = s_buf_acks(self);
    flush->upto_seq = self->next_seq - 1;
    self->flushing = true;
    if (self->buf_len == 0)
        return 0;
    // The buffer moves into the flush: appends from now on start a new one, and the
    // entries they add have offsets in that new buffer (s_assign only takes <= upto_seq).
    s_segment_t *active = s_active(self);
    flush->fd = active->fd;
    flush->buf = self->buf;
    flush->len = self->buf_len;
    flush->off = active->size;
    uint64_t end = flush->off + flush->len;
    flush->zero_from = flush->zero_to = end;
    if (active->zeroed < end + SB_SPOOL_ZERO_AHEAD / 2) {
        flush->zero_from = active->zeroed > end ? active->zeroed : end;
        flush->zero_to = end + SB_SPOOL_ZERO_AHEAD;
    }
    self->inflight_len = self->buf_len;
    self->buf = NULL;
    self->buf_len = self->buf_cap = 0;
    flush->fail_write = self->fail_write_nth > 0 && --self->fail_write_nth == 0;
    flush->fail_sync = !flush->fail_write && self->fail_sync_nth > 0 && --self->fail_sync_nth == 0;
    return 0;
}

int
sb_spool_flush_write(sb_spool_flush_t *flush)
{
    const unsigned char *p = flush->buf;
    size_t n = flush->len;
    flush->io_errno = 0;
    flush->io_what = "write";
    if (flush->fail_write) {
        flush->io_errno = EIO;
        return -1;
    }
    if (s_pwrite_all(flush->fd, p, n, flush->off) != 0) {
        flush->io_errno = errno;
        return -1;
    }
    static const unsigned char zeros[64 * 1024];
    for (uint64_t at = flush->zero_from; at < flush->zero_to;) {
        size_t chunk =
            flush->zero_to - at < sizeof zeros ? (size_t)(flush->zero_to - at) : sizeof zeros;
        if (s_pwrite_all(flush->fd, zeros, chunk, at) != 0) {
            flush->io_errno = errno;
            return -1;
        }
        at += chunk;
    }
    // The one fdatasync of the group: every record appended since the last sync is
    // durable after it, and only then may the ingress answer 200 and push them.
    flush->io_what = "fdatasync";
    if (flush->len > 0 && (flush->fail_sync || fdatasync(flush->fd) != 0)) {
        flush->io_errno = flush->fail_sync ? EIO : errno;
        return -1;
    }
    return 0;
}

int
sb_spool_sync_finish(sb_spool_t *self, sb_spool_flush_t *flush, sb_err_t *err)
{
    assert(self && flush && self->flushing);
    self->flushing = false;
    self->inflight_len = 0;
    if (flush->io_errno != 0) {
        free(flush->buf);
        flush->buf = NULL;
        errno = flush->io_errno;
        return s_fail(self, err, flush->io_what); // never retried (see the header)
    }
    if (flush->len == 0) {
        s_gc(self); // a rotation may have left the old segment deletable
        return 0;
    }
    s_segment_t *active = s_active(self);
    uint64_t at = active->size;
    assert(at == flush->off);
    active->size += flush->len;
    if (flush->zero_to > active->zeroed)
        active->zeroed = flush->zero_to;
    self->bytes += flush->len;
    s_assign(self, active, at, flush->ack_low, flush->upto_seq);
    free(flush->buf); // one huge group should not pin its memory
    flush->buf = NULL;
    s_gc(self);
    return 0;
}

static int
s_sync(sb_spool_t *self, sb_err_t *err)
{
    sb_spool_flush_t flush;
    if (sb_spool_sync_begin(self, &flush, err) != 0)
        return -1;
    sb_spool_flush_write(&flush);
    return sb_spool_sync_finish(self, &flush, err);
}

int
sb_spool_sync(sb_spool_t *self, sb_err_t *err)
{
    assert(self);
    return s_sync(self, err);
}

uint64_t
sb_spool_synced_seq(const sb_spool_t *self)
{
    assert(self);
    return self->synced_seq;
}

// The first wait after a push, as TCP's retransmission timeout (RFC 6298): at least
// base_ms, and srtt + 4 x rttvar of the measured push-to-ack times. A slow database
// makes acks slow, which raises the timeout, instead of receiving copies of what it is
// still working on.
int64_t
sb_spool_rto_ms(const sb_spool_t *self)
{
    assert(self);
    int64_t rto = self->base_ms;
    if (self->have_rtt) {
        double est = self->srtt_ms + 4.0 * self->rttvar_ms;
        if (est > (double)rto)
            rto = est < (double)self->max_ms ? (int64_t)est : self->max_ms;
    }
    return rto;
}

// The queue ahead of a record pushed now: what is already pushed and unacked, drained at
// the measured ack rate (Little's law), twice over; at most 6 x base_ms. A slow but
// steady database (acks arriving slower than pushed events wait) raises the first wait
// before any ack is late, where srtt only follows once they are. 0 while no ack came in
// the last 5 s: a stage that stopped acking must not delay what its crash lost.
static int64_t
s_queue_ms(const sb_spool_t *self, int64_t now_ms)
{
    if (self->ack_rate <= 0 || now_ms - self->rate_start_ms > 5000)
        return 0;
    double ms = 2000.0 * (double)self->pushed / self->ack_rate;
    double cap = 6.0 * (double)self->base_ms;
    return (int64_t)(ms < cap ? ms : cap);
}

int64_t
sb_spool_first_wait_ms(const sb_spool_t *self, int64_t now_ms)
{
    assert(self);
    int64_t rto = sb_spool_rto_ms(self), queue = s_queue_ms(self, now_ms);
    return queue > rto ? queue : rto;
}

static int64_t
s_backoff_ms(const sb_spool_t *self, uint32_t attempts, int64_t now_ms)
{
    int64_t first = sb_spool_first_wait_ms(self, now_ms);
    if (attempts >= 62 || first > (self->max_ms >> attempts))
        return self->max_ms;
    return first << attempts;
}

// One ack of a pushed record, for the ack rate of s_queue_ms.
static void
s_rate_count(sb_spool_t *self, int64_t now_ms)
{
    if (now_ms < 0)
        return;
    if (self->rate_start_ms == 0 || now_ms < self->rate_start_ms)
        self->rate_start_ms = now_ms;
    self->rate_count++;
    int64_t span = now_ms - self->rate_start_ms;
    if (span >= 1000) {
        double r = (double)self->rate_count * 1000.0 / (double)span;
        self->ack_rate = self->ack_rate > 0 ? 0.5 * self->ack_rate + 0.5 * r : r;
        self->rate_count = 0;
        self->rate_start_ms = now_ms;
    }
}

// One push-to-ack time. Karn's rule: only records pushed once count, since the ack of a
// record pushed twice cannot say which push it answers.
static void
s_rtt_sample(sb_spool_t *self, const s_entry_t *e, int64_t now_ms)
{
    if (now_ms < 0 || !e->sent || e->attempts != 0)
        return;
    double r = (double)(now_ms - (e->due_ms - (int64_t)e->wait_ms));
    if (r < 0)
        r = 0;
    if (!self->have_rtt) {
        self->srtt_ms = r;
        self->rttvar_ms = r / 2;
        self->have_rtt = true;
    } else {
        double dev = self->srtt_ms > r ? self->srtt_ms - r : r - self->srtt_ms;
        self->rttvar_ms = 0.75 * self->rttvar_ms + 0.25 * dev;
        self->srtt_ms = 0.875 * self->srtt_ms + 0.125 * r;
    }
}

// seq went downstream at now_ms: restart its clock, and double the wait when it was
// pushed before.
static void
s_mark_pushed(sb_spool_t *self, s_entry_t *e, int64_t now_ms)
{
    if (!e->sent) {
        e->sent = true;
        self->pushed++;
    } else if (e->attempts < UINT32_MAX)
        e->attempts++;
    int64_t wait = s_backoff_ms(self, e->attempts, now_ms);
    e->wait_ms = wait < (int64_t)UINT32_MAX ? (uint32_t)wait : UINT32_MAX;
    e->due_ms = now_ms + (int64_t)e->wait_ms;
    if (e->due_ms < self->due_floor)
        self->due_floor = e->due_ms;
}

void
sb_spool_sent(sb_spool_t *self, uint64_t seq, int64_t now_ms)
{
    assert(self);
    s_entry_t *e = s_find(self, seq);
    if (e != NULL && !e->acked)
        s_mark_pushed(self, e, now_ms);
}

int
sb_spool_ack(sb_spool_t *self, uint64_t seq, int64_t now_ms)
{
    assert(self);
    s_entry_t *e = s_find(self, seq);
    bool found = e != NULL && !e->acked;
    s_segment_t *emptied = NULL;
    if (found) {
        s_rtt_sample(self, e, now_ms);
        s_rate_count(self, now_ms);
        emptied = s_entry_ack(self, e);
    }
    if (!found || self->failed) // a failed spool writes nothing more
        return found ? 1 : 0;
    // Not fsynced here: the ack record goes out with the next group. Losing it in a
    // crash only costs one harmless redelivery (the writer deduplicates).
    if (self->n_acks == self->cap_acks) {
        self->cap_acks = self->cap_acks ? self->cap_acks * 2 : 256;
        self->acks = sb_xrealloc(self->acks, self->cap_acks * sizeof *self->acks);
    }
    self->acks[self->n_acks++] = seq;
    if (emptied != NULL && emptied != s_active(self))
        s_gc(self);
    return 1;
}

int
sb_spool_was_pushed(sb_spool_t *self, uint64_t seq)
{
    assert(self);
    s_entry_t *e = s_find(self, seq);
    return e != NULL && !e->acked && e->sent;
}

size_t
sb_spool_pushed(const sb_spool_t *self)
{
    assert(self);
    return self->pushed;
}

// Read e's record back into scratch and check it. 0; -1 with err on an I/O error; 1
// with err when the record is corrupt.
static int
s_read_record(sb_spool_t *self, const s_entry_t *e, sb_err_t *err)
{
    size_t n = SB_SPOOL_HDR + (size_t)e->len;
    if (n > self->scratch_cap) {
        self->scratch_cap = n > 2 * self->scratch_cap ? n : 2 * self->scratch_cap;
        self->scratch = sb_xrealloc(self->scratch, self->scratch_cap);
    }
    if (s_read_at(e->seg->fd, self->scratch, n, e->off) != 0) {
        sb_err_set(err, errno,
                   "could not read record %" PRIu64 " from spool segment "
                   "\"%s/%020" PRIu64 ".seg\"",
                   e->seq, self->dir, e->seg->first);
        return -1;
    }
    const unsigned char *rec = self->scratch;
    if (s_get32(rec) != (SB_SPOOL_MAGIC | SB_SPOOL_DATA) || s_get32(rec + 4) != e->len ||
        s_get64(rec + 8) != e->seq || !s_crc_ok(rec)) {
        sb_err_set(err, 0,
                   "invalid record %" PRIu64 " in spool segment \"%s/%020" PRIu64
                   ".seg\" (bad CRC), dropped",
                   e->seq, self->dir, e->seg->first);
        return 1;
    }
    return 0;
}

// Drop a record that went bad on disk after the scan: it could never be delivered, and
// keeping it would stop every later sb_spool_due at the same place. The next open
// finds it again and counts it torn.
static void
s_drop(sb_spool_t *self, uint64_t seq)
{
    bool found;
    s_segment_t *emptied = s_index_ack(self, seq, &found);
    self->torn++;
    if (emptied != NULL && emptied != s_active(self))
        s_gc(self);
}

int
sb_spool_due(sb_spool_t *self, int64_t now_ms, size_t max, sb_spool_visit_fn fn, void *arg,
             sb_err_t *err)
{
    assert(self && fn);
    if (max == 0 || now_ms < self->due_floor)
        return 0; // nothing can be due yet: no walk over the index
    int pushed = 0, rc = 0;
    self->visiting = true;
    self->due_floor = INT64_MAX; // lowered by every record seen that is not due yet
    for (size_t i = self->head; i < self->n_ents; i++) {
        s_entry_t *e = &self->ents[i];
        if (e->acked)
            continue;
        if (e->seq > self->synced_seq)
            break; // only buffered records follow: never due before their sync
        if (e->sent && (self->held || e->due_ms > now_ms)) {
            if (e->due_ms < self->due_floor)
                self->due_floor = e->due_ms;
            continue;
        }
        if ((size_t)pushed == max || (rc = s_read_record(self, e, err)) != 0) {
            if (rc > 0)
                s_drop(self, e->seq);
            break;
        }
        uint64_t seq = e->seq;
        if (fn(arg, seq, self->scratch + SB_SPOOL_HDR, e->len) != 0) {
            rc = -2;
            break;
        }
        pushed++;
        e = &self->ents[i]; // fn may have appended (ents moved) or acked it
        if (!e->acked)
            s_mark_pushed(self, e, now_ms);
    }
    if (rc != 0 || (size_t)pushed == max)
        self->due_floor = INT64_MIN; // the walk stopped early: what follows is unknown
    self->visiting = false;
    s_compact(self);
    return rc == -1 || rc == 1 ? -1 : pushed;
}

void
sb_spool_hold(sb_spool_t *self, int hold, int64_t now_ms)
{
    assert(self && !self->visiting);
    if (hold == self->held)
        return;
    self->held = hold;
    if (hold)
        return;
    // Released: what was pushed is still queued downstream, about to be stored. Its
    // clock starts again now rather than at a push that may be minutes old.
    for (size_t i = self->head; i < self->n_ents; i++) {
        s_entry_t *e = &self->ents[i];
        if (!e->acked && e->sent && e->due_ms < now_ms + (int64_t)e->wait_ms)
            e->due_ms = now_ms + (int64_t)e->wait_ms;
    }
    self->due_floor = INT64_MIN;
}

size_t
sb_spool_depth(const sb_spool_t *self)
{
    assert(self);
    return self->live;
}

uint64_t
sb_spool_bytes(const sb_spool_t *self)
{
    assert(self);
    return self->bytes;
}

int64_t
sb_spool_oldest_ms(const sb_spool_t *self)
{
    assert(self);
    return self->head < self->n_ents ? self->ents[self->head].append_ms : 0;
}

size_t
sb_spool_torn(const sb_spool_t *self)
{
    assert(self);
    return self->torn;
}

int
sb_spool_failed(const sb_spool_t *self)
{
    assert(self);
    return self->failed ? 1 : 0;
}

void
sb_spool_test_set_segment_bytes(sb_spool_t *self, uint64_t bytes)
{
    assert(self);
    self->segment_bytes = bytes;
}

void
sb_spool_test_fail_io(sb_spool_t *self, int nth_write, int nth_sync)
{
    assert(self);
    self->fail_write_nth = nth_write;
    self->fail_sync_nth = nth_sync;
}
