/* Envelope round trips (spool form and ZeroMQ form), redaction, event ids, acks. */
#include <czmq.h>
#include <string.h>
#include "sb_check.h"
#include "sb_envelope.h"

static sb_envelope_t *
s_sample(void)
{
    sb_envelope_t *env = sb_envelope_new();
    env->event_id = strdup("in-1:0123456789abcdef:42");
    env->source = strdup("ringcentral_sms");
    env->received_at_ms = 1795532412418;
    free(env->headers);
    env->headers = strdup("{\":query\":\"a=1&token=s3cret&b=2\",\"authorization\":\"Bearer x.y.z\","
                          "\"content-type\":\"application/json\",\"verification-token\":\"vt-1\","
                          "\"x-ringcentral-signature\":\"sha256=00\"}");
    free(env->body);
    env->body = malloc(5);
    memcpy(env->body, "a\0b{", 5); // NUL inside: bodies are bytes
    env->body_len = 4;
    return env;
}

static void
s_assert_same(const sb_envelope_t *a, const sb_envelope_t *b)
{
    ck_assert_str_eq(a->event_id, b->event_id);
    ck_assert_str_eq(a->source, b->source);
    ck_assert_int_eq(a->received_at_ms, b->received_at_ms);
    ck_assert_str_eq(a->headers, b->headers);
    ck_assert_uint_eq(a->body_len, b->body_len);
    ck_assert_mem_eq(a->body, b->body, a->body_len);
    ck_assert(a->verdict == NULL ? b->verdict == NULL : strcmp(a->verdict, b->verdict) == 0);
    ck_assert(a->reason == NULL ? b->reason == NULL : strcmp(a->reason, b->reason) == 0);
    ck_assert(a->extra == NULL ? b->extra == NULL : strcmp(a->extra, b->extra) == 0);
}

START_TEST(spool_form_round_trips)
{
    sb_envelope_t *env = s_sample();
    sb_envelope_set(&env->verdict, "rejected");
    sb_envelope_set(&env->reason, "bad_verification_token");
    size_t len;
    void *bytes = sb_envelope_encode(env, &len);
    sb_err_t err = {0};
    sb_envelope_t *back = sb_envelope_decode(bytes, len, &err);
    ck_assert_msg(back != NULL, "decode: %s", err.msg);
    s_assert_same(env, back);
    // Every truncation is detected, none crashes.
    for (size_t cut = 0; cut < len; cut++) {
        sb_envelope_t *bad = sb_envelope_decode(bytes, cut, &err);
        ck_assert_msg(bad == NULL, "truncated at %zu decoded", cut);
    }
    free(bytes);
    sb_envelope_destroy(&back);
    sb_envelope_destroy(&env);
    ck_assert_ptr_null(env);
    sb_envelope_destroy(&env); // twice is safe
}
END_TEST

START_TEST(zeromq_form_round_trips)
{
    zsock_t *pull = zsock_new_pull("@inproc://envelope-test");
    zsock_t *push = zsock_new_push(">inproc://envelope-test");
    sb_envelope_t *env = s_sample();
    sb_envelope_set(&env->extra, "{\"email\":1}");
    sb_err_t err = {0};
    ck_assert_int_eq(sb_envelope_send(env, push, 0, &err), 0);
    sb_envelope_t *back = sb_envelope_recv(pull, &err);
    ck_assert_msg(back != NULL, "recv: %s", err.msg);
    s_assert_same(env, back);
    // A message with the wrong frame count is rejected and consumed.
    zstr_sendm(push, "SB1");
    zstr_send(push, "only two frames");
    ck_assert_ptr_null(sb_envelope_recv(pull, &err));
    ck_assert(strstr(err.msg, "frames") != NULL);
    // A wrong version is rejected.
    env->event_id[0] = 'x';
    zmsg_t *msg = zmsg_new();
    for (int i = 0; i < 9; i++)
        zmsg_addstr(msg, i == 0 ? "SB9" : "x");
    zmsg_send(&msg, push);
    ck_assert_ptr_null(sb_envelope_recv(pull, &err));
    ck_assert(strstr(err.msg, "version") != NULL);
    sb_envelope_destroy(&back);
    sb_envelope_destroy(&env);
    zsock_destroy(&push);
    zsock_destroy(&pull);
}
END_TEST

START_TEST(redact_removes_every_secret)
{
    sb_envelope_t *env = s_sample();
    sb_envelope_redact(env);
    ck_assert_ptr_null(strstr(env->headers, "s3cret"));
    ck_assert_ptr_null(strstr(env->headers, "vt-1"));
    ck_assert_ptr_null(strstr(env->headers, "x.y.z"));
    ck_assert_ptr_null(strstr(env->headers, "sha256=00"));
    ck_assert_ptr_nonnull(strstr(env->headers, "a=1&token=[redacted]&b=2"));
    ck_assert_ptr_nonnull(strstr(env->headers, "application/json"));
    // Unreadable headers are dropped rather than forwarded.
    sb_envelope_set(&env->headers, "{not json vt-1");
    sb_envelope_redact(env);
    ck_assert_str_eq(env->headers, "{}");
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(event_ids_parse)
{
    char *id = sb_event_id_format("host-1", "abcdef0123456789", 18446744073709551615ULL);
    char ingress[SB_INGRESS_ID_MAX], epoch[SB_INGRESS_ID_MAX];
    uint64_t seq = 0;
    ck_assert_int_eq(sb_event_id_parse(id, ingress, epoch, &seq), 0);
    ck_assert_str_eq(ingress, "host-1");
    ck_assert_str_eq(epoch, "abcdef0123456789");
    ck_assert(seq == 18446744073709551615ULL);
    free(id);
    const char *bad[] = {"", "a", "a:b", "a:b:", "a:b:x", ":b:1", "a::1", "a:b:1x", "a:b:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(sb_event_id_parse(bad[i], ingress, epoch, &seq) != 0, "%s parsed", bad[i]);
    ck_assert(sb_ingress_id_valid("web-1.example_2"));
    ck_assert(!sb_ingress_id_valid("a:b"));
    ck_assert(!sb_ingress_id_valid(""));
}
END_TEST

START_TEST(acks_reach_only_their_epoch)
{
    zsock_t *sub = zsock_new_sub("@inproc://ack-test", NULL);
    char *topic = sb_ack_topic("epochA");
    zsock_set_subscribe(sub, topic);
    zsock_set_subscribe(sub, SB_HEARTBEAT_TOPIC);
    free(topic);
    zsock_t *pub = zsock_new_pub(">inproc://ack-test");
    // A PUB socket learns subscriptions lazily, when it is next used: heartbeat until
    // one arrives (the stages heartbeat every second for the same reason).
    sb_err_t err = {0};
    zsock_set_rcvtimeo(sub, 50);
    sb_backmsg_t *first = NULL;
    for (int i = 0; i < 100 && first == NULL; i++) {
        ck_assert_int_eq(sb_heartbeat_send(pub, "verifier", "v:1", "{}", &err), 0);
        first = sb_backmsg_recv(sub, &err);
    }
    ck_assert_ptr_nonnull(first);
    sb_backmsg_destroy(&first);
    while ((first = sb_backmsg_recv(sub, &err)) != NULL) // drain the extra heartbeats
        sb_backmsg_destroy(&first);
    zsock_set_rcvtimeo(sub, -1);
    const char *ids[] = {"i:epochA:1", "i:epochB:2", "garbage", "j:epochA:3"};
    ck_assert_int_eq(sb_ack_send(pub, ids, 4, &err), 0);
    ck_assert_int_eq(sb_heartbeat_send(pub, "writer", "h:1", "{\"db_ok\":true}", &err), 0);
    sb_backmsg_t *msg = sb_backmsg_recv(sub, &err);
    ck_assert_ptr_nonnull(msg);
    ck_assert(msg->is_ack);
    ck_assert_uint_eq(msg->n_event_ids, 2);
    ck_assert_str_eq(msg->event_ids[0], "i:epochA:1");
    ck_assert_str_eq(msg->event_ids[1], "j:epochA:3");
    sb_backmsg_destroy(&msg);
    msg = sb_backmsg_recv(sub, &err); // epochB's ack was filtered out: the heartbeat is next
    ck_assert_ptr_nonnull(msg);
    ck_assert(!msg->is_ack);
    ck_assert_str_eq(msg->stage, "writer");
    ck_assert_str_eq(msg->instance, "h:1");
    ck_assert_str_eq(msg->status_json, "{\"db_ok\":true}");
    sb_backmsg_destroy(&msg);
    zsock_destroy(&pub);
    zsock_destroy(&sub);
}
END_TEST

static Suite *
sb_envelope_suite(void)
{
    Suite *s = suite_create("sb_envelope");
    TCase *tc = tcase_create("envelope");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, spool_form_round_trips);
    tcase_add_test(tc, zeromq_form_round_trips);
    tcase_add_test(tc, redact_removes_every_secret);
    tcase_add_test(tc, event_ids_parse);
    tcase_add_test(tc, acks_reach_only_their_epoch);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_envelope_suite)
