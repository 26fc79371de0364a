/* rc_subscriptions - RingCentral webhook subscriptions and their rows in
 * `ringcentral_subscriptions`, for sb-renewer and sbctl.
 *
 * A subscription delivers events to one address (our /api/webhooks/ringcentral/sms or
 * /call) with a verification token that RingCentral sends in every request's
 * Verification-Token header, and the verifier checks against
 * RINGCENTRAL_VERIFICATION_TOKEN. It lasts expiresIn (7 days), and RingCentral may set it
 * Blacklisted or Suspended after delivery failures, after which nothing arrives.
 *
 * The API (sb_ringcentral, the JWT bearer token, retries):
 *   create  POST   /restapi/v1.0/subscription  {eventFilters, deliveryMode{transportType
 *                  WebHook, address, verificationToken}, expiresIn}
 *   renew   POST   /restapi/v1.0/subscription/{id}/renew
 *   get     GET    /restapi/v1.0/subscription/{id}
 *   delete  DELETE /restapi/v1.0/subscription/{id}
 *
 * One row (sb_rc_sub_renew), claimed with the advisory lock (SB_RENEWER_LOCK_SUBSCRIPTION,
 * id) and read again under it, so two renewer replicas never both act on it:
 *   expiring within renew_before (or forced): renew. Active -> new expires_at.
 *   otherwise, when the last check is older than check_interval: get, for the status.
 *   404, Blacklisted or Suspended (from renew, or from get after a renew that failed with a
 *   4xx): re-create with the same filters (the ones we asked for, "~" kept), address and
 *   verification token; in one transaction insert the new row and set the old one
 *   'Retired' (replaced_by = new id); then delete the old one at RingCentral (best effort).
 *   any other failure: renew_failures + 1, renew_after = now() + backoff.
 *
 * The verification token (a secret; migration 0005): stored only sealed with
 * SWITCHBOARD_SECRET_KEY (context "ringcentral_subscriptions.verification_token:<id>"),
 * else not at all; its SHA-256 is stored either way. A re-creation uses the sealed token,
 * else the configured RINGCENTRAL_VERIFICATION_TOKEN (the value the verifier checks; a
 * fingerprint that differs is reported in the result), else it fails. */
#ifndef SB_RC_SUBSCRIPTIONS_H
#define SB_RC_SUBSCRIPTIONS_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>
#include "sb_err.h"
#include "sb_ringcentral.h"
#include "sb_secretbox.h"

#define SB_RC_SUB_EXPIRES_IN_S 604800 // what we ask for: 7 days, RingCentral's maximum
#define SB_RC_SUB_TOKEN_CHARS 32      // random characters of a generated verification token
#define SB_RC_SUB_TOKEN_PREFIX "vt-"

typedef enum { SB_RC_SUB_SMS, SB_RC_SUB_CALL } sb_rc_sub_kind_t;

// --- Pure pieces (unit tests) ------------------------------------------------------------

// The event filters of a kind (shared/fixtures/ringcentral/subscription-create-request*.json):
// SMS: instant SMS, outbound SMS in the message store and the expiry reminder; calls:
// telephony sessions and the reminder. A new JSON array (caller decrefs).
json_t *sb_rc_sub_filters(sb_rc_sub_kind_t kind);
// "sms" or "call" from stored filters (telephony sessions: call), for listings.
const char *sb_rc_sub_kind_name(const json_t *filters);
// Filters fit for a new subscription: a filter naming a subscription id
// ("/restapi/v1.0/subscription/<id>?threshold=...") names "~" instead. New array.
json_t *sb_rc_sub_filters_portable(const json_t *filters);
// The create request body. Caller frees (it holds the token: wipe it).
char *sb_rc_sub_create_body(const json_t *filters, const char *address, const char *token);
// "vt-" + SB_RC_SUB_TOKEN_CHARS random [A-Za-z0-9]. Caller frees.
char *sb_rc_sub_token_generate(void);
// Lower-case hex SHA-256 of token (65 bytes with the NUL) into out.
void sb_rc_sub_token_fingerprint(const char *token, char out[65]);

typedef struct {
    char id[128];
    char status[32];          // "Active", "Blacklisted", "Suspended" ...
    char expiration_time[40]; // ISO 8601 as sent, "" when absent
} sb_rc_sub_info_t;
// A SubscriptionInfo answer. 0, or -1 and err.
int sb_rc_sub_parse(const char *body, size_t len, sb_rc_sub_info_t *info, sb_err_t *err);
// Whether a status means "nothing is delivered any more": re-create.
int sb_rc_sub_status_dead(const char *status);

// --- The rows ----------------------------------------------------------------------------

typedef struct {
    PGconn *db;                   // one session: the advisory lock lives on it
    sb_ringcentral_t *rc;         // the API client
    const sb_secretbox_t *box;    // SWITCHBOARD_SECRET_KEY, or NULL
    const char *configured_token; // RINGCENTRAL_VERIFICATION_TOKEN, or NULL
    int64_t renew_before_ms;      // RENEW_BEFORE
    int64_t check_interval_ms;    // RENEW_CHECK_INTERVAL
    int64_t backoff_min_ms;       // RENEW_BACKOFF_MIN
    int64_t backoff_max_ms;       // RENEW_BACKOFF_MAX
} sb_rc_sub_env_t;

typedef enum {
    SB_RC_SUB_RENEWED,   // renewed: new expiry stored
    SB_RC_SUB_CHECKED,   // status read, nothing to do
    SB_RC_SUB_RECREATED, // replaced by new_id
    SB_RC_SUB_NOT_DUE,   // nothing to do (or another replica did it)
    SB_RC_SUB_BUSY,      // another renewer holds it right now
    SB_RC_SUB_FAILED,    // backoff set; why says what failed
    SB_RC_SUB_NOT_FOUND, // no such row (sbctl with a wrong id)
    SB_RC_SUB_DELETED,   // sb_rc_sub_delete: gone at RingCentral and from the table
} sb_rc_sub_outcome_t;

typedef struct {
    sb_rc_sub_outcome_t outcome;
    char id[128];              // the row acted on
    char new_id[128];          // RECREATED: the new subscription
    char status[32];           // RingCentral's status seen (renew, get or create)
    char expiration_time[40];  // RENEWED, CHECKED, RECREATED: as RingCentral sent it
    int failures;              // renew_failures after this try
    int64_t retry_in_ms;       // FAILED: the backoff chosen
    char why[SB_ERR_MSG_MAX];  // RECREATED: why; FAILED: what failed
    char note[SB_ERR_MSG_MAX]; // something to tell the operator ("" if nothing)
} sb_rc_sub_result_t;

// Ids of the subscriptions that may be due (expiring within renew_before, or last checked
// longer than check_interval ago; retired ones never), soonest expiry first. *ids is
// NULL-terminated (sb_renewer_strv_free). 0, or -1 with err.
int sb_rc_sub_due(const sb_rc_sub_env_t *env, char ***ids, size_t *n, sb_err_t *err);

// Renew, check or re-create one row as described above. force: renew now whatever its
// expiry and backoff (sbctl subscription renew). 0 with res, or -1 with err for database
// trouble.
int sb_rc_sub_renew(const sb_rc_sub_env_t *env, const char *id, int force, sb_rc_sub_result_t *res,
                    sb_err_t *err);

// Create a subscription of kind delivering to address with token, and its row. 0 with res
// (outcome RECREATED with new_id, or FAILED with why and nothing stored), or -1 with err
// when the database refused the row (the new subscription is then deleted again).
int sb_rc_sub_create(const sb_rc_sub_env_t *env, sb_rc_sub_kind_t kind, const char *address,
                     const char *token, sb_rc_sub_result_t *res, sb_err_t *err);

// Delete the subscription at RingCentral (404 counts as done) and its row. 0 with res
// (DELETED; NOT_FOUND when neither knew it; FAILED when RingCentral refused, and the row
// stays), or -1 with err.
int sb_rc_sub_delete(const sb_rc_sub_env_t *env, const char *id, sb_rc_sub_result_t *res,
                     sb_err_t *err);

#endif
