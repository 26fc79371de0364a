/* test_enrich_ringcentral - the pure pieces of the enricher's RingCentral handler
 * (enricher/enrich_ringcentral.h): which notifications need a fetch and which ids, and the
 * SMS row made from a fetched message-store record. The fetching itself runs against the
 * fake server in tests/integration/test_message_store.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "sb_check.h"
#include "test_util.h"
#include "sb_mem.h"
#include "enrich_ringcentral.h"
#include "sb_banned.h"

#define RC_DIR SB_FIXTURES_DIR "/ringcentral/"

static int
parse_text(const char *text, sb_rc_changes_t *out)
{
    return sb_rc_changes_parse(text, strlen(text), out);
}

static const char *
str(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    ck_assert_msg(json_is_string(v), "%s is not a string", key);
    return json_string_value(v);
}

START_TEST(message_store_fixture_names_its_message)
{
    size_t len;
    char *body = sb_test_read_file(RC_DIR "sms-outbound-message-store.json", &len);
    sb_rc_changes_t c;
    ck_assert_int_eq(sb_rc_changes_parse(body, len, &c), 1);
    ck_assert_uint_eq(c.n_ids, 1);
    ck_assert_str_eq(c.ids[0], "3062991514023");
    ck_assert_str_eq(c.account_id, "401234567008");
    ck_assert_str_eq(c.extension_id, "401234569008");
    sb_rc_changes_release(&c);
    ck_assert_ptr_null(c.ids);
    free(body);
}
END_TEST

START_TEST(instant_sms_and_other_shapes_pass_through)
{
    size_t len;
    char *body = sb_test_read_file(RC_DIR "sms-inbound.json", &len);
    sb_rc_changes_t c;
    ck_assert_int_eq(sb_rc_changes_parse(body, len, &c), 0);
    ck_assert_uint_eq(c.n_ids, 0);
    sb_rc_changes_release(&c);
    free(body);
    ck_assert_int_eq(parse_text("not json", &c), 0);
    sb_rc_changes_release(&c);
    ck_assert_int_eq(parse_text("{\"body\":{\"changes\":{}}}", &c), 0);
    sb_rc_changes_release(&c);
    ck_assert_int_eq(parse_text("[1]", &c), 0);
    sb_rc_changes_release(&c);
    // The quick test for the word only skips the parse: "changes" as a value, in an
    // escaped string or at the very end decides nothing by itself.
    ck_assert_int_eq(parse_text("{\"body\":{\"subject\":\"changes\"}}", &c), 0);
    sb_rc_changes_release(&c);
    ck_assert_int_eq(parse_text("{\"body\":{\"subject\":\"see \\\"changes\\\"\"}}", &c), 0);
    sb_rc_changes_release(&c);
    ck_assert_int_eq(parse_text("\"changes\"", &c), 0);
    sb_rc_changes_release(&c);
    ck_assert_int_eq(parse_text("\"change", &c), 0);
    sb_rc_changes_release(&c);
    // ... and a real one right at the start of the text is still found.
    ck_assert_int_eq(
        parse_text("{\"body\":{\"changes\":[{\"type\":\"SMS\",\"newMessageIds\":[7]}]}}", &c), 1);
    ck_assert_uint_eq(c.n_ids, 1);
    sb_rc_changes_release(&c);
}
END_TEST

START_TEST(ids_are_exact_deduplicated_and_only_sms)
{
    sb_rc_changes_t c;
    // 9007199254740993 is 2^53 + 1: a double would turn it into ...992.
    ck_assert_int_eq(parse_text("{\"body\":{\"accountId\":\"~\",\"changes\":["
                                "{\"type\":\"SMS\",\"newMessageIds\":[9007199254740993,"
                                "\"9223372036854775807\",9007199254740993,-5,1.5,\"12a\",\"\"]},"
                                "{\"type\":\"Fax\",\"newMessageIds\":[77]},"
                                "{\"type\":\"SMS\",\"newCount\":0},"
                                "{\"type\":\"SMS\",\"newMessageIds\":[\"42\"]}]}}",
                                &c),
                     1);
    ck_assert_uint_eq(c.n_ids, 3);
    ck_assert_str_eq(c.ids[0], "9007199254740993");
    ck_assert_str_eq(c.ids[1], "9223372036854775807");
    ck_assert_str_eq(c.ids[2], "42");
    ck_assert_ptr_null(c.account_id); // "~" is not an id: the path gets "~" anyway
    sb_rc_changes_release(&c);

    ck_assert_int_eq(parse_text("{\"body\":{\"changes\":[{\"type\":\"Fax\","
                                "\"newMessageIds\":[1]}]}}",
                                &c),
                     1);
    ck_assert_uint_eq(c.n_ids, 0); // a change, but nothing for us: 'no_new_messages'
    sb_rc_changes_release(&c);
}
END_TEST

START_TEST(fetched_record_becomes_the_instant_sms_row)
{
    size_t len;
    char *body = sb_test_read_file(RC_DIR "sms-send-response.json", &len);
    json_t *record = json_loadb(body, len, 0, NULL);
    ck_assert_ptr_nonnull(record);
    json_t *row = sb_rc_sms_row(record, "3062991514023", "1");
    ck_assert_ptr_nonnull(row);
    ck_assert_str_eq(str(row, "channel"), "sms");
    ck_assert_str_eq(str(row, "provider"), "ringcentral");
    ck_assert_str_eq(str(row, "direction"), "outbound");
    ck_assert_str_eq(str(row, "external_id"), "3062991514023");
    ck_assert_str_eq(str(row, "thread_id"), "7876416245344257449"); // > 2^53, exact
    ck_assert_str_eq(str(row, "from_address"), "+16505550100");
    ck_assert_str_eq(str(row, "to_address"), "+14155550134");
    ck_assert_str_eq(str(row, "body"),
                     "Hi Maria, yes: order #48213 is ready. We are open until 6 pm today.");
    ck_assert(json_is_null(json_object_get(row, "subject")));
    ck_assert_str_eq(str(row, "status"), "Queued");
    ck_assert_str_eq(str(row, "occurred_at"), "2026-11-24T15:04:51.000Z");
    ck_assert_str_eq(str(row, "match_phone"), "+14155550134"); // outbound: the recipient
    json_decref(row);

    // Inbound, national numbers, the conversation id only as a number.
    json_object_set_new(record, "direction", json_string("Inbound"));
    json_object_set_new(record, "from", json_pack("{s:s}", "phoneNumber", "(415) 555-0134"));
    json_object_del(record, "conversation");
    row = sb_rc_sms_row(record, "3062991514023", "1");
    ck_assert_ptr_nonnull(row);
    ck_assert_str_eq(str(row, "direction"), "inbound");
    ck_assert_str_eq(str(row, "from_address"), "+14155550134");
    ck_assert_str_eq(str(row, "match_phone"), "(415) 555-0134"); // the writer normalises it
    ck_assert_str_eq(str(row, "thread_id"), "7876416245344257449");
    json_decref(row);

    json_object_set_new(record, "type", json_string("Fax"));
    ck_assert_ptr_null(sb_rc_sms_row(record, "1", "1"));
    json_object_set_new(record, "type", json_string("SMS"));
    json_object_del(record, "from");
    ck_assert_ptr_null(sb_rc_sms_row(record, "1", "1"));
    ck_assert_ptr_null(sb_rc_sms_row(NULL, "1", "1"));
    json_decref(record);
    free(body);
}
END_TEST

static Suite *
sb_enrich_ringcentral_suite(void)
{
    Suite *s = suite_create("enrich_ringcentral");
    TCase *tc = tcase_create("enrich_ringcentral");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, message_store_fixture_names_its_message);
    tcase_add_test(tc, instant_sms_and_other_shapes_pass_through);
    tcase_add_test(tc, ids_are_exact_deduplicated_and_only_sms);
    tcase_add_test(tc, fetched_record_becomes_the_instant_sms_row);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_enrich_ringcentral_suite)
