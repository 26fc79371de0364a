/* test_zmonitor - sb_zmonitor turns zmq_socket_monitor events into sb_zmq_events_total,
 * sb_zmq_peers and log lines. Real PUSH/PULL sockets over tcp on 127.0.0.1 (ephemeral
 * ports), raw TCP clients for the handshake failures, hand-made monitor messages for the
 * malformed ones. stderr goes to a temporary file so that the log lines can be read. */
#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "sb_check.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_zmonitor.h"
#include "sb_banned.h"

#define DEADLINE_MS 5000 // longest wait for libzmq's I/O thread to report an event

static char s_log_path[64];

// Every test: log at debug level into a file of its own (Check forks per test).
static void
setup(void)
{
    snprintf(s_log_path, sizeof s_log_path, "/tmp/sb_zmonitor_log_XXXXXX");
    int fd = mkstemp(s_log_path);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    sb_log_init("test", SB_LOG_DEBUG);
}

static void
teardown(void)
{
    unlink(s_log_path);
}

static char *
log_text(void)
{
    FILE *f = fopen(s_log_path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static uint64_t
events(sb_metrics_t *m, const char *socket, const char *event)
{
    char labels[128];
    snprintf(labels, sizeof labels, "socket=\"%s\",event=\"%s\"", socket, event);
    return sb_counter_value(sb_metrics_counter(m, "sb_zmq_events_total", "", labels));
}

static double
peers_gauge(sb_metrics_t *m, const char *socket)
{
    char labels[64];
    snprintf(labels, sizeof labels, "socket=\"%s\"", socket);
    return sb_gauge_value(sb_metrics_gauge(m, "sb_zmq_peers", "", labels));
}

// Drain both monitors (b may be NULL), as a stage loop does every turn, until
// events(socket, event) reaches want or the deadline passes. Waits on the PAIRs.
static void
drain_until(sb_metrics_t *m, sb_zmonitor_t *a, sb_zmonitor_t *b, const char *socket,
            const char *event, uint64_t want)
{
    zpoller_t *poller = zpoller_new(sb_zmonitor_sock(a), NULL);
    if (b)
        zpoller_add(poller, sb_zmonitor_sock(b));
    int64_t deadline = zclock_mono() + DEADLINE_MS;
    while (events(m, socket, event) < want && zclock_mono() < deadline) {
        zpoller_wait(poller, 50);
        sb_zmonitor_drain(a);
        if (b)
            sb_zmonitor_drain(b);
    }
    zpoller_destroy(&poller);
    ck_assert_msg(events(m, socket, event) >= want, "%s %s: %llu, want %llu within %d ms", socket,
                  event, (unsigned long long)events(m, socket, event), (unsigned long long)want,
                  DEADLINE_MS);
}

static zsock_t *
pull_bound(int *port)
{
    zsock_t *pull = zsock_new(ZMQ_PULL);
    ck_assert_ptr_nonnull(pull);
    zsock_set_linger(pull, 0);
    zsock_set_rcvtimeo(pull, DEADLINE_MS);
    *port = zsock_bind(pull, "tcp://127.0.0.1:*");
    ck_assert_int_gt(*port, 0);
    return pull;
}

static zsock_t *
push_new(void)
{
    zsock_t *push = zsock_new(ZMQ_PUSH);
    ck_assert_ptr_nonnull(push);
    zsock_set_linger(push, 0);
    zsock_set_sndtimeo(push, DEADLINE_MS);
    return push;
}

START_TEST(connect_accept_and_disconnect_move_counters_and_peers)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_err_t err = {0};
    int port;
    zsock_t *pull = pull_bound(&port);
    sb_zmonitor_t *pull_mon = sb_zmonitor_new(pull, "pull", m, &err);
    ck_assert_msg(pull_mon != NULL, "pull monitor: %s", err.msg);
    zsock_t *push = push_new();
    sb_zmonitor_t *push_mon = sb_zmonitor_new(push, "push", m, &err);
    ck_assert_msg(push_mon != NULL, "push monitor: %s", err.msg);
    ck_assert_double_eq(peers_gauge(m, "push"), 0);

    ck_assert_int_eq(zsock_connect(push, "tcp://127.0.0.1:%d", port), 0);
    drain_until(m, push_mon, pull_mon, "push", "connected", 1);
    drain_until(m, push_mon, pull_mon, "pull", "accepted", 1);
    drain_until(m, push_mon, pull_mon, "pull", "handshake_succeeded", 1);
    ck_assert_uint_eq(sb_zmonitor_peers(push_mon), 1);
    ck_assert_uint_eq(sb_zmonitor_peers(pull_mon), 1);
    ck_assert_double_eq(peers_gauge(m, "push"), 1);
    ck_assert_double_eq(peers_gauge(m, "pull"), 1);
    ck_assert_uint_eq(events(m, "pull", "disconnected"), 0);
    ck_assert_int_eq(zstr_send(push, "hello"), 0); // the link really carries messages
    char *got = zstr_recv(pull);
    ck_assert_str_eq(got ? got : "(timeout)", "hello");
    free(got);

    // The pushing side goes away: the pulling side sees its peer leave.
    sb_zmonitor_destroy(&push_mon); // before its socket, as the stages do
    ck_assert_ptr_null(push_mon);
    zsock_destroy(&push);
    drain_until(m, pull_mon, NULL, "pull", "disconnected", 1);
    ck_assert_uint_eq(sb_zmonitor_peers(pull_mon), 0);
    ck_assert_double_eq(peers_gauge(m, "pull"), 0);

    char *text = sb_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(
        strstr(text, "sb_zmq_events_total{socket=\"pull\",event=\"accepted\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "sb_zmq_peers{socket=\"pull\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(text, "sb_zmq_peers{socket=\"push\"} 1\n")); // last value kept
    // One HELP and TYPE per family, whatever the number of sockets and events.
    const char *help = strstr(text, "# HELP sb_zmq_events_total ");
    ck_assert_ptr_nonnull(help);
    ck_assert_ptr_null(strstr(help + 1, "# HELP sb_zmq_events_total "));
    help = strstr(text, "# TYPE sb_zmq_peers gauge\n");
    ck_assert_ptr_nonnull(help);
    ck_assert_ptr_null(strstr(help + 1, "# TYPE sb_zmq_peers "));
    free(text);

    const char *log = log_text();
    char want[128];
    snprintf(want, sizeof want, "zmq push: connected to tcp://127.0.0.1:%d (1 up)", port);
    ck_assert_msg(strstr(log, want) != NULL, "no \"%s\" in:\n%s", want, log);
    ck_assert_msg(strstr(log, "\"level\":\"info\"") && strstr(log, "zmq pull: accepted a peer on"),
                  "no accept line in:\n%s", log);
    ck_assert_msg(strstr(log, "zmq pull: peer disconnected from"), "no disconnect in:\n%s", log);
    sb_zmonitor_destroy(&pull_mon);
    zsock_destroy(&pull);
    sb_metrics_destroy(&m);
}
END_TEST

START_TEST(peer_going_away_is_seen_by_the_connecting_side)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_err_t err = {0};
    int port;
    zsock_t *pull = pull_bound(&port);
    zsock_t *push = push_new();
    zsock_set_reconnect_ivl(push, 50);
    sb_zmonitor_t *mon = sb_zmonitor_new(push, "push", m, &err);
    ck_assert_msg(mon != NULL, "%s", err.msg);
    ck_assert_int_eq(zsock_connect(push, "tcp://127.0.0.1:%d", port), 0);
    drain_until(m, mon, NULL, "push", "connected", 1);
    zsock_destroy(&pull); // the next stage stops
    drain_until(m, mon, NULL, "push", "disconnected", 1);
    ck_assert_uint_eq(sb_zmonitor_peers(mon), 0);
    // Nobody listens there now: libzmq retries, which is counted (and logged at debug).
    drain_until(m, mon, NULL, "push", "connect_retried", 1);
    ck_assert_uint_eq(events(m, "push", "connected"), 1);
    const char *log = log_text();
    ck_assert_msg(strstr(log, "\"level\":\"debug\"") && strstr(log, "zmq push: no peer at"),
                  "retry not logged at debug:\n%s", log);
    sb_zmonitor_destroy(&mon);
    zsock_destroy(&push);
    sb_metrics_destroy(&m);
}
END_TEST

static int
tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

START_TEST(handshake_failures_are_counted_and_warned)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_err_t err = {0};
    int port;
    zsock_t *pull = pull_bound(&port);
    sb_zmonitor_t *mon = sb_zmonitor_new(pull, "pull", m, &err);
    ck_assert_msg(mon != NULL, "%s", err.msg);

    // A ZMTP 3.0 greeting that asks for CURVE where the socket speaks NULL.
    unsigned char greeting[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0};
    memcpy(greeting + 12, "CURVE", 5);
    int fd = tcp_connect(port);
    ck_assert_int_eq(write(fd, greeting, sizeof greeting), (ssize_t)sizeof greeting);
    drain_until(m, mon, NULL, "pull", "handshake_failed", 1);
    close(fd);
    // A client that connects and goes away without a word (a port probe).
    fd = tcp_connect(port);
    close(fd);
    drain_until(m, mon, NULL, "pull", "handshake_failed", 2);
    drain_until(m, mon, NULL, "pull", "disconnected", 2);
    ck_assert_uint_eq(events(m, "pull", "accepted"), 2);
    ck_assert_uint_eq(events(m, "pull", "handshake_succeeded"), 0);
    ck_assert_uint_eq(sb_zmonitor_peers(mon), 0);
    const char *log = log_text();
    ck_assert_msg(strstr(log, "\"level\":\"warn\"") && strstr(log, "zmq pull: handshake failed on"),
                  "no warning in:\n%s", log);
    ck_assert_msg(strstr(log, "ZMTP protocol error"), "protocol error not named:\n%s", log);
    sb_zmonitor_destroy(&mon);
    zsock_destroy(&pull);
    sb_metrics_destroy(&m);
}
END_TEST

static zmsg_t *
event_msg(uint16_t event, uint32_t value, const char *endpoint)
{
    unsigned char head[6];
    memcpy(head, &event, 2);
    memcpy(head + 2, &value, 4);
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, head, sizeof head);
    zmsg_addstr(msg, endpoint);
    return msg;
}

static uint64_t
total_events(sb_metrics_t *m, const char *socket)
{
    static const char *const names[] = {"connected",      "accepted",         "disconnected",
                                        "closed",         "handshake_failed", "handshake_succeeded",
                                        "connect_retried"};
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        n += events(m, socket, names[i]);
    return n;
}

START_TEST(malformed_monitor_messages_are_skipped)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_err_t err = {0};
    zsock_t *push = push_new();
    sb_zmonitor_t *mon = sb_zmonitor_new(push, "push", m, &err);
    ck_assert_msg(mon != NULL, "%s", err.msg);

    zmsg_t *msg = zmsg_new(); // no frames at all
    ck_assert_int_eq(sb_zmonitor_take(mon, msg), -1);
    zmsg_destroy(&msg);
    msg = zmsg_new(); // a 5-byte head
    zmsg_addmem(msg, "\x01\x00\x00\x00\x00", 5);
    zmsg_addstr(msg, "tcp://127.0.0.1:1");
    ck_assert_int_eq(sb_zmonitor_take(mon, msg), -1);
    zmsg_destroy(&msg);
    msg = event_msg(ZMQ_EVENT_CONNECTED, 7, "tcp://127.0.0.1:1"); // a third frame
    zmsg_addstr(msg, "extra");
    ck_assert_int_eq(sb_zmonitor_take(mon, msg), -1);
    zmsg_destroy(&msg);
    msg = event_msg(ZMQ_EVENT_CONNECTED, 7, "tcp://127.0.0.1:1"); // the endpoint missing
    zframe_t *last = zmsg_last(msg);
    zmsg_remove(msg, last);
    zframe_destroy(&last);
    ck_assert_int_eq(sb_zmonitor_take(mon, msg), -1);
    zmsg_destroy(&msg);
    ck_assert_uint_eq(total_events(m, "push"), 0);

    // Well formed but not asked for: read, not counted.
    msg = event_msg(ZMQ_EVENT_LISTENING, 9, "tcp://127.0.0.1:1");
    ck_assert_int_eq(sb_zmonitor_take(mon, msg), 0);
    zmsg_destroy(&msg);
    // A disconnect of a connection made before the monitor: the gauge stays at 0.
    msg = event_msg(ZMQ_EVENT_DISCONNECTED, 9, "tcp://127.0.0.1:1");
    ck_assert_int_eq(sb_zmonitor_take(mon, msg), 0);
    zmsg_destroy(&msg);
    ck_assert_uint_eq(total_events(m, "push"), 1);
    ck_assert_uint_eq(sb_zmonitor_peers(mon), 0);
    ck_assert_double_eq(peers_gauge(m, "push"), 0);
    // An endpoint longer than a log line keeps is cut, not overrun.
    char endpoint[1000];
    memset(endpoint, 'a', sizeof endpoint - 1);
    endpoint[sizeof endpoint - 1] = '\0';
    msg = event_msg(ZMQ_EVENT_CONNECTED, 0, endpoint);
    ck_assert_int_eq(sb_zmonitor_take(mon, msg), 0);
    zmsg_destroy(&msg);
    ck_assert_uint_eq(sb_zmonitor_peers(mon), 1);
    ck_assert_ptr_nonnull(strstr(log_text(), "malformed monitor message"));
    sb_zmonitor_destroy(&mon);
    zsock_destroy(&push);
    sb_metrics_destroy(&m);
}
END_TEST

START_TEST(log_lines_are_limited_per_window)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_err_t err = {0};
    zsock_t *push = push_new();
    sb_zmonitor_t *mon = sb_zmonitor_new(push, "push", m, &err);
    ck_assert_msg(mon != NULL, "%s", err.msg);
    for (int i = 0; i < 3 * SB_ZMONITOR_LOG_BURST; i++) {
        zmsg_t *msg = event_msg(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, ECONNRESET, "tcp://x:1");
        sb_zmonitor_take(mon, msg);
        zmsg_destroy(&msg);
    }
    ck_assert_uint_eq(events(m, "push", "handshake_failed"), 3 * SB_ZMONITOR_LOG_BURST);
    size_t lines = 0;
    for (const char *p = log_text(); (p = strstr(p, "handshake failed on")) != NULL; p++)
        lines++;
    ck_assert_uint_eq(lines, SB_ZMONITOR_LOG_BURST);
    sb_zmonitor_destroy(&mon);
    zsock_destroy(&push);
    sb_metrics_destroy(&m);
}
END_TEST

START_TEST(invalid_socket_name_is_refused)
{
    sb_metrics_t *m = sb_metrics_new();
    sb_err_t err = {0};
    zsock_t *push = push_new();
    ck_assert_ptr_null(sb_zmonitor_new(push, "Push\"}", m, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "invalid socket name"));
    ck_assert_ptr_null(sb_zmonitor_new(push, "", m, &err));
    sb_zmonitor_t *none = NULL;
    sb_zmonitor_destroy(&none); // safe on NULL
    // Two monitors at once on two sockets get distinct inproc addresses.
    zsock_t *other = push_new();
    sb_zmonitor_t *a = sb_zmonitor_new(push, "a", m, &err);
    sb_zmonitor_t *b = sb_zmonitor_new(other, "b", m, &err);
    ck_assert_msg(a != NULL && b != NULL, "%s", err.msg);
    sb_zmonitor_destroy(&b);
    sb_zmonitor_destroy(&a);
    zsock_destroy(&other);
    zsock_destroy(&push);
    sb_metrics_destroy(&m);
}
END_TEST

static Suite *
sb_zmonitor_suite(void)
{
    Suite *s = suite_create("sb_zmonitor");
    TCase *tc = tcase_create("zmonitor");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, connect_accept_and_disconnect_move_counters_and_peers);
    tcase_add_test(tc, peer_going_away_is_seen_by_the_connecting_side);
    tcase_add_test(tc, handshake_failures_are_counted_and_warned);
    tcase_add_test(tc, malformed_monitor_messages_are_skipped);
    tcase_add_test(tc, log_lines_are_limited_per_window);
    tcase_add_test(tc, invalid_socket_name_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_zmonitor_suite)
