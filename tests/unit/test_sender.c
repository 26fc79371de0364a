/* test_sender - the pure pieces of sb-sender: the RingCentral send body and answer (ids
 * above 2^53 kept exact), the message-store search that decides whether an SMS of unknown
 * fate was sent, the providers' error texts, the Gmail send body, and the backoff. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "outbox.h"
#include "send_email.h"
#include "send_sms.h"
#include "sender.h"
#include "sb_b64.h"
#include "sb_mem.h"
#include "sb_check.h"
#include "test_util.h"
#include "sb_banned.h"

static sb_outbox_job_t
sms_job(const char *text)
{
    sb_outbox_job_t job;
    memset(&job, 0, sizeof job);
    job.id = 9;
    snprintf(job.channel, sizeof job.channel, "sms");
    job.from_address = sb_xstrdup("+16505550100");
    job.to_address = sb_xstrdup("+14155550134");
    job.body = sb_xstrdup(text);
    job.first_sending_ms = 1795532400000; // 2026-11-24T15:00:00Z
    return job;
}

START_TEST(sms_body_is_the_fixture_request)
{
    size_t len;
    char *fixture = sb_test_fixture("ringcentral/sms-send-request.json", &len);
    json_t *want = json_loadb(fixture, len, 0, NULL);
    const char *text = json_string_value(json_object_get(want, "text"));
    char *body = sb_send_sms_body("+16505550100", "+14155550134", text);
    json_t *got = json_loads(body, 0, NULL);
    ck_assert_msg(json_equal(got, want), "body %s", body);
    json_decref(got);
    json_decref(want);
    free(body);
    free(fixture);
}
END_TEST

START_TEST(sms_answer_keeps_big_ids_exact)
{
    size_t len;
    char *fixture = sb_test_fixture("ringcentral/sms-send-response.json", &len);
    json_t *doc = json_loadb(fixture, len, 0, NULL);
    sb_sms_record_t rec;
    ck_assert_int_eq(sb_send_sms_record(doc, "1", &rec), 0);
    ck_assert_str_eq(rec.id, "3062991514023");
    ck_assert_str_eq(rec.conversation_id, "7876416245344257449"); // > 2^53
    ck_assert_str_eq(rec.status, "Queued");
    ck_assert_str_eq(rec.creation_time, "2026-11-24T15:04:51.000Z");
    ck_assert_str_eq(rec.from, "+16505550100");
    ck_assert_str_eq(rec.to, "+14155550134");
    ck_assert_str_eq(rec.direction, "Outbound");
    sb_sms_record_release(&rec);
    json_decref(doc);
    free(fixture);
    // A string id works; an id that is not a number does not.
    doc = json_loads("{\"id\":\"9007199254740993\",\"conversationId\":9007199254740995}", 0, NULL);
    ck_assert_int_eq(sb_send_sms_record(doc, "1", &rec), 0);
    ck_assert_str_eq(rec.id, "9007199254740993");
    ck_assert_str_eq(rec.conversation_id, "9007199254740995");
    sb_sms_record_release(&rec);
    json_decref(doc);
    doc = json_loads("{\"id\":1.5}", 0, NULL);
    ck_assert_int_eq(sb_send_sms_record(doc, "1", &rec), -1);
    sb_sms_record_release(&rec);
    json_decref(doc);
}
END_TEST

static const char s_store_page[] =
    "{\"records\":["
    // newer copy of our text, ours
    "{\"id\":3062991600010,\"direction\":\"Outbound\",\"type\":\"SMS\","
    "\"creationTime\":\"2026-11-24T15:05:00.000Z\",\"from\":{\"phoneNumber\":\"(650) 555-0100\"},"
    "\"to\":[{\"phoneNumber\":\"+14155550134\"}],\"subject\":\"See you at 6\"},"
    // same text, other recipient
    "{\"id\":3062991600009,\"direction\":\"Outbound\",\"creationTime\":"
    "\"2026-11-24T15:04:00.000Z\",\"from\":{\"phoneNumber\":\"+16505550100\"},"
    "\"to\":[{\"phoneNumber\":\"+13125550142\"}],\"subject\":\"See you at 6\"},"
    // inbound from the customer with that text
    "{\"id\":3062991600008,\"direction\":\"Inbound\",\"creationTime\":"
    "\"2026-11-24T15:03:00.000Z\",\"from\":{\"phoneNumber\":\"+14155550134\"},"
    "\"to\":[{\"phoneNumber\":\"+16505550100\"}],\"subject\":\"See you at 6\"},"
    // older copy of our text, ours too (found first: the oldest)
    "{\"id\":\"3062991600007\",\"direction\":\"Outbound\",\"creationTime\":"
    "\"2026-11-24T15:02:00.000Z\",\"from\":{\"phoneNumber\":\"+16505550100\"},"
    "\"to\":[{\"phoneNumber\":\"4155550134\"}],\"subject\":\"See you at 6\"},"
    // before the search window
    "{\"id\":3062991600001,\"direction\":\"Outbound\",\"creationTime\":"
    "\"2026-11-24T14:50:00.000Z\",\"from\":{\"phoneNumber\":\"+16505550100\"},"
    "\"to\":[{\"phoneNumber\":\"+14155550134\"}],\"subject\":\"See you at 6\"},"
    // another text
    "{\"id\":3062991600011,\"direction\":\"Outbound\",\"creationTime\":"
    "\"2026-11-24T15:06:00.000Z\",\"from\":{\"phoneNumber\":\"+16505550100\"},"
    "\"to\":[{\"phoneNumber\":\"+14155550134\"}],\"subject\":\"See you at 7\"}],"
    "\"paging\":{\"page\":1,\"totalPages\":2,\"perPage\":6},\"navigation\":{}}";

START_TEST(store_search_finds_only_our_message_oldest_first)
{
    sb_outbox_job_t job = sms_job("See you at 6");
    sb_sms_record_t out[8];
    int more = 0;
    int64_t since = job.first_sending_ms - SB_SEND_SMS_SKEW_MS; // 14:59
    size_t n =
        sb_send_sms_matches(s_store_page, strlen(s_store_page), &job, "1", since, out, 8, &more);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(out[0].id, "3062991600007");
    ck_assert_str_eq(out[1].id, "3062991600010");
    ck_assert_int_eq(more, 1); // page 1 of 2
    for (size_t i = 0; i < n; i++)
        sb_sms_record_release(&out[i]);
    // At most max, and nothing from garbage.
    n = sb_send_sms_matches(s_store_page, strlen(s_store_page), &job, "1", since, out, 1, &more);
    ck_assert_uint_eq(n, 1);
    sb_sms_record_release(&out[0]);
    ck_assert_uint_eq(sb_send_sms_matches("not json", 8, &job, "1", since, out, 8, &more), 0);
    ck_assert_int_eq(more, 0);
    sb_outbox_job_release(&job);
}
END_TEST

START_TEST(provider_errors_become_short_messages)
{
    const char *rc = "{\"errorCode\":\"CMN-101\",\"message\":\"Parameter [to.phoneNumber] value "
                     "is invalid\",\"errors\":[{\"errorCode\":\"CMN-101\"}]}";
    char *t = sb_send_rc_error(400, rc, strlen(rc));
    ck_assert_str_eq(t, "HTTP 400 CMN-101: Parameter [to.phoneNumber] value is invalid");
    free(t);
    const char *nested =
        "{\"errors\":[{\"errorCode\":\"MSG-240\",\"message\":\"No SMS feature\"}]}";
    t = sb_send_rc_error(403, nested, strlen(nested));
    ck_assert_str_eq(t, "HTTP 403 MSG-240: No SMS feature");
    free(t);
    t = sb_send_rc_error(502, "<html>bad gateway</html>", 24);
    ck_assert_str_eq(t, "HTTP 502");
    free(t);
    const char *g = "{\"error\":{\"code\":400,\"message\":\"Invalid To header\","
                    "\"status\":\"INVALID_ARGUMENT\"}}";
    t = sb_send_google_error(400, g, strlen(g));
    ck_assert_str_eq(t, "HTTP 400 INVALID_ARGUMENT: Invalid To header");
    free(t);
    const char *oauth = "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been "
                        "expired or revoked.\"}";
    t = sb_send_google_error(400, oauth, strlen(oauth));
    ck_assert_str_eq(t, "HTTP 400 invalid_grant: Token has been expired or revoked.");
    free(t);
}
END_TEST

START_TEST(gmail_send_body_is_unpadded_base64url_with_thread)
{
    const char raw[] = "Subject: ?"
                       "?>\r\n\r\n\xc3\xbc?>>\r\n"; // bytes that give '-' and '_'
    char *body = sb_send_email_body(raw, strlen(raw), "19a6f3c2b1d04e01");
    json_t *doc = json_loads(body, 0, NULL);
    const char *b64 = json_string_value(json_object_get(doc, "raw"));
    ck_assert_ptr_nonnull(b64);
    ck_assert_ptr_null(strpbrk(b64, "+/="));
    size_t n = 0;
    unsigned char *back = sb_b64_decode(b64, strlen(b64), SB_B64_URL | SB_B64_NO_PAD, &n);
    ck_assert_uint_eq(n, strlen(raw));
    ck_assert_mem_eq(back, raw, n);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "threadId")), "19a6f3c2b1d04e01");
    free(back);
    json_decref(doc);
    free(body);
    body = sb_send_email_body("x", 1, NULL);
    ck_assert_ptr_null(strstr(body, "threadId"));
    free(body);
}
END_TEST

START_TEST(email_of_a_job_carries_the_parents_headers)
{
    sb_outbox_job_t job;
    memset(&job, 0, sizeof job);
    job.id = 31;
    snprintf(job.channel, sizeof job.channel, "email");
    job.from_address = sb_xstrdup("support@example.com");
    job.to_address = sb_xstrdup("maria.lopez@example.com");
    job.subject = sb_xstrdup("Re: Where is order #48213?");
    job.body = sb_xstrdup("Shipped.");
    job.message_id = sb_xstrdup("<sb.31.0a0b@example.com>");
    job.parent_message_id = sb_xstrdup("<20261124150105.4F2A1C0B7E@mail.example.com>");
    job.parent_references = sb_xstrdup("<root@mail.example.com>");
    size_t len = 0;
    char *refs = NULL, *why = NULL;
    char *raw = sb_send_email_message(&job, 1795532790000, &len, &refs, &why);
    ck_assert_msg(raw != NULL, "%s", why ? why : "");
    ck_assert_ptr_nonnull(strstr(raw, "\r\nIn-Reply-To: <20261124150105.4F2A1C0B7E@mail.example"
                                      ".com>\r\n"));
    ck_assert_ptr_nonnull(strstr(raw, "\r\nReferences: <root@mail.example.com>\r\n "
                                      "<20261124150105.4F2A1C0B7E@mail.example.com>\r\n"));
    ck_assert_ptr_nonnull(strstr(raw, "\r\nX-Switchboard-Outbox-Id: 31\r\n"));
    ck_assert_str_eq(refs, "<root@mail.example.com> <20261124150105.4F2A1C0B7E@mail.example.com>");
    free(refs);
    free(raw);
    free(job.to_address);
    job.to_address = sb_xstrdup("not an address");
    raw = sb_send_email_message(&job, 0, &len, &refs, &why);
    ck_assert_ptr_null(raw);
    ck_assert_ptr_nonnull(strstr(why, "recipient"));
    free(why);
    sb_outbox_job_release(&job);
}
END_TEST

START_TEST(backoff_doubles_with_jitter_and_honours_retry_after)
{
    for (uint64_t rnd = 0; rnd < 1000; rnd += 37) {
        int64_t first = sb_sender_backoff_ms(1, 2000, 300000, 0, rnd);
        ck_assert_int_ge(first, 1000);
        ck_assert_int_le(first, 2000);
        int64_t third = sb_sender_backoff_ms(3, 2000, 300000, 0, rnd);
        ck_assert_int_ge(third, 4000);
        ck_assert_int_le(third, 8000);
        int64_t capped = sb_sender_backoff_ms(40, 2000, 300000, 0, rnd);
        ck_assert_int_ge(capped, 150000);
        ck_assert_int_le(capped, 300000);
    }
    ck_assert_int_eq(sb_sender_backoff_ms(1, 2000, 300000, 45000, 7), 45000);
}
END_TEST

static Suite *
sb_sender_suite(void)
{
    Suite *s = suite_create("sender");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, sms_body_is_the_fixture_request);
    tcase_add_test(tc, sms_answer_keeps_big_ids_exact);
    tcase_add_test(tc, store_search_finds_only_our_message_oldest_first);
    tcase_add_test(tc, provider_errors_become_short_messages);
    tcase_add_test(tc, gmail_send_body_is_unpadded_base64url_with_thread);
    tcase_add_test(tc, email_of_a_job_carries_the_parents_headers);
    tcase_add_test(tc, backoff_doubles_with_jitter_and_honours_retry_after);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_sender_suite)
