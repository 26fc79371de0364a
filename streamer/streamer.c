/* streamer - sb-streamer: LISTEN -> hub -> Server-Sent Events (see the header). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <openssl/rand.h>
#include "streamer.h"
#include "hub.h"
#include "sse.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_metrics.h"
#include "sb_net.h"
#include "sb_banned.h"

#define SB_OFF(field) offsetof(sb_streamer_config_t, field)
#define S_POLL_MS 500 // the LISTEN thread checks its stop flag this often

// The channels relayed, as the triggers of writer/migrations name them.
static const char *const s_channels[] = {"communications", "customers_backfill", "outbox_status"};
#define S_N_CHANNELS (sizeof s_channels / sizeof s_channels[0])

const sb_config_var_t sb_streamer_config_vars[] = {
    {"LOG_LEVEL", SB_CONFIG_STRING, SB_OFF(log_level), "info", 0, 0, 0,
     "debug, info, warn or error"},
    {"DATABASE_URL", SB_CONFIG_STRING, SB_OFF(database_url), NULL, 0, 0,
     SB_CONFIG_REQUIRED | SB_CONFIG_SECRET, "PostgreSQL URL whose notifications are relayed"},
    {"STREAM_LISTEN", SB_CONFIG_STRING, SB_OFF(listen), "0.0.0.0:8002", 0, 0, 0,
     "host:port of GET " SB_STREAMER_PATH},
    {"STREAM_TOKEN", SB_CONFIG_STRING, SB_OFF(token), NULL, 0, 0,
     SB_CONFIG_REQUIRED | SB_CONFIG_SECRET,
     "bearer token a client must send (Authorization: Bearer, or ?token=)"},
    {"METRICS_LISTEN", SB_CONFIG_STRING, SB_OFF(metrics_listen), "0.0.0.0:9107", 0, 0, 0,
     "host:port of GET /metrics and GET /health"},
    {"STREAM_ALLOW_ORIGIN", SB_CONFIG_STRING, SB_OFF(allow_origin), NULL, 0, 0, 0,
     "Access-Control-Allow-Origin of the stream, for a UI served from another origin"},
    {"STREAM_MAX_CLIENTS", SB_CONFIG_INT, SB_OFF(max_clients), "100", 1, 10000, 0,
     "open streams at most; more get 503 with Retry-After"},
    {"STREAM_HEARTBEAT_MS", SB_CONFIG_INT, SB_OFF(heartbeat_ms), "15000", 100, 300000, 0,
     "a keep-alive comment after this long without an event"},
    {"STREAM_BACKLOG", SB_CONFIG_INT, SB_OFF(backlog), "1024", 1, 1000000, 0,
     "events kept for slow clients and Last-Event-ID resumption"},
};
const size_t sb_streamer_config_vars_n =
    sizeof sb_streamer_config_vars / sizeof sb_streamer_config_vars[0];

int
sb_streamer_config_check(const sb_streamer_config_t *conf, FILE *problems)
{
    int rc = sb_config_check_log_level(conf->log_level, problems);
    struct sockaddr_in addr;
    sb_err_t err = {0};
    if (sb_net_parse_listen(conf->listen, &addr, &err) != 0) {
        fprintf(problems, "config: STREAM_LISTEN=\"%s\": %s\n", conf->listen, err.msg);
        rc = -1;
    }
    if (conf->allow_origin && strpbrk(conf->allow_origin, "\r\n")) {
        fprintf(problems, "config: STREAM_ALLOW_ORIGIN must be one line\n");
        rc = -1;
    }
    return rc;
}

struct sb_streamer {
    const sb_streamer_config_t *conf; // borrowed
    char epoch[SB_SSE_EPOCH_MAX];     // this boot: the first part of every event id
    sb_hub_t *hub;                    // notifications for the streams
    struct MHD_Daemon *http;          // the streams, one thread each
    pthread_t listener;               // the LISTEN connection
    int listener_started;
    atomic_int stop;                     // the LISTEN thread ends
    long clients;                        // open streams, under clients_lock
    pthread_mutex_t clients_lock;        // count and gauge change together
    sb_metrics_t *metrics;               //
    sb_metrics_server_t *metrics_server; //
    sb_gauge_t *clients_gauge;           // open streams
    sb_gauge_t *db_up;                   // 1 while LISTENing
    sb_counter_t *notifications;         // received from the database
    sb_counter_t *sent;                  // events written to streams
    sb_counter_t *unauthorized;          // requests without the token
    sb_counter_t *refused;               // 503: too many streams
    sb_counter_t *resyncs;               // resync events sent (lag or reconnect)
};

// One stream.
typedef struct {
    sb_streamer_t *self;
    uint64_t next;       // the hub cursor
    int64_t customer_id; // filter; 0 for all
    int started;         // the preamble went out
    char *pending;       // framed text not yet handed to MHD
    size_t pending_len, pending_off;
} s_client_t;

// --- The LISTEN thread -------------------------------------------------------------------------

static int
s_stopping(sb_streamer_t *self)
{
    return atomic_load(&self->stop);
}

static void
s_sleep_ms(sb_streamer_t *self, int64_t ms)
{
    while (ms > 0 && !s_stopping(self)) {
        int64_t step = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static PGconn *
s_listen_connect(sb_streamer_t *self)
{
    PGconn *conn = PQconnectdb(self->conf->database_url);
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(conn);
        sb_log_warn(NULL, "could not connect to the database: %.*s", (int)strcspn(msg, "\n"), msg);
        PQfinish(conn);
        return NULL;
    }
    for (size_t i = 0; i < S_N_CHANNELS; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "LISTEN %s", s_channels[i]);
        PGresult *res = PQexec(conn, sql);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            sb_log_warn(NULL, "could not %s: %s", sql, PQerrorMessage(conn));
            PQfinish(conn);
            return NULL;
        }
    }
    return conn;
}

// Relay notifications until the connection breaks or we stop.
static void
s_listen_loop(sb_streamer_t *self, PGconn *conn)
{
    while (!s_stopping(self)) {
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        int n = poll(&pfd, 1, S_POLL_MS);
        if (n < 0 && errno != EINTR)
            return;
        if (n <= 0)
            continue;
        if (PQconsumeInput(conn) == 0) {
            const char *msg = PQerrorMessage(conn);
            sb_log_warn(NULL, "database connection lost: %.*s", (int)strcspn(msg, "\n"), msg);
            return;
        }
        PGnotify *note;
        while ((note = PQnotifies(conn)) != NULL) {
            sb_hub_publish(self->hub, note->relname, note->extra);
            sb_counter_add(self->notifications, 1);
            PQfreemem(note);
        }
    }
}

static void *
s_listener(void *arg)
{
    sb_streamer_t *self = arg;
    int64_t wait_ms = 0;
    int connected_before = 0;
    while (!s_stopping(self)) {
        PGconn *conn = s_listen_connect(self);
        if (conn == NULL) {
            wait_ms = wait_ms ? wait_ms * 2 : 100;
            if (wait_ms > SB_STREAMER_RECONNECT_MAX_MS)
                wait_ms = SB_STREAMER_RECONNECT_MAX_MS;
            s_sleep_ms(self, wait_ms);
            continue;
        }
        wait_ms = 0;
        sb_gauge_set(self->db_up, 1);
        sb_log_info(NULL, "listening on the database's notifications");
        if (connected_before) {
            // Whatever was notified while we were away is lost: clients reload.
            sb_hub_publish(self->hub, "resync", "{\"reason\":\"database_reconnected\"}");
        }
        connected_before = 1;
        s_listen_loop(self, conn);
        sb_gauge_set(self->db_up, 0);
        PQfinish(conn);
    }
    return NULL;
}

// --- Streams -----------------------------------------------------------------------------------

static void
s_pending_set(s_client_t *c, char *text, size_t len)
{
    free(c->pending);
    c->pending = text;
    c->pending_len = len;
    c->pending_off = 0;
}

// Fill c->pending with what goes out next; 0, or -1 at the end of the stream.
static int
s_next_text(s_client_t *c)
{
    sb_streamer_t *self = c->self;
    if (!c->started) {
        c->started = 1;
        char *text = sb_xasprintf("retry: %d\n: switchboard stream %s\n\n", SB_STREAMER_RETRY_MS,
                                  self->epoch);
        s_pending_set(c, text, strlen(text));
        return 0;
    }
    for (;;) {
        sb_hub_event_t ev;
        switch (sb_hub_wait(self->hub, &c->next, self->conf->heartbeat_ms, &ev)) {
        case SB_HUB_EVENT: {
            int resync = strcmp(ev.channel, "resync") == 0;
            if (!resync && !sb_sse_matches(ev.data, c->customer_id)) {
                sb_hub_event_release(&ev);
                continue;
            }
            size_t len;
            char *text = sb_sse_event(self->epoch, ev.seq, ev.channel, ev.data, &len);
            sb_counter_add(resync ? self->resyncs : self->sent, 1);
            sb_hub_event_release(&ev);
            s_pending_set(c, text, len);
            return 0;
        }
        case SB_HUB_LAGGED: {
            size_t len;
            char *text =
                sb_sse_event(self->epoch, c->next - 1, "resync", "{\"reason\":\"lagged\"}", &len);
            sb_counter_add(self->resyncs, 1);
            s_pending_set(c, text, len);
            return 0;
        }
        case SB_HUB_TIMEOUT:
            s_pending_set(c, sb_xstrdup(": keep-alive\n\n"), strlen(": keep-alive\n\n"));
            return 0;
        default:
            return -1;
        }
    }
}

// libmicrohttpd's content callback; this connection's own thread, so blocking is fine.
static ssize_t
s_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    s_client_t *c = cls;
    if (c->pending_off >= c->pending_len && s_next_text(c) != 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = c->pending_len - c->pending_off;
    if (n > max)
        n = max;
    memcpy(buf, c->pending + c->pending_off, n);
    c->pending_off += n;
    return (ssize_t)n;
}

// Add delta to the open streams unless that would pass limit (then 0 is returned and
// nothing changes); the new count otherwise. The gauge is set under the same lock:
// with an atomic count, two streams closing at once could leave it at the older value.
static long
s_clients_add(sb_streamer_t *self, long delta, long limit)
{
    pthread_mutex_lock(&self->clients_lock);
    long n = self->clients + delta;
    if (n > limit) {
        n = 0;
    } else {
        self->clients = n;
        sb_gauge_set(self->clients_gauge, (double)n);
    }
    pthread_mutex_unlock(&self->clients_lock);
    return n;
}

static void
s_client_free(void *cls)
{
    s_client_t *c = cls;
    s_clients_add(c->self, -1, LONG_MAX);
    free(c->pending);
    free(c);
}

static enum MHD_Result
s_answer(struct MHD_Connection *conn, unsigned int status, const char *body, const char *name,
         const char *value)
{
    struct MHD_Response *res =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (name)
        MHD_add_response_header(res, name, value);
    enum MHD_Result rc = MHD_queue_response(conn, status, res);
    MHD_destroy_response(res);
    return rc;
}

// The customer_id filter: 0 (none), the id, or -1 when it is not a positive integer.
static int64_t
s_customer_filter(struct MHD_Connection *conn)
{
    const char *text = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "customer_id");
    if (text == NULL)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    return errno || end == text || *end || v <= 0 ? -1 : (int64_t)v;
}

static enum MHD_Result
s_stream(sb_streamer_t *self, struct MHD_Connection *conn)
{
    int64_t customer = s_customer_filter(conn);
    if (customer < 0)
        return s_answer(conn, MHD_HTTP_BAD_REQUEST,
                        "{\"error\":\"customer_id must be a positive integer\"}", NULL, NULL);
    if (s_clients_add(self, 1, self->conf->max_clients) == 0) {
        sb_counter_add(self->refused, 1);
        return s_answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"error\":\"too many streams\"}",
                        MHD_HTTP_HEADER_RETRY_AFTER, "5");
    }
    s_client_t *c = sb_xcalloc(1, sizeof *c);
    c->self = self;
    c->customer_id = customer;
    c->next = sb_hub_head(self->hub);
    uint64_t last;
    const char *resume = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (sb_sse_resume(resume, self->epoch, &last) && last < c->next)
        c->next = last + 1; // a lagged resume gets its resync from the hub
    struct MHD_Response *res =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, s_read, c, s_client_free);
    if (res == NULL) {
        s_client_free(c);
        return MHD_NO;
    }
    MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(res, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(res, "X-Accel-Buffering", "no"); // nginx: do not buffer the stream
    if (self->conf->allow_origin && self->conf->allow_origin[0])
        MHD_add_response_header(res, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN,
                                self->conf->allow_origin);
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, res);
    MHD_destroy_response(res); // the connection holds it; s_client_free runs at its end
    return rc;
}

static enum MHD_Result
s_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
         const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    (void)upload_data;
    sb_streamer_t *self = cls;
    if (*state == NULL) { // the headers are in
        *state = self;
        return MHD_YES;
    }
    if (*upload_size != 0) { // a body (never wanted here) is read and dropped
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, SB_STREAMER_PATH) != 0)
        return s_answer(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}", NULL, NULL);
    if (strcmp(method, "GET") != 0)
        return s_answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method not allowed\"}",
                        MHD_HTTP_HEADER_ALLOW, "GET");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *token = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    if (!sb_sse_auth_ok(auth, token, self->conf->token)) {
        sb_counter_add(self->unauthorized, 1);
        return s_answer(conn, MHD_HTTP_UNAUTHORIZED, "{\"error\":\"unauthorized\"}",
                        MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
    return s_stream(self, conn);
}

// --- Construction ------------------------------------------------------------------------------

static void
s_metrics(sb_streamer_t *self)
{
    sb_metrics_t *m = self->metrics;
    self->clients_gauge = sb_metrics_gauge(m, "sb_streamer_clients", "open streams", "");
    self->db_up =
        sb_metrics_gauge(m, "sb_streamer_database_up", "1 while the LISTEN connection is up", "");
    self->notifications = sb_metrics_counter(m, "sb_streamer_notifications_total",
                                             "notifications received from the database", "");
    self->sent = sb_metrics_counter(m, "sb_streamer_events_sent_total",
                                    "events written to streams (per stream)", "");
    self->unauthorized = sb_metrics_counter(m, "sb_streamer_unauthorized_total",
                                            "requests without the right token", "");
    self->refused = sb_metrics_counter(m, "sb_streamer_refused_total",
                                       "streams refused with 503 (STREAM_MAX_CLIENTS)", "");
    self->resyncs = sb_metrics_counter(m, "sb_streamer_resyncs_total",
                                       "resync events sent (a slow client, a lost connection)", "");
}

sb_streamer_t *
sb_streamer_new(const sb_streamer_config_t *conf, sb_err_t *err)
{
    sb_streamer_t *self = sb_xcalloc(1, sizeof *self);
    self->conf = conf;
    pthread_mutex_init(&self->clients_lock, NULL);
    unsigned char rnd[4];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        sb_err_set(err, 0, "could not get random bytes for the stream epoch");
        goto fail;
    }
    snprintf(self->epoch, sizeof self->epoch, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    self->hub = sb_hub_new((size_t)conf->backlog);
    self->metrics = sb_metrics_new();
    s_metrics(self);
    self->metrics_server = sb_metrics_serve(self->metrics, conf->metrics_listen, "streamer", err);
    if (self->metrics_server == NULL)
        goto fail;
    struct sockaddr_in addr;
    if (sb_net_parse_listen(conf->listen, &addr, err) != 0)
        goto fail;
    self->http = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, s_handle,
        self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)SB_STREAMER_CONN_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)(conf->max_clients + SB_STREAMER_SPARE_CONNECTIONS), MHD_OPTION_END);
    if (self->http == NULL) {
        sb_err_set(err, errno, "could not serve the stream on \"%s\"", conf->listen);
        goto fail;
    }
    if (pthread_create(&self->listener, NULL, s_listener, self) != 0) {
        sb_err_set(err, errno, "could not start the LISTEN thread");
        goto fail;
    }
    self->listener_started = 1;
    return self;
fail:
    sb_streamer_destroy(&self);
    return NULL;
}

void
sb_streamer_destroy(sb_streamer_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sb_streamer_t *self = *self_p;
    atomic_store(&self->stop, 1);
    if (self->listener_started)
        pthread_join(self->listener, NULL);
    if (self->hub)
        sb_hub_close(self->hub); // every stream ends at its next read
    if (self->http)
        MHD_stop_daemon(self->http); // joins the connection threads
    sb_metrics_server_destroy(&self->metrics_server);
    sb_metrics_destroy(&self->metrics);
    sb_hub_destroy(&self->hub);
    pthread_mutex_destroy(&self->clients_lock);
    free(self);
    *self_p = NULL;
}
