/* test_map_extra - the writer's side of the enricher's extra frame (writer/map_extra.h):
 * rows, matching keys, outcome, reason and checkpoint, without a database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "sb_check.h"
#include "sb_envelope.h"
#include "sb_mem.h"
#include "map_extra.h"
#include "map_ringcentral.h"
#include "sb_banned.h"

static sb_map_extra_t *
parse(const char *text)
{
    return sb_map_extra_parse(text, strlen(text), "1");
}

static json_t *
rows_of(const sb_map_extra_t *x)
{
    json_error_t jerr;
    json_t *rows = json_loads(x->rows_json, 0, &jerr);
    ck_assert_msg(json_is_array(rows), "rows_json is not an array: %s", x->rows_json);
    ck_assert_uint_eq(json_array_size(rows), x->n_rows);
    return rows;
}

static const char *
member(const json_t *row, const char *key)
{
    return json_string_value(json_object_get(row, key));
}

static void
assert_malformed(const char *text)
{
    sb_map_extra_t *x = parse(text);
    ck_assert_msg(strcmp(x->outcome, "failed") == 0, "%s: outcome %s", text, x->outcome);
    ck_assert_str_eq(x->reason, "malformed_extra");
    ck_assert_uint_eq(x->n_rows, 0);
    ck_assert_str_eq(x->rows_json, "[]");
    ck_assert_ptr_null(x->mailbox_email); // a broken document moves no checkpoint
    ck_assert_ptr_null(x->history_id);
    sb_map_extra_destroy(&x);
    ck_assert_ptr_null(x);
}

static const char s_gmail_extra[] =
    "{\"communications\":["
    "{\"channel\":\"email\",\"direction\":\"inbound\",\"provider\":\"gmail\","
    "\"external_id\":\"19a6f3c2b1d04e01\",\"thread_id\":\"19a6f3c2b1d04e01\","
    "\"from_address\":\"maria.lopez@example.com\",\"to_address\":\"support@example.com\","
    "\"subject\":\"Where is order #48213?\",\"body\":\"Hello \\u00e9\",\"status\":null,"
    "\"occurred_at\":\"2026-11-24T15:01:07.000Z\","
    "\"match_email\":\"Maria Lopez <Maria.Lopez@Example.com>\",\"match_phone\":null},"
    "{\"channel\":\"email\",\"direction\":\"outbound\",\"provider\":\"gmail\","
    "\"external_id\":\"19a6f4aa01b2c3d4\",\"thread_id\":\"19a6f3c2b1d04e01\","
    "\"from_address\":\"support@example.com\",\"to_address\":\"maria.lopez@example.com\","
    "\"subject\":\"Re: Where is order #48213?\",\"body\":\"Hi Maria\","
    "\"occurred_at\":\"2026-11-24T15:06:30.000Z\",\"match_email\":\"maria.lopez@example.com\"}],"
    "\"mailbox\":{\"email\":\"support@example.com\",\"history_id\":\"1843562\","
    "\"full_sync\":false}}";

START_TEST(gmail_rows_are_kept_in_order_with_normalised_match)
{
    sb_map_extra_t *x = parse(s_gmail_extra);
    ck_assert_ptr_nonnull(x);
    ck_assert_uint_eq(x->n_rows, 2);
    ck_assert_ptr_null(x->reason); // stored/duplicate carry no reason
    ck_assert_str_eq(x->mailbox_email, "support@example.com");
    ck_assert_str_eq(x->history_id, "1843562");
    ck_assert_ptr_null(x->mailbox_status);
    json_t *rows = rows_of(x);
    json_t *first = json_array_get(rows, 0), *second = json_array_get(rows, 1);
    ck_assert_int_eq(json_integer_value(json_object_get(first, "ord")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(second, "ord")), 1);
    ck_assert_str_eq(member(first, "external_id"), "19a6f3c2b1d04e01");
    ck_assert_str_eq(member(first, "match_email"), "maria.lopez@example.com");
    ck_assert_str_eq(member(first, "occurred_at"), "2026-11-24T15:01:07.000Z");
    ck_assert_str_eq(member(first, "body"), "Hello \xc3\xa9");
    ck_assert(json_is_null(json_object_get(first, "status")));
    ck_assert(json_is_null(json_object_get(first, "match_phone")));
    ck_assert_str_eq(member(second, "direction"), "outbound");
    ck_assert(json_is_null(json_object_get(second, "status"))); // absent becomes null
    json_decref(rows);
    sb_map_extra_destroy(&x);
}
END_TEST

START_TEST(numeric_history_id_and_full_sync)
{
    sb_map_extra_t *x = parse("{\"communications\":[],\"mailbox\":{\"email\":\"a@b.c\","
                              "\"history_id\":1843562,\"full_sync\":true}}");
    ck_assert_str_eq(x->history_id, "1843562");
    ck_assert_str_eq(x->reason, "full_sync");
    ck_assert_str_eq(x->outcome, "ignored");
    ck_assert_uint_eq(x->n_rows, 0);
    sb_map_extra_destroy(&x);
}
END_TEST

START_TEST(no_rows_is_ignored_no_new_messages)
{
    sb_map_extra_t *x =
        parse("{\"communications\":[],\"mailbox\":{\"email\":\"a@b.c\",\"history_id\":\"7\"}}");
    ck_assert_str_eq(x->outcome, "ignored");
    ck_assert_str_eq(x->reason, "no_new_messages");
    ck_assert_str_eq(x->history_id, "7"); // the checkpoint still moves
    sb_map_extra_destroy(&x);
}
END_TEST

START_TEST(explicit_outcomes)
{
    sb_map_extra_t *x = parse("{\"outcome\":\"ignored\",\"reason\":\"unknown_mailbox\"}");
    ck_assert_str_eq(x->outcome, "ignored");
    ck_assert_str_eq(x->reason, "unknown_mailbox");
    ck_assert_ptr_null(x->mailbox_email);
    sb_map_extra_destroy(&x);
    x = parse("{\"outcome\":\"failed\",\"reason\":\"mailbox_reauth_required\","
              "\"mailbox\":{\"email\":\"a@b.c\",\"status\":\"reauth_required\"}}");
    ck_assert_str_eq(x->outcome, "failed");
    ck_assert_str_eq(x->mailbox_status, "reauth_required");
    ck_assert_ptr_null(x->history_id); // no checkpoint given: untouched
    sb_map_extra_destroy(&x);
    x = parse("{\"outcome\":\"rejected\",\"reason\":\"malformed_push\"}");
    ck_assert_str_eq(x->outcome, "rejected");
    sb_map_extra_destroy(&x);
}
END_TEST

START_TEST(repeated_message_is_one_row)
{
    const char *row = "{\"channel\":\"email\",\"direction\":\"inbound\",\"provider\":\"gmail\","
                      "\"external_id\":\"abc\"}";
    char *text = sb_xasprintf("{\"communications\":[%s,%s,%s]}", row, row, row);
    sb_map_extra_t *x = parse(text);
    ck_assert_uint_eq(x->n_rows, 1);
    ck_assert_ptr_null(x->reason);
    sb_map_extra_destroy(&x);
    free(text);
}
END_TEST

START_TEST(phone_match_goes_to_e164_and_bad_values_to_null)
{
    sb_map_extra_t *x =
        parse("{\"communications\":[{\"channel\":\"sms\",\"direction\":\"inbound\","
              "\"provider\":\"ringcentral\",\"external_id\":\"9007199254740993\","
              "\"match_phone\":\"(415) 555-0134\",\"match_email\":\"not an address\","
              "\"occurred_at\":\"2026-02-30T10:00:00Z\"},"
              "{\"channel\":\"sms\",\"direction\":\"outbound\",\"provider\":\"ringcentral\","
              "\"external_id\":\"2\",\"match_phone\":\"hello\",\"occurred_at\":\"2026-11-24T10:00:"
              "00+01:00\"}]}");
    json_t *rows = rows_of(x);
    json_t *first = json_array_get(rows, 0), *second = json_array_get(rows, 1);
    ck_assert_str_eq(member(first, "external_id"), "9007199254740993"); // exact, as text
    ck_assert_str_eq(member(first, "match_phone"), "+14155550134");
    ck_assert(json_is_null(json_object_get(first, "match_email")));
    ck_assert(json_is_null(json_object_get(first, "occurred_at"))); // no 30 February
    ck_assert(json_is_null(json_object_get(second, "match_phone")));
    ck_assert_str_eq(member(second, "occurred_at"), "2026-11-24T10:00:00+01:00");
    json_decref(rows);
    sb_map_extra_destroy(&x);
}
END_TEST

START_TEST(malformed_documents_fail_the_event)
{
    assert_malformed("");
    assert_malformed("not json");
    assert_malformed("[1,2]");
    assert_malformed("{\"communications\":{}}");
    assert_malformed("{\"communications\":[1]}");
    assert_malformed("{\"communications\":[{\"channel\":\"fax\",\"direction\":\"inbound\","
                     "\"provider\":\"gmail\",\"external_id\":\"a\"}]}");
    assert_malformed("{\"communications\":[{\"channel\":\"email\",\"direction\":\"inbound\","
                     "\"provider\":\"gmail\"}]}");
    assert_malformed("{\"communications\":[{\"channel\":\"email\",\"direction\":\"inbound\","
                     "\"provider\":\"gmail\",\"external_id\":\"\"}]}");
    assert_malformed("{\"communications\":[{\"channel\":\"email\",\"direction\":\"inbound\","
                     "\"provider\":\"gmail\",\"external_id\":\"a\",\"subject\":5}]}");
    assert_malformed("{\"outcome\":\"stored\"}"); // the writer decides stored/duplicate
    assert_malformed("{\"reason\":\"line\\nbreak\"}");
    assert_malformed("{\"mailbox\":{\"email\":\"a@b.c\",\"history_id\":\"12a\"}}");
    assert_malformed("{\"mailbox\":{\"email\":\"a@b.c\",\"history_id\":\"9223372036854775808\"}}");
    assert_malformed("{\"mailbox\":{\"email\":\"a@b.c\",\"history_id\":-1}}");
    assert_malformed("{\"mailbox\":{\"history_id\":\"5\"}}");
    assert_malformed("{\"mailbox\":{\"email\":\"a@b.c\",\"full_sync\":\"yes\"}}");
}
END_TEST

START_TEST(largest_history_id_is_accepted)
{
    sb_map_extra_t *x =
        parse("{\"mailbox\":{\"email\":\"a@b.c\",\"history_id\":\"9223372036854775807\"}}");
    ck_assert_str_eq(x->history_id, "9223372036854775807");
    sb_map_extra_destroy(&x);
}
END_TEST

static sb_envelope_t *
event(const char *source, const char *verdict, const char *extra)
{
    sb_envelope_t *env = sb_envelope_new();
    sb_envelope_set(&env->event_id, "ing-1:abcd:1");
    sb_envelope_set(&env->source, source);
    sb_envelope_set(&env->verdict, verdict);
    sb_envelope_set(&env->extra, extra);
    env->received_at_ms = 1795532412424;
    return env;
}

START_TEST(map_event_takes_the_extra_of_an_accepted_event)
{
    sb_map_t map;
    sb_envelope_t *env = event("gmail_push", "accepted", s_gmail_extra);
    sb_map_event(env, "1", &map);
    ck_assert_int_eq(map.kind, SB_MAP_EXTRA);
    ck_assert_ptr_nonnull(map.extra);
    ck_assert_uint_eq(map.extra->n_rows, 2);
    sb_map_release(&map);
    ck_assert_ptr_null(map.extra);
    sb_envelope_destroy(&env);

    env =
        event("gmail_push", "accepted", "{\"outcome\":\"ignored\",\"reason\":\"unknown_mailbox\"}");
    sb_map_event(env, "1", &map);
    ck_assert_int_eq(map.kind, SB_MAP_EXTRA);
    ck_assert_str_eq(map.reason, "unknown_mailbox"); // shown in the writer's log line
    sb_map_release(&map);
    sb_envelope_destroy(&env);

    // The verifier's verdict wins over anything a later stage added.
    env = event("gmail_push", "rejected", s_gmail_extra);
    sb_envelope_set(&env->reason, "bad_signature");
    sb_map_event(env, "1", &map);
    ck_assert_int_eq(map.kind, SB_MAP_REJECTED);
    ck_assert_str_eq(map.reason, "bad_signature");
    ck_assert_ptr_null(map.extra);
    sb_map_release(&map);
    sb_envelope_destroy(&env);

    // No extra: the old path is unchanged.
    env = event("gmail_push", "accepted", NULL);
    sb_map_event(env, "1", &map);
    ck_assert_int_eq(map.kind, SB_MAP_IGNORED);
    sb_map_release(&map);
    sb_envelope_destroy(&env);
}
END_TEST

static Suite *
sb_map_extra_suite(void)
{
    Suite *s = suite_create("map_extra");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, gmail_rows_are_kept_in_order_with_normalised_match);
    tcase_add_test(tc, numeric_history_id_and_full_sync);
    tcase_add_test(tc, no_rows_is_ignored_no_new_messages);
    tcase_add_test(tc, explicit_outcomes);
    tcase_add_test(tc, repeated_message_is_one_row);
    tcase_add_test(tc, phone_match_goes_to_e164_and_bad_values_to_null);
    tcase_add_test(tc, malformed_documents_fail_the_event);
    tcase_add_test(tc, largest_history_id_is_accepted);
    tcase_add_test(tc, map_event_takes_the_extra_of_an_accepted_event);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_map_extra_suite)
