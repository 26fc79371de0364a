/* test_enricher_oauth - the enricher's Google access tokens (common/sb_google_oauth.h):
 * the grant's form body, the per-mailbox cache and its expiry, invalid_grant holds, and
 * the classification of the token endpoint's answers. No network: answers are fed in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sb_check.h"
#include "test_util.h"
#include "sb_google_oauth.h"
#include "sb_mem.h"
#include "sb_banned.h"

#define NOW 1795533668000LL // ms; any clock works, the module only compares
#define FIXTURE_TOKEN                                                                              \
    "ya29.TEST-ONLY-a0AfB_byC3xK9mQ2vN7pR4sT8wZ1yL6hJ5gF0dS3aE7uI2oP9kM4nB6vC1xZ8qW5eR"

static sb_google_oauth_t *
oauth(void)
{
    return sb_google_oauth_new("http://127.0.0.1:9/token", "client 1", "s3cr&t=");
}

START_TEST(form_body_is_url_encoded)
{
    sb_google_oauth_t *o = oauth();
    char *body = sb_google_oauth_request_body(o, "1//0g+rt/x=y");
    ck_assert_str_eq(body, "grant_type=refresh_token&client_id=client%201&client_secret=s3cr%26t%3D"
                           "&refresh_token=1%2F%2F0g%2Brt%2Fx%3Dy");
    free(body);
    ck_assert_str_eq(sb_google_oauth_url(o), "http://127.0.0.1:9/token");
    sb_google_oauth_destroy(&o);
    ck_assert_ptr_null(o);
    o = sb_google_oauth_new(NULL, NULL, NULL);
    ck_assert_str_eq(sb_google_oauth_url(o), SB_GOOGLE_TOKEN_URL_DEFAULT);
    body = sb_google_oauth_request_body(o, "rt");
    ck_assert_str_eq(body, "grant_type=refresh_token&refresh_token=rt");
    free(body);
    sb_google_oauth_destroy(&o);
    sb_google_oauth_destroy(&o); // safe twice
}
END_TEST

START_TEST(fixture_answer_is_cached_until_near_expiry)
{
    sb_google_oauth_t *o = oauth();
    size_t len;
    char *answer = sb_test_fixture("gmail/oauth-token-response.json", &len);
    sb_err_t err = {0};
    ck_assert_ptr_null(sb_google_oauth_token(o, "support@example.com", NOW));
    ck_assert_int_eq(
        sb_google_oauth_response(o, "Support@Example.com", "rt", 200, answer, len, NOW, &err),
        SB_GOOGLE_OAUTH_OK);
    // expires_in 3599 s; the key is case-insensitive.
    ck_assert_str_eq(sb_google_oauth_token(o, "support@example.com", NOW + 1000), FIXTURE_TOKEN);
    int64_t last_ok = NOW + 3599000 - SB_GOOGLE_OAUTH_MARGIN_MS - 1;
    ck_assert_ptr_nonnull(sb_google_oauth_token(o, "SUPPORT@example.com", last_ok));
    ck_assert_ptr_null(sb_google_oauth_token(o, "support@example.com", last_ok + 1));
    ck_assert_ptr_null(sb_google_oauth_token(o, "other@example.com", NOW));
    free(answer);
    sb_google_oauth_destroy(&o);
}
END_TEST

START_TEST(invalidate_forgets_the_token)
{
    sb_google_oauth_t *o = oauth();
    const char *answer = "{\"access_token\":\"tok-1\",\"expires_in\":\"600\"}";
    sb_err_t err = {0};
    ck_assert_int_eq(
        sb_google_oauth_response(o, "a@b.c", "rt", 200, answer, strlen(answer), NOW, &err),
        SB_GOOGLE_OAUTH_OK);
    ck_assert_str_eq(sb_google_oauth_token(o, "a@b.c", NOW + 500000), "tok-1"); // string expiry
    ck_assert_ptr_null(sb_google_oauth_token(o, "a@b.c", NOW + 600000));
    ck_assert_int_eq(
        sb_google_oauth_response(o, "a@b.c", "rt", 200, answer, strlen(answer), NOW, &err),
        SB_GOOGLE_OAUTH_OK);
    sb_google_oauth_invalidate(o, "A@B.C");
    ck_assert_ptr_null(sb_google_oauth_token(o, "a@b.c", NOW));
    sb_google_oauth_invalidate(o, "never@seen.x"); // harmless
    sb_google_oauth_destroy(&o);
}
END_TEST

START_TEST(invalid_grant_blocks_that_refresh_token)
{
    sb_google_oauth_t *o = oauth();
    size_t len;
    char *answer = sb_test_fixture("gmail/oauth-token-error-invalid-grant.json", &len);
    sb_err_t err = {0};
    ck_assert_int_eq(sb_google_oauth_response(o, "a@b.c", "old-rt", 400, answer, len, NOW, &err),
                     SB_GOOGLE_OAUTH_INVALID_GRANT);
    ck_assert(strstr(err.msg, "invalid_grant") != NULL);
    ck_assert(strstr(err.msg, "old-rt") == NULL); // never the secret
    ck_assert_int_eq(sb_google_oauth_blocked(o, "a@b.c", "old-rt", NOW + 1), 1);
    ck_assert_int_eq(sb_google_oauth_blocked(o, "A@b.c", "new-rt", NOW + 1), 0); // new consent
    ck_assert_int_eq(sb_google_oauth_blocked(o, "x@b.c", "old-rt", NOW + 1), 0);
    ck_assert_int_eq(sb_google_oauth_blocked(o, "a@b.c", "old-rt", NOW + SB_GOOGLE_OAUTH_BLOCK_MS),
                     0);
    // The blocking variant answers at once, without a request, while the hold lasts.
    ck_assert_int_eq(sb_google_oauth_response(o, "a@b.c", "old-rt", 400, answer, len, NOW, &err),
                     SB_GOOGLE_OAUTH_INVALID_GRANT);
    ck_assert_int_eq(sb_google_oauth_refresh(o, "a@b.c", "old-rt", NOW + 5, &err),
                     SB_GOOGLE_OAUTH_INVALID_GRANT);
    free(answer);
    sb_google_oauth_destroy(&o);
}
END_TEST

START_TEST(other_answers_are_classified)
{
    sb_google_oauth_t *o = oauth();
    sb_err_t err = {0};
    const char *client = "{\"error\":\"invalid_client\",\"error_description\":\"Unauthorized\"}";
    ck_assert_int_eq(
        sb_google_oauth_response(o, "a@b.c", "rt", 401, client, strlen(client), NOW, &err),
        SB_GOOGLE_OAUTH_CLIENT);
    ck_assert(strstr(err.msg, "invalid_client") != NULL);
    ck_assert_int_eq(sb_google_oauth_response(o, "a@b.c", "rt", 500, "oops", 4, NOW, &err),
                     SB_GOOGLE_OAUTH_TRANSIENT);
    ck_assert_int_eq(sb_google_oauth_response(o, "a@b.c", "rt", 429, "", 0, NOW, &err),
                     SB_GOOGLE_OAUTH_TRANSIENT);
    ck_assert_int_eq(sb_google_oauth_response(o, "a@b.c", "rt", 0, NULL, 0, NOW, &err),
                     SB_GOOGLE_OAUTH_TRANSIENT);
    const char *garbled[] = {"not json", "{}", "{\"access_token\":\"\"}", "{\"access_token\":5}"};
    for (size_t i = 0; i < sizeof garbled / sizeof garbled[0]; i++)
        ck_assert_int_eq(sb_google_oauth_response(o, "a@b.c", "rt", 200, garbled[i],
                                                  strlen(garbled[i]), NOW, &err),
                         SB_GOOGLE_OAUTH_TRANSIENT);
    ck_assert_ptr_null(sb_google_oauth_token(o, "a@b.c", NOW));
    ck_assert_int_eq(sb_google_oauth_blocked(o, "a@b.c", "rt", NOW), 0); // none of these block
    // A silly expires_in falls back to an hour rather than caching for ever or not at all.
    const char *silly = "{\"access_token\":\"t\",\"expires_in\":-5}";
    ck_assert_int_eq(
        sb_google_oauth_response(o, "a@b.c", "rt", 200, silly, strlen(silly), NOW, &err),
        SB_GOOGLE_OAUTH_OK);
    ck_assert_ptr_nonnull(sb_google_oauth_token(o, "a@b.c", NOW + 3000000));
    ck_assert_ptr_null(sb_google_oauth_token(o, "a@b.c", NOW + 3600000));
    sb_google_oauth_destroy(&o);
}
END_TEST

START_TEST(blocking_refresh_reports_an_unreachable_endpoint)
{
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    sb_google_oauth_t *o = oauth();
    sb_err_t err = {0};
    ck_assert_int_eq(sb_google_oauth_refresh(o, "a@b.c", "rt", NOW, &err),
                     SB_GOOGLE_OAUTH_TRANSIENT);
    ck_assert(strstr(err.msg, "could not reach the token endpoint") != NULL);
    sb_google_oauth_destroy(&o);
}
END_TEST

static Suite *
sb_enricher_oauth_suite(void)
{
    Suite *s = suite_create("enricher_oauth");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, form_body_is_url_encoded);
    tcase_add_test(tc, fixture_answer_is_cached_until_near_expiry);
    tcase_add_test(tc, invalidate_forgets_the_token);
    tcase_add_test(tc, invalid_grant_blocks_that_refresh_token);
    tcase_add_test(tc, other_answers_are_classified);
    tcase_add_test(tc, blocking_refresh_reports_an_unreachable_endpoint);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_enricher_oauth_suite)
