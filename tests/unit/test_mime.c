/* test_mime - quoted-printable, RFC 2047 words, charsets to UTF-8, HTML to text and the
 * body-part decoder, with the hostile inputs a mail parser meets: split characters,
 * stray "=", unknown charsets, NUL bytes, unclosed tags and absurd entities. */
#include <stdlib.h>
#include <string.h>
#include "sb_check.h"
#include "sb_mime.h"

#define FFFD "\xEF\xBF\xBD"

// Check a returned string and free it.
#define ASSERT_STR_FREE(expr, expected)                                                            \
    do {                                                                                           \
        char *got_ = (expr);                                                                       \
        ck_assert_ptr_nonnull(got_);                                                               \
        ck_assert_str_eq(got_, (expected));                                                        \
        free(got_);                                                                                \
    } while (0)

START_TEST(qp_decodes_escapes_and_soft_breaks)
{
    static const char in[] = "Caf=C3=A9 au lait is=\r\n nice=\nyes =3D 1=3d2";
    size_t len;
    char *out = sb_mime_qp_decode(in, sizeof in - 1, &len);
    ck_assert_str_eq(out, "Caf\xC3\xA9 au lait is nice"
                          "yes = 1=2");
    ck_assert_uint_eq(len, strlen(out));
    free(out);
}
END_TEST

START_TEST(qp_keeps_stray_equals_and_drops_trailing_spaces)
{
    static const char in[] = "a=b =zz x=4\r\nline  \r\nend=  \r\nmore =";
    size_t len;
    char *out = sb_mime_qp_decode(in, sizeof in - 1, &len);
    // "=b " and "=zz" are not escapes; "x=4\r" is not one either (only one hex digit)
    ck_assert_str_eq(out, "a=b =zz x=4\r\nline\r\nendmore ");
    free(out);
}
END_TEST

START_TEST(qp_may_produce_nul_bytes)
{
    size_t len;
    char *out = sb_mime_qp_decode("a=00b", 5, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(out, "a\0b", 4), 0);
    free(out);
}
END_TEST

START_TEST(looks_qp_only_for_encoded_text)
{
    static const char decoded[] = "Hello,\r\nsays \"processing\".\r\nIt costs 1+1 = 2?\r\n";
    ck_assert(!sb_mime_looks_qp(decoded, sizeof decoded - 1)); // "= " is no escape
    ck_assert(!sb_mime_looks_qp("no equals at all", 16));
    ck_assert(!sb_mime_looks_qp("Caf\xC3\xA9=C3", 9)); // 8-bit: already decoded
    ck_assert(sb_mime_looks_qp("Caf=C3=A9", 9));
    ck_assert(!sb_mime_looks_qp("id=ab12", 7));             // lower case: a URL, say
    ck_assert(!sb_mime_looks_qp("Caf=C3=A9 ?a=1&b=2", 18)); // one bad "=" is enough
    ck_assert(sb_mime_looks_qp("long line=\r\ncontinued", 21));
    ck_assert(sb_mime_looks_qp("long line=\ncontinued", 20));
    ck_assert(!sb_mime_looks_qp("ends with =", 11)); // a soft end alone is no evidence
    ck_assert(!sb_mime_looks_qp(NULL, 0));
}
END_TEST

START_TEST(words_b_and_q)
{
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?B?Q2Fmw6kg4oCU?="), "Caf\xC3\xA9 \xE2\x80\x94");
    ASSERT_STR_FREE(sb_mime_decode_words("=?iso-8859-1?Q?Caf=E9?="), "Caf\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_decode_words("=?utf-8?q?hello_world?="), "hello world");
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8*en?Q?hi?="), "hi"); // RFC 2231 language
    ASSERT_STR_FREE(sb_mime_decode_words("=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?="),
                    "\xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88"); // stateful charset: "テスト"
    ASSERT_STR_FREE(sb_mime_decode_words("=?shift_jis?B?g2WDWINn?="),
                    "\xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88");
}
END_TEST

START_TEST(words_adjacent_are_joined_and_text_kept)
{
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?Q?a?= =?UTF-8?Q?b?="), "ab");
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?Q?a?=\r\n\t=?UTF-8?Q?b?="), "ab");
    // a character split across two words (Outlook does this) survives the join
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?Q?=C3?= =?utf-8?Q?=A9?="), "\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?="), "\xC3\xA9\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_decode_words("=?iso-8859-1?Q?=E9?= =?UTF-8?Q?=C3=A9?="),
                    "\xC3\xA9\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_decode_words("Re: =?UTF-8?Q?Caf=C3=A9?= menu  =?UTF-8?Q?x?= y"),
                    "Re: Caf\xC3\xA9 menu  x y");
    ASSERT_STR_FREE(sb_mime_decode_words("Plain subject"), "Plain subject");
    ASSERT_STR_FREE(sb_mime_decode_words("Folded\r\n subject"), "Folded subject");
    ASSERT_STR_FREE(sb_mime_decode_words(""), "");
    ck_assert_ptr_null(sb_mime_decode_words(NULL));
}
END_TEST

START_TEST(words_malformed_stay_literal)
{
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?B?!!!?="), "=?UTF-8?B?!!!?=");
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?X?abc?="), "=?UTF-8?X?abc?=");
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?Q?unterminated"), "=?UTF-8?Q?unterminated");
    ASSERT_STR_FREE(sb_mime_decode_words("=??Q?x?="), "=??Q?x?=");
    ASSERT_STR_FREE(sb_mime_decode_words("=?"), "=?");
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?Q?a?= =?UTF-8?B?***?="),
                    "a =?UTF-8?B?***?="); // the space before a literal is kept
}
END_TEST

START_TEST(words_unknown_charset_and_controls)
{
    ASSERT_STR_FREE(sb_mime_decode_words("=?x-unknown-cs?Q?caf=C3=A9?="), "caf\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_decode_words("=?x-unknown?Q?=FF?="), FFFD);
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8//TRANSLIT?Q?=C3=A9?="), "\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?Q?a=0Ab=09c?="), "a b c");
    ASSERT_STR_FREE(sb_mime_decode_words("=?UTF-8?Q?a=00b?="), "a" FFFD "b");
    ASSERT_STR_FREE(sb_mime_decode_words("raw \xFF latin"), "raw " FFFD " latin");
}
END_TEST

START_TEST(to_utf8_single_byte_charsets)
{
    ASSERT_STR_FREE(sb_mime_to_utf8("caf\xE9", 4, "iso-8859-1"), "caf\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_to_utf8("caf\xE9", 4, "\"ISO-8859-1\""), "caf\xC3\xA9");
    // 0x93/0x94 in "latin1" mail are Windows smart quotes (WHATWG)
    ASSERT_STR_FREE(sb_mime_to_utf8("\x93hi\x94", 4, "iso-8859-1"), "\xE2\x80\x9Chi\xE2\x80\x9D");
    ASSERT_STR_FREE(sb_mime_to_utf8("\x80", 1, "windows-1252"), "\xE2\x82\xAC");
    ASSERT_STR_FREE(sb_mime_to_utf8("\xE9t\xE9", 3, "iso-8859-15"), "\xC3\xA9t\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_to_utf8("\xD2\xCF\xDA\xC1", 4, "KOI8-R"),
                    "\xD1\x80\xD0\xBE\xD0\xB7\xD0\xB0"); // any charset iconv knows
}
END_TEST

START_TEST(to_utf8_shift_jis_with_bad_bytes)
{
    static const char tesuto[] = "\xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88";
    ASSERT_STR_FREE(sb_mime_to_utf8("\x83\x65\x83\x58\x83\x67", 6, "Shift_JIS"), tesuto);
    ASSERT_STR_FREE(sb_mime_to_utf8("\\", 1, "shift_jis"), "\\"); // CP932: not a yen sign
    ASSERT_STR_FREE(sb_mime_to_utf8("\xA0"
                                    "A",
                                    2, "shift_jis"),
                    FFFD "A");
    ASSERT_STR_FREE(sb_mime_to_utf8("A\x83", 2, "shift_jis"), "A" FFFD); // cut character
}
END_TEST

START_TEST(to_utf8_repairs_utf8)
{
    ASSERT_STR_FREE(sb_mime_to_utf8("a\xFF"
                                    "b",
                                    3, "utf-8"),
                    "a" FFFD "b");
    ASSERT_STR_FREE(sb_mime_to_utf8("a\xE2\x80", 3, "UTF-8"), "a" FFFD);       // one per prefix
    ASSERT_STR_FREE(sb_mime_to_utf8("\xC0\xAF", 2, "utf8"), FFFD FFFD);        // overlong
    ASSERT_STR_FREE(sb_mime_to_utf8("\xED\xA0\x80", 3, NULL), FFFD FFFD FFFD); // surrogate
    ASSERT_STR_FREE(sb_mime_to_utf8("\xF4\x90\x80\x80", 4, ""), FFFD FFFD FFFD FFFD);
    ASSERT_STR_FREE(sb_mime_to_utf8("\xF0\x9F\x98\x80", 4, "utf-8"), "\xF0\x9F\x98\x80");
    ASSERT_STR_FREE(sb_mime_to_utf8("a\0b", 3, "utf-8"), "a" FFFD "b");
    ASSERT_STR_FREE(sb_mime_to_utf8("caf\xC3\xA9", 5, "us-ascii"), "caf\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_to_utf8("caf\xC3\xA9 \xFF", 7, "x-klingon"), "caf\xC3\xA9 " FFFD);
    ASSERT_STR_FREE(sb_mime_to_utf8("caf\xC3\xA9", 5, "utf-8; rm -rf /"), "caf\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_to_utf8("", 0, "utf-8"), "");
    ASSERT_STR_FREE(sb_mime_to_utf8(NULL, 5, "utf-8"), "");
}
END_TEST

START_TEST(to_utf8_utf16_nul_is_replaced)
{
    ASSERT_STR_FREE(sb_mime_to_utf8("a\0\0\0", 4, "utf-16le"), "a" FFFD);
    ASSERT_STR_FREE(sb_mime_to_utf8("a\0\x00\xD8", 4, "utf-16le"), "a" FFFD); // lone surrogate
}
END_TEST

START_TEST(html_fixture_paragraphs_and_breaks)
{
    static const char html[] =
        "<div dir=\"ltr\"><p>Hi team,</p><p>Following up on our call this morning: please "
        "send the revised quote for the <b>12-month plan</b> (30 seats) and keep the "
        "onboarding session on Thursday at 10:00 ET.</p><p>Caf\xC3\xA9 meeting notes are "
        "attached in the shared folder \xE2\x80\x94 let me know if anything is missing?</p>"
        "<p>Best regards,<br>Dana Whitfield<br>Operations Manager, Whitfield &amp; Co.<br>+1 "
        "(312) 555-0199</p></div>\r\n";
    ASSERT_STR_FREE(sb_mime_html_to_text(html),
                    "Hi team,\n\nFollowing up on our call this morning: please send the revised "
                    "quote for the 12-month plan (30 seats) and keep the onboarding session on "
                    "Thursday at 10:00 ET.\n\nCaf\xC3\xA9 meeting notes are attached in the "
                    "shared folder \xE2\x80\x94 let me know if anything is missing?\n\nBest "
                    "regards,\nDana Whitfield\nOperations Manager, Whitfield & Co.\n+1 (312) "
                    "555-0199");
}
END_TEST

START_TEST(html_entities)
{
    ASSERT_STR_FREE(
        sb_mime_html_to_text("&amp;&lt;&gt;&quot;&#39;&apos;&nbsp;x&#233;&#xE9;&#X1F600;"),
        "&<>\"'' x\xC3\xA9\xC3\xA9\xF0\x9F\x98\x80");
    ASSERT_STR_FREE(sb_mime_html_to_text("a&nbsp;&nbsp;b"), "a b"); // nbsp is a space
    ASSERT_STR_FREE(sb_mime_html_to_text("&#0;&#xD800;&#99999999999999999999;"), FFFD FFFD FFFD);
    ASSERT_STR_FREE(sb_mime_html_to_text("&bogus; & &; &#; &#x; &amp"),
                    "&bogus; & &; &#; &#x; &amp");
    ASSERT_STR_FREE(sb_mime_html_to_text("&#65&#66;"), "AB"); // no ";" is tolerated
    ASSERT_STR_FREE(sb_mime_html_to_text("&mdash;&hellip;&rsquo;"),
                    "\xE2\x80\x94\xE2\x80\xA6\xE2\x80\x99");
}
END_TEST

START_TEST(html_drops_script_style_comments)
{
    ASSERT_STR_FREE(sb_mime_html_to_text("<html><head><title>T</title><style>p{x:1}</style>"
                                         "</head><body>a<script>if (a<b) x();</script>b"
                                         "<!-- <p>hidden</p> -->c<!DOCTYPE html><?xml x?>"
                                         "</body></html>"),
                    "abc");
    ASSERT_STR_FREE(sb_mime_html_to_text("x<SCRIPT type=\"t\">alert(1)</ScRiPt >y"), "xy");
    ASSERT_STR_FREE(sb_mime_html_to_text("x<script>never closed"), "x");
    ASSERT_STR_FREE(sb_mime_html_to_text("x<!-- never closed"), "x");
    ASSERT_STR_FREE(sb_mime_html_to_text("x<b never closed"), "x");
}
END_TEST

START_TEST(html_whitespace_and_blocks)
{
    ASSERT_STR_FREE(sb_mime_html_to_text("  a \n\t b  "), "a b");
    ASSERT_STR_FREE(sb_mime_html_to_text("<p>a</p><p>b</p>"), "a\n\nb");
    ASSERT_STR_FREE(sb_mime_html_to_text("a<br>b<BR/><br />c"), "a\nb\n\nc");
    ASSERT_STR_FREE(sb_mime_html_to_text("<div>a</div><div>b</div>"), "a\nb");
    ASSERT_STR_FREE(sb_mime_html_to_text("<ul><li>one</li><li>two</li></ul>"), "one\ntwo");
    ASSERT_STR_FREE(sb_mime_html_to_text("<table><tr><td>a</td><td>b</td></tr></table>"), "a b");
    ASSERT_STR_FREE(sb_mime_html_to_text("<pre>a\n  b</pre> c  d"), "a\n  b\nc d");
    ASSERT_STR_FREE(sb_mime_html_to_text("a < b and c<3"), "a < b and c<3");
    ASSERT_STR_FREE(sb_mime_html_to_text("<a href=\"x>y\" title='>'>link</a>"), "link");
    ASSERT_STR_FREE(sb_mime_html_to_text(""), "");
    ASSERT_STR_FREE(sb_mime_html_to_text("<br><br><p></p>"), "");
    ck_assert_ptr_null(sb_mime_html_to_text(NULL));
}
END_TEST

START_TEST(param_values)
{
    ASSERT_STR_FREE(sb_mime_param("text/plain; charset=\"UTF-8\"", "charset"), "UTF-8");
    ASSERT_STR_FREE(sb_mime_param("text/plain;CharSet=iso-8859-1; format=flowed", "charset"),
                    "iso-8859-1");
    ASSERT_STR_FREE(sb_mime_param("text/plain; name=\"a;charset=x\"; charset = utf-8", "charset"),
                    "utf-8");
    ASSERT_STR_FREE(sb_mime_param("text/plain; charset=\"a\\\"b\"", "charset"), "a\"b");
    ck_assert_ptr_null(sb_mime_param("text/plain", "charset"));
    ck_assert_ptr_null(sb_mime_param("text/plain; charsetx=1", "charset"));
    ck_assert_ptr_null(sb_mime_param(NULL, "charset"));
}
END_TEST

START_TEST(body_decode_base64url)
{
    bool cut = true;
    // "Caf\xC3\xA9?>" has "-" and "_" in base64url, and no padding
    ASSERT_STR_FREE(sb_mime_body_decode("Q2Fmw6k_Pg", 10, NULL, "utf-8", 0, &cut), "Caf\xC3\xA9?>");
    ck_assert(!cut);
    ASSERT_STR_FREE(sb_mime_body_decode("Q2Fmw6k/Pg==", 12, NULL, NULL, 0, &cut), "Caf\xC3\xA9?>");
    ASSERT_STR_FREE(sb_mime_body_decode("Q2Fm\r\n6Q", 8, NULL, "iso-8859-1", 0, &cut),
                    "Caf\xC3\xA9");
    ASSERT_STR_FREE(sb_mime_body_decode("", 0, NULL, NULL, 0, &cut), "");
    ck_assert_ptr_null(sb_mime_body_decode("!!!!", 4, NULL, NULL, 0, &cut));
    ck_assert_ptr_null(sb_mime_body_decode("QUJDR", 5, NULL, NULL, 0, &cut)); // 5 chars
    ck_assert_ptr_null(sb_mime_body_decode("QQ==QQ==", 8, NULL, NULL, 0, &cut));
    ASSERT_STR_FREE(sb_mime_body_decode("QUJDREVG", 8, NULL, NULL, 4, &cut), "ABC");
    ck_assert(cut);
}
END_TEST

START_TEST(body_decode_qp_only_when_still_encoded)
{
    // base64url of "Caf=C3=A9 =\r\nok": encoded twice, so decode QP once more
    ASSERT_STR_FREE(
        sb_mime_body_decode("Q2FmPUMzPUE5ID0NCm9r", 20, " Quoted-Printable ", "utf-8", 0, NULL),
        "Caf\xC3\xA9 ok");
    // the same bytes without the header stay as they are
    ASSERT_STR_FREE(sb_mime_body_decode("Q2FmPUMzPUE5ID0NCm9r", 20, "8bit", "utf-8", 0, NULL),
                    "Caf=C3=A9 =\r\nok");
    // decoded text with a plain "=" is not touched even under a QP header
    ASSERT_STR_FREE(sb_mime_body_decode("MSsxID0gMg", 10, "quoted-printable", NULL, 0, NULL),
                    "1+1 = 2");
}
END_TEST

static Suite *
sb_mime_suite(void)
{
    Suite *s = suite_create("sb_mime");
    TCase *tc = tcase_create("decode");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, qp_decodes_escapes_and_soft_breaks);
    tcase_add_test(tc, qp_keeps_stray_equals_and_drops_trailing_spaces);
    tcase_add_test(tc, qp_may_produce_nul_bytes);
    tcase_add_test(tc, looks_qp_only_for_encoded_text);
    tcase_add_test(tc, words_b_and_q);
    tcase_add_test(tc, words_adjacent_are_joined_and_text_kept);
    tcase_add_test(tc, words_malformed_stay_literal);
    tcase_add_test(tc, words_unknown_charset_and_controls);
    tcase_add_test(tc, to_utf8_single_byte_charsets);
    tcase_add_test(tc, to_utf8_shift_jis_with_bad_bytes);
    tcase_add_test(tc, to_utf8_repairs_utf8);
    tcase_add_test(tc, to_utf8_utf16_nul_is_replaced);
    tcase_add_test(tc, html_fixture_paragraphs_and_breaks);
    tcase_add_test(tc, html_entities);
    tcase_add_test(tc, html_drops_script_style_comments);
    tcase_add_test(tc, html_whitespace_and_blocks);
    tcase_add_test(tc, param_values);
    tcase_add_test(tc, body_decode_base64url);
    tcase_add_test(tc, body_decode_qp_only_when_still_encoded);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_mime_suite)
