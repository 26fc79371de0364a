/* test_renewer - the renewer's pure pieces: durations (RENEW_BEFORE ...), the backoff with
 * jitter, the users.watch request and answer (shared/fixtures/gmail/watch-*.json), the
 * RingCentral subscription filters of the fixtures, the create body, SubscriptionInfo
 * answers (create, renew, Blacklisted fixtures), portable filters, tokens and their
 * fingerprints, and the config checks. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gmail_watch.h"
#include "rc_subscriptions.h"
#include "renewer.h"
#include "renewer_db.h"
#include "sb_check.h"
#include "test_util.h"
#include "sb_mem.h"
#include "sb_banned.h"

#define RC_DIR SB_FIXTURES_DIR "/ringcentral/"
#define GMAIL_DIR SB_FIXTURES_DIR "/gmail/"

START_TEST(durations_parse_with_units_and_bounds)
{
    const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"24h", 86400000}, {"90", 90000},     {"90s", 90000},
                {"15m", 900000},   {"2d", 172800000}, {"250ms", 250}};
    sb_err_t err = {0};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        ck_assert_msg(sb_renewer_duration_parse("X", good[i].text, 0, INT64_MAX / 4, &ms, &err) ==
                          0,
                      "%s: %s", good[i].text, err.msg);
        ck_assert_int_eq(ms, good[i].ms);
    }
    const char *bad[] = {"", "h", "-1h", "1x", "1 h", "1.5h", "24H", "99999999999999999999d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 7;
        ck_assert_msg(
            sb_renewer_duration_parse("RENEW_BEFORE", bad[i], 0, INT64_MAX / 4, &ms, &err) != 0,
            "\"%s\" accepted", bad[i]);
        ck_assert_int_eq(ms, 7);
        ck_assert_msg(strstr(err.msg, "RENEW_BEFORE") != NULL, "%s", err.msg);
    }
    int64_t ms = 0;
    ck_assert_int_ne(sb_renewer_duration_parse("X", "30s", 60000, 120000, &ms, &err), 0);
    ck_assert_int_eq(sb_renewer_duration_parse("X", "2m", 60000, 120000, &ms, &err), 0);
    ck_assert_int_eq(ms, 120000);
}
END_TEST

START_TEST(backoff_doubles_with_jitter_up_to_the_cap)
{
    // unit 0: half the wait; unit close to 1: the full wait.
    ck_assert_int_eq(sb_renewer_backoff_ms(1, 30000, 3600000, 0.0), 15000);
    ck_assert_int_eq(sb_renewer_backoff_ms(1, 30000, 3600000, 0.999999), 29999);
    ck_assert_int_eq(sb_renewer_backoff_ms(2, 30000, 3600000, 0.0), 30000);
    ck_assert_int_eq(sb_renewer_backoff_ms(3, 30000, 3600000, 0.0), 60000);
    ck_assert_int_eq(sb_renewer_backoff_ms(8, 30000, 3600000, 0.0), 1800000);
    ck_assert_int_eq(sb_renewer_backoff_ms(9, 30000, 3600000, 0.0), 1800000); // capped
    ck_assert_int_eq(sb_renewer_backoff_ms(1000, 30000, 3600000, 0.5), 2700000);
    ck_assert_int_eq(sb_renewer_backoff_ms(1, 30000, 3600000, 7.0), 15000); // out of range
    for (int i = 0; i < 1000; i++) {
        double u = sb_renewer_random_unit();
        ck_assert(u >= 0.0 && u < 1.0);
    }
}
END_TEST

START_TEST(watch_request_matches_the_fixture)
{
    char *body = sb_gmail_watch_body("projects/example-project/topics/gmail-push");
    json_t *got = json_loads(body, 0, NULL);
    json_t *want = json_load_file(GMAIL_DIR "watch-request.json", 0, NULL);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(want);
    ck_assert_msg(json_equal(got, want), "body %s", body);
    json_decref(got);
    json_decref(want);
    free(body);
    char *url = sb_gmail_watch_url("http://127.0.0.1:9", "Support+x@Example.com", "watch");
    ck_assert_str_eq(url, "http://127.0.0.1:9/gmail/v1/users/Support+x@Example.com/watch");
    free(url);
    url = sb_gmail_watch_url("https://g", "a b/c@x", "stop");
    ck_assert_str_eq(url, "https://g/gmail/v1/users/a%20b%2Fc@x/stop");
    free(url);
}
END_TEST

START_TEST(watch_answer_is_parsed)
{
    size_t len;
    char *body = sb_test_read_file(GMAIL_DIR "watch-response.json", &len);
    sb_gmail_watch_info_t info;
    sb_err_t err = {0};
    ck_assert_msg(sb_gmail_watch_parse(body, len, &info, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(info.history_id, "1843500");
    ck_assert_int_eq(info.expiration_ms, 1796137200000LL);
    free(body);
    const char *numbers = "{\"historyId\": 42, \"expiration\": 1796137200001}";
    ck_assert_int_eq(sb_gmail_watch_parse(numbers, strlen(numbers), &info, &err), 0);
    ck_assert_str_eq(info.history_id, "42");
    ck_assert_int_eq(info.expiration_ms, 1796137200001LL);
    const char *bad[] = {"",
                         "[]",
                         "{\"historyId\":\"1\"}",
                         "{\"historyId\":\"x\",\"expiration\":\"1\"}",
                         "{\"historyId\":\"1\",\"expiration\":\"-5\"}",
                         "{\"historyId\":-1,\"expiration\":\"5\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(sb_gmail_watch_parse(bad[i], strlen(bad[i]), &info, &err) != 0, "accepted %s",
                      bad[i]);
    ck_assert_msg(strstr(err.msg, "users.watch") != NULL, "%s", err.msg);
}
END_TEST

static void
s_filters_equal_fixture(sb_rc_sub_kind_t kind, const char *file)
{
    json_t *want = json_load_file(file, 0, NULL);
    ck_assert_ptr_nonnull(want);
    json_t *filters = sb_rc_sub_filters(kind);
    ck_assert_msg(json_equal(filters, json_object_get(want, "eventFilters")), "%s", file);
    // The whole request, given the fixture's address and token, is the fixture.
    const json_t *mode = json_object_get(want, "deliveryMode");
    char *body =
        sb_rc_sub_create_body(filters, json_string_value(json_object_get(mode, "address")),
                              json_string_value(json_object_get(mode, "verificationToken")));
    json_t *got = json_loads(body, 0, NULL);
    ck_assert_msg(json_equal(got, want), "body %s", body);
    json_decref(got);
    free(body);
    json_decref(filters);
    json_decref(want);
}

START_TEST(subscription_requests_match_the_fixtures)
{
    s_filters_equal_fixture(SB_RC_SUB_SMS, RC_DIR "subscription-create-request.json");
    s_filters_equal_fixture(SB_RC_SUB_CALL, RC_DIR "subscription-create-request-calls.json");
    json_t *sms = sb_rc_sub_filters(SB_RC_SUB_SMS), *call = sb_rc_sub_filters(SB_RC_SUB_CALL);
    ck_assert_str_eq(sb_rc_sub_kind_name(sms), "sms");
    ck_assert_str_eq(sb_rc_sub_kind_name(call), "call");
    json_t *none = json_pack("[s]", "/restapi/v1.0/subscription/~?threshold=86400");
    ck_assert_str_eq(sb_rc_sub_kind_name(none), "other");
    json_decref(none);
    json_decref(sms);
    json_decref(call);
}
END_TEST

START_TEST(subscription_answers_are_parsed)
{
    const struct {
        const char *file;
        const char *status;
        const char *expires;
        int dead;
    } cases[] = {
        {RC_DIR "subscription-create-response.json", "Active", "2026-12-01T14:55:02.573Z", 0},
        {RC_DIR "subscription-renew-response.json", "Active", "2026-12-07T14:55:03.120Z", 0},
        {RC_DIR "subscription-blacklisted.json", "Blacklisted", "2026-12-01T14:55:02.573Z", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *body = sb_test_read_file(cases[i].file, &len);
        sb_rc_sub_info_t info;
        sb_err_t err = {0};
        ck_assert_msg(sb_rc_sub_parse(body, len, &info, &err) == 0, "%s: %s", cases[i].file,
                      err.msg);
        ck_assert_str_eq(info.id, "7f3c2a9e-4b1d-4e8a-9c61-2d5f0b8e7a13");
        ck_assert_str_eq(info.status, cases[i].status);
        ck_assert_str_eq(info.expiration_time, cases[i].expires);
        ck_assert_int_eq(sb_rc_sub_status_dead(info.status), cases[i].dead);
        free(body);
    }
    ck_assert(sb_rc_sub_status_dead("Suspended"));
    ck_assert(!sb_rc_sub_status_dead(""));
    ck_assert(!sb_rc_sub_status_dead(NULL));
    sb_rc_sub_info_t info;
    sb_err_t err = {0};
    ck_assert_int_ne(sb_rc_sub_parse("{\"status\":\"Active\"}", 19, &info, &err), 0);
    ck_assert_int_ne(sb_rc_sub_parse("nope", 4, &info, &err), 0);
}
END_TEST

START_TEST(filters_of_a_recreated_subscription_name_no_old_id)
{
    size_t len;
    char *body = sb_test_read_file(RC_DIR "subscription-blacklisted.json", &len);
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *portable = sb_rc_sub_filters_portable(json_object_get(doc, "eventFilters"));
    ck_assert_int_eq(json_array_size(portable), 3);
    ck_assert_str_eq(json_string_value(json_array_get(portable, 2)),
                     "/restapi/v1.0/subscription/~?threshold=86400&interval=21600");
    // The others are kept as they were (account and extension ids included).
    ck_assert_str_eq(json_string_value(json_array_get(portable, 0)),
                     "/restapi/v1.0/account/401234567008/extension/401234569008/message-store/"
                     "instant?type=SMS");
    json_t *again = sb_rc_sub_filters_portable(portable); // stable
    ck_assert(json_equal(again, portable));
    json_decref(again);
    json_decref(portable);
    json_decref(doc);
    free(body);
}
END_TEST

START_TEST(tokens_are_random_and_fingerprinted)
{
    char *a = sb_rc_sub_token_generate(), *b = sb_rc_sub_token_generate();
    ck_assert_int_eq(strlen(a), strlen(SB_RC_SUB_TOKEN_PREFIX) + SB_RC_SUB_TOKEN_CHARS);
    ck_assert(strncmp(a, SB_RC_SUB_TOKEN_PREFIX, 3) == 0);
    ck_assert_str_ne(a, b);
    for (const char *p = a + 3; *p; p++)
        ck_assert_msg(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", *p),
                      "character %c", *p);
    char fp[65];
    sb_rc_sub_token_fingerprint("abc", fp); // FIPS 180-2 example
    ck_assert_str_eq(fp, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(a);
    free(b);
}
END_TEST

START_TEST(config_check_reports_every_problem)
{
    sb_renewer_config_t conf;
    memset(&conf, 0, sizeof conf);
    conf.log_level = (char *)"loud";
    conf.renew_before = (char *)"1 day";
    conf.renew_interval = (char *)"60s";
    conf.backoff_min = (char *)"1h";
    conf.backoff_max = (char *)"1m";
    conf.check_interval = (char *)"1h";
    conf.google_token_url = (char *)"https://oauth2.googleapis.com/token";
    conf.gmail_base_url = (char *)"ftp://x";
    conf.rc_server_url = (char *)"https://platform.ringcentral.com";
    conf.rc_client_id = (char *)"id";
    char *text = NULL;
    size_t size = 0;
    FILE *problems = open_memstream(&text, &size);
    ck_assert_int_eq(sb_renewer_config_check(&conf, problems), -1);
    fclose(problems);
    ck_assert_msg(strstr(text, "RENEW_BEFORE=\"1 day\"") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "LOG_LEVEL=\"loud\"") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "GMAIL_API_BASE_URL=\"ftp://x\"") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "RINGCENTRAL_JWT") != NULL, "%s", text);
    free(text);
    conf.log_level = (char *)"info";
    conf.renew_before = (char *)"24h";
    conf.backoff_min = (char *)"30s";
    conf.backoff_max = (char *)"1h";
    conf.gmail_base_url = (char *)"https://gmail.googleapis.com";
    conf.rc_client_id = NULL;
    problems = open_memstream(&text, &size);
    ck_assert_int_eq(sb_renewer_config_check(&conf, problems), 0);
    fclose(problems);
    free(text);
    ck_assert_int_eq(conf.renew_before_ms, 86400000);
    ck_assert_int_eq(conf.interval_ms, 60000);
    ck_assert_int_eq(conf.backoff_min_ms, 30000);
    ck_assert_int_eq(conf.backoff_max_ms, 3600000);
}
END_TEST

static Suite *
sb_renewer_suite(void)
{
    Suite *s = suite_create("renewer");
    TCase *tc = tcase_create("pure");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, durations_parse_with_units_and_bounds);
    tcase_add_test(tc, backoff_doubles_with_jitter_up_to_the_cap);
    tcase_add_test(tc, watch_request_matches_the_fixture);
    tcase_add_test(tc, watch_answer_is_parsed);
    tcase_add_test(tc, subscription_requests_match_the_fixtures);
    tcase_add_test(tc, subscription_answers_are_parsed);
    tcase_add_test(tc, filters_of_a_recreated_subscription_name_no_old_id);
    tcase_add_test(tc, tokens_are_random_and_fingerprinted);
    tcase_add_test(tc, config_check_reports_every_problem);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_renewer_suite)
