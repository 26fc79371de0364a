/* test_metrics - sb_metrics: the exact Prometheus text for each type, handle reuse,
 * grouping by name, lock-free updates from several threads, and the HTTP server
 * (/metrics, /health, 404, 405, port 0, a taken port) over a raw socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "sb_check.h"
#include "sb_metrics.h"
#include "sb_banned.h"

static char *
s_render(sb_metrics_t *m)
{
    size_t len = 0;
    char *text = sb_metrics_render(m, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, strlen(text));
    return text;
}

START_TEST(empty_registry_renders_nothing)
{
    sb_metrics_t *m = sb_metrics_new();
    char *text = s_render(m);
    ck_assert_str_eq(text, "");
    free(text);
    sb_metrics_destroy(&m);
    ck_assert_ptr_null(m);
    sb_metrics_destroy(&m); // twice is harmless
}
END_TEST

START_TEST(counter_renders_help_type_and_series)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_counter_t *sms = sb_metrics_counter(m, "sb_events_in_total", "events received",
                                           "source=\"ringcentral_sms\"");
    sb_counter_t *all = sb_metrics_counter(m, "sb_restarts_total", "restarts", "");
    sb_counter_add(sms, 3);
    sb_counter_add(sms, 4);
    sb_counter_add(all, 1);
    ck_assert_uint_eq(sb_counter_value(sms), 7);
    char *text = s_render(m);
    ck_assert_str_eq(text, "# HELP sb_events_in_total events received\n"
                           "# TYPE sb_events_in_total counter\n"
                           "sb_events_in_total{source=\"ringcentral_sms\"} 7\n"
                           "# HELP sb_restarts_total restarts\n"
                           "# TYPE sb_restarts_total counter\n"
                           "sb_restarts_total 1\n");
    free(text);
    sb_metrics_destroy(&m);
}
END_TEST

START_TEST(same_name_and_labels_give_the_same_handle)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_counter_t *a = sb_metrics_counter(m, "c_total", "c", "x=\"1\"");
    sb_counter_t *b = sb_metrics_counter(m, "c_total", "c", "x=\"1\"");
    sb_counter_t *other = sb_metrics_counter(m, "c_total", "c", "x=\"2\"");
    sb_counter_t *bare = sb_metrics_counter(m, "c_total", "c", NULL);
    ck_assert_ptr_eq(a, b);
    ck_assert_ptr_ne(a, other);
    ck_assert_ptr_ne(a, bare);
    ck_assert_ptr_eq(bare, sb_metrics_counter(m, "c_total", "c", "")); // NULL is ""
    sb_counter_add(a, 2);
    sb_counter_add(b, 3);
    ck_assert_uint_eq(sb_counter_value(a), 5);
    ck_assert_uint_eq(sb_counter_value(other), 0);
    sb_gauge_t *g1 = sb_metrics_gauge(m, "g", "g", "");
    ck_assert_ptr_eq(g1, sb_metrics_gauge(m, "g", "g", ""));
    static const double bounds[] = {1, 2};
    sb_histogram_t *h1 = sb_metrics_histogram(m, "h", "h", "", bounds, 2);
    ck_assert_ptr_eq(h1, sb_metrics_histogram(m, "h", "h", "", bounds, 2));
    sb_metrics_destroy(&m);
}
END_TEST

START_TEST(series_of_one_name_are_grouped)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_counter_t *a1 = sb_metrics_counter(m, "a_total", "first", "k=\"1\"");
    sb_gauge_t *b = sb_metrics_gauge(m, "b", "second", "");
    sb_counter_t *a2 = sb_metrics_counter(m, "a_total", "first", "k=\"2\"");
    sb_counter_add(a1, 1);
    sb_counter_add(a2, 2);
    sb_gauge_set(b, 3);
    char *text = s_render(m);
    ck_assert_str_eq(text, "# HELP a_total first\n"
                           "# TYPE a_total counter\n"
                           "a_total{k=\"1\"} 1\n"
                           "a_total{k=\"2\"} 2\n"
                           "# HELP b second\n"
                           "# TYPE b gauge\n"
                           "b 3\n");
    free(text);
    sb_metrics_destroy(&m);
}
END_TEST

START_TEST(gauge_holds_doubles)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_gauge_t *g =
        sb_metrics_gauge(m, "sb_spool_bytes", "spool size\nin bytes \\ total", "ingress=\"i1\"");
    ck_assert(sb_gauge_value(g) == 0.0);
    sb_gauge_set(g, 2.5);
    ck_assert(sb_gauge_value(g) == 2.5);
    sb_gauge_set(g, -0.125);
    ck_assert(sb_gauge_value(g) == -0.125);
    char *text = s_render(m);
    ck_assert_str_eq(text, "# HELP sb_spool_bytes spool size\\nin bytes \\\\ total\n"
                           "# TYPE sb_spool_bytes gauge\n"
                           "sb_spool_bytes{ingress=\"i1\"} -0.125\n");
    free(text);
    sb_gauge_set(g, 1e21);
    text = s_render(m);
    ck_assert_ptr_nonnull(strstr(text, "sb_spool_bytes{ingress=\"i1\"} 1e+21\n"));
    free(text);
    sb_gauge_set(g, 0.1); // shortest round-trip text, not 0.10000000000000001
    text = s_render(m);
    ck_assert_ptr_nonnull(strstr(text, "sb_spool_bytes{ingress=\"i1\"} 0.1\n"));
    free(text);
    sb_metrics_destroy(&m);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative)
{
    sb_metrics_t *m = sb_metrics_new();
    static const double bounds[] = {0.125, 1, 2.5};
    sb_histogram_t *h = sb_metrics_histogram(m, "sb_commit_seconds", "commit latency",
                                             "stage=\"writer\"", bounds, 3);
    sb_histogram_t *bare =
        sb_metrics_histogram(m, "sb_commit_seconds", "commit latency", "", bounds, 3);
    // Exactly representable values, so _sum is exact: 103.6875.
    static const double obs[] = {0.0625, 0.125, 0.5, 3, 100};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        sb_histogram_observe(h, obs[i]);
    char *text = s_render(m);
    ck_assert_str_eq(text, "# HELP sb_commit_seconds commit latency\n"
                           "# TYPE sb_commit_seconds histogram\n"
                           "sb_commit_seconds_bucket{stage=\"writer\",le=\"0.125\"} 2\n"
                           "sb_commit_seconds_bucket{stage=\"writer\",le=\"1\"} 3\n"
                           "sb_commit_seconds_bucket{stage=\"writer\",le=\"2.5\"} 3\n"
                           "sb_commit_seconds_bucket{stage=\"writer\",le=\"+Inf\"} 5\n"
                           "sb_commit_seconds_sum{stage=\"writer\"} 103.6875\n"
                           "sb_commit_seconds_count{stage=\"writer\"} 5\n"
                           "sb_commit_seconds_bucket{le=\"0.125\"} 0\n"
                           "sb_commit_seconds_bucket{le=\"1\"} 0\n"
                           "sb_commit_seconds_bucket{le=\"2.5\"} 0\n"
                           "sb_commit_seconds_bucket{le=\"+Inf\"} 0\n"
                           "sb_commit_seconds_sum 0\n"
                           "sb_commit_seconds_count 0\n");
    free(text);
    (void)bare;
    sb_metrics_destroy(&m);
}
END_TEST

START_TEST(latency_bounds_span_half_a_millisecond_to_ten_seconds)
{
    static const double want[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    ck_assert_uint_eq(sb_metrics_latency_bounds_n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sb_metrics_latency_bounds_n; i++)
        ck_assert(sb_metrics_latency_bounds[i] == want[i]);
    sb_metrics_t *m = sb_metrics_new();
    sb_histogram_t *h = sb_metrics_histogram(
        m, "lat_seconds", "latency", "", sb_metrics_latency_bounds, sb_metrics_latency_bounds_n);
    sb_histogram_observe(h, 0.0005); // on a bound: counted in that bucket
    sb_histogram_observe(h, 0.003);
    sb_histogram_observe(h, 11);
    char *text = s_render(m);
    ck_assert_ptr_nonnull(strstr(text, "lat_seconds_bucket{le=\"0.0005\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "lat_seconds_bucket{le=\"0.0025\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "lat_seconds_bucket{le=\"0.005\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "lat_seconds_bucket{le=\"10\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "lat_seconds_bucket{le=\"+Inf\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "lat_seconds_count 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "lat_seconds_sum 11.00")); // float rounding aside
    free(text);
    sb_metrics_destroy(&m);
}
END_TEST

#define THREADS 4
#define ADDS 100000

typedef struct {
    sb_counter_t *counter;
    sb_histogram_t *histogram;
} shared_t;

static void *
s_hammer(void *arg)
{
    shared_t *sh = arg;
    for (int i = 0; i < ADDS; i++) {
        sb_counter_add(sh->counter, 1);
        sb_histogram_observe(sh->histogram, (i & 1) ? 0.5 : 2.0);
    }
    return NULL;
}

START_TEST(concurrent_updates_sum_exactly)
{
    sb_metrics_t *m = sb_metrics_new();
    static const double bounds[] = {1};
    shared_t sh = {
        .counter = sb_metrics_counter(m, "hits_total", "hits", ""),
        .histogram = sb_metrics_histogram(m, "obs", "observations", "", bounds, 1),
    };
    pthread_t tids[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&tids[i], NULL, s_hammer, &sh), 0);
    for (int i = 0; i < 50; i++) // render while they count: must not tear or crash
        free(s_render(m));
    for (int i = 0; i < THREADS; i++)
        pthread_join(tids[i], NULL);
    ck_assert_uint_eq(sb_counter_value(sh.counter), THREADS * ADDS);
    char *text = s_render(m);
    char want[256];
    // Half the observations are 0.5 and half 2.0: sum = N/2 * 2.5, exact in a double.
    snprintf(want, sizeof want,
             "hits_total %d\n# HELP obs observations\n# TYPE obs histogram\n"
             "obs_bucket{le=\"1\"} %d\nobs_bucket{le=\"+Inf\"} %d\nobs_sum %d\nobs_count %d\n",
             THREADS * ADDS, THREADS * ADDS / 2, THREADS * ADDS, THREADS * ADDS / 2 * 5 / 2,
             THREADS * ADDS);
    ck_assert_msg(strstr(text, want) != NULL, "got:\n%s\nwant:\n%s", text, want);
    free(text);
    sb_metrics_destroy(&m);
}
END_TEST

// ---------------------------------------------------------------------------------------
// HTTP over a raw socket: HTTP/1.0 so the server closes after one response.

typedef struct {
    int status;    // from the status line
    char *headers; // the header block, lower-cased names untouched
    char *body;    // after the blank line
} reply_t;

static int
s_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0, "connect :%u: %s", port,
                  strerror(errno));
    return fd;
}

static reply_t
s_http(uint16_t port, const char *method, const char *path)
{
    int fd = s_connect(port);
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t got = read(fd, buf + len, cap - len - 1);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    buf[len] = '\0';
    close(fd);
    reply_t r = {0};
    ck_assert_msg(sscanf(buf, "HTTP/1.%*d %d", &r.status) == 1, "bad reply: %s", buf);
    char *blank = strstr(buf, "\r\n\r\n");
    ck_assert_msg(blank != NULL, "no header end: %s", buf);
    *blank = '\0';
    r.headers = strdup(buf);
    r.body = strdup(blank + 4);
    free(buf);
    return r;
}

static void
s_reply_free(reply_t *r)
{
    free(r->headers);
    free(r->body);
}

// A port that was free a moment ago. Racy in general, fine for a forked unit test.
static uint16_t
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t alen = sizeof addr;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

START_TEST(server_answers_metrics_health_404_and_405)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_counter_add(sb_metrics_counter(m, "sb_events_in_total", "events", "source=\"gmail\""), 9);
    uint16_t port = s_free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    sb_err_t err = {0};
    sb_metrics_server_t *srv = sb_metrics_serve(m, listen, "verifier", &err);
    ck_assert_msg(srv != NULL, "serve: %s", err.msg);

    reply_t r = s_http(port, "GET", "/metrics");
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.headers, "text/plain; version=0.0.4") != NULL, "%s", r.headers);
    ck_assert_str_eq(r.body, "# HELP sb_events_in_total events\n"
                             "# TYPE sb_events_in_total counter\n"
                             "sb_events_in_total{source=\"gmail\"} 9\n");
    s_reply_free(&r);

    r = s_http(port, "GET", "/metrics?x=1"); // a query string does not change the path
    ck_assert_int_eq(r.status, 200);
    s_reply_free(&r);

    r = s_http(port, "GET", "/health");
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.headers, "application/json") != NULL, "%s", r.headers);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\",\"stage\":\"verifier\"}");
    s_reply_free(&r);

    r = s_http(port, "GET", "/nope");
    ck_assert_int_eq(r.status, 404);
    s_reply_free(&r);

    r = s_http(port, "POST", "/metrics");
    ck_assert_int_eq(r.status, 405);
    ck_assert_msg(strstr(r.headers, "\r\nAllow: GET") != NULL, "%s", r.headers);
    s_reply_free(&r);

    sb_metrics_server_destroy(&srv);
    ck_assert_ptr_null(srv);
    sb_metrics_server_destroy(&srv);
    sb_metrics_destroy(&m);
}
END_TEST

// The header has no accessor for the bound port, so find the listening socket among
// this (forked, nearly fd-less) process's descriptors.
static uint16_t
s_find_listening_port(void)
{
    for (int fd = 3; fd < 1024; fd++) {
        int listening = 0;
        socklen_t olen = sizeof listening;
        struct sockaddr_in addr;
        socklen_t alen = sizeof addr;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) != 0 || !listening)
            continue;
        if (getsockname(fd, (struct sockaddr *)&addr, &alen) == 0 && addr.sin_family == AF_INET)
            return ntohs(addr.sin_port);
    }
    return 0;
}

START_TEST(server_binds_an_ephemeral_port_for_port_0)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_err_t err = {0};
    sb_metrics_server_t *srv = sb_metrics_serve(m, "127.0.0.1:0", "writer", &err);
    ck_assert_msg(srv != NULL, "serve: %s", err.msg);
    uint16_t port = s_find_listening_port();
    ck_assert_uint_ne(port, 0);
    reply_t r = s_http(port, "GET", "/health");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\",\"stage\":\"writer\"}");
    s_reply_free(&r);
    sb_metrics_server_destroy(&srv);
    sb_metrics_destroy(&m);
}
END_TEST

START_TEST(server_reports_bad_or_taken_addresses)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_err_t err = {0};
    sb_metrics_server_t *srv = sb_metrics_serve(m, "nohost:99999", "x", &err);
    ck_assert_ptr_null(srv);
    ck_assert_msg(strstr(err.msg, "invalid listen address") != NULL, "%s", err.msg);

    int taken = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(taken, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(listen(taken, 1), 0);
    socklen_t alen = sizeof addr;
    getsockname(taken, (struct sockaddr *)&addr, &alen);
    char where[32];
    snprintf(where, sizeof where, "127.0.0.1:%u", ntohs(addr.sin_port));
    memset(&err, 0, sizeof err);
    srv = sb_metrics_serve(m, where, "x", &err);
    ck_assert_ptr_null(srv);
    ck_assert_msg(strstr(err.msg, "could not serve /metrics on") != NULL, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, where) != NULL, "%s", err.msg);
    close(taken);

    // A second server on our own port fails too (no SO_REUSEPORT sharing).
    uint16_t port = s_free_port();
    snprintf(where, sizeof where, "127.0.0.1:%u", port);
    sb_metrics_server_t *first = sb_metrics_serve(m, where, "x", &err);
    ck_assert_msg(first != NULL, "serve: %s", err.msg);
    memset(&err, 0, sizeof err);
    srv = sb_metrics_serve(m, where, "x", &err);
    ck_assert_ptr_null(srv);
    ck_assert_msg(strstr(err.msg, "Address already in use") != NULL, "%s", err.msg);
    sb_metrics_server_destroy(&first);
    sb_metrics_destroy(&m);
}
END_TEST

static Suite *
sb_metrics_suite(void)
{
    Suite *s = suite_create("sb_metrics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, empty_registry_renders_nothing);
    tcase_add_test(tc, counter_renders_help_type_and_series);
    tcase_add_test(tc, same_name_and_labels_give_the_same_handle);
    tcase_add_test(tc, series_of_one_name_are_grouped);
    tcase_add_test(tc, gauge_holds_doubles);
    tcase_add_test(tc, histogram_buckets_are_cumulative);
    tcase_add_test(tc, latency_bounds_span_half_a_millisecond_to_ten_seconds);
    tcase_add_test(tc, concurrent_updates_sum_exactly);
    tcase_add_test(tc, server_answers_metrics_health_404_and_405);
    tcase_add_test(tc, server_binds_an_ephemeral_port_for_port_0);
    tcase_add_test(tc, server_reports_bad_or_taken_addresses);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_metrics_suite)
