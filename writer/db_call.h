/* db_call - the writer's statement for telephony-session events (map_call.h), used by
 * db.c: one "sb_call" statement per event, which calls sb_call_event() of
 * writer/migrations/0003_calls.sql (store the party states, derive the call row, write
 * the webhook_events row) in the batch's transaction.
 *
 * Two writers may hold the same sessions in their batches in opposite orders. Each
 * statement locks its own session (a transaction-scoped advisory lock), so without care
 * they could deadlock; sb_db_call_locks hands the FIRST call statement of a batch every
 * call session of the batch, which it locks in one sorted pass: all writers then take
 * their locks in the same order and no cycle can form. */
#ifndef SB_DB_CALL_H
#define SB_DB_CALL_H
#include <stddef.h>
#include <libpq-fe.h>
#include "db.h"

#define SB_DB_CALL_PARAMS 7 // $1..$5 the webhook_events row, $6 the states, $7 the locks

extern const char sb_db_call_sql[];
extern const Oid sb_db_call_types[SB_DB_CALL_PARAMS];

// Set call_locks of the batch's first call event to a JSON array of every call session
// in events[0..n) and return that text (the caller frees it after sending the batch), or
// NULL when the batch has no call event. Other events get call_locks NULL.
char *sb_db_call_locks(sb_db_event_t *events, size_t n);

#endif
