/* sb_b64.c - the rules are in sb_b64.h. EVP_DecodeBlock only knows the padded standard
 * alphabet and silently skips surrounding whitespace, so every character is checked here
 * first, the URL alphabet is mapped onto the standard one and the padding is completed;
 * EVP then does the bit shuffling. Its result counts padding as zero bytes, so the true
 * length is computed from the number of data characters instead. */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "sb_b64.h"
#include "sb_mem.h"
#include "sb_banned.h"

// EVP's block coders take int lengths: beyond this, abort rather than truncate.
#define SB_B64_ENCODE_MAX ((size_t)INT_MAX / 4 * 3)

static bool
s_is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// c translated to the standard alphabet, or 0 when flags do not allow it.
static char
s_to_std(char c, int flags)
{
    if (s_is_alnum(c))
        return c;
    if (flags & SB_B64_STD && (c == '+' || c == '/'))
        return c;
    if (flags & SB_B64_URL && (c == '-' || c == '_'))
        return c == '-' ? '+' : '/';
    return 0;
}

unsigned char *
sb_b64_decode(const char *in, size_t in_len, int flags, size_t *out_len)
{
    if ((flags & SB_B64_ANY) == 0 || (in == NULL && in_len > 0))
        return NULL;
    size_t pads = 0;
    while (pads < in_len && pads < 3 && in[in_len - 1 - pads] == '=')
        pads++;
    size_t data_len = in_len - pads;
    size_t rest = data_len % 4;
    // A lone last character holds 6 bits, not a byte; padding must complete the quantum.
    if (rest == 1 || (pads > 0 && ((flags & SB_B64_NO_PAD) || rest == 0 || pads != 4 - rest)))
        return NULL;
    if (data_len > (size_t)INT_MAX - 3)
        return NULL;
    size_t padded_len = data_len + (rest ? 4 - rest : 0);
    char *std = sb_xmalloc(padded_len + 1);
    for (size_t i = 0; i < data_len; i++) {
        std[i] = s_to_std(in[i], flags);
        if (std[i] == 0) { // a stray '=', whitespace or the other alphabet
            free(std);
            return NULL;
        }
    }
    memset(std + data_len, '=', padded_len - data_len);
    std[padded_len] = '\0';

    unsigned char *out = sb_xmalloc(padded_len / 4 * 3 + 1);
    int n = padded_len ? EVP_DecodeBlock(out, (const unsigned char *)std, (int)padded_len) : 0;
    free(std);
    if (n < 0) { // cannot happen after the checks above; fail closed anyway
        free(out);
        return NULL;
    }
    size_t len = data_len / 4 * 3 + (rest ? rest - 1 : 0);
    out[len] = '\0';
    if (out_len)
        *out_len = len;
    return out;
}

char *
sb_b64_encode(const void *data, size_t len, int flags)
{
    if (len > SB_B64_ENCODE_MAX)
        abort(); // a programmer error: nothing we encode comes near 1.5 GiB
    size_t text_len = (len + 2) / 3 * 4;
    char *text = sb_xmalloc(text_len + 1);
    int n = EVP_EncodeBlock((unsigned char *)text, data, (int)len);
    if (n < 0 || (size_t)n != text_len)
        abort();
    text[text_len] = '\0';
    if (flags & SB_B64_URL) {
        for (char *p = text; *p; p++)
            if (*p == '+')
                *p = '-';
            else if (*p == '/')
                *p = '_';
    }
    if (flags & SB_B64_NO_PAD) {
        while (text_len > 0 && text[text_len - 1] == '=')
            text[--text_len] = '\0';
    }
    return text;
}
