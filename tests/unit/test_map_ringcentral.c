/* test_map_ringcentral - what the writer stores for RingCentral SMS payloads, and for the
 * verifier's verdicts, without a database (writer/map_ringcentral.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sb_check.h"
#include "test_util.h"
#include "sb_envelope.h"
#include "sb_mem.h"
#include "map_ringcentral.h"
#include "sb_banned.h"

#define RC_DIR SB_FIXTURES_DIR "/ringcentral/"

// An accepted ringcentral_sms envelope around body.
static sb_envelope_t *
sms_event(const char *body, size_t len)
{
    sb_envelope_t *env = sb_envelope_new();
    sb_envelope_set(&env->event_id, "ing-1:abcd:1");
    sb_envelope_set(&env->source, "ringcentral_sms");
    sb_envelope_set(&env->verdict, "accepted");
    env->received_at_ms = 1795532412424;
    free(env->body);
    env->body = sb_xmemdup(body, len);
    env->body_len = len;
    return env;
}

static void
map_text(const char *body, sb_map_t *map)
{
    sb_envelope_t *env = sms_event(body, strlen(body));
    sb_map_event(env, "1", map);
    sb_envelope_destroy(&env);
}

static void
assert_outcome(const sb_map_t *map, sb_map_kind_t kind, const char *reason)
{
    ck_assert_int_eq(map->kind, kind);
    ck_assert_ptr_nonnull(map->reason);
    ck_assert_str_eq(map->reason, reason);
    ck_assert_ptr_null(map->comm.external_id);
}

// A minimal instant-SMS notification; fmt gets the body's extra members.
static char *
instant_sms(const char *members)
{
    return sb_xasprintf("{\"uuid\":\"1\",\"event\":\"/restapi/v1.0/account/1/extension/2/"
                        "message-store/instant?type=SMS\",\"body\":{%s}}",
                        members);
}

START_TEST(inbound_fixture_maps_to_a_communication)
{
    size_t len;
    char *body = sb_test_read_file(RC_DIR "sms-inbound.json", &len);
    sb_envelope_t *env = sms_event(body, len);
    sb_map_t map;
    sb_map_event(env, "1", &map);
    ck_assert_int_eq(map.kind, SB_MAP_COMMUNICATION);
    ck_assert_ptr_null(map.reason);
    const sb_comm_t *c = &map.comm;
    ck_assert_str_eq(c->channel, "sms");
    ck_assert_str_eq(c->provider, "ringcentral");
    ck_assert_str_eq(c->direction, "inbound");
    ck_assert_str_eq(c->external_id, "3062991514017");
    ck_assert_str_eq(c->thread_id, "7876416245344257449");
    ck_assert_str_eq(c->from_address, "+14155550134");
    ck_assert_str_eq(c->to_address, "+16505550100");
    ck_assert_str_eq(c->body,
                     "Hi, this is Maria Lopez. Is order #48213 ready for pickup today? Thanks!");
    ck_assert_ptr_null(c->subject);
    ck_assert_str_eq(c->status, "Received");
    ck_assert_str_eq(c->occurred_at, "2026-11-24T15:00:12.418Z");
    ck_assert_str_eq(c->match_phone, "+14155550134"); // inbound: the sender
    ck_assert_ptr_null(c->match_email);
    sb_map_release(&map);
    ck_assert_ptr_null(map.comm.external_id); // release zeroes
    sb_map_release(&map);                     // and is safe twice
    sb_envelope_destroy(&env);
    free(body);
}
END_TEST

START_TEST(outbound_matches_the_recipient_and_normalises_numbers)
{
    char *text = instant_sms(
        "\"id\":\"3062991514023\",\"type\":\"SMS\",\"direction\":\"Outbound\","
        "\"from\":{\"phoneNumber\":\"+16505550100\",\"name\":\"Front Desk\"},"
        "\"to\":[{\"phoneNumber\":\"(415) 555-0134\"},{\"phoneNumber\":\"+13125550142\"}],"
        "\"subject\":\"Your order is ready\",\"messageStatus\":\"Queued\","
        "\"creationTime\":\"2026-11-24T15:04:51.000Z\",\"conversationId\":\"42\"");
    sb_map_t map;
    map_text(text, &map);
    ck_assert_int_eq(map.kind, SB_MAP_COMMUNICATION);
    ck_assert_str_eq(map.comm.direction, "outbound");
    ck_assert_str_eq(map.comm.from_address, "+16505550100");
    ck_assert_str_eq(map.comm.to_address, "+14155550134"); // the first "to" entry, E.164
    ck_assert_str_eq(map.comm.match_phone, "+14155550134");
    ck_assert_str_eq(map.comm.status, "Queued");
    ck_assert_str_eq(map.comm.thread_id, "42");
    sb_map_release(&map);
    free(text);
}
END_TEST

START_TEST(conversation_id_variant_and_integer_ids_stay_exact)
{
    // 2^53 + 1 is the first integer a double cannot hold; the int64 maximum is the last
    // one jansson reads.
    char *text = instant_sms("\"id\":9007199254740993,\"direction\":\"Inbound\","
                             "\"from\":{\"phoneNumber\":\"+14155550134\"},"
                             "\"conversationId\":9223372036854775807,\"subject\":\"hi\"");
    sb_map_t map;
    map_text(text, &map);
    ck_assert_int_eq(map.kind, SB_MAP_COMMUNICATION);
    ck_assert_str_eq(map.comm.external_id, "9007199254740993");
    ck_assert_str_eq(map.comm.thread_id, "9223372036854775807");
    ck_assert_ptr_null(map.comm.to_address);  // no "to": no recipient, nothing breaks
    ck_assert_ptr_null(map.comm.occurred_at); // no creationTime: the writer uses received_at
    sb_map_release(&map);
    free(text);
}
END_TEST

START_TEST(real_number_as_id_is_rejected)
{
    char *text = instant_sms("\"id\":3062991514017.0,\"direction\":\"Inbound\","
                             "\"from\":{\"phoneNumber\":\"+14155550134\"}");
    sb_map_t map;
    map_text(text, &map);
    assert_outcome(&map, SB_MAP_REJECTED, "unrecognized_payload");
    sb_map_release(&map);
    free(text);
}
END_TEST

START_TEST(sender_that_is_not_a_phone_number_is_kept_raw_and_matches_nobody)
{
    char *text = instant_sms("\"id\":\"7\",\"direction\":\"Inbound\","
                             "\"from\":{\"phoneNumber\":\"72345\"},"
                             "\"to\":[{\"phoneNumber\":\"+16505550100\"}],"
                             "\"creationTime\":\"yesterday\"");
    sb_map_t map;
    map_text(text, &map);
    ck_assert_int_eq(map.kind, SB_MAP_COMMUNICATION);
    ck_assert_str_eq(map.comm.from_address, "72345"); // a short code
    ck_assert_ptr_null(map.comm.match_phone);
    ck_assert_ptr_null(map.comm.body);
    ck_assert_ptr_null(map.comm.occurred_at); // not a timestamp PostgreSQL would take
    sb_map_release(&map);
    free(text);
}
END_TEST

START_TEST(creation_times_postgresql_refuses_fall_back_to_receive_time)
{
    static const struct {
        const char *time;
        int kept;
    } cases[] = {
        {"2026-11-24T15:00:12.418Z", 1},
        {"2026-11-24T15:00:12Z", 1},
        {"2026-11-24T15:00:12+01:00", 1},
        {"2026-11-24T15:00:12.5-0800", 1},
        {"2024-02-29T00:00:00Z", 1},
        {"2026-11-24T15:00:12", 1},
        {"2026-02-29T00:00:00Z", 0},
        {"2026-02-30T00:00:00Z", 0},
        {"2026-13-01T00:00:00Z", 0},
        {"2026-11-24T24:00:00Z", 0},
        {"2026-11-24T15:00:12.Z", 0},
        {"2026-11-24T15:00:12Zjunk", 0},
        {"2026-11-24", 0},
        {"1795532412418", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *members = sb_xasprintf("\"id\":\"1\",\"direction\":\"Inbound\","
                                     "\"from\":{\"phoneNumber\":\"+14155550134\"},"
                                     "\"creationTime\":\"%s\"",
                                     cases[i].time);
        char *text = instant_sms(members);
        sb_map_t map;
        map_text(text, &map);
        ck_assert_int_eq(map.kind, SB_MAP_COMMUNICATION);
        if (cases[i].kept)
            ck_assert_msg(map.comm.occurred_at && strcmp(map.comm.occurred_at, cases[i].time) == 0,
                          "%s should be kept", cases[i].time);
        else
            ck_assert_msg(map.comm.occurred_at == NULL, "%s should be dropped", cases[i].time);
        sb_map_release(&map);
        free(text);
        free(members);
    }
}
END_TEST

START_TEST(message_store_change_is_ignored)
{
    size_t len;
    char *body = sb_test_read_file(RC_DIR "sms-outbound-message-store.json", &len);
    sb_envelope_t *env = sms_event(body, len);
    sb_map_t map;
    sb_map_event(env, "1", &map);
    assert_outcome(&map, SB_MAP_IGNORED, "message_store_change_needs_fetch");
    sb_map_release(&map);
    sb_envelope_destroy(&env);
    free(body);
}
END_TEST

START_TEST(subscription_reminder_and_other_types_are_ignored)
{
    sb_map_t map;
    map_text("{\"uuid\":\"9\",\"event\":\"/restapi/v1.0/subscription/~?threshold=86400\","
             "\"body\":{\"id\":\"7f3c2a9e\",\"expiresIn\":86000}}",
             &map);
    assert_outcome(&map, SB_MAP_IGNORED, "subscription_notification");
    sb_map_release(&map);

    char *text = instant_sms("\"id\":\"8\",\"type\":\"VoiceMail\",\"direction\":\"Inbound\","
                             "\"from\":{\"phoneNumber\":\"+14155550134\"}");
    map_text(text, &map);
    assert_outcome(&map, SB_MAP_IGNORED, "unsupported_message_type");
    sb_map_release(&map);
    free(text);
}
END_TEST

START_TEST(malformed_bodies_are_rejected)
{
    static const struct {
        const char *body;
        const char *reason;
    } cases[] = {
        {"{\"body\": {\"id\": ", "malformed_json"},
        {"", "malformed_json"},
        {"{\"body\":{\"subject\":\"\\u0000\"}}", "malformed_json"}, // jansson refuses NUL
        {"{} trailing", "malformed_json"},
        {"[1, 2, 3]", "unrecognized_payload"},
        {"\"just a string\"", "unrecognized_payload"},
        {"{\"uuid\":\"1\"}", "unrecognized_payload"},
        {"{\"body\":{\"direction\":\"Inbound\",\"from\":{\"phoneNumber\":\"+14155550134\"}}}",
         "unrecognized_payload"},                                                        // no id
        {"{\"body\":{\"id\":\"1\",\"direction\":\"Inbound\"}}", "unrecognized_payload"}, // no from
        {"{\"body\":{\"id\":\"\",\"direction\":\"Inbound\",\"from\":{\"phoneNumber\":\"+1415\"}}}",
         "unrecognized_payload"}, // empty id
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_map_t map;
        map_text(cases[i].body, &map);
        ck_assert_msg(map.kind == SB_MAP_REJECTED, "case %zu: kind %d", i, (int)map.kind);
        ck_assert_msg(strcmp(map.reason, cases[i].reason) == 0, "case %zu: reason %s", i,
                      map.reason);
        sb_map_release(&map);
    }
    // Invalid UTF-8 inside a string.
    const char bad[] = "{\"body\":{\"id\":\"1\",\"subject\":\"\xff\"}}";
    sb_envelope_t *env = sms_event(bad, sizeof bad - 1);
    sb_map_t map;
    sb_map_event(env, "1", &map);
    assert_outcome(&map, SB_MAP_REJECTED, "malformed_json");
    sb_map_release(&map);
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(verdicts_and_sources_decide_before_the_body)
{
    size_t len;
    char *body = sb_test_read_file(RC_DIR "sms-inbound.json", &len);
    sb_envelope_t *env = sms_event(body, len);
    sb_map_t map;

    sb_envelope_set(&env->verdict, "rejected");
    sb_envelope_set(&env->reason, "bad_verification_token");
    sb_map_event(env, "1", &map);
    assert_outcome(&map, SB_MAP_REJECTED, "bad_verification_token");
    sb_map_release(&map);

    sb_envelope_set(&env->verdict, NULL); // never verified: fail closed
    sb_map_event(env, "1", &map);
    assert_outcome(&map, SB_MAP_REJECTED, "not_verified");
    sb_map_release(&map);

    sb_envelope_set(&env->verdict, "accepted");
    sb_envelope_set(&env->source, "ringcentral_call");
    sb_map_event(env, "1", &map);
    // An SMS body on the call path: map_call.h has no session to key it on.
    assert_outcome(&map, SB_MAP_REJECTED, "missing_telephony_session_id");
    sb_map_release(&map);

    sb_envelope_set(&env->source, "gmail_push");
    sb_map_event(env, "1", &map);
    assert_outcome(&map, SB_MAP_IGNORED, "gmail_enricher_not_yet_supported");
    sb_map_release(&map);

    sb_envelope_set(&env->source, "fax");
    sb_map_event(env, "1", &map);
    assert_outcome(&map, SB_MAP_REJECTED, "unknown_source");
    sb_map_release(&map);

    sb_envelope_destroy(&env);
    free(body);
}
END_TEST

START_TEST(national_numbers_get_the_default_country_code)
{
    char *text = instant_sms("\"id\":\"5\",\"direction\":\"Inbound\","
                             "\"from\":{\"phoneNumber\":\"020 7946 0958\"}");
    sb_map_t map;
    sb_map_ringcentral_sms(text, strlen(text), "44", &map);
    ck_assert_int_eq(map.kind, SB_MAP_COMMUNICATION);
    ck_assert_str_eq(map.comm.from_address, "+442079460958");
    ck_assert_str_eq(map.comm.match_phone, "+442079460958");
    sb_map_release(&map);
    free(text);
}
END_TEST

static Suite *
map_ringcentral_suite(void)
{
    Suite *s = suite_create("map_ringcentral");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, inbound_fixture_maps_to_a_communication);
    tcase_add_test(tc, outbound_matches_the_recipient_and_normalises_numbers);
    tcase_add_test(tc, conversation_id_variant_and_integer_ids_stay_exact);
    tcase_add_test(tc, real_number_as_id_is_rejected);
    tcase_add_test(tc, sender_that_is_not_a_phone_number_is_kept_raw_and_matches_nobody);
    tcase_add_test(tc, creation_times_postgresql_refuses_fall_back_to_receive_time);
    tcase_add_test(tc, message_store_change_is_ignored);
    tcase_add_test(tc, subscription_reminder_and_other_types_are_ignored);
    tcase_add_test(tc, malformed_bodies_are_rejected);
    tcase_add_test(tc, verdicts_and_sources_decide_before_the_body);
    tcase_add_test(tc, national_numbers_get_the_default_country_code);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(map_ringcentral_suite)
