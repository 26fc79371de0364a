/* sb_ringcentral - RingCentral REST client: token, retries, requests (see the header). */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include "sb_ringcentral.h"
#include "sb_b64.h"
#include "sb_mem.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_TOKEN_PATH "/restapi/oauth/token"
#define S_JWT_GRANT "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define S_CONNECT_TIMEOUT_MS 5000 // of the timeout_ms budget, at most this for connecting
#define S_ID_MAX 20               // digits of a message id (an int64)

struct sb_ringcentral {
    char *server;               // base URL without a trailing '/'
    char *jwt;                  // secret: wiped on destroy
    char *basic;                // "Basic ..." of the token request; secret: wiped on destroy
    char *token;                // access token, or NULL; secret: wiped when dropped
    int64_t token_expires_ms;   // monotonic ms after which the token is not used
    int max_attempts;           // tries per request
    int64_t backoff_ms;         // first retry wait
    int64_t backoff_max_ms;     // cap of the wait
    int64_t retry_after_max_ms; // longest Retry-After honoured
    long timeout_ms;            // one exchange
    sb_rc_sleep_fn sleep;       // how to wait between tries
    void *sleep_arg;
    CURL *curl;      // one handle, so the connection is kept alive between requests
    bool curl_ready; // curl_global_init succeeded: destroy owes a cleanup
    uint64_t rng;    // xorshift64 state for the jitter
    sb_rc_stats_t stats;
};

// One HTTP exchange to make.
typedef struct {
    const char *method; // "GET", "POST" ...
    const char *path;   // for URLs and messages
    const char *body;   // or NULL
    size_t body_len;
    const char *content_type; // of body
    bool token_request;       // Basic auth with the client credentials, else Bearer token
    bool idempotent;          // see the header
} s_req_t;

// What one exchange left behind besides the response.
typedef struct {
    int64_t retry_after_ms; // from the Retry-After header, or -1
    bool excess;            // the body passed SB_RC_MAX_BODY
    bool never_connected;   // transport error before the request could leave
} s_meta_t;

typedef struct {
    sb_rc_response_t *res;
    s_meta_t *meta;
} s_sink_t;

static int
s_default_sleep(int64_t ms, void *arg)
{
    (void)arg;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ; // the rest of the wait; a stage that must stop sooner passes its own sleep
    return 0;
}

// Overwrite and free a secret, so it does not linger in freed memory.
static void
s_wipe(char **secret)
{
    if (*secret) {
        memset(*secret, 0, strlen(*secret));
        free(*secret);
        *secret = NULL;
    }
}

static void
s_drop_token(sb_ringcentral_t *self)
{
    s_wipe(&self->token);
    self->token_expires_ms = 0;
}

sb_ringcentral_t *
sb_ringcentral_new(const sb_ringcentral_opts_t *opts, sb_err_t *err)
{
    assert(opts);
    const char *server =
        opts->server_url && *opts->server_url ? opts->server_url : SB_RC_DEFAULT_SERVER;
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
        sb_err_set(err, 0, "invalid RingCentral server URL \"%s\": not http(s)", server);
        return NULL;
    }
    if (!opts->client_id || !*opts->client_id || !opts->client_secret || !*opts->client_secret ||
        !opts->jwt || !*opts->jwt) {
        sb_err_set(err, 0,
                   "cannot use the RingCentral API: RINGCENTRAL_CLIENT_ID, "
                   "RINGCENTRAL_CLIENT_SECRET and RINGCENTRAL_JWT must all be set");
        return NULL;
    }
    sb_ringcentral_t *self = sb_xcalloc(1, sizeof *self);
    size_t len = strlen(server);
    while (len > 0 && server[len - 1] == '/')
        len--;
    self->server = sb_xstrndup(server, len);
    self->jwt = sb_xstrdup(opts->jwt);
    self->basic = sb_ringcentral_basic_credentials(opts->client_id, opts->client_secret);
    self->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : SB_RC_MAX_ATTEMPTS;
    self->backoff_ms = opts->backoff_ms > 0 ? opts->backoff_ms : SB_RC_BACKOFF_MS;
    self->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : SB_RC_BACKOFF_MAX_MS;
    self->retry_after_max_ms =
        opts->retry_after_max_ms > 0 ? opts->retry_after_max_ms : SB_RC_RETRY_AFTER_MAX_MS;
    self->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : SB_RC_TIMEOUT_MS;
    self->sleep = opts->sleep ? opts->sleep : s_default_sleep;
    self->sleep_arg = opts->sleep_arg;
    self->rng = ((uint64_t)getpid() << 32) ^ (uint64_t)sb_mono_ms() ^ 0x9e3779b97f4a7c15ULL;
    // Reference-counted by libcurl, and thread-safe since 7.84: pairs with destroy.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        sb_err_set(err, 0, "could not initialise libcurl");
        goto fail;
    }
    self->curl_ready = true;
    self->curl = curl_easy_init();
    if (self->curl == NULL) {
        sb_err_set(err, 0, "could not initialise libcurl: curl_easy_init failed");
        goto fail;
    }
    return self;
fail:
    sb_ringcentral_destroy(&self);
    return NULL;
}

void
sb_ringcentral_destroy(sb_ringcentral_t **self_p)
{
    assert(self_p);
    sb_ringcentral_t *self = *self_p;
    if (self == NULL)
        return;
    if (self->curl)
        curl_easy_cleanup(self->curl);
    if (self->curl_ready)
        curl_global_cleanup();
    s_drop_token(self);
    s_wipe(&self->jwt);
    s_wipe(&self->basic);
    free(self->server);
    free(self);
    *self_p = NULL;
}

void
sb_rc_response_release(sb_rc_response_t *res)
{
    if (res == NULL)
        return;
    free(res->body);
    memset(res, 0, sizeof *res);
}

void
sb_ringcentral_stats(const sb_ringcentral_t *self, sb_rc_stats_t *out)
{
    *out = self->stats;
}

static size_t
s_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_sink_t *sink = userdata;
    sb_rc_response_t *res = sink->res;
    size_t n = size * nmemb;
    if (n > SB_RC_MAX_BODY - res->len) {
        sink->meta->excess = true;
        return 0; // curl aborts the transfer with CURLE_WRITE_ERROR
    }
    res->body = sb_xrealloc(res->body, res->len + n + 1);
    memcpy(res->body + res->len, ptr, n);
    res->len += n;
    res->body[res->len] = '\0';
    return n;
}

// Retry-After: delta-seconds, or an HTTP date (RFC 9110 10.2.3). Anything else: ignored.
static int64_t
s_retry_after(const char *value)
{
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value >= '0' && *value <= '9') {
        char *end;
        errno = 0;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (errno != 0 || *end != '\0' || s > 86400)
            return s > 86400 ? 86400 * 1000LL : -1;
        return s * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when < 0)
        return -1;
    time_t now = time(NULL);
    return when > now ? (int64_t)(when - now) * 1000 : 0;
}

static size_t
s_on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_meta_t *meta = userdata;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    char line[256];
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        meta->retry_after_ms = -1; // a new response (after a 100 Continue) starts afresh
        return n;
    }
    if (n < sizeof name || n >= sizeof line || strncasecmp(ptr, name, sizeof name - 1) != 0)
        return n;
    memcpy(line, ptr + sizeof name - 1, n - (sizeof name - 1));
    line[n - (sizeof name - 1)] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    meta->retry_after_ms = s_retry_after(line);
    return n;
}

// Authorization: Bearer <token>, built in a buffer that is wiped after use.
static struct curl_slist *
s_headers(const sb_ringcentral_t *self, const s_req_t *req, char **auth)
{
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (req->body && req->content_type) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", req->content_type);
        h = curl_slist_append(h, ct);
    }
    *auth = req->token_request ? sb_xasprintf("Authorization: %s", self->basic)
                               : sb_xasprintf("Authorization: Bearer %s", self->token);
    h = curl_slist_append(h, *auth);
    h = curl_slist_append(h, "Expect:"); // no 100-continue round trip for small bodies
    return h;
}

// One exchange. 0 when an HTTP answer came (res->status set), -1 with err on a transport
// error (meta->never_connected says whether the request may have left).
static int
s_exchange(sb_ringcentral_t *self, const s_req_t *req, sb_rc_response_t *res, s_meta_t *meta,
           sb_err_t *err)
{
    memset(res, 0, sizeof *res);
    meta->retry_after_ms = -1;
    meta->excess = meta->never_connected = false;
    char *url = sb_xasprintf("%s%s", self->server, req->path);
    char *auth = NULL;
    struct curl_slist *headers = s_headers(self, req, &auth);
    s_sink_t sink = {res, meta};
    char curl_err[CURL_ERROR_SIZE] = "";
    CURL *c = self->curl;
    curl_easy_reset(c); // options only: the connection cache stays
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); // timeouts without SIGALRM: we are a daemon
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, self->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     self->timeout_ms < S_CONNECT_TIMEOUT_MS ? self->timeout_ms
                                                             : (long)S_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "switchboard/" SB_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, meta);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    // The handle keeps pointers to our buffers: clear them before they are freed.
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    s_wipe(&auth);
    free(url);
    if (res->body == NULL)
        res->body = sb_xstrdup("");
    if (rc == CURLE_OK)
        return 0;
    meta->never_connected = rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
                            rc == CURLE_COULDNT_RESOLVE_PROXY;
    if (meta->excess)
        sb_err_set(err, 0, "could not %s %s: response larger than %d bytes", req->method, req->path,
                   SB_RC_MAX_BODY);
    else
        sb_err_set(err, 0, "could not %s %s: %s", req->method, req->path,
                   curl_err[0] ? curl_err : curl_easy_strerror(rc));
    return -1;
}

// The wait before try number `attempt` + 1: exponential, with jitter over [half, full].
static int64_t
s_backoff(sb_ringcentral_t *self, int attempt)
{
    int64_t wait = self->backoff_ms;
    for (int i = 1; i < attempt && wait < self->backoff_max_ms; i++)
        wait *= 2;
    if (wait > self->backoff_max_ms)
        wait = self->backoff_max_ms;
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    return wait / 2 + (int64_t)(self->rng % (uint64_t)(wait / 2 + 1));
}

static bool
s_retryable_status(long status, bool idempotent)
{
    if (status == 429)
        return true; // "too many requests": refused before anything was done
    return idempotent && status >= 500 && status <= 599;
}

// One request with its retries. 0 with res for an answer that is final here (not 429 or
// 5xx), -1 with err when the tries ran out or a wait was refused.
static int
s_with_retries(sb_ringcentral_t *self, const s_req_t *req, sb_rc_response_t *res, sb_err_t *err)
{
    for (int attempt = 1;; attempt++) {
        s_meta_t meta;
        if (req->token_request)
            self->stats.token_requests++;
        else
            self->stats.requests++;
        int rc = s_exchange(self, req, res, &meta, err);
        bool retry;
        if (rc != 0) {
            retry = !meta.excess && (req->idempotent || meta.never_connected);
        } else {
            retry = s_retryable_status(res->status, req->idempotent);
            if (!retry)
                return 0;
            sb_err_set(err, 0, "could not %s %s: HTTP %ld after %d %s", req->method, req->path,
                       res->status, attempt, attempt == 1 ? "try" : "tries");
        }
        if (!retry || attempt >= self->max_attempts) {
            sb_rc_response_release(res);
            return -1;
        }
        int64_t wait = meta.retry_after_ms >= 0 ? meta.retry_after_ms : s_backoff(self, attempt);
        if (meta.retry_after_ms > self->retry_after_max_ms) {
            sb_err_set(err, 0, "could not %s %s: HTTP %ld, asked to wait %lld ms", req->method,
                       req->path, res->status, (long long)wait);
            sb_rc_response_release(res);
            return -1;
        }
        sb_rc_response_release(res);
        self->stats.retries++;
        if (self->sleep(wait, self->sleep_arg) != 0) {
            sb_err_set(err, EINTR, "could not %s %s: interrupted while waiting to retry",
                       req->method, req->path);
            return -1;
        }
    }
}

// Make sure a usable access token is held: 0, or -1 with err.
static int
s_token(sb_ringcentral_t *self, sb_err_t *err)
{
    if (self->token && sb_mono_ms() < self->token_expires_ms)
        return 0;
    s_drop_token(self);
    char *form = sb_ringcentral_token_form(self->jwt);
    s_req_t req = {"POST", S_TOKEN_PATH, form, strlen(form), "application/x-www-form-urlencoded",
                   true,   true};
    sb_rc_response_t res;
    int rc = s_with_retries(self, &req, &res, err);
    s_wipe(&form);
    if (rc != 0)
        return -1;
    int64_t lifetime_ms = 0;
    rc = sb_ringcentral_token_parse(res.status, res.body, res.len, &self->token, &lifetime_ms, err);
    if (rc == 0)
        self->token_expires_ms = sb_mono_ms() + lifetime_ms;
    memset(res.body, 0, res.len); // it held the token
    sb_rc_response_release(&res);
    return rc;
}

int
sb_ringcentral_request(sb_ringcentral_t *self, const char *method, const char *path,
                       const char *body, size_t body_len, int idempotent, sb_rc_response_t *res,
                       sb_err_t *err)
{
    assert(self && method && path && res);
    memset(res, 0, sizeof *res);
    if (path[0] != '/') {
        sb_err_set(err, 0, "invalid RingCentral API path \"%s\"", path);
        return -1;
    }
    s_req_t req = {method, path, body, body_len, "application/json", false, idempotent != 0};
    for (int refreshed = 0;; refreshed++) {
        if (s_token(self, err) != 0 || s_with_retries(self, &req, res, err) != 0)
            return -1;
        if (res->status != 401)
            return 0;
        sb_rc_response_release(res);
        if (refreshed) {
            sb_err_set(err, 0, "could not %s %s: HTTP 401 with a new access token", method, path);
            return -1;
        }
        // The token was revoked or expired early: a new one, and the request once more.
        s_drop_token(self);
        self->stats.refreshes++;
    }
}

int
sb_ringcentral_get(sb_ringcentral_t *self, const char *path, sb_rc_response_t *res, sb_err_t *err)
{
    return sb_ringcentral_request(self, "GET", path, NULL, 0, 1, res, err);
}

int
sb_ringcentral_post(sb_ringcentral_t *self, const char *path, const char *json,
                    sb_rc_response_t *res, sb_err_t *err)
{
    return sb_ringcentral_request(self, "POST", path, json, json ? strlen(json) : 0, 0, res, err);
}

int
sb_ringcentral_message_get(sb_ringcentral_t *self, const char *id, sb_rc_response_t *res,
                           sb_err_t *err)
{
    memset(res, 0, sizeof *res);
    char *path = sb_ringcentral_message_path(NULL, NULL, id);
    if (path == NULL) {
        sb_err_set(err, 0, "invalid RingCentral message id \"%.32s\"", id ? id : "");
        return -1;
    }
    int rc = sb_ringcentral_get(self, path, res, err);
    free(path);
    return rc;
}

// --- Pieces -------------------------------------------------------------------------------

// Percent-encode for a form value: everything but RFC 3986's unreserved characters.
static char *
s_form_escape(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(text);
    char *out = sb_xmalloc(len * 3 + 1), *p = out;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~') {
            *p++ = (char)*c;
        } else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    *p = '\0';
    return out;
}

char *
sb_ringcentral_token_form(const char *jwt)
{
    char *grant = s_form_escape(S_JWT_GRANT);
    char *assertion = s_form_escape(jwt);
    char *form = sb_xasprintf("grant_type=%s&assertion=%s", grant, assertion);
    free(grant);
    s_wipe(&assertion);
    return form;
}

char *
sb_ringcentral_basic_credentials(const char *client_id, const char *client_secret)
{
    char *pair = sb_xasprintf("%s:%s", client_id, client_secret);
    char *b64 = sb_b64_encode(pair, strlen(pair), SB_B64_STD);
    char *value = sb_xasprintf("Basic %s", b64);
    s_wipe(&pair);
    s_wipe(&b64);
    return value;
}

// The OAuth error code of a refused token request ("invalid_grant", "OAU-251"), if any:
// codes are not secrets, and they say what to fix.
static void
s_token_error(const char *body, size_t len, char *out, size_t size)
{
    out[0] = '\0';
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *code = json_string_value(json_object_get(doc, "error"));
    if (code == NULL)
        code = json_string_value(json_object_get(doc, "errorCode"));
    if (code && strlen(code) < 64 &&
        strspn(code, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") ==
            strlen(code))
        snprintf(out, size, " (%s)", code);
    json_decref(doc);
}

int
sb_ringcentral_token_parse(long status, const char *body, size_t len, char **token,
                           int64_t *lifetime_ms, sb_err_t *err)
{
    *token = NULL;
    if (status != 200) {
        char code[80];
        s_token_error(body, len, code, sizeof code);
        sb_err_set(err, 0, "RingCentral refused the token request: HTTP %ld%s", status, code);
        return -1;
    }
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *value = json_string_value(json_object_get(doc, "access_token"));
    json_t *expires = json_object_get(doc, "expires_in");
    if (value == NULL || *value == '\0') {
        json_decref(doc);
        sb_err_set(err, 0, "invalid RingCentral token response: no access_token");
        return -1;
    }
    json_int_t expires_s = json_is_integer(expires) ? json_integer_value(expires) : 3600;
    if (expires_s <= 0)
        expires_s = 3600;
    // Use the token a little less long than it lives, so a request never carries one
    // that expires on its way; a very short lifetime is still used for half of it.
    int64_t margin = expires_s > 2 * SB_RC_TOKEN_MARGIN_S ? SB_RC_TOKEN_MARGIN_S : expires_s / 2;
    *token = sb_xstrdup(value);
    *lifetime_ms = (expires_s - margin) * 1000;
    json_decref(doc);
    return 0;
}

char *
sb_ringcentral_message_path(const char *account, const char *extension, const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > S_ID_MAX || strspn(id, "0123456789") != len)
        return NULL;
    const char *acc = account && *account && strspn(account, "0123456789") == strlen(account) &&
                              strlen(account) <= S_ID_MAX
                          ? account
                          : "~";
    const char *ext = extension && *extension &&
                              strspn(extension, "0123456789") == strlen(extension) &&
                              strlen(extension) <= S_ID_MAX
                          ? extension
                          : "~";
    return sb_xasprintf("/restapi/v1.0/account/%s/extension/%s/message-store/%s", acc, ext, id);
}
