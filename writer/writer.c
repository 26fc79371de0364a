/* writer - batch, store, ack (see writer.h for the loop and its guarantees). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>
#include <jansson.h>
#include "writer.h"
#include "db.h"
#include "sb_resolver.h"
#include "sb_zmonitor.h"
#include "sb_stage.h"
#include "map_ringcentral.h"
#include "migrate.h"
#include "sb_envelope.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_time.h"
#include "sb_banned.h"

#define SB_WRITER_STEP_MS 50  // sleep slice while backing off: heartbeats keep going
#define SB_WRITER_RECV_MS 100 // longest wait for the first event of a batch

const sb_config_var_t sb_writer_config_vars[] = {
    {"DATABASE_URL", SB_CONFIG_STRING, offsetof(sb_writer_config_t, database_url), NULL, 0, 0,
     SB_CONFIG_REQUIRED | SB_CONFIG_SECRET, "PostgreSQL URL or conninfo string"},
    {"WRITER_PULL_ENDPOINT", SB_CONFIG_STRING, offsetof(sb_writer_config_t, pull_endpoint),
     "@tcp://*:5558", 0, 0, 0, "where verified events arrive (CZMQ endpoint, @ binds)"},
    {"ACK_ENDPOINT", SB_CONFIG_STRING, offsetof(sb_writer_config_t, ack_endpoint),
     ">tcp://127.0.0.1:5559", 0, 0, 0, "every ingress's ack endpoint, comma-separated"},
    {"METRICS_LISTEN", SB_CONFIG_STRING, offsetof(sb_writer_config_t, metrics_listen),
     "0.0.0.0:9104", 0, 0, 0, "host:port of GET /metrics and GET /health"},
    {"INSTANCE_ID", SB_CONFIG_STRING, offsetof(sb_writer_config_t, instance_id), NULL, 0, 0, 0,
     "name of this replica in heartbeats (default <hostname>:<pid>)"},
    {"WRITER_BATCH_ROWS", SB_CONFIG_INT, offsetof(sb_writer_config_t, batch_rows), "500", 1, 10000,
     0, "most events per transaction"},
    {"DEFAULT_COUNTRY_CODE", SB_CONFIG_STRING, offsetof(sb_writer_config_t, default_cc), "1", 0, 0,
     0, "country code given to national phone numbers (digits)"},
    {"LOG_LEVEL", SB_CONFIG_STRING, offsetof(sb_writer_config_t, log_level), "info", 0, 0, 0,
     "debug, info, warn or error"},
};
const size_t sb_writer_config_vars_n =
    sizeof sb_writer_config_vars / sizeof sb_writer_config_vars[0];

// Label values of the per-source and per-outcome metrics. Index S_SOURCES - 1 is for
// anything else.
static const char *const s_sources[] = {"ringcentral_sms", "ringcentral_call", "gmail_push",
                                        "unknown"};
#define S_SOURCES (sizeof s_sources / sizeof s_sources[0])
static const char *const s_outcomes[] = {"stored", "duplicate", "rejected", "ignored", "failed"};
#define S_OUTCOMES (sizeof s_outcomes / sizeof s_outcomes[0])

typedef enum {
    S_PENDING = 0, // not committed yet
    S_COMMITTED,   // in webhook_events: ack it
    S_UNSTORABLE,  // even the 'failed' row was refused: left to the ingress's redelivery
} s_state_t;

typedef struct {
    sb_envelope_t *env; // owned
    sb_map_t map;       // what to store
    size_t source;      // index into s_sources
    s_state_t state;
} s_item_t;

struct sb_writer {
    const sb_writer_config_t *conf; // borrowed
    zsock_t *pull;                  // events in
    zsock_t *pub;                   // acks and heartbeats out
    zpoller_t *poller;              // over pull
    sb_resolver_t *pub_peers;       // connects pub to every ingress replica
    sb_zmonitor_t *pull_mon;        // sb_zmq_* of pull ("pull")
    sb_zmonitor_t *pub_mon;         // of pub ("acks")
    sb_db_t *db;
    s_item_t *items;               // the batch in hand, conf->batch_rows slots
    size_t n;                      // events in the batch
    size_t bytes;                  // their body bytes
    sb_db_event_t *events;         // scratch for sb_db_write, one per slot
    const char **ack_ids;          // scratch for sb_ack_send, one per slot
    char instance[96];             // heartbeat instance: INSTANCE_ID or host:pid
    int migrated;                  // sb_migrate succeeded on some connection
    int db_ok;                     // last database operation worked
    char db_error[SB_ERR_MSG_MAX]; // why not, for heartbeats (no secrets: libpq's text)
    int64_t next_heartbeat_ms;
    int64_t backoff_ms;          // next wait after a failure
    uint64_t rng;                // xorshift state for jitter
    volatile sig_atomic_t *stop; // sb_writer_run's flag, for the connect loop
    sb_counter_t *in[S_SOURCES];
    sb_counter_t *written[S_SOURCES][S_OUTCOMES];
    sb_counter_t *redelivered[S_SOURCES];
    sb_counter_t *malformed;  // envelopes that could not be decoded
    sb_counter_t *unstorable; // events left unacked because no row could be written
    sb_counter_t *reconnects;
    sb_histogram_t *batch_rows;
    sb_histogram_t *commit_seconds;
    sb_gauge_t *db_up;
};

int
sb_writer_config_check(const sb_writer_config_t *conf, FILE *problems)
{
    int rc = 0;
    const char *cc = conf->default_cc ? conf->default_cc : "";
    size_t len = strlen(cc);
    int digits = len >= 1 && len <= 3 && cc[0] != '0';
    for (size_t i = 0; i < len && digits; i++)
        digits = isdigit((unsigned char)cc[i]) != 0;
    if (!digits) {
        fprintf(problems,
                "config: DEFAULT_COUNTRY_CODE=\"%s\" is not a country code "
                "(1 to 3 digits, e.g. 1 or 44)\n",
                cc);
        rc = -1;
    }
    sb_log_level_t level;
    if (sb_log_level_parse(conf->log_level ? conf->log_level : "", &level) != 0) {
        fprintf(problems, "config: LOG_LEVEL=\"%s\" is not one of debug, info, warn, error\n",
                conf->log_level ? conf->log_level : "");
        rc = -1;
    }
    fflush(problems);
    return rc;
}

static void
s_register_metrics(sb_writer_t *self, sb_metrics_t *m)
{
    static const double rows[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
    char labels[128];
    for (size_t s = 0; s < S_SOURCES; s++) {
        snprintf(labels, sizeof labels, "source=\"%s\"", s_sources[s]);
        self->in[s] = sb_metrics_counter(m, "sb_events_in_total", "events received", labels);
        self->redelivered[s] = sb_metrics_counter(m, "sb_events_redelivered_total",
                                                  "events already in webhook_events", labels);
        for (size_t o = 0; o < S_OUTCOMES; o++) {
            snprintf(labels, sizeof labels, "source=\"%s\",outcome=\"%s\"", s_sources[s],
                     s_outcomes[o]);
            self->written[s][o] = sb_metrics_counter(m, "sb_events_written_total",
                                                     "webhook_events rows written", labels);
        }
    }
    self->malformed = sb_metrics_counter(m, "sb_events_malformed_total",
                                         "messages that were not an event envelope", "");
    self->unstorable = sb_metrics_counter(m, "sb_events_unstorable_total",
                                          "events no row could be written for (not acked)", "");
    self->reconnects =
        sb_metrics_counter(m, "sb_db_reconnects_total", "database connections re-established", "");
    self->batch_rows = sb_metrics_histogram(m, "sb_batch_rows", "events per transaction", "", rows,
                                            sizeof rows / sizeof rows[0]);
    self->commit_seconds =
        sb_metrics_histogram(m, "sb_commit_seconds", "time to store one batch", "",
                             sb_metrics_latency_bounds, sb_metrics_latency_bounds_n);
    self->db_up = sb_metrics_gauge(m, "sb_db_up", "1 when the database answers", "");
}

sb_writer_t *
sb_writer_new(const sb_writer_config_t *conf, sb_metrics_t *metrics, sb_err_t *err)
{
    assert(conf && metrics && conf->batch_rows >= 1);
    sb_writer_t *self = sb_xcalloc(1, sizeof *self);
    self->conf = conf;
    size_t slots = (size_t)conf->batch_rows;
    self->items = sb_xcalloc(slots, sizeof *self->items);
    self->events = sb_xcalloc(slots, sizeof *self->events);
    self->ack_ids = sb_xcalloc(slots, sizeof *self->ack_ids);
    self->db = sb_db_new(conf->database_url);
    self->backoff_ms = SB_WRITER_BACKOFF_MIN_MS;
    self->rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL);
    char *instance = sb_stage_instance(conf->instance_id);
    snprintf(self->instance, sizeof self->instance, "%s", instance);
    free(instance);
    snprintf(self->db_error, sizeof self->db_error, "not connected yet");
    s_register_metrics(self, metrics);

    self->pull = zsock_new(ZMQ_PULL);
    self->pub = zsock_new(ZMQ_PUB);
    if (self->pull == NULL || self->pub == NULL) {
        sb_err_set(err, errno, "could not create sockets");
        goto fail;
    }
    // Monitors before any bind or connect, so that no peer goes unseen.
    self->pull_mon = sb_zmonitor_new(self->pull, "pull", metrics, err);
    if (self->pull_mon == NULL)
        goto fail;
    self->pub_mon = sb_zmonitor_new(self->pub, "acks", metrics, err);
    if (self->pub_mon == NULL)
        goto fail;
    zsock_set_linger(self->pull, 0);   // what is queued and unread is not acked: resent
    zsock_set_linger(self->pub, 1000); // give the last acks a second to leave
    if (zsock_attach(self->pull, conf->pull_endpoint, true) != 0) {
        sb_err_set(err, errno, "could not attach WRITER_PULL_ENDPOINT \"%s\"", conf->pull_endpoint);
        goto fail;
    }
    self->pub_peers = sb_resolver_new(self->pub, conf->ack_endpoint, err);
    if (self->pub_peers == NULL)
        goto fail;
    self->poller = zpoller_new(self->pull, NULL);
    return self;
fail:
    sb_writer_destroy(&self);
    return NULL;
}

static void
s_batch_clear(sb_writer_t *self)
{
    for (size_t i = 0; i < self->n; i++) {
        sb_envelope_destroy(&self->items[i].env);
        sb_map_release(&self->items[i].map);
        self->items[i].state = S_PENDING;
    }
    self->n = 0;
    self->bytes = 0;
}

void
sb_writer_destroy(sb_writer_t **self_p)
{
    assert(self_p);
    sb_writer_t *self = *self_p;
    if (self == NULL)
        return;
    s_batch_clear(self);
    zpoller_destroy(&self->poller);
    sb_resolver_destroy(&self->pub_peers);
    sb_zmonitor_destroy(&self->pull_mon); // before their sockets
    sb_zmonitor_destroy(&self->pub_mon);
    zsock_destroy(&self->pull);
    zsock_destroy(&self->pub);
    sb_db_destroy(&self->db);
    free(self->items);
    free(self->events);
    free(self->ack_ids);
    free(self);
    *self_p = NULL;
}

// Heartbeat when due: {"db_ok":true} or {"db_ok":false,"db_error":"..."}.
static void
s_tick(sb_writer_t *self)
{
    int64_t now = sb_mono_ms();
    sb_err_t why = {0};
    if (sb_resolver_refresh(self->pub_peers, &why) != 0)
        sb_log_warn(NULL, "ACK_ENDPOINT: %s", why.msg);
    sb_zmonitor_drain(self->pull_mon);
    sb_zmonitor_drain(self->pub_mon);
    if (now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + SB_WRITER_HEARTBEAT_MS;
    json_t *status = json_pack("{s:b}", "db_ok", self->db_ok);
    if (!self->db_ok)
        json_object_set_new(status, "db_error", json_string(self->db_error));
    char *text = json_dumps(status, JSON_COMPACT);
    json_decref(status);
    sb_err_t err = {0};
    // A PUB socket drops rather than blocks; a failure here is only worth a debug line.
    if (sb_heartbeat_send(self->pub, "writer", self->instance, text ? text : "{}", &err) != 0)
        sb_log_debug(NULL, "%s", err.msg);
    free(text);
}

static int
s_tick_cb(void *arg)
{
    sb_writer_t *self = arg;
    s_tick(self);
    return self->stop && *self->stop;
}

static void
s_db_up(sb_writer_t *self)
{
    self->db_ok = 1;
    self->db_error[0] = '\0';
    self->backoff_ms = SB_WRITER_BACKOFF_MIN_MS;
    sb_gauge_set(self->db_up, 1);
}

static void
s_db_down(sb_writer_t *self, const char *why)
{
    if (self->db_ok || strcmp(self->db_error, why) != 0)
        sb_log_warn(NULL, "database unavailable (%s); holding %zu events, retrying", why, self->n);
    self->db_ok = 0;
    snprintf(self->db_error, sizeof self->db_error, "%s", why);
    sb_gauge_set(self->db_up, 0);
}

// Sleep the current backoff (with +-25% jitter so that replicas spread out), in small
// steps that keep heartbeats going; then double it up to the cap.
static void
s_backoff(sb_writer_t *self, volatile sig_atomic_t *stop)
{
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    int64_t span = self->backoff_ms / 2;
    int64_t wait = self->backoff_ms - span / 2 + (int64_t)(self->rng % (uint64_t)(span + 1));
    int64_t until = sb_mono_ms() + wait;
    while (!*stop) {
        int64_t left = until - sb_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts = {0, (left < SB_WRITER_STEP_MS ? left : SB_WRITER_STEP_MS) * 1000000L};
        nanosleep(&ts, NULL);
        s_tick(self);
    }
    self->backoff_ms *= 2;
    if (self->backoff_ms > SB_WRITER_BACKOFF_MAX_MS)
        self->backoff_ms = SB_WRITER_BACKOFF_MAX_MS;
}

// Connected and migrated: 0. Not reachable: -1 (retry later). A migration that fails on
// a working connection: -2, with err.
static int
s_ensure_db(sb_writer_t *self, sb_err_t *fatal)
{
    if (self->migrated && sb_db_connected(self->db))
        return 0;
    sb_err_t err = {0};
    int reconnect = self->migrated;
    if (!sb_db_connected(self->db) && sb_db_connect(self->db, s_tick_cb, self, &err) != 0) {
        s_db_down(self, err.msg);
        return -1;
    }
    if (!self->migrated) {
        PGconn *conn = sb_db_conn(self->db);
        if (sb_migrate(conn, self->conf->default_cc, &err) != 0) {
            if (PQstatus(conn) == CONNECTION_OK) {
                sb_err_set(fatal, 0, "%s", err.msg);
                return -2;
            }
            sb_db_disconnect(self->db);
            s_db_down(self, err.msg);
            return -1;
        }
        self->migrated = 1;
        sb_log_info(NULL, "database ready");
    }
    if (reconnect) {
        sb_counter_add(self->reconnects, 1);
        sb_log_info(NULL, "database connection re-established");
    }
    s_db_up(self);
    return 0;
}

static size_t
s_source_index(const char *source)
{
    for (size_t i = 0; i + 1 < S_SOURCES; i++)
        if (strcmp(source, s_sources[i]) == 0)
            return i;
    return S_SOURCES - 1;
}

// Receive one event (a message is known to be waiting) and add it to the batch.
static void
s_take(sb_writer_t *self)
{
    sb_err_t err = {0};
    sb_envelope_t *env = sb_envelope_recv(self->pull, &err);
    if (env == NULL) {
        if (err.code != EINTR) {
            sb_counter_add(self->malformed, 1);
            sb_log_warn(NULL, "dropped a message that is not an event: %s", err.msg);
        }
        return;
    }
    size_t source = s_source_index(env->source);
    sb_counter_add(self->in[source], 1);
    if (source == S_SOURCES - 1) {
        // No row can hold it (webhook_events.source is checked); only an ingress bug
        // makes one, and the ingress keeps it in its spool.
        sb_counter_add(self->unstorable, 1);
        sb_log_error(env->event_id, "unknown source, event not stored");
        sb_envelope_destroy(&env);
        return;
    }
    // The verifier already redacted; doing it again is cheap and keeps secrets out of
    // the database even for an event that took another path.
    sb_envelope_redact(env);
    s_item_t *item = &self->items[self->n++];
    item->env = env;
    item->source = source;
    item->state = S_PENDING;
    sb_map_event(env, self->conf->default_cc, &item->map);
    self->bytes += env->body_len + (env->extra ? strlen(env->extra) : 0); // fetched e-mails
}

static int
s_full(const sb_writer_t *self)
{
    return self->n >= (size_t)self->conf->batch_rows || self->bytes >= SB_WRITER_BATCH_BYTES;
}

// Take what is queued without waiting.
static void
s_drain(sb_writer_t *self)
{
    while (!s_full(self) && (zsock_events(self->pull) & ZMQ_POLLIN))
        s_take(self);
}

// Wait up to wait_ms for the first event, then take what is queued; linger a moment
// for more when the batch is small, since one transaction per event is what is slow.
static void
s_fill(sb_writer_t *self, int wait_ms)
{
    if (zpoller_wait(self->poller, wait_ms) == NULL)
        return; // timeout or signal
    s_drain(self);
    int64_t until = sb_mono_ms() + SB_WRITER_LINGER_MS;
    while (!s_full(self)) {
        int64_t left = until - sb_mono_ms();
        if (left <= 0 || zpoller_wait(self->poller, (int)left) == NULL)
            break;
        s_drain(self);
    }
}

static size_t
s_outcome_index(const char *outcome)
{
    for (size_t i = 0; i < S_OUTCOMES; i++)
        if (strcmp(outcome, s_outcomes[i]) == 0)
            return i;
    return 0;
}

// The event's row is committed: count it, and log what an operator should see.
static void
s_committed(sb_writer_t *self, s_item_t *item, const char *outcome)
{
    item->state = S_COMMITTED;
    if (outcome == NULL) {
        sb_counter_add(self->redelivered[item->source], 1);
        sb_log_debug(item->env->event_id, "already stored (redelivery)");
        return;
    }
    sb_counter_add(self->written[item->source][s_outcome_index(outcome)], 1);
    if (strcmp(outcome, "rejected") == 0)
        sb_log_info(item->env->event_id, "rejected: %s", item->map.reason);
    else if (strcmp(outcome, "ignored") == 0)
        sb_log_debug(item->env->event_id, "ignored: %s", item->map.reason);
}

// One transaction for every pending event of the batch. After SB_DB_DATA, *poison is
// the event whose statement failed (NULL when it was the COMMIT).
static sb_db_status_t
s_write_pending(sb_writer_t *self, s_item_t **poison, sb_err_t *err)
{
    *poison = NULL;
    size_t n = 0;
    for (size_t i = 0; i < self->n; i++) {
        if (self->items[i].state != S_PENDING)
            continue;
        self->events[n].env = self->items[i].env;
        self->events[n].map = &self->items[i].map;
        n++;
    }
    if (n == 0)
        return SB_DB_OK;
    sb_db_status_t st = sb_db_write(self->db, self->events, n, err);
    size_t k = 0;
    for (size_t i = 0; i < self->n; i++) {
        s_item_t *item = &self->items[i];
        if (item->state != S_PENDING)
            continue;
        if (st == SB_DB_OK)
            s_committed(self, item, self->events[k].outcome);
        else if (self->events[k].failed)
            *poison = item;
        k++;
    }
    return st;
}

// Store one event in a transaction of its own; if its data fails there too, store it
// as 'failed' with the reason; if even that is refused, leave it unacked (the ingress
// keeps it) and log an error. SB_DB_OK unless the database itself is in trouble.
static sb_db_status_t
s_write_alone(sb_writer_t *self, s_item_t *item, sb_err_t *err)
{
    sb_db_event_t ev = {item->env, &item->map, NULL, 0, NULL};
    sb_err_t why = {0};
    sb_db_status_t st = sb_db_write(self->db, &ev, 1, &why);
    if (st == SB_DB_DATA) {
        char reason[200]; // SQLSTATE and the server's primary message, never parameters
        snprintf(reason, sizeof reason, "%.199s", why.msg);
        sb_log_warn(item->env->event_id, "failed: %s", reason);
        st = sb_db_write_failed(self->db, &ev, reason, &why);
        if (st == SB_DB_DATA) {
            item->state = S_UNSTORABLE;
            sb_counter_add(self->unstorable, 1);
            sb_log_error(item->env->event_id, "cannot store event, not acked: %s", why.msg);
            return SB_DB_OK;
        }
    }
    if (st != SB_DB_OK) {
        sb_err_set(err, 0, "%s", why.msg);
        return st;
    }
    s_committed(self, item, ev.outcome);
    return SB_DB_OK;
}

// The batch failed on its data. Set the failing event aside (stored alone, as 'failed'
// if it must be) and store the rest as a batch again, until no poison is left: k poison
// events cost k + 1 batch attempts, not one transaction per event.
static sb_db_status_t
s_write_around_poison(sb_writer_t *self, s_item_t *poison, sb_err_t *err)
{
    sb_db_status_t st = SB_DB_DATA;
    while (st == SB_DB_DATA) {
        if (poison == NULL) { // the COMMIT failed (a deferred constraint): no culprit named
            for (size_t i = 0; i < self->n && st != SB_DB_CONN && st != SB_DB_TRANSIENT; i++)
                if (self->items[i].state == S_PENDING)
                    st = s_write_alone(self, &self->items[i], err);
            return st == SB_DB_DATA ? SB_DB_OK : st;
        }
        st = s_write_alone(self, poison, err);
        if (st != SB_DB_OK)
            return st;
        st = s_write_pending(self, &poison, err);
    }
    return st;
}

// Tell the ingresses what is committed. Best effort: a lost ack costs a redelivery,
// which the unique keys make harmless.
static void
s_ack(sb_writer_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n; i++)
        if (self->items[i].state == S_COMMITTED)
            self->ack_ids[n++] = self->items[i].env->event_id;
    sb_err_t err = {0};
    if (n > 0 && sb_ack_send(self->pub, self->ack_ids, n, &err) != 0)
        sb_log_warn(NULL, "%s", err.msg);
}

int
sb_writer_commit(sb_writer_t *self, sb_err_t *err)
{
    if (self->n == 0)
        return 0;
    double started = sb_mono_s();
    s_item_t *poison = NULL;
    sb_db_status_t st = s_write_pending(self, &poison, err);
    if (st == SB_DB_DATA) {
        sb_log_warn(poison ? poison->env->event_id : NULL,
                    "batch of %zu events failed (%s); storing the rest without this event", self->n,
                    err->msg);
        st = s_write_around_poison(self, poison, err);
    }
    if (st != SB_DB_OK)
        return -1; // the batch stays; events already committed will read as redeliveries
    sb_histogram_observe(self->commit_seconds, sb_mono_s() - started);
    sb_histogram_observe(self->batch_rows, (double)self->n);
    sb_log_debug(NULL, "committed %zu events in %.1f ms", self->n,
                 (sb_mono_s() - started) * 1000.0);
    s_ack(self); // only now: an ack promises the rows are durable
    s_batch_clear(self);
    return 0;
}

int
sb_writer_run(sb_writer_t *self, volatile sig_atomic_t *stop, sb_err_t *err)
{
    self->stop = stop;
    for (;;) {
        s_tick(self);
        // On a signal, finish the batch in hand if the database is there; otherwise the
        // ingress still has those events and sends them again to whoever runs next.
        if (*stop && (self->n == 0 || !sb_db_connected(self->db)))
            break;
        int ready = s_ensure_db(self, err);
        if (ready == -2)
            return -1;
        if (ready != 0) {
            s_backoff(self, stop);
            continue;
        }
        if (self->n == 0) {
            if (!*stop)
                s_fill(self, SB_WRITER_RECV_MS);
            continue;
        }
        sb_err_t why = {0};
        if (sb_writer_commit(self, &why) == 0) {
            if (!self->db_ok)
                sb_log_info(NULL, "database writes work again");
            s_db_up(self);
            continue;
        }
        s_db_down(self, why.msg);
        if (*stop)
            break;
        s_backoff(self, stop);
    }
    if (self->n > 0)
        sb_log_warn(NULL, "stopping with %zu uncommitted events; the ingress will resend them",
                    self->n);
    return 0;
}
