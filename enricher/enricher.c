/* enricher - the stage's loop, its sockets and the table of source handlers (see
 * enricher.h). Invariants: every event read leaves exactly once, forwarded or dropped;
 * events leave in the order their handlers finish them; nothing here blocks except
 * zmq_poll. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>
#include "enricher.h"
#include "gmail.h"
#include "enrich_ringcentral.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_stage.h"
#include "sb_resolver.h"
#include "sb_zmonitor.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_POLL_MAX_MS 250 // longest sleep: stop signals and heartbeats are seen this often
#define S_READ_BATCH 64   // events read per loop turn when more are queued

#define SB_OFF(field) offsetof(sb_enricher_config_t, field)
const sb_config_var_t sb_enricher_config_vars[] = {
    {"LOG_LEVEL", SB_CONFIG_STRING, SB_OFF(log_level), "info", 0, 0, 0,
     "debug, info, warn or error"},
    {"ENRICHER_PULL_ENDPOINT", SB_CONFIG_STRING, SB_OFF(pull_endpoint), "@tcp://*:5560", 0, 0, 0,
     "where verified events arrive (CZMQ endpoints, comma-separated)"},
    {"ENRICHER_PUSH_ENDPOINT", SB_CONFIG_STRING, SB_OFF(push_endpoint), ">tcp://127.0.0.1:5558", 0,
     0, 0, "every writer replica (CZMQ endpoints)"},
    {"ACK_ENDPOINT", SB_CONFIG_STRING, SB_OFF(ack_endpoint), ">tcp://127.0.0.1:5559", 0, 0, 0,
     "every ingress's ack endpoint, for heartbeats (CZMQ endpoints)"},
    {"METRICS_LISTEN", SB_CONFIG_STRING, SB_OFF(metrics_listen), "0.0.0.0:9103", 0, 0, 0,
     "host:port of GET /metrics and GET /health"},
    {"INSTANCE_ID", SB_CONFIG_STRING, SB_OFF(instance_id), NULL, 0, 0, 0,
     "name of this replica in heartbeats (default <hostname>:<pid>)"},
    {"DATABASE_URL", SB_CONFIG_STRING, SB_OFF(database_url), NULL, 0, 0,
     SB_CONFIG_REQUIRED | SB_CONFIG_SECRET, "PostgreSQL URL: mailboxes are read from it"},
    {"GOOGLE_CLIENT_ID", SB_CONFIG_STRING, SB_OFF(google_client_id), NULL, 0, 0, 0,
     "OAuth client of the Gmail mailboxes' refresh tokens"},
    {"GOOGLE_CLIENT_SECRET", SB_CONFIG_STRING, SB_OFF(google_client_secret), NULL, 0, 0,
     SB_CONFIG_SECRET, "its secret"},
    {"GOOGLE_TOKEN_URL", SB_CONFIG_STRING, SB_OFF(google_token_url),
     "https://oauth2.googleapis.com/token", 0, 0, 0, "OAuth token endpoint"},
    {"GMAIL_API_BASE_URL", SB_CONFIG_STRING, SB_OFF(gmail_api_base_url),
     "https://gmail.googleapis.com", 0, 0, 0, "Gmail API root (a fake server in tests)"},
    {"SWITCHBOARD_SECRET_KEY", SB_CONFIG_STRING, SB_OFF(secret_key), NULL, 0, 0, SB_CONFIG_SECRET,
     "key that sealed the mailboxes' refresh tokens (sbctl mailbox add): 64 hex digits"},
    {"GMAIL_FULL_SYNC_MAX_MESSAGES", SB_CONFIG_INT, SB_OFF(gmail_full_sync_max), "100", 1, 500, 0,
     "recent INBOX messages taken when the stored checkpoint is too old"},
    {"GMAIL_MAX_MESSAGES_PER_PUSH", SB_CONFIG_INT, SB_OFF(gmail_max_messages), "1000", 1, 10000, 0,
     "messages fetched for one push; the rest come with the next one"},
    {"RINGCENTRAL_SERVER_URL", SB_CONFIG_STRING, SB_OFF(rc_server_url),
     "https://platform.ringcentral.com", 0, 0, 0, "RingCentral API root (message-store fetches)"},
    {"RINGCENTRAL_CLIENT_ID", SB_CONFIG_STRING, SB_OFF(rc_client_id), NULL, 0, 0, 0,
     "RingCentral app client id"},
    {"RINGCENTRAL_CLIENT_SECRET", SB_CONFIG_STRING, SB_OFF(rc_client_secret), NULL, 0, 0,
     SB_CONFIG_SECRET, "RingCentral app client secret"},
    {"RINGCENTRAL_JWT", SB_CONFIG_STRING, SB_OFF(rc_jwt), NULL, 0, 0, SB_CONFIG_SECRET,
     "RingCentral JWT credential (JWT bearer grant)"},
    {"DEFAULT_COUNTRY_CODE", SB_CONFIG_STRING, SB_OFF(default_cc), "1", 0, 0, 0,
     "country code given to national phone numbers (digits)"},
    {"ENRICHER_MAX_INFLIGHT", SB_CONFIG_INT, SB_OFF(max_inflight), "256", 1, 4096, 0,
     "provider HTTP requests running at once"},
    {"ENRICHER_MAX_EVENTS", SB_CONFIG_INT, SB_OFF(max_events), "1000", 1, 100000, 0,
     "events being enriched at once; no more is read meanwhile"},
    {"ENRICHER_HTTP_TIMEOUT_MS", SB_CONFIG_INT, SB_OFF(http_timeout_ms), "15000", 100, 300000, 0,
     "one provider request attempt, connect to last byte"},
    {"ENRICHER_HTTP_ATTEMPTS", SB_CONFIG_INT, SB_OFF(http_attempts), "4", 1, 10, 0,
     "tries of a request that fails transiently (5xx, 429, timeout)"},
    {"ENRICHER_HTTP_BACKOFF_MS", SB_CONFIG_INT, SB_OFF(http_backoff_ms), "200", 1, 60000, 0,
     "wait before the second try; doubles, with jitter"},
};
const size_t sb_enricher_config_vars_n =
    sizeof sb_enricher_config_vars / sizeof sb_enricher_config_vars[0];

// --- The handler table (the extension point of enricher.h) ---------------------------------

typedef struct {
    const char *source;                                  // envelope frame [2]
    void *(*create)(sb_enricher_t *self, sb_err_t *err); // state, or NULL and err
    void (*destroy)(void **state_p);
    void (*handle)(void *state, sb_enricher_t *self, sb_envelope_t *env); // owns env
} s_handler_t;

static const s_handler_t s_handlers[] = {
    {"gmail_push", sb_gmail_handler_new, sb_gmail_handler_destroy, sb_gmail_handler_handle},
    {"ringcentral_sms", sb_rc_handler_new, sb_rc_handler_destroy, sb_rc_handler_handle},
};
#define S_N_HANDLERS (sizeof s_handlers / sizeof s_handlers[0])

// Metric label of a source: known names only, never text from the network.
static const char *const s_sources[] = {"ringcentral_sms", "ringcentral_call", "gmail_push",
                                        "unknown"};
#define S_N_SOURCES (sizeof s_sources / sizeof s_sources[0])

static size_t
s_source_index(const char *source)
{
    for (size_t i = 0; source != NULL && i + 1 < S_N_SOURCES; i++)
        if (strcmp(source, s_sources[i]) == 0)
            return i;
    return S_N_SOURCES - 1;
}

// --- The stage ---------------------------------------------------------------------------

typedef struct s_timer {
    int64_t due_ms;           // monotonic
    sb_enricher_timer_fn *fn; // what to run
    void *arg;                // its argument
    struct s_timer *next;     // unordered list
} s_timer_t;

typedef struct s_out {
    sb_envelope_t *env; // owned, waiting to be sent
    int enriched;       // an extra was added (metrics)
    struct s_out *next; // FIFO
} s_out_t;

struct sb_enricher {
    const sb_enricher_config_t *conf;   // borrowed from main
    zsock_t *pull;                      // events in
    zsock_t *push;                      // events out, never blocking (outq holds the rest)
    zsock_t *pub;                       // heartbeats, NULL without ACK_ENDPOINT
    sb_resolver_t *push_peers;          // push to every writer replica (compose --scale)
    sb_resolver_t *pub_peers;           // pub to every ingress replica, or NULL
    sb_zmonitor_t *pull_mon;            // sb_zmq_* of pull ("pull")
    sb_zmonitor_t *push_mon;            // of push ("push")
    sb_zmonitor_t *pub_mon;             // of pub ("heartbeat"), NULL without it
    sb_fetch_t *fetch;                  // every HTTP request
    void *state[S_N_HANDLERS];          // each handler's
    s_out_t *out_head, *out_tail;       // events finished, not yet sent
    size_t n_out;                       // length of that queue
    size_t in_hand;                     // events owned by handlers
    s_timer_t *timers;                  // pending one-shot timers
    zmq_pollitem_t *items;              // poll set, rebuilt every turn
    size_t cap_items;                   // of items
    char *instance;                     // name in heartbeats
    int64_t next_heartbeat_ms;          // monotonic
    int blocked;                        // the last send hit the high-water mark
    int stopping;                       // a stop was asked for: no more reading
    sb_metrics_t *metrics;              // owned registry
    sb_metrics_server_t *server;        // GET /metrics, NULL when not listening
    sb_counter_t *in[S_N_SOURCES];      // sb_events_in_total{source}
    sb_counter_t *out[S_N_SOURCES][2];  // sb_events_out_total{source,enriched}
    sb_counter_t *dropped[S_N_SOURCES]; // sb_events_dropped_total{source}
    sb_counter_t *malformed;            // sb_malformed_envelopes_total
    sb_counter_t *send_failed;          // sb_forward_failures_total
    sb_gauge_t *g_in_hand;              // sb_events_in_hand
    sb_histogram_t *enrich_seconds;     // sb_enrich_duration_seconds
};

int
sb_enricher_config_check(const sb_enricher_config_t *conf, FILE *problems)
{
    int rc = sb_config_check_log_level(conf->log_level, problems);
    if (sb_config_check_country_code(conf->default_cc, problems) != 0)
        rc = -1;
    const char *urls[][2] = {{"GOOGLE_TOKEN_URL", conf->google_token_url},
                             {"GMAIL_API_BASE_URL", conf->gmail_api_base_url},
                             {"RINGCENTRAL_SERVER_URL", conf->rc_server_url}};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
        if (sb_config_check_url(urls[i][0], urls[i][1], problems) != 0)
            rc = -1;
    fflush(problems);
    return rc;
}

static void
s_metrics_register(sb_enricher_t *self)
{
    sb_metrics_t *m = self->metrics;
    char labels[128];
    for (size_t i = 0; i < S_N_SOURCES; i++) {
        snprintf(labels, sizeof labels, "source=\"%s\"", s_sources[i]);
        self->in[i] = sb_metrics_counter(m, "sb_events_in_total", "events received", labels);
        self->dropped[i] = sb_metrics_counter(
            m, "sb_events_dropped_total", "events given up for redelivery by the ingress", labels);
        for (int e = 0; e < 2; e++) {
            snprintf(labels, sizeof labels, "source=\"%s\",enriched=\"%s\"", s_sources[i],
                     e ? "yes" : "no");
            self->out[i][e] =
                sb_metrics_counter(m, "sb_events_out_total", "events passed on", labels);
        }
    }
    self->malformed = sb_metrics_counter(m, "sb_malformed_envelopes_total",
                                         "messages that were not envelopes (dropped)", "");
    self->send_failed = sb_metrics_counter(m, "sb_forward_failures_total",
                                           "events not passed on (the ingress resends)", "");
    self->g_in_hand = sb_metrics_gauge(m, "sb_events_in_hand", "events being enriched", "");
    self->enrich_seconds = sb_metrics_histogram(
        m, "sb_enrich_duration_seconds", "time from reading an event to passing it on", "",
        sb_metrics_latency_bounds, sb_metrics_latency_bounds_n);
}

sb_enricher_t *
sb_enricher_new(const sb_enricher_config_t *conf, sb_err_t *err)
{
    sb_enricher_t *self = sb_xcalloc(1, sizeof *self);
    self->conf = conf;
    self->instance = sb_stage_instance(conf->instance_id);
    self->metrics = sb_metrics_new();
    s_metrics_register(self);
    sb_fetch_options_t opt = {
        .max_inflight = (int)conf->max_inflight,
        .timeout_ms = conf->http_timeout_ms,
        .max_attempts = (int)conf->http_attempts,
        .backoff_ms = conf->http_backoff_ms,
        .backoff_max_ms = conf->http_backoff_ms * 16,
        .max_body_bytes = 64u << 20, // a Gmail message with format=full stays far below
    };
    self->fetch = sb_fetch_new(&opt, self->metrics, err);
    if (self->fetch == NULL)
        goto fail;
    self->pull = sb_stage_socket_monitored(ZMQ_PULL, conf->pull_endpoint, true, "pull",
                                           self->metrics, &self->pull_mon, err);
    if (self->pull == NULL)
        goto fail;
    self->push = sb_stage_push_socket(conf->push_endpoint, SB_ENRICHER_PUSH_LINGER_MS,
                                      self->metrics, &self->push_mon, &self->push_peers, err);
    if (self->push == NULL)
        goto fail;
    zsock_set_linger(self->pull, 0); // unread events were never acked: the ingress resends
    if (sb_config_is_set(conf->ack_endpoint)) {
        self->pub = sb_stage_heartbeat_socket(conf->ack_endpoint, self->metrics, &self->pub_mon,
                                              &self->pub_peers, err);
        if (self->pub == NULL)
            goto fail;
    }
    for (size_t i = 0; i < S_N_HANDLERS; i++) {
        self->state[i] = s_handlers[i].create(self, err);
        if (self->state[i] == NULL)
            goto fail;
    }
    if (sb_config_is_set(conf->metrics_listen)) {
        self->server = sb_metrics_serve(self->metrics, conf->metrics_listen, "enricher", err);
        if (self->server == NULL)
            goto fail;
    }
    self->next_heartbeat_ms = sb_mono_ms();
    return self;
fail:
    sb_enricher_destroy(&self);
    return NULL;
}

void
sb_enricher_destroy(sb_enricher_t **self_p)
{
    assert(self_p);
    sb_enricher_t *self = *self_p;
    if (self == NULL)
        return;
    sb_metrics_server_destroy(&self->server); // first: it reads the registry
    sb_fetch_destroy(&self->fetch);           // no callback runs after this
    while (self->timers != NULL) {            // nor any timer
        s_timer_t *t = self->timers;
        self->timers = t->next;
        free(t);
    }
    for (size_t i = 0; i < S_N_HANDLERS; i++) // frees the events they still hold
        if (self->state[i] != NULL)
            s_handlers[i].destroy(&self->state[i]);
    while (self->out_head != NULL) {
        s_out_t *o = self->out_head;
        self->out_head = o->next;
        sb_envelope_destroy(&o->env);
        free(o);
    }
    sb_resolver_destroy(&self->pub_peers); // before their sockets
    sb_resolver_destroy(&self->push_peers);
    sb_zmonitor_destroy(&self->pub_mon); // before their sockets too
    sb_zmonitor_destroy(&self->push_mon);
    sb_zmonitor_destroy(&self->pull_mon);
    zsock_destroy(&self->pub);
    zsock_destroy(&self->push);
    zsock_destroy(&self->pull);
    sb_metrics_destroy(&self->metrics);
    free(self->items);
    free(self->instance);
    free(self);
    *self_p = NULL;
}

const sb_enricher_config_t *
sb_enricher_config(const sb_enricher_t *self)
{
    return self->conf;
}

sb_metrics_t *
sb_enricher_metrics(sb_enricher_t *self)
{
    return self->metrics;
}

int
sb_enricher_stopping(const sb_enricher_t *self)
{
    return self->stopping;
}

void
sb_enricher_fetch(sb_enricher_t *self, sb_fetch_req_t *req, sb_fetch_done_fn *done, void *arg)
{
    sb_fetch_start(self->fetch, req, done, arg);
}

void
sb_enricher_timer(sb_enricher_t *self, int64_t delay_ms, sb_enricher_timer_fn *fn, void *arg)
{
    s_timer_t *t = sb_xcalloc(1, sizeof *t);
    t->due_ms = sb_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->fn = fn;
    t->arg = arg;
    t->next = self->timers;
    self->timers = t;
}

// The time an event was read is not kept in the envelope; the ingress's received_at is
// close enough for a latency histogram of the whole hop.
static void
s_queue_out(sb_enricher_t *self, sb_envelope_t *env, int enriched)
{
    s_out_t *o = sb_xcalloc(1, sizeof *o);
    o->env = env;
    o->enriched = enriched;
    if (self->out_tail != NULL)
        self->out_tail->next = o;
    else
        self->out_head = o;
    self->out_tail = o;
    self->n_out++;
}

void
sb_enricher_forward(sb_enricher_t *self, sb_envelope_t **env_p, const char *extra)
{
    assert(env_p && *env_p && self->in_hand > 0);
    sb_envelope_t *env = *env_p;
    *env_p = NULL;
    self->in_hand--;
    if (extra != NULL)
        sb_envelope_set(&env->extra, extra);
    int64_t wall_ms = sb_wall_ms(); // ms: time(NULL) lost the sub-second part
    if (wall_ms >= env->received_at_ms)
        sb_histogram_observe(self->enrich_seconds, (double)(wall_ms - env->received_at_ms) / 1e3);
    s_queue_out(self, env, extra != NULL);
}

void
sb_enricher_drop(sb_enricher_t *self, sb_envelope_t **env_p, const char *why)
{
    assert(env_p && *env_p && self->in_hand > 0);
    sb_envelope_t *env = *env_p;
    self->in_hand--;
    sb_counter_add(self->dropped[s_source_index(env->source)], 1);
    sb_log_warn(env->event_id, "not passed on, the ingress will send it again: %s", why);
    sb_envelope_destroy(env_p);
}

// Send what is queued without blocking; stop at the high-water mark.
static void
s_flush(sb_enricher_t *self)
{
    while (self->out_head != NULL) {
        s_out_t *o = self->out_head;
        sb_err_t err = {0};
        if (sb_envelope_send(o->env, self->push, 1, &err) != 0) {
            if (err.code == EAGAIN || err.code == EINTR) {
                if (!self->blocked)
                    sb_log_warn(o->env->event_id, "next stage is not taking events; waiting");
                self->blocked = 1;
                return;
            }
            sb_counter_add(self->send_failed, 1);
            sb_log_error(o->env->event_id, "could not pass the event on: %s", err.msg);
        } else {
            self->blocked = 0;
            sb_counter_add(self->out[s_source_index(o->env->source)][o->enriched], 1);
        }
        self->out_head = o->next;
        if (self->out_head == NULL)
            self->out_tail = NULL;
        self->n_out--;
        sb_envelope_destroy(&o->env);
        free(o);
    }
}

static const s_handler_t *
s_handler(const sb_envelope_t *env, size_t *index)
{
    if (env->verdict == NULL || strcmp(env->verdict, "accepted") != 0 || env->source == NULL)
        return NULL; // rejected: the writer stores it as it is
    if (env->extra != NULL && env->extra[0] != '\0')
        return NULL; // already enriched (never made by the ingress; kept as it is)
    for (size_t i = 0; i < S_N_HANDLERS; i++) {
        if (strcmp(env->source, s_handlers[i].source) == 0) {
            *index = i;
            return &s_handlers[i];
        }
    }
    return NULL;
}

static void
s_take(sb_enricher_t *self)
{
    sb_err_t err = {0};
    sb_envelope_t *env = sb_envelope_recv(self->pull, &err);
    if (env == NULL) {
        if (err.code != EINTR && err.code != EAGAIN) {
            sb_counter_add(self->malformed, 1);
            sb_log_warn(NULL, "dropped a malformed envelope: %s", err.msg);
        }
        return;
    }
    sb_counter_add(self->in[s_source_index(env->source)], 1);
    size_t index = 0;
    const s_handler_t *handler = s_handler(env, &index);
    if (handler == NULL) {
        s_queue_out(self, env, 0); // nothing to fetch: straight on
        return;
    }
    self->in_hand++;
    handler->handle(self->state[index], self, env);
}

static int
s_can_read(const sb_enricher_t *self)
{
    return !self->stopping && self->in_hand < (size_t)self->conf->max_events &&
           self->n_out < SB_ENRICHER_OUT_MAX;
}

static void
s_heartbeat_maybe(sb_enricher_t *self)
{
    int64_t now = sb_mono_ms();
    if (self->pub == NULL || now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + SB_ENRICHER_HEARTBEAT_MS;
    char status[128];
    if (self->blocked)
        snprintf(status, sizeof status,
                 "{\"ok\":false,\"reason\":\"downstream_blocked\",\"in_hand\":%zu}", self->in_hand);
    else
        snprintf(status, sizeof status, "{\"ok\":true,\"in_hand\":%zu}", self->in_hand);
    sb_err_t err = {0};
    if (sb_heartbeat_send(self->pub, "enricher", self->instance, status, &err) != 0)
        sb_log_debug(NULL, "could not send a heartbeat: %s", err.msg);
}

// Run the timers that are due; they may add timers (those wait for the next turn).
static void
s_timers_run(sb_enricher_t *self)
{
    int64_t now = sb_mono_ms();
    s_timer_t *due = NULL, **link = &self->timers;
    while (*link != NULL) {
        s_timer_t *t = *link;
        if (t->due_ms <= now) {
            *link = t->next;
            t->next = due;
            due = t;
        } else {
            link = &t->next;
        }
    }
    while (due != NULL) {
        s_timer_t *t = due;
        due = t->next;
        t->fn(t->arg);
        free(t);
    }
}

static int
s_timeout_ms(const sb_enricher_t *self)
{
    int timeout = sb_fetch_timeout_ms(self->fetch, S_POLL_MAX_MS);
    int64_t now = sb_mono_ms();
    for (const s_timer_t *t = self->timers; t != NULL; t = t->next)
        if (t->due_ms - now < timeout)
            timeout = t->due_ms <= now ? 0 : (int)(t->due_ms - now);
    if (self->pub != NULL && self->next_heartbeat_ms - now < timeout)
        timeout = self->next_heartbeat_ms <= now ? 0 : (int)(self->next_heartbeat_ms - now);
    return timeout;
}

// Connect to replicas that appeared behind a name, drop those that went (sb_resolver.h),
// and count and log what the sockets saw of their peers (sb_zmonitor.h).
static void
s_peers_refresh(sb_enricher_t *self)
{
    sb_err_t err = {0};
    if (sb_resolver_refresh(self->push_peers, &err) != 0)
        sb_log_warn(NULL, "ENRICHER_PUSH_ENDPOINT: %s", err.msg);
    if (self->pub_peers != NULL && sb_resolver_refresh(self->pub_peers, &err) != 0)
        sb_log_warn(NULL, "ACK_ENDPOINT: %s", err.msg);
    sb_zmonitor_drain(self->pull_mon);
    sb_zmonitor_drain(self->push_mon);
    if (self->pub_mon != NULL)
        sb_zmonitor_drain(self->pub_mon);
}

// One loop turn: wait for sockets, transfers and timers, then act on what is ready.
static void
s_turn(sb_enricher_t *self)
{
    size_t need = 2 + sb_fetch_sockets(self->fetch);
    if (need > self->cap_items) {
        self->cap_items = need * 2;
        self->items = sb_xrealloc(self->items, self->cap_items * sizeof *self->items);
    }
    zmq_pollitem_t *items = self->items;
    int reading = s_can_read(self);
    items[0] = (zmq_pollitem_t){zsock_resolve(self->pull), 0, reading ? ZMQ_POLLIN : 0, 0};
    items[1] = (zmq_pollitem_t){zsock_resolve(self->push), 0, self->n_out ? ZMQ_POLLOUT : 0, 0};
    size_t n = 2 + sb_fetch_pollitems(self->fetch, items + 2, self->cap_items - 2);
    int ready = zmq_poll(items, (int)n, s_timeout_ms(self));
    if (ready < 0 && errno != EINTR)
        sb_log_error(NULL, "zmq_poll failed: %s", zmq_strerror(errno));
    if (ready > 0 && (items[1].revents & ZMQ_POLLOUT))
        s_flush(self);
    if (ready > 0 && (items[0].revents & ZMQ_POLLIN)) {
        // What is already queued, without a poll per event, but bounded so that the
        // transfers are served under a flood too.
        for (int i = 0;
             i < S_READ_BATCH && s_can_read(self) && (zsock_events(self->pull) & ZMQ_POLLIN); i++)
            s_take(self);
    }
    sb_fetch_process(self->fetch, items + 2, ready > 0 ? n - 2 : 0);
    s_timers_run(self);
    s_flush(self);
    s_heartbeat_maybe(self);
    s_peers_refresh(self);
    sb_gauge_set(self->g_in_hand, (double)self->in_hand);
}

int
sb_enricher_run(sb_enricher_t *self, volatile sig_atomic_t *stop)
{
    int64_t deadline = 0;
    for (;;) {
        if (*stop && !self->stopping) {
            self->stopping = 1;
            deadline = sb_mono_ms() + SB_ENRICHER_DRAIN_MS;
            sb_log_info(NULL, "stopping: finishing %zu events in hand", self->in_hand);
        }
        if (self->stopping && self->in_hand == 0 && self->n_out == 0)
            return 0;
        if (self->stopping && sb_mono_ms() >= deadline) {
            sb_log_warn(NULL,
                        "stopping with %zu events unfinished and %zu unsent; the ingress "
                        "will send them again",
                        self->in_hand, self->n_out);
            return -1;
        }
        s_turn(self);
    }
}
