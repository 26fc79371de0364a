/* sender - sb-sender, the stage that sends the staff replies queued in `outbox`
 * (SPEC "What is stored"; docs/SENDER.md has the whole story).
 *
 * One thread, one PostgreSQL connection, blocking provider calls. The loop:
 *   1. (re)connect: a new sender id, a session advisory lock on it (while this
 *      connection lives, every row we mark 'sending' is known to have a live owner),
 *      LISTEN outbox;
 *   2. take over the rows left in 'sending' by a sender that is gone (its lock is free)
 *      once SENDER_RECONCILE_AFTER_MS have passed, or by anyone after SENDER_LEASE_MS:
 *      they are handled with verify 'after_crash' (outbox.h);
 *   3. claim due 'queued' rows one at a time (FOR UPDATE SKIP LOCKED, so replicas share
 *      the work) and handle each (s_handle in sender.c):
 *        verify set   look for the message at the provider first; found = sent
 *        send         RingCentral POST .../sms (send_sms.h) or Gmail messages.send
 *                     (send_email.h)
 *        sent         the communications row and outbox 'sent' in one transaction
 *        429, 5xx, transport: back to 'queued' with a doubling delay (verify when the
 *                     provider may have acted); after SENDER_MAX_ATTEMPTS 'failed'
 *        other 4xx, bad rows: 'failed' with the provider's message
 *   4. sleep until a NOTIFY outbox, the next due row or SENDER_POLL_MS.
 * SIGTERM: the reply in hand is finished (its provider call has bounded timeouts), then
 * the loop ends; no new row is claimed. */
#ifndef SB_SENDER_H
#define SB_SENDER_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "sb_config.h"
#include "sb_err.h"

#define SB_SENDER_RECONNECT_MAX_MS 5000 // longest wait between two connection attempts
#define SB_SENDER_LOCK_CLASS 1396834310 // advisory lock class of sender ids: "SB" 0006

typedef struct {
    char *log_level;            // LOG_LEVEL
    char *database_url;         // DATABASE_URL (secret)
    char *metrics_listen;       // METRICS_LISTEN
    char *rc_server_url;        // RINGCENTRAL_SERVER_URL
    char *rc_client_id;         // RINGCENTRAL_CLIENT_ID
    char *rc_client_secret;     // RINGCENTRAL_CLIENT_SECRET (secret)
    char *rc_jwt;               // RINGCENTRAL_JWT (secret)
    char *sms_from;             // RINGCENTRAL_SMS_FROM: default sender number
    char *google_client_id;     // GOOGLE_CLIENT_ID
    char *google_client_secret; // GOOGLE_CLIENT_SECRET (secret)
    char *google_token_url;     // GOOGLE_TOKEN_URL
    char *gmail_api_base_url;   // GMAIL_API_BASE_URL
    char *email_from;           // SENDER_EMAIL_FROM: default mailbox
    char *secret_key;           // SWITCHBOARD_SECRET_KEY (secret): sealed refresh tokens
    char *default_cc;           // DEFAULT_COUNTRY_CODE
    int64_t poll_ms;            // SENDER_POLL_MS
    int64_t max_attempts;       // SENDER_MAX_ATTEMPTS
    int64_t backoff_ms;         // SENDER_BACKOFF_MS
    int64_t backoff_max_ms;     // SENDER_BACKOFF_MAX_MS
    int64_t reconcile_after_ms; // SENDER_RECONCILE_AFTER_MS
    int64_t verify_delay_ms;    // SENDER_VERIFY_DELAY_MS
    int64_t lease_ms;           // SENDER_LEASE_MS
    int64_t http_timeout_ms;    // SENDER_HTTP_TIMEOUT_MS
} sb_sender_config_t;

extern const sb_config_var_t sb_sender_config_vars[];
extern const size_t sb_sender_config_vars_n;

// Checks the table cannot express. One line per problem to `problems`; 0 or -1.
int sb_sender_config_check(const sb_sender_config_t *conf, FILE *problems);

typedef struct sb_sender sb_sender_t;

// Borrows conf for its lifetime. NULL and err when a client cannot be built (bad
// SWITCHBOARD_SECRET_KEY, a RingCentral URL that is not http(s)) or metrics cannot listen.
sb_sender_t *sb_sender_new(const sb_sender_config_t *conf, sb_err_t *err);
void sb_sender_destroy(sb_sender_t **self_p);

// Run until *stop becomes non-zero (a signal handler sets it).
void sb_sender_run(sb_sender_t *self, volatile sig_atomic_t *stop);

// The delay before attempt number `attempts` + 1: backoff_ms doubled per attempt, capped at
// backoff_max_ms, drawn from [half, full] (jitter from rnd). A provider's Retry-After
// (retry_after_ms > 0) wins when it is longer.
int64_t sb_sender_backoff_ms(int attempts, int64_t backoff_ms, int64_t backoff_max_ms,
                             int64_t retry_after_ms, uint64_t rnd);

#endif
