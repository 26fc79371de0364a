/* test_verifier - sb_verifier_check on envelopes built from the shared fixtures (verdict,
 * reason, headers redacted), the Gmail ?token= rules, unknown sources, and one turn of
 * the stage over inproc sockets (events in, verdicts out, malformed dropped, heartbeat). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include <jansson.h>
#include "sb_check.h"
#include "test_util.h"
#include "sb_envelope.h"
#include "sb_mem.h"
#include "verifier.h"
#include "sb_banned.h"

#define RC_DIR SB_FIXTURES_DIR "/ringcentral/"
#define TOKEN "vt-3kQ9xW7pLm2Zr8Yc4Tn6Bd1Fh5Gj0Sa" // notification-request-headers.txt
#define SECRET "test-webhook-secret-DO-NOT-USE"    // hmac-signature.txt
#define SIGNATURE "43e449170ceac8cd882be6a71c37e52dbfb7988662b6d5aa1b7cadc22dfc19ae"
#define PUSH_TOKEN "gp+tok/9=Zx" // needs URL-encoding in a query string

static sb_verifier_config_t s_conf;
// Writable copies: the config struct holds char * (sb_config_load allocates them).
static char s_token[] = TOKEN, s_secret[] = SECRET, s_push_token[] = PUSH_TOKEN;
static char s_pull[] = "@inproc://verifier-test-in", s_push[] = ">inproc://verifier-test-out";
static char s_ack[] = ">inproc://verifier-test-hb", s_instance[] = "test-instance";
static char s_bad_pull[] = "@nonsense://x";

static void
setup(void)
{
    memset(&s_conf, 0, sizeof s_conf);
    s_conf.rc_verification_token = s_token;
    s_conf.rc_webhook_secret = s_secret;
    s_conf.gmail_push_token = s_push_token;
    s_conf.pull_endpoint = s_pull;
    s_conf.push_endpoint = s_push;
}

// An envelope as the ingress makes it: body = sms-inbound.json, headers from pairs.
static sb_envelope_t *
event_new(const char *source, const char *const *headers)
{
    sb_envelope_t *env = sb_envelope_new();
    sb_envelope_set(&env->event_id, "test:1:42");
    sb_envelope_set(&env->source, source);
    env->received_at_ms = 1795532531000;
    free(env->body);
    env->body = sb_test_read_file(RC_DIR "sms-inbound.json", &env->body_len);
    json_t *obj = json_object();
    json_object_set_new(obj, "content-type", json_string("application/json; charset=UTF-8"));
    for (size_t i = 0; headers && headers[i]; i += 2)
        json_object_set_new(obj, headers[i], json_string(headers[i + 1]));
    char *text = json_dumps(obj, JSON_COMPACT);
    sb_envelope_set(&env->headers, text);
    free(text);
    json_decref(obj);
    return env;
}

static const char *
header(const sb_envelope_t *env, const char *name, json_t **keep)
{
    *keep = json_loads(env->headers, 0, NULL);
    ck_assert_msg(json_is_object(*keep), "headers are not an object: %s", env->headers);
    return json_string_value(json_object_get(*keep, name));
}

// No configured secret, in any spelling, and (when the header kept its name) no signature.
static void
assert_no_secret(const sb_envelope_t *env)
{
    const char *secrets[] = {TOKEN, SECRET, PUSH_TOKEN, "gp%2Btok%2F9%3DZx"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        ck_assert_msg(strstr(env->headers, secrets[i]) == NULL, "secret %zu left in %s", i,
                      env->headers);
    json_t *headers = json_loads(env->headers, 0, NULL);
    const char *sig = json_string_value(json_object_get(headers, "x-ringcentral-signature"));
    ck_assert_msg(sig == NULL || strcmp(sig, "[redacted]") == 0, "signature left in %s",
                  env->headers);
    json_decref(headers);
}

START_TEST(ringcentral_token_accepted_and_redacted)
{
    const char *h[] = {"verification-token", TOKEN, NULL};
    sb_envelope_t *env = event_new("ringcentral_sms", h);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), 0);
    ck_assert_str_eq(env->verdict, "accepted");
    ck_assert_ptr_null(env->reason);
    json_t *keep;
    ck_assert_str_eq(header(env, "verification-token", &keep), "[redacted]");
    ck_assert_str_eq(json_string_value(json_object_get(keep, "content-type")),
                     "application/json; charset=UTF-8");
    json_decref(keep);
    assert_no_secret(env);
    ck_assert_uint_eq(env->body_len, 1414); // the body goes on untouched
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(ringcentral_call_signature_accepted_and_redacted)
{
    s_conf.rc_verification_token = NULL;
    const char *h[] = {"x-ringcentral-signature", "sha256=" SIGNATURE, NULL};
    sb_envelope_t *env = event_new("ringcentral_call", h);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), 0);
    ck_assert_str_eq(env->verdict, "accepted");
    json_t *keep;
    ck_assert_str_eq(header(env, "x-ringcentral-signature", &keep), "[redacted]");
    json_decref(keep);
    assert_no_secret(env);
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(ringcentral_bad_token_rejected_and_redacted)
{
    const char *h[] = {"verification-token", "vt-guess", NULL};
    sb_envelope_t *env = event_new("ringcentral_sms", h);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->verdict, "rejected");
    ck_assert_str_eq(env->reason, "bad_verification_token");
    ck_assert_ptr_null(strstr(env->headers, "vt-guess")); // what was tried is not kept either
    sb_envelope_destroy(&env);

    env = event_new("ringcentral_call", NULL);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->reason, "missing_verification_token");
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(ringcentral_unconfigured_fails_closed)
{
    s_conf.rc_verification_token = NULL;
    s_conf.rc_webhook_secret = NULL;
    const char *h[] = {"verification-token", TOKEN, NULL};
    sb_envelope_t *env = event_new("ringcentral_sms", h);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->reason, "no_verification_configured");
    ck_assert_ptr_null(strstr(env->headers, TOKEN));
    sb_envelope_destroy(&env);

    s_conf.allow_unverified = 1;
    env = event_new("ringcentral_sms", NULL);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), 0);
    ck_assert_str_eq(env->verdict, "accepted");
    ck_assert_str_eq(env->reason, "unverified_allowed");
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(secret_under_another_header_is_scrubbed)
{
    const char *h[] = {
        "verification-token",      TOKEN, "x-forwarded-token", "Bearer " TOKEN, "user-agent",
        "RingCentral-Webhook/8.3", NULL};
    sb_envelope_t *env = event_new("ringcentral_sms", h);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), 0);
    assert_no_secret(env);
    json_t *keep;
    ck_assert_str_eq(header(env, "x-forwarded-token", &keep), "[redacted]");
    ck_assert_str_eq(json_string_value(json_object_get(keep, "user-agent")),
                     "RingCentral-Webhook/8.3");
    json_decref(keep);
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(unreadable_headers_are_dropped)
{
    sb_envelope_t *env = event_new("ringcentral_sms", NULL);
    sb_envelope_set(&env->headers, "{\"verification-token\":\"" TOKEN "\""); // cut short
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->reason, "missing_verification_token");
    ck_assert_str_eq(env->headers, "{}");
    sb_envelope_set(&env->headers, "[\"" TOKEN "\"]"); // JSON, but not an object
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->headers, "{}");
    sb_envelope_set(&env->headers, NULL);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->headers, "{}");
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(gmail_push_token_rules)
{
    const char *good[] = {":query", "x=1&token=gp%2Btok%2F9%3DZx&y=2", NULL};
    sb_envelope_t *env = event_new("gmail_push", good);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), 0);
    ck_assert_str_eq(env->verdict, "accepted");
    ck_assert_ptr_null(env->reason);
    json_t *keep;
    ck_assert_str_eq(header(env, ":query", &keep), "x=1&token=[redacted]&y=2");
    json_decref(keep);
    assert_no_secret(env);
    sb_envelope_destroy(&env);

    const char *raw[] = {":query", "token=gp+tok/9=Zx", NULL}; // '+' decodes to a space
    env = event_new("gmail_push", raw);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->reason, "bad_push_token");
    sb_envelope_destroy(&env);

    const char *other[] = {":query", "tokenx=gp%2Btok%2F9%3DZx", NULL};
    env = event_new("gmail_push", other);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->reason, "bad_push_token");
    assert_no_secret(env);
    sb_envelope_destroy(&env);

    env = event_new("gmail_push", NULL);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->reason, "bad_push_token");
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(gmail_unconfigured_fails_closed)
{
    s_conf.gmail_push_token = NULL;
    const char *h[] = {":query", "token=anything", "authorization", "Bearer x.y.z", NULL};
    sb_envelope_t *env = event_new("gmail_push", h);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->reason, "no_verification_configured");
    json_t *keep;
    ck_assert_str_eq(header(env, "authorization", &keep), "[redacted]");
    json_decref(keep);
    sb_envelope_destroy(&env);

    s_conf.allow_unverified = 1;
    env = event_new("gmail_push", h);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), 0);
    ck_assert_str_eq(env->reason, "unverified_allowed");
    sb_envelope_destroy(&env);

    // With a token configured the switch does not apply: a wrong token stays rejected.
    s_conf.gmail_push_token = s_push_token;
    env = event_new("gmail_push", h);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->reason, "bad_push_token");
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(unknown_source_rejected)
{
    s_conf.allow_unverified = 1;
    const char *h[] = {"verification-token", TOKEN, NULL};
    sb_envelope_t *env = event_new("ringcentral_fax", h);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->verdict, "rejected");
    ck_assert_str_eq(env->reason, "unknown_source");
    assert_no_secret(env);
    sb_envelope_set(&env->source, NULL);
    ck_assert_int_eq(sb_verifier_check(&s_conf, NULL, env), -1);
    ck_assert_str_eq(env->reason, "unknown_source");
    sb_envelope_destroy(&env);
}
END_TEST

START_TEST(query_param_decodes)
{
    char *v = sb_verifier_query_param("a=1&token=x%2By+z&token=second", "token");
    ck_assert_str_eq(v, "x+y z");
    free(v);
    v = sb_verifier_query_param("?token=abc", "token");
    ck_assert_str_eq(v, "abc");
    free(v);
    v = sb_verifier_query_param("token", "token");
    ck_assert_str_eq(v, "");
    free(v);
    ck_assert_ptr_null(sb_verifier_query_param("tokens=abc&xtoken=abc", "token"));
    ck_assert_ptr_null(sb_verifier_query_param("token=ab%2", "token"));   // cut escape
    ck_assert_ptr_null(sb_verifier_query_param("token=ab%zz", "token"));  // not hex
    ck_assert_ptr_null(sb_verifier_query_param("token=ab%00c", "token")); // NUL
    ck_assert_ptr_null(sb_verifier_query_param("", "token"));
    ck_assert_ptr_null(sb_verifier_query_param(NULL, "token"));
}
END_TEST

// Damaged envelopes of every kind get a verdict, never a crash, and never keep a secret.
START_TEST(mutated_envelopes_never_crash_or_leak)
{
    static const char *const sources[] = {"ringcentral_sms", "ringcentral_call", "gmail_push", "",
                                          "ringcentral_sms\n"};
    const char *h[] = {"verification-token",
                       TOKEN,
                       "x-ringcentral-signature",
                       SIGNATURE,
                       ":query",
                       "a=%41&token=gp%2Btok%2F9%3DZx",
                       NULL};
    sb_envelope_t *base = event_new("ringcentral_sms", h);
    unsigned seed = 12345;
    for (int round = 0; round < 3000; round++) {
        sb_envelope_t *env = event_new(sources[round % 5], h);
        size_t len = strlen(base->headers);
        for (int flips = 1 + round % 4; flips > 0; flips--) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            env->headers[at] = (char)((seed >> 20) & 0xff ? (seed >> 20) & 0xff : 1);
        }
        if (round % 7 == 0)
            env->body_len = (seed >> 4) % (env->body_len + 1); // a shorter body
        int rc = sb_verifier_check(&s_conf, NULL, env);
        ck_assert(rc == 0 || rc == -1);
        ck_assert_str_eq(env->verdict, rc == 0 ? "accepted" : "rejected");
        ck_assert(rc != 0 || strcmp(env->source, "ringcentral_sms") == 0 ||
                  strcmp(env->source, "ringcentral_call") == 0 ||
                  strcmp(env->source, "gmail_push") == 0);
        assert_no_secret(env);
        sb_envelope_destroy(&env);
    }
    sb_envelope_destroy(&base);
}
END_TEST

// --- The stage over inproc sockets ---------------------------------------------------

static uint64_t
counter(sb_verifier_t *v, const char *name, const char *labels)
{
    // Asking for an existing name and labels returns the live handle.
    return sb_counter_value(sb_metrics_counter(sb_verifier_metrics(v), name, "", labels));
}

START_TEST(stage_passes_verdicts_on_and_drops_malformed)
{
    s_conf.ack_endpoint = s_ack;
    s_conf.instance_id = s_instance;
    zsock_t *in = zsock_new_push(">inproc://verifier-test-in");
    zsock_t *out = zsock_new_pull("@inproc://verifier-test-out");
    zsock_t *hb = zsock_new_sub("@inproc://verifier-test-hb", SB_HEARTBEAT_TOPIC);
    ck_assert(in && out && hb);
    sb_err_t err = {0};
    sb_verifier_t *v = sb_verifier_new(&s_conf, &err);
    ck_assert_msg(v != NULL, "new: %s", err.msg);

    const char *h[] = {"verification-token", TOKEN, NULL};
    sb_envelope_t *good = event_new("ringcentral_sms", h);
    sb_envelope_t *bad = event_new("gmail_push", NULL);
    ck_assert_int_eq(sb_envelope_send(good, in, 0, &err), 0);
    ck_assert_int_eq(zstr_send(in, "not an envelope"), 0);
    ck_assert_int_eq(sb_envelope_send(bad, in, 0, &err), 0);
    volatile sig_atomic_t stop = 0;
    int handled = 0;
    for (int turn = 0; turn < 40 && handled < 3; turn++)
        handled += sb_verifier_step(v, 50, &stop);
    ck_assert_int_eq(handled, 3);

    sb_envelope_t *first = sb_envelope_recv(out, &err);
    ck_assert_msg(first != NULL, "recv: %s", err.msg);
    ck_assert_str_eq(first->event_id, "test:1:42");
    ck_assert_str_eq(first->verdict, "accepted");
    ck_assert_ptr_null(strstr(first->headers, TOKEN));
    ck_assert_mem_eq(first->body, good->body, good->body_len);
    sb_envelope_t *second = sb_envelope_recv(out, &err);
    ck_assert_msg(second != NULL, "recv: %s", err.msg);
    ck_assert_str_eq(second->verdict, "rejected");
    ck_assert_str_eq(second->reason, "bad_push_token");

    ck_assert_uint_eq(counter(v, "sb_malformed_envelopes_total", ""), 1);
    ck_assert_uint_eq(counter(v, "sb_events_in_total", "source=\"ringcentral_sms\""), 1);
    ck_assert_uint_eq(
        counter(v, "sb_events_out_total", "source=\"ringcentral_sms\",verdict=\"accepted\""), 1);
    ck_assert_uint_eq(
        counter(v, "sb_events_out_total", "source=\"gmail_push\",verdict=\"rejected\""), 1);
    ck_assert_uint_eq(counter(v, "sb_verify_rejected_total", "reason=\"bad_push_token\""), 1);

    // A heartbeat arrives within about a second (the first may precede the subscription).
    zpoller_t *poller = zpoller_new(hb, NULL);
    sb_backmsg_t *msg = NULL;
    for (int turn = 0; turn < 30 && msg == NULL; turn++) {
        sb_verifier_step(v, 50, &stop);
        if (zpoller_wait(poller, 50) == hb)
            msg = sb_backmsg_recv(hb, &err);
    }
    ck_assert_msg(msg != NULL, "no heartbeat: %s", err.msg);
    ck_assert_int_eq(msg->is_ack, 0);
    ck_assert_str_eq(msg->stage, "verifier");
    ck_assert_str_eq(msg->instance, "test-instance");
    ck_assert_str_eq(msg->status_json, "{\"ok\":true}");

    sb_backmsg_destroy(&msg);
    zpoller_destroy(&poller);
    sb_envelope_destroy(&first);
    sb_envelope_destroy(&second);
    sb_envelope_destroy(&good);
    sb_envelope_destroy(&bad);
    sb_verifier_destroy(&v);
    ck_assert_ptr_null(v);
    zsock_destroy(&hb);
    zsock_destroy(&out);
    zsock_destroy(&in);
}
END_TEST

START_TEST(stage_fails_cleanly_on_bad_endpoint)
{
    s_conf.pull_endpoint = s_bad_pull;
    sb_err_t err = {0};
    sb_verifier_t *v = sb_verifier_new(&s_conf, &err);
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(err.msg, "nonsense://x") != NULL, "err: %s", err.msg);
}
END_TEST

static Suite *
sb_verifier_suite(void)
{
    Suite *s = suite_create("verifier");
    TCase *tc = tcase_create("check");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, ringcentral_token_accepted_and_redacted);
    tcase_add_test(tc, ringcentral_call_signature_accepted_and_redacted);
    tcase_add_test(tc, ringcentral_bad_token_rejected_and_redacted);
    tcase_add_test(tc, ringcentral_unconfigured_fails_closed);
    tcase_add_test(tc, secret_under_another_header_is_scrubbed);
    tcase_add_test(tc, unreadable_headers_are_dropped);
    tcase_add_test(tc, gmail_push_token_rules);
    tcase_add_test(tc, gmail_unconfigured_fails_closed);
    tcase_add_test(tc, unknown_source_rejected);
    tcase_add_test(tc, query_param_decodes);
    tcase_add_test(tc, mutated_envelopes_never_crash_or_leak);
    suite_add_tcase(s, tc);
    TCase *stage = tcase_create("stage");
    tcase_add_checked_fixture(stage, setup, NULL);
    tcase_set_timeout(stage, 20);
    tcase_add_test(stage, stage_passes_verdicts_on_and_drops_malformed);
    tcase_add_test(stage, stage_fails_cleanly_on_bad_endpoint);
    suite_add_tcase(s, stage);
    return s;
}

SB_CHECK_MAIN(sb_verifier_suite)
