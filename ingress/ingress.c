/* ingress - the loop: spool, group commit, pushes, acks and redelivery (ingress.h). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ingress_internal.h"
#include "sb_envelope.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_time.h"
#include "sb_banned.h"

#define SB_INGRESS_TICK_MS 100          // redelivery, gauges and heartbeat checks; 10-1000
#define SB_INGRESS_REDELIVER_BATCH 2000 // records pushed again per tick; bounds a storm
#define SB_INGRESS_DRAIN_MS 3000        // on SIGTERM, time for in-flight answers to leave

#define CFG(field) offsetof(sb_ingress_config_t, field)
const sb_config_var_t sb_ingress_config_vars[] = {
    {"INGRESS_LISTEN", SB_CONFIG_STRING, CFG(listen), "0.0.0.0:8001", 0, 0, 0,
     "HTTP listen address host:port"},
    {"MAX_BODY_BYTES", SB_CONFIG_INT, CFG(max_body_bytes), "1048576", 1024, 67108864, 0,
     "larger request bodies get 413"},
    {"SPOOL_DIR", SB_CONFIG_STRING, CFG(spool_dir), "var/spool", 0, 0, 0,
     "directory of the durable spool"},
    {"SPOOL_MAX_BYTES", SB_CONFIG_INT, CFG(spool_max_bytes), "1073741824", 0, INT64_C(1) << 50, 0,
     "spool size bound (0 = none); past it POSTs get 503 + Retry-After"},
    {"HEALTH_MAX_LAG_SECONDS", SB_CONFIG_INT, CFG(health_max_lag_s), "60", 1, 86400, 0,
     "health is degraded when the oldest unacked event is older"},
    {"INGRESS_ID", SB_CONFIG_STRING, CFG(ingress_id), NULL, 0, 0, 0,
     "readable prefix of event ids, [A-Za-z0-9_.-] (default: host name)"},
    {"REDELIVER_AFTER_MS", SB_CONFIG_INT, CFG(redeliver_after_ms), "10000", 100, 3600000, 0,
     "push an unacked event again after this, doubling per attempt"},
    {"REDELIVER_MAX_MS", SB_CONFIG_INT, CFG(redeliver_max_ms), "300000", 100, 86400000, 0,
     "cap of the redelivery backoff"},
    {"INGRESS_PUSH_ENDPOINT", SB_CONFIG_STRING, CFG(push_endpoint), ">tcp://127.0.0.1:5557", 0, 0,
     0, "verifier replicas (CZMQ endpoints, comma-separated)"},
    {"INGRESS_ACK_ENDPOINT", SB_CONFIG_STRING, CFG(ack_endpoint), "@tcp://*:5559", 0, 0, 0,
     "where writers' acks and stages' heartbeats arrive"},
    {"INGRESS_MAX_INFLIGHT", SB_CONFIG_INT, CFG(max_inflight), "4000", 16, 1000000, 0,
     "events pushed and not yet acked; the rest wait in the spool (flow control)"},
    {"INGRESS_MAX_CONNECTIONS", SB_CONFIG_INT, CFG(max_connections), "4096", 16, 65536, 0,
     "concurrent HTTP connections"},
    {"LOG_LEVEL", SB_CONFIG_STRING, CFG(log_level), "info", 0, 0, 0, "debug, info, warn, error"},
    {"TLS_CERT_FILE", SB_CONFIG_STRING, CFG(tls_cert_file), NULL, 0, 0, 0,
     "PEM certificate chain: serve HTTPS (with TLS_KEY_FILE) instead of HTTP"},
    {"TLS_KEY_FILE", SB_CONFIG_STRING, CFG(tls_key_file), NULL, 0, 0, 0,
     "PEM private key of TLS_CERT_FILE"},
};
const size_t sb_ingress_config_vars_n =
    sizeof sb_ingress_config_vars / sizeof sb_ingress_config_vars[0];

static volatile sig_atomic_t s_stopping = 0;

static void s_syncer(zsock_t *pipe, void *arg);

void
sb_ingress_stop(void)
{
    s_stopping = 1;
}

int64_t
sb_ingress_now_ms(void)
{
    return sb_wall_ms();
}

static char *
s_default_ingress_id(void)
{
    char host[SB_INGRESS_ID_MAX] = "ingress";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "ingress");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++) // keep the id parseable whatever the host is called
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            *p = '-';
    return sb_xstrdup(host);
}

static void
s_register_metrics(sb_ingress_t *self)
{
    sb_metrics_t *m = self->metrics;
    self->acked =
        sb_metrics_counter(m, "sb_events_acked_total", "events committed by a writer", "");
    self->redelivered = sb_metrics_counter(
        m, "sb_events_redelivered_total", "events pushed again (unacked in time, or at start)", "");
    self->push_blocked =
        sb_metrics_counter(m, "sb_push_blocked_total", "pushes deferred: no verifier had room", "");
    self->deferred = sb_metrics_counter(m, "sb_push_deferred_total",
                                        "first pushes held in the spool: window full", "");
    static const double group_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
    self->sync_seconds =
        sb_metrics_histogram(m, "sb_spool_sync_seconds", "one group fdatasync", "",
                             sb_metrics_latency_bounds, sb_metrics_latency_bounds_n);
    self->sync_records =
        sb_metrics_histogram(m, "sb_spool_sync_records", "records covered by one fdatasync", "",
                             group_bounds, sizeof group_bounds / sizeof *group_bounds);
    self->g_depth = sb_metrics_gauge(m, "sb_spool_depth", "events not yet acked", "");
    self->g_bytes = sb_metrics_gauge(m, "sb_spool_bytes", "bytes in live spool segments", "");
    self->g_oldest = sb_metrics_gauge(m, "sb_spool_oldest_unacked_seconds",
                                      "age of the oldest unacked event", "");
    self->g_torn = sb_metrics_gauge(m, "sb_spool_torn_records",
                                    "torn or corrupt records skipped at start", "");
    self->g_rto = sb_metrics_gauge(m, "sb_redelivery_timeout_seconds",
                                   "first redelivery wait: max(REDELIVER_AFTER_MS, "
                                   "srtt + 4 rttvar of push-to-ack times, the queue "
                                   "ahead at the ack rate)",
                                   "");
    self->g_held = sb_metrics_gauge(m, "sb_redelivery_held",
                                    "1 while pushed events are not redelivered because "
                                    "no writer reaches the database",
                                    "");
    self->g_stage_up[0] =
        sb_metrics_gauge(m, "sb_stage_up", "replicas seen by heartbeat", "stage=\"verifier\"");
    self->g_stage_up[1] =
        sb_metrics_gauge(m, "sb_stage_up", "replicas seen by heartbeat", "stage=\"writer\"");
    self->g_stage_up[2] =
        sb_metrics_gauge(m, "sb_stage_up", "replicas seen by heartbeat", "stage=\"enricher\"");
}

static int
s_open_sockets(sb_ingress_t *self, sb_err_t *err)
{
    self->push = zsock_new(ZMQ_PUSH);
    self->acks = zsock_new(ZMQ_SUB);
    if (self->push == NULL || self->acks == NULL) {
        sb_err_set(err, errno, "could not create ZeroMQ sockets");
        return -1;
    }
    // Monitors first, so that not even the first verifier or writer goes unseen.
    self->push_mon = sb_zmonitor_new(self->push, "push", self->metrics, err);
    if (self->push_mon == NULL)
        return -1;
    self->acks_mon = sb_zmonitor_new(self->acks, "acks", self->metrics, err);
    if (self->acks_mon == NULL)
        return -1;
    // The in-flight window is the real bound (s_push); the high-water mark only backs it.
    zsock_set_sndhwm(self->push, (int)self->conf->max_inflight);
    zsock_set_linger(self->push, 0); // the spool keeps everything: nothing to flush on exit
    // Queue only to verifiers whose connection is up: a dead replica's pipe would hold
    // events until their redelivery delay.
    zsock_set_immediate(self->push, 1);
    zsock_set_rcvhwm(self->acks, 0);   // acks are small; never drop one at a high-water mark
    zsock_set_rcvtimeo(self->acks, 0); // s_take_backmsgs reads until there is nothing more
    self->push_peers = sb_resolver_new(self->push, self->conf->push_endpoint, err);
    if (self->push_peers == NULL)
        return -1;
    char *topic = sb_ack_topic(sb_spool_epoch(self->spool));
    zsock_set_subscribe(self->acks, topic);
    free(topic);
    zsock_set_subscribe(self->acks, SB_HEARTBEAT_TOPIC);
    if (zsock_attach(self->acks, self->conf->ack_endpoint, true) != 0) {
        sb_err_set(err, errno, "could not bind INGRESS_ACK_ENDPOINT \"%s\"",
                   self->conf->ack_endpoint);
        return -1;
    }
    return 0;
}

sb_ingress_t *
sb_ingress_new(const sb_ingress_config_t *conf, sb_err_t *err)
{
    sb_ingress_t *self = sb_xcalloc(1, sizeof *self);
    self->conf = conf;
    self->ingress_id = conf->ingress_id ? sb_xstrdup(conf->ingress_id) : s_default_ingress_id();
    if (!sb_ingress_id_valid(self->ingress_id)) {
        sb_err_set(err, 0, "invalid INGRESS_ID \"%s\": use 1-63 of [A-Za-z0-9_.-]",
                   self->ingress_id);
        goto fail;
    }
    self->waiting_tail = &self->waiting;
    self->metrics = sb_metrics_new();
    s_register_metrics(self);
    self->spool = sb_spool_new(conf->spool_dir, (uint64_t)conf->spool_max_bytes, err);
    if (self->spool == NULL)
        goto fail;
    sb_spool_set_redelivery(self->spool, conf->redeliver_after_ms, conf->redeliver_max_ms);
    if (s_open_sockets(self, err) != 0)
        goto fail;
    self->syncer = zactor_new(s_syncer, NULL);
    self->ok = MHD_create_response_from_buffer(strlen("{\"status\":\"accepted\"}"),
                                               (void *)"{\"status\":\"accepted\"}",
                                               MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(self->ok, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    self->busy = MHD_create_response_from_buffer(strlen("{\"error\":\"spool unavailable\"}"),
                                                 (void *)"{\"error\":\"spool unavailable\"}",
                                                 MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(self->busy, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(self->busy, MHD_HTTP_HEADER_RETRY_AFTER, "5");
    self->httpd = sb_ingress_http_start(self, err);
    if (self->httpd == NULL)
        goto fail;
    sb_log_info(NULL, "spool \"%s\" epoch %s: %zu pending events, %zu torn records skipped",
                conf->spool_dir, sb_spool_epoch(self->spool), sb_spool_depth(self->spool),
                sb_spool_torn(self->spool));
    return self;
fail:
    sb_ingress_destroy(&self);
    return NULL;
}

unsigned
sb_ingress_accept(sb_ingress_t *self, struct MHD_Connection *conn, const char *source,
                  char *headers_json, const char *body, size_t body_len)
{
    sb_envelope_t *env = sb_envelope_new();
    uint64_t seq = sb_spool_next_seq(self->spool);
    env->event_id = sb_event_id_format(self->ingress_id, sb_spool_epoch(self->spool), seq);
    sb_envelope_set(&env->source, source);
    env->received_at_ms = sb_ingress_now_ms();
    free(env->headers);
    env->headers = headers_json; // ownership moves into the envelope
    free(env->body);
    env->body = sb_xmemdup(body ? body : "", body_len);
    env->body_len = body_len;
    size_t len;
    void *payload = sb_envelope_encode(env, &len);
    sb_err_t err = {0};
    uint64_t got;
    int rc = sb_spool_append(self->spool, payload, len, &got, &err);
    if (rc != 0 || got != seq) {
        // Full or failed spool: the sender retries later (Retry-After); nothing that was
        // acknowledged before is touched.
        sb_log_error(env->event_id, "cannot spool the request, answering 503: %s",
                     rc != 0 ? err.msg : "sequence mismatch");
        free(payload);
        sb_envelope_destroy(&env);
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    sb_envelope_destroy(&env);
    sb_ingress_waiting_t *w = sb_xcalloc(1, sizeof *w);
    w->conn = conn;
    w->seq = seq;
    w->route = source;
    w->payload = payload;
    w->payload_len = len;
    *self->waiting_tail = w;
    self->waiting_tail = &w->next;
    self->n_waiting++;
    MHD_suspend_connection(conn);
    return 0;
}

// Push one spool record downstream without blocking. 0 when queued, -1 when it must
// wait (the record stays due): no verifier has room, or the in-flight window is full.
// The window (INGRESS_MAX_INFLIGHT, a credit scheme: an ack returns a credit) keeps
// the backlog on disk rather than in ZeroMQ queues. Then an event's redelivery clock
// only runs while it is really downstream, so a slow database does not cause copies,
// and memory stays bounded however long the outage. A redelivery needs no new credit.
static int
s_push(void *arg, uint64_t seq, const void *payload, size_t len)
{
    sb_ingress_t *self = arg;
    int again = sb_spool_was_pushed(self->spool, seq);
    if (!again && sb_spool_pushed(self->spool) >= (size_t)self->conf->max_inflight) {
        if (!self->window_full)
            sb_counter_add(self->deferred, 1);
        self->window_full = 1;
        return -1;
    }
    sb_err_t err = {0};
    sb_envelope_t *env = sb_envelope_decode(payload, len, &err);
    if (env == NULL) {
        // The CRC matched, so this is a record we wrote: only a bug gets here. Ack it
        // locally so it cannot block the spool, and say so loudly.
        sb_log_error(NULL, "spool record %" PRIu64 " is not an envelope, dropping: %s", seq,
                     err.msg);
        sb_spool_ack(self->spool, seq, -1);
        return 0;
    }
    int rc = sb_envelope_send(env, self->push, 1, &err);
    if (rc != 0 && err.code != EAGAIN)
        sb_log_warn(env->event_id, "could not push: %s", err.msg);
    sb_envelope_destroy(&env);
    if (rc != 0) {
        sb_counter_add(self->push_blocked, 1);
        return -1;
    }
    if (again)
        sb_counter_add(self->redelivered, 1);
    return 0;
}

// Push what is due: records never pushed (deferred by the window or a full queue) and
// records unacked past their backoff.
static void
s_push_due(sb_ingress_t *self, int64_t now, size_t max)
{
    sb_err_t err = {0};
    self->window_full = 0;
    if (sb_spool_due(self->spool, now, max, s_push, self, &err) < 0)
        sb_log_error(NULL, "could not read the spool for redelivery: %s", err.msg);
}

// The syncer thread: takes a flush, writes it and fdatasyncs, hands it back. It touches
// nothing but the flush, so the loop keeps reading requests meanwhile and the next
// group grows while this one is on its way to disk (group commit without a stall).
static void
s_syncer(zsock_t *pipe, void *arg)
{
    (void)arg;
    zsock_signal(pipe, 0);
    for (;;) {
        zmsg_t *msg = zmsg_recv(pipe);
        if (msg == NULL)
            return;
        char *command = zmsg_popstr(msg);
        int term = command == NULL || strcmp(command, "$TERM") == 0;
        if (!term) {
            zframe_t *frame = zmsg_first(msg);
            sb_spool_flush_t *flush = NULL;
            if (frame && zframe_size(frame) == sizeof flush)
                memcpy(&flush, zframe_data(frame), sizeof flush);
            if (flush)
                sb_spool_flush_write(flush);
            zsock_signal(pipe, 0);
        }
        free(command);
        zmsg_destroy(&msg);
        if (term)
            return;
    }
}

// Start making durable everything appended (requests) and acked since the last flush.
// Nothing to write: finished at once, without the thread.
static void s_flush_done(sb_ingress_t *self);

static void
s_flush_start(sb_ingress_t *self)
{
    if (self->flushing || sb_spool_failed(self->spool))
        return;
    sb_err_t err = {0};
    if (sb_spool_sync_begin(self->spool, &self->flush, &err) != 0) {
        sb_log_error(NULL, "spool sync failed, answering 503 until restarted: %s", err.msg);
        s_flush_done(self); // answers every waiting request with 503
        return;
    }
    self->flushing = 1;
    self->flush_records = self->n_waiting;
    self->flush_started_s = sb_mono_s();
    if (self->flush.len == 0) {
        s_flush_done(self);
        return;
    }
    sb_spool_flush_t *flush = &self->flush;
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, "FLUSH");
    zmsg_addmem(msg, &flush, sizeof flush);
    zmsg_send(&msg, self->syncer);
}

// The flush is back from the syncer (or had nothing to write). Records up to its seq
// are durable: only now are their requests answered 200 and pushed downstream (never
// before: a crash could still erase them, and downstream would hold an event the spool
// does not).
static void
s_flush_done(sb_ingress_t *self)
{
    sb_err_t err = {0};
    int rc = -1;
    if (self->flushing) {
        self->flushing = 0;
        rc = sb_spool_sync_finish(self->spool, &self->flush, &err);
        if (rc != 0)
            sb_log_error(NULL, "spool sync failed, answering 503 until restarted: %s", err.msg);
        if (self->flush.len > 0) {
            sb_histogram_observe(self->sync_seconds, sb_mono_s() - self->flush_started_s);
            sb_histogram_observe(self->sync_records, (double)self->flush_records);
        }
    }
    uint64_t durable = rc == 0 ? sb_spool_synced_seq(self->spool) : UINT64_MAX;
    int64_t now = sb_ingress_now_ms();
    while (self->waiting && self->waiting->seq <= durable) {
        sb_ingress_waiting_t *w = self->waiting;
        self->waiting = w->next;
        if (self->waiting == NULL)
            self->waiting_tail = &self->waiting;
        self->n_waiting--;
        unsigned status = rc == 0 ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        MHD_queue_response(w->conn, status, rc == 0 ? self->ok : self->busy);
        MHD_resume_connection(w->conn);
        sb_ingress_http_count(self, w->route, status);
        if (rc == 0 && s_push(self, w->seq, w->payload, w->payload_len) == 0)
            sb_spool_sent(self->spool, w->seq, now);
        free(w->payload);
        free(w);
    }
}

// The syncer answered (the poll said so): account for the flush and start the next
// group at once.
static void
s_take_syncer(sb_ingress_t *self)
{
    if (!self->flushing)
        return;
    zsock_wait(self->syncer);
    s_flush_done(self);
    if (self->waiting)
        s_flush_start(self);
}

static void
s_take_backmsgs(sb_ingress_t *self)
{
    // Called when the poll saw something; the socket's receive timeout is 0, so the loop
    // ends at the first receive that finds nothing (no ZMQ_EVENTS query per message: each
    // costs a poll(2) in libzmq).
    for (;;) {
        sb_err_t err = {0};
        sb_backmsg_t *msg = sb_backmsg_recv(self->acks, &err);
        if (msg == NULL) {
            if (err.code == EINTR) // nothing more (EAGAIN) or a signal
                return;
            sb_log_warn(NULL, "%s", err.msg);
            continue;
        }
        if (msg->is_ack) {
            for (size_t i = 0; i < msg->n_event_ids; i++) {
                char id[SB_INGRESS_ID_MAX], epoch[SB_INGRESS_ID_MAX];
                uint64_t seq;
                if (sb_event_id_parse(msg->event_ids[i], id, epoch, &seq) == 0 &&
                    strcmp(epoch, sb_spool_epoch(self->spool)) == 0 &&
                    sb_spool_ack(self->spool, seq, sb_ingress_now_ms()) == 1)
                    sb_counter_add(self->acked, 1); // not a copy's second ack
            }
            // Acks return credits: records held back by a full window go now, not at
            // the next tick.
            if (self->window_full)
                s_push_due(self, sb_ingress_now_ms(), SB_INGRESS_REDELIVER_BATCH);
        } else {
            sb_ingress_heartbeat(self, msg->stage, msg->instance, msg->status_json,
                                 sb_ingress_now_ms());
        }
        sb_backmsg_destroy(&msg);
    }
}

// While writers report that the database is unreachable, events already pushed wait in
// the stages' queues: redelivering them would only make copies (every one verified,
// enriched and written again once the database is back). New events still go. A dead
// writer stops heartbeating, so what a crash lost is still redelivered.
static void
s_hold_redelivery(sb_ingress_t *self, int64_t now)
{
    int hold = sb_ingress_db_down(self, now);
    if (hold == self->redelivery_held)
        return;
    self->redelivery_held = hold;
    sb_spool_hold(self->spool, hold, now);
    sb_gauge_set(self->g_held, hold);
    if (hold)
        sb_log_warn(NULL,
                    "no writer reaches the database: holding redelivery of the %zu "
                    "events already pushed (they are queued, not lost)",
                    sb_spool_pushed(self->spool));
    else
        sb_log_info(NULL,
                    "a writer reaches the database again: redelivery resumes, the "
                    "clocks of %zu pushed events start again (first wait now %.1f s)",
                    sb_spool_pushed(self->spool), (double)sb_spool_rto_ms(self->spool) / 1000.0);
}

static void
s_tick(sb_ingress_t *self, int64_t now)
{
    sb_err_t err = {0};
    if (sb_resolver_refresh(self->push_peers, &err) != 0)
        sb_log_warn(NULL, "INGRESS_PUSH_ENDPOINT: %s", err.msg);
    sb_zmonitor_drain(self->push_mon);
    sb_zmonitor_drain(self->acks_mon);
    s_hold_redelivery(self, now);
    uint64_t before = sb_counter_value(self->redelivered);
    s_push_due(self, now, SB_INGRESS_REDELIVER_BATCH);
    uint64_t again = sb_counter_value(self->redelivered) - before;
    if (again > 0)
        sb_log_info(NULL, "pushed %" PRIu64 " unacked events again", again);
    // Acks are buffered in the spool; make them durable now and then so that a
    // restart does not resend much (losing them would only cost redeliveries).
    s_flush_start(self);
    sb_ingress_gauges_update(self, now);
    sb_ingress_http_sweep(self, now);
}

// One turn: wait for HTTP or ZeroMQ work, serve it, group-sync, answer.
static void
s_turn(sb_ingress_t *self, int fd, int64_t wait_ms)
{
    MHD_UNSIGNED_LONG_LONG mhd_ms;
    if (MHD_get_timeout(self->httpd, &mhd_ms) == MHD_YES && (int64_t)mhd_ms < wait_ms)
        wait_ms = (int64_t)mhd_ms;
    zmq_pollitem_t items[] = {{NULL, fd, ZMQ_POLLIN, 0},
                              {zsock_resolve(self->acks), 0, ZMQ_POLLIN, 0},
                              {zsock_resolve(zactor_sock(self->syncer)), 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 3, (long)wait_ms) < 0 && errno != EINTR)
        sb_log_error(NULL, "zmq_poll failed: %s", zmq_strerror(errno));
    MHD_run(self->httpd);
    if (items[2].revents & ZMQ_POLLIN)
        s_take_syncer(self);
    if (self->waiting && !self->flushing)
        s_flush_start(self);
    MHD_run(self->httpd); // send the answers of a finished group now, not next turn
    if (items[1].revents & ZMQ_POLLIN)
        s_take_backmsgs(self);
}

int
sb_ingress_run(sb_ingress_t *self, sb_err_t *err)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->httpd, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL) {
        sb_err_set(err, 0, "cannot get the HTTP daemon's epoll descriptor");
        return -1;
    }
    int fd = info->epoll_fd;
    int64_t next_tick = 0;
    while (!s_stopping) {
        int64_t now = sb_ingress_now_ms();
        if (now >= next_tick) {
            s_tick(self, now);
            next_tick = now + SB_INGRESS_TICK_MS;
        }
        s_turn(self, fd, next_tick - now);
    }
    // SIGTERM: stop accepting, answer what is in flight, and leave the rest in the
    // spool (it is durable; the next start pushes it again).
    sb_log_info(NULL, "stopping: answering in-flight requests, %zu events stay in the spool",
                sb_spool_depth(self->spool));
    MHD_socket listen_fd = MHD_quiesce_daemon(self->httpd);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    int64_t deadline = sb_ingress_now_ms() + SB_INGRESS_DRAIN_MS;
    while (sb_ingress_now_ms() < deadline || self->flushing) {
        s_turn(self, fd, 50);
        const union MHD_DaemonInfo *c =
            MHD_get_daemon_info(self->httpd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (c == NULL || c->num_connections == 0)
            break;
    }
    return 0;
}

void
sb_ingress_destroy(sb_ingress_t **self_p)
{
    assert(self_p);
    sb_ingress_t *self = *self_p;
    if (self == NULL)
        return;
    // The thread may hold a flush: wait for it before freeing anything, then settle the
    // requests still waiting (MHD must not stop with suspended connections).
    for (int round = 0; round < 2 && self->syncer; round++) {
        if (self->flushing) {
            zsock_wait(self->syncer);
            s_flush_done(self);
        }
        if (self->waiting)
            s_flush_start(self);
    }
    zactor_destroy(&self->syncer);
    if (self->httpd)
        MHD_stop_daemon(self->httpd);
    for (sb_ingress_waiting_t *w = self->waiting, *next; w; w = next) {
        next = w->next;
        free(w->payload);
        free(w);
    }
    if (self->ok)
        MHD_destroy_response(self->ok);
    if (self->busy)
        MHD_destroy_response(self->busy);
    sb_resolver_destroy(&self->push_peers);
    sb_zmonitor_destroy(&self->push_mon); // before their sockets
    sb_zmonitor_destroy(&self->acks_mon);
    zsock_destroy(&self->push);
    zsock_destroy(&self->acks);
    sb_spool_destroy(&self->spool);
    sb_metrics_destroy(&self->metrics);
    free(self->ingress_id);
    free(self);
    *self_p = NULL;
}
