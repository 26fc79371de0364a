/* gmail_watch - Gmail push watches (users.watch, users.stop) and their rows in
 * `mailboxes`, for sb-renewer and sbctl.
 *
 * A watch makes Gmail publish a mailbox's changes to the Pub/Sub topic GMAIL_TOPIC, for 7
 * days. Renewing one is one call, the same as starting it:
 *   POST {GMAIL_API_BASE_URL}/gmail/v1/users/{email}/watch
 *        {"topicName": GMAIL_TOPIC, "labelIds": ["INBOX"], "labelFilterBehavior": "include"}
 *   -> {"historyId": "1843500", "expiration": "1796137200000"}   (epoch ms, as strings)
 * with an access token from the mailbox's refresh token (sb_google_oauth, blocking; a 401
 * drops the token and the call is made once more with a new one). users.stop ends it.
 *
 * The row (sb_gmail_watch_renew): claim the mailbox with the advisory lock
 * (SB_RENEWER_LOCK_MAILBOX, lower(email)), read it again under the lock and go on only if it
 * is still due (active, watch missing or expiring within renew_before, renew_after passed),
 * so two replicas never both renew it. Then:
 *   ok            watch_expires_at = expiration, watch_renewed_at = now(), failures cleared;
 *                 history_id = the watch's historyId ONLY when the mailbox has none (the
 *                 enricher reads history from the stored checkpoint; moving it would lose
 *                 or repeat mail). A refresh token still in clear is sealed when a key is
 *                 configured.
 *   invalid_grant status = 'reauth_required' (as the enricher marks it): not due again
 *                 until a new refresh token is stored (sbctl mailbox add sets 'active').
 *   other failure renew_failures + 1, renew_after = now() + backoff, last_error.
 * Refresh tokens are read with sb_secretbox_load (context "mailboxes.refresh_token:<email>",
 * email as stored); they never appear in a result or an error. */
#ifndef SB_GMAIL_WATCH_H
#define SB_GMAIL_WATCH_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include "sb_err.h"
#include "sb_secretbox.h"

#define SB_GMAIL_WATCH_MAX_BODY 65536 // a longer answer from users.watch is an error

typedef struct {
    const char *api_base_url;     // GMAIL_API_BASE_URL (no final '/' needed)
    const char *token_url;        // GOOGLE_TOKEN_URL; NULL: Google's
    const char *client_id;        // GOOGLE_CLIENT_ID (may be NULL for a test server)
    const char *client_secret;    // GOOGLE_CLIENT_SECRET
    const char *topic;            // GMAIL_TOPIC; NULL when only users.stop is wanted
    long timeout_ms;              // one request; 0: 15 s
    volatile sig_atomic_t *abort; // a transfer stops when *abort becomes non-zero; may be NULL
} sb_gmail_watch_opts_t;

typedef struct sb_gmail_watch sb_gmail_watch_t;

typedef enum {
    SB_GMAIL_WATCH_OK = 0,
    SB_GMAIL_WATCH_REAUTH, // invalid_grant: a new consent is needed
    SB_GMAIL_WATCH_FAILED, // anything else (err says why): try again later
} sb_gmail_watch_status_t;

typedef struct {
    char history_id[24];   // decimal, as Gmail sent it
    int64_t expiration_ms; // ms since the epoch
} sb_gmail_watch_info_t;

// Copies opts (the strings). NULL and err when api_base_url is not http(s).
sb_gmail_watch_t *sb_gmail_watch_new(const sb_gmail_watch_opts_t *opts, sb_err_t *err);
void sb_gmail_watch_destroy(sb_gmail_watch_t **self_p);

// users.watch for email (needs opts.topic). OK fills info.
sb_gmail_watch_status_t sb_gmail_watch_start(sb_gmail_watch_t *self, const char *email,
                                             const char *refresh_token, sb_gmail_watch_info_t *info,
                                             sb_err_t *err);
// users.stop for email. A mailbox without a watch answers 2xx too.
sb_gmail_watch_status_t sb_gmail_watch_stop(sb_gmail_watch_t *self, const char *email,
                                            const char *refresh_token, sb_err_t *err);

// --- Pure pieces (unit tests) ------------------------------------------------------------

// The users.watch body for topic. Caller frees.
char *sb_gmail_watch_body(const char *topic);
// {base}/gmail/v1/users/{percent-encoded email}/{verb}. Caller frees.
char *sb_gmail_watch_url(const char *base, const char *email, const char *verb);
// The users.watch answer: historyId and expiration as strings or numbers. 0, or -1 and err.
int sb_gmail_watch_parse(const char *body, size_t len, sb_gmail_watch_info_t *info, sb_err_t *err);

// --- The rows ----------------------------------------------------------------------------

typedef struct {
    PGconn *db;                // one session: the advisory lock lives on it
    sb_gmail_watch_t *gw;      // the API client
    const sb_secretbox_t *box; // SWITCHBOARD_SECRET_KEY, or NULL
    int64_t renew_before_ms;   // RENEW_BEFORE
    int64_t backoff_min_ms;    // RENEW_BACKOFF_MIN
    int64_t backoff_max_ms;    // RENEW_BACKOFF_MAX
} sb_gmail_watch_env_t;

typedef enum {
    SB_MAILBOX_RENEWED, // a new watch is stored
    SB_MAILBOX_NOT_DUE, // nothing to do (another replica did it, or it is not due)
    SB_MAILBOX_BUSY,    // another renewer holds the mailbox right now
    SB_MAILBOX_REAUTH,  // marked 'reauth_required'
    SB_MAILBOX_FAILED,  // backoff set; why says what failed
} sb_mailbox_outcome_t;

typedef struct {
    sb_mailbox_outcome_t outcome;
    char email[256];          // as stored
    int64_t expires_ms;       // RENEWED: the new expiry (epoch ms)
    int history_set;          // RENEWED: the checkpoint was empty and is now the watch's
    int failures;             // renew_failures after this try
    int64_t retry_in_ms;      // FAILED: the backoff chosen
    char why[SB_ERR_MSG_MAX]; // FAILED, REAUTH: the reason, without secrets
} sb_mailbox_result_t;

// Lower-case emails of the mailboxes that may be due (read without locks; each is checked
// again by sb_gmail_watch_renew), soonest expiry first. *emails is NULL-terminated; free it
// with sb_renewer_strv_free. 0, or -1 with err.
int sb_gmail_watch_due(PGconn *db, int64_t renew_before_ms, char ***emails, size_t *n,
                       sb_err_t *err);

// Renew one mailbox as described above. 0 with res, or -1 with err when the database failed
// (then nothing is known to have changed; the lock is released if the session lives).
int sb_gmail_watch_renew(const sb_gmail_watch_env_t *env, const char *email,
                         sb_mailbox_result_t *res, sb_err_t *err);

#endif
