/* enrich_ringcentral - the enricher's handler for verified RingCentral SMS events (issue
 * 4). A message-store notification (RingCentral's alternative SMS event filter) only says
 * which messages are new, in body.changes[].newMessageIds; this fetches each one from the
 * message store and passes the event on with extra {"communications": [...]}
 * (docs/topology.md), SMS rows made exactly as the writer makes them from an instant SMS
 * (writer/map_ringcentral.h): external_id = message id, thread_id = conversation id,
 * from/to in E.164, body = the text ("subject"), status = messageStatus, occurred_at =
 * creationTime, matched on the sender when inbound and on the recipient when outbound.
 * Instant-SMS notifications, and anything that is not a message-store notification, go
 * on unchanged at once, without a fetch.
 *
 *   1. the ids of the changes of type "SMS", each once, as exact text (JSON numbers
 *      above 2^53 too); none -> the event goes on with 'ignored' 'no_new_messages'.
 *   2. an access token (the JWT bearer grant, sb_ringcentral.h): one token request at a
 *      time, shared by every event waiting for it, kept until shortly before it expires.
 *   3. GET /restapi/v1.0/account/{accountId}/extension/{extensionId}/message-store/{id},
 *      the ids of the notification's body ("~" when absent), all at once (fetch.c bounds
 *      the concurrency and retries 429/5xx/timeouts, honouring Retry-After). A 401 drops
 *      the token, and that message is asked for once more with a new one.
 *   4. the event goes on with the rows. A message that is gone (404) is left out; with
 *      no row left the outcome is 'ignored' 'message_not_found'. A message refused (another
 *      4xx) or not an SMS record is left out too; with no row left, 'failed'
 *      'message_fetch_refused' or 'failed' 'unrecognized_message'.
 * Transient failures that outlast fetch.c's retries (no answer, 429, 5xx, a second 401, a
 * token request that could not be made) drop the event without passing it on: the
 * ingress sends it again later (its redelivery backoff), so nothing is lost. A refused
 * token request (wrong credentials) is logged and no new one is made for
 * SB_RC_TOKEN_BLOCK_MS; the events meanwhile are dropped the same way, for redelivery
 * once the credentials are fixed. Without RINGCENTRAL_CLIENT_ID, _CLIENT_SECRET and _JWT
 * the stage still starts (warning once), and a message-store notification goes on as
 * 'failed' 'ringcentral_api_not_configured': its raw body stays in webhook_events.
 * Tokens are never logged. */
#ifndef SB_ENRICH_RINGCENTRAL_H
#define SB_ENRICH_RINGCENTRAL_H
#include <stddef.h>
#include <jansson.h>
#include "enricher.h"

#define SB_RC_TOKEN_BLOCK_MS 30000 // after a refused token request, none for this long
#define SB_RC_MAX_IDS 1000         // message ids taken from one notification

// The handler table entry (enricher.h "EXTENSION POINT"), source "ringcentral_sms".
void *sb_rc_handler_new(sb_enricher_t *enricher, sb_err_t *err);
void sb_rc_handler_destroy(void **state_p);
void sb_rc_handler_handle(void *state, sb_enricher_t *enricher, sb_envelope_t *env);

// --- Pure pieces ------------------------------------------------------------------------

typedef struct {
    char **ids; // new SMS message ids, decimal text, each once
    size_t n_ids;
    char *account_id;   // body.accountId as text, or NULL
    char *extension_id; // body.extensionId as text, or NULL
} sb_rc_changes_t;

// 1 when body is a message-store notification (body.changes is an array): *out holds its
// new SMS ids (maybe none). 0 when it is anything else (pass it on unchanged); *out is
// then empty. Release *out in both cases.
int sb_rc_changes_parse(const char *body, size_t len, sb_rc_changes_t *out);
void sb_rc_changes_release(sb_rc_changes_t *self);

// A message-store record as a row of extra.communications (a new reference), or NULL
// when it is not an SMS record with a direction and a sender. id is the id asked for.
json_t *sb_rc_sms_row(const json_t *record, const char *id, const char *default_cc);

#endif
