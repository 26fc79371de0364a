/* send_sms - an outbox SMS through RingCentral (common/sb_ringcentral.h):
 *
 *   POST /restapi/v1.0/account/~/extension/~/sms
 *        {"from": {"phoneNumber": from}, "to": [{"phoneNumber": to}], "text": body}
 *   -> the message record (shared/fixtures/ringcentral/sms-send-response.json): its id is
 *      the communications external_id, so the message-store notification that follows
 *      for the same message is a 'duplicate' in the writer, not a second row.
 *
 * Sending is not idempotent and RingCentral takes no idempotency key, so a send whose
 * outcome is unknown (a crash, a 5xx, a lost answer) is verified before anything else
 * happens: sb_send_sms_find lists the outbound SMS of the message store since the first
 * attempt (less a minute of clock skew) and returns those from our number to the
 * recipient with exactly our text, oldest first. The caller takes the first one that no
 * other outbox row has recorded (sb_outbox_first_unclaimed), so two replies with the same
 * text to the same number are still two messages.
 *
 * Ids are 64-bit integers above 2^53 in JSON numbers: jansson keeps them exact (json_int_t
 * is 64 bits) and they are stored as decimal text. Pure functions (body, parse, match,
 * error text) are separate from the two calls so that unit tests need no server. */
#ifndef SB_SEND_SMS_H
#define SB_SEND_SMS_H
#include <stddef.h>
#include <jansson.h>
#include "outbox.h"
#include "sb_ringcentral.h"

#define SB_SEND_SMS_PATH "/restapi/v1.0/account/~/extension/~/sms"
#define SB_SEND_SMS_STORE_PATH "/restapi/v1.0/account/~/extension/~/message-store"
#define SB_SEND_SMS_SKEW_MS 60000  // the search starts this long before the first attempt
#define SB_SEND_SMS_PAGE 100       // records per message-store page
#define SB_SEND_SMS_PAGES_MAX 10   // pages read by one search
#define SB_SEND_SMS_MATCHES_MAX 32 // candidates returned by one search

// One SMS record. Strings owned; NULL when absent.
typedef struct {
    char *id;              // message id, decimal text
    char *conversation_id; // conversation.id or conversationId
    char *status;          // messageStatus
    char *creation_time;   // creationTime when it is an ISO 8601 timestamp, else NULL
    char *from;            // from.phoneNumber in E.164 (or as sent when it is not a number)
    char *to;              // to[0].phoneNumber, the same way
    char *text;            // subject (the SMS text)
    char *direction;       // "Outbound", "Inbound"
} sb_sms_record_t;

void sb_sms_record_release(sb_sms_record_t *rec);

// The JSON body of the send request. Caller frees.
char *sb_send_sms_body(const char *from, const char *to, const char *text);

// Read one message record. 0, or -1 when it has no usable id.
int sb_send_sms_record(const json_t *rec, const char *default_cc, sb_sms_record_t *out);

// The records of a message-store list answer that are outbound SMS from job's number to
// its recipient with its exact text, created at or after since_ms, oldest first; at most
// max into out. Returns the count; *more is set when the answer says there is a next page.
size_t sb_send_sms_matches(const char *body, size_t len, const sb_outbox_job_t *job,
                           const char *default_cc, int64_t since_ms, sb_sms_record_t *out,
                           size_t max, int *more);

// "HTTP 400 CMN-101: Parameter [to.phoneNumber] value is invalid" from an error answer
// (RingCentral's errorCode/message, errors[0], or OAuth's error/error_description). Caller
// frees.
char *sb_send_rc_error(long status, const char *body, size_t len);

// Send job. SB_SEND_OK with *out; otherwise *why (caller frees) says what happened.
sb_send_status_t sb_send_sms(sb_ringcentral_t *rc, const sb_outbox_job_t *job,
                             const char *default_cc, sb_sms_record_t *out, char **why);

// Look for job's message in the message store (see above). SB_SEND_OK with *n > 0
// candidates in out (release each), SB_SEND_NOT_FOUND, or SB_SEND_RETRY with *why when
// the store could not be read.
sb_send_status_t sb_send_sms_find(sb_ringcentral_t *rc, const sb_outbox_job_t *job,
                                  const char *default_cc, sb_sms_record_t *out, size_t max,
                                  size_t *n, char **why);

#endif
