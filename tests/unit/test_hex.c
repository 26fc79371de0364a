/* test_hex - sb_hex: every digit of either case, the characters around the digit ranges,
 * and decoding only exactly 2n digits. */
#include <string.h>
#include "sb_check.h"
#include "sb_hex.h"
#include "sb_banned.h"

START_TEST(digits_of_either_case_and_nothing_else)
{
    const char *digits = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        ck_assert_int_eq(sb_hex_digit(digits[i]), i);
        char upper = digits[i] >= 'a' ? (char)(digits[i] - 'a' + 'A') : digits[i];
        ck_assert_int_eq(sb_hex_digit(upper), i);
    }
    const char *others = "/:@G`g xX-+\n";
    for (size_t i = 0; i < strlen(others); i++)
        ck_assert_msg(sb_hex_digit(others[i]) == -1, "'%c' taken as a digit", others[i]);
    ck_assert_int_eq(sb_hex_digit('\0'), -1);
    ck_assert_int_eq(sb_hex_digit((char)0xc3), -1);
}
END_TEST

START_TEST(decode_takes_exactly_2n_digits)
{
    unsigned char out[4] = {0};
    ck_assert_int_eq(sb_hex_decode("00ff7Fa5", 8, out, 4), 0);
    ck_assert_int_eq(out[0], 0x00);
    ck_assert_int_eq(out[1], 0xff);
    ck_assert_int_eq(out[2], 0x7f);
    ck_assert_int_eq(out[3], 0xa5);
    ck_assert_int_eq(sb_hex_decode("00ff7Fa", 7, out, 4), -1);   // short
    ck_assert_int_eq(sb_hex_decode("00ff7Fa50", 9, out, 4), -1); // long
    ck_assert_int_eq(sb_hex_decode("00fg7Fa5", 8, out, 4), -1);  // not a digit
    ck_assert_int_eq(sb_hex_decode(" 0ff7Fa5", 8, out, 4), -1);  // no whitespace
    ck_assert_int_eq(sb_hex_decode("", 0, out, 0), 0);
}
END_TEST

static Suite *
sb_hex_suite(void)
{
    Suite *s = suite_create("sb_hex");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, digits_of_either_case_and_nothing_else);
    tcase_add_test(tc, decode_takes_exactly_2n_digits);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_hex_suite)
