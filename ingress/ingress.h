/* sb_ingress - the HTTP edge: answers webhooks only once they are durable in the spool,
 * pushes them to the verifiers, takes acks and heartbeats back, redelivers what is not
 * acknowledged in time (DESIGN.md "Why acks flow backwards").
 *
 * One thread runs everything: libmicrohttpd in external-epoll mode, the ZeroMQ sockets
 * and the timers share one zmq_poll loop. A request body is appended to the spool and
 * its connection suspended; after the loop turn, one fdatasync covers every request of
 * the turn (group commit), their connections are resumed with 200 and the records are
 * pushed downstream. No locks, no blocking fsync per request. */
#ifndef SB_INGRESS_H
#define SB_INGRESS_H
#include <stddef.h>
#include <stdint.h>
#include "sb_config.h"
#include "sb_err.h"

typedef struct {
    char *listen;               // INGRESS_LISTEN
    int64_t max_body_bytes;     // MAX_BODY_BYTES
    char *spool_dir;            // SPOOL_DIR
    int64_t spool_max_bytes;    // SPOOL_MAX_BYTES, 0 = unbounded
    int64_t health_max_lag_s;   // HEALTH_MAX_LAG_SECONDS
    char *ingress_id;           // INGRESS_ID, default: host name
    int64_t redeliver_after_ms; // REDELIVER_AFTER_MS
    int64_t redeliver_max_ms;   // REDELIVER_MAX_MS
    char *push_endpoint;        // INGRESS_PUSH_ENDPOINT
    char *ack_endpoint;         // INGRESS_ACK_ENDPOINT
    int64_t max_connections;    // INGRESS_MAX_CONNECTIONS
    int64_t max_inflight;       // INGRESS_MAX_INFLIGHT: pushed and not yet acked
    char *log_level;            // LOG_LEVEL
    char *tls_cert_file;        // TLS_CERT_FILE: PEM chain; with the key, HTTPS natively
    char *tls_key_file;         // TLS_KEY_FILE: its PEM private key
} sb_ingress_config_t;

extern const sb_config_var_t sb_ingress_config_vars[];
extern const size_t sb_ingress_config_vars_n;

typedef struct sb_ingress sb_ingress_t;

// Opens the spool, binds HTTP and ZeroMQ. NULL and err on failure.
sb_ingress_t *sb_ingress_new(const sb_ingress_config_t *conf, sb_err_t *err);
// Serve until sb_ingress_stop(); then finish in-flight requests. 0, or -1 with err.
int sb_ingress_run(sb_ingress_t *self, sb_err_t *err);
// Async-signal-safe: ask the loop to finish.
void sb_ingress_stop(void);
void sb_ingress_destroy(sb_ingress_t **self_p);

#endif
