/* map_ringcentral - what the writer stores for one verified event, decided without a
 * database (SPEC "Matching and mapping"): either a communication row plus the address
 * to match a customer on, or an outcome ('ignored', 'rejected') with a reason.
 *
 *   sb_map_t map;
 *   sb_map_event(env, "1", &map);  // never fails: every event gets a verdict
 *   ... map.kind, map.reason, map.comm ...
 *   sb_map_release(&map);
 *
 * Decisions, in order:
 *   verifier verdict "rejected"          -> rejected, the verifier's reason
 *   verdict not "accepted"               -> rejected 'not_verified' (fail closed)
 *   an `extra` frame from the enricher   -> SB_MAP_EXTRA (map_extra.h), whatever the source
 *   source ringcentral_call              -> SB_MAP_CALL or ignored/rejected (map_call.h)
 *   source gmail_push                    -> ignored 'gmail_enricher_not_yet_supported'
 *   other sources                        -> rejected 'unknown_source'
 *   ringcentral_sms: body not JSON       -> rejected 'malformed_json'
 *     event ".../subscription/..."       -> ignored 'subscription_notification'
 *     body.changes[] (message store)     -> ignored 'message_store_change_needs_fetch'
 *     body.type other than "SMS"         -> ignored 'unsupported_message_type'
 *     no body object, id or from         -> rejected 'unrecognized_payload'
 *     otherwise                          -> a communication (instant-SMS shape)
 * RingCentral ids are 64-bit integers above 2^53, sent as JSON strings or numbers: they
 * are kept as exact text; a real number as id is refused. */
#ifndef SB_MAP_RINGCENTRAL_H
#define SB_MAP_RINGCENTRAL_H
#include <stddef.h>
#include "sb_envelope.h"

typedef enum {
    SB_MAP_COMMUNICATION, // comm is filled: insert it (the row becomes 'stored' or 'duplicate')
    SB_MAP_IGNORED,       // valid but nothing to store yet; reason says why
    SB_MAP_REJECTED,      // failed verification or unusable payload; reason says why
    SB_MAP_EXTRA,         // the enricher's rows: extra is filled (map_extra.h)
    SB_MAP_CALL,          // a telephony-session event: call and comm.external_id (map_call.h)
} sb_map_kind_t;

// One communications row. Strings are owned (NULL = SQL NULL); the first three are
// static literals.
typedef struct {
    const char *channel;   // "sms", "call", "email"
    const char *direction; // "inbound", "outbound"
    const char *provider;  // "ringcentral", "gmail"
    char *external_id;     // provider message id, exact text
    char *thread_id;       // conversation id, or NULL
    char *from_address;    // E.164 when the sender is a phone number, else the raw text
    char *to_address;      // first recipient, normalised the same way, or NULL
    char *subject;         // NULL for SMS (the text is the body)
    char *body;            // message text, or NULL
    char *status;          // provider status ("Received", "Queued" ...), or NULL
    char *occurred_at;     // ISO-8601 text for timestamptz, or NULL (use received_at)
    char *match_phone;     // E.164 to compare with customers.phone_e164, or NULL
    char *match_email;     // normalised address to compare with customers.email_norm, or NULL
} sb_comm_t;

// The row's columns as the writer's statements take them, channel to match_email.
#define SB_COMM_COLUMNS 13
void sb_comm_columns(const sb_comm_t *c, const char *out[SB_COMM_COLUMNS]);

typedef struct {
    sb_map_kind_t kind;
    char *reason;               // owned; NULL for a communication
    sb_comm_t comm;             // filled only for SB_MAP_COMMUNICATION
    struct sb_map_extra *extra; // owned; filled only for SB_MAP_EXTRA
    char *call;                 // owned JSON party states; filled only for SB_MAP_CALL
} sb_map_t;

// Decide what to store for env. default_cc is DEFAULT_COUNTRY_CODE (digits). Fills *out
// (release it with sb_map_release); never fails.
void sb_map_event(const sb_envelope_t *env, const char *default_cc, sb_map_t *out);

// Map the raw body of a verified ringcentral_sms event.
void sb_map_ringcentral_sms(const char *body, size_t len, const char *default_cc, sb_map_t *out);

// 1 when t is an ISO-8601 date-time PostgreSQL takes for timestamptz, else 0.
int sb_map_timestamp_ok(const char *t);

// Free what *self owns and zero it; safe on a zeroed or released map.
void sb_map_release(sb_map_t *self);

#endif
