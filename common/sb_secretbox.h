/* sb_secretbox - secrets at rest, such as the OAuth refresh token in
 * mailboxes.refresh_token (SPEC "What is stored"; docs/SECURITY.md "Secrets at rest").
 *
 * AES-256-GCM (OpenSSL EVP) with the key of SWITCHBOARD_SECRET_KEY: 32 bytes written as
 * 64 hex digits or as base64 (either alphabet, padding optional). A sealed value is text
 * that fits any text column:
 *
 *     "v1:" base64( nonce[12] | ciphertext[n] | tag[16] )      standard alphabet, padded
 *
 * The nonce is random (RAND_bytes) per seal, so sealing one secret twice gives two
 * different values; ciphertext has the plaintext's length. The context (e.g.
 * "mailboxes.refresh_token:support@example.com") is authenticated as GCM additional
 * data and not stored: a value copied to another row, or opened with another key, fails
 * to open instead of yielding someone else's secret. "v1" names this exact scheme;
 * another scheme or key generation gets another prefix.
 *
 * Calling sequence of a stage (the key comes from its config table, SB_CONFIG_SECRET):
 *   box = key ? sb_secretbox_new(key, &err) : NULL;   // a bad key stops the process
 *   stored = sb_secretbox_store(box, token, ctx, &err); // sealed, or plaintext without key
 *   token = sb_secretbox_load(box, stored, ctx, &err);  // plaintext rows still read
 *   sb_secretbox_destroy(&box);                          // wipes the key
 * Thread-safe after new (the key is only read). No logging; errors never contain
 * plaintext or key bytes. */
#ifndef SB_SECRETBOX_H
#define SB_SECRETBOX_H
#include <stdbool.h>
#include "sb_err.h"

#define SB_SECRETBOX_PREFIX "v1:"
#define SB_SECRETBOX_KEY_BYTES 32
#define SB_SECRETBOX_NONCE_BYTES 12
#define SB_SECRETBOX_TAG_BYTES 16
#define SB_SECRETBOX_MAX_BYTES (1u << 20) // longest plaintext sealed or opened

typedef struct sb_secretbox sb_secretbox_t;

// Parse key_text (64 hex digits, or base64 of 32 bytes; surrounding spaces ignored).
// NULL and err when it is anything else; err never quotes the key.
sb_secretbox_t *sb_secretbox_new(const char *key_text, sb_err_t *err);
void sb_secretbox_destroy(sb_secretbox_t **self_p); // wipes the key, frees, sets NULL

// Seal plaintext (at most SB_SECRETBOX_MAX_BYTES) under context (NULL means ""). Returns
// the "v1:..." text for the caller to free, or NULL and err (too long, no randomness).
char *sb_secretbox_seal(const sb_secretbox_t *self, const char *plaintext, const char *context,
                        sb_err_t *err);
// Open a sealed value with the same context. Returns the plaintext for the caller to
// free, or NULL and err when sealed is malformed, of another version, sealed under
// another key or context, or altered in any bit.
char *sb_secretbox_open(const sb_secretbox_t *self, const char *sealed, const char *context,
                        sb_err_t *err);

// Whether text is a sealed value (starts with SB_SECRETBOX_PREFIX).
bool sb_secretbox_is_sealed(const char *text);

// What to write to the database: sealed when self is not NULL, else a copy of plaintext
// (SWITCHBOARD_SECRET_KEY unset). NULL and err only when sealing fails.
char *sb_secretbox_store(const sb_secretbox_t *self, const char *plaintext, const char *context,
                         sb_err_t *err);
// The plaintext of a value read from the database: opened when it is sealed (which needs
// self), else a copy (a row written before the key was set; store it again to seal it).
char *sb_secretbox_load(const sb_secretbox_t *self, const char *stored, const char *context,
                        sb_err_t *err);

#endif
