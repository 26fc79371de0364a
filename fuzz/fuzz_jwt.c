/* fuzz_jwt - the Gmail push JWT path of the verifier (verifier/verify_google.h) and the
 * JWKS parser under it (common/sb_jwks.h), with the fixtures' key set as a file and the
 * fixtures' clock (1795533668).
 *
 * Input: [mode][bytes...], mode % 3:
 *   0  bytes are the Authorization header value ("Bearer <jwt>" or anything else);
 *   1  bytes are a JWKS document for sb_jwks_parse;
 *   2  bytes are "<header JSON>\n<claims JSON>": the harness signs them with the
 *      fixtures' private key (RS256, base64url), so mutations reach the claim checks
 *      that an unsigned token never gets to.
 * Checked besides memory safety: the reason is one of the documented words; a token is
 * accepted only when its header says alg RS256 and its claims carry the right iss,
 * aud, email and email_verified (an independent reading of the SPEC with jansson). */
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "sb_b64.h"
#include "sb_fuzz.h"
#include "sb_jwks.h"
#include "sb_mem.h"
#include "verify_google.h"
#include "sb_banned.h"

#define S_NOW 1795533668 // the fixtures' "now" (fixtures/README.md)
#define S_AUD "https://hooks.example.com/api/webhooks/gmail/push"
#define S_ACCOUNT "gmail-push@example-project.iam.gserviceaccount.com"

static sb_google_verifier_t *s_verifier; // one for the run, as in the stage
static EVP_PKEY *s_key;                  // the fixtures' signing key, for mode 2

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sb_err_t err = {0};
    s_verifier = sb_google_verifier_new(SB_FIXTURES_DIR "/google/test-jwks.json", NULL, S_AUD,
                                        S_ACCOUNT, &err);
    SB_FUZZ_CHECK(s_verifier != NULL, err.msg);
    FILE *f = fopen(SB_FIXTURES_DIR "/google/test-rsa-key.pem", "r");
    SB_FUZZ_CHECK(f != NULL, "open " SB_FIXTURES_DIR "/google/test-rsa-key.pem");
    s_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    SB_FUZZ_CHECK(s_key != NULL, "read the fixtures' private key");
    return 0;
}

static void
s_check_reason(int rc, const char *reason)
{
    static const char *const reasons[] =
        {
            "missing_bearer", "malformed_jwt", "bad_alg",         "unknown_kid",
            "bad_signature",  "expired",       "not_yet_valid",   "bad_iss",
            "bad_aud",        "bad_email",     "email_unverified"}; // never "jwks_unavailable": the
                                                                    // key file is there
    if (rc == 0) {
        SB_FUZZ_CHECK(reason == NULL, "no reason for a valid token");
        return;
    }
    SB_FUZZ_CHECK(rc == -1 && reason != NULL, "a refusal has a reason");
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (strcmp(reason, reasons[i]) == 0)
            return;
    SB_FUZZ_CHECK(0, reason);
}

static const char *
s_str(const json_t *value)
{
    const char *s = json_string_value(value);
    return s ? s : "";
}

// An accepted token's header and claims, read again with plain jansson.
static void
s_check_accepted(const json_t *header, const json_t *claims)
{
    SB_FUZZ_CHECK(strcmp(s_str(json_object_get(header, "alg")), "RS256") == 0,
                  "accepted only with alg RS256");
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    SB_FUZZ_CHECK(iss && (strcmp(iss, "accounts.google.com") == 0 ||
                          strcmp(iss, "https://accounts.google.com") == 0),
                  "accepted only from Google's iss");
    const json_t *aud = json_object_get(claims, "aud");
    bool aud_ok = json_is_string(aud) && strcmp(json_string_value(aud), S_AUD) == 0;
    for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud); i++)
        aud_ok |= strcmp(s_str(json_array_get(aud, i)), S_AUD) == 0;
    SB_FUZZ_CHECK(aud_ok, "accepted only for our audience");
    const char *email = json_string_value(json_object_get(claims, "email"));
    SB_FUZZ_CHECK(email && strcasecmp(email, S_ACCOUNT) == 0, "accepted only for the account");
    SB_FUZZ_CHECK(json_is_true(json_object_get(claims, "email_verified")),
                  "accepted only with email_verified");
}

// Mode 2: sign header and claims as given and verify the result.
static void
s_signed(const char *text, size_t len)
{
    const char *nl = memchr(text, '\n', len);
    if (nl == NULL)
        return;
    size_t header_len = (size_t)(nl - text), claims_len = len - header_len - 1;
    char *h64 = sb_b64_encode(text, header_len, SB_B64_URL | SB_B64_NO_PAD);
    char *c64 = sb_b64_encode(nl + 1, claims_len, SB_B64_URL | SB_B64_NO_PAD);
    char *input = sb_xasprintf("%s.%s", h64, c64);
    unsigned char sig[1024];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    SB_FUZZ_CHECK(
        md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s_key) == 1 &&
            EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, strlen(input)) == 1,
        "sign with the fixtures' key");
    EVP_MD_CTX_free(md);
    char *s64 = sb_b64_encode(sig, sig_len, SB_B64_URL | SB_B64_NO_PAD);
    char *auth = sb_xasprintf("Bearer %s.%s", input, s64);
    const char *reason = "unset";
    int rc = sb_google_verify(s_verifier, auth, S_NOW, &reason);
    s_check_reason(rc, reason);
    if (rc == 0) {
        json_t *header = json_loadb(text, header_len, 0, NULL);
        json_t *claims = json_loadb(nl + 1, claims_len, 0, NULL);
        SB_FUZZ_CHECK(json_is_object(header) && json_is_object(claims), "accepted JSON objects");
        s_check_accepted(header, claims);
        json_decref(header);
        json_decref(claims);
    }
    free(auth);
    free(s64);
    free(input);
    free(c64);
    free(h64);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 3) {
    case 0: {
        char *auth = sb_xmemdup(text, len);
        const char *reason = "unset";
        int rc = sb_google_verify(s_verifier, auth, S_NOW, &reason);
        s_check_reason(rc, reason);
        free(auth);
        break;
    }
    case 1: {
        sb_err_t err = {0};
        sb_jwks_t *set = sb_jwks_parse(text, len, &err);
        SB_FUZZ_CHECK(set != NULL || err.msg[0] != '\0', "a refused set says why");
        if (set) {
            SB_FUZZ_CHECK(sb_jwks_size(set) >= 1 && sb_jwks_size(set) <= SB_JWKS_MAX_KEYS,
                          "a set holds 1 to SB_JWKS_MAX_KEYS keys");
            SB_FUZZ_CHECK(sb_jwks_key(set, "") == NULL, "no key has an empty kid");
        }
        sb_jwks_destroy(&set);
        break;
    }
    default:
        s_signed(text, len);
        break;
    }
    return 0;
}
