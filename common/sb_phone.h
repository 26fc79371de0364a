/* sb_phone - normalisation of phone numbers to E.164 and of e-mail addresses, so that
 * whatever a person writes matches what the CRM stored (SPEC "Matching and mapping").
 *
 * Phone rules, in order (writer/migrations/0001_normalise.sql implements the same rules
 * in SQL for customers.phone; tests/unit/test_phone.c checks both against one table):
 *   1. An extension is dropped: "ext", "ext.", "extension", "x", "#" or ";ext=" followed
 *      by digits at the end ("415-555-0123 ext. 12" -> "+14155550123").
 *   2. Letters map to keypad digits ("1-800-FLOWERS" -> "+18003569377").
 *   3. A leading "+" means the digits that follow include the country code.
 *      A leading "00", or "011" when the default country is 1, is an international
 *      prefix and is replaced by "+". A "(0)", the trunk prefix people write inside
 *      international numbers ("+44 (0)20 7946 0958" -> "+442079460958"), is dropped.
 *   4. Otherwise the number is national: with country code 1, 10 digits get "1"
 *      prepended and 11 digits starting with "1" are kept; with any other country code
 *      one leading trunk "0" is dropped and the country code prepended.
 *   5. All other characters (spaces, dots, dashes, parentheses, "/") are ignored.
 *   6. The result has 8 to 15 digits after "+" or the number is invalid. So is an input
 *      over 64 bytes, or one without a digit of its own (letters alone are a word).
 * Email: "Name <Addr@Example.COM>" and "addr@example.com" both give
 * "addr@example.com": the address inside the last <...> if any, trimmed, lower case;
 * it must contain exactly one "@" with text on both sides. */
#ifndef SB_PHONE_H
#define SB_PHONE_H
#include <stddef.h>

#define SB_PHONE_E164_MAX 17 // "+", 15 digits, NUL

// Write E.164 into out (at least SB_PHONE_E164_MAX bytes). default_cc is digits only,
// e.g. "1" or "44". Returns 0, or -1 when in is NULL, empty or not a phone number
// (out is then "").
int sb_phone_e164(const char *in, const char *default_cc, char *out, size_t out_size);

// Normalised address of an e-mail or "Name <addr>" header value. Returns a new string
// (caller frees), or NULL when there is no valid address.
char *sb_email_normalize(const char *in);

// Split a header value that lists several addresses ("a@x, \"B, C\" <b@y>") into
// normalised addresses. Returns the count written to out (at most max); caller frees each.
size_t sb_email_list(const char *in, char **out, size_t max);

#endif
