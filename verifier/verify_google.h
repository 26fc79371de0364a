/* verify_google - is a Gmail push really from Google Cloud Pub/Sub? (SPEC "Verification")
 * Pub/Sub sends "Authorization: Bearer <OIDC JWT>". The token is accepted when all of:
 *   - three base64url segments without padding, JSON objects for header and claims, the
 *     whole header value at most SB_GOOGLE_AUTH_MAX bytes;
 *   - header "alg" exactly "RS256" (so never "none", HS256 or an alg-confusion trick) and
 *     a "kid" naming a key of the JWKS (GOOGLE_JWKS_FILE, else GOOGLE_JWKS_URL), with no
 *     "crit" header;
 *   - an RSASSA-PKCS1-v1_5 SHA-256 signature by that key;
 *   - "iss" "accounts.google.com" or "https://accounts.google.com";
 *   - "aud" equal to GMAIL_PUSH_AUDIENCE (a string, or an array holding it);
 *   - "exp" later than now - SB_GOOGLE_LEEWAY_S, "iat" (required) and "nbf" (optional)
 *     not after now + SB_GOOGLE_LEEWAY_S;
 *   - when GMAIL_PUSH_SERVICE_ACCOUNT is set: "email" equal to it (ASCII case ignored) and
 *     "email_verified" true.
 * Claims are only looked at once the signature holds. Keys come from an sb_jwks cache:
 * loaded on first use, reloaded on an unknown kid at most once a minute (sb_jwks.h).
 * The caller passes the clock, so tests use the fixtures' time. One owner thread; a call
 * may block for one JWKS fetch (5 s at most). No logging: the stage logs the reason. */
#ifndef SB_VERIFY_GOOGLE_H
#define SB_VERIFY_GOOGLE_H
#include <stdint.h>
#include "sb_err.h"

#define SB_GOOGLE_JWKS_URL_DEFAULT "https://www.googleapis.com/oauth2/v3/certs"
#define SB_GOOGLE_LEEWAY_S 60    // clock skew allowed on exp, iat and nbf
#define SB_GOOGLE_AUTH_MAX 16384 // bytes of Authorization header; Google's are about 1 KiB

typedef struct sb_google_verifier sb_google_verifier_t;

// jwks_file (GOOGLE_JWKS_FILE) wins when non-empty and is read now, so a bad file stops
// the process at start; otherwise jwks_url (GOOGLE_JWKS_URL; NULL or "" means
// SB_GOOGLE_JWKS_URL_DEFAULT) is fetched on first use. audience (GMAIL_PUSH_AUDIENCE) is
// required: without it the JWT scheme is not configured and the caller should not create
// a verifier. service_account (GMAIL_PUSH_SERVICE_ACCOUNT) may be NULL or "". Strings are
// copied. NULL and err on failure.
sb_google_verifier_t *sb_google_verifier_new(const char *jwks_file, const char *jwks_url,
                                             const char *audience, const char *service_account,
                                             sb_err_t *err);
void sb_google_verifier_destroy(sb_google_verifier_t **self_p);

// Verify an Authorization header value (NULL when absent): "Bearer" in any case, then
// spaces or tabs, then the token; surrounding spaces and tabs are ignored. now_s is Unix
// time in seconds. Returns 0 when valid (*reason_out = NULL), else -1 with *reason_out a
// static string: "missing_bearer" (no header, another scheme or no token),
// "malformed_jwt", "bad_alg", "unknown_kid" (also when kid is missing), "bad_signature",
// "expired", "not_yet_valid", "bad_iss", "bad_aud", "bad_email", "email_unverified", or
// "jwks_unavailable" (no key set could be loaded: a fault on our side, not the sender's;
// sb_google_verifier_jwks_error says why). reason_out may be NULL.
int sb_google_verify(sb_google_verifier_t *self, const char *authorization_header, int64_t now_s,
                     const char **reason_out);

// Why the key set is unavailable (after "jwks_unavailable"), for the stage's log line;
// "" when it never failed. Borrowed, valid until the next call.
const char *sb_google_verifier_jwks_error(const sb_google_verifier_t *self);

// JWKS loads tried so far, good or failed (tests, metrics).
uint64_t sb_google_verifier_jwks_loads(const sb_google_verifier_t *self);

#endif
