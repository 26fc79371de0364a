/* test_spool - the ingress spool: durability across reopen, acks, torn and corrupt
 * records, seq reuse, segment deletion, redelivery timing, bounds, I/O errors, and
 * the CRC-32C under it. Every test gets its own mkdtemp directory. A "crash" is a
 * forked child that _exits without sb_spool_destroy (which would write buffered acks). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sb_check.h"
#include "sb_crc32c.h"
#include "sb_mem.h"
#include "sb_spool.h"
#include "sb_banned.h"

// Test hooks defined in common/sb_spool.c (not part of sb_spool.h).
void sb_spool_test_set_segment_bytes(sb_spool_t *self, uint64_t bytes);
// The nth write(2), and the nth fsync/fdatasync (directory fsyncs count too), from
// now on fails with EIO; 0 disarms.
void sb_spool_test_fail_io(sb_spool_t *self, int nth_write, int nth_sync);

static char s_root[64]; // all directories of this run: removed even when a test failed
static char s_dir[128]; // this test's spool directory, inside s_root

// Remove dir and everything below it (spool directories are shallow: no symlinks).
static void
remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char path[512];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                remove_dir(path);
            else
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

// Unchecked fixture: runs in the runner's process, so its teardown also cleans up
// after a test whose process died in an assertion before its own teardown.
static void
setup_root(void)
{
    snprintf(s_root, sizeof s_root, "/tmp/sb_spool_XXXXXX");
    if (mkdtemp(s_root) == NULL)
        abort();
}

static void
teardown_root(void)
{
    remove_dir(s_root);
}

static void
setup(void)
{
    snprintf(s_dir, sizeof s_dir, "%s/t_XXXXXX", s_root);
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
}

static void
teardown(void)
{
    remove_dir(s_dir);
}

static sb_spool_t *
open_spool(uint64_t max_bytes)
{
    sb_err_t err = {0};
    sb_spool_t *spool = sb_spool_new(s_dir, max_bytes, &err);
    ck_assert_msg(spool != NULL, "open \"%s\": %s", s_dir, err.msg);
    return spool;
}

static uint64_t
append(sb_spool_t *spool, const char *text)
{
    sb_err_t err = {0};
    uint64_t seq = 0;
    ck_assert_msg(sb_spool_append(spool, text, strlen(text), &seq, &err) == 0, "append: %s",
                  err.msg);
    return seq;
}

static void
sync_ok(sb_spool_t *spool)
{
    sb_err_t err = {0};
    ck_assert_msg(sb_spool_sync(spool, &err) == 0, "sync: %s", err.msg);
}

// Segment files in the test directory; *newest gets the path of the last by name.
static size_t
count_segments(char *newest, size_t newest_size)
{
    DIR *d = opendir(s_dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    char best[256] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len != 24 || strcmp(de->d_name + 20, ".seg") != 0)
            continue;
        n++;
        if (strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    }
    closedir(d);
    if (newest != NULL)
        snprintf(newest, newest_size, "%s/%s", s_dir, best);
    return n;
}

static uint64_t
segment_bytes_on_disk(void)
{
    DIR *d = opendir(s_dir);
    ck_assert_ptr_nonnull(d);
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 24 || strcmp(de->d_name + 20, ".seg") != 0)
            continue;
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", s_dir, de->d_name);
        ck_assert_int_eq(stat(path, &st), 0);
        total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

// Truncate the newest segment by n bytes: a write that the crash cut short.
static void
chop_newest_segment(size_t n)
{
    char path[512];
    ck_assert_uint_gt(count_segments(path, sizeof path), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_ge(st.st_size, (off_t)n);
    ck_assert_int_eq(truncate(path, st.st_size - (off_t)n), 0);
}

// Flip every bit of one byte of the newest segment.
static void
flip_newest_segment_byte(off_t off)
{
    char path[512];
    ck_assert_uint_gt(count_segments(path, sizeof path), 0);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char b;
    ck_assert_int_eq(pread(fd, &b, 1, off), 1);
    b ^= 0xFF;
    ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

// What sb_spool_due handed out.
typedef struct {
    size_t n;           // records visited and accepted
    size_t refuse_from; // return -1 from this visit on (0: never)
    size_t calls;       // visits, accepted or not
    uint64_t seqs[64];  // seqs accepted, in order
    char *payloads[64]; // copies of their payloads
    size_t lens[64];    // their lengths
} seen_t;

static int
collect(void *arg, uint64_t seq, const void *payload, size_t len)
{
    seen_t *seen = arg;
    seen->calls++;
    if (seen->refuse_from != 0 && seen->calls >= seen->refuse_from)
        return -1;
    if (seen->n < 64) {
        seen->seqs[seen->n] = seq;
        seen->payloads[seen->n] = sb_xmemdup(payload, len);
        seen->lens[seen->n] = len;
    }
    seen->n++;
    return 0;
}

static void
seen_release(seen_t *seen)
{
    for (size_t i = 0; i < seen->n && i < 64; i++)
        free(seen->payloads[i]);
    *seen = (seen_t){0};
}

static int
due(sb_spool_t *spool, int64_t now_ms, size_t max, seen_t *seen)
{
    sb_err_t err = {0};
    int n = sb_spool_due(spool, now_ms, max, collect, seen, &err);
    ck_assert_msg(n >= 0, "due: %s", err.msg);
    return n;
}

// The ingress writes a group on another thread while it keeps appending: records
// appended during the flush are not durable after it, and are the next group.
START_TEST(appends_during_a_flush_wait_for_the_next_one)
{
    sb_spool_t *spool = open_spool(0);
    uint64_t first = append(spool, "first group");
    sb_spool_flush_t flush;
    sb_err_t err = {0};
    ck_assert_msg(sb_spool_sync_begin(spool, &flush, &err) == 0, "begin: %s", err.msg);
    ck_assert_uint_gt(flush.len, 0);
    uint64_t second = append(spool, "appended while the first group is on its way");
    sb_spool_ack(spool, first, -1); // acked before it is even durable: must still work
    ck_assert_int_eq(sb_spool_flush_write(&flush), 0);
    ck_assert_msg(sb_spool_sync_finish(spool, &flush, &err) == 0, "finish: %s", err.msg);
    ck_assert_uint_eq(sb_spool_synced_seq(spool), first);
    ck_assert_uint_lt(sb_spool_synced_seq(spool), second);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 0, 10, &seen), 0); // second is not durable: never due
    seen_release(&seen);
    sync_ok(spool);
    ck_assert_uint_eq(sb_spool_synced_seq(spool), second);
    ck_assert_int_eq(due(spool, 0, 10, &seen), 1);
    ck_assert_uint_eq(seen.seqs[0], second);
    ck_assert_str_eq(seen.payloads[0], "appended while the first group is on its way");
    seen_release(&seen);
    sb_spool_destroy(&spool);
    spool = open_spool(0); // after a restart: only the unacked second is pending
    ck_assert_uint_eq(sb_spool_depth(spool), 1);
    ck_assert_int_eq(due(spool, 0, 10, &seen), 1);
    ck_assert_uint_eq(seen.seqs[0], second);
    seen_release(&seen);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(a_failed_flush_write_fails_the_spool)
{
    sb_spool_t *spool = open_spool(0);
    append(spool, "one");
    sb_spool_flush_t flush;
    sb_err_t err = {0};
    ck_assert_int_eq(sb_spool_sync_begin(spool, &flush, &err), 0);
    close(flush.fd); // the write cannot succeed now
    int fd = flush.fd;
    ck_assert_int_eq(sb_spool_flush_write(&flush), -1);
    ck_assert_int_eq(flush.io_errno, EBADF);
    ck_assert_int_eq(sb_spool_sync_finish(spool, &flush, &err), -1);
    ck_assert_msg(strstr(err.msg, "could not write spool") != NULL, "msg: %s", err.msg);
    ck_assert_int_eq(sb_spool_failed(spool), 1);
    ck_assert_int_eq(dup2(open("/dev/null", O_RDONLY), fd), fd); // destroy closes it again
    sb_spool_destroy(&spool);
}
END_TEST

// Flow control: the credit in use is the records pushed and not acked since open.
START_TEST(pushed_counts_the_credit_in_use)
{
    sb_spool_t *spool = open_spool(0);
    uint64_t a = append(spool, "a"), b = append(spool, "b");
    sync_ok(spool);
    ck_assert_uint_eq(sb_spool_pushed(spool), 0);
    ck_assert_int_eq(sb_spool_was_pushed(spool, a), 0);
    sb_spool_sent(spool, a, 1000);
    sb_spool_sent(spool, a, 2000); // a redelivery takes no second credit
    ck_assert_uint_eq(sb_spool_pushed(spool), 1);
    ck_assert_int_eq(sb_spool_was_pushed(spool, a), 1);
    ck_assert_int_eq(sb_spool_was_pushed(spool, b), 0);
    ck_assert_int_eq(sb_spool_ack(spool, a, -1), 1);
    ck_assert_int_eq(sb_spool_ack(spool, a, -1), 0); // a copy's second ack
    ck_assert_uint_eq(sb_spool_pushed(spool), 0);
    ck_assert_int_eq(sb_spool_ack(spool, b, -1), 1); // acked without a push: no credit back
    ck_assert_uint_eq(sb_spool_pushed(spool), 0);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(crc32c_matches_known_vectors)
{
    ck_assert_uint_eq(sb_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(sb_crc32c(0, "", 0), 0);
    // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xFF, and ascending 0..31.
    unsigned char buf[32];
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(sb_crc32c(0, buf, sizeof buf), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof buf);
    ck_assert_uint_eq(sb_crc32c(0, buf, sizeof buf), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    ck_assert_uint_eq(sb_crc32c(0, buf, sizeof buf), 0x46DD794Eu);
    // Chaining over any split gives the same CRC (the 8-byte loop and the tail agree).
    static const char digits[] = "123456789";
    for (size_t split = 0; split <= 9; split++)
        ck_assert_uint_eq(sb_crc32c(sb_crc32c(0, digits, split), &digits[split], 9 - split),
                          0xE3069283u);
}
END_TEST

// The instruction and the tables agree on every length, alignment and chaining (on a CPU
// without SSE 4.2 both sides are the tables and this checks nothing more).
START_TEST(crc32c_hardware_matches_software)
{
    unsigned char buf[1100];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len + off <= sizeof buf; len += 1 + len / 3) {
            uint32_t seed = (uint32_t)(off * 2654435761u);
            ck_assert_uint_eq(sb_crc32c(seed, buf + off, len), sb_crc32c_sw(seed, buf + off, len));
        }
    fprintf(stderr, "crc32c: %s\n", sb_crc32c_hardware() ? "SSE 4.2 instruction" : "software only");
}
END_TEST

START_TEST(append_sync_reopen_keeps_payloads)
{
    static const char *texts[] = {"first", "", "third record with more bytes", "4"};
    size_t big_len = 300 * 1000; // bigger than one read of the scan
    char *big = sb_xmalloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    sb_spool_t *spool = open_spool(0);
    uint64_t seqs[5];
    for (int i = 0; i < 4; i++) {
        uint64_t expect = sb_spool_next_seq(spool);
        seqs[i] = append(spool, texts[i]);
        ck_assert_uint_eq(seqs[i], expect);
        if (i > 0)
            ck_assert_uint_eq(seqs[i], seqs[i - 1] + 1);
    }
    sb_err_t err = {0};
    ck_assert_int_eq(sb_spool_append(spool, big, big_len, &seqs[4], &err), 0);
    ck_assert_uint_lt(sb_spool_synced_seq(spool), seqs[0]); // buffered, not durable
    ck_assert_uint_eq(sb_spool_depth(spool), 5);
    sync_ok(spool);
    ck_assert_uint_ge(sb_spool_synced_seq(spool), seqs[4]);
    sb_spool_destroy(&spool);
    ck_assert_ptr_null(spool);

    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 5);
    ck_assert_uint_eq(sb_spool_torn(spool), 0);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 1000, 100, &seen), 5); // found at open: due at once
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(seen.seqs[i], seqs[i]);
        ck_assert_uint_eq(seen.lens[i], strlen(texts[i]));
        ck_assert_mem_eq(seen.payloads[i], texts[i], strlen(texts[i]));
    }
    ck_assert_uint_eq(seen.seqs[4], seqs[4]);
    ck_assert_uint_eq(seen.lens[4], big_len);
    ck_assert_mem_eq(seen.payloads[4], big, big_len);
    seen_release(&seen);
    sb_spool_destroy(&spool);
    free(big);
}
END_TEST

START_TEST(acked_records_are_not_pending_after_reopen)
{
    sb_spool_t *spool = open_spool(0);
    uint64_t seqs[5];
    for (int i = 0; i < 5; i++)
        seqs[i] = append(spool, "record");
    sync_ok(spool);
    sb_spool_ack(spool, seqs[1], -1);
    sb_spool_ack(spool, seqs[3], -1);
    sb_spool_ack(spool, seqs[3], -1);        // idempotent
    sb_spool_ack(spool, seqs[4] + 1000, -1); // unknown: ignored
    ck_assert_uint_eq(sb_spool_depth(spool), 3);
    sync_ok(spool);
    sb_spool_destroy(&spool);

    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 3);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 0, 100, &seen), 3);
    ck_assert_uint_eq(seen.seqs[0], seqs[0]);
    ck_assert_uint_eq(seen.seqs[1], seqs[2]);
    ck_assert_uint_eq(seen.seqs[2], seqs[4]);
    seen_release(&seen);
    sb_spool_destroy(&spool);
}
END_TEST

// Run fn in a child that then dies without sb_spool_destroy, like a kill -9.
static void
crash_after(void (*fn)(void))
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d", status);
}

static void
child_appends_three_then_acks_first_unsynced(void)
{
    sb_err_t err = {0};
    sb_spool_t *spool = sb_spool_new(s_dir, 0, &err);
    uint64_t seq, first = 0;
    for (int i = 0; spool && i < 3; i++) {
        if (sb_spool_append(spool, "x", 1, &seq, &err) != 0)
            _exit(1);
        first = first ? first : seq;
    }
    if (spool == NULL || sb_spool_sync(spool, &err) != 0)
        _exit(1);
    sb_spool_ack(spool, first, -1); // buffered only: the "crash" below loses it
}

static void
child_acks_lowest_and_syncs(void)
{
    sb_err_t err = {0};
    sb_spool_t *spool = sb_spool_new(s_dir, 0, &err);
    seen_t seen = {0};
    if (spool == NULL || sb_spool_due(spool, 0, 1, collect, &seen, &err) != 1)
        _exit(1);
    sb_spool_ack(spool, seen.seqs[0], -1);
    if (sb_spool_sync(spool, &err) != 0) // now the ack is durable, crash or not
        _exit(1);
}

// A crash leaves the zeros that flushes write ahead of the data (the preallocation in
// sb_spool.c): the scan ends the segment there without counting a torn record.
START_TEST(zeros_left_by_a_crash_are_not_torn)
{
    crash_after(child_appends_three_then_acks_first_unsynced);
    ck_assert_uint_gt(segment_bytes_on_disk(), 3 * 29 + 4096); // the zeros are there
    sb_spool_t *spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 3);
    ck_assert_uint_eq(sb_spool_torn(spool), 0);
    ck_assert_uint_eq(sb_spool_bytes(spool), 3 * 29);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 0, 10, &seen), 3);
    uint64_t last = seen.seqs[2];
    seen_release(&seen);
    ck_assert_uint_gt(append(spool, "y"), last);
    sync_ok(spool);
    sb_spool_destroy(&spool); // clean: the new segment's zeros are cut off
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 4);
    ck_assert_uint_eq(sb_spool_torn(spool), 0);
    sb_spool_destroy(&spool);
}
END_TEST

// An ack is not fsynced by sb_spool_ack: it becomes durable with the next sync. A
// crash in between loses it, which only costs one redelivery.
START_TEST(ack_is_durable_only_after_the_next_sync)
{
    crash_after(child_appends_three_then_acks_first_unsynced);
    sb_spool_t *spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 3); // the unsynced ack was lost
    sb_spool_destroy(&spool);
    crash_after(child_acks_lowest_and_syncs);
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 2); // the synced ack survived the crash
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(destroy_writes_buffered_acks)
{
    sb_spool_t *spool = open_spool(0);
    uint64_t a = append(spool, "a");
    append(spool, "b");
    sync_ok(spool);
    sb_spool_ack(spool, a, -1);
    sb_spool_destroy(&spool); // the header promises: next sync or destroy
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 1);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(torn_tail_is_skipped_on_reopen)
{
    sb_spool_t *spool = open_spool(0);
    uint64_t synced = append(spool, "synced");
    sync_ok(spool); // "synced" may now get its 200
    uint64_t unsynced = append(spool, "unsynced");
    sb_spool_destroy(&spool); // the process dies during the write of the next group
    chop_newest_segment(3);
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 1); // "synced" is pending again
    ck_assert_uint_eq(sb_spool_torn(spool), 1);  // "unsynced" never got a 200
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 0, 10, &seen), 1);
    ck_assert_uint_eq(seen.seqs[0], synced);
    ck_assert_mem_eq(seen.payloads[0], "synced", 6);
    seen_release(&seen);
    // The torn record's seq is never handed out again.
    ck_assert_uint_gt(append(spool, "next"), unsynced);
    sync_ok(spool);
    sb_spool_destroy(&spool);
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 2);
    ck_assert_uint_eq(sb_spool_torn(spool), 1); // the old torn segment is still read
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(header_cut_short_is_torn)
{
    sb_spool_t *spool = open_spool(0);
    append(spool, "one");
    sync_ok(spool);
    sb_spool_destroy(&spool);
    char path[512];
    count_segments(path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "SBS", 3), 3); // 3 bytes of a header, then the crash
    close(fd);
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 1);
    ck_assert_uint_eq(sb_spool_torn(spool), 1);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(flipped_byte_is_caught_by_the_crc)
{
    char payload[100];
    memset(payload, 'p', sizeof payload);
    sb_spool_t *spool = open_spool(0);
    uint64_t seqs[3];
    sb_err_t err = {0};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sb_spool_append(spool, payload, sizeof payload, &seqs[i], &err), 0);
    sync_ok(spool);
    sb_spool_destroy(&spool);
    // Record 2's payload: one 28-byte header plus 100 bytes in, 28 more, then 50.
    flip_newest_segment_byte(128 + 28 + 50);
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_torn(spool), 1);
    // Record 1 survives; the segment's rest has no trustworthy framing after record 2.
    ck_assert_uint_eq(sb_spool_depth(spool), 1);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 0, 10, &seen), 1);
    ck_assert_uint_eq(seen.seqs[0], seqs[0]);
    ck_assert_mem_eq(seen.payloads[0], payload, sizeof payload);
    seen_release(&seen);
    ck_assert_uint_gt(append(spool, "after"), seqs[2]);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(flipped_length_or_magic_is_torn)
{
    sb_spool_t *spool = open_spool(0);
    append(spool, "a");
    append(spool, "b");
    sync_ok(spool);
    sb_spool_destroy(&spool);
    flip_newest_segment_byte(29 + 7); // record 2's length field: huge, beyond the file
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 1);
    ck_assert_uint_eq(sb_spool_torn(spool), 1);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(new_seqs_exceed_every_seq_ever_seen)
{
    sb_spool_t *spool = open_spool(0);
    uint64_t last = 0;
    for (int i = 0; i < 10; i++)
        last = append(spool, "payload-of-some-length");
    sync_ok(spool);
    sb_spool_destroy(&spool);
    chop_newest_segment(5); // record `last` is torn
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 9);
    uint64_t next = sb_spool_next_seq(spool);
    ck_assert_uint_gt(next, last);
    ck_assert_uint_eq(append(spool, "new"), next);
    sync_ok(spool);
    // Ack everything: the old segments go, yet the counter must not go back.
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 0, 64, &seen), 10);
    for (size_t i = 0; i < seen.n; i++)
        sb_spool_ack(spool, seen.seqs[i], -1);
    seen_release(&seen);
    sync_ok(spool);
    ck_assert_uint_eq(sb_spool_depth(spool), 0);
    sb_spool_destroy(&spool);
    uint64_t prev = next;
    for (int round = 0; round < 3; round++) { // reopen with and without appends
        spool = open_spool(0);
        ck_assert_uint_eq(sb_spool_depth(spool), 0);
        uint64_t seq = sb_spool_next_seq(spool);
        ck_assert_uint_gt(seq, prev);
        if (round == 1) {
            ck_assert_uint_eq(append(spool, "r"), seq);
            sync_ok(spool);
            sb_spool_ack(spool, seq, -1);
        }
        prev = seq;
        sb_spool_destroy(&spool);
        ck_assert_uint_le(count_segments(NULL, 0), 2);
    }
}
END_TEST

START_TEST(fully_acked_segments_are_deleted_after_rotation)
{
    char payload[1000];
    memset(payload, 'r', sizeof payload);
    sb_spool_t *spool = open_spool(0);
    sb_spool_test_set_segment_bytes(spool, 4096);
    sb_err_t err = {0};
    uint64_t seqs[40];
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(sb_spool_append(spool, payload, sizeof payload, &seqs[i], &err), 0);
        if (i % 2 == 1)
            sync_ok(spool); // two syncs fill a segment: 4 records of 1028 bytes
    }
    size_t before = count_segments(NULL, 0);
    ck_assert_uint_eq(before, 10);
    // Records only: the active segment also holds the zeros written ahead (1 MiB).
    ck_assert_uint_eq(sb_spool_bytes(spool), 40 * 1028);
    ck_assert_uint_le(segment_bytes_on_disk(), 40 * 1028 + (1u << 20));
    // Ack all but seqs[20]: every segment without it that is not active goes at once.
    for (int i = 0; i < 40; i++)
        if (i != 20)
            sb_spool_ack(spool, seqs[i], -1);
    ck_assert_uint_eq(count_segments(NULL, 0), 2);
    sb_spool_ack(spool, seqs[20], -1);
    ck_assert_uint_eq(count_segments(NULL, 0), 1);
    sync_ok(spool);                                // the full active segment rotates, then goes too
    ck_assert_uint_eq(count_segments(NULL, 0), 1); // only the active one
    ck_assert_uint_lt(sb_spool_bytes(spool), 4096);
    sb_spool_destroy(&spool); // a clean close cuts the zeros off
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 0);
    ck_assert_uint_eq(count_segments(NULL, 0), 1);
    ck_assert_uint_eq(sb_spool_bytes(spool), segment_bytes_on_disk());
    sb_spool_destroy(&spool);
}
END_TEST

// A segment whose own records are all acked, but whose ack record names a live
// segment's other record, must stay: deleting it would bring that record back.
START_TEST(segment_holding_needed_acks_is_kept)
{
    sb_spool_t *spool = open_spool(0);
    sb_spool_test_set_segment_bytes(spool, 1); // a new segment for every sync
    uint64_t r1 = append(spool, "r1");
    uint64_t r2 = append(spool, "r2");
    sync_ok(spool); // segment A: r1 r2
    sb_spool_ack(spool, r1, -1);
    uint64_t r3 = append(spool, "r3");
    sync_ok(spool); // segment B: r3, ack(r1)
    sb_spool_ack(spool, r3, -1);
    sync_ok(spool); // segment C: ack(r3); B has no live data but its ack(r1) matters
    ck_assert_uint_eq(count_segments(NULL, 0), 3);
    sb_spool_destroy(&spool);
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 1); // only r2: r1 stayed acked
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 0, 10, &seen), 1);
    ck_assert_uint_eq(seen.seqs[0], r2);
    seen_release(&seen);
    sb_spool_ack(spool, r2, -1);
    sync_ok(spool);
    ck_assert_uint_eq(count_segments(NULL, 0), 1); // A, then B and C could all go
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(redelivery_backs_off_with_fake_time)
{
    sb_spool_t *spool = open_spool(0);
    sb_spool_set_redelivery(spool, 100, 1000);
    uint64_t a = append(spool, "a");
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 1000, 10, &seen), 0); // buffered: never due before sync
    sync_ok(spool);
    ck_assert_int_eq(due(spool, 1000, 10, &seen), 1); // never sent: due at once
    ck_assert_uint_eq(seen.seqs[0], a);
    // Pushed at 1000: then due after 100, 200, 400, 800, and 1000 (the cap) each.
    int64_t expect[] = {1100, 1300, 1700, 2500, 3500, 4500};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        seen_release(&seen);
        ck_assert_int_eq(due(spool, expect[i] - 1, 10, &seen), 0);
        ck_assert_int_eq(due(spool, expect[i], 10, &seen), 1);
        ck_assert_uint_eq(seen.seqs[0], a);
    }
    seen_release(&seen);
    // sb_spool_sent starts the clock at base: the caller pushed b itself after sync.
    uint64_t b = append(spool, "b");
    sync_ok(spool);
    sb_spool_sent(spool, b, 10000);
    ck_assert_int_eq(due(spool, 10000, 10, &seen), 1); // a (due since 5500), not b
    ck_assert_uint_eq(seen.seqs[0], a);
    seen_release(&seen);
    ck_assert_int_eq(due(spool, 10099, 10, &seen), 0);
    ck_assert_int_eq(due(spool, 10100, 10, &seen), 1);
    ck_assert_uint_eq(seen.seqs[0], b);
    seen_release(&seen);
    // Acked: never due again.
    sb_spool_ack(spool, a, -1);
    sb_spool_ack(spool, b, -1);
    ck_assert_int_eq(due(spool, 1000000, 10, &seen), 0);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(slow_acks_raise_the_redelivery_timeout)
{
    sb_spool_t *spool = open_spool(0);
    sb_spool_set_redelivery(spool, 100, 100000);
    ck_assert_int_eq(sb_spool_rto_ms(spool), 100); // no sample yet: the base
    // Acks 2,000 ms after each push: srtt -> 2000, and the first wait follows it.
    for (int i = 0; i < 40; i++) {
        uint64_t s = append(spool, "m");
        sync_ok(spool);
        sb_spool_sent(spool, s, 10000 * i);
        ck_assert_int_eq(sb_spool_ack(spool, s, 10000 * i + 2000), 1);
    }
    int64_t rto = sb_spool_rto_ms(spool);
    ck_assert_int_ge(rto, 2000);
    ck_assert_int_le(rto, 2400); // srtt 2000 and a small variance
    // A record pushed now is not due before that wait (it was at 100 ms before).
    uint64_t c = append(spool, "c");
    sync_ok(spool);
    sb_spool_sent(spool, c, 1000000);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 1000000 + 1999, 10, &seen), 0);
    ck_assert_int_eq(due(spool, 1000000 + rto, 10, &seen), 1);
    seen_release(&seen);
    // Karn: c was pushed twice, so its (huge) ack time is not a sample.
    ck_assert_int_eq(sb_spool_ack(spool, c, 9000000), 1);
    ck_assert_int_eq(sb_spool_rto_ms(spool), rto);
    // Fast acks bring it back down to the base, never below.
    for (int i = 0; i < 200; i++) {
        uint64_t s = append(spool, "m");
        sync_ok(spool);
        sb_spool_sent(spool, s, 2000000 + i);
        sb_spool_ack(spool, s, 2000000 + i + 5);
    }
    ck_assert_int_eq(sb_spool_rto_ms(spool), 100);
    sb_spool_destroy(&spool);
}
END_TEST

// A slow, steady database: acks at 250/s while thousands are pushed. The first wait
// covers the queue ahead (Little's law) before any ack is late; with no acks for 5 s
// it falls back to the timeout.
START_TEST(queue_ahead_at_the_ack_rate_raises_the_first_wait)
{
    sb_spool_t *spool = open_spool(0);
    sb_spool_set_redelivery(spool, 1000, 100000);
    enum { N = 3000 };
    uint64_t *seqs = sb_xcalloc(N, sizeof *seqs);
    for (int i = 0; i < N; i++)
        seqs[i] = append(spool, "m");
    sync_ok(spool);
    for (int i = 0; i < N; i++)
        sb_spool_sent(spool, seqs[i], 0);
    ck_assert_int_eq(sb_spool_first_wait_ms(spool, 0), 1000); // no rate yet
    // 250 acks a second for 4 s, each acked ~100 ms after its push: srtt stays small.
    for (int i = 0; i < 1000; i++)
        sb_spool_ack(spool, seqs[i], 4 * i);
    size_t pushed = sb_spool_pushed(spool); // 2,000 left
    ck_assert_uint_eq(pushed, 2000);
    int64_t w = sb_spool_first_wait_ms(spool, 4000);
    ck_assert_int_ge(w, 6000); // capped at 6 x base; 2 x 2,000 / 250 = 16 s
    ck_assert_int_le(w, 6000);
    sb_spool_set_redelivery(spool, 10000, 100000);
    w = sb_spool_first_wait_ms(spool, 4000);
    ck_assert_int_ge(w, 15000); // 2 x 2,000 / ~250 per s
    ck_assert_int_le(w, 17000);
    // No ack for more than 5 s: the estimate is stale, the timeout rules again.
    ck_assert_int_eq(sb_spool_first_wait_ms(spool, 4000 + 5001), sb_spool_rto_ms(spool));
    // A record pushed now is not due before that wait (the others acked meanwhile).
    uint64_t c = append(spool, "c");
    sync_ok(spool);
    sb_spool_sent(spool, c, 4000);
    for (int i = 1000; i < N; i++)
        sb_spool_ack(spool, seqs[i], 4000);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 4000 + 14000, 1, &seen), 0);
    ck_assert_int_eq(due(spool, 4000 + w + 100, 1, &seen), 1); // c counted itself too
    ck_assert_uint_eq(seen.seqs[0], c);
    seen_release(&seen);
    free(seqs);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(hold_keeps_pushed_records_and_restarts_their_clocks)
{
    sb_spool_t *spool = open_spool(0);
    sb_spool_set_redelivery(spool, 100, 1000);
    uint64_t a = append(spool, "a");
    sync_ok(spool);
    sb_spool_sent(spool, a, 0); // due at 100
    sb_spool_hold(spool, 1, 50);
    uint64_t b = append(spool, "b"); // never pushed: goes even while held
    sync_ok(spool);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 5000, 10, &seen), 1);
    ck_assert_uint_eq(seen.seqs[0], b);
    seen_release(&seen);
    ck_assert_int_eq(due(spool, 9000, 10, &seen), 0); // a and b are pushed: held
    sb_spool_hold(spool, 0, 10000);                   // released: both clocks start again at 10000
    ck_assert_int_eq(due(spool, 10099, 10, &seen), 0);
    ck_assert_int_eq(due(spool, 10100, 10, &seen), 2);
    ck_assert_uint_eq(seen.seqs[0], a);
    ck_assert_uint_eq(seen.seqs[1], b);
    seen_release(&seen);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(due_respects_max_and_refusals)
{
    sb_spool_t *spool = open_spool(0);
    sb_spool_set_redelivery(spool, 100, 1000);
    uint64_t seqs[5];
    for (int i = 0; i < 5; i++)
        seqs[i] = append(spool, "m");
    sync_ok(spool);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 0, 2, &seen), 2); // max
    ck_assert_uint_eq(seen.seqs[1], seqs[1]);
    seen_release(&seen);
    seen.refuse_from = 2; // the downstream queue is full after one record
    ck_assert_int_eq(due(spool, 0, 10, &seen), 1);
    ck_assert_uint_eq(seen.seqs[0], seqs[2]);
    seen_release(&seen);
    ck_assert_int_eq(due(spool, 0, 10, &seen), 2); // the refused one stayed due
    ck_assert_uint_eq(seen.seqs[0], seqs[3]);
    ck_assert_uint_eq(seen.seqs[1], seqs[4]);
    seen_release(&seen);
    ck_assert_int_eq(due(spool, 99, 10, &seen), 0);
    ck_assert_int_eq(due(spool, 100, 10, &seen), 5);
    seen_release(&seen);
    sb_spool_destroy(&spool);
}
END_TEST

static sb_spool_t *s_acking_spool; // for ack_inside_visit

static int
ack_inside_visit(void *arg, uint64_t seq, const void *payload, size_t len)
{
    (void)payload;
    (void)len;
    (*(size_t *)arg)++;
    sb_spool_ack(s_acking_spool, seq, -1); // what the ingress does with an undecodable record
    return 0;
}

START_TEST(ack_from_inside_due_is_safe)
{
    sb_spool_t *spool = open_spool(0);
    for (int i = 0; i < 3000; i++) // enough tombstones to want a compaction
        append(spool, "z");
    sync_ok(spool);
    s_acking_spool = spool;
    size_t visits = 0;
    sb_err_t err = {0};
    ck_assert_int_eq(sb_spool_due(spool, 0, 5000, ack_inside_visit, &visits, &err), 3000);
    ck_assert_uint_eq(visits, 3000);
    ck_assert_uint_eq(sb_spool_depth(spool), 0);
    ck_assert_int_eq(sb_spool_oldest_ms(spool), 0);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(append_past_max_bytes_fails_with_enospc)
{
    char payload[100];
    memset(payload, 'f', sizeof payload);
    sb_spool_t *spool = open_spool(1000); // 128 bytes a record: 7 fit
    sb_err_t err = {0};
    uint64_t seqs[7], seq;
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(sb_spool_append(spool, payload, sizeof payload, &seqs[i], &err), 0);
    ck_assert_int_eq(sb_spool_append(spool, payload, sizeof payload, &seq, &err), -1);
    ck_assert_int_eq(err.code, ENOSPC);
    ck_assert_ptr_nonnull(strstr(err.msg, s_dir));
    ck_assert_int_eq(sb_spool_failed(spool), 0); // not for good: retry later
    sync_ok(spool);
    ck_assert_uint_eq(sb_spool_bytes(spool), 7 * 128);
    ck_assert_int_eq(sb_spool_append(spool, payload, sizeof payload, &seq, &err), -1);
    ck_assert_int_eq(err.code, ENOSPC);
    for (int i = 0; i < 7; i++)
        sb_spool_ack(spool, seqs[i], -1);
    sync_ok(spool); // rotates; the acked segment goes
    ck_assert_uint_lt(sb_spool_bytes(spool), 1000 - 128);
    ck_assert_int_eq(sb_spool_append(spool, payload, sizeof payload, &seq, &err), 0);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(open_errors_are_clean)
{
    sb_err_t err = {0};
    ck_assert_ptr_null(sb_spool_new("/dev/null/x", 0, &err));
    ck_assert_int_eq(err.code, ENOTDIR);
    ck_assert_msg(strstr(err.msg, "could not create spool directory \"/dev/null/x\"") != NULL,
                  "msg: %s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "Not a directory"));
    // A second owner of the same directory is refused.
    sb_spool_t *spool = open_spool(0);
    err = (sb_err_t){0};
    ck_assert_ptr_null(sb_spool_new(s_dir, 0, &err));
    ck_assert_int_eq(err.code, EWOULDBLOCK);
    ck_assert_ptr_nonnull(strstr(err.msg, "could not lock"));
    sb_spool_destroy(&spool);
    // A damaged epoch file is reported, not replaced.
    char path[512];
    snprintf(path, sizeof path, "%s/epoch", s_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not-hex\n", f);
    fclose(f);
    err = (sb_err_t){0};
    ck_assert_ptr_null(sb_spool_new(s_dir, 0, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "invalid spool epoch"));
}
END_TEST

START_TEST(epoch_is_stable_and_unique)
{
    sb_spool_t *spool = open_spool(0);
    char first[17];
    snprintf(first, sizeof first, "%s", sb_spool_epoch(spool));
    ck_assert_uint_eq(strlen(first), 16);
    ck_assert_uint_eq(strspn(first, "0123456789abcdef"), 16);
    sb_spool_destroy(&spool);
    spool = open_spool(0);
    ck_assert_str_eq(sb_spool_epoch(spool), first);
    sb_spool_destroy(&spool);
    char other[256];
    snprintf(other, sizeof other, "%s/sub", s_dir); // created on open
    sb_err_t err = {0};
    spool = sb_spool_new(other, 0, &err);
    ck_assert_msg(spool != NULL, "open: %s", err.msg);
    ck_assert_str_ne(sb_spool_epoch(spool), first);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(failed_write_fails_for_good)
{
    sb_spool_t *spool = open_spool(0);
    uint64_t kept = append(spool, "kept");
    sync_ok(spool);
    append(spool, "lost");
    sb_spool_test_fail_io(spool, 1, 0);
    sb_err_t err = {0};
    ck_assert_int_eq(sb_spool_sync(spool, &err), -1);
    ck_assert_int_eq(err.code, EIO);
    ck_assert_msg(strstr(err.msg, "could not write spool") != NULL, "msg: %s", err.msg);
    ck_assert_int_eq(sb_spool_failed(spool), 1);
    uint64_t seq;
    err = (sb_err_t){0};
    ck_assert_int_eq(sb_spool_append(spool, "x", 1, &seq, &err), -1);
    ck_assert_int_eq(err.code, EIO);
    err = (sb_err_t){0};
    ck_assert_int_eq(sb_spool_sync(spool, &err), -1); // never retried
    ck_assert_int_eq(err.code, EIO);
    sb_spool_destroy(&spool);
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 1);
    seen_t seen = {0};
    ck_assert_int_eq(due(spool, 0, 10, &seen), 1);
    ck_assert_uint_eq(seen.seqs[0], kept);
    seen_release(&seen);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(failed_fdatasync_fails_for_good)
{
    sb_spool_t *spool = open_spool(0);
    append(spool, "one");
    sb_spool_test_fail_io(spool, 0, 1);
    sb_err_t err = {0};
    ck_assert_int_eq(sb_spool_sync(spool, &err), -1);
    ck_assert_int_eq(err.code, EIO);
    ck_assert_msg(strstr(err.msg, "could not fdatasync spool") != NULL, "msg: %s", err.msg);
    ck_assert_int_eq(sb_spool_failed(spool), 1);
    ck_assert_uint_lt(sb_spool_synced_seq(spool), sb_spool_next_seq(spool) - 1);
    err = (sb_err_t){0};
    ck_assert_int_eq(sb_spool_sync(spool, &err), -1);
    ck_assert_int_eq(err.code, EIO);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(failed_rotation_leaves_no_segment)
{
    sb_spool_t *spool = open_spool(0);
    sb_spool_test_set_segment_bytes(spool, 1);
    append(spool, "one");
    sync_ok(spool);
    size_t before = count_segments(NULL, 0);
    append(spool, "two");
    sb_spool_test_fail_io(spool, 0, 1); // the directory fsync of the new segment
    sb_err_t err = {0};
    ck_assert_int_eq(sb_spool_sync(spool, &err), -1);
    ck_assert_int_eq(err.code, EIO);
    ck_assert_int_eq(sb_spool_failed(spool), 1);
    ck_assert_uint_eq(count_segments(NULL, 0), before);
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(depth_bytes_and_oldest_follow_the_records)
{
    sb_spool_t *spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 0);
    ck_assert_int_eq(sb_spool_oldest_ms(spool), 0);
    ck_assert_uint_eq(sb_spool_bytes(spool), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    uint64_t a = append(spool, "aaaa");
    uint64_t b = append(spool, "bb");
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    ck_assert_int_ge(sb_spool_oldest_ms(spool), before);
    ck_assert_int_le(sb_spool_oldest_ms(spool), after);
    ck_assert_uint_eq(sb_spool_bytes(spool), 0); // nothing in the files yet
    sync_ok(spool);
    ck_assert_uint_eq(sb_spool_bytes(spool), 28 + 4 + 28 + 2);
    sb_spool_ack(spool, a, -1);
    ck_assert_uint_eq(sb_spool_depth(spool), 1);
    ck_assert_int_ge(sb_spool_oldest_ms(spool), before);
    sb_spool_ack(spool, b, -1);
    ck_assert_int_eq(sb_spool_oldest_ms(spool), 0);
    sync_ok(spool);
    ck_assert_uint_eq(sb_spool_bytes(spool), 28 + 4 + 28 + 2 + 28 + 16); // one ack record
    sb_spool_destroy(&spool);
}
END_TEST

START_TEST(hundred_thousand_records)
{
    sb_spool_t *spool = open_spool(0);
    char payload[64];
    memset(payload, 'h', sizeof payload);
    sb_err_t err = {0};
    uint64_t first = 0, seq = 0;
    for (int i = 0; i < 100000; i++) {
        ck_assert_int_eq(sb_spool_append(spool, payload, sizeof payload, &seq, &err), 0);
        first = first ? first : seq;
        if (i % 1000 == 999)
            sync_ok(spool);
    }
    ck_assert_uint_eq(sb_spool_depth(spool), 100000);
    for (uint64_t s = first; s <= seq; s++)
        sb_spool_ack(spool, s, -1);
    sync_ok(spool);
    ck_assert_uint_eq(sb_spool_depth(spool), 0);
    sb_spool_destroy(&spool);
    spool = open_spool(0);
    ck_assert_uint_eq(sb_spool_depth(spool), 0);
    ck_assert_uint_gt(sb_spool_next_seq(spool), seq);
    sb_spool_destroy(&spool);
}
END_TEST

static Suite *
sb_spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_add_unchecked_fixture(tc, setup_root, teardown_root);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crc32c_matches_known_vectors);
    tcase_add_test(tc, crc32c_hardware_matches_software);
    tcase_add_test(tc, append_sync_reopen_keeps_payloads);
    tcase_add_test(tc, acked_records_are_not_pending_after_reopen);
    tcase_add_test(tc, ack_is_durable_only_after_the_next_sync);
    tcase_add_test(tc, zeros_left_by_a_crash_are_not_torn);
    tcase_add_test(tc, destroy_writes_buffered_acks);
    tcase_add_test(tc, torn_tail_is_skipped_on_reopen);
    tcase_add_test(tc, header_cut_short_is_torn);
    tcase_add_test(tc, flipped_byte_is_caught_by_the_crc);
    tcase_add_test(tc, flipped_length_or_magic_is_torn);
    tcase_add_test(tc, new_seqs_exceed_every_seq_ever_seen);
    tcase_add_test(tc, fully_acked_segments_are_deleted_after_rotation);
    tcase_add_test(tc, segment_holding_needed_acks_is_kept);
    tcase_add_test(tc, redelivery_backs_off_with_fake_time);
    tcase_add_test(tc, slow_acks_raise_the_redelivery_timeout);
    tcase_add_test(tc, hold_keeps_pushed_records_and_restarts_their_clocks);
    tcase_add_test(tc, queue_ahead_at_the_ack_rate_raises_the_first_wait);
    tcase_add_test(tc, due_respects_max_and_refusals);
    tcase_add_test(tc, ack_from_inside_due_is_safe);
    tcase_add_test(tc, append_past_max_bytes_fails_with_enospc);
    tcase_add_test(tc, open_errors_are_clean);
    tcase_add_test(tc, epoch_is_stable_and_unique);
    tcase_add_test(tc, failed_write_fails_for_good);
    tcase_add_test(tc, failed_fdatasync_fails_for_good);
    tcase_add_test(tc, failed_rotation_leaves_no_segment);
    tcase_add_test(tc, depth_bytes_and_oldest_follow_the_records);
    tcase_add_test(tc, hundred_thousand_records);
    tcase_add_test(tc, appends_during_a_flush_wait_for_the_next_one);
    tcase_add_test(tc, a_failed_flush_write_fails_the_spool);
    tcase_add_test(tc, pushed_counts_the_credit_in_use);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_spool_suite)
