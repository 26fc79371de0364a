/* sb_phone.c - the rules are in sb_phone.h. writer/migrations/0001_normalise.sql is the
 * SQL twin of sb_phone_e164() and sb_email_normalize(): change both together, and add a
 * row to tests/data/phone_cases.tsv, which the unit test and the SQL test both check.
 * Only ASCII is interpreted (digits, letters, whitespace, case); every other byte is
 * punctuation, so UTF-8 input cannot produce a digit and the result does not depend on
 * the locale. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define SB_PHONE_INPUT_MAX 64 // bytes; nobody writes a phone number longer than this
#define SB_PHONE_DIGITS_MIN 8 // E.164 digits after "+", country code included
#define SB_PHONE_DIGITS_MAX 15
#define SB_EMAIL_MAX 254 // bytes of an address (RFC 5321 forward-path limit)

// Keypad letters, 'A' to 'Z' (ITU E.161).
static const char s_keypad[] = "22233344455566677778889999";

static bool
s_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool
s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char
s_ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
s_ascii_casecmp_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s_ascii_lower(a[i]) != s_ascii_lower(b[i]))
            return false;
    return true;
}

// Length of s[0, len) once a trailing extension is cut off: marker, optional spaces,
// digits, optional spaces, end. Each marker ends in a different character, so at most
// one can sit right before the digits and the cut is the same as the SQL regex's.
static size_t
s_strip_extension(const char *s, size_t len)
{
    static const char *const markers[] = {"extension", "ext.", "ext", "x", "#", ";ext="};
    size_t end = len;
    while (end > 0 && s_is_space(s[end - 1]))
        end--;
    size_t digits_end = end;
    while (end > 0 && s_is_digit(s[end - 1]))
        end--;
    if (end == digits_end)
        return len;
    while (end > 0 && s_is_space(s[end - 1]))
        end--;
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        size_t mlen = strlen(markers[i]);
        if (mlen <= end && s_ascii_casecmp_eq(s + end - mlen, markers[i], mlen))
            return end - mlen;
    }
    return len;
}

// Length of a "(0)" group at s (spaces allowed inside), or 0. People write the trunk
// prefix this way inside international numbers: "+44 (0)20 7946 0958".
static size_t
s_trunk_group_len(const char *s, size_t len)
{
    size_t i = 0;
    if (i >= len || s[i++] != '(')
        return 0;
    while (i < len && s_is_space(s[i]))
        i++;
    if (i >= len || s[i++] != '0')
        return 0;
    while (i < len && s_is_space(s[i]))
        i++;
    if (i >= len || s[i++] != ')')
        return 0;
    return i;
}

// Reduce s[0, len) to its digits (letters mapped) in digits; *intl tells whether the
// first digit or "+" was a "+". Returns the digit count, or 0 when the text held no
// ASCII digit of its own: a word alone is not a phone number.
static size_t
s_collect_digits(const char *s, size_t len, char *digits, bool *intl)
{
    size_t n = 0;
    bool seen_digit = false, seen_start = false;
    *intl = false;
    for (size_t i = 0; i < len; i++) {
        size_t skip = s_trunk_group_len(s + i, len - i);
        if (skip > 0) {
            i += skip - 1;
            continue;
        }
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            c = s_keypad[c - 'a'];
        else if (c >= 'A' && c <= 'Z')
            c = s_keypad[c - 'A'];
        else if (s_is_digit(c))
            seen_digit = true;
        if (c == '+' && !seen_start)
            *intl = true;
        if (c == '+' || s_is_digit(c))
            seen_start = true;
        if (s_is_digit(c))
            digits[n++] = c;
    }
    return seen_digit ? n : 0;
}

static bool
s_valid_cc(const char *cc)
{
    size_t len = cc ? strlen(cc) : 0;
    if (len < 1 || len > 3 || cc[0] == '0')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_is_digit(cc[i]))
            return false;
    return true;
}

// Write "+" + cc + national into out; -1 when the digit count or out_size is wrong.
static int
s_emit(const char *cc, const char *national, char *out, size_t out_size)
{
    size_t cc_len = strlen(cc), n_len = strlen(national);
    size_t total = cc_len + n_len;
    if (total < SB_PHONE_DIGITS_MIN || total > SB_PHONE_DIGITS_MAX || total + 2 > out_size)
        return -1;
    out[0] = '+';
    memcpy(out + 1, cc, cc_len);
    memcpy(out + 1 + cc_len, national, n_len + 1);
    return 0;
}

int
sb_phone_e164(const char *in, const char *default_cc, char *out, size_t out_size)
{
    if (out == NULL || out_size == 0)
        return -1;
    out[0] = '\0';
    if (in == NULL || !s_valid_cc(default_cc))
        return -1;
    size_t len = strnlen(in, SB_PHONE_INPUT_MAX + 1);
    if (len == 0 || len > SB_PHONE_INPUT_MAX)
        return -1;

    char digits[SB_PHONE_INPUT_MAX + 1];
    bool intl;
    size_t n = s_collect_digits(in, s_strip_extension(in, len), digits, &intl);
    if (n == 0)
        return -1;
    digits[n] = '\0';

    int rc;
    if (intl)
        rc = s_emit("", digits, out, out_size);
    else if (strncmp(digits, "00", 2) == 0)
        rc = s_emit("", digits + 2, out, out_size);
    else if (strcmp(default_cc, "1") == 0 && strncmp(digits, "011", 3) == 0)
        rc = s_emit("", digits + 3, out, out_size);
    else if (strcmp(default_cc, "1") == 0) {
        // NANP: 10 digits are national; 11 starting with 1 already carry the code
        if (n == 10)
            rc = s_emit("1", digits, out, out_size);
        else if (n == 11 && digits[0] == '1')
            rc = s_emit("", digits, out, out_size);
        else
            rc = -1;
    } else
        rc = s_emit(default_cc, digits[0] == '0' ? digits + 1 : digits, out, out_size);
    if (rc != 0)
        out[0] = '\0';
    return rc;
}

// RFC 5322 specials (but "@" and ".") and ASCII whitespace or control bytes: none of
// them belongs in a bare address, and a space means a display name was not removed.
static bool
s_email_bad_byte(unsigned char c)
{
    return c <= 0x20 || c == 0x7f || strchr("()<>[]:;\\,\"", c) != NULL;
}

char *
sb_email_normalize(const char *in)
{
    if (in == NULL)
        return NULL;
    const char *start = in, *end = in + strlen(in);
    const char *lt = strrchr(in, '<');
    if (lt != NULL) {
        const char *gt = strchr(lt + 1, '>');
        if (gt == NULL)
            return NULL;
        start = lt + 1;
        end = gt;
    }
    while (start < end && s_is_space(*start))
        start++;
    while (end > start && s_is_space(end[-1]))
        end--;
    size_t len = (size_t)(end - start);
    if (len == 0 || len > SB_EMAIL_MAX)
        return NULL;

    const char *at = NULL;
    for (const char *p = start; p < end; p++) {
        if (s_email_bad_byte((unsigned char)*p))
            return NULL;
        if (*p == '@') {
            if (at != NULL)
                return NULL; // a second "@"
            at = p;
        }
    }
    if (at == NULL || at == start || at == end - 1)
        return NULL;

    char *addr = sb_xstrndup(start, len);
    for (char *p = addr; *p; p++)
        *p = s_ascii_lower(*p);
    return addr;
}

size_t
sb_email_list(const char *in, char **out, size_t max)
{
    size_t count = 0;
    if (in == NULL || out == NULL)
        return 0;
    const char *piece = in;
    bool in_quote = false, in_angle = false;
    for (const char *p = in; count < max; p++) {
        if (*p == '\0' || (*p == ',' && !in_quote && !in_angle)) {
            char *one = sb_xstrndup(piece, (size_t)(p - piece));
            char *addr = sb_email_normalize(one);
            free(one);
            if (addr != NULL)
                out[count++] = addr;
            if (*p == '\0')
                break;
            piece = p + 1;
        } else if (in_quote && *p == '\\' && p[1] != '\0') {
            p++; // a quoted-pair: "\"" does not end the display name
        } else if (*p == '"' && !in_angle) {
            in_quote = !in_quote;
        } else if (*p == '<' && !in_quote) {
            in_angle = true;
        } else if (*p == '>' && !in_quote) {
            in_angle = false;
        }
    }
    return count;
}
