/* sb_google_oauth - the refresh-token grant and the per-mailbox token cache (see the
 * header). Entries live in a CZMQ hash keyed by the lower-cased mailbox address. */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "sb_google_oauth.h"
#include "sb_mem.h"
#include "sb_banned.h"

#define S_DIGEST_BYTES 32         // SHA-256
#define S_EXPIRES_IN_MAX 86400    // an expires_in beyond a day is not believed
#define S_EXPIRES_IN_DEFAULT 3600 // when the answer has none
#define S_TOKEN_MAX_BYTES 8192    // an access_token longer than this is refused

typedef struct {
    char *access_token;                           // owned, wiped on release; NULL when none
    int64_t expires_at_ms;                        // when access_token stops working
    unsigned char blocked_digest[S_DIGEST_BYTES]; // SHA-256 of the refresh token that failed
    int64_t blocked_until_ms;                     // invalid_grant hold; 0 when not blocked
} s_entry_t;

struct sb_google_oauth {
    char *token_url;     // GOOGLE_TOKEN_URL
    char *client_id;     // GOOGLE_CLIENT_ID, or NULL
    char *client_secret; // GOOGLE_CLIENT_SECRET (secret), or NULL
    zhashx_t *entries;   // lower-cased mailbox -> s_entry_t
};

static void
s_wipe_free(char *text)
{
    if (text == NULL)
        return;
    OPENSSL_cleanse(text, strlen(text));
    free(text);
}

static void
s_entry_destroy(void **item)
{
    s_entry_t *entry = *item;
    if (entry == NULL)
        return;
    s_wipe_free(entry->access_token);
    free(entry);
    *item = NULL;
}

sb_google_oauth_t *
sb_google_oauth_new(const char *token_url, const char *client_id, const char *client_secret)
{
    sb_google_oauth_t *self = sb_xcalloc(1, sizeof *self);
    self->token_url = sb_xstrdup(token_url && *token_url ? token_url : SB_GOOGLE_TOKEN_URL_DEFAULT);
    self->client_id = client_id ? sb_xstrdup(client_id) : NULL;
    self->client_secret = client_secret ? sb_xstrdup(client_secret) : NULL;
    self->entries = zhashx_new();
    assert(self->entries);
    zhashx_set_destructor(self->entries, s_entry_destroy);
    return self;
}

void
sb_google_oauth_destroy(sb_google_oauth_t **self_p)
{
    assert(self_p);
    sb_google_oauth_t *self = *self_p;
    if (self == NULL)
        return;
    zhashx_destroy(&self->entries);
    free(self->token_url);
    free(self->client_id);
    s_wipe_free(self->client_secret);
    free(self);
    *self_p = NULL;
}

const char *
sb_google_oauth_url(const sb_google_oauth_t *self)
{
    return self->token_url;
}

// The hash key of a mailbox: ASCII lower case (addresses are compared that way in SQL
// too), cut at 320 bytes, the longest valid address.
static void
s_key(const char *mailbox, char *out, size_t size)
{
    size_t i = 0;
    for (; mailbox && mailbox[i] != '\0' && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)mailbox[i]);
    out[i] = '\0';
}

#define S_KEY_MAX 321

static s_entry_t *
s_entry(sb_google_oauth_t *self, const char *mailbox, int create)
{
    char key[S_KEY_MAX];
    s_key(mailbox, key, sizeof key);
    s_entry_t *entry = zhashx_lookup(self->entries, key);
    if (entry == NULL && create) {
        entry = sb_xcalloc(1, sizeof *entry);
        zhashx_insert(self->entries, key, entry);
    }
    return entry;
}

static void
s_digest(const char *text, unsigned char out[S_DIGEST_BYTES])
{
    unsigned int len = 0;
    memset(out, 0, S_DIGEST_BYTES);
    if (text)
        EVP_Digest(text, strlen(text), out, &len, EVP_sha256(), NULL);
}

const char *
sb_google_oauth_token(sb_google_oauth_t *self, const char *mailbox, int64_t now_ms)
{
    s_entry_t *entry = s_entry(self, mailbox, 0);
    if (entry == NULL || entry->access_token == NULL)
        return NULL;
    if (now_ms + SB_GOOGLE_OAUTH_MARGIN_MS >= entry->expires_at_ms) {
        s_wipe_free(entry->access_token);
        entry->access_token = NULL;
        return NULL;
    }
    return entry->access_token;
}

int
sb_google_oauth_blocked(sb_google_oauth_t *self, const char *mailbox, const char *refresh_token,
                        int64_t now_ms)
{
    s_entry_t *entry = s_entry(self, mailbox, 0);
    if (entry == NULL || entry->blocked_until_ms == 0)
        return 0;
    if (now_ms >= entry->blocked_until_ms) {
        entry->blocked_until_ms = 0;
        return 0;
    }
    unsigned char digest[S_DIGEST_BYTES];
    s_digest(refresh_token, digest);
    // A different refresh token is a new consent: let it try at once.
    return CRYPTO_memcmp(digest, entry->blocked_digest, S_DIGEST_BYTES) == 0;
}

void
sb_google_oauth_invalidate(sb_google_oauth_t *self, const char *mailbox)
{
    s_entry_t *entry = s_entry(self, mailbox, 0);
    if (entry != NULL) {
        s_wipe_free(entry->access_token);
        entry->access_token = NULL;
    }
}

// application/x-www-form-urlencoded (RFC 3986 unreserved characters kept, the rest %XX).
static void
s_form_append(char **buf, size_t *len, size_t *cap, const char *name, const char *value)
{
    size_t need = *len + strlen(name) + 3 * strlen(value) + 3;
    if (need > *cap) {
        *cap = need * 2;
        *buf = sb_xrealloc(*buf, *cap);
    }
    char *p = *buf + *len;
    if (*len > 0)
        *p++ = '&';
    size_t n = strlen(name);
    memcpy(p, name, n);
    p += n;
    *p++ = '=';
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *v = (const unsigned char *)value; *v; v++) {
        if (isalnum(*v) || *v == '-' || *v == '.' || *v == '_' || *v == '~') {
            *p++ = (char)*v;
        } else {
            *p++ = '%';
            *p++ = hex[*v >> 4];
            *p++ = hex[*v & 15];
        }
    }
    *p = '\0';
    *len = (size_t)(p - *buf);
}

char *
sb_google_oauth_request_body(const sb_google_oauth_t *self, const char *refresh_token)
{
    size_t len = 0, cap = 256;
    char *buf = sb_xmalloc(cap);
    buf[0] = '\0';
    s_form_append(&buf, &len, &cap, "grant_type", "refresh_token");
    if (self->client_id)
        s_form_append(&buf, &len, &cap, "client_id", self->client_id);
    if (self->client_secret)
        s_form_append(&buf, &len, &cap, "client_secret", self->client_secret);
    s_form_append(&buf, &len, &cap, "refresh_token", refresh_token ? refresh_token : "");
    return buf;
}

// The "error" code of an OAuth error answer ({"error":"invalid_grant",...}), copied
// into out when it is short and printable; "" otherwise.
static void
s_error_code(const json_t *root, char *out, size_t size)
{
    const char *code = json_string_value(json_object_get(root, "error"));
    out[0] = '\0';
    if (code == NULL || strlen(code) >= size)
        return;
    for (const char *p = code; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return;
    snprintf(out, size, "%s", code);
}

static sb_google_oauth_status_t
s_failure(long http_status, const json_t *root, sb_err_t *err)
{
    char code[48];
    s_error_code(root, code, sizeof code);
    if (strcmp(code, "invalid_grant") == 0) {
        sb_err_set(err, 0,
                   "token endpoint refused the refresh token (invalid_grant): "
                   "the mailbox must be connected again");
        return SB_GOOGLE_OAUTH_INVALID_GRANT;
    }
    if (http_status == 0) {
        sb_err_set(err, 0, "could not reach the token endpoint");
        return SB_GOOGLE_OAUTH_TRANSIENT;
    }
    if (http_status >= 500 || http_status == 429 || http_status == 408) {
        sb_err_set(err, 0, "could not get an access token: HTTP %ld", http_status);
        return SB_GOOGLE_OAUTH_TRANSIENT;
    }
    if (http_status >= 400) {
        sb_err_set(err, 0, "token endpoint refused the request: HTTP %ld %s", http_status,
                   code[0] ? code : "(no error code)");
        return SB_GOOGLE_OAUTH_CLIENT;
    }
    sb_err_set(err, 0, "invalid token endpoint answer (HTTP %ld, no access_token)", http_status);
    return SB_GOOGLE_OAUTH_TRANSIENT;
}

sb_google_oauth_status_t
sb_google_oauth_response(sb_google_oauth_t *self, const char *mailbox, const char *refresh_token,
                         long http_status, const char *body, size_t len, int64_t now_ms,
                         sb_err_t *err)
{
    json_t *root = NULL;
    if (body != NULL && len > 0 && len <= SB_GOOGLE_OAUTH_MAX_BODY_BYTES)
        root = json_loadb(body, len, 0, NULL);
    const char *token = json_string_value(json_object_get(root, "access_token"));
    sb_google_oauth_status_t st;
    if (http_status != 200 || token == NULL || *token == '\0' ||
        strlen(token) > S_TOKEN_MAX_BYTES) {
        st = s_failure(http_status, root, err);
        if (st == SB_GOOGLE_OAUTH_INVALID_GRANT) {
            s_entry_t *entry = s_entry(self, mailbox, 1);
            s_digest(refresh_token, entry->blocked_digest);
            entry->blocked_until_ms = now_ms + SB_GOOGLE_OAUTH_BLOCK_MS;
            s_wipe_free(entry->access_token);
            entry->access_token = NULL;
        }
        json_decref(root);
        return st;
    }
    json_int_t expires_in = S_EXPIRES_IN_DEFAULT;
    const json_t *exp = json_object_get(root, "expires_in");
    if (json_is_integer(exp))
        expires_in = json_integer_value(exp);
    else if (json_is_string(exp)) // some servers send it as a string
        expires_in = strtoll(json_string_value(exp), NULL, 10);
    if (expires_in <= 0 || expires_in > S_EXPIRES_IN_MAX)
        expires_in = S_EXPIRES_IN_DEFAULT;
    s_entry_t *entry = s_entry(self, mailbox, 1);
    s_wipe_free(entry->access_token);
    entry->access_token = sb_xstrdup(token);
    entry->expires_at_ms = now_ms + (int64_t)expires_in * 1000;
    entry->blocked_until_ms = 0;
    json_decref(root);
    return SB_GOOGLE_OAUTH_OK;
}

// --- Blocking variant ----------------------------------------------------------------

typedef struct {
    char *data;
    size_t len;
    int too_big;
} s_buf_t;

static size_t
s_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_buf_t *buf = arg;
    size_t n = size * nmemb;
    if (buf->len + n > SB_GOOGLE_OAUTH_MAX_BODY_BYTES) {
        buf->too_big = 1;
        return 0; // stops the transfer
    }
    buf->data = sb_xrealloc(buf->data, buf->len + n + 1);
    memcpy(buf->data + buf->len, ptr, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return n;
}

sb_google_oauth_status_t
sb_google_oauth_refresh(sb_google_oauth_t *self, const char *mailbox, const char *refresh_token,
                        int64_t now_ms, sb_err_t *err)
{
    if (sb_google_oauth_token(self, mailbox, now_ms) != NULL)
        return SB_GOOGLE_OAUTH_OK;
    if (sb_google_oauth_blocked(self, mailbox, refresh_token, now_ms)) {
        sb_err_set(err, 0,
                   "refresh token was refused before (invalid_grant); not asking again yet");
        return SB_GOOGLE_OAUTH_INVALID_GRANT;
    }
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        sb_err_set(err, 0, "could not create a libcurl handle");
        return SB_GOOGLE_OAUTH_TRANSIENT;
    }
    char *form = sb_google_oauth_request_body(self, refresh_token);
    s_buf_t buf = {NULL, 0, 0};
    curl_easy_setopt(curl, CURLOPT_URL, self->token_url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)SB_GOOGLE_OAUTH_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    sb_google_oauth_status_t st = sb_google_oauth_response(self, mailbox, refresh_token, status,
                                                           buf.data, buf.len, now_ms, err);
    if (rc != CURLE_OK)
        sb_err_set(err, 0, "could not reach the token endpoint: %s", curl_easy_strerror(rc));
    curl_easy_cleanup(curl);
    s_wipe_free(form);
    if (buf.data) {
        OPENSSL_cleanse(buf.data, buf.len);
        free(buf.data);
    }
    return st;
}
