/* db - the writer's PostgreSQL connection and the statements it runs.
 *
 *   sb_db_t *db = sb_db_new(database_url);
 *   sb_db_connect(db, tick, arg, &err);      // non-blocking connect; tick() runs meanwhile
 *   sb_db_write(db, events, n, &err);        // one transaction for the whole batch
 *   sb_db_destroy(&db);
 *
 * sb_db_write sends BEGIN, the batch's statements and COMMIT through libpq's pipeline
 * mode, so a batch costs one round trip and one commit (DESIGN "Numbers"). Each run of
 * consecutive plain events (instant SMS, rejected, ignored) is ONE set-wise statement
 * whatever its length (db_batch.h); a call, an enriched event or a run of one gets a
 * statement of its own, in batch order. Either way an event inserts its webhook_events
 * row and, for a communication, the communications row matched to the lowest customer
 * id on phone_e164 or email_norm; an event id already in webhook_events (redelivery)
 * inserts nothing. Everything is idempotent, so retrying a batch whose COMMIT result was
 * lost is harmless. When a set-wise statement fails on its data, the batch is written
 * again one statement per event, which names the poison (SB_DB_DATA below).
 *
 * The result says what the caller should do next:
 *   SB_DB_OK         committed; each event's outcome is set
 *   SB_DB_DATA       one statement failed on its data (SQLSTATE 22, 23, 42 ...): nothing
 *                    was committed; retry the events one by one to find the poison
 *   SB_DB_TRANSIENT  deadlock, serialisation, lock or resource trouble: retry as it is
 *   SB_DB_CONN       the connection is lost (or the server is shutting down): reconnect
 * err gets "<SQLSTATE>: <primary message>" (no parameters, no connection string). */
#ifndef SB_DB_H
#define SB_DB_H
#include <stddef.h>
#include <libpq-fe.h>
#include "map_ringcentral.h"
#include "sb_envelope.h"
#include "sb_err.h"

#define SB_DB_CONNECT_TIMEOUT_MS 5000 // give up one connection attempt after this

typedef enum { SB_DB_OK = 0, SB_DB_DATA, SB_DB_TRANSIENT, SB_DB_CONN } sb_db_status_t;

typedef struct {
    const sb_envelope_t *env; // borrowed: event id, source, received_at, headers, body
    const sb_map_t *map;      // borrowed: what to store
    const char *outcome;      // out after SB_DB_OK: the stored outcome ("stored", "duplicate",
                              // "rejected", "ignored", "failed"), or NULL when the event id
                              // was already in webhook_events (a redelivery)
    int failed;               // out after SB_DB_DATA: this event's statement failed
    const char *call_locks;   // set by sb_db_write: the batch's call sessions, on its first
                              // call event only (db_call.h)
} sb_db_event_t;

typedef struct sb_db sb_db_t;
// Called about every 100 ms while connecting; a non-zero return abandons the attempt
// (a shutdown must not wait for a host that does not answer).
typedef int (*sb_db_tick_fn)(void *arg);

sb_db_t *sb_db_new(const char *url); // copies url; does not connect
void sb_db_destroy(sb_db_t **self_p);

// (Re)connect and prepare the statements. 0, or -1 with err (the server's or libpq's
// first line; libpq never prints the password).
int sb_db_connect(sb_db_t *self, sb_db_tick_fn tick, void *arg, sb_err_t *err);
void sb_db_disconnect(sb_db_t *self);
int sb_db_connected(const sb_db_t *self); // 1 when the connection looks usable
PGconn *sb_db_conn(sb_db_t *self);        // borrowed, or NULL

// 1 (the default): runs of plain events go set-wise; 0: one statement per event, as the
// writer did before. For tests and measurements that compare the two.
void sb_db_set_setwise(sb_db_t *self, int on);

// Store n events in one transaction (see above).
sb_db_status_t sb_db_write(sb_db_t *self, sb_db_event_t *events, size_t n, sb_err_t *err);
// Store one event as outcome 'failed' with reason, and no communication: the last resort
// for an event whose statement fails on its own.
sb_db_status_t sb_db_write_failed(sb_db_t *self, sb_db_event_t *event, const char *reason,
                                  sb_err_t *err);

// "<SQLSTATE>: <primary message>" of res, or libpq's first line when there is none.
void sb_db_describe_error(const PGconn *conn, const PGresult *res, char *out, size_t size);
// The status a failed result calls for (see above); res may be NULL.
sb_db_status_t sb_db_classify(const PGconn *conn, const PGresult *res);

#endif
