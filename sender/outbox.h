/* outbox - sb-sender's statements on the outbox table (writer/migrations/0006_outbox.sql)
 * over one blocking libpq connection. Every function is one committed transaction, so
 * each state of a row is durable before the next step (docs/SENDER.md "Exactly once"):
 *
 *   claim / reclaim   queued (or a dead sender's 'sending') -> 'sending', with the
 *                     recipient, sender, subject, thread and Message-ID resolved and
 *                     stored, attempts + 1, a new attempt id: committed BEFORE the provider
 *                     is called, so a crash afterwards leaves evidence
 *   record_sent       the communications row (outbound, matched, ON CONFLICT: the row the
 *                     webhook may have stored already) and 'sent', in one transaction
 *   requeue           back to 'queued' at now + delay, with last_error and verify
 *   fail              'failed' with last_error
 * Updates after the claim name the attempt id: a row another sender took over meanwhile
 * is not touched (0 rows: the function says so, nothing else happens).
 *
 * Resolution of a claimed row (fields left NULL by the application), in order:
 *   to_address    the replied-to communication's other party (sender of an inbound one,
 *                 first recipient of an outbound one; an SMS or call for an SMS, an e-mail
 *                 for an e-mail), else the customer's phone_e164 / email_norm; then
 *                 normalised (E.164 with DEFAULT_COUNTRY_CODE, lower-case bare address)
 *   from_address  SMS: our side of the replied-to SMS or call, else RINGCENTRAL_SMS_FROM.
 *                 E-mail: the connected mailbox that received (or sent) the replied-to
 *                 e-mail, else SENDER_EMAIL_FROM, else the only connected mailbox
 *   subject       e-mail: "Re: " + the replied-to e-mail's subject
 *   thread_id     e-mail: the replied-to e-mail's Gmail thread id
 *   message_id    e-mail: a new "<sb.<id>.<random>@<domain>>", kept for every attempt
 * and, not stored in outbox, the parent's Message-ID and References for the threading
 * headers. A row that cannot be resolved (no recipient, an invalid number, no mailbox)
 * becomes 'failed' in the claim transaction itself. */
#ifndef SB_SENDER_OUTBOX_H
#define SB_SENDER_OUTBOX_H
#include <stdint.h>
#include <libpq-fe.h>
#include "sb_err.h"
#include "sb_secretbox.h"

// What one provider call means for the row (send_sms.h, send_email.h).
typedef enum {
    SB_SEND_OK = 0,    // sent, or found at the provider: record it
    SB_SEND_NOT_FOUND, // a verification found no such message at the provider
    SB_SEND_RETRY,     // surely not done (429, no connection, no token yet): try again later
    SB_SEND_UNCERTAIN, // may have been done (5xx, lost answer): verify before trying again
    SB_SEND_PERMANENT, // will not work by trying again (4xx, bad address): 'failed'
} sb_send_status_t;

// A claimed row, resolved. Strings are owned (NULL = SQL NULL).
typedef struct {
    int64_t id;
    char channel[8];          // "sms" or "email"
    int64_t customer_id;      // the application's, 0 when none
    int64_t in_reply_to;      // 0 when none
    char *to_address;         // normalised
    char *from_address;       // E.164 number or mailbox address
    char *subject;            // e-mail only; may be NULL
    char *body;               // never NULL
    char *thread_id;          // Gmail thread to send into, or NULL
    char *message_id;         // e-mail: our Message-ID
    char *parent_message_id;  // e-mail: the replied-to e-mail's Message-ID, or NULL
    char *parent_references;  // ... and its References (or In-Reply-To), or NULL
    char *parent_external_id; // ... and its Gmail id (a fallback for the headers), or NULL
    char *verify;             // NULL, "after_crash" or "after_error"
    char *attempt_id;         // this claim
    int attempts;             // including this claim
    int64_t first_sending_ms; // when the first attempt began (ms since the epoch)
} sb_outbox_job_t;

void sb_outbox_job_release(sb_outbox_job_t *job); // frees the strings, zeroes the job

// What the provider said about a sent message, for the communications row.
typedef struct {
    const char *external_id;  // provider message id (required)
    const char *thread_id;    // conversation / Gmail thread, or NULL
    const char *status;       // provider status ("Queued"), or NULL
    const char *occurred_at;  // ISO 8601, or NULL for now()
    const char *from_address; // as stored in communications (E.164 / address)
    const char *to_address;
    const char *references; // e-mail: the References we sent, or NULL
} sb_outbox_sent_t;

typedef struct {
    const char *default_cc; // DEFAULT_COUNTRY_CODE
    const char *sms_from;   // RINGCENTRAL_SMS_FROM or NULL
    const char *email_from; // SENDER_EMAIL_FROM or NULL
} sb_outbox_defaults_t;

// Take the advisory lock of sender_id for this session (blocks only if another session
// holds the same id, which a fresh random id makes impossible). 0 or -1.
int sb_outbox_lock(PGconn *conn, const char *sender_id, sb_err_t *err);

// Claim the next due queued row. 1 with *job (sending, resolved); 0 when there is none
// (or the row claimed could not be resolved and is now 'failed': *failed_id is set);
// -1 on a database error.
int sb_outbox_claim(PGconn *conn, const char *sender_id, const sb_outbox_defaults_t *defaults,
                    sb_outbox_job_t *job, int64_t *failed_id, sb_err_t *err);

// Take over one row left in 'sending' by a dead sender (advisory lock free, and
// sending_at older than reconcile_after_ms) or by anyone (older than lease_ms). 1 with
// *job (verify 'after_crash', now ours), 0 when there is none, -1 on error.
int sb_outbox_reclaim(PGconn *conn, const char *sender_id, const sb_outbox_defaults_t *defaults,
                      int64_t reconcile_after_ms, int64_t lease_ms, sb_outbox_job_t *job,
                      sb_err_t *err);

// Store the sent message and mark the row 'sent'. 0 (*comm_id set; *taken_over 1 when
// the row had meanwhile been taken by another sender, which will find the message) or -1.
int sb_outbox_record_sent(PGconn *conn, const sb_outbox_job_t *job, const sb_outbox_sent_t *sent,
                          int64_t *comm_id, int *taken_over, sb_err_t *err);

// Back to 'queued', due after delay_ms, with last_error and verify (NULL: keep as is).
int sb_outbox_requeue(PGconn *conn, const sb_outbox_job_t *job, int64_t delay_ms,
                      const char *last_error, const char *verify, sb_err_t *err);

// 'failed' with last_error.
int sb_outbox_fail(PGconn *conn, const sb_outbox_job_t *job, const char *last_error, sb_err_t *err);

// Of the SMS message ids in ids (n), the first that no other outbox row has recorded as
// its external_id, or -1 when all are taken; -2 on error.
int sb_outbox_first_unclaimed(PGconn *conn, int64_t outbox_id, char *const *ids, size_t n,
                              sb_err_t *err);

// The refresh token of mailbox, opened with box when it is sealed (context
// "mailboxes.refresh_token:<email as stored>", like the enricher): 0 with *token (a
// secret: wipe and free), 1 when the mailbox is not connected or has no token, 2 when the
// stored token cannot be opened (no or another SWITCHBOARD_SECRET_KEY), -1 on a database
// error. err says why for 1, 2 and -1.
int sb_outbox_mailbox_token(PGconn *conn, const sb_secretbox_t *box, const char *mailbox,
                            char **token, sb_err_t *err);

// Milliseconds until the next queued row is due, or until a dead sender's 'sending' row
// may be reconciled (0: now); -1 when there is neither, -2 on error.
int64_t sb_outbox_next_due_ms(PGconn *conn, int64_t reconcile_after_ms, sb_err_t *err);

// Rows per status, for the metrics gauges (queued, sending, failed); -1 on error.
int sb_outbox_counts(PGconn *conn, int64_t *queued, int64_t *sending, int64_t *failed,
                     sb_err_t *err);

#endif
