/* sb_google_oauth - access tokens for Gmail mailboxes from their OAuth refresh tokens
 * (RFC 6749 section 6, "refresh_token" grant, against GOOGLE_TOKEN_URL), cached per
 * mailbox until shortly before they expire.
 *
 * The module does no I/O of its own in the normal path: the enricher runs many HTTP
 * requests on one libcurl multi handle, so it asks this module for the request
 * (sb_google_oauth_url, sb_google_oauth_request_body), performs it, and feeds the answer
 * back (sb_google_oauth_response). sb_google_oauth_refresh does the same with a blocking
 * libcurl call for stages that have no event loop (renewer, sender).
 *
 *   const char *token = sb_google_oauth_token(oauth, mailbox, now_ms);
 *   if (token == NULL && !sb_google_oauth_blocked(oauth, mailbox, refresh_token, now_ms)) {
 *       char *body = sb_google_oauth_request_body(oauth, refresh_token);
 *       ... POST body (application/x-www-form-urlencoded) to sb_google_oauth_url(oauth) ...
 *       st = sb_google_oauth_response(oauth, mailbox, refresh_token, status, answer, len,
 *                                     now_ms, &err);
 *   }
 *   ... a 401 from the Gmail API: sb_google_oauth_invalidate(oauth, mailbox), then again.
 *
 * invalid_grant (the user revoked access, or the refresh token expired) cannot be cured
 * by retrying: the mailbox is blocked for SB_GOOGLE_OAUTH_BLOCK_MS, or until its refresh
 * token changes (a new consent), so that a stream of pushes does not become a stream of
 * doomed token requests. Only a SHA-256 digest of a refresh token is kept, to notice
 * that change; access tokens are wiped from memory when dropped. Mailbox keys are
 * compared case-insensitively. Times are the caller's (ms since the epoch, any clock
 * that is monotonic enough). One owner thread; common/ never logs and neither does this
 * module: tokens never leave it except through sb_google_oauth_token. */
#ifndef SB_GOOGLE_OAUTH_H
#define SB_GOOGLE_OAUTH_H
#include <stddef.h>
#include <stdint.h>
#include "sb_err.h"

#define SB_GOOGLE_TOKEN_URL_DEFAULT "https://oauth2.googleapis.com/token"
#define SB_GOOGLE_OAUTH_MARGIN_MS 60000       // a token is renewed this long before expiry
#define SB_GOOGLE_OAUTH_BLOCK_MS (15 * 60000) // invalid_grant: no new attempt for this long
#define SB_GOOGLE_OAUTH_MAX_BODY_BYTES 65536  // a token answer larger than this is refused
#define SB_GOOGLE_OAUTH_TIMEOUT_MS 10000      // sb_google_oauth_refresh: whole request

typedef enum {
    SB_GOOGLE_OAUTH_OK = 0,        // a token is cached: sb_google_oauth_token returns it
    SB_GOOGLE_OAUTH_INVALID_GRANT, // refresh token revoked or expired: the mailbox is blocked
    SB_GOOGLE_OAUTH_CLIENT,        // invalid_client, unauthorized_client ...: our configuration
    SB_GOOGLE_OAUTH_TRANSIENT,     // 5xx, 429, network trouble or a garbled answer: retry later
} sb_google_oauth_status_t;

typedef struct sb_google_oauth sb_google_oauth_t;

// token_url NULL or "" means SB_GOOGLE_TOKEN_URL_DEFAULT. client_id and client_secret
// may be NULL (a token endpoint of a test may not need them). Copies its arguments.
sb_google_oauth_t *sb_google_oauth_new(const char *token_url, const char *client_id,
                                       const char *client_secret);
void sb_google_oauth_destroy(sb_google_oauth_t **self_p);

const char *sb_google_oauth_url(const sb_google_oauth_t *self);

// The cached access token of mailbox, valid for at least SB_GOOGLE_OAUTH_MARGIN_MS more
// at now_ms, or NULL. Borrowed: valid until the next call that changes the cache.
const char *sb_google_oauth_token(sb_google_oauth_t *self, const char *mailbox, int64_t now_ms);

// 1 when mailbox had invalid_grant with this refresh_token less than
// SB_GOOGLE_OAUTH_BLOCK_MS ago (do not ask again), else 0.
int sb_google_oauth_blocked(sb_google_oauth_t *self, const char *mailbox, const char *refresh_token,
                            int64_t now_ms);

// The form body of the grant, URL-encoded: grant_type, client_id, client_secret,
// refresh_token. Caller frees (and should wipe: it holds secrets).
char *sb_google_oauth_request_body(const sb_google_oauth_t *self, const char *refresh_token);

// Take the token endpoint's answer: http_status (0 when no answer came) and body. On
// SB_GOOGLE_OAUTH_OK the token is cached; otherwise err says why (never with a secret).
sb_google_oauth_status_t sb_google_oauth_response(sb_google_oauth_t *self, const char *mailbox,
                                                  const char *refresh_token, long http_status,
                                                  const char *body, size_t len, int64_t now_ms,
                                                  sb_err_t *err);

// Forget mailbox's access token (the API answered 401 with it).
void sb_google_oauth_invalidate(sb_google_oauth_t *self, const char *mailbox);

// Blocking: POST the grant with libcurl (SB_GOOGLE_OAUTH_TIMEOUT_MS) and take the
// answer as sb_google_oauth_response does. A cached token or a blocked mailbox returns
// at once (SB_GOOGLE_OAUTH_OK or SB_GOOGLE_OAUTH_INVALID_GRANT) without a request.
sb_google_oauth_status_t sb_google_oauth_refresh(sb_google_oauth_t *self, const char *mailbox,
                                                 const char *refresh_token, int64_t now_ms,
                                                 sb_err_t *err);

#endif
