/* sb_jwks.c - the rules are in sb_jwks.h. Keys are built from the JWK's n and e with
 * OpenSSL 3's EVP_PKEY_fromdata, never from PEM or X.509 text, so the set is the only
 * source of trust. OpenSSL errors are cleared after each failure so that they do not
 * linger in the thread's error queue and confuse the next caller. */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include "sb_b64.h"
#include "sb_jwks.h"
#include "sb_mem.h"
#include "sb_banned.h"

#define SB_JWKS_RSA_BITS_MIN 2048   // smaller moduli are refused: RS256 needs 2048 (RFC 7518)
#define SB_JWKS_RSA_BITS_MAX 8192   // larger ones only cost CPU per verify
#define SB_JWKS_RSA_E_BYTES_MAX 8   // public exponents are 65537 in practice
#define SB_JWKS_MAX_AGE_MAX_S 86400 // a server's max-age is capped at a day

typedef struct {
    char *kid;     // the JWK's "kid", owned
    EVP_PKEY *key; // RSA public key, owned
} s_key_t;

struct sb_jwks {
    s_key_t keys[SB_JWKS_MAX_KEYS]; // usable keys in document order
    size_t n;                       // how many of keys are set
};

struct sb_jwks_cache {
    char *file;           // GOOGLE_JWKS_FILE, or NULL when the url is used
    char *url;            // GOOGLE_JWKS_URL, or NULL when the file is used
    bool curl_ready;      // curl_global_init succeeded: destroy owes a cleanup
    sb_jwks_t *set;       // the keys held; NULL until the first good load
    int64_t loaded_at_s;  // when set was loaded
    int64_t max_age_s;    // set is stale from loaded_at_s + max_age_s on
    bool attempted;       // a load was tried at least once
    bool last_ok;         // whether the last load succeeded
    int64_t attempt_at_s; // when the last load was tried
    uint64_t loads;       // loads tried, good or failed
    bool undated;         // loaded before any clock was known: the next lookup dates it
    sb_err_t last_err;    // why the last load failed
};

typedef struct {
    char *data;  // the response body so far, NUL-terminated
    size_t len;  // bytes in data
    bool excess; // the body went past SB_JWKS_MAX_BYTES
} s_body_t;

// ---------------------------------------------------------------------------------------
// One set

// A usable RSA key from a JWK's n and e (base64url big-endian integers), or NULL with
// *why set to a static reason.
static EVP_PKEY *
s_rsa_key(const char *n_text, const char *e_text, const char **why)
{
    EVP_PKEY *key = NULL;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    size_t n_len = 0, e_len = 0;
    unsigned char *n_bin = sb_b64_decode(n_text, strlen(n_text), SB_B64_URL, &n_len);
    unsigned char *e_bin = sb_b64_decode(e_text, strlen(e_text), SB_B64_URL, &e_len);
    *why = "invalid base64url in n or e";
    if (n_bin == NULL || e_bin == NULL)
        goto cleanup;
    n = BN_bin2bn(n_bin, (int)n_len, NULL);
    e = BN_bin2bn(e_bin, (int)e_len, NULL);
    if (n == NULL || e == NULL)
        goto cleanup;
    *why = "modulus size out of range";
    if (BN_num_bits(n) < SB_JWKS_RSA_BITS_MIN || BN_num_bits(n) > SB_JWKS_RSA_BITS_MAX)
        goto cleanup;
    // e = 1 would make every message its own signature; an even e is not RSA.
    *why = "invalid public exponent";
    if (BN_num_bytes(e) > SB_JWKS_RSA_E_BYTES_MAX || !BN_is_odd(e) || BN_is_one(e))
        goto cleanup;
    *why = "could not build the key";
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        goto cleanup;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
        goto cleanup;
    }
    *why = NULL;
cleanup:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(n_bin);
    free(e_bin);
    if (key == NULL)
        ERR_clear_error();
    return key;
}

// The string member name of obj, or NULL when absent or not a string.
static const char *
s_member(const json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

// Add jwk to self when it is a usable RS256 signing key; skip it silently otherwise
// (Google's set may one day carry other key types, and that must not break us).
static void
s_add_jwk(sb_jwks_t *self, const json_t *jwk)
{
    const char *kty = s_member(jwk, "kty"), *kid = s_member(jwk, "kid");
    const char *use = s_member(jwk, "use"), *alg = s_member(jwk, "alg");
    const char *n = s_member(jwk, "n"), *e = s_member(jwk, "e");
    if (!json_is_object(jwk) || self->n == SB_JWKS_MAX_KEYS || kty == NULL ||
        strcmp(kty, "RSA") != 0 || kid == NULL || kid[0] == '\0' || n == NULL || e == NULL)
        return;
    if ((json_object_get(jwk, "use") && (use == NULL || strcmp(use, "sig") != 0)) ||
        (json_object_get(jwk, "alg") && (alg == NULL || strcmp(alg, "RS256") != 0)))
        return;
    if (sb_jwks_key(self, kid) != NULL)
        return; // the first of a repeated kid wins
    const char *why;
    EVP_PKEY *key = s_rsa_key(n, e, &why);
    if (key == NULL)
        return;
    self->keys[self->n].kid = sb_xstrdup(kid);
    self->keys[self->n].key = key;
    self->n++;
}

sb_jwks_t *
sb_jwks_parse(const char *json, size_t len, sb_err_t *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, 0, &jerr);
    if (doc == NULL) {
        sb_err_set(err, 0, "invalid JWKS: %s at line %d", jerr.text, jerr.line);
        return NULL;
    }
    sb_jwks_t *self = NULL;
    json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        sb_err_set(err, 0, "invalid JWKS: no \"keys\" array");
        goto cleanup;
    }
    self = sb_xcalloc(1, sizeof *self);
    for (size_t i = 0; i < json_array_size(keys); i++)
        s_add_jwk(self, json_array_get(keys, i));
    if (self->n == 0) {
        sb_err_set(err, 0, "invalid JWKS: none of its %zu keys is a usable RS256 key",
                   json_array_size(keys));
        sb_jwks_destroy(&self);
    }
cleanup:
    json_decref(doc);
    return self;
}

void
sb_jwks_destroy(sb_jwks_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sb_jwks_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        free(self->keys[i].kid);
        EVP_PKEY_free(self->keys[i].key);
    }
    free(self);
    *self_p = NULL;
}

size_t
sb_jwks_size(const sb_jwks_t *self)
{
    return self ? self->n : 0;
}

EVP_PKEY *
sb_jwks_key(const sb_jwks_t *self, const char *kid)
{
    if (self == NULL || kid == NULL)
        return NULL;
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->keys[i].kid, kid) == 0)
            return self->keys[i].key;
    return NULL;
}

int
sb_jwks_verify_rs256(EVP_PKEY *key, const void *data, size_t len, const unsigned char *sig,
                     size_t sig_len)
{
    // RSA signatures are exactly as long as the modulus (RFC 8017 8.2.2 step 1).
    if (key == NULL || sig == NULL || !EVP_PKEY_is_a(key, "RSA") ||
        sig_len != (size_t)EVP_PKEY_get_size(key))
        return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    // An RSA key's default padding for DigestVerify is PKCS #1 v1.5, which RS256 is.
    int ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        ERR_clear_error();
    return ok ? 0 : -1;
}

// ---------------------------------------------------------------------------------------
// Loading

static int
s_read_file(const char *path, s_body_t *body, sb_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        sb_err_set(err, errno, "could not open JWKS file \"%s\"", path);
        return -1;
    }
    body->data = sb_xmalloc(SB_JWKS_MAX_BYTES + 2);
    body->len = fread(body->data, 1, SB_JWKS_MAX_BYTES + 1, f);
    body->data[body->len] = '\0';
    int rc = -1;
    if (ferror(f))
        sb_err_set(err, EIO, "could not read JWKS file \"%s\"", path);
    else if (body->len > SB_JWKS_MAX_BYTES)
        sb_err_set(err, 0, "JWKS file \"%s\" is larger than %d bytes", path, SB_JWKS_MAX_BYTES);
    else
        rc = 0;
    fclose(f);
    return rc;
}

static size_t
s_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_body_t *body = userdata;
    size_t n = size * nmemb;
    if (n > SB_JWKS_MAX_BYTES - body->len) {
        body->excess = true;
        return 0; // curl aborts the transfer with CURLE_WRITE_ERROR
    }
    body->data = sb_xrealloc(body->data, body->len + n + 1);
    memcpy(body->data + body->len, ptr, n);
    body->len += n;
    body->data[body->len] = '\0';
    return n;
}

// Picks max-age out of a Cache-Control response header (Google sends about 5 to 7 h).
static size_t
s_on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    int64_t *max_age_s = userdata;
    size_t n = size * nmemb;
    static const char name[] = "cache-control:";
    char line[512];
    if (n < sizeof name || n >= sizeof line || strncasecmp(ptr, name, sizeof name - 1) != 0)
        return n;
    memcpy(line, ptr, n);
    line[n] = '\0';
    for (char *p = line + sizeof name - 1; *p; p++) {
        if (strncasecmp(p, "max-age=", 8) != 0)
            continue;
        char *end;
        errno = 0;
        long long v = strtoll(p + 8, &end, 10);
        if (errno == 0 && end != p + 8 && v >= 0)
            *max_age_s = v;
        break;
    }
    return n;
}

static int
s_fetch_url(const char *url, s_body_t *body, int64_t *max_age_s, sb_err_t *err)
{
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        sb_err_set(err, 0, "could not fetch JWKS from \"%s\": curl_easy_init failed", url);
        return -1;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http,file");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); // timeouts without SIGALRM: we are a daemon
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)SB_JWKS_FETCH_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)SB_JWKS_FETCH_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SB_JWKS_MAX_BYTES);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "switchboard/" SB_VERSION);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, max_age_s);
    CURLcode res = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    int rc = -1;
    if (body->excess || res == CURLE_FILESIZE_EXCEEDED)
        sb_err_set(err, 0, "could not fetch JWKS from \"%s\": larger than %d bytes", url,
                   SB_JWKS_MAX_BYTES);
    else if (res != CURLE_OK)
        sb_err_set(err, 0, "could not fetch JWKS from \"%s\": %s", url,
                   curl_err[0] ? curl_err : curl_easy_strerror(res));
    else if (status != 0 && status != 200) // file:// has no status
        sb_err_set(err, 0, "could not fetch JWKS from \"%s\": HTTP status %ld", url, status);
    else
        rc = 0;
    curl_easy_cleanup(curl);
    return rc;
}

// Replace the held set with a fresh one. A failure keeps the old set.
static int
s_load(sb_jwks_cache_t *self, int64_t now_s, sb_err_t *err)
{
    self->loads++;
    self->attempted = true;
    self->undated = now_s < 0;
    self->attempt_at_s = now_s;
    s_body_t body = {0};
    int64_t max_age_s = -1;
    sb_err_t why = {0};
    int rc = self->file ? s_read_file(self->file, &body, &why)
                        : s_fetch_url(self->url, &body, &max_age_s, &why);
    sb_jwks_t *set = rc == 0 ? sb_jwks_parse(body.data, body.len, &why) : NULL;
    free(body.data);
    self->last_ok = set != NULL;
    if (set == NULL) {
        self->last_err = why; // what a lookup reports while no set is held
        if (err)
            *err = why;
        return -1;
    }
    if (max_age_s < 0)
        max_age_s = SB_JWKS_MAX_AGE_S;
    if (max_age_s < SB_JWKS_REFETCH_MIN_S)
        max_age_s = SB_JWKS_REFETCH_MIN_S;
    if (max_age_s > SB_JWKS_MAX_AGE_MAX_S)
        max_age_s = SB_JWKS_MAX_AGE_MAX_S;
    sb_jwks_destroy(&self->set);
    self->set = set;
    self->loaded_at_s = now_s;
    self->max_age_s = max_age_s;
    return 0;
}

// Whether the rate limit lets a load start at now_s. A clock that went backwards
// (a stepped wall clock) allows one, rather than blocking loads until it catches up.
static bool
s_may_load(const sb_jwks_cache_t *self, int64_t now_s)
{
    if (!self->attempted || now_s < self->attempt_at_s)
        return true;
    int64_t gap_s = self->last_ok ? SB_JWKS_REFETCH_MIN_S : SB_JWKS_RETRY_MIN_S;
    return now_s - self->attempt_at_s >= gap_s;
}

// ---------------------------------------------------------------------------------------
// The cache

sb_jwks_cache_t *
sb_jwks_cache_new(const char *file, const char *url, sb_err_t *err)
{
    bool use_file = file != NULL && file[0] != '\0';
    if (!use_file && (url == NULL || url[0] == '\0')) {
        sb_err_set(err, 0, "cannot verify JWTs: neither a JWKS file nor a JWKS URL is set");
        return NULL;
    }
    sb_jwks_cache_t *self = sb_xcalloc(1, sizeof *self);
    if (use_file) {
        self->file = sb_xstrdup(file);
        return self;
    }
    self->url = sb_xstrdup(url);
    // Reference-counted by libcurl, and thread-safe since 7.84: pairs with destroy.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        sb_err_set(err, 0, "could not initialise libcurl");
        sb_jwks_cache_destroy(&self);
        return NULL;
    }
    self->curl_ready = true;
    return self;
}

void
sb_jwks_cache_destroy(sb_jwks_cache_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sb_jwks_cache_t *self = *self_p;
    sb_jwks_destroy(&self->set);
    if (self->curl_ready)
        curl_global_cleanup();
    free(self->file);
    free(self->url);
    free(self);
    *self_p = NULL;
}

int
sb_jwks_cache_load(sb_jwks_cache_t *self, int64_t now_s, sb_err_t *err)
{
    return s_load(self, now_s, err);
}

sb_jwks_lookup_t
sb_jwks_cache_lookup(sb_jwks_cache_t *self, const char *kid, int64_t now_s, EVP_PKEY **key_out,
                     sb_err_t *err)
{
    *key_out = NULL;
    if (self->undated) {
        self->undated = false;
        self->attempt_at_s = now_s;
        if (self->last_ok)
            self->loaded_at_s = now_s;
    }
    bool stale = self->set == NULL || now_s - self->loaded_at_s >= self->max_age_s ||
                 now_s < self->loaded_at_s;
    // A failed refresh of a stale set keeps serving the old keys: Google announces new
    // keys well before using them, and an unknown kid forces a reload anyway.
    if (stale && s_may_load(self, now_s))
        s_load(self, now_s, NULL);
    if (self->set == NULL) {
        if (err)
            *err = self->last_err;
        return SB_JWKS_UNAVAILABLE;
    }
    *key_out = sb_jwks_key(self->set, kid);
    if (*key_out == NULL && s_may_load(self, now_s) && s_load(self, now_s, NULL) == 0)
        *key_out = sb_jwks_key(self->set, kid);
    return *key_out ? SB_JWKS_FOUND : SB_JWKS_UNKNOWN_KID;
}

uint64_t
sb_jwks_cache_loads(const sb_jwks_cache_t *self)
{
    return self->loads;
}
