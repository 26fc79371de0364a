/* renewer_status - what the renewer tells the outside, from threads of their own so that a
 * slow provider call in the loop never delays them:
 *   GET /metrics  the registry (sb_metrics_render)
 *   GET /health   200 {"status":"ok",...} or 503 {"status":"degraded","reasons":[...],...}
 *                 (sb_metrics_serve's /health is always 200, which cannot say "degraded")
 *   heartbeats    sb_heartbeat_send("renewer", instance, the same JSON) every
 *                 SB_RENEWER_HEARTBEAT_MS to every ingress on ACK_ENDPOINT, like the
 *                 other stages, so the ingress sees the renewer alive; that thread also
 *                 drains the PUB socket's monitor (sb_zmq_*{socket="heartbeat"}).
 * The loop publishes a new health document with sb_renewer_status_set after each round;
 * the server and the heartbeat thread read the last one under a mutex. */
#ifndef SB_RENEWER_STATUS_H
#define SB_RENEWER_STATUS_H
#include "sb_err.h"
#include "sb_metrics.h"

typedef struct sb_renewer_status sb_renewer_status_t;

// listen "host:port" (NULL or "": no server); ack_endpoint CZMQ endpoints (NULL or "": no
// heartbeats). metrics is borrowed and must outlive the status. The health starts as
// degraded "starting". NULL and err when the port cannot be bound or the endpoint is bad.
sb_renewer_status_t *sb_renewer_status_new(sb_metrics_t *metrics, const char *listen,
                                           const char *ack_endpoint, const char *instance,
                                           sb_err_t *err);
void sb_renewer_status_destroy(sb_renewer_status_t **self_p); // joins both threads

// Publish: healthy picks 200 or 503; doc is the JSON object text served (copied).
void sb_renewer_status_set(sb_renewer_status_t *self, int healthy, const char *doc);

// The port the server listens on (useful with port 0), or 0 without a server.
int sb_renewer_status_port(const sb_renewer_status_t *self);

#endif
