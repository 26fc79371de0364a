/* sb_hex - hexadecimal digits of either case, as keys (SWITCHBOARD_SECRET_KEY), signatures
 * (X-RingCentral-Signature), quoted-printable and %XX escapes write them. Pure functions. */
#ifndef SB_HEX_H
#define SB_HEX_H
#include <stddef.h>

// The value 0-15 of a hex digit, or -1 for any other character.
int sb_hex_digit(char c);

// Exactly 2 * n hex digits text[0, len) into out[0, n). 0, or -1 (out undefined) when len
// is not 2 * n or a character is not a hex digit.
int sb_hex_decode(const char *text, size_t len, unsigned char *out, size_t n);

#endif
