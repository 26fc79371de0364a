/* sse - the text/event-stream side of sb-streamer, without sockets (unit-tested):
 * framing of an event, the bearer-token check, Last-Event-ID and the customer filter.
 *
 * An event on the wire (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 *
 *     id: 6a1f03c2-42            boot epoch of this streamer, "-", hub sequence number
 *     event: communications      the NOTIFY channel (communications, customers_backfill,
 *     data: {"id": 17, ...}      outbox_status) or "resync"; the payload, one data line
 *                                per line of it
 *     (blank line)
 *
 * A comment line (": keep-alive") goes out when nothing else did for a while, so that
 * proxies and the client see a live connection. */
#ifndef SB_STREAMER_SSE_H
#define SB_STREAMER_SSE_H
#include <stddef.h>
#include <stdint.h>
#include "hub.h"

#define SB_SSE_EPOCH_MAX 32 // bytes of an epoch string, NUL included

// The framed event. Caller frees; *len is its length.
char *sb_sse_event(const char *epoch, uint64_t seq, const char *event, const char *data,
                   size_t *len);

// Does the request carry the token: "Authorization: Bearer <token>" (authorization is the
// header value or NULL) or "?token=<token>" (query_token or NULL)? Compared in constant
// time over SHA-256 digests, so neither the value nor its length leaks. An empty
// configured token matches nothing.
int sb_sse_auth_ok(const char *authorization, const char *query_token, const char *token);

// A Last-Event-ID of this streamer's epoch: 1 with *seq (the last event the client had),
// 0 for anything else (another boot, garbage, NULL).
int sb_sse_resume(const char *last_event_id, const char *epoch, uint64_t *seq);

// Whether an event's JSON data is about customer_id (its "customer_id" member); every
// event passes when customer_id is 0. A "resync" event passes always (the caller's
// business).
int sb_sse_matches(const char *data, int64_t customer_id);

#endif
