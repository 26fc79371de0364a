/* test_verify_ringcentral - Verification-Token and X-RingCentral-Signature rules against
 * the shared fixtures (hmac-signature.txt signs the exact bytes of sms-inbound.json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sb_check.h"
#include "test_util.h"
#include "sb_mem.h"
#include "verifier.h"
#include "verify_ringcentral.h"
#include "sb_banned.h"

#define RC_DIR SB_FIXTURES_DIR "/ringcentral/"
#define TOKEN "vt-3kQ9xW7pLm2Zr8Yc4Tn6Bd1Fh5Gj0Sa" // notification-request-headers.txt

static char *s_body; // sms-inbound.json, byte for byte
static size_t s_body_len;
static char s_secret[128], s_hex[80], s_base64[64];

// "name=value" from hmac-signature.txt into out.
static void
fixture_value(const char *text, const char *name, char *out, size_t size)
{
    char key[64];
    snprintf(key, sizeof key, "\n%s=", name);
    const char *p = strstr(text, key);
    ck_assert_msg(p != NULL, "hmac-signature.txt has no %s", name);
    p += strlen(key);
    size_t n = strcspn(p, "\r\n");
    ck_assert_uint_lt(n, size);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void
setup(void)
{
    s_body = sb_test_read_file(RC_DIR "sms-inbound.json", &s_body_len);
    ck_assert_uint_eq(s_body_len, 1414); // the length the signatures were made over
    size_t len;
    char *sig = sb_test_read_file(RC_DIR "hmac-signature.txt", &len);
    fixture_value(sig, "secret", s_secret, sizeof s_secret);
    fixture_value(sig, "hex", s_hex, sizeof s_hex);
    fixture_value(sig, "base64", s_base64, sizeof s_base64);
    free(sig);
    ck_assert_uint_eq(strlen(s_hex), 64);
    ck_assert_uint_eq(strlen(s_base64), 44);
}

static void
teardown(void)
{
    free(s_body);
    s_body = NULL;
}

static int
hmac_ok(const char *secret, const char *signature)
{
    return sb_verify_hmac_sha256(secret, s_body, s_body_len, signature);
}

START_TEST(hmac_hex_lower_and_upper_pass)
{
    ck_assert_int_eq(hmac_ok(s_secret, s_hex), 0);
    char upper[80];
    for (size_t i = 0; i <= strlen(s_hex); i++)
        upper[i] = (s_hex[i] >= 'a' && s_hex[i] <= 'f') ? (char)(s_hex[i] - 32) : s_hex[i];
    ck_assert_str_ne(upper, s_hex);
    ck_assert_int_eq(hmac_ok(s_secret, upper), 0);
}
END_TEST

START_TEST(hmac_base64_padded_and_unpadded_pass)
{
    ck_assert_int_eq(hmac_ok(s_secret, s_base64), 0);
    char unpadded[64];
    snprintf(unpadded, sizeof unpadded, "%.43s", s_base64);
    ck_assert_int_eq(hmac_ok(s_secret, unpadded), 0);
}
END_TEST

START_TEST(hmac_sha256_prefix_passes)
{
    char sig[128];
    snprintf(sig, sizeof sig, "sha256=%s", s_hex);
    ck_assert_int_eq(hmac_ok(s_secret, sig), 0);
    snprintf(sig, sizeof sig, "SHA256=%s", s_base64);
    ck_assert_int_eq(hmac_ok(s_secret, sig), 0);
    snprintf(sig, sizeof sig, " sha256=%s ", s_hex); // header whitespace
    ck_assert_int_eq(hmac_ok(s_secret, sig), 0);
    snprintf(sig, sizeof sig, "sha1=%s", s_hex);
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
}
END_TEST

START_TEST(hmac_wrong_secret_or_body_fails)
{
    ck_assert_int_eq(hmac_ok("test-webhook-secret-DO-NOT-USE!", s_hex), -1);
    ck_assert_int_eq(hmac_ok("", s_hex), -1);
    ck_assert_int_eq(hmac_ok(NULL, s_hex), -1);
    s_body[100] ^= 1;
    ck_assert_int_eq(hmac_ok(s_secret, s_hex), -1);
    ck_assert_int_eq(hmac_ok(s_secret, s_base64), -1);
    s_body[100] ^= 1;
    ck_assert_int_eq(sb_verify_hmac_sha256(s_secret, s_body, s_body_len - 1, s_hex), -1);
}
END_TEST

START_TEST(hmac_wrong_length_fails)
{
    char sig[160];
    snprintf(sig, sizeof sig, "%.62s", s_hex); // truncated hex
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    snprintf(sig, sizeof sig, "%.63s", s_hex); // odd length
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    snprintf(sig, sizeof sig, "%s00", s_hex); // one byte too many
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    snprintf(sig, sizeof sig, "%s%s", s_hex, s_hex);
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    snprintf(sig, sizeof sig, "%.40s", s_base64); // truncated base64
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    ck_assert_int_eq(hmac_ok(s_secret, ""), -1);
    ck_assert_int_eq(hmac_ok(s_secret, "sha256="), -1);
    ck_assert_int_eq(hmac_ok(s_secret, NULL), -1);
}
END_TEST

START_TEST(hmac_garbage_fails)
{
    char sig[128];
    snprintf(sig, sizeof sig, "%s", s_hex);
    sig[10] = 'g'; // not hex
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    snprintf(sig, sizeof sig, "%s", s_base64);
    sig[5] = '*'; // not base64
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    snprintf(sig, sizeof sig, "%s", s_base64);
    sig[20] = '='; // padding in the middle
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    snprintf(sig, sizeof sig, "%.42s==", s_base64); // 31 bytes, padded to the same length
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    snprintf(sig, sizeof sig, "%s", s_base64);
    ck_assert_int_eq(sig[42], '4');
    sig[42] = '5'; // the same 32 bytes, but a padding bit set: not canonical
    ck_assert_int_eq(hmac_ok(s_secret, sig), -1);
    ck_assert_int_eq(hmac_ok(s_secret, "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!="), -1);
}
END_TEST

static int
rc(const char *conf_token, const char *conf_secret, int allow, const char *token,
   const char *signature, const char **reason)
{
    sb_verify_ringcentral_keys_t keys = {conf_token, conf_secret, allow};
    *reason = "not set";
    return sb_verify_ringcentral(&keys, token, signature, s_body, s_body_len, reason);
}

START_TEST(token_right_passes)
{
    const char *reason;
    ck_assert_int_eq(rc(TOKEN, NULL, 0, TOKEN, NULL, &reason), 0);
    ck_assert_ptr_null(reason);
}
END_TEST

START_TEST(token_wrong_empty_or_other_length_fails)
{
    const char *reason;
    char wrong[] = TOKEN;
    wrong[sizeof wrong - 2] ^= 1; // same length, last character differs
    ck_assert_int_eq(rc(TOKEN, NULL, 0, wrong, NULL, &reason), -1);
    ck_assert_str_eq(reason, "bad_verification_token");
    ck_assert_int_eq(rc(TOKEN, NULL, 0, "vt-3kQ9", NULL, &reason), -1); // a prefix
    ck_assert_str_eq(reason, "bad_verification_token");
    ck_assert_int_eq(rc(TOKEN, NULL, 0, TOKEN "x", NULL, &reason), -1); // longer
    ck_assert_str_eq(reason, "bad_verification_token");
    ck_assert_int_eq(rc(TOKEN, NULL, 0, "", NULL, &reason), -1);
    ck_assert_str_eq(reason, "missing_verification_token");
    ck_assert_int_eq(rc(TOKEN, NULL, 0, NULL, NULL, &reason), -1);
    ck_assert_str_eq(reason, "missing_verification_token");
    // A signature cannot stand in for the token when no secret is configured.
    ck_assert_int_eq(rc(TOKEN, NULL, 0, NULL, s_hex, &reason), -1);
    ck_assert_str_eq(reason, "missing_verification_token");
}
END_TEST

START_TEST(secret_equal_is_exact)
{
    ck_assert_int_eq(sb_verifier_secret_equal("abc", "abc"), 1);
    ck_assert_int_eq(sb_verifier_secret_equal("abc", "abd"), 0);
    ck_assert_int_eq(sb_verifier_secret_equal("abc", "ab"), 0);
    ck_assert_int_eq(sb_verifier_secret_equal("abc", "abcd"), 0);
    ck_assert_int_eq(sb_verifier_secret_equal("abc", ""), 0);
    ck_assert_int_eq(sb_verifier_secret_equal("", ""), 1);
    ck_assert_int_eq(sb_verifier_secret_equal("abc", NULL), 0);
    ck_assert_int_eq(sb_verifier_secret_equal(NULL, "abc"), 0);
}
END_TEST

START_TEST(signature_scheme_alone)
{
    const char *reason;
    ck_assert_int_eq(rc(NULL, s_secret, 0, NULL, s_hex, &reason), 0);
    ck_assert_ptr_null(reason);
    ck_assert_int_eq(rc("", s_secret, 0, NULL, s_base64, &reason), 0); // "" is unset
    ck_assert_int_eq(rc(NULL, s_secret, 0, NULL, "00", &reason), -1);
    ck_assert_str_eq(reason, "bad_signature");
    // Real RingCentral traffic (token only) against a secret-only configuration.
    ck_assert_int_eq(rc(NULL, s_secret, 0, TOKEN, NULL, &reason), -1);
    ck_assert_str_eq(reason, "missing_signature");
}
END_TEST

START_TEST(either_scheme_passes_when_both_configured)
{
    const char *reason;
    ck_assert_int_eq(rc(TOKEN, s_secret, 0, TOKEN, NULL, &reason), 0);
    ck_assert_int_eq(rc(TOKEN, s_secret, 0, NULL, s_hex, &reason), 0);
    ck_assert_int_eq(rc(TOKEN, s_secret, 0, "wrong", s_hex, &reason), 0);
    ck_assert_int_eq(rc(TOKEN, s_secret, 0, TOKEN, "deadbeef", &reason), 0);
    ck_assert_int_eq(rc(TOKEN, s_secret, 0, "wrong", "deadbeef", &reason), -1);
    ck_assert_str_eq(reason, "bad_verification_token");
    ck_assert_int_eq(rc(TOKEN, s_secret, 0, NULL, "deadbeef", &reason), -1);
    ck_assert_str_eq(reason, "bad_signature");
    ck_assert_int_eq(rc(TOKEN, s_secret, 0, NULL, NULL, &reason), -1);
    ck_assert_str_eq(reason, "missing_verification_token");
}
END_TEST

START_TEST(no_scheme_fails_closed)
{
    const char *reason;
    ck_assert_int_eq(rc(NULL, NULL, 0, TOKEN, s_hex, &reason), -1);
    ck_assert_str_eq(reason, "no_verification_configured");
    ck_assert_int_eq(rc("", "", 0, NULL, NULL, &reason), -1);
    ck_assert_str_eq(reason, "no_verification_configured");
}
END_TEST

START_TEST(allow_unverified_only_without_scheme)
{
    const char *reason;
    ck_assert_int_eq(rc(NULL, NULL, 1, NULL, NULL, &reason), 0);
    ck_assert_str_eq(reason, "unverified_allowed");
    // A configured scheme still decides: the switch never lets a bad token through.
    ck_assert_int_eq(rc(TOKEN, NULL, 1, "wrong", NULL, &reason), -1);
    ck_assert_str_eq(reason, "bad_verification_token");
    ck_assert_int_eq(rc(NULL, s_secret, 1, NULL, NULL, &reason), -1);
    ck_assert_str_eq(reason, "missing_signature");
}
END_TEST

static Suite *
sb_verify_ringcentral_suite(void)
{
    Suite *s = suite_create("verify_ringcentral");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, hmac_hex_lower_and_upper_pass);
    tcase_add_test(tc, hmac_base64_padded_and_unpadded_pass);
    tcase_add_test(tc, hmac_sha256_prefix_passes);
    tcase_add_test(tc, hmac_wrong_secret_or_body_fails);
    tcase_add_test(tc, hmac_wrong_length_fails);
    tcase_add_test(tc, hmac_garbage_fails);
    tcase_add_test(tc, token_right_passes);
    tcase_add_test(tc, token_wrong_empty_or_other_length_fails);
    tcase_add_test(tc, secret_equal_is_exact);
    tcase_add_test(tc, signature_scheme_alone);
    tcase_add_test(tc, either_scheme_passes_when_both_configured);
    tcase_add_test(tc, no_scheme_fails_closed);
    tcase_add_test(tc, allow_unverified_only_without_scheme);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_verify_ringcentral_suite)
