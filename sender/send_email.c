/* send_email - an outbox e-mail through the Gmail API (see the header). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "send_email.h"
#include "rfc5322.h"
#include "sb_b64.h"
#include "sb_gmail_message.h"
#include "sb_google_oauth.h"
#include "sb_mem.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_ERROR_TEXT_MAX 300 // bytes of Google's message kept
#define S_CONNECT_TIMEOUT_MS 5000L

struct sb_gmail_send {
    char *api_base;           // GMAIL_API_BASE_URL without a trailing "/"
    sb_google_oauth_t *oauth; // access tokens per mailbox
    long timeout_ms;          // one HTTP exchange
};

// One HTTP exchange. status 0 when no answer came; *never_connected when the request
// surely did not leave (so a POST may be tried again without a look).
typedef struct {
    long status;
    char *body; // owned, NUL-terminated
    size_t len;
    int never_connected;
    int too_large;
    char error[CURL_ERROR_SIZE];
} s_http_t;

static void
s_http_release(s_http_t *h)
{
    free(h->body);
    memset(h, 0, sizeof *h);
}

static size_t
s_on_body(char *data, size_t size, size_t n, void *arg)
{
    s_http_t *h = arg;
    size_t k = size * n;
    if (h->len + k > SB_SEND_EMAIL_MAX_BODY) {
        h->too_large = 1;
        return 0;
    }
    h->body = sb_xrealloc(h->body, h->len + k + 1);
    memcpy(h->body + h->len, data, k);
    h->len += k;
    h->body[h->len] = '\0';
    return k;
}

static void
s_http(const sb_gmail_send_t *self, const char *method, const char *url, const char *token,
       const char *json, s_http_t *h)
{
    memset(h, 0, sizeof *h);
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(h->error, sizeof h->error, "could not create a curl handle");
        h->never_connected = 1;
        h->body = sb_xstrdup("");
        return;
    }
    struct curl_slist *headers = NULL;
    char *auth = sb_xasprintf("Authorization: Bearer %s", token);
    headers = curl_slist_append(headers, auth);
    if (json)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, self->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     self->timeout_ms < S_CONNECT_TIMEOUT_MS ? self->timeout_ms
                                                             : S_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "switchboard-sender/" SB_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->error);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (json) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
    else if (h->error[0] == '\0')
        snprintf(h->error, sizeof h->error, "%s", curl_easy_strerror(rc));
    h->never_connected = rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
                         rc == CURLE_COULDNT_RESOLVE_PROXY;
    curl_slist_free_all(headers);
    OPENSSL_cleanse(auth, strlen(auth));
    free(auth);
    curl_easy_cleanup(c);
    if (h->body == NULL)
        h->body = sb_xstrdup("");
}

sb_gmail_send_t *
sb_gmail_send_new(const char *api_base, const char *token_url, const char *client_id,
                  const char *client_secret, long timeout_ms)
{
    sb_gmail_send_t *self = sb_xcalloc(1, sizeof *self);
    self->api_base =
        sb_xstrdup(api_base && api_base[0] ? api_base : "https://gmail.googleapis.com");
    size_t n = strlen(self->api_base);
    while (n > 0 && self->api_base[n - 1] == '/')
        self->api_base[--n] = '\0';
    self->oauth = sb_google_oauth_new(token_url, client_id, client_secret);
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 15000;
    return self;
}

void
sb_gmail_send_destroy(sb_gmail_send_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sb_gmail_send_t *self = *self_p;
    sb_google_oauth_destroy(&self->oauth);
    free(self->api_base);
    free(self);
    *self_p = NULL;
}

void
sb_gmail_sent_release(sb_gmail_sent_t *sent)
{
    if (sent == NULL)
        return;
    free(sent->id);
    free(sent->thread_id);
    free(sent->references);
    memset(sent, 0, sizeof *sent);
}

// --- Pure pieces -------------------------------------------------------------------------------

char *
sb_send_email_message(const sb_outbox_job_t *job, int64_t now_ms, size_t *len, char **references,
                      char **why)
{
    sb_rfc5322_msg_t m = {.from = job->from_address,
                          .to = job->to_address,
                          .subject = job->subject,
                          .body = job->body,
                          .message_id = job->message_id,
                          .in_reply_to = job->parent_message_id,
                          .references = job->parent_references,
                          .outbox_id = job->id,
                          .date_ms = now_ms};
    sb_err_t err = {0};
    char *raw = sb_rfc5322_build(&m, len, &err);
    *references = NULL;
    if (raw == NULL) {
        *why = sb_xstrdup(err.msg);
        return NULL;
    }
    *references = sb_rfc5322_references(job->parent_references, job->parent_message_id);
    return raw;
}

char *
sb_send_email_body(const char *raw, size_t len, const char *thread_id)
{
    char *b64 = sb_b64_encode(raw, len, SB_B64_URL | SB_B64_NO_PAD);
    json_t *doc = json_object();
    json_object_set_new(doc, "raw", json_string(b64));
    if (thread_id && thread_id[0])
        json_object_set_new(doc, "threadId", json_string(thread_id));
    char *out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    free(b64);
    return out ? out : sb_xstrdup("{}");
}

char *
sb_send_google_error(long status, const char *body, size_t len)
{
    json_t *doc = json_loadb(body ? body : "", len, 0, NULL);
    const json_t *e = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(e, "status"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (json_is_string(e)) { // OAuth style: {"error": "...", "error_description": "..."}
        code = json_string_value(e);
        msg = json_string_value(json_object_get(doc, "error_description"));
    }
    char *out;
    if (msg || code)
        out = sb_xasprintf("HTTP %ld%s%.40s: %.*s", status, code ? " " : "", code ? code : "",
                           S_ERROR_TEXT_MAX, msg ? msg : "");
    else
        out = sb_xasprintf("HTTP %ld", status);
    json_decref(doc);
    return out;
}

// A rate limit in Google's words: 429, or 403 with reason rateLimitExceeded /
// userRateLimitExceeded (nothing was done; try again later).
static int
s_rate_limited(long status, const char *body, size_t len)
{
    if (status == 429)
        return 1;
    if (status != 403)
        return 0;
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *reason = json_string_value(json_object_get(
        json_array_get(json_object_get(json_object_get(doc, "error"), "errors"), 0), "reason"));
    int limited = reason && strstr(reason, "ateLimitExceeded") != NULL;
    json_decref(doc);
    return limited;
}

// A Gmail message id: 1-64 characters of [0-9A-Za-z_-].
static char *
s_gmail_id(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return NULL;
    return sb_xstrdup(s);
}

// --- Calls -------------------------------------------------------------------------------------

// An access token for mailbox: OK with *token (borrowed from the cache), else *why.
static sb_send_status_t
s_token(sb_gmail_send_t *self, const char *mailbox, const char *refresh_token, const char **token,
        char **why)
{
    sb_err_t err = {0};
    sb_google_oauth_status_t st =
        sb_google_oauth_refresh(self->oauth, mailbox, refresh_token, sb_wall_ms(), &err);
    *token =
        st == SB_GOOGLE_OAUTH_OK ? sb_google_oauth_token(self->oauth, mailbox, sb_wall_ms()) : NULL;
    if (*token)
        return SB_SEND_OK;
    switch (st) {
    case SB_GOOGLE_OAUTH_INVALID_GRANT:
        *why = sb_xasprintf("mailbox %.100s must be connected again: %s", mailbox, err.msg);
        return SB_SEND_PERMANENT;
    case SB_GOOGLE_OAUTH_CLIENT:
        *why = sb_xasprintf("Google refused our OAuth client: %s", err.msg);
        return SB_SEND_PERMANENT;
    default:
        *why = sb_xasprintf("no access token for %.100s: %s", mailbox,
                            err.msg[0] ? err.msg : "token expired at once");
        return SB_SEND_RETRY;
    }
}

// One API call as mailbox with a fresh token; a 401 drops the token and tries once more.
// RETRY (with *why) when no token could be had; otherwise OK with *h filled (any status).
static sb_send_status_t
s_api(sb_gmail_send_t *self, const char *mailbox, const char *refresh_token, const char *method,
      const char *path_and_query, const char *json, s_http_t *h, char **why)
{
    char *user = curl_easy_escape(NULL, mailbox, 0);
    char *url =
        sb_xasprintf("%s/gmail/v1/users/%s/%s", self->api_base, user ? user : "me", path_and_query);
    curl_free(user);
    sb_send_status_t st = SB_SEND_OK;
    for (int tries = 0; tries < 2; tries++) {
        const char *token;
        st = s_token(self, mailbox, refresh_token, &token, why);
        if (st != SB_SEND_OK)
            break;
        s_http(self, method, url, token, json, h);
        if (h->status != 401)
            break;
        sb_google_oauth_invalidate(self->oauth, mailbox);
        if (tries == 0)
            s_http_release(h);
    }
    free(url);
    return st;
}

sb_send_status_t
sb_send_email(sb_gmail_send_t *self, const sb_outbox_job_t *job, const char *refresh_token,
              int64_t now_ms, sb_gmail_sent_t *out, char **why)
{
    memset(out, 0, sizeof *out);
    *why = NULL;
    size_t len;
    char *refs = NULL;
    char *raw = sb_send_email_message(job, now_ms, &len, &refs, why);
    if (raw == NULL)
        return SB_SEND_PERMANENT;
    char *body = sb_send_email_body(raw, len, job->thread_id);
    free(raw);
    s_http_t h;
    sb_send_status_t st =
        s_api(self, job->from_address, refresh_token, "POST", "messages/send", body, &h, why);
    free(body);
    if (st != SB_SEND_OK) {
        free(refs);
        return st;
    }
    if (h.status == 0) {
        *why = sb_xasprintf("could not POST messages/send: %s", h.error);
        st = h.never_connected ? SB_SEND_RETRY : SB_SEND_UNCERTAIN;
    } else if (h.status >= 200 && h.status <= 299) {
        json_t *doc = json_loadb(h.body, h.len, 0, NULL);
        out->id = s_gmail_id(json_object_get(doc, "id"));
        out->thread_id = s_gmail_id(json_object_get(doc, "threadId"));
        json_decref(doc);
        if (out->id) {
            out->references = refs;
            refs = NULL;
        } else {
            *why = sb_xasprintf("HTTP %ld without a message id", h.status);
            st = SB_SEND_UNCERTAIN;
        }
    } else {
        *why = sb_send_google_error(h.status, h.body, h.len);
        st = h.status == 401 || s_rate_limited(h.status, h.body, h.len) ? SB_SEND_RETRY
             : h.status >= 500                                          ? SB_SEND_UNCERTAIN
                                                                        : SB_SEND_PERMANENT;
    }
    if (st != SB_SEND_OK)
        sb_gmail_sent_release(out);
    free(refs);
    s_http_release(&h);
    return st;
}

// messages.list with query q: the messages' ids (at most max) into ids. OK or RETRY.
static sb_send_status_t
s_list(sb_gmail_send_t *self, const sb_outbox_job_t *job, const char *refresh_token, const char *q,
       char **ids, char **threads, size_t max, size_t *n, char **why)
{
    *n = 0;
    char *eq = curl_easy_escape(NULL, q, 0);
    char *path =
        sb_xasprintf("messages?q=%s&includeSpamTrash=true&maxResults=%zu", eq ? eq : "", max);
    curl_free(eq);
    s_http_t h;
    sb_send_status_t st = s_api(self, job->from_address, refresh_token, "GET", path, NULL, &h, why);
    free(path);
    if (st != SB_SEND_OK)
        return st;
    if (h.status < 200 || h.status > 299) {
        *why = h.status ? sb_send_google_error(h.status, h.body, h.len)
                        : sb_xasprintf("could not list messages: %s", h.error);
        s_http_release(&h);
        return SB_SEND_RETRY;
    }
    json_t *doc = json_loadb(h.body, h.len, 0, NULL);
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(doc, "messages"), i, m)
    {
        char *id = s_gmail_id(json_object_get(m, "id"));
        if (id == NULL || *n >= max) {
            free(id);
            continue;
        }
        ids[*n] = id;
        threads[*n] = s_gmail_id(json_object_get(m, "threadId"));
        (*n)++;
    }
    json_decref(doc);
    s_http_release(&h);
    return SB_SEND_OK;
}

// messages.get?format=metadata of id with the named headers, parsed. OK with *msg (NULL
// when the message is gone), or RETRY.
static sb_send_status_t
s_metadata(sb_gmail_send_t *self, const char *mailbox, const char *refresh_token, const char *id,
           const char *headers, sb_gmail_message_t **msg, char **why)
{
    *msg = NULL;
    char *path = sb_xasprintf("messages/%s?format=metadata%s", id, headers);
    s_http_t h;
    sb_send_status_t st = s_api(self, mailbox, refresh_token, "GET", path, NULL, &h, why);
    free(path);
    if (st != SB_SEND_OK)
        return st;
    if (h.status >= 200 && h.status <= 299) {
        sb_err_t err = {0};
        *msg = sb_gmail_message_parse(h.body, h.len, &err);
    } else if (h.status != 404) {
        *why = h.status ? sb_send_google_error(h.status, h.body, h.len)
                        : sb_xasprintf("could not read message %s: %s", id, h.error);
        st = SB_SEND_RETRY;
    }
    s_http_release(&h);
    return st;
}

// Does message id carry X-Switchboard-Outbox-Id = job->id? 1 yes, 0 no, -1 RETRY (*why).
static int
s_has_our_header(sb_gmail_send_t *self, const sb_outbox_job_t *job, const char *refresh_token,
                 const char *id, char **why)
{
    char *path = sb_xasprintf("messages/%s?format=metadata"
                              "&metadataHeaders=X-Switchboard-Outbox-Id",
                              id);
    s_http_t h;
    sb_send_status_t st = s_api(self, job->from_address, refresh_token, "GET", path, NULL, &h, why);
    free(path);
    if (st != SB_SEND_OK)
        return -1;
    int found = 0;
    if (h.status >= 200 && h.status <= 299) {
        json_t *doc = json_loadb(h.body, h.len, 0, NULL);
        size_t i;
        const json_t *hd;
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)job->id);
        json_array_foreach(json_object_get(json_object_get(doc, "payload"), "headers"), i, hd)
        {
            const char *name = json_string_value(json_object_get(hd, "name"));
            const char *value = json_string_value(json_object_get(hd, "value"));
            if (name && value && strcasecmp(name, "X-Switchboard-Outbox-Id") == 0 &&
                strcmp(value, want) == 0)
                found = 1;
        }
        json_decref(doc);
    } else if (h.status != 404) {
        *why = h.status ? sb_send_google_error(h.status, h.body, h.len)
                        : sb_xasprintf("could not read message %s: %s", id, h.error);
        found = -1;
    }
    s_http_release(&h);
    return found;
}

sb_send_status_t
sb_send_email_find(sb_gmail_send_t *self, const sb_outbox_job_t *job, const char *refresh_token,
                   sb_gmail_sent_t *out, char **why)
{
    memset(out, 0, sizeof *out);
    *why = NULL;
    char *ids[SB_SEND_EMAIL_SCAN_MAX], *threads[SB_SEND_EMAIL_SCAN_MAX];
    size_t n = 0;
    char *msgid = sb_rfc5322_msgid_clean(job->message_id);
    char *q = msgid ? sb_xasprintf("rfc822msgid:%.*s", (int)strlen(msgid) - 2, msgid + 1) : NULL;
    free(msgid);
    sb_send_status_t st = SB_SEND_OK;
    if (q)
        st = s_list(self, job, refresh_token, q, ids, threads, 1, &n, why);
    free(q);
    if (st == SB_SEND_OK && n == 0) {
        // Gmail may have put a Message-ID of its own: our header is still there.
        q = sb_xasprintf("in:sent to:%s after:%lld", job->to_address,
                         (long long)(job->first_sending_ms / 1000 - SB_SEND_EMAIL_SKEW_S));
        st = s_list(self, job, refresh_token, q, ids, threads, SB_SEND_EMAIL_SCAN_MAX, &n, why);
        free(q);
        size_t keep = n;
        for (size_t i = 0; st == SB_SEND_OK && i < n && keep == n; i++) {
            int has = s_has_our_header(self, job, refresh_token, ids[i], why);
            if (has < 0)
                st = SB_SEND_RETRY;
            else if (has)
                keep = i;
        }
        for (size_t i = 0; i < n; i++) { // only the one that carries our header stays
            if (i != keep) {
                free(ids[i]);
                free(threads[i]);
            }
        }
        if (st == SB_SEND_OK && keep < n) {
            ids[0] = ids[keep];
            threads[0] = threads[keep];
        }
        n = st == SB_SEND_OK && keep < n ? 1 : 0;
    }
    if (st != SB_SEND_OK)
        return st;
    if (n == 0)
        return SB_SEND_NOT_FOUND;
    out->id = ids[0];
    out->thread_id = threads[0];
    out->references = sb_rfc5322_references(job->parent_references, job->parent_message_id);
    return SB_SEND_OK;
}

sb_send_status_t
sb_send_email_parent(sb_gmail_send_t *self, sb_outbox_job_t *job, const char *refresh_token,
                     char **why)
{
    *why = NULL;
    if (job->parent_message_id || job->parent_external_id == NULL)
        return SB_SEND_OK;
    sb_gmail_message_t *msg = NULL;
    sb_send_status_t st =
        s_metadata(self, job->from_address, refresh_token, job->parent_external_id,
                   "&metadataHeaders=Message-ID&metadataHeaders=References"
                   "&metadataHeaders=In-Reply-To",
                   &msg, why);
    if (st == SB_SEND_OK && msg) {
        job->parent_message_id = msg->message_id ? sb_xstrdup(msg->message_id) : NULL;
        const char *refs = msg->references ? msg->references : msg->in_reply_to;
        job->parent_references = refs ? sb_xstrdup(refs) : NULL;
    }
    sb_gmail_message_destroy(&msg);
    return st;
}
