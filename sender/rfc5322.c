/* rfc5322 - building the reply e-mail (see the header). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>
#include "rfc5322.h"
#include "sb_b64.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define S_LINE_MAX 76        // RFC 2047 lines with encoded words; our soft limit everywhere
#define S_HARD_LINE 998      // RFC 5322 2.1.1: no line may be longer
#define S_WORD_OVERHEAD 12   // "=?UTF-8?B?" + "?="
#define S_QP_LINE 76         // quoted-printable output line, soft-break "=" included
#define S_REFS_SCAN_MAX 1000 // ids looked at in a parent's References (hostile input)

// --- A growable string ---------------------------------------------------------------------

typedef struct {
    char *data; // NUL-terminated
    size_t len;
    size_t cap;
} s_buf_t;

static void
s_put(s_buf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = sb_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void
s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

static char *
s_take(s_buf_t *b)
{
    if (b->data == NULL)
        return sb_xstrdup("");
    char *out = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return out;
}

// --- UTF-8 ---------------------------------------------------------------------------------

// Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one (overlong forms,
// surrogates and code points past U+10FFFF included).
static size_t
s_utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if ((p[0] & 0xE0) == 0xC0) {
        n = 2;
        cp = p[0] & 0x1F;
    } else if ((p[0] & 0xF0) == 0xE0) {
        n = 3;
        cp = p[0] & 0x0F;
    } else if ((p[0] & 0xF8) == 0xF0) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0; // also stops at the NUL
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

// A copy of text with invalid UTF-8 replaced by U+FFFD; in a header (header != 0) every
// control character, CR and LF included, becomes a space.
static char *
s_clean(const char *text, int header)
{
    s_buf_t b = {0};
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    while (*p) {
        size_t n = s_utf8_len(p);
        if (n == 0) {
            s_puts(&b, "\xEF\xBF\xBD");
            p++;
        } else if (header && n == 1 && (*p < 0x20 || *p == 0x7F)) {
            s_put(&b, " ", 1);
            p++;
        } else {
            s_put(&b, (const char *)p, n);
            p += n;
        }
    }
    return s_take(&b);
}

// --- Headers -------------------------------------------------------------------------------

static bool
s_plain_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80 || *p < 0x20 || *p == 0x7F)
            return false;
    return strstr(s, "=?") == NULL; // it would read as an encoded word
}

// ASCII text folded before spaces so that lines stay within S_LINE_MAX where the words
// allow it. -1 (nothing written) when a word would make a line longer than S_HARD_LINE.
static int
s_fold_ascii(s_buf_t *b, const char *text, size_t used)
{
    s_buf_t out = {0};
    size_t col = used;
    const char *p = text;
    while (*p) {
        const char *sp = strchr(p + 1, ' '); // the next word starts at a space
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        if (col + n > S_LINE_MAX && p != text && *p == ' ') {
            s_puts(&out, "\r\n");
            col = 0;
        }
        if (col + n > S_HARD_LINE) {
            free(out.data);
            return -1;
        }
        s_put(&out, p, n);
        col += n;
        p += n;
    }
    s_put(b, out.data ? out.data : "", out.len);
    free(out.data);
    return 0;
}

// Encoded words of UTF-8 text, each filling the line it starts on.
static void
s_encode_words(s_buf_t *b, const char *text, size_t used)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t col = used;
    int first = 1;
    while (*p) {
        if (!first || col + S_WORD_OVERHEAD + 8 > S_LINE_MAX) { // 8: one 4-byte character
            s_puts(b, first ? "\r\n " : "\r\n ");
            col = 1;
        }
        size_t room = (S_LINE_MAX - col - S_WORD_OVERHEAD) / 4 * 3; // bytes that fit
        size_t n = 0;
        while (p[n]) {
            size_t k = s_utf8_len(p + n);
            if (k == 0)
                k = 1; // cannot happen after s_clean; keep going rather than loop
            if (n + k > room)
                break;
            n += k;
        }
        char *enc = sb_b64_encode(p, n, SB_B64_STD);
        s_puts(b, "=?UTF-8?B?");
        s_puts(b, enc);
        s_puts(b, "?=");
        free(enc);
        p += n;
        first = 0;
    }
}

char *
sb_rfc5322_encode_header(const char *text, size_t used)
{
    char *clean = s_clean(text, 1);
    s_buf_t b = {0};
    if (!s_plain_ascii(clean) || s_fold_ascii(&b, clean, used) != 0) {
        free(b.data);
        b = (s_buf_t){0};
        s_encode_words(&b, clean, used);
    }
    free(clean);
    return s_take(&b);
}

// --- Body ----------------------------------------------------------------------------------

// The body with CRLF line ends ("\r\n", "\r" and "\n" all count as one line end).
static char *
s_crlf(const char *text)
{
    s_buf_t b = {0};
    for (const char *p = text; *p; p++) {
        if (*p == '\r') {
            s_puts(&b, "\r\n");
            if (p[1] == '\n')
                p++;
        } else if (*p == '\n') {
            s_puts(&b, "\r\n");
        } else {
            s_put(&b, p, 1);
        }
    }
    return s_take(&b);
}

static bool
s_7bit_ok(const char *crlf)
{
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)crlf; *p; p++) {
        if (*p >= 0x80)
            return false;
        if (*p == '\r' && p[1] == '\n') {
            col = 0;
            p++;
            continue;
        }
        if (++col > S_HARD_LINE)
            return false;
    }
    return true;
}

// Quoted-printable of one line (without its CRLF).
static void
s_qp_line(s_buf_t *b, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        char tok[4];
        size_t k;
        int last = i + 1 == n;
        if ((p[i] >= 33 && p[i] <= 126 && p[i] != '=') ||
            ((p[i] == ' ' || p[i] == '\t') && !last)) {
            tok[0] = (char)p[i];
            k = 1;
        } else { // '=', 8-bit, controls, and a space or tab that would end the line
            tok[0] = '=';
            tok[1] = hex[p[i] >> 4];
            tok[2] = hex[p[i] & 0xF];
            k = 3;
        }
        // Keep room for the soft break "=" unless this token ends the line.
        if (col + k > S_QP_LINE - (last ? 0 : 1)) {
            s_puts(b, "=\r\n");
            col = 0;
        }
        s_put(b, tok, k);
        col += k;
    }
}

char *
sb_rfc5322_encode_body(const char *body, const char **cte)
{
    char *utf8 = s_clean(body, 0);
    char *crlf = s_crlf(utf8);
    free(utf8);
    if (s_7bit_ok(crlf)) {
        *cte = "7bit";
        return crlf;
    }
    *cte = "quoted-printable";
    s_buf_t b = {0};
    const char *p = crlf;
    for (;;) {
        const char *eol = strstr(p, "\r\n");
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        s_qp_line(&b, (const unsigned char *)p, n);
        if (eol == NULL)
            break;
        s_puts(&b, "\r\n");
        p = eol + 2;
    }
    free(crlf);
    return s_take(&b);
}

// --- Message ids ---------------------------------------------------------------------------

char *
sb_rfc5322_msgid_clean(const char *text)
{
    if (text == NULL)
        return NULL;
    while (*text == ' ' || *text == '\t')
        text++;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    if (n >= 2 && text[0] == '<' && text[n - 1] == '>') {
        text++;
        n -= 2;
    }
    if (n < 3 || n > SB_RFC5322_MSGID_MAX)
        return NULL;
    const char *at = memchr(text, '@', n);
    if (at == NULL || at == text || at == text + n - 1)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= 0x20 || c >= 0x7F || c == '<' || c == '>' || c == '"' || c == '\\' || c == ',')
            return NULL;
    }
    return sb_xasprintf("<%.*s>", (int)n, text);
}

int
sb_rfc5322_message_id(int64_t outbox_id, const char *from, char **out, sb_err_t *err)
{
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        sb_err_set(err, 0, "could not get random bytes for a Message-ID");
        return -1;
    }
    char hex[2 * sizeof rnd + 1];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    char *addr = from ? sb_email_normalize(from) : NULL;
    const char *domain = addr ? strrchr(addr, '@') + 1 : "switchboard.invalid";
    *out = sb_xasprintf("<sb.%lld.%s@%s>", (long long)outbox_id, hex, domain);
    free(addr);
    return 0;
}

char *
sb_rfc5322_references(const char *parent_refs, const char *parent_msgid)
{
    char *ids[S_REFS_SCAN_MAX + 1];
    size_t n = 0;
    const char *p = parent_refs ? parent_refs : "";
    while (n < S_REFS_SCAN_MAX && (p = strchr(p, '<')) != NULL) {
        const char *end = strchr(p, '>');
        if (end == NULL)
            break;
        char *tok = sb_xstrndup(p, (size_t)(end - p + 1));
        char *id = sb_rfc5322_msgid_clean(tok);
        free(tok);
        if (id)
            ids[n++] = id;
        p = end + 1;
    }
    char *parent = sb_rfc5322_msgid_clean(parent_msgid);
    if (parent)
        ids[n++] = parent;
    // Without repeats (the first occurrence stays), then the first id (the thread's root)
    // and the most recent ones.
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < u && !dup; j++)
            dup = strcmp(ids[i], ids[j]) == 0;
        if (dup)
            free(ids[i]);
        else
            ids[u++] = ids[i];
    }
    s_buf_t b = {0};
    for (size_t i = 0; i < u; i++) {
        if (u <= SB_RFC5322_REFS_MAX || i == 0 || i + SB_RFC5322_REFS_MAX - 1 >= u) {
            if (b.len)
                s_put(&b, " ", 1);
            s_puts(&b, ids[i]);
        }
        free(ids[i]);
    }
    return u ? s_take(&b) : NULL;
}

char *
sb_rfc5322_reply_subject(const char *parent_subject)
{
    char *clean = s_clean(parent_subject, 1);
    const char *s = clean;
    while (*s == ' ')
        s++;
    char *out;
    if ((s[0] == 'R' || s[0] == 'r') && (s[1] == 'E' || s[1] == 'e') && s[2] == ':')
        out = sb_xstrdup(s);
    else
        out = *s ? sb_xasprintf("Re: %s", s) : sb_xstrdup("Re:");
    free(clean);
    return out;
}

// --- The message ---------------------------------------------------------------------------

static void
s_date(int64_t ms, char *out, size_t size)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void
s_header(s_buf_t *b, const char *name, const char *value)
{
    s_puts(b, name);
    s_puts(b, ": ");
    s_puts(b, value);
    s_puts(b, "\r\n");
}

char *
sb_rfc5322_build(const sb_rfc5322_msg_t *m, size_t *len, sb_err_t *err)
{
    char *from = m->from ? sb_email_normalize(m->from) : NULL;
    char *to = m->to ? sb_email_normalize(m->to) : NULL;
    char *msgid = sb_rfc5322_msgid_clean(m->message_id);
    char *out = NULL;
    if (from == NULL || to == NULL) {
        sb_err_set(err, 0, "invalid %s address \"%.80s\"", from ? "recipient" : "sender",
                   from ? (m->to ? m->to : "") : (m->from ? m->from : ""));
        goto cleanup;
    }
    if (msgid == NULL) {
        sb_err_set(err, 0, "invalid Message-ID");
        goto cleanup;
    }
    if (m->body && strlen(m->body) > SB_RFC5322_BODY_MAX) {
        sb_err_set(err, 0, "body longer than %u bytes", SB_RFC5322_BODY_MAX);
        goto cleanup;
    }
    s_buf_t b = {0};
    s_header(&b, "From", from);
    s_header(&b, "To", to);
    if (m->subject && m->subject[0]) {
        char *subject = sb_rfc5322_encode_header(m->subject, strlen("Subject: "));
        s_header(&b, "Subject", subject);
        free(subject);
    }
    char date[64];
    s_date(m->date_ms, date, sizeof date);
    s_header(&b, "Date", date);
    s_header(&b, "Message-ID", msgid);
    char *parent = sb_rfc5322_msgid_clean(m->in_reply_to);
    if (parent)
        s_header(&b, "In-Reply-To", parent);
    char *refs = sb_rfc5322_references(m->references, parent);
    if (refs) {
        s_buf_t folded = {0}; // one id per line: a fold is CRLF before the space
        for (const char *p = refs; *p; p++)
            s_put(&folded, *p == ' ' ? "\r\n " : p, *p == ' ' ? 3 : 1);
        s_header(&b, "References", folded.data);
        free(folded.data);
    }
    free(refs);
    free(parent);
    if (m->outbox_id > 0) {
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)m->outbox_id);
        s_header(&b, "X-Switchboard-Outbox-Id", id);
    }
    const char *cte;
    char *body = sb_rfc5322_encode_body(m->body ? m->body : "", &cte);
    s_header(&b, "MIME-Version", "1.0");
    s_header(&b, "Content-Type", "text/plain; charset=\"UTF-8\"");
    s_header(&b, "Content-Transfer-Encoding", cte);
    s_puts(&b, "\r\n");
    s_puts(&b, body);
    if (b.len < 2 || strcmp(b.data + b.len - 2, "\r\n") != 0)
        s_puts(&b, "\r\n");
    free(body);
    *len = b.len;
    out = s_take(&b);
cleanup:
    free(from);
    free(to);
    free(msgid);
    return out;
}
