/* verify_ringcentral - is a RingCentral webhook (SMS or telephony session) genuine?
 * (SPEC "Verification"). Two schemes, each on when its secret is configured:
 *   - Verification-Token: the header must equal RINGCENTRAL_VERIFICATION_TOKEN. This is
 *     what RingCentral really sends.
 *   - X-RingCentral-Signature: HMAC-SHA256 of the raw body keyed with
 *     RINGCENTRAL_WEBHOOK_SECRET, as hex (either case) or base64, optionally prefixed
 *     "sha256=". Only for senders that sign; RingCentral itself does not.
 * At least one configured scheme must pass. With no scheme configured the request is
 * rejected (fail closed) unless allow_unverified. Every comparison of a secret is
 * constant-time. Pure functions: no sockets, no logging, no allocation that outlives
 * a call. */
#ifndef SB_VERIFY_RINGCENTRAL_H
#define SB_VERIFY_RINGCENTRAL_H
#include <stddef.h>

typedef struct {
    const char *verification_token; // RINGCENTRAL_VERIFICATION_TOKEN; NULL or "" = off
    const char *webhook_secret;     // RINGCENTRAL_WEBHOOK_SECRET; NULL or "" = off
    int allow_unverified;           // SWITCHBOARD_ALLOW_UNVERIFIED: only when both are off
} sb_verify_ringcentral_keys_t;

// Decide one request. token and signature are the header values, NULL when absent;
// body is the raw request body. Returns 0 when accepted, -1 when rejected. *reason is
// set to a static string: NULL when a scheme passed, "unverified_allowed" when accepted
// without any scheme, else one of "missing_verification_token", "bad_verification_token",
// "missing_signature", "bad_signature", "no_verification_configured".
int sb_verify_ringcentral(const sb_verify_ringcentral_keys_t *keys, const char *token,
                          const char *signature, const void *body, size_t body_len,
                          const char **reason);

// 0 when signature (hex, base64 or "sha256=" + either) is HMAC-SHA256(body, secret),
// -1 otherwise, including a signature that does not decode to exactly 32 bytes.
int sb_verify_hmac_sha256(const char *secret, const void *body, size_t body_len,
                          const char *signature);

#endif
