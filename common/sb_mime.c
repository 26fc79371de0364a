/* sb_mime - see sb_mime.h. Every scanner here moves forward only, so the work is linear in
 * the input whatever it holds; buffers grow as needed (sb_mem aborts on OOM). */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "sb_hex.h"
#include "sb_mem.h"
#include "sb_mime.h"
#include "sb_banned.h"

#define SB_MIME_CHARSET_MAX 40       // bytes of a charset name; IANA names are shorter
#define SB_MIME_B64_MAX (1u << 30)   // characters EVP_DecodeBlock may see (int lengths)
#define SB_MIME_ENTITY_NAME_MAX 10   // longest named entity we look up ("hellip" is 6)
#define SB_MIME_HTML_TAG_NAME_MAX 16 // tag names we compare against are shorter

static const char s_replacement[] = "\xEF\xBF\xBD"; // U+FFFD in UTF-8

typedef struct {
    char *data; // NUL-terminated once s_buf_finish() ran
    size_t len; // bytes used, NUL not counted
    size_t cap; // bytes allocated
} s_buf_t;

static void
s_buf_reserve(s_buf_t *b, size_t extra)
{
    if (b->cap - b->len > extra)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len <= extra)
        cap *= 2;
    b->data = sb_xrealloc(b->data, cap);
    b->cap = cap;
}

static void
s_buf_put(s_buf_t *b, const void *p, size_t n)
{
    s_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void
s_buf_putc(s_buf_t *b, char c)
{
    s_buf_reserve(b, 1);
    b->data[b->len++] = c;
}

static char *
s_buf_finish(s_buf_t *b, size_t *len_out)
{
    s_buf_reserve(b, 1);
    b->data[b->len] = '\0';
    if (len_out)
        *len_out = b->len;
    return b->data;
}

static void
s_buf_put_cp(s_buf_t *b, uint32_t cp)
{
    char u[4];
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        s_buf_put(b, s_replacement, 3);
    } else if (cp < 0x80) {
        s_buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        s_buf_put(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        s_buf_put(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        s_buf_put(b, u, 4);
    }
}

static char
s_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
s_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static bool
s_upper_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static bool
s_ieq(const char *a, const char *b)
{
    while (*a && s_lower(*a) == s_lower(*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

// Whether value, spaces around it ignored, is token (lower case) in any case.
static bool
s_token_eq(const char *value, const char *token)
{
    if (value == NULL)
        return false;
    while (s_is_space(*value))
        value++;
    while (*token && s_lower(*value) == *token) {
        value++;
        token++;
    }
    while (s_is_space(*value))
        value++;
    return *token == '\0' && *value == '\0';
}

// Length of the well-formed UTF-8 sequence at s[0, len) (Unicode 15, table 3-7), or 0
// when it is not one; *bad_len is then the length of its maximal valid prefix (at least
// 1), which is what one U+FFFD replaces (the WHATWG decoder does the same).
static size_t
s_utf8_seq(const unsigned char *s, size_t len, size_t *bad_len)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    *bad_len = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 2;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 3;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    for (size_t i = 1; i <= need; i++) {
        if (i >= len || s[i] < lo || s[i] > hi)
            return 0;
        *bad_len = i + 1;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

// Append in[0, len) to b as valid UTF-8: ill-formed sequences and NUL become U+FFFD.
static void
s_utf8_sanitize(s_buf_t *b, const char *in, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0;
    while (i < len) {
        size_t bad, n = s_utf8_seq(s + i, len - i, &bad);
        if (n == 0 || s[i] == 0) {
            s_buf_put(b, s_replacement, 3);
            i += n == 0 ? bad : 1;
            continue;
        }
        size_t run = i; // copy a run of good sequences at once
        while (run < len && s[run] != 0 && (n = s_utf8_seq(s + run, len - run, &bad)) > 0)
            run += n;
        s_buf_put(b, s + i, run - i);
        i = run;
    }
}

// The iconv name for a charset label, or NULL to read the bytes as UTF-8. Only names made
// of [a-z0-9._:+-] reach iconv, so a label cannot smuggle in "//TRANSLIT" or a path.
static const char *
s_charset_name(const char *label, char *buf, size_t size)
{
    static const struct {
        const char *label, *name;
    } aliases[] = {
        {"utf-8", NULL},
        {"utf8", NULL},
        {"us-ascii", NULL},
        {"ascii", NULL},
        {"ansi_x3.4-1968", NULL},
        {"iso-8859-1", "WINDOWS-1252"},
        {"iso8859-1", "WINDOWS-1252"},
        {"iso_8859-1", "WINDOWS-1252"},
        {"latin1", "WINDOWS-1252"},
        {"l1", "WINDOWS-1252"},
        {"cp819", "WINDOWS-1252"},
        {"shift_jis", "CP932"},
        {"shift-jis", "CP932"},
        {"sjis", "CP932"},
        {"x-sjis", "CP932"},
        {"ms_kanji", "CP932"},
        {"windows-31j", "CP932"},
        {"csshiftjis", "CP932"},
        {"gb2312", "GB18030"},
        {"gbk", "GB18030"},
        {"x-gbk", "GB18030"},
        {"cp936", "GB18030"},
        {"euc-kr", "CP949"},
        {"ks_c_5601-1987", "CP949"},
    };
    if (label == NULL)
        return NULL;
    while (s_is_space(*label) || *label == '"' || *label == '\'')
        label++;
    size_t n = 0;
    for (; label[n] && !s_is_space(label[n]) && label[n] != '"' && label[n] != '\''; n++) {
        char c = s_lower(label[n]);
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("._:+-", c);
        if (!ok || n + 1 >= size)
            return NULL;
        buf[n] = c;
    }
    buf[n] = '\0';
    if (n == 0)
        return NULL;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(buf, aliases[i].label) == 0)
            return aliases[i].name;
    for (size_t i = 0; i < n; i++)
        buf[i] = (buf[i] >= 'a' && buf[i] <= 'z') ? (char)(buf[i] - 'a' + 'A') : buf[i];
    return buf;
}

// Run iconv over the whole input into b. Each byte iconv refuses becomes U+FFFD and the
// conversion goes on after it, so one bad byte never costs the rest of the text.
static void
s_iconv_all(iconv_t cd, s_buf_t *b, const char *in, size_t len)
{
    char *inp = (char *)in; // iconv's prototype is not const-correct; it does not write
    size_t inleft = len, want = len * 4 + 16;
    for (;;) {
        s_buf_reserve(b, want);
        char *outp = b->data + b->len;
        size_t outleft = b->cap - b->len - 1;
        // With the input done, one more call writes a stateful charset's final shift.
        bool flushing = inleft == 0;
        size_t r = flushing ? iconv(cd, NULL, NULL, &outp, &outleft)
                            : iconv(cd, &inp, &inleft, &outp, &outleft);
        int e = errno;
        b->len = (size_t)(outp - b->data);
        if (r != (size_t)-1) {
            if (flushing)
                return;
            continue;
        }
        if (e == E2BIG) { // more output than guessed: grow for sure, then go on
            want = b->cap - b->len + 64;
            continue;
        }
        s_buf_put(b, s_replacement, 3);
        if (flushing || e == EINVAL) // EINVAL: an incomplete sequence ends the input
            return;
        inp++; // EILSEQ: skip the byte iconv refused
        inleft--;
        want = inleft * 4 + 16;
    }
}

char *
sb_mime_to_utf8(const char *in, size_t len, const char *charset)
{
    s_buf_t b = {0};
    char name_buf[SB_MIME_CHARSET_MAX + 1];
    const char *name = s_charset_name(charset, name_buf, sizeof name_buf);
    iconv_t cd = name ? iconv_open("UTF-8", name) : (iconv_t)-1;
    if (in == NULL)
        len = 0;
    if (cd == (iconv_t)-1) {
        s_utf8_sanitize(&b, in, len);
        return s_buf_finish(&b, NULL);
    }
    s_buf_t conv = {0};
    s_iconv_all(cd, &conv, in, len);
    iconv_close(cd);
    // iconv's UTF-8 is well formed but may hold U+0000 (from "\0" or "&#0;" in UTF-16,
    // say): one more pass keeps the promise of no NUL bytes.
    s_utf8_sanitize(&b, conv.data, conv.len);
    free(conv.data);
    return s_buf_finish(&b, NULL);
}

// Decode base64 in either alphabet ("+/" or "-_"), ignoring whitespace, padding optional.
// At most max_out bytes are produced when max_out > 0 (*cut then tells that input was
// left). Returns NULL when the text is not base64. NEEDSWORK: use sb_b64 once it lands.
static char *
s_b64_decode(const char *in, size_t len, size_t max_out, size_t *out_len, bool *cut)
{
    // Stop at whole quanta, so a cut needs no padding; EVP_DecodeBlock takes an int.
    size_t limit = SB_MIME_B64_MAX;
    if (max_out > 0 && max_out / 3 * 4 < limit)
        limit = max_out / 3 * 4;
    unsigned char *tmp = sb_xmalloc((len < limit ? len : limit) + 4);
    size_t n = 0, pad = 0;
    bool stopped = false;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (s_is_space(c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0 || c == '\0') { // data after padding: not base64
            free(tmp);
            return NULL;
        }
        if (n == limit) { // the rest is not even looked at
            stopped = true;
            break;
        }
        tmp[n++] = (unsigned char)(c == '-' ? '+' : c == '_' ? '/' : c);
    }
    if (n % 4 == 1 || pad > 2 || (stopped && limit == SB_MIME_B64_MAX)) {
        free(tmp);
        return NULL;
    }
    if (cut)
        *cut = stopped;
    size_t fill = (4 - n % 4) % 4;
    for (size_t i = 0; i < fill; i++)
        tmp[n + i] = '=';
    unsigned char *out = sb_xmalloc((n + fill) / 4 * 3 + 1);
    int r = EVP_DecodeBlock(out, tmp, (int)(n + fill));
    free(tmp);
    if (r < 0 || (size_t)r < fill) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)r - fill;
    out[*out_len] = '\0';
    return (char *)out;
}

char *
sb_mime_qp_decode(const char *in, size_t len, size_t *out_len)
{
    if (in == NULL)
        len = 0;
    char *out = sb_xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '=') {
            size_t j = i + 1;
            while (j < len && (in[j] == ' ' || in[j] == '\t'))
                j++;
            if (j == len) { // "=" at the very end: the text ends without a line break
                i = j - 1;
                continue;
            }
            if (in[j] == '\n' || (in[j] == '\r' && j + 1 < len && in[j + 1] == '\n')) {
                i = in[j] == '\r' ? j + 1 : j; // soft line break
                continue;
            }
            if (i + 2 < len && sb_hex_digit(in[i + 1]) >= 0 && sb_hex_digit(in[i + 2]) >= 0) {
                out[n++] = (char)(sb_hex_digit(in[i + 1]) * 16 + sb_hex_digit(in[i + 2]));
                i += 2;
                continue;
            }
            out[n++] = c; // a stray "=" is kept, as RFC 2045 suggests
            continue;
        }
        if (c == ' ' || c == '\t') { // trailing spaces were added in transport: drop them
            size_t j = i;
            while (j < len && (in[j] == ' ' || in[j] == '\t'))
                j++;
            if (j == len || in[j] == '\n' || (in[j] == '\r' && j + 1 < len && in[j + 1] == '\n')) {
                i = j - 1;
                continue;
            }
            memcpy(out + n, in + i, j - i);
            n += j - i;
            i = j - 1;
            continue;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return out;
}

bool
sb_mime_looks_qp(const char *in, size_t len)
{
    bool seen = false;
    if (in == NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80 || c == 0)
            return false;
        if (c != '=')
            continue;
        if (i + 1 == len) {
            break; // a soft break ending the text: allowed, but no evidence either way
        } else if (in[i + 1] == '\n') {
            seen = true;
        } else if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n') {
            seen = true;
        } else if (i + 2 < len && s_upper_hex(in[i + 1]) && s_upper_hex(in[i + 2])) {
            seen = true; // encoders must write upper case (RFC 2045 6.7); "=ab" is text
            i += 2;
        } else {
            return false;
        }
    }
    return seen;
}

char *
sb_mime_param(const char *value, const char *name)
{
    if (value == NULL || name == NULL)
        return NULL;
    size_t name_len = strlen(name);
    const char *p = value;
    bool in_quote = false;
    for (; *p; p++) { // each parameter starts after a ";" outside quotes
        if (*p == '"')
            in_quote = !in_quote;
        else if (*p == '\\' && in_quote && p[1])
            p++;
        if (*p != ';' || in_quote)
            continue;
        const char *q = p + 1;
        while (s_is_space(*q))
            q++;
        bool match = true;
        for (size_t i = 0; i < name_len; i++)
            if (s_lower(q[i]) != s_lower(name[i])) {
                match = false;
                break;
            }
        if (!match)
            continue;
        q += name_len;
        while (s_is_space(*q))
            q++;
        if (*q != '=')
            continue;
        q++;
        while (s_is_space(*q))
            q++;
        s_buf_t b = {0};
        if (*q == '"') {
            for (q++; *q && *q != '"'; q++) {
                if (*q == '\\' && q[1])
                    q++;
                s_buf_putc(&b, *q);
            }
        } else {
            for (; *q && *q != ';' && !s_is_space(*q); q++)
                s_buf_putc(&b, *q);
        }
        return s_buf_finish(&b, NULL);
    }
    return NULL;
}

char *
sb_mime_body_decode(const char *data, size_t len, const char *cte, const char *charset,
                    size_t max_bytes, bool *truncated)
{
    bool cut = false;
    size_t raw_len = 0;
    char *raw = s_b64_decode(data ? data : "", data ? len : 0, max_bytes, &raw_len, &cut);
    if (truncated)
        *truncated = cut;
    if (raw == NULL)
        return NULL;
    if (s_token_eq(cte, "quoted-printable") && sb_mime_looks_qp(raw, raw_len)) {
        size_t qp_len;
        char *qp = sb_mime_qp_decode(raw, raw_len, &qp_len);
        free(raw);
        raw = qp;
        raw_len = qp_len;
    }
    char *text = sb_mime_to_utf8(raw, raw_len, charset);
    free(raw);
    return text;
}

/* ---- RFC 2047 encoded words ---- */

typedef struct {
    const char *charset; // points into the header; charset_len bytes, "*lang" cut off
    size_t charset_len;
    char enc;         // 'b' or 'q'
    const char *text; // encoded text, text_len bytes
    size_t text_len;
    const char *end; // just past "?="
} s_word_t;

// Parse "=?charset?enc?text?=" at p. Whitespace and "?" never occur inside a word.
static bool
s_word_parse(const char *p, s_word_t *w)
{
    if (p[0] != '=' || p[1] != '?')
        return false;
    const char *cs = p + 2, *q = cs;
    while (*q && *q != '?' && !s_is_space(*q))
        q++;
    if (*q != '?' || q == cs || (size_t)(q - cs) > SB_MIME_CHARSET_MAX)
        return false;
    w->charset = cs;
    w->charset_len = (size_t)(q - cs);
    const char *star = memchr(cs, '*', w->charset_len); // RFC 2231 language suffix
    if (star)
        w->charset_len = (size_t)(star - cs);
    w->enc = s_lower(q[1]);
    if ((w->enc != 'b' && w->enc != 'q') || q[2] != '?')
        return false;
    w->text = q + 3;
    const char *t = w->text;
    while (*t && *t != '?' && !s_is_space(*t))
        t++;
    if (t[0] != '?' || t[1] != '=')
        return false;
    w->text_len = (size_t)(t - w->text);
    w->end = t + 2;
    return true;
}

// Append the bytes a word stands for to raw; false when a "B" word is not base64.
static bool
s_word_decode(const s_word_t *w, s_buf_t *raw)
{
    if (w->enc == 'b') {
        size_t n;
        char *bytes = s_b64_decode(w->text, w->text_len, 0, &n, NULL);
        if (bytes == NULL)
            return false;
        s_buf_put(raw, bytes, n);
        free(bytes);
        return true;
    }
    for (size_t i = 0; i < w->text_len; i++) {
        char c = w->text[i];
        if (c == '_') {
            s_buf_putc(raw, ' ');
        } else if (c == '=' && i + 2 < w->text_len && sb_hex_digit(w->text[i + 1]) >= 0 &&
                   sb_hex_digit(w->text[i + 2]) >= 0) {
            s_buf_putc(raw,
                       (char)(sb_hex_digit(w->text[i + 1]) * 16 + sb_hex_digit(w->text[i + 2])));
            i += 2;
        } else {
            s_buf_putc(raw, c);
        }
    }
    return true;
}

typedef struct {
    s_buf_t out;                           // result so far (raw bytes; sanitised at the end)
    s_buf_t run;                           // decoded bytes of adjacent words in one charset
    char charset[SB_MIME_CHARSET_MAX + 1]; // the run's charset
} s_words_t;

static void
s_words_flush(s_words_t *st)
{
    if (st->run.len == 0)
        return;
    char *utf8 = sb_mime_to_utf8(st->run.data, st->run.len, st->charset);
    s_buf_put(&st->out, utf8, strlen(utf8));
    free(utf8);
    st->run.len = 0;
}

// Undo header folding: CRLF (or LF) followed by a space or tab is removed (RFC 5322
// 2.2.3); any other CR or LF stays for the control-character pass to turn into a space.
static char *
s_unfold(const char *in)
{
    s_buf_t b = {0};
    for (const char *p = in; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
            p++;
            continue;
        }
        if (p[0] == '\n' && (p[1] == ' ' || p[1] == '\t'))
            continue;
        s_buf_putc(&b, *p);
    }
    return s_buf_finish(&b, NULL);
}

char *
sb_mime_decode_words(const char *header)
{
    if (header == NULL)
        return NULL;
    char *in = s_unfold(header);
    s_words_t st = {0};
    const char *gap = NULL; // whitespace after an encoded word, held back
    bool after_word = false;
    for (const char *p = in; *p;) {
        s_word_t w;
        if (s_word_parse(p, &w)) {
            size_t mark = st.run.len;
            char cs[SB_MIME_CHARSET_MAX + 1];
            memcpy(cs, w.charset, w.charset_len);
            cs[w.charset_len] = '\0';
            bool same = st.run.len > 0 && s_ieq(cs, st.charset);
            if (!same)
                s_words_flush(&st);
            if (s_word_decode(&w, &st.run)) {
                if (!same)
                    memcpy(st.charset, cs, w.charset_len + 1);
                gap = NULL; // whitespace between two encoded words is dropped
                after_word = true;
                p = w.end;
                continue;
            }
            st.run.len = same ? mark : 0;
        }
        if (after_word && s_is_space(*p)) {
            if (gap == NULL)
                gap = p;
            p++;
            continue;
        }
        s_words_flush(&st);
        if (gap != NULL)
            s_buf_put(&st.out, gap, (size_t)(p - gap));
        gap = NULL;
        after_word = false;
        s_buf_putc(&st.out, *p++);
    }
    s_words_flush(&st);
    if (gap != NULL)
        s_buf_put(&st.out, gap, strlen(gap));
    free(st.run.data);
    free(in);

    s_buf_t b = {0};
    s_utf8_sanitize(&b, st.out.data ? st.out.data : "", st.out.len);
    free(st.out.data);
    for (size_t i = 0; i < b.len; i++) // a header is one line of text
        if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f)
            b.data[i] = ' ';
    return s_buf_finish(&b, NULL);
}

/* ---- HTML to text ---- */

typedef struct {
    s_buf_t out;
    int pending_nl;     // line breaks owed before the next text (0-2)
    bool pending_space; // a space is owed before the next text
    int pre;            // depth of <pre>: whitespace is kept inside
} s_html_t;

static void
s_html_text(s_html_t *h, const char *p, size_t n)
{
    if (h->out.len > 0) {
        if (h->pending_nl > 0) {
            s_buf_put(&h->out, "\n\n", (size_t)(h->pending_nl > 2 ? 2 : h->pending_nl));
        } else if (h->pending_space && h->out.data[h->out.len - 1] != '\n') {
            s_buf_putc(&h->out, ' ');
        }
    }
    h->pending_nl = 0;
    h->pending_space = false;
    s_buf_put(&h->out, p, n);
}

static void
s_html_space(s_html_t *h, char c)
{
    if (h->pre > 0) {
        if (c == '\n')
            h->pending_nl++;
        else if (c != '\r')
            s_html_text(h, &c, 1);
        return;
    }
    h->pending_space = true;
}

static void
s_html_break(s_html_t *h, int lines, bool add)
{
    h->pending_nl = add ? h->pending_nl + lines : (h->pending_nl > lines ? h->pending_nl : lines);
    if (h->pending_nl > 2)
        h->pending_nl = 2;
}

static const struct {
    const char *name;
    uint32_t cp;
} s_entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xA0},    {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122}, {"hellip", 0x2026},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"bull", 0x2022},  {"middot", 0xB7},  {"euro", 0x20AC},  {"pound", 0xA3},
    {"laquo", 0xAB},   {"raquo", 0xBB},   {"deg", 0xB0},     {"times", 0xD7},
};

// Decode the entity at p ("&..."); returns its length and sets *cp, or 0 when it is none.
static size_t
s_html_entity(const char *p, uint32_t *cp)
{
    size_t i = 1;
    if (p[1] == '#') {
        bool hex = p[2] == 'x' || p[2] == 'X';
        uint32_t v = 0;
        size_t digits = 0;
        for (i = hex ? 3 : 2;; i++) {
            int d = hex ? sb_hex_digit(p[i]) : (p[i] >= '0' && p[i] <= '9' ? p[i] - '0' : -1);
            if (d < 0)
                break;
            if (v <= 0x10FFFF) // keep reading digits, but stop growing: no overflow
                v = v * (hex ? 16 : 10) + (uint32_t)d;
            digits++;
        }
        if (digits == 0)
            return 0;
        *cp = v; // 0, surrogates and > U+10FFFF become U+FFFD in s_buf_put_cp
        return p[i] == ';' ? i + 1 : i;
    }
    char name[SB_MIME_ENTITY_NAME_MAX + 1];
    for (; i <= SB_MIME_ENTITY_NAME_MAX; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            break;
        name[i - 1] = c;
    }
    if (i == 1 || p[i] != ';')
        return 0;
    name[i - 1] = '\0';
    for (size_t k = 0; k < sizeof s_entities / sizeof s_entities[0]; k++)
        if (strcmp(name, s_entities[k].name) == 0) {
            *cp = s_entities[k].cp;
            return i + 1;
        }
    return 0;
}

static bool
s_in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return true;
    return false;
}

// Case-insensitive search for needle (lower case) in s; NULL when absent.
static const char *
s_find_ci(const char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s_lower(s[i]) == needle[i])
            i++;
        if (i == n)
            return s;
    }
    return NULL;
}

// Handle the markup at p ("<..."); returns where the text goes on.
static const char *
s_html_tag(s_html_t *h, const char *p)
{
    static const char *const raw_text[] = {"script", "style", "title", NULL};
    static const char *const blocks[] = {
        "div",     "tr",     "li",     "h1",    "h2",         "h3",    "h4",   "h5",
        "h6",      "ul",     "ol",     "table", "blockquote", "hr",    "pre",  "section",
        "article", "header", "footer", "dl",    "dt",         "dd",    "form", "center",
        "address", "nav",    "aside",  "main",  "figure",     "tbody", NULL};
    if (strncmp(p, "<!--", 4) == 0) {
        const char *end = strstr(p + 4, "-->");
        return end ? end + 3 : p + strlen(p);
    }
    bool closing = p[1] == '/';
    const char *q = p + (closing ? 2 : 1);
    bool markup = p[1] == '!' || p[1] == '?';
    if (!markup && !((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))) {
        s_html_text(h, "<", 1); // "a < b" is text
        return p + 1;
    }
    char name[SB_MIME_HTML_TAG_NAME_MAX + 1];
    size_t n = 0;
    for (; !markup &&
           ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9'));
         q++)
        if (n < SB_MIME_HTML_TAG_NAME_MAX)
            name[n++] = s_lower(*q);
    name[n] = '\0';
    char quote = 0; // skip the attributes; ">" inside a quoted value does not end the tag
    for (; *q && (quote || *q != '>'); q++)
        if (quote ? *q == quote : (!markup && (*q == '"' || *q == '\'')))
            quote = quote ? 0 : *q;
    const char *after = *q ? q + 1 : q;
    if (markup || n == 0)
        return after;
    if (!closing && s_in_list(name, raw_text)) {
        char close[SB_MIME_HTML_TAG_NAME_MAX + 3] = "</";
        memcpy(close + 2, name, n + 1);
        const char *end = s_find_ci(after, close);
        if (end == NULL)
            return after + strlen(after);
        const char *gt = strchr(end, '>');
        return gt ? gt + 1 : end + strlen(end);
    }
    if (strcmp(name, "br") == 0)
        s_html_break(h, 1, true);
    else if (strcmp(name, "p") == 0)
        s_html_break(h, 2, false);
    else if (s_in_list(name, blocks))
        s_html_break(h, 1, false);
    else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0)
        h->pending_space = true;
    if (strcmp(name, "pre") == 0)
        h->pre += closing ? (h->pre > 0 ? -1 : 0) : 1;
    return after;
}

char *
sb_mime_html_to_text(const char *html)
{
    if (html == NULL)
        return NULL;
    s_html_t h = {0};
    const char *p = html;
    while (*p) {
        if (*p == '<') {
            p = s_html_tag(&h, p);
            continue;
        }
        uint32_t cp;
        size_t n;
        if (*p == '&' && (n = s_html_entity(p, &cp)) > 0) {
            p += n;
            if (cp == 0xA0 || (cp < 0x80 && s_is_space((char)cp))) {
                s_html_space(&h, cp == 0xA0 ? ' ' : (char)cp);
            } else {
                s_buf_t one = {0};
                s_buf_put_cp(&one, cp);
                s_html_text(&h, one.data, one.len);
                free(one.data);
            }
            continue;
        }
        if (s_is_space(*p)) {
            s_html_space(&h, *p++);
            continue;
        }
        const char *start = p; // a run of plain text up to the next markup or space
        while (*p && *p != '<' && *p != '&' && !s_is_space(*p))
            p++;
        if (p == start)
            p++; // a lone "&" that starts no entity
        s_html_text(&h, start, (size_t)(p - start));
    }
    if (h.pre > 0) { // trailing whitespace kept inside <pre> still goes
        while (h.out.len > 0 && s_is_space(h.out.data[h.out.len - 1]))
            h.out.len--;
    }
    return s_buf_finish(&h.out, NULL);
}
