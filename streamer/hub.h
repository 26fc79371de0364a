/* hub - the streamer's fan-out: one writer (the LISTEN thread) publishes notifications,
 * any number of readers (one thread per SSE client) wait for the ones after their cursor.
 *
 * Memory is bounded: the hub keeps the last `capacity` events in a ring. A reader that
 * falls further behind (a slow client) is told so (SB_HUB_LAGGED) and moved to the oldest
 * event kept; the streamer then sends it a "resync" event, so the application reloads
 * what it shows instead of silently missing rows. Events are numbered from 1 in publish
 * order; with the process's boot epoch that number is the SSE event id, so a client that
 * reconnects with Last-Event-ID resumes where it was while the ring still holds it.
 *
 *   sb_hub_t *hub = sb_hub_new(1024);
 *   sb_hub_publish(hub, "communications", "{\"id\":1,...}");      // LISTEN thread
 *   uint64_t next = sb_hub_head(hub);                             // a new client
 *   sb_hub_event_t ev;
 *   switch (sb_hub_wait(hub, &next, 15000, &ev)) { ... }          // client thread
 *   sb_hub_close(hub);                                            // shutdown: wakes all
 *
 * Thread-safe: one mutex, one condition variable. Pure otherwise (unit-tested). */
#ifndef SB_STREAMER_HUB_H
#define SB_STREAMER_HUB_H
#include <stddef.h>
#include <stdint.h>

typedef struct sb_hub sb_hub_t;

typedef struct {
    uint64_t seq;  // 1, 2, ... in publish order
    char *channel; // NOTIFY channel, e.g. "communications"
    char *data;    // its payload (JSON from our triggers)
} sb_hub_event_t;

typedef enum {
    SB_HUB_EVENT = 1,   // *out filled (release it), *next advanced past it
    SB_HUB_TIMEOUT = 0, // nothing new within the timeout
    SB_HUB_LAGGED = 2,  // events after *next were dropped; *next is now the oldest kept
    SB_HUB_CLOSED = -1, // the hub is closing: end the stream
} sb_hub_result_t;

sb_hub_t *sb_hub_new(size_t capacity); // capacity >= 1
void sb_hub_destroy(sb_hub_t **self_p);

// Append an event (copied), dropping the oldest when full, and wake the readers.
// Returns its sequence number.
uint64_t sb_hub_publish(sb_hub_t *self, const char *channel, const char *data);

// The sequence number the next published event gets: a new reader's cursor.
uint64_t sb_hub_head(sb_hub_t *self);

// Wait up to timeout_ms for the event numbered *next (or a later one, see LAGGED).
sb_hub_result_t sb_hub_wait(sb_hub_t *self, uint64_t *next, int64_t timeout_ms,
                            sb_hub_event_t *out);

void sb_hub_event_release(sb_hub_event_t *ev);

// Wake every reader with SB_HUB_CLOSED, now and for every later wait.
void sb_hub_close(sb_hub_t *self);

#endif
