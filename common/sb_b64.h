/* sb_b64 - base64 and base64url (RFC 4648 sections 4 and 5) over OpenSSL's EVP block
 * coder. Providers are loose about both alphabet and padding: Pub/Sub message.data may be
 * standard base64 or base64url, Gmail's body.data is base64url, JWT segments are
 * base64url without padding (RFC 7515 section 2). So the decoder takes the alphabets it
 * accepts as flags and always tolerates missing padding; SB_B64_NO_PAD rejects padding
 * where a format forbids it.
 * Decoding is strict otherwise: no whitespace, no line breaks, '=' only at the end and
 * only as much as completes the last quantum, and no lone final character (it would
 * carry fewer than 8 bits). Non-zero unused bits in the last character are tolerated,
 * like every common decoder does.
 * Pure functions: no state, thread-safe. */
#ifndef SB_B64_H
#define SB_B64_H
#include <stddef.h>

#define SB_B64_STD 0x1    // the standard alphabet: '+' and '/'
#define SB_B64_URL 0x2    // the URL-safe alphabet: '-' and '_'
#define SB_B64_ANY 0x3    // either, even mixed in one string (decode only)
#define SB_B64_NO_PAD 0x4 // decode: reject '='; encode: write no '='

// Decode in[0, in_len) (in need not be NUL-terminated). flags: SB_B64_STD, SB_B64_URL or
// SB_B64_ANY, plus optionally SB_B64_NO_PAD. Returns the bytes, followed by a NUL that
// *out_len does not count (so decoded text is a C string), for the caller to free; NULL
// when the input is not valid base64 under flags. An empty input decodes to "".
unsigned char *sb_b64_decode(const char *in, size_t in_len, int flags, size_t *out_len);

// Encode data[0, len) with SB_B64_STD or SB_B64_URL, padded unless SB_B64_NO_PAD. Returns
// a C string for the caller to free. Aborts (like sb_xmalloc) only for len beyond 1.5 GiB.
char *sb_b64_encode(const void *data, size_t len, int flags);

#endif
