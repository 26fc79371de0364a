/* sb_mime - decoding helpers for e-mail text: quoted-printable, RFC 2047 encoded words,
 * charset conversion to UTF-8 (iconv) and HTML to plain text. sb_gmail_message uses them
 * to turn a Gmail API message into a record; nothing here knows about Gmail except
 * sb_mime_body_decode, which takes a part's body.data as Gmail sends it (base64url).
 *
 * Every function is pure, takes hostile input without crashing and without failing:
 * bytes that cannot be decoded become U+FFFD (or stay literal, where RFC 2047 says so).
 * Every returned string is the caller's to free, NUL-terminated, valid UTF-8 and free
 * of NUL bytes (so it can go into a PostgreSQL text column), except the raw bytes of
 * sb_mime_qp_decode. Output is at most a small constant times the input, so callers
 * bound the work by bounding the input.
 *
 * Charset names are matched case-insensitively after trimming quotes and spaces, with
 * the WHATWG Encoding Standard's choices for mislabelled mail: "iso-8859-1"/"latin1" are
 * read as windows-1252 (real mail in 0x80-0x9F is smart quotes, not C1 controls),
 * "us-ascii" as UTF-8 (a superset; 8-bit bytes there are usually UTF-8), "shift_jis" as
 * CP932, "gb2312"/"gbk" as GB18030, "euc-kr"/"ks_c_5601-1987" as CP949. An empty, NULL,
 * malformed or unknown charset is read as UTF-8 with replacement: the text survives. */
#ifndef SB_MIME_H
#define SB_MIME_H
#include <stdbool.h>
#include <stddef.h>

// Decode the RFC 2047 encoded words ("=?UTF-8?B?...?=", "=?iso-8859-1?Q?Caf=E9?=") of a
// header value into UTF-8. Whitespace between two adjacent encoded words is dropped and
// adjacent words in the same charset are joined before conversion, so a character split
// across two words survives. A malformed word stays literal. Folding (CRLF + space) is
// undone, and the remaining control characters become spaces. NULL in gives NULL.
char *sb_mime_decode_words(const char *header);

// Decode quoted-printable (RFC 2045 6.7): "=XX" (either case) is a byte, "=" before a
// line break (optionally after transport-added spaces) is a soft break and vanishes,
// spaces at the end of a line are dropped, and a stray "=" stays literal. Returns a
// new buffer of *out_len bytes (at most len) plus a NUL; it may hold NUL bytes.
char *sb_mime_qp_decode(const char *in, size_t len, size_t *out_len);

// Whether bytes that a header labels quoted-printable still look encoded: only 7-bit
// bytes, at least one "=", and every "=" starts "=XX" (upper-case hex, as RFC 2045
// requires of encoders) or a soft line break. Gmail's body.data is already decoded, so
// it must not be decoded again unless this says so: decoded text fails as soon as it
// holds UTF-8 or one "=" followed by anything else ("a = b", "?id=ab12&x=1").
bool sb_mime_looks_qp(const char *in, size_t len);

// Convert len bytes in charset (NULL: UTF-8) to UTF-8. Invalid or incomplete sequences
// and NUL bytes become U+FFFD; an unknown charset is read as UTF-8. Never NULL.
char *sb_mime_to_utf8(const char *in, size_t len, const char *charset);

// Plain text of an HTML document (UTF-8 in, UTF-8 out): tags are removed, the contents
// of <script>, <style> and <title> and comments are dropped, entities are decoded (the
// XML five, &nbsp; and some typographic ones by name, any &#NNN; / &#xHH;), runs of
// whitespace collapse to one space (not inside <pre>), <br> is a line break, <p> a blank
// line, and other block elements (div, li, tr, h1-h6, ...) a line break. No leading or
// trailing whitespace. NULL in gives NULL.
char *sb_mime_html_to_text(const char *html);

// The value of parameter name (case-insensitive, e.g. "charset") in a structured header
// value such as "text/plain; charset=\"UTF-8\"", unquoted. NULL when absent.
char *sb_mime_param(const char *value, const char *name);

// Text of one MIME part as the Gmail API gives it: data is body.data (base64url, padding
// optional; the standard alphabet and whitespace are tolerated too), cte the part's
// Content-Transfer-Encoding header (may be NULL) and charset its Content-Type charset
// (may be NULL). Gmail has already undone the transfer encoding; the data is decoded as
// quoted-printable once more only when cte says quoted-printable and sb_mime_looks_qp()
// agrees. At most max_bytes of decoded data are used (0: no limit); *truncated tells
// whether data was cut. Returns UTF-8 text, or NULL when data is not valid base64.
char *sb_mime_body_decode(const char *data, size_t len, const char *cte, const char *charset,
                          size_t max_bytes, bool *truncated);

#endif
