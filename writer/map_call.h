/* map_call - a RingCentral telephony-session event as the party states the writer stores
 * (SPEC "Matching and mapping", Calls). Pure, like map_ringcentral: no database.
 *
 *   sb_map_t map;
 *   sb_map_ringcentral_call(body, len, "1", &map);  // never fails
 *   if (map.kind == SB_MAP_CALL)  // map.comm.external_id = telephonySessionId,
 *       ... map.call ...          // {"session": "s-..", "parties": [..]} as JSON text
 *
 * The writer does not merge an event into the call row: it stores each party state
 * once, keyed by (session, party id, sequence), and derives the row from all of them in
 * SQL (writer/migrations/0003_calls.sql, sb_call_event), so arrival order, duplicates and
 * batch boundaries cannot change the result. Each party becomes
 *   {"party_id", "sequence", "event_time", "status_code", "direction": "inbound"|
 *    "outbound", "ours": the party has an extensionId, "from_address", "to_address":
 *    E.164 when a phone number (else the raw number, e.g. an extension), "missed"}
 *
 * Decisions, in order:
 *   body not JSON                               -> rejected 'malformed_json'
 *   not an object                               -> rejected 'unrecognized_payload'
 *   event ".../subscription/..."                -> ignored 'subscription_notification'
 *   no body object                              -> rejected 'unrecognized_payload'
 *   body.telephonySessionId missing or empty    -> rejected 'missing_telephony_session_id'
 *   body.sequence not an integer >= 0           -> rejected 'missing_sequence'
 *   body.eventTime (else the top-level
 *     timestamp) not an ISO-8601 time           -> rejected 'invalid_event_time'
 *   body.parties missing or empty               -> ignored 'no_parties'
 *   no party with an id, a status code and an
 *     Inbound/Outbound direction                -> rejected 'unrecognized_party'
 *   such parties, but none with a from or to
 *     phone (or extension) number               -> ignored 'party_without_phone_number'
 *   otherwise                                   -> SB_MAP_CALL with the usable parties
 * The receive time is never used as an event time: a provider retry of the same event
 * must map to the same state. */
#ifndef SB_MAP_CALL_H
#define SB_MAP_CALL_H
#include <stddef.h>
#include "map_ringcentral.h"

#define SB_MAP_CALL_ID_MAX 128     // longest session or party id kept
#define SB_MAP_CALL_PARTIES_MAX 64 // parties read from one event; more are ignored

// Map the raw body of a verified ringcentral_call event into *out (release it with
// sb_map_release). default_cc is DEFAULT_COUNTRY_CODE (digits).
void sb_map_ringcentral_call(const char *body, size_t len, const char *default_cc, sb_map_t *out);

#endif
