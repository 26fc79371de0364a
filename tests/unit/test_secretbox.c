/* test_secretbox - sb_secretbox: the key formats, the "v1:" format against independent
 * vectors (NIST/McGrew-Viega GCM test case 16, and a value sealed by Python's
 * cryptography package), and every way a sealed value can fail to open: another key,
 * another context, any altered byte, truncation, another version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sb_b64.h"
#include "sb_check.h"
#include "sb_secretbox.h"
#include "sb_banned.h"

#define KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define CONTEXT "mailboxes.refresh_token:support@example.com"

static sb_secretbox_t *
box_of(const char *key)
{
    sb_err_t err = {0};
    sb_secretbox_t *box = sb_secretbox_new(key, &err);
    ck_assert_msg(box != NULL, "key %s: %s", key, err.msg);
    return box;
}

START_TEST(keys_in_hex_and_both_base64_alphabets)
{
    static const char *const good[] = {
        KEY_HEX,
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        KEY_B64,
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", // unpadded
        "  " KEY_HEX "\n",                             // as a file or .env line holds it
    };
    // All name the same key: what one seals, the others open.
    sb_secretbox_t *first = box_of(good[0]);
    sb_err_t err = {0};
    char *sealed = sb_secretbox_seal(first, "refresh", CONTEXT, &err);
    ck_assert_msg(sealed != NULL, "%s", err.msg);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        sb_secretbox_t *box = box_of(good[i]);
        char *plain = sb_secretbox_open(box, sealed, CONTEXT, &err);
        ck_assert_msg(plain != NULL, "key %zu: %s", i, err.msg);
        ck_assert_str_eq(plain, "refresh");
        free(plain);
        sb_secretbox_destroy(&box);
        ck_assert_ptr_null(box);
    }
    free(sealed);
    sb_secretbox_destroy(&first);
    sb_secretbox_destroy(&first); // twice is fine
}
END_TEST

START_TEST(bad_keys_are_refused_without_quoting_them)
{
    static const char *const bad[] = {
        NULL,
        "",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",     // 31 bytes
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00", // 33
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",   // not hex
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",                       // 31 bytes
        "correct horse battery staple",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sb_err_t err = {0};
        ck_assert_msg(sb_secretbox_new(bad[i], &err) == NULL, "key %zu accepted", i);
        ck_assert_msg(strstr(err.msg, "SWITCHBOARD_SECRET_KEY") != NULL, "%s", err.msg);
        ck_assert_msg(bad[i] == NULL || bad[i][0] == '\0' || strstr(err.msg, bad[i]) == NULL,
                      "the error quotes the key: %s", err.msg);
    }
}
END_TEST

START_TEST(seal_then_open_round_trips_with_a_fresh_nonce_each_time)
{
    sb_secretbox_t *box = box_of(KEY_HEX);
    sb_err_t err = {0};
    static const char *const texts[] = {"", "1//0gLx-refresh-token",
                                        "caf\xc3\xa9 \xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char *a = sb_secretbox_seal(box, texts[i], CONTEXT, &err);
        char *b = sb_secretbox_seal(box, texts[i], CONTEXT, &err);
        ck_assert_msg(a && b, "%s", err.msg);
        ck_assert(sb_secretbox_is_sealed(a));
        ck_assert_str_ne(a, b); // random nonce: equal secrets do not show as equal rows
        ck_assert_msg(texts[i][0] == '\0' || strstr(a, texts[i]) == NULL, "plaintext visible");
        // "v1:" + base64 of 12 + n + 16 bytes
        size_t want = 3 + (12 + strlen(texts[i]) + 16 + 2) / 3 * 4;
        ck_assert_uint_eq(strlen(a), want);
        char *plain = sb_secretbox_open(box, a, CONTEXT, &err);
        ck_assert_msg(plain != NULL, "%s", err.msg);
        ck_assert_str_eq(plain, texts[i]);
        free(plain);
        free(a);
        free(b);
    }
    sb_secretbox_destroy(&box);
}
END_TEST

START_TEST(gcm_test_case_16_opens)
{
    // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256,
    // 96-bit IV, additional data), put into the v1 layout: nonce | ciphertext | tag.
    static const char key[] = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
    static const unsigned char blob[] = {
        0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce, 0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88, // IV
        0x52, 0x2d, 0xc1, 0xf0, 0x99, 0x56, 0x7d, 0x07, 0xf4, 0x7f, 0x37, 0xa3,
        0x2a, 0x84, 0x42, 0x7d, 0x64, 0x3a, 0x8c, 0xdc, 0xbf, 0xe5, 0xc0, 0xc9,
        0x75, 0x98, 0xa2, 0xbd, 0x25, 0x55, 0xd1, 0xaa, 0x8c, 0xb0, 0x8e, 0x48,
        0x59, 0x0d, 0xbb, 0x3d, 0xa7, 0xb0, 0x8b, 0x10, 0x56, 0x82, 0x88, 0x38,
        0xc5, 0xf6, 0x1e, 0x63, 0x93, 0xba, 0x7a, 0x0a, 0xbc, 0xc9, 0xf6, 0x62, // C
        0x76, 0xfc, 0x6e, 0xce, 0x0f, 0x4e, 0x17, 0x68, 0xcd, 0xdf, 0x88, 0x53,
        0xbb, 0x2d, 0x55, 0x1b}; // T
    static const char aad[] = "\xfe\xed\xfa\xce\xde\xad\xbe\xef\xfe\xed\xfa\xce\xde\xad\xbe\xef"
                              "\xab\xad\xda\xd2";
    static const unsigned char want[] = {
        0xd9, 0x31, 0x32, 0x25, 0xf8, 0x84, 0x06, 0xe5, 0xa5, 0x59, 0x09, 0xc5, 0xaf, 0xf5, 0x26,
        0x9a, 0x86, 0xa7, 0xa9, 0x53, 0x15, 0x34, 0xf7, 0xda, 0x2e, 0x4c, 0x30, 0x3d, 0x8a, 0x31,
        0x8a, 0x72, 0x1c, 0x3c, 0x0c, 0x95, 0x95, 0x68, 0x09, 0x53, 0x2f, 0xcf, 0x0e, 0x24, 0x49,
        0xa6, 0xb5, 0x25, 0xb1, 0x6a, 0xed, 0xf5, 0xaa, 0x0d, 0xe6, 0x57, 0xba, 0x63, 0x7b, 0x39};
    char *b64 = sb_b64_encode(blob, sizeof blob, SB_B64_STD);
    size_t n = strlen(b64) + 4;
    char *sealed = malloc(n);
    snprintf(sealed, n, "v1:%s", b64);
    sb_secretbox_t *box = box_of(key);
    sb_err_t err = {0};
    char *plain = sb_secretbox_open(box, sealed, aad, &err);
    ck_assert_msg(plain != NULL, "%s", err.msg);
    ck_assert_uint_eq(strlen(plain), sizeof want);
    ck_assert_mem_eq(plain, want, sizeof want);
    free(plain);
    free(sealed);
    free(b64);
    sb_secretbox_destroy(&box);
}
END_TEST

START_TEST(a_value_sealed_elsewhere_opens)
{
    // Sealed with Python: AESGCM(bytes(range(32))).encrypt(bytes(range(12)), token, ctx)
    static const char sealed[] =
        "v1:AAECAwQFBgcICQoLdi35K7eApGnoMv+mxYYTCO374kyRFi8QXTuYM7M6sGMtkZExkHTRZx8=";
    sb_secretbox_t *box = box_of(KEY_B64);
    sb_err_t err = {0};
    char *plain = sb_secretbox_open(box, sealed, CONTEXT, &err);
    ck_assert_msg(plain != NULL, "%s", err.msg);
    ck_assert_str_eq(plain, "1//0refresh-token-example");
    free(plain);
    sb_secretbox_destroy(&box);
}
END_TEST

START_TEST(wrong_key_context_or_any_altered_byte_fails)
{
    sb_secretbox_t *box = box_of(KEY_HEX);
    sb_secretbox_t *other =
        box_of("1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100");
    sb_err_t err = {0};
    char *sealed = sb_secretbox_seal(box, "1//0gLx-refresh-token", CONTEXT, &err);
    ck_assert_ptr_nonnull(sealed);
    ck_assert_ptr_null(sb_secretbox_open(other, sealed, CONTEXT, &err));
    ck_assert_msg(strstr(err.msg, "cannot open") != NULL, "%s", err.msg);
    ck_assert_ptr_null(sb_secretbox_open(box, sealed, "mailboxes.refresh_token:x@y", &err));
    ck_assert_ptr_null(sb_secretbox_open(box, sealed, NULL, &err));
    // Flip every bit of the decoded box, one at a time.
    size_t n = 0;
    unsigned char *raw = sb_b64_decode(sealed + 3, strlen(sealed + 3), SB_B64_STD, &n);
    ck_assert_ptr_nonnull(raw);
    for (size_t i = 0; i < n * 8; i++) {
        raw[i / 8] ^= (unsigned char)(1u << (i % 8));
        char *b64 = sb_b64_encode(raw, n, SB_B64_STD);
        size_t len = strlen(b64) + 4;
        char *bad = malloc(len);
        snprintf(bad, len, "v1:%s", b64);
        char *plain = sb_secretbox_open(box, bad, CONTEXT, &err);
        ck_assert_msg(plain == NULL, "bit %zu flipped still opens", i);
        free(bad);
        free(b64);
        raw[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    // Cut short, cut to nothing, another version, not base64.
    for (size_t keep = 0; keep < n; keep++) {
        char *b64 = sb_b64_encode(raw, keep, SB_B64_STD);
        size_t len = strlen(b64) + 4;
        char *bad = malloc(len);
        snprintf(bad, len, "v1:%s", b64);
        ck_assert_msg(sb_secretbox_open(box, bad, CONTEXT, &err) == NULL, "%zu bytes open", keep);
        free(bad);
        free(b64);
    }
    static const char *const junk[] = {"", "v1:", "v1:!!!!", "v2:AAAA", "1//0gLx-plain", "V1:AAAA"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        ck_assert_msg(sb_secretbox_open(box, junk[i], CONTEXT, &err) == NULL, "%s", junk[i]);
    free(raw);
    free(sealed);
    sb_secretbox_destroy(&other);
    sb_secretbox_destroy(&box);
}
END_TEST

START_TEST(store_and_load_with_and_without_a_key)
{
    sb_err_t err = {0};
    // No key: stored as given, read as given (SWITCHBOARD_SECRET_KEY unset).
    char *stored = sb_secretbox_store(NULL, "1//0plain", CONTEXT, &err);
    ck_assert_str_eq(stored, "1//0plain");
    char *loaded = sb_secretbox_load(NULL, stored, CONTEXT, &err);
    ck_assert_str_eq(loaded, "1//0plain");
    free(loaded);
    // With a key: a plaintext row still reads (written before the key was set) ...
    sb_secretbox_t *box = box_of(KEY_HEX);
    loaded = sb_secretbox_load(box, stored, CONTEXT, &err);
    ck_assert_str_eq(loaded, "1//0plain");
    free(loaded);
    free(stored);
    // ... and new rows are sealed.
    stored = sb_secretbox_store(box, "1//0secret", CONTEXT, &err);
    ck_assert(sb_secretbox_is_sealed(stored));
    ck_assert_ptr_null(strstr(stored, "1//0secret"));
    loaded = sb_secretbox_load(box, stored, CONTEXT, &err);
    ck_assert_str_eq(loaded, "1//0secret");
    free(loaded);
    // A sealed row without the key is an error, never the ciphertext as a token.
    ck_assert_ptr_null(sb_secretbox_load(NULL, stored, CONTEXT, &err));
    ck_assert_msg(strstr(err.msg, "SWITCHBOARD_SECRET_KEY is not set") != NULL, "%s", err.msg);
    free(stored);
    sb_secretbox_destroy(&box);
}
END_TEST

START_TEST(oversized_plaintext_is_refused)
{
    sb_secretbox_t *box = box_of(KEY_HEX);
    char *big = malloc(SB_SECRETBOX_MAX_BYTES + 2);
    memset(big, 'a', SB_SECRETBOX_MAX_BYTES + 1);
    big[SB_SECRETBOX_MAX_BYTES + 1] = '\0';
    sb_err_t err = {0};
    ck_assert_ptr_null(sb_secretbox_seal(box, big, CONTEXT, &err));
    ck_assert_msg(strstr(err.msg, "cannot seal") != NULL, "%s", err.msg);
    big[SB_SECRETBOX_MAX_BYTES] = '\0'; // exactly the limit is fine
    char *sealed = sb_secretbox_seal(box, big, CONTEXT, &err);
    ck_assert_msg(sealed != NULL, "%s", err.msg);
    char *plain = sb_secretbox_open(box, sealed, CONTEXT, &err);
    ck_assert_msg(plain != NULL, "%s", err.msg);
    ck_assert_uint_eq(strlen(plain), SB_SECRETBOX_MAX_BYTES);
    free(plain);
    free(sealed);
    free(big);
    sb_secretbox_destroy(&box);
}
END_TEST

static Suite *
sb_secretbox_suite(void)
{
    Suite *s = suite_create("sb_secretbox");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, keys_in_hex_and_both_base64_alphabets);
    tcase_add_test(tc, bad_keys_are_refused_without_quoting_them);
    tcase_add_test(tc, seal_then_open_round_trips_with_a_fresh_nonce_each_time);
    tcase_add_test(tc, gcm_test_case_16_opens);
    tcase_add_test(tc, a_value_sealed_elsewhere_opens);
    tcase_add_test(tc, wrong_key_context_or_any_altered_byte_fails);
    tcase_add_test(tc, store_and_load_with_and_without_a_key);
    tcase_add_test(tc, oversized_plaintext_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_secretbox_suite)
