/* map_extra - the writer's side of the enricher's `extra` frame (docs/topology.md "What
 * the enricher adds"): the JSON document becomes what one event stores, decided without
 * a database, like map_ringcentral.
 *
 *   {"communications": [ {channel, direction, provider, external_id, thread_id,
 *                         from_address, to_address, subject, body, status, occurred_at,
 *                         match_email, match_phone}, ... ],
 *    "mailbox": {"email": "...", "history_id": "1843562", "full_sync": false,
 *                "status": "reauth_required"},
 *    "outcome": "ignored", "reason": "unknown_mailbox"}
 *
 * Every member is optional. The result (sb_map_extra_t) is stored by one statement
 * (db.c, "sb_extra") in the batch's transaction:
 *   - rows: each communication, normalised and checked, as a canonical JSON array with
 *     an "ord" member (its position); an external id that repeats within the event is
 *     kept once. Each row is inserted like a mapped SMS (ON CONFLICT: already there).
 *   - outcome of the webhook_events row: 'stored' when at least one row was new,
 *     'duplicate' when all were there; with no rows, the explicit outcome ('ignored',
 *     'rejected' or 'failed'), else 'ignored'. communication_id = the first row's id.
 *   - reason: the explicit one; else 'full_sync' when the enricher had to fall back to
 *     a full listing; else 'no_new_messages' when there are no rows; else NULL.
 *   - mailbox: mailboxes.history_id = GREATEST(history_id, mailbox.history_id) and, when
 *     given, mailboxes.status = mailbox.status, in the same transaction as the rows.
 * Matching: match_email goes through sb_email_normalize ("Maria Lopez <Maria@X.com>" ->
 * "maria@x.com") and is compared with customers.email_norm; match_phone goes through
 * sb_phone_e164 with DEFAULT_COUNTRY_CODE and is compared with customers.phone_e164; the
 * lowest matching customer id wins.
 * A document that breaks these rules (not JSON, a row without a valid channel,
 * direction, provider or external_id, a history_id that is not a decimal number ...)
 * is the enricher's bug, not the sender's: the event is stored as 'failed' with reason
 * 'malformed_extra' and nothing else (the checkpoint stays, so no e-mail is skipped). */
#ifndef SB_MAP_EXTRA_H
#define SB_MAP_EXTRA_H
#include <stddef.h>
#include "sb_envelope.h"

#define SB_MAP_EXTRA_MAX_ROWS 10000         // communications per event; more is malformed
#define SB_MAP_EXTRA_ID_MAX 256             // bytes of an external_id
#define SB_MAP_EXTRA_MAX_BYTES (256u << 20) // an extra frame larger than this is malformed

typedef struct sb_map_extra {
    char *rows_json;      // JSON array for the statement ("[]" when none); never NULL
    size_t n_rows;        // rows in it
    char *mailbox_email;  // mailbox.email, or NULL: no mailbox update
    char *history_id;     // decimal text, or NULL: history_id untouched
    char *mailbox_status; // mailbox.status, or NULL: status untouched
    const char *outcome;  // static: the outcome when no row is stored
    char *reason;         // see above, or NULL
} sb_map_extra_t;

// Parse env->extra (len bytes of JSON text). default_cc is DEFAULT_COUNTRY_CODE. Never
// fails: a malformed document gives outcome 'failed', reason 'malformed_extra'. Returns
// a new object (sb_map_extra_destroy).
sb_map_extra_t *sb_map_extra_parse(const char *extra, size_t len, const char *default_cc);
void sb_map_extra_destroy(sb_map_extra_t **self_p);

#endif
