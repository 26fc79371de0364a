/* send_email - an outbox e-mail through the Gmail API, as the mailbox in from_address
 * (its refresh token from mailboxes, common/sb_google_oauth.h for access tokens):
 *
 *   POST {GMAIL_API_BASE_URL}/gmail/v1/users/{mailbox}/messages/send
 *        {"raw": base64url(RFC 5322 message, rfc5322.h), "threadId": thread}
 *   -> {"id", "threadId", "labelIds": ["SENT"]}: id is the communications external_id,
 *      so the history event of the same SENT message is a 'duplicate' in the writer.
 *
 * The message carries In-Reply-To and References from the replied-to e-mail's Message-ID
 * (communications.message_id / email_references, filled by the enricher; for an e-mail
 * stored before those columns existed, sb_send_email_parent reads them from Gmail with
 * messages.get?format=metadata) and threadId, so Gmail and the customer's mail program
 * both thread it.
 *
 * Verification of a send whose outcome is unknown (sb_send_email_find): Gmail's send is
 * synchronous, so a message it accepted is in the mailbox. First
 *   messages.list q="rfc822msgid:<our Message-ID>" includeSpamTrash=true
 * and, in case Gmail replaced our Message-ID, the SENT messages to the recipient since
 * the first attempt, each checked for our X-Switchboard-Outbox-Id header
 * (messages.get?format=metadata; Gmail search does not index custom headers).
 *
 * Outcomes: 2xx -> OK; 429 and 403 rate limits, 401 twice, no connection, a token not
 * obtainable now -> RETRY; 5xx, a timeout or a lost answer -> UNCERTAIN; other 4xx,
 * invalid_grant (the mailbox must be connected again), a client refused by Google ->
 * PERMANENT, with Google's message. Blocking libcurl calls of at most timeout_ms each. */
#ifndef SB_SEND_EMAIL_H
#define SB_SEND_EMAIL_H
#include <stddef.h>
#include <stdint.h>
#include "outbox.h"

#define SB_SEND_EMAIL_MAX_BODY (4u << 20) // a larger answer is an error
#define SB_SEND_EMAIL_SCAN_MAX 50         // SENT messages checked for our header
#define SB_SEND_EMAIL_SKEW_S 60           // the SENT scan starts this long before attempt 1

typedef struct sb_gmail_send sb_gmail_send_t;

// api_base: GMAIL_API_BASE_URL; token_url, client_id, client_secret: GOOGLE_*. Copies them.
sb_gmail_send_t *sb_gmail_send_new(const char *api_base, const char *token_url,
                                   const char *client_id, const char *client_secret,
                                   long timeout_ms);
void sb_gmail_send_destroy(sb_gmail_send_t **self_p);

typedef struct {
    char *id;         // Gmail message id
    char *thread_id;  // Gmail thread id, or NULL
    char *references; // the References header we sent, or NULL
} sb_gmail_sent_t;

void sb_gmail_sent_release(sb_gmail_sent_t *sent);

// The RFC 5322 message of job at now_ms (rfc5322.h), and the References it carries
// (*references, caller frees, may be NULL). NULL and *why when it cannot be built.
char *sb_send_email_message(const sb_outbox_job_t *job, int64_t now_ms, size_t *len,
                            char **references, char **why);

// The JSON body of messages.send: {"raw": base64url (no padding) of raw, "threadId"}.
char *sb_send_email_body(const char *raw, size_t len, const char *thread_id);

// "HTTP 400 INVALID_ARGUMENT: Invalid To header" from a Google error answer. Caller frees.
char *sb_send_google_error(long status, const char *body, size_t len);

// Send job from job->from_address with refresh_token. OK with *out, else *why.
sb_send_status_t sb_send_email(sb_gmail_send_t *self, const sb_outbox_job_t *job,
                               const char *refresh_token, int64_t now_ms, sb_gmail_sent_t *out,
                               char **why);

// Look for job's message in the mailbox (see above): OK with *out, NOT_FOUND, or RETRY /
// PERMANENT with *why.
sb_send_status_t sb_send_email_find(sb_gmail_send_t *self, const sb_outbox_job_t *job,
                                    const char *refresh_token, sb_gmail_sent_t *out, char **why);

// When job replies to a Gmail message whose Message-ID we do not have, read its
// Message-ID and References from Gmail into job. OK (also when there is nothing to do or
// the message is gone), or RETRY / PERMANENT with *why.
sb_send_status_t sb_send_email_parent(sb_gmail_send_t *self, sb_outbox_job_t *job,
                                      const char *refresh_token, char **why);

#endif
