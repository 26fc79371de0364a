/* gmail - the enricher's handler for verified Gmail pushes (SPEC "Matching and mapping",
 * Email; issue 5). A push only says {emailAddress, historyId}; this turns it into the
 * e-mails themselves, as the `extra` frame of docs/topology.md:
 *
 *   1. decode the Pub/Sub envelope's message.data (standard base64 or base64url) into the
 *      mailbox address and historyId (a string or a number); a push that does not decode
 *      goes on as 'rejected' 'malformed_push'.
 *   2. queue it behind the mailbox's running job, if any (see "One mailbox at a time").
 *   3. read the mailbox row (refresh token, history_id checkpoint) from PostgreSQL; an
 *      unknown mailbox goes on as 'ignored' 'unknown_mailbox'.
 *   4. get an access token (sb_google_oauth: cached until expiry, renewed on a 401);
 *      invalid_grant -> 'failed' 'mailbox_reauth_required' and the mailbox's status
 *      becomes 'reauth_required' (written by the writer); no further token request for
 *      that refresh token for SB_GOOGLE_OAUTH_BLOCK_MS.
 *   5. users.history.list from the STORED checkpoint (never the push's historyId: pushes
 *      are dropped and reordered), historyTypes=messageAdded, every page; drafts are
 *      skipped. A push whose historyId is not newer than the checkpoint still does this
 *      one cheap call (an empty page) in case an earlier push was lost. 404 (checkpoint
 *      too old, or none stored) -> full sync: users.getProfile for the current historyId,
 *      then the GMAIL_FULL_SYNC_MAX_MESSAGES most recent INBOX messages, and
 *      "full_sync": true in the extra (the writer stores reason 'full_sync').
 *   6. users.messages.get?format=full for every added message, SB_GMAIL_GETS_PER_MAILBOX
 *      at a time (and ENRICHER_MAX_INFLIGHT over all mailboxes); a message deleted
 *      meanwhile (404) is skipped; each is parsed with sb_gmail_message_parse.
 *   7. pass the push on with extra {"communications":[...], "mailbox":{"email",
 *      "history_id": the last page's historyId, "full_sync"}}: direction 'outbound' when
 *      labelled SENT, match_email = the sender for inbound mail, the first recipient for
 *      outbound, occurred_at = internalDate.
 * Transient failures (5xx, 429, timeouts) are retried by fetch.c; when they persist, or
 * the database cannot be read, the push is dropped without being passed on, and the
 * ingress sends it again later. Tokens are never logged.
 *
 * One mailbox at a time. Two jobs of one mailbox would read the same checkpoint and
 * fetch the same messages twice; harmless (the writer's unique key makes the second
 * copy a 'duplicate') but wasteful. So:
 *   - within a process, pushes for a mailbox wait behind its running job, and when it
 *     ends ALL the waiting pushes become ONE job (its history.list started after each
 *     of them arrived, so it covers them): the first carries the e-mails, the others go
 *     on as 'ignored' 'covered_by_earlier_push'.
 *   - the next job waits (up to SB_GMAIL_CATCHUP_MS) until the writer has committed the
 *     previous job's checkpoint, instead of listing from the old one.
 *   - across replicas (compose --scale enricher=N; PUSH spreads pushes round-robin), a
 *     job holds a PostgreSQL session advisory lock on the mailbox while it runs
 *     (pg_try_advisory_lock, retried every SB_GMAIL_LOCK_RETRY_MS; after
 *     SB_GMAIL_LOCK_WAIT_MS it proceeds anyway: correctness never depended on the lock).
 * Nothing depends on how the ingress or verifier route events.
 *
 * The pure pieces below are what the unit tests call. */
#ifndef SB_GMAIL_H
#define SB_GMAIL_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "enricher.h"
#include "sb_err.h"
#include "sb_gmail_message.h"

#define SB_GMAIL_CATCHUP_MS 2000       // wait for the writer to commit the last checkpoint
#define SB_GMAIL_CATCHUP_POLL_MS 25    // how often the checkpoint is read meanwhile
#define SB_GMAIL_LOCK_RETRY_MS 50      // advisory lock held elsewhere: try again after this
#define SB_GMAIL_LOCK_WAIT_MS 30000    // then proceed without it
#define SB_GMAIL_HISTORY_PAGE_SIZE 500 // maxResults of history.list (Gmail's maximum)
#define SB_GMAIL_MAX_PAGES 1000        // pages of one history walk
#define SB_GMAIL_DB_RETRY_MS 1000      // after a failed connect, fail fast for this long
#define SB_GMAIL_DB_TIMEOUT_MS 3000    // statement_timeout of the mailbox queries
// messages.get in flight per mailbox: Gmail allows about 250 quota units per user and
// second and a get costs 5, so a mailbox with a thousand new messages must not take every
// slot of ENRICHER_MAX_INFLIGHT (and earn 429s); 10-50.
#define SB_GMAIL_GETS_PER_MAILBOX 25

// The handler table entry (enricher.h "EXTENSION POINT").
void *sb_gmail_handler_new(sb_enricher_t *enricher, sb_err_t *err);
void sb_gmail_handler_destroy(void **state_p);
void sb_gmail_handler_handle(void *state, sb_enricher_t *enricher, sb_envelope_t *env);

// --- Pure pieces ------------------------------------------------------------------------

// The Pub/Sub push body -> the mailbox address (as sent, trimmed) and the decimal
// historyId. 0, or -1 and err when the body, message.data or the decoded JSON is not
// what Gmail sends. Caller frees *email and *history_id.
int sb_gmail_pubsub_decode(const char *body, size_t len, char **email, char **history_id,
                           sb_err_t *err);

// A history id as JSON (string of digits or non-negative integer) -> its value; 0 or -1.
int sb_gmail_history_id_parse(const json_t *value, uint64_t *out);

// What one history.list page adds. ids grows (caller frees each and the array).
typedef struct {
    char **ids;     // message ids in history order, no repeats
    char **records; // the history record id that added each (same index)
    size_t n, cap;  // of ids and records
    json_t *seen;   // set of ids already taken (JSON object used as a set)
} sb_gmail_ids_t;
void sb_gmail_ids_init(sb_gmail_ids_t *ids);
void sb_gmail_ids_release(sb_gmail_ids_t *ids);
// Add a message id (ignored when it repeats or is not a plausible Gmail id). record may
// be NULL.
void sb_gmail_ids_add(sb_gmail_ids_t *ids, const char *id, const char *record);

// Parse a history.list page: add messagesAdded[].message.id (not those labelled DRAFT),
// set *next_page (NULL when last) and *history_id (the page's historyId, decimal). 0, or
// -1 and err when the page is not JSON of that shape. Caller frees the strings.
int sb_gmail_history_page(const char *json, size_t len, sb_gmail_ids_t *ids, char **next_page,
                          char **history_id, sb_err_t *err);
// Parse a messages.list page (the full-sync fallback): messages[].id.
int sb_gmail_message_list(const char *json, size_t len, sb_gmail_ids_t *ids, sb_err_t *err);
// Parse users.getProfile: its historyId (decimal). Caller frees.
int sb_gmail_profile_history(const char *json, size_t len, char **history_id, sb_err_t *err);

// One element of extra.communications for a parsed message (a new reference).
json_t *sb_gmail_comm_json(const sb_gmail_message_t *msg);
// The extra document (JSON text, caller frees). comms is stolen (may be NULL: none).
char *sb_gmail_extra(json_t *comms, const char *mailbox, const char *history_id, int full_sync);

#endif
