/* test_gmail_message - the three messages.get fixtures field by field, then messages built
 * here for what the fixtures lack: deep and hostile part trees, charsets, QP encoded
 * twice, HTML-only mail, invalid base64, the body and nesting bounds. */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sb_check.h"
#include "test_util.h"
#include "sb_gmail_message.h"
#include "sb_mem.h"

#define GMAIL_DIR SB_FIXTURES_DIR "/gmail/"
#define FFFD "\xEF\xBF\xBD"

static sb_gmail_message_t *
parse_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, GMAIL_DIR "%s", name);
    size_t len;
    char *json = sb_test_read_file(path, &len);
    sb_err_t err = {0};
    sb_gmail_message_t *msg = sb_gmail_message_parse(json, len, &err);
    ck_assert_msg(msg != NULL, "%s: %s", name, err.msg);
    free(json);
    return msg;
}

// base64url without padding, as Gmail writes body.data
static char *
b64url(const void *data, size_t len)
{
    char *out = sb_xmalloc(len / 3 * 4 + 8);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

static json_t *
header(const char *name, const char *value)
{
    return json_pack("{s:s, s:s}", "name", name, "value", value);
}

// A leaf part; content_type and cte may be NULL, data NULL means no body.data.
static json_t *
leaf(const char *mime, const char *content_type, const char *cte, const void *data, size_t len)
{
    json_t *headers = json_array();
    if (content_type)
        json_array_append_new(headers, header("Content-Type", content_type));
    if (cte)
        json_array_append_new(headers, header("Content-Transfer-Encoding", cte));
    json_t *body = json_pack("{s:I}", "size", (json_int_t)len);
    if (data) {
        char *enc = b64url(data, len);
        json_object_set_new(body, "data", json_string(enc));
        free(enc);
    }
    return json_pack("{s:s, s:s, s:o, s:o}", "mimeType", mime, "filename", "", "headers", headers,
                     "body", body);
}

static json_t *
text_leaf(const char *mime, const char *text)
{
    char ct[64];
    snprintf(ct, sizeof ct, "%s; charset=UTF-8", mime);
    return leaf(mime, ct, NULL, text, strlen(text));
}

// A container part whose children follow, NULL-terminated; steals them.
static json_t *
multi(const char *mime, ...)
{
    json_t *parts = json_array();
    va_list ap;
    va_start(ap, mime);
    json_t *child;
    while ((child = va_arg(ap, json_t *)) != NULL)
        json_array_append_new(parts, child);
    va_end(ap);
    return json_pack("{s:s, s:s, s:[], s:{s:i}, s:o}", "mimeType", mime, "filename", "", "headers",
                     "body", "size", 0, "parts", parts);
}

// Wrap payload (stolen) in a message resource and parse it.
static sb_gmail_message_t *
parse_payload(json_t *payload)
{
    json_t *root =
        json_pack("{s:s, s:s, s:[s], s:s, s:o}", "id", "m1", "threadId", "t1", "labelIds", "INBOX",
                  "internalDate", "1795533164000", "payload", payload);
    ck_assert_ptr_nonnull(root);
    char *json = json_dumps(root, 0);
    json_decref(root);
    sb_err_t err = {0};
    sb_gmail_message_t *msg = sb_gmail_message_parse(json, strlen(json), &err);
    ck_assert_msg(msg != NULL, "parse: %s", err.msg);
    free(json);
    return msg;
}

static void
set_headers(json_t *part, ...)
{
    json_t *headers = json_object_get(part, "headers");
    va_list ap;
    va_start(ap, part);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL)
        json_array_append_new(headers, header(name, va_arg(ap, const char *)));
    va_end(ap);
}

START_TEST(fixture_plain)
{
    sb_gmail_message_t *msg = parse_fixture("message-full-plain.json");
    ck_assert_str_eq(msg->id, "19a6f3c2b1d04e01");
    ck_assert_str_eq(msg->thread_id, "19a6f3c2b1d04e01");
    ck_assert_uint_eq(msg->label_count, 3);
    ck_assert_str_eq(msg->label_ids[0], "UNREAD");
    ck_assert_str_eq(msg->label_ids[2], "INBOX");
    ck_assert_str_eq(msg->direction, "inbound");
    ck_assert_int_eq(msg->internal_date_ms, 1795532467000);
    ck_assert_str_eq(msg->subject, "Where is order #48213?");
    ck_assert_str_eq(msg->from, "Maria Lopez <maria.lopez@example.com>");
    ck_assert_str_eq(msg->from_address, "maria.lopez@example.com");
    ck_assert_uint_eq(msg->to_count, 1);
    ck_assert_str_eq(msg->to_addresses[0], "support@example.com");
    ck_assert_uint_eq(msg->cc_count, 0);
    ck_assert_str_eq(msg->message_id, "<20261124150105.4F2A1C0B7E@mail.example.com>");
    ck_assert_ptr_null(msg->in_reply_to);
    ck_assert_ptr_null(msg->references);
    ck_assert_str_eq(msg->date, "Tue, 24 Nov 2026 10:01:05 -0500");
    // the QP header sits over data Gmail already decoded: "?" and quotes stay as they are
    ck_assert_str_eq(msg->body_text,
                     "Hello,\n\nI placed order #48213 last week and the tracking page still says "
                     "\"processing\".\nCould you check whether it has shipped? My phone is (415) "
                     "555-0134 if a call is easier.\n\nThanks,\nMaria Lopez\n");
    ck_assert_uint_eq(msg->body_text_len, strlen(msg->body_text));
    ck_assert_str_eq(msg->body_mime_type, "text/plain");
    ck_assert(!msg->body_truncated && !msg->body_invalid && !msg->parts_truncated);
    ck_assert_uint_eq(msg->attachment_count, 0);
    sb_gmail_message_destroy(&msg);
    ck_assert_ptr_null(msg);
    sb_gmail_message_destroy(&msg); // twice is fine
}
END_TEST

START_TEST(fixture_multipart_dana)
{
    sb_gmail_message_t *msg = parse_fixture("message-full-multipart.json");
    ck_assert_str_eq(msg->id, "19a6f4d8e2a17c3b");
    ck_assert_str_eq(msg->thread_id, "19a6f1e7c0b9a852");
    ck_assert_uint_eq(msg->label_count, 4);
    ck_assert_str_eq(msg->direction, "inbound");
    ck_assert_int_eq(msg->internal_date_ms, 1795533164000);
    ck_assert_str_eq(msg->subject, "Re: Quote for annual plan");
    ck_assert_str_eq(msg->from, "Dana Whitfield <dana.whitfield@example.com>");
    ck_assert_str_eq(msg->from_address, "dana.whitfield@example.com");
    ck_assert_uint_eq(msg->to_count, 1);
    ck_assert_str_eq(msg->to_addresses[0], "support@example.com");
    ck_assert_uint_eq(msg->cc_count, 2);
    ck_assert_str_eq(msg->cc_addresses[0], "leo.park@example.com");
    ck_assert_str_eq(msg->cc_addresses[1], "accounts@example.org");
    // spelled "Message-Id" in this fixture
    ck_assert_str_eq(msg->message_id,
                     "<CAF8x3kT2q9Zr+7vQm1YwH4nJc5u6pLs0dE-aB3cR7tK9wXy@mail.example.com>");
    ck_assert_str_eq(msg->in_reply_to, "<CAF8x3kT1a2b3c4d5e6f7g8h9i0j@mail.example.com>");
    ck_assert_str_eq(msg->references, "<CAF8x3kT1a2b3c4d5e6f7g8h9i0j@mail.example.com>");
    ck_assert_str_eq(msg->date, "Tue, 24 Nov 2026 09:12:41 -0600");
    ck_assert_str_eq(msg->body_mime_type, "text/plain");
    ck_assert_str_eq(msg->body_text,
                     "Hi team,\n\nFollowing up on our call this morning: please send the revised "
                     "quote for the 12-month plan (30 seats) and keep the onboarding session on "
                     "Thursday at 10:00 ET.\n\nCaf\xC3\xA9 meeting notes are attached in the "
                     "shared folder \xE2\x80\x94 let me know if anything is missing?\n\nBest "
                     "regards,\nDana Whitfield\nOperations Manager, Whitfield & Co.\n+1 (312) "
                     "555-0199\n");
    ck_assert_uint_eq(msg->attachment_count, 0);
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(fixture_attachment_oneil)
{
    sb_gmail_message_t *msg = parse_fixture("message-with-attachment.json");
    ck_assert_str_eq(msg->id, "19a6f5b0c9e3d214");
    ck_assert_int_eq(msg->internal_date_ms, 1795533658000);
    ck_assert_str_eq(msg->subject, "Invoice INV-2026-0417 from Example Net Services");
    ck_assert_str_eq(msg->from, "\"O'Neil, Sam\" <billing@example.net>");
    ck_assert_str_eq(msg->from_address, "billing@example.net");
    ck_assert_uint_eq(msg->to_count, 1);
    ck_assert_str_eq(msg->to_addresses[0], "support@example.com");
    ck_assert_str_eq(msg->message_id, "<inv-2026-0417.7c1e9a@smtp.example.net>");
    ck_assert_str_eq(msg->body_mime_type, "text/plain"); // part 0.0, two levels down
    ck_assert_str_eq(msg->body_text,
                     "Hello,\n\nPlease find attached invoice INV-2026-0417 for November (USD "
                     "1,480.00, due 2026-12-24).\nReply to this email with any questions.\n\nSam "
                     "O'Neil\nAccounts Receivable\n");
    ck_assert_uint_eq(msg->attachment_count, 1);
    const sb_gmail_attachment_t *a = &msg->attachments[0];
    ck_assert_str_eq(a->filename, "INV-2026-0417.pdf");
    ck_assert_str_eq(a->mime_type, "application/pdf");
    ck_assert_str_eq(a->part_id, "1");
    ck_assert_int_eq(a->size_bytes, 623);
    ck_assert_str_eq(a->attachment_id,
                     "ANGjdJ9q3Xv7Lm2Kp8Rt4Yw1Zs6Nc0Bd5Fh9Gj3Ha7Qe2Ux4Oi8Ev1Cr6Tb0Wm5Sn9Dk3Lp7Af2"
                     "Hg6Jy1Qz4Xc8Vb0Nm5Pr9Ts3Uw7Ye1Io6Ka2Sd4Fg8Hj0Lz5Xc9Vb3Nm7Qw1Er5Ty9Ui2Op6A"
                     "s0Df4Gh8Jk1Lz3");
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(fixture_send_response_is_outbound)
{
    sb_gmail_message_t *msg = parse_fixture("send-response.json"); // no payload at all
    ck_assert_str_eq(msg->id, "19a6f4aa01b2c3d4");
    ck_assert_str_eq(msg->direction, "outbound");
    ck_assert_uint_eq(msg->label_count, 1);
    ck_assert_ptr_null(msg->subject);
    ck_assert_ptr_null(msg->from_address);
    ck_assert_str_eq(msg->body_text, "");
    ck_assert_ptr_null(msg->body_mime_type);
    ck_assert_int_eq(msg->internal_date_ms, 0);
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(sent_label_among_others_is_outbound)
{
    size_t len;
    char *json = sb_test_read_file(GMAIL_DIR "message-full-plain.json", &len);
    json_t *root = json_loadb(json, len, 0, NULL);
    free(json);
    json_array_append_new(json_object_get(root, "labelIds"), json_string("SENT"));
    json_object_set_new(root, "internalDate", json_integer(1795532467001)); // a number too
    json = json_dumps(root, 0);
    json_decref(root);
    sb_err_t err = {0};
    sb_gmail_message_t *msg = sb_gmail_message_parse(json, strlen(json), &err);
    ck_assert_msg(msg != NULL, "%s", err.msg);
    ck_assert_str_eq(msg->direction, "outbound");
    ck_assert_uint_eq(msg->label_count, 4);
    ck_assert_int_eq(msg->internal_date_ms, 1795532467001);
    sb_gmail_message_destroy(&msg);
    free(json);
}
END_TEST

START_TEST(html_only_message_gives_text)
{
    size_t len;
    char *json = sb_test_read_file(GMAIL_DIR "message-with-attachment.json", &len);
    json_t *root = json_loadb(json, len, 0, NULL);
    free(json);
    // drop the text/plain alternative (part 0.0): the HTML one must give the same text
    json_t *alt = json_array_get(json_object_get(json_object_get(root, "payload"), "parts"), 0);
    json_array_remove(json_object_get(alt, "parts"), 0);
    json = json_dumps(root, 0);
    json_decref(root);
    sb_err_t err = {0};
    sb_gmail_message_t *msg = sb_gmail_message_parse(json, strlen(json), &err);
    ck_assert_msg(msg != NULL, "%s", err.msg);
    ck_assert_str_eq(msg->body_mime_type, "text/html");
    ck_assert_str_eq(msg->body_text,
                     "Hello,\n\nPlease find attached invoice INV-2026-0417 for November (USD "
                     "1,480.00, due 2026-12-24).\nReply to this email with any questions.\n\nSam "
                     "O'Neil\nAccounts Receivable");
    ck_assert_uint_eq(msg->attachment_count, 1);
    sb_gmail_message_destroy(&msg);
    free(json);
}
END_TEST

START_TEST(nested_three_levels)
{
    static const char png[] = "\x89PNG\r\n";
    json_t *image = leaf("image/png", "image/png; name=\"logo.png\"", "base64", png, 6);
    json_object_set_new(image, "filename", json_string("logo.png"));
    json_object_set_new(image, "partId", json_string("0.1"));
    json_t *payload =
        multi("multipart/mixed",
              multi("multipart/related",
                    multi("multipart/alternative", text_leaf("text/html", "<p>html version</p>"),
                          text_leaf("text/plain", "plain version"), NULL),
                    image, NULL),
              text_leaf("text/plain", "a later text part"), NULL);
    sb_gmail_message_t *msg = parse_payload(payload);
    ck_assert_str_eq(msg->body_mime_type, "text/plain"); // plain wins over an earlier html
    ck_assert_str_eq(msg->body_text, "plain version");
    ck_assert_uint_eq(msg->attachment_count, 1);
    ck_assert_str_eq(msg->attachments[0].filename, "logo.png");
    ck_assert_str_eq(msg->attachments[0].part_id, "0.1");
    ck_assert_ptr_null(msg->attachments[0].attachment_id); // inline data, no id
    ck_assert_int_eq(msg->attachments[0].size_bytes, 6);
    ck_assert(!msg->parts_truncated);
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(qp_encoded_twice_is_decoded_once_more)
{
    static const char qp[] = "Caf=C3=A9 au lait, tr=C3=A8s =\r\nbon =3D 1\r\n";
    json_t *part =
        leaf("text/plain", "text/plain; charset=utf-8", "quoted-printable", qp, sizeof qp - 1);
    sb_gmail_message_t *msg = parse_payload(part);
    ck_assert_str_eq(msg->body_text, "Caf\xC3\xA9 au lait, tr\xC3\xA8s bon = 1\n");
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(iso_8859_1_and_shift_jis_bodies)
{
    static const char latin[] = "Caf\xE9 cr\xE8me \x93quoted\x94\r\n";
    sb_gmail_message_t *msg = parse_payload(
        leaf("text/plain", "text/plain; charset=\"ISO-8859-1\"", "8bit", latin, sizeof latin - 1));
    ck_assert_str_eq(msg->body_text, "Caf\xC3\xA9 cr\xC3\xA8me \xE2\x80\x9Cquoted\xE2\x80\x9D\n");
    sb_gmail_message_destroy(&msg);

    static const char sjis[] = "\x83\x65\x83\x58\x83\x67\x82\xC5\x82\xB7\x81\x42";
    msg = parse_payload(
        leaf("text/plain", "text/plain; charset=Shift_JIS", NULL, sjis, sizeof sjis - 1));
    ck_assert_str_eq(msg->body_text, "テストです。");
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(unknown_charset_reads_as_utf8)
{
    static const char text[] = "caf\xC3\xA9 \xFF!";
    sb_gmail_message_t *msg = parse_payload(
        leaf("text/plain", "text/plain; charset=x-made-up", NULL, text, sizeof text - 1));
    ck_assert_str_eq(msg->body_text, "caf\xC3\xA9 " FFFD "!");
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(encoded_word_headers)
{
    json_t *part = text_leaf("text/plain", "hi");
    set_headers(part, "subject",
                "=?UTF-8?B?Q2Fmw6kg4oCU?= =?iso-8859-1?Q?Caf=E9?=\r\n =?utf-8?q?_ok?=", "FROM",
                "=?UTF-8?Q?L=C3=A9a_M=C3=BCller?= <Lea@Example.ORG>", "to",
                "=?UTF-8?Q?A?= <a@x.example>, \"B, C\" <B@Y.example>, bogus, (c) c@z.example",
                "Message-ID", "<id@x>\r\n", NULL);
    sb_gmail_message_t *msg = parse_payload(part);
    ck_assert_str_eq(msg->subject, "Caf\xC3\xA9 \xE2\x80\x94"
                                   "Caf\xC3\xA9 ok");
    ck_assert_str_eq(msg->from, "L\xC3\xA9"
                                "a M\xC3\xBCller <Lea@Example.ORG>");
    ck_assert_str_eq(msg->from_address, "lea@example.org");
    ck_assert_uint_eq(msg->to_count, 3);
    ck_assert_str_eq(msg->to_addresses[0], "a@x.example");
    ck_assert_str_eq(msg->to_addresses[1], "b@y.example");
    ck_assert_str_eq(msg->to_addresses[2], "c@z.example");
    ck_assert_str_eq(msg->message_id, "<id@x>");
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(address_with_comment)
{
    json_t *part = text_leaf("text/plain", "hi");
    set_headers(part, "From", "billing@example.net (Sam \\) O'Neil (AR))", "Cc",
                "\"x (not a comment)\" <x@y.example>", NULL);
    sb_gmail_message_t *msg = parse_payload(part);
    ck_assert_str_eq(msg->from_address, "billing@example.net");
    ck_assert_uint_eq(msg->cc_count, 1);
    ck_assert_str_eq(msg->cc_addresses[0], "x@y.example");
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(missing_parts_and_empty_body)
{
    json_t *payload = json_pack("{s:s, s:[]}", "mimeType", "multipart/alternative", "headers");
    sb_gmail_message_t *msg = parse_payload(payload);
    ck_assert_str_eq(msg->body_text, "");
    ck_assert_ptr_null(msg->body_mime_type);
    ck_assert_uint_eq(msg->attachment_count, 0);
    sb_gmail_message_destroy(&msg);

    msg = parse_payload(leaf("text/plain", NULL, NULL, NULL, 0)); // body {size:0}, no data
    ck_assert_str_eq(msg->body_text, "");
    ck_assert_str_eq(msg->body_mime_type, "text/plain");
    ck_assert(!msg->body_invalid);
    sb_gmail_message_destroy(&msg);

    // junk where parts, headers and body belong
    payload = json_pack("{s:s, s:i, s:s, s:[i, s, n, {}]}", "mimeType", "multipart/mixed",
                        "headers", 7, "body", "x", "parts", 1, "a");
    msg = parse_payload(payload);
    ck_assert_str_eq(msg->body_text, "");
    ck_assert_ptr_null(msg->subject);
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(invalid_base64_falls_back)
{
    json_t *bad = text_leaf("text/plain", "x");
    json_object_set_new(json_object_get(bad, "body"), "data", json_string("!!not base64!!"));
    json_t *payload =
        multi("multipart/alternative", bad, text_leaf("text/html", "<b>from html</b>"), NULL);
    sb_gmail_message_t *msg = parse_payload(payload);
    ck_assert_str_eq(msg->body_text, "from html");
    ck_assert_str_eq(msg->body_mime_type, "text/html");
    ck_assert(!msg->body_invalid);
    sb_gmail_message_destroy(&msg);

    bad = text_leaf("text/plain", "x");
    json_object_set_new(json_object_get(bad, "body"), "data", json_string("QUJDR"));
    msg = parse_payload(bad);
    ck_assert_str_eq(msg->body_text, "");
    ck_assert_ptr_null(msg->body_mime_type);
    ck_assert(msg->body_invalid);
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(deep_nesting_is_bounded)
{
    json_t *deep = text_leaf("text/plain", "too deep");
    for (int i = 0; i < 100; i++)
        deep = multi("multipart/mixed", deep, NULL);
    // payload -> [a chain 100 levels deep, then a text part at level 1]
    json_t *payload = multi("multipart/mixed", deep, text_leaf("text/plain", "found"), NULL);
    sb_gmail_message_t *msg = parse_payload(payload);
    ck_assert(msg->parts_truncated);
    ck_assert_str_eq(msg->body_text, "found");
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(attached_message_text_comes_last)
{
    json_t *inner = multi("message/rfc822", text_leaf("text/plain", "forwarded text"), NULL);
    json_t *payload =
        multi("multipart/mixed", inner, text_leaf("text/html", "<p>own words</p>"), NULL);
    sb_gmail_message_t *msg = parse_payload(payload);
    ck_assert_str_eq(msg->body_text, "own words");
    sb_gmail_message_destroy(&msg);

    inner = multi("message/rfc822", text_leaf("text/plain", "forwarded text"), NULL);
    msg = parse_payload(multi("multipart/mixed", inner, NULL));
    ck_assert_str_eq(msg->body_text, "forwarded text");
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(disposition_attachment_text_is_not_the_body)
{
    json_t *att = text_leaf("text/plain", "a log file");
    set_headers(att, "Content-Disposition", "ATTACHMENT", NULL);
    json_t *payload = multi("multipart/mixed", att, text_leaf("text/plain", "the body"), NULL);
    sb_gmail_message_t *msg = parse_payload(payload);
    ck_assert_str_eq(msg->body_text, "the body");
    ck_assert_uint_eq(msg->attachment_count, 1);
    ck_assert_str_eq(msg->attachments[0].filename, "");
    ck_assert_str_eq(msg->attachments[0].mime_type, "text/plain");
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(body_is_capped_on_a_character_boundary)
{
    size_t n = SB_GMAIL_BODY_TEXT_MAX_BYTES + 4097; // odd: the cut falls inside an "é"
    char *big = sb_xmalloc(n + 1);
    big[0] = 'x';
    for (size_t i = 1; i + 1 < n; i += 2)
        memcpy(big + i, "\xC3\xA9", 2);
    sb_gmail_message_t *msg = parse_payload(leaf("text/plain", NULL, NULL, big, n));
    free(big);
    ck_assert(msg->body_truncated);
    ck_assert_uint_eq(msg->body_text_len, SB_GMAIL_BODY_TEXT_MAX_BYTES - 1);
    ck_assert_uint_eq(strlen(msg->body_text), msg->body_text_len);
    ck_assert_int_eq(memcmp(msg->body_text + msg->body_text_len - 2, "\xC3\xA9", 2), 0);
    sb_gmail_message_destroy(&msg);
}
END_TEST

START_TEST(bad_documents_fail_with_a_reason)
{
    sb_err_t err = {0};
    ck_assert_ptr_null(sb_gmail_message_parse("{", 1, &err));
    ck_assert_msg(strstr(err.msg, "invalid gmail message JSON") != NULL, "%s", err.msg);
    ck_assert_ptr_null(sb_gmail_message_parse("[1]", 3, &err));
    ck_assert_msg(strstr(err.msg, "\"id\"") != NULL, "%s", err.msg);
    ck_assert_ptr_null(sb_gmail_message_parse("{\"id\":7}", 8, &err));
    ck_assert_ptr_null(sb_gmail_message_parse("{\"id\":\"\"}", 9, &err));
    ck_assert_ptr_null(sb_gmail_message_parse(NULL, 0, &err));
    static const char odd[] = "{\"id\":\"x\",\"internalDate\":\"12ab\",\"labelIds\":[1,\"SENT\"]}";
    sb_gmail_message_t *msg = sb_gmail_message_parse(odd, sizeof odd - 1, &err);
    ck_assert_msg(msg != NULL, "%s", err.msg);
    ck_assert_int_eq(msg->internal_date_ms, 0);
    ck_assert_uint_eq(msg->label_count, 1);
    ck_assert_str_eq(msg->direction, "outbound");
    ck_assert_ptr_null(msg->thread_id);
    sb_gmail_message_destroy(&msg);
}
END_TEST

static Suite *
sb_gmail_message_suite(void)
{
    Suite *s = suite_create("sb_gmail_message");
    TCase *tc = tcase_create("parse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fixture_plain);
    tcase_add_test(tc, fixture_multipart_dana);
    tcase_add_test(tc, fixture_attachment_oneil);
    tcase_add_test(tc, fixture_send_response_is_outbound);
    tcase_add_test(tc, sent_label_among_others_is_outbound);
    tcase_add_test(tc, html_only_message_gives_text);
    tcase_add_test(tc, nested_three_levels);
    tcase_add_test(tc, qp_encoded_twice_is_decoded_once_more);
    tcase_add_test(tc, iso_8859_1_and_shift_jis_bodies);
    tcase_add_test(tc, unknown_charset_reads_as_utf8);
    tcase_add_test(tc, encoded_word_headers);
    tcase_add_test(tc, address_with_comment);
    tcase_add_test(tc, missing_parts_and_empty_body);
    tcase_add_test(tc, invalid_base64_falls_back);
    tcase_add_test(tc, deep_nesting_is_bounded);
    tcase_add_test(tc, attached_message_text_comes_last);
    tcase_add_test(tc, disposition_attachment_text_is_not_the_body);
    tcase_add_test(tc, body_is_capped_on_a_character_boundary);
    tcase_add_test(tc, bad_documents_fail_with_a_reason);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_gmail_message_suite)
