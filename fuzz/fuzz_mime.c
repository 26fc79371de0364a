/* fuzz_mime - the e-mail side: sb_gmail_message_parse on the bytes as a Gmail API
 * message resource, and every sb_mime helper on the same bytes as raw header or body
 * text (a hostile sender controls all of it).
 * Checked besides memory safety (sb_mime.h, sb_gmail_message.h): every returned string
 * is valid UTF-8 without NUL (it goes into a text column); outputs stay within a small
 * multiple of the input; the documented bounds of a parsed message hold. */
#include <string.h>
#include "sb_fuzz.h"
#include "sb_gmail_message.h"
#include "sb_mem.h"
#include "sb_mime.h"
#include "sb_banned.h"

#define S_GROWTH 16 // output bytes allowed per input byte (U+FFFD is 3 for 1), plus slack

static void
s_check_text(const char *out, size_t in_len, const char *what)
{
    if (out == NULL)
        return;
    size_t n = strlen(out);
    SB_FUZZ_CHECK(sb_fuzz_utf8_ok(out, n), what);
    SB_FUZZ_CHECK(n <= S_GROWTH * in_len + 64, what);
}

static void
s_check_message(const sb_gmail_message_t *m)
{
    SB_FUZZ_CHECK(m->id != NULL && m->body_text != NULL, "id and body_text are set");
    SB_FUZZ_CHECK(strlen(m->body_text) == m->body_text_len, "body_text_len");
    SB_FUZZ_CHECK(m->body_text_len <= SB_GMAIL_BODY_TEXT_MAX_BYTES, "body_text bound");
    SB_FUZZ_CHECK(m->label_count <= SB_GMAIL_LABELS_MAX && m->to_count <= SB_GMAIL_ADDRESSES_MAX &&
                      m->cc_count <= SB_GMAIL_ADDRESSES_MAX &&
                      m->attachment_count <= SB_GMAIL_ATTACHMENTS_MAX,
                  "list bounds");
    const char *text[] = {m->id,         m->thread_id,   m->subject,    m->from, m->from_address,
                          m->message_id, m->in_reply_to, m->references, m->date, m->body_text};
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        SB_FUZZ_CHECK(sb_fuzz_text_ok(text[i]), "message text is valid UTF-8 without NUL");
    for (size_t i = 0; i < m->label_count; i++)
        SB_FUZZ_CHECK(sb_fuzz_text_ok(m->label_ids[i]), "label text");
    for (size_t i = 0; i < m->to_count; i++)
        SB_FUZZ_CHECK(m->to_addresses[i] && sb_fuzz_text_ok(m->to_addresses[i]), "to text");
    for (size_t i = 0; i < m->cc_count; i++)
        SB_FUZZ_CHECK(m->cc_addresses[i] && sb_fuzz_text_ok(m->cc_addresses[i]), "cc text");
    for (size_t i = 0; i < m->attachment_count; i++) {
        const sb_gmail_attachment_t *a = &m->attachments[i];
        SB_FUZZ_CHECK(sb_fuzz_text_ok(a->filename) && sb_fuzz_text_ok(a->mime_type) &&
                          sb_fuzz_text_ok(a->attachment_id) && sb_fuzz_text_ok(a->part_id),
                      "attachment text");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *bytes = (const char *)data;
    sb_err_t err = {0};
    sb_gmail_message_t *m = sb_gmail_message_parse(bytes, size, &err);
    if (m)
        s_check_message(m);
    else
        SB_FUZZ_CHECK(err.msg[0] != '\0', "a refused message says why");
    sb_gmail_message_destroy(&m);
    sb_gmail_message_destroy(&m); // safe twice

    char *text = sb_xmemdup(data, size); // as a header value: a C string
    size_t text_len = strlen(text);
    char *out = sb_mime_decode_words(text);
    s_check_text(out, text_len, "decode_words output");
    free(out);
    out = sb_mime_html_to_text(text); // UTF-8 in, UTF-8 out: other bytes pass through
    if (sb_fuzz_utf8_ok(text, text_len))
        s_check_text(out, text_len, "html_to_text output");
    free(out);
    out = sb_mime_param(text, "charset");
    SB_FUZZ_CHECK(out == NULL || strlen(out) <= text_len, "a parameter is part of the value");
    free(out);

    size_t qp_len = 0;
    out = sb_mime_qp_decode(bytes, size, &qp_len);
    SB_FUZZ_CHECK(out != NULL && qp_len <= size && out[qp_len] == '\0', "qp_decode bounds");
    free(out);
    (void)sb_mime_looks_qp(bytes, size);

    static const char *const charsets[] = {
        NULL,     "utf-8",      "iso-8859-1", "windows-1252", "shift_jis",
        "gb2312", "euc-kr",     "utf-16",     "utf-7",        "iso-2022-jp",
        "koi8-r", "\"UTF-8\" ", "x-unknown",  "ucs-4",        ""};
    const char *charset = charsets[size ? data[0] % (sizeof charsets / sizeof charsets[0]) : 0];
    out = sb_mime_to_utf8(bytes, size, charset);
    SB_FUZZ_CHECK(out != NULL, "to_utf8 never fails");
    s_check_text(out, size, "to_utf8 output");
    free(out);
    bool truncated = false;
    out = sb_mime_body_decode(bytes, size, "quoted-printable", charset, 4096, &truncated);
    s_check_text(out, size, "body_decode output");
    free(out);
    free(text);
    return 0;
}
