/* test_b64 - sb_b64: both alphabets, with and without padding, the strict parts
 * (stray characters, misplaced padding, a lone last character) and round trips. */
#include <stdlib.h>
#include <string.h>
#include "sb_b64.h"
#include "sb_check.h"
#include "sb_banned.h"

// Decode text (a C string) under flags and compare with want[0, want_len); want NULL
// means the decoder must refuse it.
static void
expect_decode(const char *text, int flags, const char *want, size_t want_len)
{
    size_t len = 12345;
    unsigned char *got = sb_b64_decode(text, strlen(text), flags, &len);
    if (want == NULL) {
        ck_assert_msg(got == NULL, "\"%s\" (flags %d) should be refused", text, flags);
        return;
    }
    ck_assert_msg(got != NULL, "\"%s\" (flags %d) should decode", text, flags);
    ck_assert_uint_eq(len, want_len);
    ck_assert_mem_eq(got, want, want_len);
    ck_assert_int_eq(got[len], '\0');
    free(got);
}

START_TEST(rfc4648_vectors_decode_padded_and_unpadded)
{
    static const struct {
        const char *padded, *unpadded, *plain;
    } v[] = {
        {"", "", ""},
        {"Zg==", "Zg", "f"},
        {"Zm8=", "Zm8", "fo"},
        {"Zm9v", "Zm9v", "foo"},
        {"Zm9vYg==", "Zm9vYg", "foob"},
        {"Zm9vYmE=", "Zm9vYmE", "fooba"},
        {"Zm9vYmFy", "Zm9vYmFy", "foobar"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = strlen(v[i].plain);
        expect_decode(v[i].padded, SB_B64_STD, v[i].plain, n);
        expect_decode(v[i].padded, SB_B64_URL, v[i].plain, n);
        expect_decode(v[i].unpadded, SB_B64_STD, v[i].plain, n);
        expect_decode(v[i].unpadded, SB_B64_URL | SB_B64_NO_PAD, v[i].plain, n);
    }
}
END_TEST

START_TEST(alphabets_are_kept_apart_unless_any)
{
    // 0xfb 0xff 0xbf is "+/+/" in standard base64 and "-_-_" in base64url.
    static const char bytes[] = "\xfb\xff\xbf\xfb\xff\xbf";
    expect_decode("+/+/+/+/", SB_B64_STD, bytes, 6);
    expect_decode("-_-_-_-_", SB_B64_URL, bytes, 6);
    expect_decode("+/+/+/+/", SB_B64_URL, NULL, 0);
    expect_decode("-_-_-_-_", SB_B64_STD, NULL, 0);
    expect_decode("+/+/-_-_", SB_B64_ANY, bytes, 6); // Pub/Sub data: whichever comes
    expect_decode("+/+/-_-_", SB_B64_STD, NULL, 0);
}
END_TEST

START_TEST(invalid_input_is_refused)
{
    expect_decode("Zm9v!mFy", SB_B64_ANY, NULL, 0);  // not in any alphabet
    expect_decode("Zm9v YmFy", SB_B64_ANY, NULL, 0); // whitespace inside
    expect_decode(" Zm9v", SB_B64_ANY, NULL, 0);     // EVP would skip this: we do not
    expect_decode("Zm9v\n", SB_B64_ANY, NULL, 0);    // nor a trailing newline
    expect_decode("Zm9vY", SB_B64_ANY, NULL, 0);     // a lone last character: 6 bits
    expect_decode("Z", SB_B64_ANY, NULL, 0);
    expect_decode("Zg=", SB_B64_ANY, NULL, 0);   // padding short of the quantum
    expect_decode("Zg===", SB_B64_ANY, NULL, 0); // too much padding
    expect_decode("Zm9v====", SB_B64_ANY, NULL, 0);
    expect_decode("Zm9v=", SB_B64_ANY, NULL, 0);    // padding after a full quantum
    expect_decode("Zg==Zg==", SB_B64_ANY, NULL, 0); // padding in the middle
    expect_decode("=", SB_B64_ANY, NULL, 0);
    expect_decode("==", SB_B64_ANY, NULL, 0);
    expect_decode("Zm8=", SB_B64_URL | SB_B64_NO_PAD, NULL, 0); // JWT segments: no '='
    expect_decode("Zm9v\xc3\xa9", SB_B64_ANY, NULL, 0);         // UTF-8 is not base64
    // A NUL inside the counted length is a stray character, not the end.
    size_t len;
    ck_assert_ptr_null(sb_b64_decode("Zm\0v", 4, SB_B64_ANY, &len));
    ck_assert_ptr_null(sb_b64_decode("Zm9v", 4, 0, &len)); // no alphabet chosen
}
END_TEST

START_TEST(decode_reads_only_the_given_length)
{
    size_t len;
    unsigned char *got = sb_b64_decode("Zm9vYmFy.garbage!", 8, SB_B64_URL, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(len, 6);
    ck_assert_str_eq((const char *)got, "foobar");
    free(got);
}
END_TEST

START_TEST(encode_matches_rfc4648_in_both_alphabets)
{
    char *s = sb_b64_encode("foob", 4, SB_B64_STD);
    ck_assert_str_eq(s, "Zm9vYg==");
    free(s);
    s = sb_b64_encode("foob", 4, SB_B64_URL | SB_B64_NO_PAD);
    ck_assert_str_eq(s, "Zm9vYg");
    free(s);
    s = sb_b64_encode("\xfb\xff\xbf\xfb", 4, SB_B64_STD);
    ck_assert_str_eq(s, "+/+/+w==");
    free(s);
    s = sb_b64_encode("\xfb\xff\xbf\xfb", 4, SB_B64_URL);
    ck_assert_str_eq(s, "-_-_-w==");
    free(s);
    s = sb_b64_encode("", 0, SB_B64_STD);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

START_TEST(every_length_and_byte_round_trips)
{
    unsigned char data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 3); // covers all 256 byte values
    static const int flags[] = {SB_B64_STD, SB_B64_URL, SB_B64_STD | SB_B64_NO_PAD,
                                SB_B64_URL | SB_B64_NO_PAD};
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        for (size_t len = 0; len <= sizeof data; len++) {
            char *text = sb_b64_encode(data, len, flags[f]);
            ck_assert_uint_eq(strlen(text),
                              flags[f] & SB_B64_NO_PAD ? (len * 4 + 2) / 3 : (len + 2) / 3 * 4);
            size_t out_len;
            unsigned char *out = sb_b64_decode(text, strlen(text), flags[f], &out_len);
            ck_assert_msg(out != NULL, "length %zu flags %d: \"%s\"", len, flags[f], text);
            ck_assert_uint_eq(out_len, len);
            ck_assert_mem_eq(out, data, len);
            free(out);
            free(text);
        }
    }
}
END_TEST

static Suite *
sb_b64_suite(void)
{
    Suite *s = suite_create("sb_b64");
    TCase *tc = tcase_create("b64");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, rfc4648_vectors_decode_padded_and_unpadded);
    tcase_add_test(tc, alphabets_are_kept_apart_unless_any);
    tcase_add_test(tc, invalid_input_is_refused);
    tcase_add_test(tc, decode_reads_only_the_given_length);
    tcase_add_test(tc, encode_matches_rfc4648_in_both_alphabets);
    tcase_add_test(tc, every_length_and_byte_round_trips);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_b64_suite)
