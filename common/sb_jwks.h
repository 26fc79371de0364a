/* sb_jwks - RSA signing keys from a JSON Web Key Set (RFC 7517), such as Google's
 * https://www.googleapis.com/oauth2/v3/certs, and a cache that keeps them fresh.
 *
 * Parsing keeps the keys that can check an RS256 signature: "kty" "RSA", a non-empty
 * "kid", "n" and "e" as base64url, "use" absent or "sig", "alg" absent or "RS256", and a
 * modulus of 2048 to 8192 bits. Every other key is skipped, as are extra members such as
 * "_comment"; a set with no usable key is an error. When a kid repeats, the first wins.
 *
 * The cache loads the set from a file (GOOGLE_JWKS_FILE) or a URL fetched with libcurl
 * (GOOGLE_JWKS_URL: https, http or file; 5 s timeouts; at most 1 MiB). It loads lazily, on
 * the first lookup, and again when a lookup asks for a kid it does not hold (a rotated
 * key) or when the set is older than its Cache-Control max-age (default 1 h). Loads are
 * rate-limited: at most one per SB_JWKS_REFETCH_MIN_S after a good load, one per
 * SB_JWKS_RETRY_MIN_S after a failed one, so a stream of tokens with a made-up kid cannot
 * turn into a stream of fetches. A failed reload keeps the keys already held. The clock
 * is the caller's (now_s), so tests can drive it. One owner thread; the lookup blocks for
 * at most one fetch. */
#ifndef SB_JWKS_H
#define SB_JWKS_H
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "sb_err.h"

#define SB_JWKS_REFETCH_MIN_S 60  // seconds between loads after a good one
#define SB_JWKS_RETRY_MIN_S 10    // seconds between loads after a failed one
#define SB_JWKS_MAX_AGE_S 3600    // reload after this when the server says nothing
#define SB_JWKS_FETCH_TIMEOUT_S 5 // connect and total, per fetch
#define SB_JWKS_MAX_BYTES 1048576 // a JWKS larger than this is refused
#define SB_JWKS_MAX_KEYS 64       // keys kept from one set; the rest are ignored

typedef struct sb_jwks sb_jwks_t; // one parsed set, immutable once built

// Parse a JWKS document json[0, len). NULL and err when it is not a JSON object with a
// "keys" array holding at least one usable key.
sb_jwks_t *sb_jwks_parse(const char *json, size_t len, sb_err_t *err);
void sb_jwks_destroy(sb_jwks_t **self_p);
size_t sb_jwks_size(const sb_jwks_t *self); // usable keys held
// The public key for kid (borrowed, valid until the set is destroyed), or NULL.
EVP_PKEY *sb_jwks_key(const sb_jwks_t *self, const char *kid);

// 0 when sig[0, sig_len) is an RSASSA-PKCS1-v1_5 SHA-256 signature of data by key,
// -1 otherwise (any OpenSSL failure counts as a bad signature).
int sb_jwks_verify_rs256(EVP_PKEY *key, const void *data, size_t len, const unsigned char *sig,
                         size_t sig_len);

typedef struct sb_jwks_cache sb_jwks_cache_t;

// Source: file when non-empty, else url; one of them must be set (NULL and err
// otherwise). Nothing is loaded yet: see sb_jwks_cache_load.
sb_jwks_cache_t *sb_jwks_cache_new(const char *file, const char *url, sb_err_t *err);
void sb_jwks_cache_destroy(sb_jwks_cache_t **self_p);

// Load the set now, ignoring the rate limit (at start, to fail early on a bad file).
// On failure the keys held so far stay. now_s < 0 means the caller has no clock yet: the
// next lookup's now_s is taken as the time of this load. 0, or -1 and err.
int sb_jwks_cache_load(sb_jwks_cache_t *self, int64_t now_s, sb_err_t *err);

typedef enum {
    SB_JWKS_FOUND = 0,       // *key_out is set
    SB_JWKS_UNKNOWN_KID = 1, // a set is held, without that kid (after a reload if allowed)
    SB_JWKS_UNAVAILABLE = -1 // no set could be loaded yet; err says why
} sb_jwks_lookup_t;

// The key for kid, (re)loading the set first when it is missing, stale or lacks kid and
// the rate limit allows. *key_out is borrowed: valid until the next lookup or load.
sb_jwks_lookup_t sb_jwks_cache_lookup(sb_jwks_cache_t *self, const char *kid, int64_t now_s,
                                      EVP_PKEY **key_out, sb_err_t *err);

// Loads attempted so far, good or failed (for tests and metrics).
uint64_t sb_jwks_cache_loads(const sb_jwks_cache_t *self);

#endif
