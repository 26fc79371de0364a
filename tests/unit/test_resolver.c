/* test_resolver - sb_resolver connects a socket to every address of a name and follows
 * the addresses as they change. Real sockets on loopback (127.0.0.1 and 127.0.0.2 are
 * both local on Linux), a fake lookup for the replica changes, real getaddrinfo for
 * "localhost" and a name that cannot resolve. */
#include <arpa/inet.h>
#include <czmq.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include "sb_check.h"
#include "sb_resolver.h"
#include "sb_banned.h"

#define DEADLINE_MS 5000 // longest wait for the helper thread's next round

// The fake DNS: what "svc" resolves to, changed by the test thread, read by the actor.
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *fake_addrs[4];
static size_t fake_n;
static bool fake_fail;
static int fake_calls;

static void
fake_set(bool fail, const char *a, const char *b)
{
    pthread_mutex_lock(&fake_lock);
    fake_fail = fail;
    fake_n = 0;
    if (a)
        fake_addrs[fake_n++] = a;
    if (b)
        fake_addrs[fake_n++] = b;
    pthread_mutex_unlock(&fake_lock);
}

static int
fake_lookup(const char *host, struct in_addr *out, size_t max, sb_err_t *err)
{
    pthread_mutex_lock(&fake_lock);
    fake_calls++;
    int n = -1;
    if (fake_fail || strcmp(host, "svc") != 0) {
        sb_err_set(err, 0, "could not resolve \"%s\": fake failure", host);
    } else {
        n = 0;
        for (size_t i = 0; i < fake_n && (size_t)n < max; i++)
            inet_pton(AF_INET, fake_addrs[i], &out[n++]);
    }
    pthread_mutex_unlock(&fake_lock);
    return n;
}

static zsock_t *
pull_at(const char *ip, int port, int *bound_port)
{
    zsock_t *pull = zsock_new(ZMQ_PULL);
    ck_assert_ptr_nonnull(pull);
    zsock_set_rcvtimeo(pull, 2000);
    int rc = port ? zsock_bind(pull, "tcp://%s:%d", ip, port) : zsock_bind(pull, "tcp://%s:*", ip);
    ck_assert_msg(rc > 0, "bind %s:%d failed", ip, port);
    if (bound_port)
        *bound_port = rc;
    return pull;
}

static zsock_t *
push_new(void)
{
    zsock_t *push = zsock_new(ZMQ_PUSH);
    ck_assert_ptr_nonnull(push);
    zsock_set_sndtimeo(push, 2000);
    zsock_set_linger(push, 0);
    return push;
}

// Call refresh until peers == want (what a stage loop does every turn).
static void
refresh_until_peers(sb_resolver_t *r, size_t want)
{
    int64_t deadline = zclock_mono() + DEADLINE_MS;
    sb_err_t err = {0};
    while (sb_resolver_peers(r) != want && zclock_mono() < deadline) {
        sb_resolver_refresh(r, &err);
        zclock_sleep(5);
    }
    ck_assert_uint_eq(sb_resolver_peers(r), want);
}

// How many of n messages each PULL gets; the rest must not arrive anywhere.
static void
drain(zsock_t *a, zsock_t *b, int *got_a, int *got_b, int n)
{
    *got_a = *got_b = 0;
    zpoller_t *poller = zpoller_new(a, b, NULL);
    int64_t deadline = zclock_mono() + DEADLINE_MS;
    while (*got_a + *got_b < n && zclock_mono() < deadline) {
        zsock_t *which = zpoller_wait(poller, 100);
        if (which == NULL)
            continue;
        char *s = zstr_recv(which);
        ck_assert_str_eq(s, "event");
        zstr_free(&s);
        (*(which == a ? got_a : got_b))++;
    }
    zpoller_destroy(&poller);
    ck_assert_int_eq(*got_a + *got_b, n);
}

static void
send_n(zsock_t *push, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(zstr_send(push, "event"), 0);
}

START_TEST(literal_ipv4_is_connected_once)
{
    int port = 0;
    zsock_t *pull = pull_at("127.0.0.1", 0, &port);
    zsock_t *push = push_new();
    char endpoints[64];
    snprintf(endpoints, sizeof endpoints, ">tcp://127.0.0.1:%d", port);
    sb_err_t err = {0};
    sb_resolver_t *r = sb_resolver_new(push, endpoints, &err);
    ck_assert_msg(r != NULL, "new: %s", err.msg);
    ck_assert_uint_eq(sb_resolver_peers(r), 1);
    ck_assert_int_eq(sb_resolver_refresh(r, &err), 0);
    ck_assert_uint_eq(sb_resolver_peers(r), 1);
    send_n(push, 1);
    char *s = zstr_recv(pull);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "event");
    zstr_free(&s);
    sb_resolver_destroy(&r);
    sb_resolver_destroy(&r); // twice is fine
    ck_assert_ptr_null(r);
    zsock_destroy(&push);
    zsock_destroy(&pull);
}
END_TEST

START_TEST(localhost_is_resolved_and_delivers)
{
    int port = 0;
    zsock_t *pull = pull_at("127.0.0.1", 0, &port);
    zsock_t *push = push_new();
    char endpoints[64];
    snprintf(endpoints, sizeof endpoints, "tcp://localhost:%d", port); // no prefix: connect
    sb_err_t err = {0};
    sb_resolver_t *r = sb_resolver_new(push, endpoints, &err);
    ck_assert_msg(r != NULL, "new: %s", err.msg);
    ck_assert_uint_eq(sb_resolver_peers(r), 1); // resolved before new returned
    ck_assert_int_eq(sb_resolver_refresh(r, &err), 0);
    send_n(push, 1);
    char *s = zstr_recv(pull);
    ck_assert_ptr_nonnull(s);
    zstr_free(&s);
    sb_resolver_destroy(&r);
    zsock_destroy(&push);
    zsock_destroy(&pull);
}
END_TEST

START_TEST(unresolvable_name_is_reported_once_and_kept)
{
    zsock_t *push = push_new();
    sb_err_t err = {0};
    sb_resolver_t *r = sb_resolver_new(push, ">tcp://no-such-host.invalid:5557", &err);
    ck_assert_msg(r != NULL, "a name that does not resolve yet is not fatal: %s", err.msg);
    ck_assert_uint_eq(sb_resolver_peers(r), 0);
    ck_assert_int_eq(sb_resolver_refresh(r, &err), -1);
    ck_assert_msg(strstr(err.msg, "could not resolve \"no-such-host.invalid\"") != NULL, "%s",
                  err.msg);
    ck_assert_msg(strstr(err.msg, "retrying") != NULL, "%s", err.msg);
    sb_resolver_set_interval(r, 10);
    zclock_sleep(100); // several failed rounds
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(sb_resolver_refresh(r, &err), 0); // said once, not every round
    ck_assert_str_eq(err.msg, "");
    ck_assert_uint_eq(sb_resolver_peers(r), 0);
    sb_resolver_destroy(&r);
    zsock_destroy(&push);
}
END_TEST

START_TEST(replicas_are_followed_as_they_come_and_go)
{
    sb_resolver_set_lookup(fake_lookup);
    int port = 0;
    zsock_t *a = pull_at("127.0.0.1", 0, &port);
    zsock_t *b = pull_at("127.0.0.2", port, NULL);
    zsock_t *push = push_new();
    fake_set(false, "127.0.0.1", NULL);
    char endpoints[64];
    snprintf(endpoints, sizeof endpoints, ">tcp://svc:%d", port);
    sb_err_t err = {0};
    sb_resolver_t *r = sb_resolver_new(push, endpoints, &err);
    ck_assert_msg(r != NULL, "new: %s", err.msg);
    ck_assert_uint_eq(sb_resolver_peers(r), 1);
    sb_resolver_set_interval(r, 20);

    // Scale up: a second replica appears under the same name; PUSH feeds both.
    fake_set(false, "127.0.0.1", "127.0.0.2");
    refresh_until_peers(r, 2);
    int got_a, got_b;
    send_n(push, 10);
    drain(a, b, &got_a, &got_b, 10);
    ck_assert_int_eq(got_a, 5); // libzmq round-robins over the two pipes
    ck_assert_int_eq(got_b, 5);

    // Scale down: the first replica is gone; nothing more goes to its address.
    fake_set(false, "127.0.0.2", NULL);
    refresh_until_peers(r, 1);
    send_n(push, 4);
    drain(a, b, &got_a, &got_b, 4);
    ck_assert_int_eq(got_a, 0);
    ck_assert_int_eq(got_b, 4);

    // DNS fails: reported once, the known peer stays connected.
    fake_set(true, NULL, NULL);
    int64_t deadline = zclock_mono() + DEADLINE_MS;
    int rc = 0;
    while (rc == 0 && zclock_mono() < deadline) {
        rc = sb_resolver_refresh(r, &err);
        zclock_sleep(5);
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(err.msg, "fake failure") != NULL, "%s", err.msg);
    ck_assert_uint_eq(sb_resolver_peers(r), 1);

    // Retried later: once the name answers again, the socket follows it.
    fake_set(false, "127.0.0.1", NULL);
    deadline = zclock_mono() + DEADLINE_MS;
    while (zclock_mono() < deadline) {
        ck_assert_int_eq(sb_resolver_refresh(r, &err), 0);
        send_n(push, 1);
        drain(a, b, &got_a, &got_b, 1);
        if (got_a == 1)
            break;
    }
    ck_assert_int_eq(got_a, 1);
    ck_assert_uint_eq(sb_resolver_peers(r), 1);
    pthread_mutex_lock(&fake_lock);
    ck_assert_int_gt(fake_calls, 3);
    pthread_mutex_unlock(&fake_lock);

    sb_resolver_destroy(&r);
    sb_resolver_set_lookup(NULL);
    zsock_destroy(&push);
    zsock_destroy(&a);
    zsock_destroy(&b);
}
END_TEST

START_TEST(name_that_resolves_later_is_connected_later)
{
    sb_resolver_set_lookup(fake_lookup);
    int port = 0;
    zsock_t *a = pull_at("127.0.0.1", 0, &port);
    zsock_t *push = push_new();
    fake_set(true, NULL, NULL); // compose started us before the next stage
    char endpoints[64];
    snprintf(endpoints, sizeof endpoints, ">tcp://svc:%d", port);
    sb_err_t err = {0};
    sb_resolver_t *r = sb_resolver_new(push, endpoints, &err);
    ck_assert_msg(r != NULL, "new: %s", err.msg);
    ck_assert_uint_eq(sb_resolver_peers(r), 0);
    ck_assert_int_eq(sb_resolver_refresh(r, &err), -1);
    sb_resolver_set_interval(r, 20);
    fake_set(false, "127.0.0.1", NULL);
    refresh_until_peers(r, 1);
    send_n(push, 1);
    char *s = zstr_recv(a);
    ck_assert_ptr_nonnull(s);
    zstr_free(&s);
    sb_resolver_destroy(&r);
    sb_resolver_set_lookup(NULL);
    zsock_destroy(&push);
    zsock_destroy(&a);
}
END_TEST

START_TEST(bind_entries_are_bound_unchanged)
{
    zsock_t *pull = zsock_new(ZMQ_PULL);
    zsock_set_rcvtimeo(pull, 2000);
    sb_err_t err = {0};
    sb_resolver_t *r = sb_resolver_new(pull, "@tcp://127.0.0.1:*", &err);
    ck_assert_msg(r != NULL, "new: %s", err.msg);
    ck_assert_uint_eq(sb_resolver_peers(r), 0); // binds are not peers
    const char *bound = zsock_endpoint(pull);
    ck_assert_ptr_nonnull(bound);
    ck_assert_msg(strncmp(bound, "tcp://127.0.0.1:", 16) == 0, "%s", bound);
    zsock_t *push = push_new();
    ck_assert_int_eq(zsock_connect(push, "%s", bound), 0);
    send_n(push, 1);
    char *s = zstr_recv(pull);
    ck_assert_ptr_nonnull(s);
    zstr_free(&s);
    sb_resolver_destroy(&r);
    zsock_destroy(&push);
    zsock_destroy(&pull);
}
END_TEST

START_TEST(mixed_list_counts_every_peer)
{
    int p1 = 0, p2 = 0;
    zsock_t *a = pull_at("127.0.0.1", 0, &p1);
    zsock_t *b = pull_at("127.0.0.1", 0, &p2);
    zsock_t *push = push_new();
    char endpoints[160];
    snprintf(endpoints, sizeof endpoints,
             ">tcp://127.0.0.1:%d, tcp://localhost:%d,ipc:///tmp/sb-resolver-test-%d", p1, p2,
             (int)getpid());
    sb_err_t err = {0};
    sb_resolver_t *r = sb_resolver_new(push, endpoints, &err);
    ck_assert_msg(r != NULL, "new: %s", err.msg);
    ck_assert_uint_eq(sb_resolver_peers(r), 3);
    sb_resolver_destroy(&r);
    zsock_destroy(&push);
    zsock_destroy(&a);
    zsock_destroy(&b);
}
END_TEST

START_TEST(invalid_endpoints_are_refused)
{
    static const char *const bad[] = {
        "",                      // nothing
        ">tcp://svc",            // no port
        ">tcp://svc:",           // empty port
        ">tcp://svc:99999",      // port out of range
        ">tcp://svc:12ab",       // port not a number
        ">tcp://bad host:5557",  // not a host name
        ">tcp://a:1,,tcp://b:2", // empty entry
        "@tcp://256.1.1.1:1",    // a bind libzmq refuses
    };
    zsock_t *push = push_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sb_err_t err = {0};
        sb_resolver_t *r = sb_resolver_new(push, bad[i], &err);
        ck_assert_msg(r == NULL, "\"%s\" was accepted", bad[i]);
        ck_assert_msg(strncmp(err.msg, "invalid", 7) == 0 || strncmp(err.msg, "could not", 9) == 0,
                      "\"%s\": %s", bad[i], err.msg);
    }
    zsock_destroy(&push);
}
END_TEST

static Suite *
sb_resolver_suite(void)
{
    Suite *s = suite_create("sb_resolver");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, literal_ipv4_is_connected_once);
    tcase_add_test(tc, localhost_is_resolved_and_delivers);
    tcase_add_test(tc, unresolvable_name_is_reported_once_and_kept);
    tcase_add_test(tc, replicas_are_followed_as_they_come_and_go);
    tcase_add_test(tc, name_that_resolves_later_is_connected_later);
    tcase_add_test(tc, bind_entries_are_bound_unchanged);
    tcase_add_test(tc, mixed_list_counts_every_peer);
    tcase_add_test(tc, invalid_endpoints_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_resolver_suite)
