/* db_batch - the writer's set-wise statement, used by db.c: one "sb_batch" statement
 * stores a whole run of consecutive plain events of a batch (instant SMS, and the
 * rejected and ignored events that store no communication), whatever their number.
 * Every column of the run goes as one binary array parameter (pg_array.h); the
 * statement unnests them WITH ORDINALITY and answers one row (event_id, outcome) per
 * event that got a webhook_events row. An event that gets no row is a redelivery (its id
 * was in webhook_events already, or earlier in the same run).
 *
 * It stores exactly what db.c's per-event statements store for the same events in the
 * same order (sb_comm and sb_event, one after the other):
 *   - the first copy of an event id is the one that counts; an id already in
 *     webhook_events stores nothing;
 *   - each (provider, channel, external_id) is inserted by the first new event that
 *     carries it, which is 'stored'; every other new event with that key is
 *     'duplicate' and points at the row that is there or was just inserted;
 *   - the customer is the lowest id whose phone_e164 equals the event's match_phone or
 *     whose email_norm equals its match_email;
 *   - ids are drawn in batch order, so they follow it as before.
 * What differs is only sequence gaps: the per-event statements draw an id even for a row
 * that ON CONFLICT then skips, this one only for each key's first new event. Rows go
 * in batch order, so the NOTIFYs of communications come in the same order as before.
 * When the statement fails on its data it does not say which event broke it; db.c then
 * writes the batch again one statement per event, which does. */
#ifndef SB_DB_BATCH_H
#define SB_DB_BATCH_H
#include <stddef.h>
#include <libpq-fe.h>
#include "db.h"
#include "pg_array.h"

#define SB_DB_BATCH_PARAMS 20

extern const char sb_db_batch_sql[];
extern const Oid sb_db_batch_types[SB_DB_BATCH_PARAMS];

// The parameters of one run; arrays are owned, values point into them.
typedef struct {
    sb_pg_array_t cols[SB_DB_BATCH_PARAMS];
    const char *values[SB_DB_BATCH_PARAMS];
    int lengths[SB_DB_BATCH_PARAMS];
    int formats[SB_DB_BATCH_PARAMS]; // all 1: binary
} sb_db_batch_params_t;

// 1 when ev can be stored by the set-wise statement: a communication (SB_MAP_COMMUNICATION),
// or an ignored or rejected event.
int sb_db_batch_fits(const sb_db_event_t *ev);
// Fill p from events[0..n) (each one fits); release it after sending.
void sb_db_batch_params(sb_db_batch_params_t *p, const sb_db_event_t *events, size_t n);
void sb_db_batch_params_release(sb_db_batch_params_t *p);

#endif
