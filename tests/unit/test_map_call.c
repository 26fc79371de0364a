/* test_map_call - telephony-session events to party states, without a database
 * (writer/map_call.h), and the batch lock list of writer/db_call.h. The derivation of
 * the call row from the states is SQL (0003_calls.sql) and is tested by
 * tests/integration/test_calls.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "sb_check.h"
#include "sb_envelope.h"
#include "sb_mem.h"
#include "map_call.h"
#include "map_ringcentral.h"
#include "db_call.h"
#include "sb_banned.h"

#define RC_DIR SB_FIXTURES_DIR "/ringcentral/"

static json_t *
load_fixture(const char *name)
{
    json_error_t jerr;
    json_t *doc = json_load_file(name, 0, &jerr);
    ck_assert_msg(doc != NULL, "cannot load %s: %s", name, jerr.text);
    return doc;
}

// Map a JSON document (serialised first, as it would arrive).
static void
map_doc(const json_t *doc, sb_map_t *map)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    ck_assert_ptr_nonnull(text);
    sb_map_ringcentral_call(text, strlen(text), "1", map);
    free(text);
}

static void
map_text(const char *text, sb_map_t *map)
{
    sb_map_ringcentral_call(text, strlen(text), "1", map);
}

static void
assert_outcome(const sb_map_t *map, sb_map_kind_t kind, const char *reason)
{
    ck_assert_int_eq(map->kind, kind);
    ck_assert_ptr_nonnull(map->reason);
    ck_assert_str_eq(map->reason, reason);
    ck_assert_ptr_null(map->call);
}

// The parties array of a mapped call (a new reference the caller decrefs).
static json_t *
call_parties(const sb_map_t *map, const char *session)
{
    ck_assert_int_eq(map->kind, SB_MAP_CALL);
    ck_assert_ptr_null(map->reason);
    ck_assert_ptr_nonnull(map->call);
    ck_assert_str_eq(map->comm.external_id, session);
    ck_assert_str_eq(map->comm.channel, "call");
    ck_assert_str_eq(map->comm.provider, "ringcentral");
    json_error_t jerr;
    json_t *call = json_loads(map->call, 0, &jerr);
    ck_assert_msg(call != NULL, "call is not JSON: %s", jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(call, "session")), session);
    json_t *parties = json_incref(json_object_get(call, "parties"));
    json_decref(call);
    ck_assert(json_is_array(parties));
    return parties;
}

static const char *
str_member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    ck_assert_msg(json_is_string(v), "%s is not a string", key);
    return json_string_value(v);
}

START_TEST(inbound_answered_fixture_gives_one_party_state)
{
    static const struct {
        const char *file, *code, *time;
        int sequence;
    } steps[] = {
        {"01-setup.json", "Setup", "2026-11-24T15:02:11.204Z", 2},
        {"02-proceeding.json", "Proceeding", "2026-11-24T15:02:11.256Z", 3},
        {"03-answered.json", "Answered", "2026-11-24T15:02:21.015Z", 5},
        {"04-disconnected.json", "Disconnected", "2026-11-24T15:05:23.610Z", 8},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, RC_DIR "call-inbound-answered/%s", steps[i].file);
        json_t *doc = load_fixture(path);
        sb_map_t map;
        map_doc(doc, &map);
        json_t *parties = call_parties(&map, "s-a0d7f1c2e3b44c5d9e8f7a6b5c4d3e2f");
        ck_assert_str_eq(map.comm.direction, "inbound");
        ck_assert_uint_eq(json_array_size(parties), 1);
        const json_t *p = json_array_get(parties, 0);
        ck_assert_str_eq(str_member(p, "party_id"), "p-a0d7f1c2e3b44c5d9e8f7a6b5c4d3e2f-2");
        ck_assert_int_eq(json_integer_value(json_object_get(p, "sequence")), steps[i].sequence);
        ck_assert_str_eq(str_member(p, "event_time"), steps[i].time);
        ck_assert_str_eq(str_member(p, "status_code"), steps[i].code);
        ck_assert_str_eq(str_member(p, "direction"), "inbound");
        ck_assert(json_is_true(json_object_get(p, "ours")));
        ck_assert_str_eq(str_member(p, "from_address"), "+14155550134");
        ck_assert_str_eq(str_member(p, "to_address"), "+16505550100");
        ck_assert(json_is_false(json_object_get(p, "missed")));
        json_decref(parties);
        sb_map_release(&map);
        json_decref(doc);
    }
}
END_TEST

START_TEST(missed_flag_and_outbound_direction_are_kept)
{
    json_t *doc = load_fixture(RC_DIR "call-inbound-missed/03-disconnected.json");
    sb_map_t map;
    map_doc(doc, &map);
    json_t *parties = call_parties(&map, "s-b1e8a2d3f4c54d6e8f9a0b1c2d3e4f5a");
    const json_t *p = json_array_get(parties, 0);
    ck_assert(json_is_true(json_object_get(p, "missed")));
    ck_assert_str_eq(str_member(p, "from_address"), "+13125550142");
    json_decref(parties);
    sb_map_release(&map);
    json_decref(doc);

    doc = load_fixture(RC_DIR "call-outbound/03-answered.json");
    map_doc(doc, &map);
    parties = call_parties(&map, "s-c2f9b3e4a5d64e7f9a0b1c2d3e4f5a6b");
    ck_assert_str_eq(map.comm.direction, "outbound");
    p = json_array_get(parties, 0);
    ck_assert_str_eq(str_member(p, "direction"), "outbound");
    ck_assert_str_eq(str_member(p, "status_code"), "Answered");
    ck_assert_str_eq(str_member(p, "from_address"), "+16505550100"); // our number
    ck_assert_str_eq(str_member(p, "to_address"), "+12125550178");   // the callee
    json_decref(parties);
    sb_map_release(&map);
    json_decref(doc);
}
END_TEST

START_TEST(voicemail_fixture_maps)
{
    json_t *doc = load_fixture(SB_TESTS_DIR "/data/call-inbound-voicemail/03-voicemail.json");
    sb_map_t map;
    map_doc(doc, &map);
    json_t *parties = call_parties(&map, "s-d3a0c4f5b6e74f8a0b1c2d3e4f5a6b7c");
    ck_assert_str_eq(str_member(json_array_get(parties, 0), "status_code"), "VoiceMail");
    json_decref(parties);
    sb_map_release(&map);
    json_decref(doc);
}
END_TEST

START_TEST(event_routes_call_source_to_map_call)
{
    json_t *doc = load_fixture(RC_DIR "call-outbound/01-setup.json");
    char *text = json_dumps(doc, JSON_COMPACT);
    sb_envelope_t *env = sb_envelope_new();
    sb_envelope_set(&env->event_id, "ing-1:abcd:7");
    sb_envelope_set(&env->source, "ringcentral_call");
    sb_envelope_set(&env->verdict, "accepted");
    free(env->body);
    env->body = text;
    env->body_len = strlen(text);
    sb_map_t map;
    sb_map_event(env, "1", &map);
    json_t *parties = call_parties(&map, "s-c2f9b3e4a5d64e7f9a0b1c2d3e4f5a6b");
    json_decref(parties);
    sb_map_release(&map);
    ck_assert_ptr_null(map.call); // released and zeroed

    sb_envelope_set(&env->verdict, "rejected"); // a call event that failed verification
    sb_envelope_set(&env->reason, "bad_verification_token");
    sb_map_event(env, "1", &map);
    assert_outcome(&map, SB_MAP_REJECTED, "bad_verification_token");
    sb_map_release(&map);
    sb_envelope_destroy(&env);
    json_decref(doc);
}
END_TEST

START_TEST(numbers_are_normalised_and_ids_kept_exact)
{
    json_t *doc = load_fixture(RC_DIR "call-inbound-answered/01-setup.json");
    json_t *body = json_object_get(doc, "body");
    json_t *party = json_array_get(json_object_get(body, "parties"), 0);
    // A national number, an internal extension, ids as big integers.
    json_object_set_new(json_object_get(party, "from"), "phoneNumber",
                        json_string("(415) 555-0134"));
    json_object_set_new(party, "to", json_pack("{s:s}", "extensionNumber", "101"));
    json_object_set_new(body, "telephonySessionId", json_integer(9007199254740993LL));
    json_object_set_new(party, "id", json_integer(9223372036854775807LL));
    json_object_set_new(body, "sequence", json_string("12"));
    sb_map_t map;
    map_doc(doc, &map);
    json_t *parties = call_parties(&map, "9007199254740993");
    const json_t *p = json_array_get(parties, 0);
    ck_assert_str_eq(str_member(p, "from_address"), "+14155550134");
    ck_assert_str_eq(str_member(p, "to_address"), "101");
    ck_assert_str_eq(str_member(p, "party_id"), "9223372036854775807");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "sequence")), 12);
    json_decref(parties);
    sb_map_release(&map);
    json_decref(doc);
}
END_TEST

START_TEST(event_time_falls_back_to_the_notification_timestamp)
{
    json_t *doc = load_fixture(RC_DIR "call-inbound-answered/02-proceeding.json");
    json_object_del(json_object_get(doc, "body"), "eventTime");
    sb_map_t map;
    map_doc(doc, &map);
    json_t *parties = call_parties(&map, "s-a0d7f1c2e3b44c5d9e8f7a6b5c4d3e2f");
    ck_assert_str_eq(str_member(json_array_get(parties, 0), "event_time"),
                     "2026-11-24T15:02:11.320Z");
    json_decref(parties);
    sb_map_release(&map);

    json_object_set_new(doc, "timestamp", json_string("2026-02-30T10:00:00Z")); // no such day
    map_doc(doc, &map);
    assert_outcome(&map, SB_MAP_REJECTED, "invalid_event_time");
    sb_map_release(&map);
    json_decref(doc);
}
END_TEST

START_TEST(bad_shapes_are_rejected_or_ignored_with_a_reason)
{
    sb_map_t map;
    map_text("{\"body\": ", &map);
    assert_outcome(&map, SB_MAP_REJECTED, "malformed_json");
    sb_map_release(&map);
    map_text("[1, 2]", &map);
    assert_outcome(&map, SB_MAP_REJECTED, "unrecognized_payload");
    sb_map_release(&map);
    map_text("{\"event\": \"/restapi/v1.0/telephony/sessions\"}", &map);
    assert_outcome(&map, SB_MAP_REJECTED, "unrecognized_payload");
    sb_map_release(&map);
    map_text("{\"event\": \"/restapi/v1.0/subscription/~?threshold=86400\", \"body\": {}}", &map);
    assert_outcome(&map, SB_MAP_IGNORED, "subscription_notification");
    sb_map_release(&map);
    map_text("", &map);
    assert_outcome(&map, SB_MAP_REJECTED, "malformed_json");
    sb_map_release(&map);
}
END_TEST

// Load 01-setup, let edit() change it, map it and check the outcome.
static void
check_edit(void (*edit)(json_t *body, json_t *party), sb_map_kind_t kind, const char *reason)
{
    json_t *doc = load_fixture(RC_DIR "call-inbound-answered/01-setup.json");
    json_t *body = json_object_get(doc, "body");
    edit(body, json_array_get(json_object_get(body, "parties"), 0));
    sb_map_t map;
    map_doc(doc, &map);
    assert_outcome(&map, kind, reason);
    sb_map_release(&map);
    json_decref(doc);
}

static void
no_session(json_t *body, json_t *party)
{
    (void)party;
    json_object_del(body, "telephonySessionId");
}

static void
empty_session(json_t *body, json_t *party)
{
    (void)party;
    json_object_set_new(body, "telephonySessionId", json_string(""));
}

static void
real_session(json_t *body, json_t *party)
{
    (void)party;
    json_object_set_new(body, "telephonySessionId", json_real(1.5e17));
}

static void
no_sequence(json_t *body, json_t *party)
{
    (void)party;
    json_object_del(body, "sequence");
}

static void
negative_sequence(json_t *body, json_t *party)
{
    (void)party;
    json_object_set_new(body, "sequence", json_integer(-1));
}

static void
no_parties(json_t *body, json_t *party)
{
    (void)party;
    json_object_del(body, "parties");
}

static void
empty_parties(json_t *body, json_t *party)
{
    (void)party;
    json_object_set_new(body, "parties", json_array());
}

static void
no_numbers(json_t *body, json_t *party)
{
    (void)body;
    json_object_set_new(party, "from", json_pack("{s:s}", "name", "Anonymous"));
    json_object_set_new(party, "to", json_object());
}

static void
no_status(json_t *body, json_t *party)
{
    (void)body;
    json_object_del(party, "status");
}

static void
odd_direction(json_t *body, json_t *party)
{
    (void)body;
    json_object_set_new(party, "direction", json_string("Sideways"));
}

static void
no_party_id(json_t *body, json_t *party)
{
    (void)body;
    json_object_del(party, "id");
}

START_TEST(session_sequence_and_parties_are_required)
{
    check_edit(no_session, SB_MAP_REJECTED, "missing_telephony_session_id");
    check_edit(empty_session, SB_MAP_REJECTED, "missing_telephony_session_id");
    check_edit(real_session, SB_MAP_REJECTED, "missing_telephony_session_id");
    check_edit(no_sequence, SB_MAP_REJECTED, "missing_sequence");
    check_edit(negative_sequence, SB_MAP_REJECTED, "missing_sequence");
    check_edit(no_parties, SB_MAP_IGNORED, "no_parties");
    check_edit(empty_parties, SB_MAP_IGNORED, "no_parties");
    check_edit(no_numbers, SB_MAP_IGNORED, "party_without_phone_number");
    check_edit(no_status, SB_MAP_REJECTED, "unrecognized_party");
    check_edit(odd_direction, SB_MAP_REJECTED, "unrecognized_party");
    check_edit(no_party_id, SB_MAP_REJECTED, "unrecognized_party");
}
END_TEST

START_TEST(unusable_parties_are_skipped_when_another_is_usable)
{
    json_t *doc = load_fixture(RC_DIR "call-inbound-answered/03-answered.json");
    json_t *parties = json_object_get(json_object_get(doc, "body"), "parties");
    json_t *good = json_array_get(parties, 0);
    json_t *external = json_deep_copy(good);
    // An external party (no extensionId) as account-level events carry, and a party
    // without numbers, before ours.
    json_object_del(external, "extensionId");
    json_object_set_new(external, "id", json_string("p-external"));
    json_object_set_new(external, "direction", json_string("Outbound"));
    json_t *empty = json_deep_copy(good);
    json_object_set_new(empty, "from", json_object());
    json_object_set_new(empty, "to", json_object());
    json_array_insert_new(parties, 0, empty);
    json_array_insert_new(parties, 0, external);
    sb_map_t map;
    map_doc(doc, &map);
    json_t *states = call_parties(&map, "s-a0d7f1c2e3b44c5d9e8f7a6b5c4d3e2f");
    ck_assert_uint_eq(json_array_size(states), 2);
    ck_assert_str_eq(str_member(json_array_get(states, 0), "party_id"), "p-external");
    ck_assert(json_is_false(json_object_get(json_array_get(states, 0), "ours")));
    ck_assert(json_is_true(json_object_get(json_array_get(states, 1), "ours")));
    json_decref(states);
    sb_map_release(&map);
    json_decref(doc);
}
END_TEST

START_TEST(first_call_of_a_batch_carries_every_call_session)
{
    sb_map_t maps[4];
    memset(maps, 0, sizeof maps);
    maps[0].kind = SB_MAP_COMMUNICATION;
    maps[1].kind = SB_MAP_CALL;
    maps[1].comm.external_id = sb_xstrdup("s-b");
    maps[2].kind = SB_MAP_IGNORED;
    maps[3].kind = SB_MAP_CALL;
    maps[3].comm.external_id = sb_xstrdup("s-a\"quoted");
    sb_db_event_t events[4];
    memset(events, 0, sizeof events);
    for (size_t i = 0; i < 4; i++) {
        events[i].map = &maps[i];
        events[i].call_locks = "stale";
    }
    char *locks = sb_db_call_locks(events, 4);
    ck_assert_ptr_nonnull(locks);
    ck_assert_str_eq(locks, "[\"s-b\",\"s-a\\\"quoted\"]");
    ck_assert_ptr_eq(events[1].call_locks, locks);
    ck_assert_ptr_null(events[0].call_locks);
    ck_assert_ptr_null(events[2].call_locks);
    ck_assert_ptr_null(events[3].call_locks);
    free(locks);
    ck_assert_ptr_null(sb_db_call_locks(events, 1)); // no call in the batch
    ck_assert_ptr_null(events[0].call_locks);
    for (size_t i = 0; i < 4; i++)
        sb_map_release(&maps[i]);
}
END_TEST

static Suite *
sb_map_call_suite(void)
{
    Suite *s = suite_create("map_call");
    TCase *tc = tcase_create("map_call");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, inbound_answered_fixture_gives_one_party_state);
    tcase_add_test(tc, missed_flag_and_outbound_direction_are_kept);
    tcase_add_test(tc, voicemail_fixture_maps);
    tcase_add_test(tc, event_routes_call_source_to_map_call);
    tcase_add_test(tc, numbers_are_normalised_and_ids_kept_exact);
    tcase_add_test(tc, event_time_falls_back_to_the_notification_timestamp);
    tcase_add_test(tc, bad_shapes_are_rejected_or_ignored_with_a_reason);
    tcase_add_test(tc, session_sequence_and_parties_are_required);
    tcase_add_test(tc, unusable_parties_are_skipped_when_another_is_usable);
    tcase_add_test(tc, first_call_of_a_batch_carries_every_call_session);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_map_call_suite)
