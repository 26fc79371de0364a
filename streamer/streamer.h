/* streamer - sb-streamer: the application's real-time feed (docs/SENDER.md "Live
 * updates"). It LISTENs on the database's notification channels and relays every
 * notification to the connected browsers as Server-Sent Events:
 *
 *     GET /api/communications/stream        Authorization: Bearer <STREAM_TOKEN>
 *                                           (or ?token=, for EventSource in browsers)
 *         [?customer_id=42]                 only the events about that customer
 *         [Last-Event-ID: <id>]             resume after that event while it is kept
 *     -> 200 text/event-stream: "communications" (a new or changed SMS, call or e-mail),
 *        "customers_backfill", "outbox_status", and "resync" when events may have been
 *        missed (the client was too slow, or the database connection was lost): reload.
 *        401 without the token, 404 elsewhere, 405 for other methods, 503 with
 *        Retry-After when STREAM_MAX_CLIENTS streams are open.
 *
 * Threads: libmicrohttpd runs one thread per connection (a stream blocks in its content
 * callback, waiting on the hub); one thread holds the LISTEN connection and reconnects
 * with backoff. Memory is bounded by STREAM_MAX_CLIENTS and STREAM_BACKLOG events
 * (hub.h). The stage keeps the ingress thin: no webhook path shares its process. */
#ifndef SB_STREAMER_H
#define SB_STREAMER_H
#include <stdint.h>
#include <stdio.h>
#include "sb_config.h"
#include "sb_err.h"

#define SB_STREAMER_PATH "/api/communications/stream"
#define SB_STREAMER_RETRY_MS 2000         // the reconnection delay suggested to clients
#define SB_STREAMER_RECONNECT_MAX_MS 5000 // longest wait between database connections
#define SB_STREAMER_CONN_TIMEOUT_S 60     // idle HTTP connections (streams send heartbeats)
#define SB_STREAMER_SPARE_CONNECTIONS 16  // beyond the clients: room to answer 503

typedef struct {
    char *log_level;      // LOG_LEVEL
    char *database_url;   // DATABASE_URL (secret)
    char *listen;         // STREAM_LISTEN
    char *token;          // STREAM_TOKEN (secret)
    char *metrics_listen; // METRICS_LISTEN
    char *allow_origin;   // STREAM_ALLOW_ORIGIN: Access-Control-Allow-Origin, or NULL
    int64_t max_clients;  // STREAM_MAX_CLIENTS
    int64_t heartbeat_ms; // STREAM_HEARTBEAT_MS
    int64_t backlog;      // STREAM_BACKLOG: events kept for slow or resuming clients
} sb_streamer_config_t;

extern const sb_config_var_t sb_streamer_config_vars[];
extern const size_t sb_streamer_config_vars_n;

// Checks the table cannot express; one line per problem to `problems`; 0 or -1.
int sb_streamer_config_check(const sb_streamer_config_t *conf, FILE *problems);

typedef struct sb_streamer sb_streamer_t;

// Starts the HTTP server, the metrics server and the LISTEN thread. Borrows conf.
sb_streamer_t *sb_streamer_new(const sb_streamer_config_t *conf, sb_err_t *err);
// Ends every stream (clients see the end and reconnect elsewhere), stops the threads.
void sb_streamer_destroy(sb_streamer_t **self_p);

#endif
