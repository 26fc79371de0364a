/* test_sbctl - sbctl's pure pieces: option parsing, --since, human time deltas, metric
 * sums from a Prometheus exposition, the request a replay posts (secrets added back from
 * the configuration, redacted headers dropped) and token files. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "sb_check.h"
#include "sbctl.h"
#include "sb_banned.h"

static void
s_argv_free(char **argv)
{
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

// argv as main gets it: writable strings (s_argv_free).
static char **
s_argv(int n, ...)
{
    char **argv = calloc((size_t)n + 1, sizeof *argv);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        argv[i] = strdup(va_arg(ap, const char *));
    va_end(ap);
    return argv;
}

START_TEST(options_values_flags_and_positionals)
{
    const char *since = NULL, *outcome = NULL;
    int json = 0, help = 0;
    const sb_sbctl_opt_t opts[] = {
        {"--since", &since, NULL}, {"--outcome", &outcome, NULL}, {"--json", NULL, &json}};
    char **argv =
        s_argv(8, "events", "a", "--since", "2h", "--outcome=failed", "--json", "--", "--b");
    const char *pos[4];
    size_t n = 0;
    sb_err_t err = {0};
    ck_assert_msg(sb_sbctl_parse(8, argv, opts, 3, pos, 4, &n, &help, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(since, "2h");
    ck_assert_str_eq(outcome, "failed");
    ck_assert_int_eq(json, 1);
    ck_assert_int_eq(help, 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(pos[0], "a");
    ck_assert_str_eq(pos[1], "--b"); // after "--"
    char **help_argv = s_argv(2, "events", "--help");
    ck_assert_int_eq(sb_sbctl_parse(2, help_argv, opts, 3, pos, 4, &n, &help, &err), 0);
    ck_assert_int_eq(help, 1);
    char **bad1 = s_argv(2, "events", "--nope");
    ck_assert_int_ne(sb_sbctl_parse(2, bad1, opts, 3, pos, 4, &n, &help, &err), 0);
    ck_assert_msg(strstr(err.msg, "--nope") != NULL, "%s", err.msg);
    char **bad2 = s_argv(2, "events", "--since");
    ck_assert_int_ne(sb_sbctl_parse(2, bad2, opts, 3, pos, 4, &n, &help, &err), 0);
    ck_assert_msg(strstr(err.msg, "needs a value") != NULL, "%s", err.msg);
    char **bad3 = s_argv(2, "events", "--json=1");
    ck_assert_int_ne(sb_sbctl_parse(2, bad3, opts, 3, pos, 4, &n, &help, &err), 0);
    char **bad4 = s_argv(3, "events", "x", "y");
    ck_assert_int_ne(sb_sbctl_parse(3, bad4, opts, 3, pos, 1, &n, &help, &err), 0);
    ck_assert_msg(strstr(err.msg, "\"y\"") != NULL, "%s", err.msg);
    char **all[] = {argv, help_argv, bad1, bad2, bad3, bad4};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        s_argv_free(all[i]);
}
END_TEST

START_TEST(since_is_a_duration_or_a_timestamp)
{
    char out[64];
    int interval = -1;
    ck_assert_int_eq(sb_sbctl_since("2h", out, sizeof out, &interval), 0);
    ck_assert_int_eq(interval, 1);
    ck_assert_str_eq(out, "7200.000 seconds");
    ck_assert_int_eq(sb_sbctl_since("90", out, sizeof out, &interval), 0);
    ck_assert_str_eq(out, "90.000 seconds");
    ck_assert_int_eq(sb_sbctl_since("7d", out, sizeof out, &interval), 0);
    ck_assert_str_eq(out, "604800.000 seconds");
    ck_assert_int_eq(sb_sbctl_since("2026-11-24", out, sizeof out, &interval), 0);
    ck_assert_int_eq(interval, 0);
    ck_assert_str_eq(out, "2026-11-24");
    ck_assert_int_eq(sb_sbctl_since("2026-11-24 15:00+00", out, sizeof out, &interval), 0);
    ck_assert_int_eq(interval, 0);
    ck_assert_int_ne(sb_sbctl_since("", out, sizeof out, &interval), 0);
    ck_assert_int_ne(sb_sbctl_since(NULL, out, sizeof out, &interval), 0);
}
END_TEST

START_TEST(deltas_read_like_people_write_them)
{
    char out[48];
    sb_sbctl_human_delta(6 * 86400 + 23 * 3600 + 59, out, sizeof out);
    ck_assert_str_eq(out, "in 6d 23h");
    sb_sbctl_human_delta(2 * 3600 + 5 * 60 + 3, out, sizeof out);
    ck_assert_str_eq(out, "in 2h 5m");
    sb_sbctl_human_delta(45, out, sizeof out);
    ck_assert_str_eq(out, "in 45s");
    sb_sbctl_human_delta(-(3 * 3600 + 12 * 60), out, sizeof out);
    ck_assert_str_eq(out, "3h 12m ago");
    sb_sbctl_human_delta(NAN, out, sizeof out);
    ck_assert_str_eq(out, "-");
}
END_TEST

START_TEST(metric_sums_over_every_series)
{
    const char *text = "# HELP sb_events_in_total events received\n"
                       "# TYPE sb_events_in_total counter\n"
                       "sb_events_in_total{source=\"ringcentral_sms\"} 10\n"
                       "sb_events_in_total{source=\"gmail push\"} 5\n"
                       "sb_events_in_total_other 100\n"
                       "sb_spool_depth 3\n"
                       "sb_gauge_nan NaN\n";
    ck_assert(fabs(sb_sbctl_metric_sum(text, "sb_events_in_total") - 15.0) < 1e-9);
    ck_assert(fabs(sb_sbctl_metric_sum(text, "sb_spool_depth") - 3.0) < 1e-9);
    ck_assert(isnan(sb_sbctl_metric_sum(text, "sb_events")));
    ck_assert(isnan(sb_sbctl_metric_sum(text, "sb_gauge_nan")));
    ck_assert(isnan(sb_sbctl_metric_sum("", "x")));
}
END_TEST

static int
s_has(const sb_sbctl_replay_req_t *req, const char *line)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcmp(req->headers[i], line) == 0)
            return 1;
    return 0;
}

static int
s_has_name(const sb_sbctl_replay_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strncasecmp(req->headers[i], name, strlen(name)) == 0)
            return 1;
    return 0;
}

START_TEST(replayed_ringcentral_event_gets_the_configured_token)
{
    const char *stored = "{\"content-type\":\"application/json\",\"user-agent\":\"RingCentral\","
                         "\"verification-token\":\"[redacted]\","
                         "\"x-ringcentral-signature\":\"[redacted]\"}";
    sb_sbctl_replay_req_t req;
    sb_err_t err = {0};
    ck_assert_msg(sb_sbctl_replay_request("ringcentral_sms", stored, "i:e:7", "vt-configured",
                                          "gpt", &req, &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(req.path, "/api/webhooks/ringcentral/sms");
    ck_assert(s_has(&req, "content-type: application/json"));
    ck_assert(s_has(&req, "user-agent: RingCentral"));
    ck_assert(s_has(&req, "Verification-Token: vt-configured"));
    ck_assert(s_has(&req, "X-Request-Id: sbctl-replay:i:e:7"));
    ck_assert(!s_has_name(&req, "x-ringcentral-signature")); // redacted: dropped
    ck_assert(!s_has_name(&req, "verification-token: [redacted]"));
    ck_assert_uint_eq(req.n_headers, 4);
    ck_assert_ptr_null(req.headers[req.n_headers]);
    sb_sbctl_replay_req_release(&req);
    // A request id of its own is kept; no token configured: none added.
    ck_assert_int_eq(sb_sbctl_replay_request("ringcentral_call", "{\"x-request-id\":\"abc\"}", "e",
                                             NULL, NULL, &req, &err),
                     0);
    ck_assert_str_eq(req.path, "/api/webhooks/ringcentral/call");
    ck_assert(s_has(&req, "x-request-id: abc"));
    ck_assert_uint_eq(req.n_headers, 1);
    sb_sbctl_replay_req_release(&req);
}
END_TEST

START_TEST(replayed_gmail_push_gets_the_push_token_in_its_query)
{
    const char *stored = "{\":query\":\"a=1&token=[redacted]&b=x%2By\","
                         "\"authorization\":\"[redacted]\",\"content-type\":\"application/json\"}";
    sb_sbctl_replay_req_t req;
    sb_err_t err = {0};
    ck_assert_int_eq(sb_sbctl_replay_request("gmail_push", stored, "e", "vt", "p/t+k=", &req, &err),
                     0);
    ck_assert_str_eq(req.path, "/api/webhooks/gmail/push?a=1&token=p%2Ft%2Bk%3D&b=x%2By");
    ck_assert(!s_has_name(&req, "authorization"));
    ck_assert(!s_has_name(&req, "Verification-Token")); // not for Gmail
    sb_sbctl_replay_req_release(&req);
    ck_assert_int_eq(sb_sbctl_replay_request("gmail_push", stored, "e", NULL, NULL, &req, &err), 0);
    ck_assert_str_eq(req.path, "/api/webhooks/gmail/push?a=1&b=x%2By"); // no token to add
    sb_sbctl_replay_req_release(&req);
    ck_assert_int_eq(sb_sbctl_replay_request("gmail_push", "{\":query\":\"token=[redacted]\"}", "e",
                                             NULL, NULL, &req, &err),
                     0);
    ck_assert_str_eq(req.path, "/api/webhooks/gmail/push");
    sb_sbctl_replay_req_release(&req);
    ck_assert_int_ne(sb_sbctl_replay_request("fax", "{}", "e", NULL, NULL, &req, &err), 0);
    ck_assert_msg(strstr(err.msg, "fax") != NULL, "%s", err.msg);
    ck_assert_int_ne(sb_sbctl_replay_request("gmail_push", "[1]", "e", NULL, NULL, &req, &err), 0);
}
END_TEST

static char *
s_file(const char *content, size_t len)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_sbctl_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

START_TEST(token_files_are_one_trimmed_line)
{
    sb_err_t err = {0};
    char *path = s_file("  1//rt-abc \n\n", 14);
    char *token = sb_sbctl_read_token_file(path, &err);
    ck_assert_msg(token != NULL, "%s", err.msg);
    ck_assert_str_eq(token, "1//rt-abc");
    free(token);
    unlink(path);
    const struct {
        const char *content;
        size_t len;
        const char *why;
    } bad[] = {{"", 0, "empty"},
               {" \n\t", 3, "empty"},
               {"a\nb\n", 4, "more than one line"},
               {"a\0b", 3, "NUL"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        path = s_file(bad[i].content, bad[i].len);
        ck_assert_ptr_null(sb_sbctl_read_token_file(path, &err));
        ck_assert_msg(strstr(err.msg, bad[i].why) != NULL, "%zu: %s", i, err.msg);
        unlink(path);
    }
    ck_assert_ptr_null(sb_sbctl_read_token_file("/dev/null/x", &err));
    ck_assert_msg(strstr(err.msg, "could not open") != NULL, "%s", err.msg);
}
END_TEST

static Suite *
sb_sbctl_suite(void)
{
    Suite *s = suite_create("sbctl");
    TCase *tc = tcase_create("pure");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, options_values_flags_and_positionals);
    tcase_add_test(tc, since_is_a_duration_or_a_timestamp);
    tcase_add_test(tc, deltas_read_like_people_write_them);
    tcase_add_test(tc, metric_sums_over_every_series);
    tcase_add_test(tc, replayed_ringcentral_event_gets_the_configured_token);
    tcase_add_test(tc, replayed_gmail_push_gets_the_push_token_in_its_query);
    tcase_add_test(tc, token_files_are_one_trimmed_line);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_sbctl_suite)
