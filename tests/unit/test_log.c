/* test_log - sb_log: each line is one JSON object with the agreed keys, strings are
 * escaped (including invalid UTF-8), the level filters, long messages are cut but stay
 * valid, and lines from several threads never interleave. stderr is captured through a
 * pipe drained by a reader thread, as docker or systemd would read it. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "sb_check.h"
#include "sb_log.h"
#include "sb_banned.h"

typedef struct {
    int read_fd;   // the pipe's read end
    int saved_fd;  // stderr as it was
    pthread_t tid; // drains the pipe so writers never block on a full pipe
    char *buf;     // what was read
    size_t len;    // bytes in buf
} capture_t;

static void *
s_drain(void *arg)
{
    capture_t *c = arg;
    size_t cap = 0;
    for (;;) {
        if (c->len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            c->buf = realloc(c->buf, cap);
        }
        ssize_t n = read(c->read_fd, c->buf + c->len, 4096);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        c->len += (size_t)n;
    }
    c->buf[c->len] = '\0';
    return NULL;
}

static void
s_capture_start(capture_t *c)
{
    memset(c, 0, sizeof *c);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    c->read_fd = p[0];
    c->saved_fd = dup(2);
    dup2(p[1], 2);
    close(p[1]); // fd 2 is now the only write end
    ck_assert_int_eq(pthread_create(&c->tid, NULL, s_drain, c), 0);
}

// Restore stderr and return everything written meanwhile (caller frees).
static char *
s_capture_stop(capture_t *c)
{
    dup2(c->saved_fd, 2); // closes the last write end: the reader sees EOF
    close(c->saved_fd);
    pthread_join(c->tid, NULL);
    close(c->read_fd);
    return c->buf;
}

// Parse the single line in text as a JSON object; fails the test otherwise.
static json_t *
s_parse_line(const char *line, size_t len)
{
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, 0, &jerr);
    ck_assert_msg(obj != NULL, "not JSON (%s): %.*s", jerr.text, (int)len, line);
    ck_assert_msg(json_is_object(obj), "not an object: %.*s", (int)len, line);
    return obj;
}

static json_t *
s_only_line(const char *text)
{
    size_t len = strlen(text);
    ck_assert_msg(len > 0 && text[len - 1] == '\n', "no final newline: %s", text);
    ck_assert_msg(strchr(text, '\n') == text + len - 1, "more than one line: %s", text);
    return s_parse_line(text, len - 1);
}

static const char *
s_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    ck_assert_msg(json_is_string(v), "key %s missing or not a string", key);
    return json_string_value(v);
}

START_TEST(line_is_one_json_object_with_every_key)
{
    sb_log_init("ingress", SB_LOG_INFO);
    capture_t c;
    time_t before = time(NULL);
    s_capture_start(&c);
    sb_log_info("ing1-42", "accepted %d bytes from %s", 512, "ringcentral");
    char *text = s_capture_stop(&c);
    time_t after = time(NULL);
    json_t *obj = s_only_line(text);
    ck_assert_int_eq(json_object_size(obj), 5);
    ck_assert_str_eq(s_str(obj, "level"), "info");
    ck_assert_str_eq(s_str(obj, "stage"), "ingress");
    ck_assert_str_eq(s_str(obj, "event_id"), "ing1-42");
    ck_assert_str_eq(s_str(obj, "msg"), "accepted 512 bytes from ringcentral");
    // ts: "2026-11-24T15:00:12.418Z", UTC, and now.
    const char *ts = s_str(obj, "ts");
    ck_assert_uint_eq(strlen(ts), 24);
    struct tm tm = {0};
    int ms = -1, used = 0;
    int got = sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &used);
    ck_assert_msg(got == 7 && used == 24 && ms >= 0 && ts[19] == '.', "bad ts %s", ts);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    ck_assert_msg(t >= before - 1 && t <= after + 1, "ts %s is not now", ts);
    // Key order as documented, so a human reading the raw line finds ts first.
    ck_assert_msg(strncmp(text, "{\"ts\":\"", 7) == 0, "%s", text);
    json_decref(obj);
    free(text);
}
END_TEST

START_TEST(event_id_key_is_omitted_when_null)
{
    sb_log_init("writer", SB_LOG_DEBUG);
    capture_t c;
    s_capture_start(&c);
    sb_log_error(NULL, "could not connect: %s", "timeout");
    char *text = s_capture_stop(&c);
    json_t *obj = s_only_line(text);
    ck_assert_int_eq(json_object_size(obj), 4);
    ck_assert_ptr_null(json_object_get(obj, "event_id"));
    ck_assert_str_eq(s_str(obj, "level"), "error");
    ck_assert_str_eq(s_str(obj, "stage"), "writer");
    ck_assert_str_eq(s_str(obj, "msg"), "could not connect: timeout");
    ck_assert_ptr_null(strstr(text, "event_id"));
    json_decref(obj);
    free(text);
}
END_TEST

START_TEST(strings_are_json_escaped)
{
    sb_log_init("st\"age\\", SB_LOG_DEBUG);
    capture_t c;
    s_capture_start(&c);
    sb_log_warn(
        "id\"1\n",
        "q\" b\\ n\n r\r t\t ctl\x01\x1f del\x7f utf8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    char *text = s_capture_stop(&c);
    for (const char *p = text; *p; p++) // only the final newline is a raw control char
        ck_assert_msg((unsigned char)*p >= 0x20 || p[1] == '\0', "raw control in %s", text);
    json_t *obj = s_only_line(text);
    ck_assert_str_eq(s_str(obj, "stage"), "st\"age\\");
    ck_assert_str_eq(s_str(obj, "event_id"), "id\"1\n");
    ck_assert_str_eq(s_str(obj, "msg"), "q\" b\\ n\n r\r t\t ctl\x01\x1f del\x7f utf8 "
                                        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    ck_assert_str_eq(s_str(obj, "level"), "warn");
    json_decref(obj);
    free(text);
}
END_TEST

START_TEST(invalid_utf8_becomes_replacement_characters)
{
    sb_log_init("verifier", SB_LOG_DEBUG);
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b"},                                                    // never valid
        {"\xc3(", "\xef\xbf\xbd("},                               // missing continuation
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 // overlong '/'
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, // UTF-16 surrogate
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, // > U+10FFFF
        {"end\xe2\x82", "end\xef\xbf\xbd\xef\xbf\xbd"},                           // cut at the end
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        capture_t c;
        s_capture_start(&c);
        sb_log_info(NULL, "%s", cases[i].in);
        char *text = s_capture_stop(&c);
        json_t *obj = s_only_line(text); // jansson rejects invalid UTF-8, so this checks it
        ck_assert_msg(strcmp(s_str(obj, "msg"), cases[i].out) == 0, "case %zu: %s", i, text);
        json_decref(obj);
        free(text);
    }
}
END_TEST

START_TEST(level_filters_lines)
{
    sb_log_init("enricher", SB_LOG_WARN);
    capture_t c;
    s_capture_start(&c);
    sb_log_debug("e1", "debug %d", 1);
    sb_log_info("e2", "info %d", 2);
    sb_log_warn("e3", "warn %d", 3);
    sb_log_error("e4", "error %d", 4);
    char *text = s_capture_stop(&c);
    char *nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    json_t *first = s_parse_line(text, (size_t)(nl - text));
    json_t *second = s_only_line(nl + 1);
    ck_assert_str_eq(s_str(first, "level"), "warn");
    ck_assert_str_eq(s_str(first, "msg"), "warn 3");
    ck_assert_str_eq(s_str(second, "level"), "error");
    ck_assert_str_eq(s_str(second, "event_id"), "e4");
    json_decref(first);
    json_decref(second);
    free(text);

    sb_log_init("enricher", SB_LOG_ERROR);
    s_capture_start(&c);
    sb_log_warn(NULL, "hidden");
    text = s_capture_stop(&c);
    ck_assert_str_eq(text, "");
    free(text);
}
END_TEST

START_TEST(long_messages_are_cut_and_stay_valid)
{
    sb_log_init("ingress", SB_LOG_INFO);
    static const char *const fill[] = {"x", "\"", "\xc3\xa9", "\x01"}; // 1, 2, 1 and 6 out
    for (size_t k = 0; k < sizeof fill / sizeof fill[0]; k++) {
        size_t unit = strlen(fill[k]);
        size_t n = 20000 / unit;
        char *big = malloc(n * unit + 1);
        for (size_t i = 0; i < n; i++)
            memcpy(big + i * unit, fill[k], unit);
        big[n * unit] = '\0';
        capture_t c;
        s_capture_start(&c);
        sb_log_info("id", "%s", big);
        char *text = s_capture_stop(&c);
        ck_assert_msg(strlen(text) <= 4096, "line of %zu bytes", strlen(text));
        json_t *obj = s_only_line(text);
        const char *msg = s_str(obj, "msg");
        size_t len = strlen(msg);
        ck_assert_msg(len > 500, "cut too short: %zu", len);
        ck_assert_str_eq(msg + len - 3, "...");
        ck_assert_msg(strncmp(msg, big, len - 3) == 0, "prefix differs for fill %zu", k);
        json_decref(obj);
        free(text);
        free(big);
    }
}
END_TEST

START_TEST(level_names_parse)
{
    static const struct {
        const char *text;
        int rc;
        sb_log_level_t level;
    } cases[] = {
        {"debug", 0, SB_LOG_DEBUG},  {"info", 0, SB_LOG_INFO},   {"warn", 0, SB_LOG_WARN},
        {"warning", 0, SB_LOG_WARN}, {"error", 0, SB_LOG_ERROR}, {"INFO", 0, SB_LOG_INFO},
        {"Warning", 0, SB_LOG_WARN}, {"", -1, SB_LOG_INFO},      {"fatal", -1, SB_LOG_INFO},
        {"info ", -1, SB_LOG_INFO},  {"3", -1, SB_LOG_INFO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_log_level_t level = SB_LOG_INFO;
        ck_assert_msg(sb_log_level_parse(cases[i].text, &level) == cases[i].rc, "\"%s\"",
                      cases[i].text);
        ck_assert_msg(level == cases[i].level, "\"%s\" -> %d", cases[i].text, (int)level);
    }
    sb_log_level_t level = SB_LOG_DEBUG;
    ck_assert_int_eq(sb_log_level_parse(NULL, &level), -1);
    ck_assert_int_eq(level, SB_LOG_DEBUG);
}
END_TEST

START_TEST(errno_survives_a_log_call)
{
    sb_log_init("ingress", SB_LOG_INFO);
    capture_t c;
    s_capture_start(&c);
    errno = ENOSPC;
    sb_log_error(NULL, "disk full");
    int after = errno;
    free(s_capture_stop(&c));
    ck_assert_int_eq(after, ENOSPC);
}
END_TEST

#define THREADS 4
#define LINES_PER_THREAD 500

static void *
s_chatter(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[1500]; // long lines make a torn write likely if writes were split
    memset(pad, 'a' + id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++)
        sb_log_info("t", "thread=%d line=%d %s", id, i, pad);
    return NULL;
}

START_TEST(threads_never_interleave_lines)
{
    sb_log_init("writer", SB_LOG_INFO);
    capture_t c;
    s_capture_start(&c);
    pthread_t tids[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&tids[i], NULL, s_chatter, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(tids[i], NULL);
    char *text = s_capture_stop(&c);
    int next[THREADS] = {0}; // each thread's lines arrive in its own order
    int lines = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        json_t *obj = s_parse_line(line, (size_t)(nl - line));
        int id = -1, n = -1;
        ck_assert_int_eq(sscanf(s_str(obj, "msg"), "thread=%d line=%d", &id, &n), 2);
        ck_assert(id >= 0 && id < THREADS);
        ck_assert_int_eq(n, next[id]);
        next[id]++;
        lines++;
        json_decref(obj);
    }
    ck_assert_int_eq(lines, THREADS * LINES_PER_THREAD);
    free(text);
}
END_TEST

static Suite *
sb_log_suite(void)
{
    Suite *s = suite_create("sb_log");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, line_is_one_json_object_with_every_key);
    tcase_add_test(tc, event_id_key_is_omitted_when_null);
    tcase_add_test(tc, strings_are_json_escaped);
    tcase_add_test(tc, invalid_utf8_becomes_replacement_characters);
    tcase_add_test(tc, level_filters_lines);
    tcase_add_test(tc, long_messages_are_cut_and_stay_valid);
    tcase_add_test(tc, level_names_parse);
    tcase_add_test(tc, errno_survives_a_log_call);
    tcase_add_test(tc, threads_never_interleave_lines);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_log_suite)
