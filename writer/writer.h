/* writer - the last stage: verified events in, PostgreSQL rows and acks out.
 *
 * Loop (one thread, sb_writer_run):
 *   1. block for one event on the PULL socket, then take whatever else is already queued,
 *      up to WRITER_BATCH_ROWS (and SB_WRITER_BATCH_BYTES of bodies);
 *   2. map each event (map_ringcentral.h) and store the batch in ONE transaction (db.h);
 *   3. after COMMIT, send every committed event id back to its ingress (sb_ack_send).
 *      An ack means only "committed": rejected, ignored, duplicate and redelivered events
 *      are acked too, or the ingress would resend them for ever.
 * A batch that fails on its data is stored again without the event whose statement
 * failed; that event is tried alone and, if it fails again, stored as outcome 'failed'
 * with the SQLSTATE, so a poison event never blocks the pipeline. When the database is
 * away the batch is kept and retried after a backoff (100 ms doubling to 5 s, with
 * jitter); no new event is read meanwhile, so ZeroMQ's high-water marks push back up to
 * the ingress, whose spool holds everything.
 * A heartbeat ({"db_ok":..}) goes to every ingress about once a second throughout.
 * SIGTERM: the batch in hand is committed and acked, then sb_writer_run returns. */
#ifndef SB_WRITER_H
#define SB_WRITER_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "sb_config.h"
#include "sb_err.h"
#include "sb_metrics.h"

#define SB_WRITER_BATCH_BYTES (16 * 1024 * 1024) // body bytes per transaction; 1-64 MiB
#define SB_WRITER_LINGER_MS 2         // wait this long for more events to fill a small batch
#define SB_WRITER_HEARTBEAT_MS 1000   // heartbeat period
#define SB_WRITER_BACKOFF_MIN_MS 100  // first retry after a database failure
#define SB_WRITER_BACKOFF_MAX_MS 5000 // cap of the doubling backoff

typedef struct {
    char *database_url;   // DATABASE_URL (secret: may hold a password)
    char *pull_endpoint;  // WRITER_PULL_ENDPOINT
    char *ack_endpoint;   // ACK_ENDPOINT, comma-separated CZMQ endpoints
    char *metrics_listen; // METRICS_LISTEN
    char *instance_id;    // INSTANCE_ID, may be NULL
    int64_t batch_rows;   // WRITER_BATCH_ROWS
    char *default_cc;     // DEFAULT_COUNTRY_CODE, digits
    char *log_level;      // LOG_LEVEL
} sb_writer_config_t;

extern const sb_config_var_t sb_writer_config_vars[];
extern const size_t sb_writer_config_vars_n;

// Checks the table cannot express (DEFAULT_COUNTRY_CODE is 1-3 digits, LOG_LEVEL is a
// level). Writes one line per problem to `problems`; 0 or -1.
int sb_writer_config_check(const sb_writer_config_t *conf, FILE *problems);

typedef struct sb_writer sb_writer_t;

// Bind and connect the sockets and register the metrics; the database is connected by
// sb_writer_run, so a writer started before PostgreSQL waits for it. conf and metrics
// are borrowed and must outlive the writer.
sb_writer_t *sb_writer_new(const sb_writer_config_t *conf, sb_metrics_t *metrics, sb_err_t *err);
void sb_writer_destroy(sb_writer_t **self_p);

// Run until *stop becomes non-zero (a signal handler sets it). 0 on a clean stop, -1
// with err when the migrations cannot be applied (not a connection problem).
int sb_writer_run(sb_writer_t *self, volatile sig_atomic_t *stop, sb_err_t *err);

// Commit the batch in hand and ack it (the loop's step 2 and 3). 0 when the batch is
// done (committed, or its poison events stored as 'failed'), -1 when the database is
// unavailable: the batch is kept for the next call.
int sb_writer_commit(sb_writer_t *self, sb_err_t *err);

#endif
