/* test_rfc5322 - the reply e-mail of sb-sender (sender/rfc5322.h): encoded-word subjects
 * split between whole characters and within the line limits, threading headers, the
 * References bound, quoted-printable bodies, header injection, and the fixture's reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "rfc5322.h"
#include "sb_b64.h"
#include "sb_mem.h"
#include "sb_mime.h"
#include "sb_check.h"
#include "sb_banned.h"

// Every line of text (CRLF separated) is at most max characters long.
static void
assert_lines_within(const char *text, size_t max)
{
    const char *p = text;
    for (;;) {
        const char *eol = strstr(p, "\r\n");
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        ck_assert_msg(n <= max, "line of %zu > %zu characters: %.*s", n, max, (int)n, p);
        if (eol == NULL)
            break;
        p = eol + 2;
    }
}

// The value of header name in message, folds kept, or NULL. Caller frees.
static char *
header_of(const char *message, const char *name)
{
    size_t n = strlen(name);
    const char *p = message;
    while (p && strncmp(p, "\r\n", 2) != 0) {
        const char *eol = strstr(p, "\r\n");
        while (eol && (eol[2] == ' ' || eol[2] == '\t'))
            eol = strstr(eol + 2, "\r\n");
        if (eol == NULL)
            return NULL;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            return sb_xstrndup(p + n + 2, (size_t)(eol - p) - n - 2);
        p = eol + 2;
    }
    return NULL;
}

static int
valid_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = s[i] < 0x80             ? 1
                   : (s[i] & 0xE0) == 0xC0 ? 2
                   : (s[i] & 0xF0) == 0xE0 ? 3
                   : (s[i] & 0xF8) == 0xF0 ? 4
                                           : 0;
        if (n == 0 || i + n > len)
            return 0;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += n;
    }
    return 1;
}

static char *
build(const sb_rfc5322_msg_t *m)
{
    sb_err_t err = {0};
    size_t len = 0;
    char *raw = sb_rfc5322_build(m, &len, &err);
    ck_assert_msg(raw != NULL, "build: %s", err.msg);
    ck_assert_uint_eq(len, strlen(raw));
    return raw;
}

static const sb_rfc5322_msg_t s_base = {.from = "support@example.com",
                                        .to = "maria.lopez@example.com",
                                        .subject = "Re: Where is order #48213?",
                                        .body = "Hi Maria,\n\nIt shipped.\n",
                                        .message_id = "<sb.7.00aa@example.com>",
                                        .outbox_id = 7,
                                        .date_ms = 1795532790000};

START_TEST(ascii_subject_is_kept_and_long_ones_fold_at_spaces)
{
    char *v = sb_rfc5322_encode_header("Where is order #48213?", 9);
    ck_assert_str_eq(v, "Where is order #48213?");
    free(v);
    const char *text = "Re: a rather long subject line that goes on and on about the order, "
                       "the delivery and the invoice of last week";
    v = sb_rfc5322_encode_header(text, 9);
    ck_assert_ptr_nonnull(strstr(v, "\r\n "));
    ck_assert_ptr_null(strstr(v, "=?")); // folded, not encoded
    char *line = sb_xasprintf("Subject: %s", v);
    assert_lines_within(line, 76);
    char *unfolded = sb_mime_decode_words(v); // undoes the folding
    ck_assert_str_eq(unfolded, text);
    free(unfolded);
    free(line);
    free(v);
}
END_TEST

START_TEST(utf8_subject_becomes_encoded_words_split_between_characters)
{
    // 2-, 3- and 4-byte characters, long enough for several words.
    const char *text = "Re: Bestellung Nr. 48213 – Grüße aus Köln, 東京の倉庫から 🚚🚚 "
                       "und noch ein paar Wörter, damit es länger wird: ÄÖÜ äöü ß";
    char *v = sb_rfc5322_encode_header(text, 9);
    char *line = sb_xasprintf("Subject: %s", v);
    assert_lines_within(line, 76);
    free(line);
    char *decoded = sb_mime_decode_words(v);
    ck_assert_str_eq(decoded, text);
    free(decoded);
    // Each word alone is at most 75 characters and decodes to whole characters.
    int words = 0;
    for (const char *p = strstr(v, "=?UTF-8?B?"); p; p = strstr(p + 1, "=?UTF-8?B?")) {
        const char *end = strstr(p + 10, "?=");
        ck_assert_ptr_nonnull(end);
        ck_assert_int_le(end + 2 - p, 75);
        size_t n = 0;
        unsigned char *bytes = sb_b64_decode(p + 10, (size_t)(end - p - 10), SB_B64_STD, &n);
        ck_assert_ptr_nonnull(bytes);
        ck_assert_msg(valid_utf8(bytes, n), "word %d splits a character", words);
        free(bytes);
        words++;
    }
    ck_assert_int_ge(words, 3);
    free(v);
}
END_TEST

START_TEST(subject_cannot_inject_a_header)
{
    sb_rfc5322_msg_t m = s_base;
    m.subject = "Hello\r\nBcc: everyone@example.net\r\n\r\nfake body";
    char *raw = build(&m);
    ck_assert_ptr_null(strstr(raw, "\r\nBcc:"));
    char *bcc = header_of(raw, "Bcc");
    ck_assert_ptr_null(bcc);
    char *subject = header_of(raw, "Subject");
    ck_assert_ptr_nonnull(strstr(subject, "Hello  Bcc: everyone@example.net"));
    free(subject);
    free(raw);
}
END_TEST

START_TEST(reply_carries_in_reply_to_and_references)
{
    sb_rfc5322_msg_t m = s_base;
    m.in_reply_to = " <20261124150105.4F2A1C0B7E@mail.example.com> ";
    m.references = "<root@mail.example.com>\r\n <mid@mail.example.com>";
    char *raw = build(&m);
    char *irt = header_of(raw, "In-Reply-To");
    ck_assert_str_eq(irt, "<20261124150105.4F2A1C0B7E@mail.example.com>");
    char *refs = header_of(raw, "References");
    ck_assert_str_eq(refs, "<root@mail.example.com>\r\n <mid@mail.example.com>\r\n "
                           "<20261124150105.4F2A1C0B7E@mail.example.com>");
    char *mid = header_of(raw, "Message-ID");
    ck_assert_str_eq(mid, "<sb.7.00aa@example.com>");
    char *ours = header_of(raw, "X-Switchboard-Outbox-Id");
    ck_assert_str_eq(ours, "7");
    char *date = header_of(raw, "Date");
    ck_assert_str_eq(date, "Tue, 24 Nov 2026 15:06:30 +0000");
    assert_lines_within(raw, 998);
    free(irt);
    free(refs);
    free(mid);
    free(ours);
    free(date);
    free(raw);
}
END_TEST

START_TEST(references_are_deduplicated_and_bounded)
{
    char parent[4096] = "";
    size_t off = 0;
    for (int i = 0; i < 30; i++)
        off += (size_t)snprintf(parent + off, sizeof parent - off, "<r%d@x.example> ", i);
    off += (size_t)snprintf(parent + off, sizeof parent - off, "<r29@x.example> junk <bad> <>");
    char *refs = sb_rfc5322_references(parent, "<p@x.example>");
    // r0 (the root), then the last 19: r11 .. r29 and the parent.
    int count = 0;
    for (const char *p = refs; (p = strchr(p, '<')) != NULL; p++)
        count++;
    ck_assert_int_eq(count, SB_RFC5322_REFS_MAX);
    ck_assert_msg(strncmp(refs, "<r0@x.example> <r12@x.example>", 30) == 0, "%s", refs);
    const char *tail = "<r29@x.example> <p@x.example>";
    ck_assert_str_eq(refs + strlen(refs) - strlen(tail), tail);
    free(refs);
    // The parent already in its own References counts once.
    refs = sb_rfc5322_references("<a@x> <b@x>", "<b@x>");
    ck_assert_str_eq(refs, "<a@x> <b@x>");
    free(refs);
    ck_assert_ptr_null(sb_rfc5322_references(NULL, "not an id"));
    refs = sb_rfc5322_references(NULL, "bare@id.example");
    ck_assert_str_eq(refs, "<bare@id.example>");
    free(refs);
}
END_TEST

START_TEST(ascii_body_is_7bit_with_crlf)
{
    const char *cte = NULL;
    char *body = sb_rfc5322_encode_body("one\ntwo\r\nthree\rfour", &cte);
    ck_assert_str_eq(cte, "7bit");
    ck_assert_str_eq(body, "one\r\ntwo\r\nthree\r\nfour");
    free(body);
}
END_TEST

START_TEST(utf8_body_is_quoted_printable_and_decodes_back)
{
    char text[4000];
    size_t off = (size_t)snprintf(text, sizeof text, "Grüße, Maria!\n= not a soft break \n");
    for (int i = 0; i < 40; i++) // one long line, so soft breaks are needed
        off += (size_t)snprintf(text + off, sizeof text - off, "Lieferung %d – ", i);
    snprintf(text + off, sizeof text - off, "\nEnde\t\n");
    const char *cte = NULL;
    char *body = sb_rfc5322_encode_body(text, &cte);
    ck_assert_str_eq(cte, "quoted-printable");
    assert_lines_within(body, 76);
    for (const unsigned char *p = (const unsigned char *)body; *p; p++)
        ck_assert_int_lt(*p, 0x80);
    size_t n = 0;
    char *back = sb_mime_qp_decode(body, strlen(body), &n);
    // What was sent is the text with CRLF line ends; a trailing tab survives as =09.
    char *want = sb_xstrdup("");
    for (const char *p = text; *p; p++) {
        char *next = *p == '\n' ? sb_xasprintf("%s\r\n", want) : sb_xasprintf("%s%c", want, *p);
        free(want);
        want = next;
    }
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_mem_eq(back, want, n);
    free(want);
    free(back);
    free(body);
}
END_TEST

START_TEST(message_ids_are_unique_and_in_the_senders_domain)
{
    sb_err_t err = {0};
    char *a = NULL, *b = NULL;
    ck_assert_int_eq(sb_rfc5322_message_id(42, "Support <Support@Example.COM>", &a, &err), 0);
    ck_assert_int_eq(sb_rfc5322_message_id(42, "support@example.com", &b, &err), 0);
    ck_assert_str_ne(a, b);
    ck_assert_msg(strncmp(a, "<sb.42.", 7) == 0, "%s", a);
    ck_assert_str_eq(a + strlen(a) - strlen("@example.com>"), "@example.com>");
    char *clean = sb_rfc5322_msgid_clean(a);
    ck_assert_str_eq(clean, a);
    free(clean);
    free(a);
    free(b);
    ck_assert_ptr_null(sb_rfc5322_msgid_clean("<two words@x>"));
    ck_assert_ptr_null(sb_rfc5322_msgid_clean("<no-at-sign>"));
    ck_assert_ptr_null(sb_rfc5322_msgid_clean("<a@b>\r\nBcc: x@y"));
}
END_TEST

START_TEST(reply_subject_gets_one_re)
{
    char *s = sb_rfc5322_reply_subject("Where is order #48213?");
    ck_assert_str_eq(s, "Re: Where is order #48213?");
    free(s);
    s = sb_rfc5322_reply_subject("RE: Invoice");
    ck_assert_str_eq(s, "RE: Invoice");
    free(s);
    s = sb_rfc5322_reply_subject(NULL);
    ck_assert_str_eq(s, "Re:");
    free(s);
}
END_TEST

START_TEST(bad_addresses_are_refused)
{
    sb_rfc5322_msg_t m = s_base;
    m.to = "maria\r\nBcc: x@y";
    sb_err_t err = {0};
    size_t len;
    ck_assert_ptr_null(sb_rfc5322_build(&m, &len, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "recipient"));
    m = s_base;
    m.message_id = "no id";
    ck_assert_ptr_null(sb_rfc5322_build(&m, &len, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "Message-ID"));
}
END_TEST

// The fixture's reply (shared/fixtures/gmail/send-request.json) has the threading headers
// a reply to Maria's e-mail must have; ours has the same values.
START_TEST(threading_headers_match_the_fixture_reply)
{
    json_error_t jerr;
    json_t *req = json_load_file(SB_FIXTURES_DIR "/gmail/send-request.json", 0, &jerr);
    ck_assert_msg(req != NULL, "fixture: %s", jerr.text);
    const char *b64 = json_string_value(json_object_get(req, "raw"));
    size_t n = 0;
    char *fixture = (char *)sb_b64_decode(b64, strlen(b64), SB_B64_URL, &n);
    ck_assert_ptr_nonnull(fixture);
    sb_rfc5322_msg_t m = s_base;
    m.message_id = "<reply-48213.0001@example.com>";
    m.in_reply_to = "<20261124150105.4F2A1C0B7E@mail.example.com>";
    char *raw = build(&m);
    static const char *const names[] = {"Subject",    "Date",         "Message-ID",  "In-Reply-To",
                                        "References", "MIME-Version", "Content-Type"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *want = header_of(fixture, names[i]), *got = header_of(raw, names[i]);
        ck_assert_msg(want && got && strcmp(want, got) == 0, "%s: fixture %s, ours %s", names[i],
                      want ? want : "(none)", got ? got : "(none)");
        free(want);
        free(got);
    }
    ck_assert_str_eq(json_string_value(json_object_get(req, "threadId")), "19a6f3c2b1d04e01");
    free(raw);
    free(fixture);
    json_decref(req);
}
END_TEST

static Suite *
sb_rfc5322_suite(void)
{
    Suite *s = suite_create("rfc5322");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, ascii_subject_is_kept_and_long_ones_fold_at_spaces);
    tcase_add_test(tc, utf8_subject_becomes_encoded_words_split_between_characters);
    tcase_add_test(tc, subject_cannot_inject_a_header);
    tcase_add_test(tc, reply_carries_in_reply_to_and_references);
    tcase_add_test(tc, references_are_deduplicated_and_bounded);
    tcase_add_test(tc, ascii_body_is_7bit_with_crlf);
    tcase_add_test(tc, utf8_body_is_quoted_printable_and_decodes_back);
    tcase_add_test(tc, message_ids_are_unique_and_in_the_senders_domain);
    tcase_add_test(tc, reply_subject_gets_one_re);
    tcase_add_test(tc, bad_addresses_are_refused);
    tcase_add_test(tc, threading_headers_match_the_fixture_reply);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_rfc5322_suite)
