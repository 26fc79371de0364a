/* sb_ringcentral - a small RingCentral REST client over libcurl: OAuth with the JWT
 * bearer grant, a cached access token, bounded retries, and the calls the stages make
 * (the enricher reads the message store; the renewer and the sender use the generic
 * request on subscriptions and /sms).
 *
 *   sb_ringcentral_opts_t opts = {.server_url = url, .client_id = id,
 *                                 .client_secret = secret, .jwt = jwt};
 *   sb_ringcentral_t *rc = sb_ringcentral_new(&opts, &err);
 *   sb_rc_response_t res;
 *   if (sb_ringcentral_message_get(rc, "3062991514023", &res, &err) == 0)
 *       ... res.status (200, 404 ...), res.body ...
 *   sb_rc_response_release(&res);
 *   sb_ringcentral_destroy(&rc);
 *
 * Token: POST {server}/restapi/oauth/token with HTTP Basic client_id:client_secret and
 *   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>. The token is
 *   kept until SB_RC_TOKEN_MARGIN_S before its expires_in runs out. A 401 from an API
 *   call drops it and the call is made once more with a new token; a second 401 is an
 *   error. Nothing here asks for a token before it is needed.
 * Retries: a transport error, 429 or 5xx is tried again, up to max_attempts tries in all,
 *   after an exponential backoff with jitter (backoff_ms doubling up to backoff_max_ms,
 *   each wait drawn from [half, full] of it). A Retry-After header (seconds or an HTTP
 *   date) replaces the computed wait; one longer than retry_after_max_ms ends the tries
 *   at once, since the caller's own redelivery is the better place to wait that long.
 *   A request that is not idempotent (POST /sms: a retry could send the text twice) is
 *   retried only when it surely did nothing: 429, or a connection that never opened.
 *   The token request is retried like an idempotent one.
 * Result: 0 with res filled for an answer this client does not retry: 2xx, a 4xx that
 *   trying again cannot change (404, 400, 403 ...), and for a request that is not
 *   idempotent a 5xx (it may have been done: the caller decides). -1 with err when no
 *   usable answer came (transport, token refused, 429/5xx after the last try, a second
 *   401): try again later.
 * Secrets (client secret, JWT, access token) never appear in err, which holds the method,
 *   the path and the status or curl's message. Not thread-safe: one owner thread. */
#ifndef SB_RINGCENTRAL_H
#define SB_RINGCENTRAL_H
#include <stddef.h>
#include <stdint.h>
#include "sb_err.h"

#define SB_RC_DEFAULT_SERVER "https://platform.ringcentral.com"
#define SB_RC_TOKEN_MARGIN_S 60        // renew the token this long before it expires
#define SB_RC_MAX_ATTEMPTS 4           // tries per request, the first included; 1-10
#define SB_RC_BACKOFF_MS 250           // first wait before a retry
#define SB_RC_BACKOFF_MAX_MS 4000      // cap of the doubling wait
#define SB_RC_RETRY_AFTER_MAX_MS 10000 // a longer Retry-After is not waited for
#define SB_RC_TIMEOUT_MS 15000         // one HTTP exchange, connect included
#define SB_RC_MAX_BODY 4194304         // a larger response is an error

// Waits between tries go through this, so a stage can keep its heartbeats going (and a
// test can record them instead of sleeping). Return non-zero to give up the request.
typedef int (*sb_rc_sleep_fn)(int64_t ms, void *arg);

typedef struct {
    const char *server_url;     // RINGCENTRAL_SERVER_URL; NULL or "": the default
    const char *client_id;      // RINGCENTRAL_CLIENT_ID
    const char *client_secret;  // RINGCENTRAL_CLIENT_SECRET
    const char *jwt;            // RINGCENTRAL_JWT
    int max_attempts;           // 0: SB_RC_MAX_ATTEMPTS
    int64_t backoff_ms;         // 0: SB_RC_BACKOFF_MS
    int64_t backoff_max_ms;     // 0: SB_RC_BACKOFF_MAX_MS
    int64_t retry_after_max_ms; // 0: SB_RC_RETRY_AFTER_MAX_MS
    long timeout_ms;            // 0: SB_RC_TIMEOUT_MS
    sb_rc_sleep_fn sleep;       // NULL: nanosleep
    void *sleep_arg;
} sb_ringcentral_opts_t;

typedef struct {
    long status; // HTTP status of the final answer
    char *body;  // owned, NUL-terminated (may hold NULs), "" when empty
    size_t len;
} sb_rc_response_t;

typedef struct {
    uint64_t token_requests; // POSTs to the token endpoint, tries included
    uint64_t requests;       // API requests sent, tries included
    uint64_t retries;        // waits before a new try
    uint64_t refreshes;      // tokens dropped after a 401
} sb_rc_stats_t;

typedef struct sb_ringcentral sb_ringcentral_t;

// Copies opts. NULL and err when a credential is missing or the URL is not http(s).
sb_ringcentral_t *sb_ringcentral_new(const sb_ringcentral_opts_t *opts, sb_err_t *err);
void sb_ringcentral_destroy(sb_ringcentral_t **self_p); // wipes the secrets it held

// One API call. method "GET", "POST", "PUT", "DELETE"; path from "/restapi/..." (query
// included); body may be NULL (then no Content-Type is sent), else JSON. idempotent: see
// above. 0 with *res, or -1 with err (see above). Release res in both cases.
int sb_ringcentral_request(sb_ringcentral_t *self, const char *method, const char *path,
                           const char *body, size_t body_len, int idempotent, sb_rc_response_t *res,
                           sb_err_t *err);
int sb_ringcentral_get(sb_ringcentral_t *self, const char *path, sb_rc_response_t *res,
                       sb_err_t *err);
// POST a JSON body. Not idempotent (see above).
int sb_ringcentral_post(sb_ringcentral_t *self, const char *path, const char *json,
                        sb_rc_response_t *res, sb_err_t *err);

// GET /restapi/v1.0/account/~/extension/~/message-store/{id}. id is the message id as
// decimal text; anything else is refused (-1) before a request is made.
int sb_ringcentral_message_get(sb_ringcentral_t *self, const char *id, sb_rc_response_t *res,
                               sb_err_t *err);

void sb_rc_response_release(sb_rc_response_t *res); // frees body and zeroes res

void sb_ringcentral_stats(const sb_ringcentral_t *self, sb_rc_stats_t *out);

// --- Pieces for a caller that drives its own HTTP (the enricher's non-blocking fetch) ---

// The body of the JWT bearer token request, form-encoded:
// "grant_type=urn%3Aietf%3A...%3Ajwt-bearer&assertion=<jwt>". A secret: wipe and free it.
char *sb_ringcentral_token_form(const char *jwt);
// The Authorization value of the token request, "Basic base64(client_id:client_secret)".
// A secret: wipe and free it.
char *sb_ringcentral_basic_credentials(const char *client_id, const char *client_secret);
// Read the token endpoint's answer. 0 with *token (a secret: wipe and free it) and
// *lifetime_ms, how long to use it (expires_in less SB_RC_TOKEN_MARGIN_S, or less half of
// it when that is short); -1 with err ("RingCentral refused the token request: HTTP 400
// (invalid_grant)": the status and the OAuth error code, never the body).
int sb_ringcentral_token_parse(long status, const char *body, size_t len, char **token,
                               int64_t *lifetime_ms, sb_err_t *err);
// "/restapi/v1.0/account/{account}/extension/{extension}/message-store/{id}", with "~"
// for an account or extension that is NULL or not decimal digits. NULL when id is not a
// decimal message id (1-20 digits). Caller frees.
char *sb_ringcentral_message_path(const char *account, const char *extension, const char *id);

#endif
