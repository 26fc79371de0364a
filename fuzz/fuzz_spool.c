/* fuzz_spool - sb_spool_new's scan over a crafted spool directory (the files a crash, a
 * full disk or a bad sector leave behind), then what the ingress does with it: visit the
 * due records and decode each as an envelope, ack them, append a new record, reopen.
 *
 * Input: [flags][split][name][segment bytes...]. flags bit 0: recompute every CRC the
 * framing reaches, so that mutations get past the checksum into the record logic; bit 1:
 * split the bytes into two segment files at split/256 of their length, the second named
 * 2 + name (name 250-255: names near 2^62 and 2^64); bit 2: ack every visited record
 * before the reopen.
 *
 * Checked besides memory safety (DESIGN.md "Why acks flow backwards"): every pending
 * record is due at open; a new record gets a seq above every seq found (a torn record's
 * seq is never handed out again); after a reopen the new record is pending and acked
 * records are not.
 *
 * The directory lives under /dev/shm when it exists, so the spool's fsyncs cost nothing. */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sb_crc32c.h"
#include "sb_envelope.h"
#include "sb_fuzz.h"
#include "sb_mem.h"
#include "sb_spool.h"
#include "sb_banned.h"

// Seqs from here on may be refused (sb_spool.c stops a few short of 2^62).
#define S_SEQ_END ((UINT64_C(1) << 62) - 8)
#define S_HDR 28                        // record header bytes (sb_spool.c)
#define S_MAGIC 0x53425300u             // "SBS" and the type in the low byte
#define S_MAX_VISITS 4096               // records acked per input; more are left pending
#define S_NOW_MS INT64_C(4102444800000) // 2100-01-01: everything found is due

static char s_base[64]; // per-process directory that holds the spool directory

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct stat st;
    const char *root = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(s_base, sizeof s_base, "%s/sb-fuzz-spool-%ld", root, (long)getpid());
    mkdir(s_base, 0700);
    return 0;
}

static uint32_t
s_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
s_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

// Walk the framing and rewrite each reachable record's CRC.
static void
s_fix_crcs(unsigned char *p, size_t len)
{
    size_t off = 0;
    while (len - off >= S_HDR) {
        uint32_t n = s_get32(p + off + 4);
        if ((s_get32(p + off) & 0xffffff00u) != S_MAGIC || n > len - off - S_HDR)
            return;
        uint32_t crc = sb_crc32c(0, p + off, 24);
        s_put32(p + off + 24, sb_crc32c(crc, p + off + S_HDR, n));
        off += S_HDR + n;
    }
}

static void
s_write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char *path = sb_xasprintf("%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    SB_FUZZ_CHECK(fd >= 0, "create a file in the fuzz directory");
    SB_FUZZ_CHECK(write(fd, data, len) == (ssize_t)len, "write a file in the fuzz directory");
    close(fd);
    free(path);
}

static void
s_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
    rmdir(dir);
}

typedef struct {
    uint64_t seqs[S_MAX_VISITS]; // visited, in order
    size_t n;                    // how many of seqs are set
    size_t visits;               // every visit, also past S_MAX_VISITS
    uint64_t max_seq;            // highest seq visited
} s_visits_t;

// The ingress's s_push without the socket: decode, and "push".
static int
s_visit(void *arg, uint64_t seq, const void *payload, size_t len)
{
    s_visits_t *v = arg;
    sb_err_t err = {0};
    sb_envelope_t *env = sb_envelope_decode(payload, len, &err);
    sb_envelope_destroy(&env);
    if (v->n < S_MAX_VISITS)
        v->seqs[v->n++] = seq;
    v->visits++;
    if (seq > v->max_seq)
        v->max_seq = seq;
    return 0;
}

// One open, the visit of what is due, optional acks, and one new record. Returns the
// new record's seq, or 0 when the spool did not open.
static uint64_t
s_session(const char *dir, bool ack_all, s_visits_t *v)
{
    sb_err_t err = {0};
    sb_spool_t *spool = sb_spool_new(dir, 0, &err);
    if (spool == NULL)
        return 0;
    size_t depth = sb_spool_depth(spool);
    int pushed = sb_spool_due(spool, S_NOW_MS, SIZE_MAX, s_visit, v, &err);
    SB_FUZZ_CHECK(pushed >= 0, "the records found at open can be read back");
    if ((size_t)pushed != depth || v->visits != depth)
        fprintf(stderr, "pending %zu, pushed %d, visited %zu, torn %zu\n", depth, pushed, v->visits,
                sb_spool_torn(spool));
    SB_FUZZ_CHECK((size_t)pushed == depth && v->visits == depth, "every pending record is due");
    for (size_t i = 0; ack_all && i < v->n; i++)
        sb_spool_ack(spool, v->seqs[i], -1);
    static const char fresh[] = "a new record after the scan";
    uint64_t seq = 0;
    if (sb_spool_append(spool, fresh, sizeof fresh, &seq, &err) != 0) {
        // The one refusal allowed: the records found used up the seqs (2^62).
        SB_FUZZ_CHECK(err.code == ERANGE && v->max_seq >= S_SEQ_END, err.msg);
        sb_spool_destroy(&spool);
        return 0;
    }
    SB_FUZZ_CHECK(seq > v->max_seq, "a new seq is above every seq found");
    SB_FUZZ_CHECK(sb_spool_sync(spool, &err) == 0, err.msg);
    sb_spool_destroy(&spool);
    return seq;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned flags = data[0];
    size_t len = size - 3;
    unsigned char *seg = sb_xmemdup(data + 3, len);
    if (flags & 1)
        s_fix_crcs(seg, len);
    char *dir = sb_xasprintf("%s/spool", s_base);
    s_remove_dir(dir);
    SB_FUZZ_CHECK(mkdir(dir, 0700) == 0, "create the spool directory");
    s_write_file(dir, "epoch", "0123456789abcdef\n", 17);
    size_t split = flags & 2 ? len * data[1] / 256 : len;
    s_write_file(dir, "00000000000000000001.seg", seg, split);
    if (flags & 2) {
        static const uint64_t huge[] = {(UINT64_C(1) << 62) - 1,
                                        UINT64_C(1) << 62,
                                        UINT64_MAX - 1,
                                        UINT64_MAX,
                                        UINT64_C(99999999999999999),
                                        UINT64_C(10000000000000000000)};
        uint64_t first = data[2] < 250 ? 2u + data[2] : huge[data[2] - 250];
        char name[32];
        snprintf(name, sizeof name, "%020" PRIu64 ".seg", first);
        s_write_file(dir, name, seg + split, len - split);
    }
    bool ack_all = (flags & 4) != 0;
    s_visits_t *first = sb_xcalloc(1, sizeof *first);
    uint64_t fresh = s_session(dir, ack_all, first);
    if (fresh != 0) {
        s_visits_t *second = sb_xcalloc(1, sizeof *second);
        uint64_t again = s_session(dir, true, second);
        // Near 2^62 the next open or append may refuse (ERANGE), never reuse a seq.
        SB_FUZZ_CHECK(again > fresh || (again == 0 && fresh >= S_SEQ_END),
                      "seqs only grow across opens");
        bool found = false;
        for (size_t i = 0; i < second->n; i++) {
            found |= second->seqs[i] == fresh;
            for (size_t j = 0; ack_all && j < first->n; j++)
                SB_FUZZ_CHECK(second->seqs[i] != first->seqs[j], "an acked record stays acked");
        }
        // (An open refused near 2^62 visits nothing; one that opened must find it.)
        SB_FUZZ_CHECK(found || second->visits > S_MAX_VISITS || (again == 0 && second->visits == 0),
                      "the synced new record is pending");
        free(second);
    }
    free(first);
    s_remove_dir(dir);
    free(dir);
    free(seg);
    return 0;
}
