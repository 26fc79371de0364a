/* enricher - the stage between the verifier and the writer (docs/topology.md "With the
 * enricher"): it fetches what a notification only announces, so that the writer never
 * calls a provider. Events arrive on a PULL socket (ENRICHER_PULL_ENDPOINT) and leave on a
 * PUSH socket (ENRICHER_PUSH_ENDPOINT), each with at most one `extra` frame added.
 *
 * One thread runs everything: zmq_poll over the two sockets and the sockets of the HTTP
 * transfers (fetch.h, libcurl multi), plus timers. An event in hand never blocks the
 * others: a Gmail push that waits for a provider costs a few structures, not a thread.
 *
 * What happens to an event:
 *   - verdict not "accepted", or a source without a handler: passed on unchanged, at once.
 *   - otherwise the source's handler (table below) owns it until it calls
 *     sb_enricher_forward (with or without an extra) or sb_enricher_drop. A dropped event
 *     is not passed on and not acked, so the ingress sends it again later (its
 *     redelivery backoff): that is how transient provider failures are retried beyond
 *     the few quick retries of fetch.c.
 *
 * EXTENSION POINT: a source that needs a fetch adds one line to s_handlers[] in
 * enricher.c, {source, create, destroy, handle}. create(enricher, err) builds the
 * handler's state once at start (NULL and err stop the stage); handle(state, enricher,
 * env) takes ownership of env; destroy frees the state at exit, after the drain. A handler
 * uses sb_enricher_fetch() for HTTP (never blocking calls), sb_enricher_timer() for
 * delays, sb_enricher_config() for its settings, sb_enricher_metrics() for its series.
 * Today: "gmail_push" -> gmail.c, "ringcentral_sms" -> enrich_ringcentral.c (message-store
 * fetches). Handlers may pass an event through unchanged
 * (sb_enricher_forward with extra NULL) when it needs nothing.
 *
 * Backpressure: no new event is read while ENRICHER_MAX_EVENTS are in hand or events
 * wait to be sent; a full downstream (PUSH at its high-water mark) therefore reaches the
 * ingress, whose spool holds everything.
 * SIGTERM: stop reading, finish the events in hand (up to SB_ENRICHER_DRAIN_MS), send
 * them, exit 0. What is still unfinished then is dropped: the ingress resends it. */
#ifndef SB_ENRICHER_H
#define SB_ENRICHER_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "fetch.h"
#include "sb_config.h"
#include "sb_envelope.h"
#include "sb_err.h"
#include "sb_metrics.h"

#define SB_ENRICHER_DRAIN_MS 8000       // after SIGTERM, how long events in hand may take
#define SB_ENRICHER_HEARTBEAT_MS 1000   // heartbeat period
#define SB_ENRICHER_PUSH_LINGER_MS 2000 // queued events still flushed at exit
#define SB_ENRICHER_OUT_MAX 256         // events waiting to be sent before reading stops

typedef struct {
    char *log_level;             // LOG_LEVEL
    char *pull_endpoint;         // ENRICHER_PULL_ENDPOINT
    char *push_endpoint;         // ENRICHER_PUSH_ENDPOINT: every writer replica
    char *ack_endpoint;          // ACK_ENDPOINT: every ingress (heartbeats)
    char *metrics_listen;        // METRICS_LISTEN
    char *instance_id;           // INSTANCE_ID
    char *database_url;          // DATABASE_URL (secret): mailboxes are read from it
    char *google_client_id;      // GOOGLE_CLIENT_ID
    char *google_client_secret;  // GOOGLE_CLIENT_SECRET (secret)
    char *google_token_url;      // GOOGLE_TOKEN_URL
    char *gmail_api_base_url;    // GMAIL_API_BASE_URL
    char *secret_key;            // SWITCHBOARD_SECRET_KEY (secret): opens sealed refresh tokens
    int64_t gmail_full_sync_max; // GMAIL_FULL_SYNC_MAX_MESSAGES: recent INBOX messages taken
                                 // when the checkpoint is too old (history.list 404)
    int64_t gmail_max_messages;  // GMAIL_MAX_MESSAGES_PER_PUSH
    char *rc_server_url;         // RINGCENTRAL_SERVER_URL (for message-store fetches)
    char *rc_client_id;          // RINGCENTRAL_CLIENT_ID
    char *rc_client_secret;      // RINGCENTRAL_CLIENT_SECRET (secret)
    char *rc_jwt;                // RINGCENTRAL_JWT (secret)
    char *default_cc;            // DEFAULT_COUNTRY_CODE
    int64_t max_inflight;        // ENRICHER_MAX_INFLIGHT: HTTP requests at once
    int64_t max_events;          // ENRICHER_MAX_EVENTS: events in hand at once
    int64_t http_timeout_ms;     // ENRICHER_HTTP_TIMEOUT_MS: one attempt
    int64_t http_attempts;       // ENRICHER_HTTP_ATTEMPTS: tries of a transient failure
    int64_t http_backoff_ms;     // ENRICHER_HTTP_BACKOFF_MS: first wait between tries
} sb_enricher_config_t;

extern const sb_config_var_t sb_enricher_config_vars[];
extern const size_t sb_enricher_config_vars_n;

// Checks the table cannot express (LOG_LEVEL is a level ...). One line per problem to
// `problems`; 0 or -1.
int sb_enricher_config_check(const sb_enricher_config_t *conf, FILE *problems);

typedef struct sb_enricher sb_enricher_t;

// Binds/connects the sockets, starts the metrics server and builds every handler.
// conf is borrowed and must outlive the enricher. NULL and err on failure.
sb_enricher_t *sb_enricher_new(const sb_enricher_config_t *conf, sb_err_t *err);
void sb_enricher_destroy(sb_enricher_t **self_p);
// Run until *stop becomes non-zero, then drain (see above). 0 when everything in hand
// was finished, -1 when the drain timed out (what was left goes back to the ingress).
int sb_enricher_run(sb_enricher_t *self, volatile sig_atomic_t *stop);

// --- For handlers --------------------------------------------------------------------

// Pass env on, with extra (a JSON document, copied) in its extra frame, or unchanged when
// extra is NULL. Takes ownership of *env_p and sets it to NULL.
void sb_enricher_forward(sb_enricher_t *self, sb_envelope_t **env_p, const char *extra);
// Give env up without passing it on: the ingress will send it again. why is logged.
void sb_enricher_drop(sb_enricher_t *self, sb_envelope_t **env_p, const char *why);

// Start an HTTP request on the stage's client (fetch.h). done runs from the loop.
void sb_enricher_fetch(sb_enricher_t *self, sb_fetch_req_t *req, sb_fetch_done_fn *done, void *arg);

typedef void(sb_enricher_timer_fn)(void *arg);
// Run fn(arg) from the loop in delay_ms (0: next turn). One shot.
void sb_enricher_timer(sb_enricher_t *self, int64_t delay_ms, sb_enricher_timer_fn *fn, void *arg);

const sb_enricher_config_t *sb_enricher_config(const sb_enricher_t *self);
sb_metrics_t *sb_enricher_metrics(sb_enricher_t *self);
int sb_enricher_stopping(const sb_enricher_t *self); // 1 once a stop was asked for

#endif
