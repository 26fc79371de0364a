/* gmail_watch - users.watch / users.stop and the mailbox rows (see gmail_watch.h). */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "gmail_watch.h"
#include "renewer.h"
#include "renewer_db.h"
#include "sb_google_oauth.h"
#include "sb_mem.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_CONTEXT_PREFIX "mailboxes.refresh_token:" // sb_secretbox context, as the enricher's

struct sb_gmail_watch {
    char *base_url;               // GMAIL_API_BASE_URL without a final '/'
    char *topic;                  // GMAIL_TOPIC, or NULL
    long timeout_ms;              // one request
    volatile sig_atomic_t *abort; // borrowed; may be NULL
    sb_google_oauth_t *oauth;     // access tokens per mailbox
};

typedef struct {
    char *data; // NUL-terminated
    size_t len;
} s_buf_t;

static void
s_wipe_free(char *text)
{
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
}

sb_gmail_watch_t *
sb_gmail_watch_new(const sb_gmail_watch_opts_t *opts, sb_err_t *err)
{
    const char *base = opts->api_base_url ? opts->api_base_url : "";
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
        sb_err_set(err, 0, "invalid GMAIL_API_BASE_URL \"%s\": not an http(s) URL", base);
        return NULL;
    }
    sb_gmail_watch_t *self = sb_xcalloc(1, sizeof *self);
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    self->base_url = sb_xstrndup(base, len);
    self->topic = opts->topic && *opts->topic ? sb_xstrdup(opts->topic) : NULL;
    self->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : SB_RENEWER_HTTP_TIMEOUT_MS;
    self->abort = opts->abort;
    self->oauth = sb_google_oauth_new(opts->token_url, opts->client_id, opts->client_secret);
    return self;
}

void
sb_gmail_watch_destroy(sb_gmail_watch_t **self_p)
{
    assert(self_p);
    sb_gmail_watch_t *self = *self_p;
    if (self == NULL)
        return;
    sb_google_oauth_destroy(&self->oauth);
    free(self->base_url);
    free(self->topic);
    free(self);
    *self_p = NULL;
}

// --- Pure pieces -----------------------------------------------------------------------------

char *
sb_gmail_watch_body(const char *topic)
{
    json_t *doc = json_pack("{s:s,s:[s],s:s}", "topicName", topic ? topic : "", "labelIds", "INBOX",
                            "labelFilterBehavior", "include");
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text == NULL)
        abort(); // only on OOM or a topic that is not UTF-8 (config text always is)
    char *copy = sb_xstrdup(text);
    free(text);
    return copy;
}

char *
sb_gmail_watch_url(const char *base, const char *email, const char *verb)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(email);
    char *enc = sb_xmalloc(len * 3 + 1);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)email; *p; p++) {
        if (isalnum(*p) || strchr("-._~@+", *p)) {
            enc[n++] = (char)*p;
        } else {
            enc[n++] = '%';
            enc[n++] = hex[*p >> 4];
            enc[n++] = hex[*p & 15];
        }
    }
    enc[n] = '\0';
    char *url = sb_xasprintf("%s/gmail/v1/users/%s/%s", base, enc, verb);
    free(enc);
    return url;
}

// A decimal number sent as a JSON string or number. 0, or -1.
static int
s_decimal(const json_t *v, char *out, size_t size)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    }
    const char *s = json_string_value(v);
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len >= size || len > 19)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return -1;
    memcpy(out, s, len + 1);
    return 0;
}

int
sb_gmail_watch_parse(const char *body, size_t len, sb_gmail_watch_info_t *info, sb_err_t *err)
{
    memset(info, 0, sizeof *info);
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    char expiration[24];
    int rc = -1;
    if (!json_is_object(root)) {
        sb_err_set(err, 0, "invalid users.watch answer: not a JSON object");
    } else if (s_decimal(json_object_get(root, "historyId"), info->history_id,
                         sizeof info->history_id) != 0) {
        sb_err_set(err, 0, "invalid users.watch answer: no decimal historyId");
    } else if (s_decimal(json_object_get(root, "expiration"), expiration, sizeof expiration) != 0) {
        sb_err_set(err, 0, "invalid users.watch answer: no decimal expiration");
    } else {
        info->expiration_ms = strtoll(expiration, NULL, 10);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

// --- HTTP ------------------------------------------------------------------------------------

static size_t
s_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_buf_t *buf = arg;
    size_t n = size * nmemb;
    if (buf->len + n > SB_GMAIL_WATCH_MAX_BODY)
        return 0; // stops the transfer: CURLE_WRITE_ERROR
    buf->data = sb_xrealloc(buf->data, buf->len + n + 1);
    memcpy(buf->data + buf->len, ptr, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return n;
}

static int
s_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    volatile sig_atomic_t *abort_flag = arg;
    return abort_flag != NULL && *abort_flag; // non-zero aborts: SIGTERM is not kept waiting
}

// POST url with the access token. Returns the HTTP status (0 when none came; err says why),
// the answer in *out.
static long
s_post(sb_gmail_watch_t *self, const char *url, const char *token, const char *json, s_buf_t *out,
       sb_err_t *err)
{
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        sb_err_set(err, 0, "could not create a libcurl handle");
        return 0;
    }
    char *auth = sb_xasprintf("Authorization: Bearer %s", token);
    struct curl_slist *headers = curl_slist_append(NULL, auth);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json ? json : "");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, self->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, s_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)self->abort);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    else
        sb_err_set(err, 0, "could not reach the Gmail API: %s", curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    s_wipe_free(auth);
    curl_easy_cleanup(curl);
    return status;
}

// Google's error text: {"error": {"message": ...}}, shortened; never a token.
static void
s_api_error(const char *what, long status, const s_buf_t *buf, sb_err_t *err)
{
    json_t *root = buf->data ? json_loadb(buf->data, buf->len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(json_object_get(root, "error"), "message"));
    sb_err_set(err, 0, "%s answered HTTP %ld%s%.120s", what, status, msg ? ": " : "",
               msg ? msg : "");
    json_decref(root);
}

// An access token for email: cached, or fetched now. OK, REAUTH or FAILED.
static sb_gmail_watch_status_t
s_token(sb_gmail_watch_t *self, const char *email, const char *refresh_token, const char **token,
        sb_err_t *err)
{
    int64_t now = sb_wall_ms();
    switch (sb_google_oauth_refresh(self->oauth, email, refresh_token, now, err)) {
    case SB_GOOGLE_OAUTH_OK:
        *token = sb_google_oauth_token(self->oauth, email, now);
        if (*token != NULL)
            return SB_GMAIL_WATCH_OK;
        sb_err_set(err, 0, "the token endpoint gave no usable access token");
        return SB_GMAIL_WATCH_FAILED;
    case SB_GOOGLE_OAUTH_INVALID_GRANT:
        return SB_GMAIL_WATCH_REAUTH;
    default:
        return SB_GMAIL_WATCH_FAILED;
    }
}

// POST {verb} for email, with one new token after a 401. *out holds a 2xx answer.
static sb_gmail_watch_status_t
s_call(sb_gmail_watch_t *self, const char *email, const char *refresh_token, const char *verb,
       const char *json, s_buf_t *out, sb_err_t *err)
{
    char *url = sb_gmail_watch_url(self->base_url, email, verb);
    sb_gmail_watch_status_t st = SB_GMAIL_WATCH_FAILED;
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *token = NULL;
        st = s_token(self, email, refresh_token, &token, err);
        if (st != SB_GMAIL_WATCH_OK)
            break;
        free(out->data);
        out->data = NULL;
        out->len = 0;
        long status = s_post(self, url, token, json, out, err);
        if (status >= 200 && status < 300)
            break;
        st = SB_GMAIL_WATCH_FAILED;
        if (status == 0)
            break;
        s_api_error(strcmp(verb, "watch") == 0 ? "users.watch" : "users.stop", status, out, err);
        if (status != 401)
            break;
        sb_google_oauth_invalidate(self->oauth, email); // revoked or expired early: once more
    }
    free(url);
    return st;
}

sb_gmail_watch_status_t
sb_gmail_watch_start(sb_gmail_watch_t *self, const char *email, const char *refresh_token,
                     sb_gmail_watch_info_t *info, sb_err_t *err)
{
    if (self->topic == NULL) {
        sb_err_set(err, 0, "cannot start a Gmail watch: GMAIL_TOPIC is not set");
        return SB_GMAIL_WATCH_FAILED;
    }
    char *body = sb_gmail_watch_body(self->topic);
    s_buf_t out = {NULL, 0};
    sb_gmail_watch_status_t st = s_call(self, email, refresh_token, "watch", body, &out, err);
    if (st == SB_GMAIL_WATCH_OK && sb_gmail_watch_parse(out.data, out.len, info, err) != 0)
        st = SB_GMAIL_WATCH_FAILED;
    free(out.data);
    free(body);
    return st;
}

sb_gmail_watch_status_t
sb_gmail_watch_stop(sb_gmail_watch_t *self, const char *email, const char *refresh_token,
                    sb_err_t *err)
{
    s_buf_t out = {NULL, 0};
    sb_gmail_watch_status_t st = s_call(self, email, refresh_token, "stop", NULL, &out, err);
    free(out.data);
    return st;
}

// --- The rows --------------------------------------------------------------------------------

int
sb_gmail_watch_due(PGconn *db, int64_t renew_before_ms, char ***emails, size_t *n, sb_err_t *err)
{
    *emails = NULL;
    *n = 0;
    char before[32];
    snprintf(before, sizeof before, "%lld", (long long)renew_before_ms);
    const char *params[] = {before};
    PGresult *res = sb_renewer_db_query(
        db, "could not list the mailboxes due",
        "SELECT DISTINCT lower(email), watch_expires_at FROM mailboxes"
        " WHERE status = 'active'"
        "   AND (watch_expires_at IS NULL"
        "        OR watch_expires_at < now() + $1::bigint * interval '1 millisecond')"
        "   AND (renew_after IS NULL OR renew_after <= now())"
        " ORDER BY watch_expires_at NULLS FIRST",
        1, params, err);
    if (res == NULL)
        return -1;
    int rows = PQntuples(res);
    char **out = sb_xcalloc((size_t)rows + 1, sizeof *out);
    for (int i = 0; i < rows; i++)
        out[i] = sb_xstrdup(PQgetvalue(res, i, 0));
    PQclear(res);
    *emails = out;
    *n = (size_t)rows;
    return 0;
}

typedef struct {
    char email[256]; // as stored
    char *stored;    // refresh_token as stored (may be sealed); secret
    int has_history; // history_id is set
    int failures;    // renew_failures
} s_row_t;

// Read the mailbox under the lock: 1 due (row filled), 0 not due, -1 error.
static int
s_row_read(const sb_gmail_watch_env_t *env, const char *key, s_row_t *row, sb_err_t *err)
{
    char before[32];
    snprintf(before, sizeof before, "%lld", (long long)env->renew_before_ms);
    const char *params[] = {key, before};
    PGresult *res = sb_renewer_db_query(
        env->db, "could not read the mailbox",
        "SELECT email, refresh_token, history_id IS NOT NULL, renew_failures FROM mailboxes"
        " WHERE lower(email) = $1 AND status = 'active'"
        "   AND (watch_expires_at IS NULL"
        "        OR watch_expires_at < now() + $2::bigint * interval '1 millisecond')"
        "   AND (renew_after IS NULL OR renew_after <= now())"
        " ORDER BY id LIMIT 1",
        2, params, err);
    if (res == NULL)
        return -1;
    int due = PQntuples(res) == 1;
    if (due) {
        snprintf(row->email, sizeof row->email, "%s", PQgetvalue(res, 0, 0));
        row->stored = PQgetisnull(res, 0, 1) ? NULL : sb_xstrdup(PQgetvalue(res, 0, 1));
        row->has_history = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
        row->failures = (int)strtol(PQgetvalue(res, 0, 3), NULL, 10);
        char *v = PQgetvalue(res, 0, 1);
        OPENSSL_cleanse(v, strlen(v));
    }
    PQclear(res);
    return due;
}

static int
s_store_watch(const sb_gmail_watch_env_t *env, const s_row_t *row, const char *plain,
              const sb_gmail_watch_info_t *info, sb_mailbox_result_t *res, sb_err_t *err)
{
    char expiration[32];
    snprintf(expiration, sizeof expiration, "%lld", (long long)info->expiration_ms);
    const char *params[] = {row->email, expiration, info->history_id};
    if (sb_renewer_db_exec(
            env->db, "could not store the watch",
            "UPDATE mailboxes SET watch_expires_at = to_timestamp($2::numeric / 1000),"
            " watch_renewed_at = now(), history_id = COALESCE(history_id, $3::bigint),"
            " renew_failures = 0, renew_after = NULL, last_error = NULL,"
            " updated_at = now() WHERE email = $1",
            3, params, err) != 0)
        return -1;
    res->outcome = SB_MAILBOX_RENEWED;
    res->expires_ms = info->expiration_ms;
    res->history_set = !row->has_history;
    // A token written in clear before the key was set: seal it now (only if unchanged).
    if (env->box != NULL && row->stored != NULL && !sb_secretbox_is_sealed(row->stored)) {
        char *ctx = sb_xasprintf(S_CONTEXT_PREFIX "%s", row->email);
        sb_err_t seal_err = {0};
        char *sealed = sb_secretbox_seal(env->box, plain, ctx, &seal_err);
        if (sealed != NULL) {
            const char *p2[] = {row->email, sealed, row->stored};
            sb_err_t ignored = {0}; // next round tries again
            sb_renewer_db_exec(env->db, "could not seal the refresh token",
                               "UPDATE mailboxes SET refresh_token = $2"
                               " WHERE email = $1 AND refresh_token = $3",
                               3, p2, &ignored);
            free(sealed);
        }
        free(ctx);
    }
    return 0;
}

static int
s_store_reauth(const sb_gmail_watch_env_t *env, const s_row_t *row, sb_mailbox_result_t *res,
               sb_err_t *err)
{
    const char *params[] = {row->email, res->why};
    res->outcome = SB_MAILBOX_REAUTH;
    res->failures = row->failures + 1;
    return sb_renewer_db_exec(env->db, "could not mark the mailbox",
                              "UPDATE mailboxes SET status = 'reauth_required', last_error = $2,"
                              " renew_failures = renew_failures + 1, updated_at = now()"
                              " WHERE email = $1",
                              2, params, err);
}

static int
s_store_failure(const sb_gmail_watch_env_t *env, const s_row_t *row, sb_mailbox_result_t *res,
                sb_err_t *err)
{
    res->outcome = SB_MAILBOX_FAILED;
    res->failures = row->failures + 1;
    res->retry_in_ms = sb_renewer_backoff_ms(res->failures, env->backoff_min_ms,
                                             env->backoff_max_ms, sb_renewer_random_unit());
    char wait[32];
    snprintf(wait, sizeof wait, "%lld", (long long)res->retry_in_ms);
    const char *params[] = {row->email, res->why, wait};
    return sb_renewer_db_exec(env->db, "could not record the failure",
                              "UPDATE mailboxes SET renew_failures = renew_failures + 1,"
                              " renew_after = now() + $3::bigint * interval '1 millisecond',"
                              " last_error = $2, updated_at = now() WHERE email = $1",
                              3, params, err);
}

// The watch call for a row read under the lock, and what it means for the row.
static int
s_renew_row(const sb_gmail_watch_env_t *env, const s_row_t *row, sb_mailbox_result_t *res,
            sb_err_t *err)
{
    if (row->stored == NULL || row->stored[0] == '\0') {
        snprintf(res->why, sizeof res->why, "the mailbox has no refresh token");
        return s_store_reauth(env, row, res, err);
    }
    char *ctx = sb_xasprintf(S_CONTEXT_PREFIX "%s", row->email);
    sb_err_t why = {0};
    char *plain = sb_secretbox_load(env->box, row->stored, ctx, &why);
    free(ctx);
    if (plain == NULL) { // no key, another key: an operator must act, but not in a hot loop
        snprintf(res->why, sizeof res->why, "cannot read the refresh token: %.200s", why.msg);
        return s_store_failure(env, row, res, err);
    }
    sb_gmail_watch_info_t info;
    sb_gmail_watch_status_t st = sb_gmail_watch_start(env->gw, row->email, plain, &info, &why);
    int rc;
    if (st == SB_GMAIL_WATCH_OK) {
        rc = s_store_watch(env, row, plain, &info, res, err);
    } else if (st == SB_GMAIL_WATCH_REAUTH) {
        snprintf(res->why, sizeof res->why, "%s", why.msg);
        rc = s_store_reauth(env, row, res, err);
    } else {
        snprintf(res->why, sizeof res->why, "%s", why.msg);
        rc = s_store_failure(env, row, res, err);
    }
    s_wipe_free(plain);
    return rc;
}

int
sb_gmail_watch_renew(const sb_gmail_watch_env_t *env, const char *email, sb_mailbox_result_t *res,
                     sb_err_t *err)
{
    memset(res, 0, sizeof *res);
    snprintf(res->email, sizeof res->email, "%s", email);
    char *key = sb_xstrdup(email);
    for (char *p = key; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int got = sb_renewer_db_trylock(env->db, SB_RENEWER_LOCK_MAILBOX, key, err);
    if (got <= 0) {
        res->outcome = SB_MAILBOX_BUSY;
        free(key);
        return got;
    }
    // Read again under the lock: a replica that held it a moment ago may have renewed it.
    s_row_t row = {.stored = NULL};
    int rc = s_row_read(env, key, &row, err);
    if (rc == 0) {
        res->outcome = SB_MAILBOX_NOT_DUE;
    } else if (rc == 1) {
        snprintf(res->email, sizeof res->email, "%s", row.email);
        rc = s_renew_row(env, &row, res, err);
    }
    s_wipe_free(row.stored);
    sb_renewer_db_unlock(env->db, SB_RENEWER_LOCK_MAILBOX, key);
    free(key);
    return rc < 0 ? -1 : 0;
}
