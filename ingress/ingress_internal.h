/* ingress_internal - the state that ingress.c (loop, spool, ZeroMQ), ingress_http.c
 * (requests) and ingress_health.c (heartbeats, /health, gauges) share. All of it is
 * touched by the one loop thread only. */
#ifndef SB_INGRESS_INTERNAL_H
#define SB_INGRESS_INTERNAL_H
#include <czmq.h>
#include <microhttpd.h>
#include "ingress.h"
#include "sb_metrics.h"
#include "sb_resolver.h"
#include "sb_spool.h"
#include "sb_zmonitor.h"

#define SB_INGRESS_MAX_INSTANCES 64      // stage replicas tracked by heartbeat
#define SB_INGRESS_HEARTBEAT_TTL_MS 3500 // a stage is alive if seen this recently

// A request that waits for the group fdatasync. Owned by the loop's waiting list.
typedef struct s_waiting {
    struct MHD_Connection *conn; // suspended until the sync
    uint64_t seq;                // its spool record
    const char *route;           // metrics label (static string)
    void *payload;               // the encoded envelope, pushed after the sync
    size_t payload_len;
    struct s_waiting *next;
} sb_ingress_waiting_t;

typedef struct {
    char stage[16];    // "verifier", "writer", ...
    char instance[96]; // host:pid of the replica
    int64_t last_seen_ms;
    int db_ok;          // writers report whether PostgreSQL answers
    char db_error[160]; // their last database error, for /health
} sb_ingress_instance_t;

struct sb_ingress {
    const sb_ingress_config_t *conf;     // borrowed from main
    char *ingress_id;                    // INGRESS_ID or the host name
    sb_spool_t *spool;                   // durable queue
    struct MHD_Daemon *httpd;            // external-epoll daemon
    zsock_t *push;                       // to the verifiers
    sb_resolver_t *push_peers;           // connects push to every verifier replica
    zsock_t *acks;                       // SUB: acks and heartbeats
    sb_zmonitor_t *push_mon;             // sb_zmq_* of push ("push")
    sb_zmonitor_t *acks_mon;             // sb_zmq_* of acks ("acks")
    sb_ingress_waiting_t *waiting;       // appended, waiting for their flush (oldest first)
    sb_ingress_waiting_t **waiting_tail; // where the next one is linked
    size_t n_waiting;
    zactor_t *syncer;          // runs write + fdatasync off the loop thread
    sb_spool_flush_t flush;    // the group being made durable
    int flushing;              // flush is with the syncer
    double flush_started_s;    // for sb_spool_sync_seconds
    size_t flush_records;      // requests covered by the flush in flight
    struct MHD_Response *ok;   // shared 200 response
    struct MHD_Response *busy; // shared 503 response with Retry-After
    sb_ingress_instance_t instances[SB_INGRESS_MAX_INSTANCES];
    size_t n_instances;
    sb_metrics_t *metrics;
    sb_counter_t *acked;          // records acked by writers
    sb_counter_t *redelivered;    // records pushed again
    sb_counter_t *push_blocked;   // pushes that found no room downstream
    sb_counter_t *deferred;       // first pushes held back: the in-flight window was full
    int window_full;              // a first push waits for credit (acks free it)
    sb_histogram_t *sync_seconds; // one fdatasync per group
    sb_histogram_t *sync_records; // group size
    sb_gauge_t *g_depth, *g_bytes, *g_oldest, *g_torn, *g_stage_up[3];
    sb_gauge_t *g_rto;   // the spool's first redelivery wait
    sb_gauge_t *g_held;  // 1 while redelivery is held (no writer reaches the DB)
    int redelivery_held; // the state g_held shows
};

// ingress_http.c
struct MHD_Daemon *sb_ingress_http_start(sb_ingress_t *self, sb_err_t *err);
void sb_ingress_http_count(sb_ingress_t *self, const char *route, unsigned status);
// Close connections that miss the header deadline or the minimum body rate (every tick).
void sb_ingress_http_sweep(sb_ingress_t *self, int64_t now_ms);

// ingress.c: called by the HTTP handler with a complete body. Returns the HTTP status
// to answer now (413/503), or 0 when the connection was suspended for the group sync.
unsigned sb_ingress_accept(sb_ingress_t *self, struct MHD_Connection *conn, const char *source,
                           char *headers_json, const char *body, size_t body_len);

// ingress_health.c
void sb_ingress_heartbeat(sb_ingress_t *self, const char *stage, const char *instance,
                          const char *status_json, int64_t now_ms);
// The /health document; *healthy set. Caller frees.
char *sb_ingress_health_json(sb_ingress_t *self, int64_t now_ms, int *healthy);
void sb_ingress_gauges_update(sb_ingress_t *self, int64_t now_ms);
// Writers are alive and none of them reaches the database: what was pushed is queued
// downstream, not lost, so redelivering it would only make copies.
int sb_ingress_db_down(const sb_ingress_t *self, int64_t now_ms);

int64_t sb_ingress_now_ms(void); // wall clock

#endif
