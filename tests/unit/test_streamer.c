/* test_streamer - sb-streamer without sockets: the hub's order, bound and lag report, a
 * close that wakes a waiting reader, and the SSE framing, token check, Last-Event-ID and
 * customer filter. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hub.h"
#include "sse.h"
#include "sb_check.h"
#include "sb_banned.h"

START_TEST(hub_delivers_in_order_from_the_cursor)
{
    sb_hub_t *hub = sb_hub_new(8);
    uint64_t next = sb_hub_head(hub);
    ck_assert_uint_eq(next, 1);
    sb_hub_event_t ev;
    ck_assert_int_eq(sb_hub_wait(hub, &next, 10, &ev), SB_HUB_TIMEOUT);
    ck_assert_uint_eq(sb_hub_publish(hub, "communications", "{\"id\":1}"), 1);
    ck_assert_uint_eq(sb_hub_publish(hub, "outbox_status", "{\"id\":2}"), 2);
    ck_assert_int_eq(sb_hub_wait(hub, &next, 10, &ev), SB_HUB_EVENT);
    ck_assert_uint_eq(ev.seq, 1);
    ck_assert_str_eq(ev.channel, "communications");
    ck_assert_str_eq(ev.data, "{\"id\":1}");
    sb_hub_event_release(&ev);
    ck_assert_int_eq(sb_hub_wait(hub, &next, 10, &ev), SB_HUB_EVENT);
    ck_assert_str_eq(ev.channel, "outbox_status");
    sb_hub_event_release(&ev);
    ck_assert_uint_eq(next, 3);
    ck_assert_uint_eq(sb_hub_head(hub), 3); // a new reader sees only what comes next
    sb_hub_destroy(&hub);
    ck_assert_ptr_null(hub);
}
END_TEST

START_TEST(hub_is_bounded_and_reports_a_lagging_reader)
{
    sb_hub_t *hub = sb_hub_new(4);
    uint64_t next = sb_hub_head(hub);
    char data[16];
    for (int i = 1; i <= 10; i++) {
        snprintf(data, sizeof data, "%d", i);
        sb_hub_publish(hub, "communications", data);
    }
    sb_hub_event_t ev;
    ck_assert_int_eq(sb_hub_wait(hub, &next, 10, &ev), SB_HUB_LAGGED);
    ck_assert_uint_eq(next, 7); // the oldest of the 4 kept
    for (int want = 7; want <= 10; want++) {
        ck_assert_int_eq(sb_hub_wait(hub, &next, 10, &ev), SB_HUB_EVENT);
        snprintf(data, sizeof data, "%d", want);
        ck_assert_str_eq(ev.data, data);
        sb_hub_event_release(&ev);
    }
    ck_assert_int_eq(sb_hub_wait(hub, &next, 10, &ev), SB_HUB_TIMEOUT);
    sb_hub_destroy(&hub);
}
END_TEST

static void *
waiter(void *arg)
{
    sb_hub_t *hub = arg;
    uint64_t next = sb_hub_head(hub);
    sb_hub_event_t ev;
    return (void *)(intptr_t)sb_hub_wait(hub, &next, 10000, &ev);
}

START_TEST(hub_close_wakes_a_waiting_reader)
{
    sb_hub_t *hub = sb_hub_new(4);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, waiter, hub), 0);
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sb_hub_close(hub);
    void *rc;
    pthread_join(t, &rc);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_eq((int)(intptr_t)rc, SB_HUB_CLOSED);
    ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 2); // at once, not after the 10 s timeout
    sb_hub_destroy(&hub);
}
END_TEST

START_TEST(sse_event_framing_splits_lines)
{
    size_t len;
    char *text = sb_sse_event("6a1f03c2", 42, "communications", "{\"id\":17}", &len);
    ck_assert_str_eq(text, "id: 6a1f03c2-42\nevent: communications\ndata: {\"id\":17}\n\n");
    ck_assert_uint_eq(len, strlen(text));
    free(text);
    text = sb_sse_event("e", 1, "resync", "a\nb\r\nc\rd", &len);
    ck_assert_str_eq(text, "id: e-1\nevent: resync\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
    free(text);
    text = sb_sse_event("e", 2, "x", "\r\r\r", &len); // the bound holds for CR-only data
    ck_assert_str_eq(text, "id: e-2\nevent: x\ndata: \ndata: \ndata: \ndata: \n\n");
    free(text);
}
END_TEST

START_TEST(sse_token_check)
{
    const char *token = "s3cret-Token";
    ck_assert(sb_sse_auth_ok("Bearer s3cret-Token", NULL, token));
    ck_assert(sb_sse_auth_ok("bearer  s3cret-Token", NULL, token));
    ck_assert(sb_sse_auth_ok(NULL, "s3cret-Token", token));
    ck_assert(sb_sse_auth_ok("Bearer wrong", "s3cret-Token", token));
    ck_assert(!sb_sse_auth_ok("Bearer s3cret-Toke", NULL, token));
    ck_assert(!sb_sse_auth_ok("Bearer s3cret-Token2", NULL, token));
    ck_assert(!sb_sse_auth_ok("Basic s3cret-Token", NULL, token));
    ck_assert(!sb_sse_auth_ok(NULL, NULL, token));
    ck_assert(!sb_sse_auth_ok("Bearer ", "", "")); // no configured token: nobody
    ck_assert(!sb_sse_auth_ok("Bearer x", "x", NULL));
}
END_TEST

START_TEST(sse_resume_and_filter)
{
    uint64_t seq = 0;
    ck_assert(sb_sse_resume("6a1f03c2-42", "6a1f03c2", &seq));
    ck_assert_uint_eq(seq, 42);
    ck_assert(!sb_sse_resume("00000000-42", "6a1f03c2", &seq)); // another boot
    ck_assert(!sb_sse_resume("6a1f03c2-", "6a1f03c2", &seq));
    ck_assert(!sb_sse_resume("6a1f03c2-4x", "6a1f03c2", &seq));
    ck_assert(!sb_sse_resume("6a1f03c2-99999999999999999999", "6a1f03c2", &seq));
    ck_assert(!sb_sse_resume(NULL, "6a1f03c2", &seq));
    ck_assert(sb_sse_matches("{\"id\":1,\"customer_id\":7}", 7));
    ck_assert(!sb_sse_matches("{\"id\":1,\"customer_id\":8}", 7));
    ck_assert(!sb_sse_matches("{\"id\":1,\"customer_id\":null}", 7));
    ck_assert(!sb_sse_matches("not json", 7));
    ck_assert(sb_sse_matches("not json", 0));
}
END_TEST

static Suite *
sb_streamer_suite(void)
{
    Suite *s = suite_create("streamer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, hub_delivers_in_order_from_the_cursor);
    tcase_add_test(tc, hub_is_bounded_and_reports_a_lagging_reader);
    tcase_add_test(tc, hub_close_wakes_a_waiting_reader);
    tcase_add_test(tc, sse_event_framing_splits_lines);
    tcase_add_test(tc, sse_token_check);
    tcase_add_test(tc, sse_resume_and_filter);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_streamer_suite)
