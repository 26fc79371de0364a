/* verify_ringcentral - Verification-Token and X-RingCentral-Signature checks (see the
 * header). The signature is decoded to its 32 raw bytes before the constant-time
 * compare, so hex case, base64 and the "sha256=" prefix never change the timing of the
 * comparison itself. */
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "sb_hex.h"
#include "verifier.h"
#include "verify_ringcentral.h"
#include "sb_banned.h"

#define S_DIGEST_BYTES 32      // SHA-256
#define S_BASE64_CHARS 44      // 4 per 3 bytes, rounded up, with one '=' of padding
#define S_SIG_PREFIX "sha256=" // GitHub-style prefix, case-insensitive

static int
s_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

// Standard or URL-safe base64, padded or not. EVP_DecodeBlock ignores padding when it
// counts bytes (44 characters always give 33), so the alphabet and the single '=' are
// checked here and the 33rd byte, made only of padding bits, must be zero.
static int
s_decode_base64(const char *text, size_t len, unsigned char out[S_DIGEST_BYTES])
{
    if (len != S_BASE64_CHARS && len != S_BASE64_CHARS - 1)
        return -1;
    if (len == S_BASE64_CHARS && text[S_BASE64_CHARS - 1] != '=')
        return -1;
    unsigned char quads[S_BASE64_CHARS + 1];
    for (size_t i = 0; i < S_BASE64_CHARS - 1; i++) {
        char c = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];
        if (!s_base64_char(c))
            return -1;
        quads[i] = (unsigned char)c;
    }
    quads[S_BASE64_CHARS - 1] = '=';
    quads[S_BASE64_CHARS] = '\0';
    unsigned char decoded[S_DIGEST_BYTES + 3];
    int n = EVP_DecodeBlock(decoded, quads, S_BASE64_CHARS);
    if (n != S_DIGEST_BYTES + 1 || decoded[S_DIGEST_BYTES] != 0)
        return -1;
    memcpy(out, decoded, S_DIGEST_BYTES);
    return 0;
}

// The signature header as 32 raw bytes, whatever its spelling; -1 when it is none.
static int
s_decode_signature(const char *signature, unsigned char out[S_DIGEST_BYTES])
{
    const char *start = signature;
    while (*start == ' ' || *start == '\t')
        start++;
    if (strncasecmp(start, S_SIG_PREFIX, strlen(S_SIG_PREFIX)) == 0)
        start += strlen(S_SIG_PREFIX);
    size_t len = strlen(start);
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
        len--;
    if (sb_hex_decode(start, len, out, S_DIGEST_BYTES) == 0)
        return 0;
    return s_decode_base64(start, len, out);
}

int
sb_verify_hmac_sha256(const char *secret, const void *body, size_t body_len, const char *signature)
{
    if (!sb_config_is_set(secret) || signature == NULL)
        return -1;
    unsigned char given[S_DIGEST_BYTES];
    if (s_decode_signature(signature, given) != 0)
        return -1;
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned int want_len = 0;
    size_t secret_len = strlen(secret);
    if (secret_len > (size_t)INT_MAX)
        return -1;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, body_len ? body : (const void *)"", body_len,
             want, &want_len) == NULL ||
        want_len != S_DIGEST_BYTES)
        return -1;
    return CRYPTO_memcmp(want, given, S_DIGEST_BYTES) == 0 ? 0 : -1;
}

// Why a request that passed no scheme is rejected. The token is RingCentral's own
// scheme, so its problem is named first; a signature, when sent, comes next.
static const char *
s_rejection(const sb_verify_ringcentral_keys_t *keys, const char *token, const char *signature)
{
    int has_token = token != NULL && token[0] != '\0';
    int has_signature = signature != NULL && signature[0] != '\0';
    if (sb_config_is_set(keys->verification_token) && has_token)
        return "bad_verification_token";
    if (sb_config_is_set(keys->webhook_secret) && has_signature)
        return "bad_signature";
    if (sb_config_is_set(keys->verification_token))
        return "missing_verification_token";
    return "missing_signature";
}

int
sb_verify_ringcentral(const sb_verify_ringcentral_keys_t *keys, const char *token,
                      const char *signature, const void *body, size_t body_len, const char **reason)
{
    int token_on = sb_config_is_set(keys->verification_token);
    int secret_on = sb_config_is_set(keys->webhook_secret);
    if (!token_on && !secret_on) {
        *reason = keys->allow_unverified ? "unverified_allowed" : "no_verification_configured";
        return keys->allow_unverified ? 0 : -1;
    }
    // Both schemes are tried when both are on, so the timing does not tell which failed.
    int token_ok =
        token_on && token != NULL && sb_verifier_secret_equal(keys->verification_token, token);
    int signature_ok =
        secret_on && sb_verify_hmac_sha256(keys->webhook_secret, body, body_len, signature) == 0;
    if (token_ok || signature_ok) {
        *reason = NULL;
        return 0;
    }
    *reason = s_rejection(keys, token, signature);
    return -1;
}
