/* verify_google.c - the rules are in verify_google.h. The order of the checks is the
 * order of trust: shape, then header, then signature, and only then the claims, so that
 * nothing an attacker wrote is acted on before the signature is known to be Google's.
 * A token's parts are public (only a valid signature matters), so comparisons here need
 * not be constant-time. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "sb_b64.h"
#include "sb_jwks.h"
#include "sb_mem.h"
#include "verify_google.h"
#include "sb_banned.h"

struct sb_google_verifier {
    sb_jwks_cache_t *jwks; // Google's signing keys
    char *audience;        // GMAIL_PUSH_AUDIENCE: the only accepted "aud"
    char *service_account; // GMAIL_PUSH_SERVICE_ACCOUNT, or NULL: any "email" goes
    sb_err_t jwks_err;     // why the last lookup found no key set at all
};

// A JWT cut into its three base64url segments; pointers into the header value.
typedef struct {
    const char *header, *claims, *sig; // segment starts
    size_t header_len, claims_len, sig_len;
    size_t signed_len; // bytes of "header.claims", the signing input
} s_jwt_t;

static bool
s_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

// The token out of "Bearer <token>", or a reason. The scheme name is case-insensitive
// (RFC 7235 section 2.1).
static const char *
s_bearer_token(const char *value, const char **token, size_t *token_len)
{
    if (value == NULL)
        return "missing_bearer";
    size_t len = strnlen(value, SB_GOOGLE_AUTH_MAX + 1);
    if (len > SB_GOOGLE_AUTH_MAX)
        return "malformed_jwt";
    const char *p = value, *end = value + len;
    while (p < end && s_is_blank(*p))
        p++;
    while (end > p && s_is_blank(end[-1]))
        end--;
    static const char scheme[] = "Bearer";
    size_t scheme_len = sizeof scheme - 1;
    if ((size_t)(end - p) < scheme_len + 2 || strncasecmp(p, scheme, scheme_len) != 0 ||
        !s_is_blank(p[scheme_len]))
        return "missing_bearer";
    p += scheme_len;
    while (p < end && s_is_blank(*p))
        p++;
    *token = p;
    *token_len = (size_t)(end - p);
    return NULL;
}

// Cut token into exactly three segments. -1 for any other number of dots or an empty
// header or claims segment (the signature may be empty: that is "alg":"none", rejected
// later with a better reason).
static int
s_split(const char *token, size_t len, s_jwt_t *jwt)
{
    const char *dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return -1;
    const char *rest = dot1 + 1, *end = token + len;
    const char *dot2 = memchr(rest, '.', (size_t)(end - rest));
    if (dot2 == NULL || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)) != NULL)
        return -1;
    jwt->header = token;
    jwt->header_len = (size_t)(dot1 - token);
    jwt->claims = rest;
    jwt->claims_len = (size_t)(dot2 - rest);
    jwt->sig = dot2 + 1;
    jwt->sig_len = (size_t)(end - jwt->sig);
    jwt->signed_len = (size_t)(dot2 - token);
    return jwt->header_len && jwt->claims_len ? 0 : -1;
}

// A base64url segment holding a JSON object, or NULL. Duplicate names are refused: two
// "aud" members must not mean one thing to us and another to someone else.
static json_t *
s_decode_object(const char *seg, size_t len)
{
    size_t json_len;
    unsigned char *json = sb_b64_decode(seg, len, SB_B64_URL | SB_B64_NO_PAD, &json_len);
    if (json == NULL)
        return NULL;
    json_t *obj = json_loadb((const char *)json, json_len, JSON_REJECT_DUPLICATES, NULL);
    free(json);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

// The header's verdict, and its kid (borrowed from header) when it passes.
static const char *
s_check_header(const json_t *header, const char **kid)
{
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (alg == NULL || strcmp(alg, "RS256") != 0)
        return "bad_alg";
    // RFC 7515 4.1.11: a "crit" extension we do not implement must fail the token.
    if (json_object_get(header, "crit") != NULL)
        return "malformed_jwt";
    *kid = json_string_value(json_object_get(header, "kid"));
    if (*kid == NULL || (*kid)[0] == '\0')
        return "unknown_kid"; // strict: Google always names its key
    return NULL;
}

// A NumericDate claim (RFC 7519 2: seconds, possibly fractional). -1 when absent or
// not a finite number.
static int
s_numeric_date(const json_t *claims, const char *name, double *out)
{
    const json_t *v = json_object_get(claims, name);
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : -1;
}

static bool
s_aud_matches(const json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        const char *one = json_string_value(json_array_get(aud, i));
        if (one != NULL && strcmp(one, audience) == 0)
            return true;
    }
    return false;
}

static const char *
s_check_times(const json_t *claims, int64_t now_s)
{
    double exp, iat, nbf;
    double now = (double)now_s;
    if (s_numeric_date(claims, "exp", &exp) != 0 || s_numeric_date(claims, "iat", &iat) != 0)
        return "malformed_jwt";
    if (now >= exp + SB_GOOGLE_LEEWAY_S)
        return "expired";
    if (iat > now + SB_GOOGLE_LEEWAY_S)
        return "not_yet_valid";
    if (json_object_get(claims, "nbf") != NULL) {
        if (s_numeric_date(claims, "nbf", &nbf) != 0)
            return "malformed_jwt";
        if (nbf > now + SB_GOOGLE_LEEWAY_S)
            return "not_yet_valid";
    }
    return NULL;
}

// The claims' verdict; the signature has been checked already.
static const char *
s_check_claims(const sb_google_verifier_t *self, const json_t *claims, int64_t now_s)
{
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (iss == NULL || (strcmp(iss, "https://accounts.google.com") != 0 &&
                        strcmp(iss, "accounts.google.com") != 0))
        return "bad_iss";
    if (!s_aud_matches(json_object_get(claims, "aud"), self->audience))
        return "bad_aud";
    const char *why = s_check_times(claims, now_s);
    if (why != NULL || self->service_account == NULL)
        return why;
    const char *email = json_string_value(json_object_get(claims, "email"));
    if (email == NULL || strcasecmp(email, self->service_account) != 0)
        return "bad_email";
    // A boolean in Google's tokens; some older Google issuers wrote the string "true".
    const json_t *verified = json_object_get(claims, "email_verified");
    const char *verified_text = json_string_value(verified);
    if (!json_is_true(verified) && (verified_text == NULL || strcmp(verified_text, "true") != 0))
        return "email_unverified";
    return NULL;
}

// The signature's verdict; fills self->jwks_err when no key set is available.
static const char *
s_check_signature(sb_google_verifier_t *self, const s_jwt_t *jwt, const char *kid, int64_t now_s)
{
    size_t sig_len;
    unsigned char *sig =
        sb_b64_decode(jwt->sig, jwt->sig_len, SB_B64_URL | SB_B64_NO_PAD, &sig_len);
    if (sig == NULL)
        return "malformed_jwt";
    const char *why = NULL;
    EVP_PKEY *key;
    switch (sb_jwks_cache_lookup(self->jwks, kid, now_s, &key, &self->jwks_err)) {
    case SB_JWKS_FOUND:
        if (sb_jwks_verify_rs256(key, jwt->header, jwt->signed_len, sig, sig_len) != 0)
            why = "bad_signature";
        break;
    case SB_JWKS_UNKNOWN_KID:
        why = "unknown_kid";
        break;
    case SB_JWKS_UNAVAILABLE:
    default:
        why = "jwks_unavailable";
        break;
    }
    free(sig);
    return why;
}

sb_google_verifier_t *
sb_google_verifier_new(const char *jwks_file, const char *jwks_url, const char *audience,
                       const char *service_account, sb_err_t *err)
{
    if (audience == NULL || audience[0] == '\0') {
        sb_err_set(err, 0, "cannot verify Gmail push JWTs without GMAIL_PUSH_AUDIENCE");
        return NULL;
    }
    bool use_file = jwks_file != NULL && jwks_file[0] != '\0';
    if (!use_file && (jwks_url == NULL || jwks_url[0] == '\0'))
        jwks_url = SB_GOOGLE_JWKS_URL_DEFAULT;
    sb_google_verifier_t *self = sb_xcalloc(1, sizeof *self);
    self->audience = sb_xstrdup(audience);
    if (service_account != NULL && service_account[0] != '\0')
        self->service_account = sb_xstrdup(service_account);
    self->jwks = sb_jwks_cache_new(use_file ? jwks_file : NULL, jwks_url, err);
    if (self->jwks == NULL)
        goto fail;
    // A file is ours to get right: read it now so that a typo stops the process at start.
    // A URL is loaded on first use, so a network hiccup at boot is not fatal.
    if (use_file && sb_jwks_cache_load(self->jwks, -1, err) != 0)
        goto fail;
    return self;
fail:
    sb_google_verifier_destroy(&self);
    return NULL;
}

void
sb_google_verifier_destroy(sb_google_verifier_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sb_google_verifier_t *self = *self_p;
    sb_jwks_cache_destroy(&self->jwks);
    free(self->audience);
    free(self->service_account);
    free(self);
    *self_p = NULL;
}

int
sb_google_verify(sb_google_verifier_t *self, const char *authorization_header, int64_t now_s,
                 const char **reason_out)
{
    const char *token = NULL, *kid = NULL;
    size_t token_len = 0;
    s_jwt_t jwt;
    json_t *header = NULL, *claims = NULL;
    const char *why = s_bearer_token(authorization_header, &token, &token_len);
    if (why != NULL)
        goto done;
    why = "malformed_jwt";
    if (s_split(token, token_len, &jwt) != 0 ||
        (header = s_decode_object(jwt.header, jwt.header_len)) == NULL ||
        (claims = s_decode_object(jwt.claims, jwt.claims_len)) == NULL)
        goto done;
    why = s_check_header(header, &kid);
    if (why == NULL)
        why = s_check_signature(self, &jwt, kid, now_s);
    if (why == NULL)
        why = s_check_claims(self, claims, now_s);
done:
    json_decref(header);
    json_decref(claims);
    if (reason_out)
        *reason_out = why;
    return why == NULL ? 0 : -1;
}

const char *
sb_google_verifier_jwks_error(const sb_google_verifier_t *self)
{
    return self->jwks_err.msg;
}

uint64_t
sb_google_verifier_jwks_loads(const sb_google_verifier_t *self)
{
    return sb_jwks_cache_loads(self->jwks);
}
