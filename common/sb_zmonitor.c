/* sb_zmonitor - ZeroMQ socket events as metrics and log lines (sb_zmonitor.h).
 *
 * libzmq (4.x, monitor format v1) sends each event as two frames on the inproc PAIR:
 * [uint16 event][uint32 value] in host byte order (6 bytes), then the endpoint text (no
 * NUL). Anything else is skipped with a debug line (sb_zmonitor_take). libzmq sends
 * with ZMQ_DONTWAIT: when the PAIR is full (events not drained for a long time) it drops
 * events rather than block the socket, so the counters are a lower bound in that case,
 * never a stall. */
#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_zmonitor.h"
#include "sb_banned.h"

#define S_ENDPOINT_MAX 256 // endpoint text kept for a log line; longer is cut
#define S_EVENTS                                                                                   \
    (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED |        \
     ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |                                   \
     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |                  \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

// The event label values; the three handshake failures share one.
typedef enum {
    S_CONNECTED,
    S_ACCEPTED,
    S_DISCONNECTED,
    S_CLOSED,
    S_HANDSHAKE_FAILED,
    S_HANDSHAKE_SUCCEEDED,
    S_CONNECT_RETRIED,
    S_N_KINDS
} s_kind_t;

static const char *const s_kind_labels[S_N_KINDS] = {
    "connected",           "accepted",        "disconnected", "closed", "handshake_failed",
    "handshake_succeeded", "connect_retried",
};

struct sb_zmonitor {
    zsock_t *sock;                   // monitored, borrowed
    zsock_t *pair;                   // where libzmq writes the events, owned
    bool started;                    // zmq_socket_monitor succeeded: stop it on destroy
    char name[SB_ZMONITOR_NAME_MAX]; // socket label value and log prefix
    size_t peers;                    // connected + accepted - disconnected, >= 0
    sb_counter_t *events[S_N_KINDS]; // sb_zmq_events_total{socket,event}
    sb_gauge_t *g_peers;             // sb_zmq_peers{socket}
    int64_t window_start_ms;         // zclock_mono() start of the log window
    size_t window_lines;             // info/warn lines logged in this window
    size_t suppressed;               // and not logged (over the burst)
};

static atomic_uint s_next_id; // makes each monitor's inproc address unique in the process

static bool
s_valid_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len >= SB_ZMONITOR_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static void
s_register(sb_zmonitor_t *self, sb_metrics_t *metrics)
{
    char labels[96];
    for (size_t k = 0; k < S_N_KINDS; k++) {
        snprintf(labels, sizeof labels, "socket=\"%s\",event=\"%s\"", self->name, s_kind_labels[k]);
        self->events[k] = sb_metrics_counter(metrics, "sb_zmq_events_total",
                                             "ZeroMQ socket events (zmq_socket_monitor)", labels);
    }
    snprintf(labels, sizeof labels, "socket=\"%s\"", self->name);
    self->g_peers =
        sb_metrics_gauge(metrics, "sb_zmq_peers",
                         "ZeroMQ connections up: connected + accepted - disconnected", labels);
    sb_gauge_set(self->g_peers, 0);
}

sb_zmonitor_t *
sb_zmonitor_new(zsock_t *sock, const char *socket_name, sb_metrics_t *metrics, sb_err_t *err)
{
    assert(sock && metrics);
    if (!s_valid_name(socket_name)) {
        sb_err_set(err, 0, "invalid socket name \"%s\": use 1-%d of [a-z0-9_]",
                   socket_name ? socket_name : "", SB_ZMONITOR_NAME_MAX - 1);
        return NULL;
    }
    sb_zmonitor_t *self = sb_xcalloc(1, sizeof *self);
    self->sock = sock;
    snprintf(self->name, sizeof self->name, "%s", socket_name);
    s_register(self, metrics);
    self->window_start_ms = zclock_mono();
    char endpoint[96];
    snprintf(endpoint, sizeof endpoint, "inproc://sb-zmonitor-%u-%s",
             atomic_fetch_add(&s_next_id, 1), self->name);
    if (zmq_socket_monitor(zsock_resolve(sock), endpoint, S_EVENTS) != 0) {
        sb_err_set(err, zmq_errno(), "could not monitor the %s socket", self->name);
        goto fail;
    }
    self->started = true;
    self->pair = zsock_new(ZMQ_PAIR);
    if (self->pair == NULL || zsock_connect(self->pair, "%s", endpoint) != 0) {
        sb_err_set(err, zmq_errno(), "could not read the %s socket's monitor", self->name);
        goto fail;
    }
    zsock_set_linger(self->pair, 0);   // unread events are worth nothing at exit
    zsock_set_rcvtimeo(self->pair, 0); // drain never waits
    return self;
fail:
    sb_zmonitor_destroy(&self);
    return NULL;
}

void
sb_zmonitor_destroy(sb_zmonitor_t **self_p)
{
    assert(self_p);
    sb_zmonitor_t *self = *self_p;
    if (self == NULL)
        return;
    // Stop libzmq's side first: it closes its PAIR end, so nothing is sent to ours after.
    if (self->started)
        zmq_socket_monitor(zsock_resolve(self->sock), NULL, 0);
    zsock_destroy(&self->pair);
    free(self);
    *self_p = NULL;
}

zsock_t *
sb_zmonitor_sock(sb_zmonitor_t *self)
{
    assert(self);
    return self->pair;
}

size_t
sb_zmonitor_peers(const sb_zmonitor_t *self)
{
    assert(self);
    return self->peers;
}

// Info and warn lines share a budget per window; past it they are only counted, and the
// first drain after the window says how many were left out.
static bool
s_may_log(sb_zmonitor_t *self)
{
    if (self->window_lines < SB_ZMONITOR_LOG_BURST) {
        self->window_lines++;
        return true;
    }
    self->suppressed++;
    return false;
}

static void
s_window_roll(sb_zmonitor_t *self)
{
    int64_t now = zclock_mono();
    if (now - self->window_start_ms < SB_ZMONITOR_LOG_WINDOW_MS)
        return;
    if (self->suppressed > 0)
        sb_log_info(NULL,
                    "zmq %s: %zu more socket events not logged in %d s (sb_zmq_events_total "
                    "counts them all)",
                    self->name, self->suppressed, SB_ZMONITOR_LOG_WINDOW_MS / 1000);
    self->window_start_ms = now;
    self->window_lines = 0;
    self->suppressed = 0;
}

static void
s_log_handshake_failed(sb_zmonitor_t *self, uint16_t event, uint32_t value, const char *endpoint)
{
    if (!s_may_log(self))
        return;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        sb_log_warn(NULL, "zmq %s: handshake failed on %s: ZMTP protocol error 0x%" PRIx32,
                    self->name, endpoint, value);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        sb_log_warn(NULL, "zmq %s: handshake failed on %s: authentication refused (%" PRIu32 ")",
                    self->name, endpoint, value);
    else
        sb_log_warn(NULL, "zmq %s: handshake failed on %s: %s", self->name, endpoint,
                    zmq_strerror((int)value));
}

// Count one event, move the peer gauge, and log it at its level.
static void
s_handle(sb_zmonitor_t *self, uint16_t event, uint32_t value, const char *endpoint)
{
    switch (event) {
    case ZMQ_EVENT_CONNECTED:
    case ZMQ_EVENT_ACCEPTED: {
        bool connected = event == ZMQ_EVENT_CONNECTED;
        sb_counter_add(self->events[connected ? S_CONNECTED : S_ACCEPTED], 1);
        sb_gauge_set(self->g_peers, (double)++self->peers);
        if (s_may_log(self))
            sb_log_info(NULL, "zmq %s: %s %s (%zu up)", self->name,
                        connected ? "connected to" : "accepted a peer on", endpoint, self->peers);
        break;
    }
    case ZMQ_EVENT_DISCONNECTED:
        sb_counter_add(self->events[S_DISCONNECTED], 1);
        if (self->peers > 0) // a connection made before the monitor started
            self->peers--;
        sb_gauge_set(self->g_peers, (double)self->peers);
        if (s_may_log(self))
            sb_log_info(NULL, "zmq %s: peer disconnected from %s (%zu up)", self->name, endpoint,
                        self->peers);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        sb_counter_add(self->events[S_HANDSHAKE_FAILED], 1);
        s_log_handshake_failed(self, event, value, endpoint);
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        sb_counter_add(self->events[S_HANDSHAKE_SUCCEEDED], 1);
        sb_log_debug(NULL, "zmq %s: handshake done with %s", self->name, endpoint);
        break;
    case ZMQ_EVENT_CLOSED:
        sb_counter_add(self->events[S_CLOSED], 1);
        sb_log_debug(NULL, "zmq %s: closed %s", self->name, endpoint);
        break;
    case ZMQ_EVENT_CONNECT_RETRIED:
        sb_counter_add(self->events[S_CONNECT_RETRIED], 1);
        sb_log_debug(NULL, "zmq %s: no peer at %s yet, retrying in %" PRIu32 " ms", self->name,
                     endpoint, value);
        break;
    default: // not asked for; a newer libzmq may send more
        sb_log_debug(NULL, "zmq %s: ignored monitor event 0x%x on %s", self->name, (unsigned)event,
                     endpoint);
        break;
    }
}

int
sb_zmonitor_take(sb_zmonitor_t *self, zmsg_t *msg)
{
    assert(self && msg);
    zframe_t *head = zmsg_first(msg);
    zframe_t *where = zmsg_next(msg);
    if (zmsg_size(msg) != 2 || zframe_size(head) != 6) {
        sb_log_debug(NULL, "zmq %s: skipped a malformed monitor message (%zu frames)", self->name,
                     zmsg_size(msg));
        return -1;
    }
    uint16_t event;
    uint32_t value;
    memcpy(&event, zframe_data(head), sizeof event);
    memcpy(&value, zframe_data(head) + 2, sizeof value);
    char endpoint[S_ENDPOINT_MAX];
    size_t n = zframe_size(where) < sizeof endpoint - 1 ? zframe_size(where) : sizeof endpoint - 1;
    if (n > 0)
        memcpy(endpoint, zframe_data(where), n);
    endpoint[n] = '\0';
    s_handle(self, event, value, endpoint);
    return 0;
}

size_t
sb_zmonitor_drain(sb_zmonitor_t *self)
{
    assert(self);
    s_window_roll(self);
    size_t n = 0;
    zmsg_t *msg;
    // The PAIR has a receive timeout of 0: NULL means nothing more (or EINTR: next turn).
    while (n < SB_ZMONITOR_DRAIN_MAX && (msg = zmsg_recv(self->pair)) != NULL) {
        sb_zmonitor_take(self, msg);
        zmsg_destroy(&msg);
        n++;
    }
    return n;
}
