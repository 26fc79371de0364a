/* test_enricher_gmail - the pure pieces of the enricher's Gmail handler (enricher/gmail.h):
 * Pub/Sub data decoding, history pages, the full-sync answers, and the extra document
 * built from the fixture messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "sb_check.h"
#include "test_util.h"
#include "sb_b64.h"
#include "sb_mem.h"
#include "gmail.h"
#include "sb_banned.h"

#define GMAIL_DIR SB_FIXTURES_DIR "/gmail/"

// A push body whose message.data is `payload` encoded with flags (SB_B64_STD/URL).
static char *
push_with(const char *payload, int flags)
{
    char *data = sb_b64_encode(payload, strlen(payload), flags);
    char *body = sb_xasprintf("{\"message\":{\"data\":\"%s\",\"messageId\":\"1\"},"
                              "\"subscription\":\"projects/p/subscriptions/s\"}",
                              data);
    free(data);
    return body;
}

static int
decode(const char *body, char **email, char **history, sb_err_t *err)
{
    return sb_gmail_pubsub_decode(body, strlen(body), email, history, err);
}

START_TEST(fixture_pushes_decode)
{
    const char *files[] = {GMAIL_DIR "pubsub-push.json",
                           GMAIL_DIR "pubsub-push-numeric-historyid.json"};
    for (size_t i = 0; i < 2; i++) {
        size_t len;
        char *body = sb_test_read_file(files[i], &len);
        char *email = NULL, *history = NULL;
        sb_err_t err = {0};
        ck_assert_msg(sb_gmail_pubsub_decode(body, len, &email, &history, &err) == 0, "%s: %s",
                      files[i], err.msg);
        ck_assert_str_eq(email, "support@example.com");
        ck_assert_str_eq(history, "1843562"); // string and number alike
        free(email);
        free(history);
        free(body);
    }
}
END_TEST

START_TEST(base64url_and_unpadded_data_decode)
{
    // '>' and '?' in the payload make the two alphabets differ ('+' '/' vs '-' '_').
    const char *payload = "{\"emailAddress\":\"a+b@example.com\",\"historyId\":\"77\","
                          "\"x\":\">>>???\"}";
    int flags[] = {SB_B64_STD, SB_B64_URL, SB_B64_URL | SB_B64_NO_PAD, SB_B64_STD | SB_B64_NO_PAD};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        char *body = push_with(payload, flags[i]);
        char *email = NULL, *history = NULL;
        sb_err_t err = {0};
        ck_assert_msg(decode(body, &email, &history, &err) == 0, "flags %d: %s", flags[i], err.msg);
        ck_assert_str_eq(email, "a+b@example.com");
        ck_assert_str_eq(history, "77");
        free(email);
        free(history);
        free(body);
    }
}
END_TEST

START_TEST(bad_pushes_are_refused_with_a_reason)
{
    const char *payloads[] = {
        "{\"historyId\":\"1\"}",                                               // no address
        "{\"emailAddress\":\"nobody\",\"historyId\":\"1\"}",                   // not an address
        "{\"emailAddress\":\"a b@c.d\",\"historyId\":\"1\"}",                  // space
        "{\"emailAddress\":\"a@b.c\"}",                                        // no historyId
        "{\"emailAddress\":\"a@b.c\",\"historyId\":\"12x\"}",                  // not digits
        "{\"emailAddress\":\"a@b.c\",\"historyId\":-5}",                       // negative
        "{\"emailAddress\":\"a@b.c\",\"historyId\":1.5}",                      // a real
        "{\"emailAddress\":\"a@b.c\",\"historyId\":\"99999999999999999999\"}", // > int64
        "not json",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *body = push_with(payloads[i], SB_B64_STD);
        char *email = (char *)"x", *history = (char *)"x";
        sb_err_t err = {0};
        ck_assert_msg(decode(body, &email, &history, &err) == -1, "accepted %s", payloads[i]);
        ck_assert_ptr_null(email);
        ck_assert_ptr_null(history);
        ck_assert_msg(err.msg[0] != '\0', "no reason for %s", payloads[i]);
        free(body);
    }
    const char *bodies[] = {"",
                            "{}",
                            "{\"message\":{}}",
                            "{\"message\":{\"data\":\"@@@\"}}",
                            "{\"message\":{\"data\":5}}",
                            "[1]"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char *email = NULL, *history = NULL;
        sb_err_t err = {0};
        ck_assert_msg(decode(bodies[i], &email, &history, &err) == -1, "accepted %s", bodies[i]);
    }
}
END_TEST

START_TEST(history_pages_from_the_fixtures)
{
    sb_gmail_ids_t ids;
    sb_gmail_ids_init(&ids);
    size_t len;
    char *page = sb_test_read_file(GMAIL_DIR "history-list.json", &len);
    char *next = NULL, *history = NULL;
    sb_err_t err = {0};
    ck_assert_int_eq(sb_gmail_history_page(page, len, &ids, &next, &history, &err), 0);
    ck_assert_str_eq(next, "09118438163478234691");
    ck_assert_str_eq(history, "1843562");
    ck_assert_uint_eq(ids.n, 2);
    free(next);
    free(history);
    free(page);
    page = sb_test_read_file(GMAIL_DIR "history-list-page2.json", &len);
    ck_assert_int_eq(sb_gmail_history_page(page, len, &ids, &next, &history, &err), 0);
    ck_assert_ptr_null(next); // the last page
    ck_assert_str_eq(history, "1843562");
    free(history);
    free(page);
    const char *want[] = {"19a6f3c2b1d04e01", "19a6f4aa01b2c3d4", "19a6f4d8e2a17c3b",
                          "19a6f5b0c9e3d214"};
    const char *records[] = {"1843517", "1843529", "1843541", "1843556"};
    ck_assert_uint_eq(ids.n, 4);
    for (size_t i = 0; i < 4; i++) {
        ck_assert_str_eq(ids.ids[i], want[i]);
        ck_assert_str_eq(ids.records[i], records[i]);
    }
    // The same page again adds nothing: each message once.
    page = sb_test_read_file(GMAIL_DIR "history-list.json", &len);
    ck_assert_int_eq(sb_gmail_history_page(page, len, &ids, &next, &history, &err), 0);
    ck_assert_uint_eq(ids.n, 4);
    free(next);
    free(history);
    free(page);
    sb_gmail_ids_release(&ids);
}
END_TEST

START_TEST(empty_page_drafts_and_garbage)
{
    sb_gmail_ids_t ids;
    sb_gmail_ids_init(&ids);
    size_t len;
    char *page = sb_test_read_file(GMAIL_DIR "history-list-empty.json", &len);
    char *next = NULL, *history = NULL;
    sb_err_t err = {0};
    ck_assert_int_eq(sb_gmail_history_page(page, len, &ids, &next, &history, &err), 0);
    ck_assert_uint_eq(ids.n, 0);
    ck_assert_ptr_null(next);
    ck_assert_str_eq(history, "1843562");
    free(history);
    free(page);
    const char *drafts = "{\"history\":[{\"id\":\"5\",\"messagesAdded\":["
                         "{\"message\":{\"id\":\"d1\",\"labelIds\":[\"DRAFT\"]}},"
                         "{\"message\":{\"id\":\"m/../x\"}},"
                         "{\"message\":{\"id\":\"ok1\",\"labelIds\":[\"INBOX\"]}}]}],"
                         "\"historyId\":6}";
    ck_assert_int_eq(sb_gmail_history_page(drafts, strlen(drafts), &ids, &next, &history, &err), 0);
    ck_assert_uint_eq(ids.n, 1); // not the draft, not an id that would escape the URL path
    ck_assert_str_eq(ids.ids[0], "ok1");
    ck_assert_str_eq(history, "6");
    free(history);
    const char *bad[] = {"", "[]", "{\"history\":{}}", "{\"history\":[]}",
                         "{\"historyId\":\"abc\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        ck_assert_msg(sb_gmail_history_page(bad[i], strlen(bad[i]), &ids, &next, &history, &err) ==
                          -1,
                      "accepted %s", bad[i]);
        ck_assert(err.msg[0] != '\0');
    }
    sb_gmail_ids_release(&ids);
}
END_TEST

START_TEST(full_sync_answers)
{
    sb_gmail_ids_t ids;
    sb_gmail_ids_init(&ids);
    sb_err_t err = {0};
    const char *list = "{\"messages\":[{\"id\":\"a1\",\"threadId\":\"t\"},{\"id\":\"b2\"},"
                       "{\"id\":\"a1\"}],\"resultSizeEstimate\":3}";
    ck_assert_int_eq(sb_gmail_message_list(list, strlen(list), &ids, &err), 0);
    ck_assert_uint_eq(ids.n, 2);
    ck_assert_ptr_null(ids.records[0]);
    ck_assert_int_eq(sb_gmail_message_list("{\"resultSizeEstimate\":0}", 24, &ids, &err), 0);
    ck_assert_int_eq(sb_gmail_message_list("{\"messages\":5}", 14, &ids, &err), -1);
    sb_gmail_ids_release(&ids);
    char *history = NULL;
    const char *profile = "{\"emailAddress\":\"a@b.c\",\"historyId\":\"1843999\"}";
    ck_assert_int_eq(sb_gmail_profile_history(profile, strlen(profile), &history, &err), 0);
    ck_assert_str_eq(history, "1843999");
    free(history);
    ck_assert_int_eq(sb_gmail_profile_history("{}", 2, &history, &err), -1);
    ck_assert_ptr_null(history);
}
END_TEST

static sb_gmail_message_t *
message(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, GMAIL_DIR "%s", file);
    size_t len;
    char *json = sb_test_read_file(path, &len);
    sb_err_t err = {0};
    sb_gmail_message_t *msg = sb_gmail_message_parse(json, len, &err);
    ck_assert_msg(msg != NULL, "%s: %s", file, err.msg);
    free(json);
    return msg;
}

static const char *
member(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

START_TEST(extra_from_the_fixture_messages)
{
    const char *files[] = {"message-full-plain.json", "message-full-multipart.json",
                           "message-with-attachment.json"};
    json_t *comms = json_array();
    for (size_t i = 0; i < 3; i++) {
        sb_gmail_message_t *msg = message(files[i]);
        json_array_append_new(comms, sb_gmail_comm_json(msg));
        sb_gmail_message_destroy(&msg);
    }
    char *text = sb_gmail_extra(comms, "support@example.com", "1843562", 0);
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    ck_assert_msg(doc != NULL, "extra is not JSON: %s", jerr.text);
    free(text);
    json_t *mb = json_object_get(doc, "mailbox");
    ck_assert_str_eq(member(mb, "email"), "support@example.com");
    ck_assert_str_eq(member(mb, "history_id"), "1843562");
    ck_assert(json_is_false(json_object_get(mb, "full_sync")));
    json_t *list = json_object_get(doc, "communications");
    ck_assert_uint_eq(json_array_size(list), 3);

    json_t *maria = json_array_get(list, 0);
    ck_assert_str_eq(member(maria, "channel"), "email");
    ck_assert_str_eq(member(maria, "provider"), "gmail");
    ck_assert_str_eq(member(maria, "direction"), "inbound");
    ck_assert_str_eq(member(maria, "external_id"), "19a6f3c2b1d04e01");
    ck_assert_str_eq(member(maria, "thread_id"), "19a6f3c2b1d04e01");
    ck_assert_str_eq(member(maria, "from_address"), "maria.lopez@example.com");
    ck_assert_str_eq(member(maria, "to_address"), "support@example.com");
    ck_assert_str_eq(member(maria, "subject"), "Where is order #48213?");
    ck_assert_str_eq(member(maria, "match_email"), "maria.lopez@example.com");  // the sender
    ck_assert_str_eq(member(maria, "occurred_at"), "2026-11-24T15:01:07.000Z"); // internalDate
    ck_assert(strstr(member(maria, "body"), "order #48213") != NULL);
    ck_assert(json_is_null(json_object_get(maria, "match_phone")));
    ck_assert(json_is_null(json_object_get(maria, "status")));

    json_t *dana = json_array_get(list, 1);
    ck_assert_str_eq(member(dana, "thread_id"), "19a6f1e7c0b9a852");
    ck_assert_str_eq(member(dana, "match_email"), "dana.whitfield@example.com");
    ck_assert_str_eq(member(dana, "subject"), "Re: Quote for annual plan");

    json_t *inv = json_array_get(list, 2);
    ck_assert_str_eq(member(inv, "from_address"), "billing@example.net");
    ck_assert_str_eq(member(inv, "match_email"), "billing@example.net");
    json_decref(doc);
}
END_TEST

START_TEST(outbound_matches_the_first_recipient)
{
    const char *json =
        "{\"id\":\"19a6f4aa01b2c3d4\",\"threadId\":\"t1\",\"labelIds\":[\"SENT\"],"
        "\"internalDate\":\"1795532790000\",\"payload\":{\"mimeType\":\"text/plain\","
        "\"headers\":[{\"name\":\"From\",\"value\":\"Example Support <support@example.com>\"},"
        "{\"name\":\"To\",\"value\":\"Maria Lopez <Maria.Lopez@Example.com>, b@example.org\"},"
        "{\"name\":\"Subject\",\"value\":\"Re: hi\"}],"
        "\"body\":{\"size\":2,\"data\":\"aGk\"}}}";
    sb_err_t err = {0};
    sb_gmail_message_t *msg = sb_gmail_message_parse(json, strlen(json), &err);
    ck_assert_msg(msg != NULL, "%s", err.msg);
    json_t *c = sb_gmail_comm_json(msg);
    ck_assert_str_eq(member(c, "direction"), "outbound");
    ck_assert_str_eq(member(c, "match_email"), "maria.lopez@example.com");
    ck_assert_str_eq(member(c, "to_address"), "maria.lopez@example.com, b@example.org");
    ck_assert_str_eq(member(c, "occurred_at"), "2026-11-24T15:06:30.000Z");
    ck_assert_str_eq(member(c, "body"), "hi");
    json_decref(c);
    sb_gmail_message_destroy(&msg);

    // No date, no recipient, no subject: nulls, never invented values.
    const char *bare = "{\"id\":\"x1\",\"labelIds\":[\"SENT\"]}";
    msg = sb_gmail_message_parse(bare, strlen(bare), &err);
    ck_assert_ptr_nonnull(msg);
    c = sb_gmail_comm_json(msg);
    ck_assert(json_is_null(json_object_get(c, "match_email")));
    ck_assert(json_is_null(json_object_get(c, "to_address")));
    ck_assert(json_is_null(json_object_get(c, "occurred_at")));
    ck_assert(json_is_null(json_object_get(c, "subject")));
    ck_assert(json_is_null(json_object_get(c, "thread_id")));
    ck_assert_str_eq(member(c, "body"), "");
    json_decref(c);
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(history_id_parse)
{
    uint64_t v = 0;
    json_t *j = json_string("1843562");
    ck_assert_int_eq(sb_gmail_history_id_parse(j, &v), 0);
    ck_assert_uint_eq(v, 1843562);
    json_decref(j);
    j = json_integer(1843562);
    ck_assert_int_eq(sb_gmail_history_id_parse(j, &v), 0);
    ck_assert_uint_eq(v, 1843562);
    json_decref(j);
    j = json_string("9223372036854775807");
    ck_assert_int_eq(sb_gmail_history_id_parse(j, &v), 0);
    json_decref(j);
    const char *bad[] = {"", "9223372036854775808", "1e5", " 1", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = json_string(bad[i]);
        ck_assert_msg(sb_gmail_history_id_parse(j, &v) == -1, "accepted \"%s\"", bad[i]);
        json_decref(j);
    }
    ck_assert_int_eq(sb_gmail_history_id_parse(NULL, &v), -1);
    j = json_real(1.0);
    ck_assert_int_eq(sb_gmail_history_id_parse(j, &v), -1);
    json_decref(j);
}
END_TEST

static Suite *
sb_enricher_gmail_suite(void)
{
    Suite *s = suite_create("enricher_gmail");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, fixture_pushes_decode);
    tcase_add_test(tc, base64url_and_unpadded_data_decode);
    tcase_add_test(tc, bad_pushes_are_refused_with_a_reason);
    tcase_add_test(tc, history_pages_from_the_fixtures);
    tcase_add_test(tc, empty_page_drafts_and_garbage);
    tcase_add_test(tc, full_sync_answers);
    tcase_add_test(tc, extra_from_the_fixture_messages);
    tcase_add_test(tc, outbound_matches_the_first_recipient);
    tcase_add_test(tc, history_id_parse);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_enricher_gmail_suite)
