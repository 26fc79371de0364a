/* test_ringcentral_client - the RingCentral client (common/sb_ringcentral.h) against a
 * scripted HTTP server in this process (libmicrohttpd): the token request as the fixture
 * shows it, token caching and refresh on 401, retries on 429/5xx with Retry-After and
 * backoff, what is not retried, and that no secret reaches an error message. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include "sb_check.h"
#include "test_util.h"
#include "sb_mem.h"
#include "sb_ringcentral.h"
#include "sb_banned.h"

#define RC_DIR SB_FIXTURES_DIR "/ringcentral/"
#define S_MAX 32 // requests recorded / responses scripted per test

// The fixture's credentials (oauth-token-request-jwt.txt): Basic
// base64("TESTCLIENTID0001:TEST-CLIENT-SECRET-DO-NOT-USE").
#define CLIENT_ID "TESTCLIENTID0001"
#define CLIENT_SECRET "TEST-CLIENT-SECRET-DO-NOT-USE"
#define JWT "TEST.ONLY.JWT-CREDENTIAL"

typedef struct {
    int status;
    const char *body;
    const char *retry_after; // header value, or NULL
} s_reply_t;

typedef struct {
    char method[8];
    char path[256];
    char auth[256];
    char *body;
} s_seen_t;

// The fake: replies to the token path from `token`, to anything else from `api`, in
// order; when a script runs out, its last reply repeats.
static struct {
    pthread_mutex_t lock;
    s_reply_t token[S_MAX], api[S_MAX];
    size_t n_token, n_api, i_token, i_api;
    s_seen_t seen[S_MAX];
    size_t n_seen;
    int token_serial; // access tokens are "at-1", "at-2" ...
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct MHD_Daemon *daemon_;
static int port_;
static int64_t slept[S_MAX]; // waits the client asked for
static size_t n_slept;

typedef struct {
    char *data;
    size_t len;
} s_upload_t;

static const s_reply_t *
s_next(s_reply_t *script, size_t n, size_t *i)
{
    const s_reply_t *r = &script[*i < n ? *i : n - 1];
    if (*i < n)
        (*i)++;
    return r;
}

static enum MHD_Result
s_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)cls;
    (void)version;
    s_upload_t *up = *state;
    if (up == NULL) {
        *state = sb_xcalloc(1, sizeof *up);
        return MHD_YES;
    }
    if (*upload_size > 0) {
        up->data = sb_xrealloc(up->data, up->len + *upload_size + 1);
        memcpy(up->data + up->len, upload, *upload_size);
        up->len += *upload_size;
        up->data[up->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&fake.lock);
    if (fake.n_seen < S_MAX) {
        s_seen_t *s = &fake.seen[fake.n_seen++];
        snprintf(s->method, sizeof s->method, "%s", method);
        snprintf(s->path, sizeof s->path, "%s", url);
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        snprintf(s->auth, sizeof s->auth, "%s", auth ? auth : "");
        s->body = sb_xstrdup(up->data ? up->data : "");
    }
    char body[512];
    const s_reply_t *r;
    if (strcmp(url, "/restapi/oauth/token") == 0) {
        r = s_next(fake.token, fake.n_token, &fake.i_token);
        if (r->status == 200 && r->body == NULL) // a fresh token each time
            snprintf(body, sizeof body,
                     "{\"access_token\":\"at-%d\",\"token_type\":\"bearer\",\"expires_in\":3600}",
                     ++fake.token_serial);
        else
            snprintf(body, sizeof body, "%s", r->body ? r->body : "");
    } else {
        r = s_next(fake.api, fake.n_api, &fake.i_api);
        snprintf(body, sizeof body, "%s", r->body ? r->body : "{}");
    }
    int status = r->status;
    const char *retry_after = r->retry_after;
    pthread_mutex_unlock(&fake.lock);
    struct MHD_Response *res =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(res, "Content-Type", "application/json");
    if (retry_after)
        MHD_add_response_header(res, "Retry-After", retry_after);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)status, res);
    MHD_destroy_response(res);
    return ok;
}

static void
s_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)conn;
    (void)t;
    s_upload_t *up = *state;
    if (up) {
        free(up->data);
        free(up);
    }
    *state = NULL;
}

static void
fake_start(void)
{
    memset(fake.seen, 0, sizeof fake.seen);
    fake.n_token = fake.n_api = fake.i_token = fake.i_api = fake.n_seen = 0;
    fake.token_serial = 0;
    n_slept = 0;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                               s_handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                               MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL, MHD_OPTION_END);
    ck_assert_ptr_nonnull(daemon_);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port_ = info->port;
}

static void
fake_stop(void)
{
    MHD_stop_daemon(daemon_);
    for (size_t i = 0; i < fake.n_seen; i++)
        free(fake.seen[i].body);
}

static void
script_token(int status, const char *body, const char *retry_after)
{
    fake.token[fake.n_token++] = (s_reply_t){status, body, retry_after};
}

static void
script_api(int status, const char *body, const char *retry_after)
{
    fake.api[fake.n_api++] = (s_reply_t){status, body, retry_after};
}

static int
record_sleep(int64_t ms, void *arg)
{
    (void)arg;
    if (n_slept < S_MAX)
        slept[n_slept++] = ms;
    return 0;
}

static sb_ringcentral_t *
client(void)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port_); // the trailing '/' is dropped
    sb_ringcentral_opts_t opts = {.server_url = url,
                                  .client_id = CLIENT_ID,
                                  .client_secret = CLIENT_SECRET,
                                  .jwt = JWT,
                                  .backoff_ms = 100,
                                  .backoff_max_ms = 400,
                                  .retry_after_max_ms = 5000,
                                  .timeout_ms = 5000,
                                  .sleep = record_sleep};
    sb_err_t err = {0};
    sb_ringcentral_t *rc = sb_ringcentral_new(&opts, &err);
    ck_assert_msg(rc != NULL, "new: %s", err.msg);
    return rc;
}

static void
assert_no_secret(const char *text)
{
    ck_assert_msg(strstr(text, CLIENT_SECRET) == NULL, "client secret in \"%s\"", text);
    ck_assert_msg(strstr(text, JWT) == NULL, "JWT in \"%s\"", text);
    ck_assert_msg(strstr(text, "at-") == NULL, "access token in \"%s\"", text);
}

START_TEST(token_request_matches_the_fixture_and_is_cached)
{
    fake_start();
    script_token(200, NULL, NULL);
    script_api(200, "{\"id\":3062991514023}", NULL);
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_msg(sb_ringcentral_message_get(rc, "3062991514023", &res, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.body, "{\"id\":3062991514023}");
    sb_rc_response_release(&res);
    ck_assert_int_eq(sb_ringcentral_get(rc, "/restapi/v1.0/account/~", &res, &err), 0);
    sb_rc_response_release(&res);

    // The token request, byte for byte where the fixture fixes it.
    char *fixture = sb_test_read_file(RC_DIR "oauth-token-request-jwt.txt", NULL);
    char *want_body = strstr(fixture, "\r\n\r\n") + 4;
    want_body[strcspn(want_body, "\r\n")] = '\0'; // the file ends with a newline
    ck_assert_uint_eq(fake.n_seen, 3);
    ck_assert_str_eq(fake.seen[0].method, "POST");
    ck_assert_str_eq(fake.seen[0].path, "/restapi/oauth/token");
    ck_assert_str_eq(fake.seen[0].body, want_body);
    ck_assert_msg(strstr(fixture, fake.seen[0].auth) != NULL, "Authorization \"%s\" not in fixture",
                  fake.seen[0].auth);
    ck_assert_str_eq(fake.seen[1].path,
                     "/restapi/v1.0/account/~/extension/~/message-store/3062991514023");
    ck_assert_str_eq(fake.seen[1].auth, "Bearer at-1");
    ck_assert_str_eq(fake.seen[2].auth, "Bearer at-1"); // cached, not asked again
    sb_rc_stats_t st;
    sb_ringcentral_stats(rc, &st);
    ck_assert_uint_eq(st.token_requests, 1);
    ck_assert_uint_eq(st.requests, 2);
    free(fixture);
    sb_ringcentral_destroy(&rc);
    ck_assert_ptr_null(rc);
    fake_stop();
}
END_TEST

START_TEST(an_expiring_token_is_renewed_before_use)
{
    fake_start();
    script_token(200, "{\"access_token\":\"at-short\",\"expires_in\":2}", NULL);
    script_token(200, NULL, NULL);
    script_api(200, "{}", NULL);
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_int_eq(sb_ringcentral_get(rc, "/restapi/v1.0/x", &res, &err), 0);
    sb_rc_response_release(&res);
    // Kept for its lifetime minus a margin (half of it, for so short a token): 1 s.
    struct timespec ts = {1, 200000000L};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(sb_ringcentral_get(rc, "/restapi/v1.0/x", &res, &err), 0);
    sb_rc_response_release(&res);
    ck_assert_str_eq(fake.seen[1].auth, "Bearer at-short");
    ck_assert_str_eq(fake.seen[3].auth, "Bearer at-1");
    sb_ringcentral_destroy(&rc);
    fake_stop();
}
END_TEST

START_TEST(a_401_refreshes_the_token_once)
{
    fake_start();
    script_token(200, NULL, NULL);
    script_api(401, "{\"errorCode\":\"TokenInvalid\"}", NULL);
    script_api(200, "{\"ok\":1}", NULL);
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_msg(sb_ringcentral_get(rc, "/restapi/v1.0/x", &res, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(res.status, 200);
    sb_rc_response_release(&res);
    ck_assert_str_eq(fake.seen[1].auth, "Bearer at-1");
    ck_assert_str_eq(fake.seen[3].auth, "Bearer at-2");
    sb_rc_stats_t st;
    sb_ringcentral_stats(rc, &st);
    ck_assert_uint_eq(st.refreshes, 1);
    ck_assert_uint_eq(st.token_requests, 2);
    ck_assert_uint_eq(n_slept, 0); // a refresh is not a backoff

    // A 401 with the new token too: an error, not a loop.
    fake.n_api = fake.i_api = 0;
    script_api(401, "{}", NULL);
    ck_assert_int_eq(sb_ringcentral_get(rc, "/restapi/v1.0/y", &res, &err), -1);
    ck_assert_msg(strstr(err.msg, "401") != NULL, "%s", err.msg);
    assert_no_secret(err.msg);
    sb_ringcentral_stats(rc, &st);
    ck_assert_uint_eq(st.token_requests, 3);
    sb_ringcentral_destroy(&rc);
    fake_stop();
}
END_TEST

START_TEST(retry_after_is_honoured_on_429)
{
    fake_start();
    script_token(200, NULL, NULL);
    script_api(429, "{\"errorCode\":\"CMN-301\"}", "2");
    script_api(200, "{\"ok\":1}", NULL);
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_msg(sb_ringcentral_get(rc, "/restapi/v1.0/x", &res, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(res.status, 200);
    sb_rc_response_release(&res);
    ck_assert_uint_eq(n_slept, 1);
    ck_assert_int_eq(slept[0], 2000);
    sb_rc_stats_t st;
    sb_ringcentral_stats(rc, &st);
    ck_assert_uint_eq(st.retries, 1);
    ck_assert_uint_eq(st.requests, 2);
    sb_ringcentral_destroy(&rc);
    fake_stop();
}
END_TEST

START_TEST(server_errors_back_off_then_give_up)
{
    fake_start();
    script_token(200, NULL, NULL);
    script_api(503, "{}", NULL);
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_int_eq(sb_ringcentral_get(rc, "/restapi/v1.0/x", &res, &err), -1);
    ck_assert_ptr_null(res.body);
    ck_assert_msg(strstr(err.msg, "HTTP 503 after 4 tries") != NULL, "%s", err.msg);
    // 4 tries, 3 waits: 100, 200, 400 ms (capped), each with jitter in [half, full].
    ck_assert_uint_eq(n_slept, 3);
    const int64_t full[] = {100, 200, 400};
    for (size_t i = 0; i < 3; i++)
        ck_assert_msg(slept[i] >= full[i] / 2 && slept[i] <= full[i], "wait %zu: %lld ms", i,
                      (long long)slept[i]);
    sb_ringcentral_destroy(&rc);
    fake_stop();
}
END_TEST

START_TEST(a_long_retry_after_is_not_waited_for)
{
    fake_start();
    script_token(200, NULL, NULL);
    script_api(429, "{}", "3600");
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_int_eq(sb_ringcentral_get(rc, "/restapi/v1.0/x", &res, &err), -1);
    ck_assert_uint_eq(n_slept, 0);
    ck_assert_msg(strstr(err.msg, "asked to wait 3600000 ms") != NULL, "%s", err.msg);
    sb_ringcentral_destroy(&rc);
    fake_stop();
}
END_TEST

START_TEST(final_answers_are_returned_not_retried)
{
    fake_start();
    script_token(200, NULL, NULL);
    script_api(404, "{\"errorCode\":\"MSG-333\"}", NULL);
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_int_eq(sb_ringcentral_message_get(rc, "1", &res, &err), 0);
    ck_assert_int_eq(res.status, 404);
    sb_rc_response_release(&res);
    // POST is not idempotent: a 503 may have sent the SMS, so it is not tried again but
    // handed to the caller, who knows what an unsure outcome means for it ...
    fake.n_api = fake.i_api = 0;
    script_api(503, "{}", NULL);
    ck_assert_int_eq(
        sb_ringcentral_post(rc, "/restapi/v1.0/account/~/extension/~/sms", "{}", &res, &err), 0);
    ck_assert_int_eq(res.status, 503);
    sb_rc_response_release(&res);
    ck_assert_uint_eq(n_slept, 0);
    // ... but a 429 did nothing, so it is.
    fake.n_api = fake.i_api = 0;
    script_api(429, "{}", "1");
    script_api(200, "{\"id\":5}", NULL);
    ck_assert_int_eq(
        sb_ringcentral_post(rc, "/restapi/v1.0/account/~/extension/~/sms", "{}", &res, &err), 0);
    ck_assert_int_eq(res.status, 200);
    sb_rc_response_release(&res);
    ck_assert_uint_eq(n_slept, 1);
    ck_assert_str_eq(fake.seen[fake.n_seen - 1].method, "POST");
    ck_assert_str_eq(fake.seen[fake.n_seen - 1].body, "{}");
    sb_ringcentral_destroy(&rc);
    fake_stop();
}
END_TEST

START_TEST(a_refused_token_request_says_why_without_secrets)
{
    fake_start();
    script_token(400,
                 "{\"error\":\"invalid_grant\",\"errorCode\":\"OAU-251\","
                 "\"error_description\":\"JWT token is expired\"}",
                 NULL);
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_int_eq(sb_ringcentral_get(rc, "/restapi/v1.0/x", &res, &err), -1);
    ck_assert_str_eq(err.msg, "RingCentral refused the token request: HTTP 400 (invalid_grant)");
    assert_no_secret(err.msg);
    sb_rc_stats_t st;
    sb_ringcentral_stats(rc, &st);
    ck_assert_uint_eq(st.requests, 0); // no API call without a token
    ck_assert_uint_eq(st.token_requests, 1);
    sb_ringcentral_destroy(&rc);
    fake_stop();
}
END_TEST

START_TEST(token_endpoint_errors_are_retried)
{
    fake_start();
    script_token(502, "bad gateway", NULL);
    script_token(200, NULL, NULL);
    script_api(200, "{}", NULL);
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_msg(sb_ringcentral_get(rc, "/restapi/v1.0/x", &res, &err) == 0, "%s", err.msg);
    sb_rc_response_release(&res);
    sb_rc_stats_t st;
    sb_ringcentral_stats(rc, &st);
    ck_assert_uint_eq(st.token_requests, 2);
    ck_assert_uint_eq(n_slept, 1);
    sb_ringcentral_destroy(&rc);
    fake_stop();
}
END_TEST

START_TEST(an_unreachable_server_is_an_error_after_the_tries)
{
    fake_start();
    fake_stop(); // nothing listens on port_ now
    sb_ringcentral_t *rc = client();
    sb_err_t err = {0};
    sb_rc_response_t res;
    ck_assert_int_eq(sb_ringcentral_get(rc, "/restapi/v1.0/x", &res, &err), -1);
    ck_assert_msg(strstr(err.msg, "could not POST /restapi/oauth/token") != NULL, "%s", err.msg);
    ck_assert_uint_eq(n_slept, 3);
    sb_ringcentral_destroy(&rc);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    sb_err_t err = {0};
    sb_ringcentral_opts_t opts = {.client_id = CLIENT_ID, .client_secret = CLIENT_SECRET};
    ck_assert_ptr_null(sb_ringcentral_new(&opts, &err)); // no JWT
    ck_assert_msg(strstr(err.msg, "RINGCENTRAL_JWT") != NULL, "%s", err.msg);
    opts.jwt = JWT;
    opts.server_url = "ftp://example.com";
    ck_assert_ptr_null(sb_ringcentral_new(&opts, &err));
    opts.server_url = NULL; // the default server; nothing is contacted by new()
    sb_ringcentral_t *rc = sb_ringcentral_new(&opts, &err);
    ck_assert_msg(rc != NULL, "%s", err.msg);
    sb_rc_response_t res;
    ck_assert_int_eq(sb_ringcentral_message_get(rc, "12a", &res, &err), -1);
    ck_assert_int_eq(sb_ringcentral_message_get(rc, "", &res, &err), -1);
    ck_assert_int_eq(sb_ringcentral_message_get(rc, "123456789012345678901", &res, &err), -1);
    ck_assert_int_eq(sb_ringcentral_get(rc, "restapi/no-slash", &res, &err), -1);
    sb_rc_stats_t st;
    sb_ringcentral_stats(rc, &st);
    ck_assert_uint_eq(st.requests + st.token_requests, 0);
    sb_ringcentral_destroy(&rc);
    sb_ringcentral_destroy(&rc); // twice is fine
}
END_TEST

START_TEST(pieces_build_and_read_the_token_exchange)
{
    char *fixture = sb_test_read_file(RC_DIR "oauth-token-request-jwt.txt", NULL);
    char *form = sb_ringcentral_token_form(JWT);
    char *want = strstr(fixture, "\r\n\r\n") + 4;
    want[strcspn(want, "\r\n")] = '\0';
    ck_assert_str_eq(form, want);
    free(form);
    form = sb_ringcentral_token_form("a+b/c=d&e f");
    ck_assert_str_eq(strstr(form, "&assertion="), "&assertion=a%2Bb%2Fc%3Dd%26e%20f");
    free(form);
    char *basic = sb_ringcentral_basic_credentials(CLIENT_ID, CLIENT_SECRET);
    char header[256];
    snprintf(header, sizeof header, "Authorization: %s\r\n", basic);
    ck_assert_msg(strstr(fixture, header) != NULL, "\"%s\" not in the fixture", basic);
    free(basic);
    free(fixture);

    char *response = sb_test_read_file(RC_DIR "oauth-token-response.json", NULL);
    char *token = NULL;
    int64_t lifetime_ms = 0;
    sb_err_t err = {0};
    ck_assert_int_eq(
        sb_ringcentral_token_parse(200, response, strlen(response), &token, &lifetime_ms, &err), 0);
    ck_assert_str_eq(token, "U1BCMDFUMDRKV1MwMXxURVNULU9OTFktYWNjZXNzLXRva2VuLWRvLW5vdC11c2U");
    ck_assert_int_eq(lifetime_ms, (3600 - SB_RC_TOKEN_MARGIN_S) * 1000);
    free(token);
    ck_assert_int_eq(
        sb_ringcentral_token_parse(200, "{\"access_token\":\"\"}", 18, &token, &lifetime_ms, &err),
        -1);
    ck_assert_ptr_null(token);
    ck_assert_int_eq(sb_ringcentral_token_parse(401, "{\"error\":\"invalid_client\"}", 26, &token,
                                                &lifetime_ms, &err),
                     -1);
    ck_assert_str_eq(err.msg, "RingCentral refused the token request: HTTP 401 (invalid_client)");
    // An error code that is not a plain code is left out rather than echoed.
    ck_assert_int_eq(sb_ringcentral_token_parse(400, "{\"error\":\"<b>x y</b>\"}", 22, &token,
                                                &lifetime_ms, &err),
                     -1);
    ck_assert_str_eq(err.msg, "RingCentral refused the token request: HTTP 400");
    free(response);
}
END_TEST

START_TEST(message_paths_name_the_account_and_extension)
{
    char *path = sb_ringcentral_message_path("401234567008", "401234569008", "3062991514023");
    ck_assert_str_eq(path, "/restapi/v1.0/account/401234567008/extension/401234569008/"
                           "message-store/3062991514023");
    free(path);
    path = sb_ringcentral_message_path(NULL, "../../x", "12");
    ck_assert_str_eq(path, "/restapi/v1.0/account/~/extension/~/message-store/12");
    free(path);
    ck_assert_ptr_null(sb_ringcentral_message_path(NULL, NULL, "12/../13"));
    ck_assert_ptr_null(sb_ringcentral_message_path(NULL, NULL, NULL));
}
END_TEST

static Suite *
sb_ringcentral_client_suite(void)
{
    Suite *s = suite_create("ringcentral_client");
    TCase *tc = tcase_create("ringcentral_client");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, token_request_matches_the_fixture_and_is_cached);
    tcase_add_test(tc, an_expiring_token_is_renewed_before_use);
    tcase_add_test(tc, a_401_refreshes_the_token_once);
    tcase_add_test(tc, retry_after_is_honoured_on_429);
    tcase_add_test(tc, server_errors_back_off_then_give_up);
    tcase_add_test(tc, a_long_retry_after_is_not_waited_for);
    tcase_add_test(tc, final_answers_are_returned_not_retried);
    tcase_add_test(tc, a_refused_token_request_says_why_without_secrets);
    tcase_add_test(tc, token_endpoint_errors_are_retried);
    tcase_add_test(tc, an_unreachable_server_is_an_error_after_the_tries);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, pieces_build_and_read_the_token_exchange);
    tcase_add_test(tc, message_paths_name_the_account_and_extension);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_ringcentral_client_suite)
