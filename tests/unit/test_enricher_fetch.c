/* test_enricher_fetch - the enricher's HTTP client (enricher/fetch.h) against a tiny
 * scripted HTTP server on a thread of this test: retries of transient answers, final
 * answers, the attempt limit, refused connections, oversized answers, the concurrency
 * cap and the POST form. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <curl/curl.h>
#include <zmq.h>
#include "sb_check.h"
#include "sb_mem.h"
#include "fetch.h"
#include "sb_banned.h"

#define MAX_SCRIPT 16

typedef struct {
    int listen_fd;
    int port;
    int statuses[MAX_SCRIPT]; // answered in order; the last one repeats
    size_t n_statuses;
    size_t body_bytes;       // body size of each answer
    int served;              // requests answered
    char last_request[2048]; // head and body of the last request
    pthread_t thread;
} server_t;

static void *
serve(void *arg)
{
    server_t *s = arg;
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[2048];
        size_t n = 0;
        ssize_t got;
        // Read the head, then as much body as Content-Length says (small requests only).
        while (n < sizeof buf - 1 && (got = read(fd, buf + n, sizeof buf - 1 - n)) > 0) {
            n += (size_t)got;
            buf[n] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL)
                continue;
            char *cl = strstr(buf, "Content-Length: ");
            size_t want = cl ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
            if ((size_t)(buf + n - (end + 4)) >= want)
                break;
        }
        snprintf(s->last_request, sizeof s->last_request, "%s", buf);
        size_t i = (size_t)s->served < s->n_statuses ? (size_t)s->served : s->n_statuses - 1;
        int status = s->statuses[i];
        s->served++;
        char head[256];
        int len = snprintf(head, sizeof head,
                           "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                           status, s->body_bytes);
        ssize_t w = write(fd, head, (size_t)len);
        char *body = sb_xmalloc(s->body_bytes + 1);
        memset(body, 'x', s->body_bytes);
        for (size_t off = 0; w >= 0 && off < s->body_bytes; off += (size_t)w)
            w = write(fd, body + off, s->body_bytes - off);
        free(body);
        close(fd);
    }
}

static void
server_start(server_t *s, const int *statuses, size_t n, size_t body_bytes)
{
    memset(s, 0, sizeof *s);
    memcpy(s->statuses, statuses, n * sizeof *statuses);
    s->n_statuses = n;
    s->body_bytes = body_bytes;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s->listen_fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(listen(s->listen_fd, 64), 0);
    socklen_t alen = sizeof addr;
    getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen);
    s->port = ntohs(addr.sin_port);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void
server_stop(server_t *s)
{
    shutdown(s->listen_fd, SHUT_RDWR);
    close(s->listen_fd);
    pthread_join(s->thread, NULL);
}

typedef struct {
    int calls;       // done callbacks
    long status;     // of the last
    int attempts;    // of the last
    char error[128]; // of the last
    size_t len;      // body length of the last
} result_t;

static void
on_done(sb_fetch_req_t *req, void *arg)
{
    result_t *r = arg;
    r->calls++;
    r->status = sb_fetch_req_status(req);
    r->attempts = sb_fetch_req_attempts(req);
    snprintf(r->error, sizeof r->error, "%s", sb_fetch_req_error(req));
    sb_fetch_req_body(req, &r->len);
}

// Drive the loop as the enricher does until nothing is pending (or 10 s pass).
static void
run(sb_fetch_t *fetch)
{
    zmq_pollitem_t items[64];
    for (int turns = 0; sb_fetch_pending(fetch) > 0 && turns < 100000; turns++) {
        size_t n = sb_fetch_pollitems(fetch, items, 64);
        int ready = zmq_poll(items, (int)n, sb_fetch_timeout_ms(fetch, 100));
        sb_fetch_process(fetch, items, ready > 0 ? n : 0);
    }
    ck_assert_uint_eq(sb_fetch_pending(fetch), 0);
}

static sb_fetch_t *
client(int max_inflight, int attempts, size_t max_body)
{
    sb_fetch_options_t opt = {.max_inflight = max_inflight,
                              .timeout_ms = 5000,
                              .max_attempts = attempts,
                              .backoff_ms = 5,
                              .backoff_max_ms = 40,
                              .max_body_bytes = max_body};
    sb_err_t err = {0};
    sb_fetch_t *f = sb_fetch_new(&opt, NULL, &err);
    ck_assert_msg(f != NULL, "%s", err.msg);
    return f;
}

static char *
url(const server_t *s)
{
    return sb_xasprintf("http://127.0.0.1:%d/gmail/v1/x", s->port);
}

START_TEST(transient_answers_are_retried_until_one_succeeds)
{
    int script[] = {503, 429, 500, 200};
    server_t s;
    server_start(&s, script, 4, 10);
    sb_fetch_t *f = client(4, 5, 1 << 20);
    result_t r = {0};
    char *u = url(&s);
    sb_fetch_req_t *req = sb_fetch_req_new(u);
    sb_fetch_req_bearer(req, "tok-123");
    sb_fetch_start(f, req, on_done, &r);
    run(f);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.attempts, 4);
    ck_assert_uint_eq(r.len, 10);
    ck_assert_int_eq(s.served, 4);
    ck_assert(strstr(s.last_request, "Authorization: Bearer tok-123\r\n") != NULL);
    ck_assert(strstr(s.last_request, "GET /gmail/v1/x ") != NULL);
    free(u);
    sb_fetch_destroy(&f);
    server_stop(&s);
}
END_TEST

START_TEST(final_answers_are_not_retried)
{
    int codes[] = {404, 401, 400, 200};
    for (size_t i = 0; i < 4; i++) {
        server_t s;
        server_start(&s, &codes[i], 1, 3);
        sb_fetch_t *f = client(4, 5, 1 << 20);
        result_t r = {0};
        char *u = url(&s);
        sb_fetch_start(f, sb_fetch_req_new(u), on_done, &r);
        run(f);
        ck_assert_int_eq(r.calls, 1);
        ck_assert_int_eq(r.status, codes[i]);
        ck_assert_int_eq(r.attempts, 1);
        ck_assert_int_eq(s.served, 1);
        free(u);
        sb_fetch_destroy(&f);
        server_stop(&s);
    }
}
END_TEST

START_TEST(attempts_are_bounded)
{
    int script[] = {500};
    server_t s;
    server_start(&s, script, 1, 0);
    sb_fetch_t *f = client(4, 3, 1 << 20);
    result_t r = {0};
    char *u = url(&s);
    sb_fetch_start(f, sb_fetch_req_new(u), on_done, &r);
    run(f);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.status, 500); // the caller sees the last answer
    ck_assert_int_eq(r.attempts, 3);
    ck_assert_int_eq(s.served, 3);
    free(u);
    sb_fetch_destroy(&f);
    server_stop(&s);
}
END_TEST

START_TEST(refused_connection_is_status_zero_with_a_reason)
{
    int script[] = {200};
    server_t s;
    server_start(&s, script, 1, 0);
    char *u = url(&s);
    server_stop(&s); // nothing listens there any more
    sb_fetch_t *f = client(4, 2, 1 << 20);
    result_t r = {0};
    sb_fetch_start(f, sb_fetch_req_new(u), on_done, &r);
    run(f);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.attempts, 2); // a refused connect is transient
    ck_assert(r.error[0] != '\0');
    free(u);
    sb_fetch_destroy(&f);
}
END_TEST

START_TEST(oversized_answer_fails_without_retry)
{
    int script[] = {200};
    server_t s;
    server_start(&s, script, 1, 5000);
    sb_fetch_t *f = client(4, 4, 1000);
    result_t r = {0};
    char *u = url(&s);
    sb_fetch_start(f, sb_fetch_req_new(u), on_done, &r);
    run(f);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.attempts, 1);
    ck_assert_str_eq(r.error, "answer too large");
    free(u);
    sb_fetch_destroy(&f);
    server_stop(&s);
}
END_TEST

START_TEST(many_requests_with_a_small_cap_all_finish)
{
    int script[] = {200};
    server_t s;
    server_start(&s, script, 1, 20);
    sb_fetch_t *f = client(2, 2, 1 << 20);
    result_t r[20];
    memset(r, 0, sizeof r);
    char *u = url(&s);
    for (int i = 0; i < 20; i++)
        sb_fetch_start(f, sb_fetch_req_new(u), on_done, &r[i]);
    ck_assert_uint_eq(sb_fetch_pending(f), 20);
    run(f);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(r[i].calls, 1);
        ck_assert_int_eq(r[i].status, 200);
    }
    ck_assert_int_eq(s.served, 20);
    free(u);
    sb_fetch_destroy(&f);
    server_stop(&s);
}
END_TEST

START_TEST(form_post_sends_the_body)
{
    int script[] = {200};
    server_t s;
    server_start(&s, script, 1, 2);
    sb_fetch_t *f = client(1, 1, 1 << 20);
    result_t r = {0};
    char *u = url(&s);
    sb_fetch_req_t *req = sb_fetch_req_new(u);
    sb_fetch_req_form(req, "grant_type=refresh_token&refresh_token=abc");
    sb_fetch_req_label(req, "token");
    sb_fetch_start(f, req, on_done, &r);
    run(f);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strstr(s.last_request, "POST /gmail/v1/x ") != NULL);
    ck_assert(strstr(s.last_request, "\r\n\r\ngrant_type=refresh_token&refresh_token=abc") != NULL);
    free(u);
    sb_fetch_destroy(&f);
    server_stop(&s);
}
END_TEST

START_TEST(destroy_abandons_pending_requests_without_callbacks)
{
    sb_fetch_t *f = client(1, 1, 1 << 20);
    result_t r = {0};
    for (int i = 0; i < 3; i++)
        sb_fetch_start(f, sb_fetch_req_new("http://127.0.0.1:9/x"), on_done, &r);
    sb_fetch_destroy(&f); // no turn ran: all of them are still waiting
    ck_assert_ptr_null(f);
    ck_assert_int_eq(r.calls, 0);
}
END_TEST

static Suite *
sb_enricher_fetch_suite(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("enricher_fetch");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, transient_answers_are_retried_until_one_succeeds);
    tcase_add_test(tc, final_answers_are_not_retried);
    tcase_add_test(tc, attempts_are_bounded);
    tcase_add_test(tc, refused_connection_is_status_zero_with_a_reason);
    tcase_add_test(tc, oversized_answer_fails_without_retry);
    tcase_add_test(tc, many_requests_with_a_small_cap_all_finish);
    tcase_add_test(tc, form_post_sends_the_body);
    tcase_add_test(tc, destroy_abandons_pending_requests_without_callbacks);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_enricher_fetch_suite)
