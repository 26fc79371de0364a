/* sb_secretbox - AES-256-GCM for secrets at rest; sb_secretbox.h is the manual. */
#include <assert.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "sb_b64.h"
#include "sb_hex.h"
#include "sb_mem.h"
#include "sb_secretbox.h"
#include "sb_banned.h"

#define S_PREFIX_LEN (sizeof SB_SECRETBOX_PREFIX - 1)
#define S_OVERHEAD (SB_SECRETBOX_NONCE_BYTES + SB_SECRETBOX_TAG_BYTES)

struct sb_secretbox {
    unsigned char key[SB_SECRETBOX_KEY_BYTES]; // AES-256 key; wiped by destroy
};

sb_secretbox_t *
sb_secretbox_new(const char *key_text, sb_err_t *err)
{
    const char *p = key_text ? key_text : "";
    size_t len = strlen(p);
    while (len > 0 && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++, len--;
    while (len > 0 &&
           (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    sb_secretbox_t *self = sb_xcalloc(1, sizeof *self);
    if (sb_hex_decode(p, len, self->key, SB_SECRETBOX_KEY_BYTES) == 0)
        return self;
    size_t n = 0;
    unsigned char *raw = sb_b64_decode(p, len, SB_B64_ANY, &n);
    if (raw != NULL && n == SB_SECRETBOX_KEY_BYTES) {
        memcpy(self->key, raw, n);
        OPENSSL_cleanse(raw, n);
        free(raw);
        return self;
    }
    if (raw != NULL) {
        OPENSSL_cleanse(raw, n);
        free(raw);
    }
    sb_err_set(err, 0,
               "invalid SWITCHBOARD_SECRET_KEY: expected 32 bytes as 64 hex digits or base64 "
               "(e.g. openssl rand -hex 32)");
    sb_secretbox_destroy(&self);
    return NULL;
}

void
sb_secretbox_destroy(sb_secretbox_t **self_p)
{
    assert(self_p);
    sb_secretbox_t *self = *self_p;
    if (self == NULL)
        return;
    OPENSSL_cleanse(self->key, sizeof self->key);
    free(self);
    *self_p = NULL;
}

bool
sb_secretbox_is_sealed(const char *text)
{
    return text != NULL && strncmp(text, SB_SECRETBOX_PREFIX, S_PREFIX_LEN) == 0;
}

// One GCM pass: encrypt (in -> out, then the tag into tag) or decrypt (in -> out, then
// check tag). 0, or -1 when OpenSSL fails or, decrypting, the tag does not match.
static int
s_gcm(const sb_secretbox_t *self, int encrypt, const unsigned char *nonce, const char *context,
      const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int rc = -1, n = 0;
    size_t aad_len = context ? strlen(context) : 0;
    if (ctx == NULL || EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SB_SECRETBOX_NONCE_BYTES, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, self->key, nonce, encrypt) != 1)
        goto cleanup;
    if (aad_len > 0 &&
        EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)context, (int)aad_len) != 1)
        goto cleanup;
    if (len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
        goto cleanup;
    if (!encrypt &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SB_SECRETBOX_TAG_BYTES, tag) != 1)
        goto cleanup;
    // Decrypting, this is where the tag is checked: nothing is returned before it passes.
    if (EVP_CipherFinal_ex(ctx, out + len, &n) != 1)
        goto cleanup;
    if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SB_SECRETBOX_TAG_BYTES, tag) != 1)
        goto cleanup;
    rc = 0;
cleanup:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

char *
sb_secretbox_seal(const sb_secretbox_t *self, const char *plaintext, const char *context,
                  sb_err_t *err)
{
    assert(self && plaintext);
    size_t len = strlen(plaintext);
    if (len > SB_SECRETBOX_MAX_BYTES) {
        sb_err_set(err, 0, "cannot seal a secret over %u bytes", SB_SECRETBOX_MAX_BYTES);
        return NULL;
    }
    // nonce | ciphertext | tag, plus one spare byte: GCM's final step writes nothing
    unsigned char *box = sb_xmalloc(S_OVERHEAD + len + 1);
    unsigned char *nonce = box, *ct = box + SB_SECRETBOX_NONCE_BYTES, *tag = ct + len;
    char *out = NULL;
    if (RAND_bytes(nonce, SB_SECRETBOX_NONCE_BYTES) != 1) {
        sb_err_set(err, 0, "could not get random bytes for a nonce");
    } else if (s_gcm(self, 1, nonce, context, (const unsigned char *)plaintext, len, ct, tag) !=
               0) {
        sb_err_set(err, 0, "could not encrypt (OpenSSL AES-256-GCM failed)");
    } else {
        char *b64 = sb_b64_encode(box, S_OVERHEAD + len, SB_B64_STD);
        out = sb_xasprintf(SB_SECRETBOX_PREFIX "%s", b64);
        free(b64);
    }
    OPENSSL_cleanse(box, S_OVERHEAD + len);
    free(box);
    return out;
}

char *
sb_secretbox_open(const sb_secretbox_t *self, const char *sealed, const char *context,
                  sb_err_t *err)
{
    assert(self);
    if (!sb_secretbox_is_sealed(sealed)) {
        sb_err_set(err, 0, "cannot open a secret: not a \"%s\" value", SB_SECRETBOX_PREFIX);
        return NULL;
    }
    const char *b64 = sealed + S_PREFIX_LEN;
    size_t b64_len = strlen(b64);
    if (b64_len > (SB_SECRETBOX_MAX_BYTES + S_OVERHEAD) / 3 * 4 + 4) {
        sb_err_set(err, 0, "cannot open a secret: too long");
        return NULL;
    }
    size_t n = 0;
    unsigned char *box = sb_b64_decode(b64, b64_len, SB_B64_STD, &n);
    if (box == NULL || n < S_OVERHEAD) {
        free(box);
        sb_err_set(err, 0, "cannot open a secret: malformed value");
        return NULL;
    }
    size_t len = n - S_OVERHEAD;
    unsigned char *nonce = box, *ct = box + SB_SECRETBOX_NONCE_BYTES, *tag = ct + len;
    char *plain = sb_xmalloc(len + 1);
    if (s_gcm(self, 0, nonce, context, ct, len, (unsigned char *)plain, tag) != 0 ||
        memchr(plain, '\0', len) != NULL) {
        OPENSSL_cleanse(plain, len);
        free(plain);
        plain = NULL;
        sb_err_set(err, 0,
                   "cannot open a secret: wrong SWITCHBOARD_SECRET_KEY, another row's value, "
                   "or altered");
    } else {
        plain[len] = '\0';
    }
    free(box);
    return plain;
}

char *
sb_secretbox_store(const sb_secretbox_t *self, const char *plaintext, const char *context,
                   sb_err_t *err)
{
    assert(plaintext);
    return self ? sb_secretbox_seal(self, plaintext, context, err) : sb_xstrdup(plaintext);
}

char *
sb_secretbox_load(const sb_secretbox_t *self, const char *stored, const char *context,
                  sb_err_t *err)
{
    assert(stored);
    if (!sb_secretbox_is_sealed(stored))
        return sb_xstrdup(stored);
    if (self == NULL) {
        sb_err_set(err, 0, "cannot read a sealed secret: SWITCHBOARD_SECRET_KEY is not set");
        return NULL;
    }
    return sb_secretbox_open(self, stored, context, err);
}
