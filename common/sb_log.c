/* sb_log - one JSON object per line on stderr (sb_log.h).
 *
 * Cost and atomicity are the two design points. A call below the level returns after one
 * relaxed atomic load, before any formatting (Redis serverLog). A line is built in a stack
 * buffer of SB_LOG_LINE_MAX bytes and leaves in ONE write(2) to fd 2: no stdio lock, no
 * heap, and because the line is at most PIPE_BUF bytes a write to a pipe (docker, systemd,
 * a test) is atomic, so lines from different threads never interleave. A message too long
 * for the line ends in "..." inside the JSON string, which stays valid.
 *
 * Strings are escaped for JSON by hand: quotes, backslash, control characters, DEL; bytes
 * that are not valid UTF-8 become \ufffd, so a stray byte from a provider cannot make the
 * line unparseable. sb_log_init is meant to be called once, before threads start. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "sb_log.h"
#include "sb_banned.h"

#define SB_LOG_LINE_MAX 4096    // bytes per line incl. newline; <= PIPE_BUF keeps it atomic
#define SB_LOG_STAGE_MAX 64     // escaped stage name, bytes
#define SB_LOG_EVENT_ID_MAX 256 // escaped event id, bytes

_Static_assert(SB_LOG_LINE_MAX <= PIPE_BUF, "a log line must fit in one atomic pipe write");

static atomic_int s_min_level = SB_LOG_INFO;       // read by every thread, set by init
static char s_stage[SB_LOG_STAGE_MAX] = "unknown"; // already JSON-escaped

static const char *const s_level_names[] = {"debug", "info", "warn", "error"};

// Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates, nothing
// above U+10FFFF), or 0 when the byte at p does not start one.
static size_t
s_utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return n;
}

// Append text[0..len) JSON-escaped to out, never writing past out[limit). Each character
// goes in whole or not at all. Returns false when it ran out of room.
static bool
s_escape(char *out, size_t *pos, size_t limit, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        char unit[8];
        const char *src = unit;
        size_t n = 0, used = 1;
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            unit[0] = '\\';
            unit[1] = (char)c;
            n = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            unit[0] = '\\';
            unit[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(unit, "\\u00", 4);
            unit[4] = hex[c >> 4];
            unit[5] = hex[c & 0xf];
            n = 6;
        } else if (c < 0x80) {
            src = (const char *)&p[i];
            n = 1;
        } else if ((used = s_utf8_len(&p[i], len - i)) > 0) {
            src = (const char *)&p[i]; // valid UTF-8 passes through unchanged
            n = used;
        } else {
            src = "\\ufffd"; // one replacement character per invalid byte
            n = 6;
            used = 1;
        }
        if (*pos + n > limit)
            return false;
        memcpy(out + *pos, src, n);
        *pos += n;
        i += used;
    }
    return true;
}

static void
s_put(char *out, size_t *pos, const char *text)
{
    size_t n = strlen(text);
    memcpy(out + *pos, text, n); // callers have reserved the room
    *pos += n;
}

// "2026-11-24T15:00:12.418Z" (24 characters), UTC with milliseconds.
static void
s_timestamp(char *out, size_t size)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03ldZ", now.tv_nsec / 1000000L);
}

// Write the whole line with one write(2). A partial write (a file on a full disk, a
// signal) is finished with more writes rather than lost; EINTR is retried.
static void
s_emit(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; // nowhere to report a broken stderr
        line += n;
        len -= (size_t)n;
    }
}

void
sb_log_init(const char *stage, sb_log_level_t min_level)
{
    assert(min_level >= SB_LOG_DEBUG && min_level <= SB_LOG_ERROR);
    size_t pos = 0;
    const char *name = stage ? stage : "unknown";
    // Leave room for the NUL; a stage name never needs the whole buffer.
    s_escape(s_stage, &pos, sizeof s_stage - 1, name, strlen(name));
    s_stage[pos] = '\0';
    atomic_store_explicit(&s_min_level, (int)min_level, memory_order_relaxed);
}

int
sb_log_level_parse(const char *text, sb_log_level_t *level)
{
    if (text == NULL)
        return -1;
    for (int i = SB_LOG_DEBUG; i <= SB_LOG_ERROR; i++) {
        if (strcasecmp(text, s_level_names[i]) == 0) {
            *level = (sb_log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *level = SB_LOG_WARN;
        return 0;
    }
    return -1;
}

void
sb_log_write(sb_log_level_t level, const char *event_id, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&s_min_level, memory_order_relaxed))
        return; // the cheap path: nothing formatted
    if (level < SB_LOG_DEBUG || level > SB_LOG_ERROR)
        level = SB_LOG_ERROR;
    int saved_errno = errno; // callers may log and then look at errno

    char msg[SB_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bool cut = n < 0 || (size_t)n >= sizeof msg;
    size_t msg_len = n < 0 ? 0 : cut ? sizeof msg - 1 : (size_t)n;

    char line[SB_LOG_LINE_MAX];
    char ts[32];
    s_timestamp(ts, sizeof ts);
    size_t pos = 0;
    // Fixed parts are bounded: 24-byte ts, 5-byte level, escaped stage < SB_LOG_STAGE_MAX.
    s_put(line, &pos, "{\"ts\":\"");
    s_put(line, &pos, ts);
    s_put(line, &pos, "\",\"level\":\"");
    s_put(line, &pos, s_level_names[level]);
    s_put(line, &pos, "\",\"stage\":\"");
    s_put(line, &pos, s_stage);
    if (event_id) {
        s_put(line, &pos, "\",\"event_id\":\"");
        if (!s_escape(line, &pos, pos + SB_LOG_EVENT_ID_MAX, event_id, strlen(event_id)))
            s_put(line, &pos, "...");
    }
    s_put(line, &pos, "\",\"msg\":\"");
    static const char tail[] = "\"}\n";
    static const char more[] = "...";
    // Room for the tail and a "..." is held back, so the line always closes properly.
    size_t limit = sizeof line - (sizeof tail - 1) - (sizeof more - 1);
    if (!s_escape(line, &pos, limit, msg, msg_len) || cut)
        s_put(line, &pos, more);
    s_put(line, &pos, tail);
    s_emit(line, pos);
    errno = saved_errno;
}
