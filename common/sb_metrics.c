/* sb_metrics - Prometheus counters, gauges and histograms, and GET /metrics (sb_metrics.h).
 *
 * The registry is a list of families (one per metric name, in order of first
 * registration), each with its series (one per label set). Registration and rendering
 * take the registry mutex; updates touch only C11 atomics, so the hot path never locks
 * and the server thread can render while stages count. Nodes are never freed before the
 * registry, so a handle stays valid for the registry's life.
 *
 * A gauge keeps the bits of its double in an _Atomic uint64_t (C11 has no portable atomic
 * double). A histogram counts each bucket on its own (not cumulative) so an observation
 * is one fetch_add; render adds them up. Its _count is rendered as the +Inf bucket's
 * cumulative count, so the two always agree even while observations arrive; its _sum is a
 * double updated with a compare-and-swap loop.
 *
 * Asking for an existing name with a different type is a programmer error and aborts; a
 * histogram asked for again keeps the bounds it was first registered with.
 * Destroy the server before the registry it renders. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <jansson.h>
#include <microhttpd.h>
#include "sb_mem.h"
#include "sb_metrics.h"
#include "sb_net.h"
#include "sb_banned.h"

#define SB_METRICS_CONN_TIMEOUT_S 10 // idle scrape connections closed after this; 5-60
#define SB_METRICS_CONN_LIMIT 32     // concurrent connections; a scraper uses one or two

const double sb_metrics_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t sb_metrics_latency_bounds_n =
    sizeof sb_metrics_latency_bounds / sizeof sb_metrics_latency_bounds[0];

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_kind_t;

struct sb_counter {
    _Atomic uint64_t value; // monotonic
};

struct sb_gauge {
    _Atomic uint64_t bits; // the double's bit pattern
};

struct sb_histogram {
    double *bounds;            // ascending upper bounds, n_bounds of them (copied)
    size_t n_bounds;           // the +Inf bucket is buckets[n_bounds]
    _Atomic uint64_t *buckets; // n_bounds + 1 counts, each bucket on its own
    _Atomic uint64_t sum_bits; // the double sum of observations, as bits
};

typedef struct s_series {
    char *labels;          // label text without braces, "" for none
    struct s_series *next; // next series of the same family, in registration order
    union {
        struct sb_counter counter;
        struct sb_gauge gauge;
        struct sb_histogram histogram;
    } u; // by the family's kind; handles point in here
} s_series_t;

typedef struct s_family {
    char *name;            // metric name, e.g. "sb_events_in_total"
    char *help;            // HELP text as given
    s_kind_t kind;         // every series of a name has the same type
    s_series_t *head;      // series in registration order
    s_series_t **tail;     // where the next series goes
    struct s_family *next; // next family in registration order
} s_family_t;

struct sb_metrics {
    pthread_mutex_t lock; // guards the lists (registration, rendering), not the values
    s_family_t *head;     // families in order of first registration
    s_family_t **tail;    // where the next family goes
};

struct sb_metrics_server {
    struct MHD_Daemon *daemon; // owns the listening socket and the polling thread
    sb_metrics_t *metrics;     // borrowed: rendered on every GET /metrics
    char *health;              // {"status":"ok","stage":"..."}
};

static uint64_t
s_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static double
s_double(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

sb_metrics_t *
sb_metrics_new(void)
{
    sb_metrics_t *self = sb_xcalloc(1, sizeof *self);
    pthread_mutex_init(&self->lock, NULL);
    self->tail = &self->head;
    return self;
}

void
sb_metrics_destroy(sb_metrics_t **self_p)
{
    assert(self_p);
    sb_metrics_t *self = *self_p;
    if (self == NULL)
        return;
    for (s_family_t *f = self->head, *fnext; f; f = fnext) {
        fnext = f->next;
        for (s_series_t *s = f->head, *snext; s; s = snext) {
            snext = s->next;
            if (f->kind == S_HISTOGRAM) {
                free(s->u.histogram.bounds);
                free((void *)s->u.histogram.buckets);
            }
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

// Find or create the series name{labels}. Returns it with *created set when new, so the
// caller can initialise the kind-specific part while still holding the lock.
static s_series_t *
s_series_get(sb_metrics_t *self, s_kind_t kind, const char *name, const char *help,
             const char *labels, bool *created)
{
    assert(self && name);
    labels = labels ? labels : "";
    s_family_t *f = self->head;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (f && f->kind != kind)
        abort(); // one name, two types: a programmer error Prometheus would reject
    if (f == NULL) {
        f = sb_xcalloc(1, sizeof *f);
        f->name = sb_xstrdup(name);
        f->help = sb_xstrdup(help ? help : "");
        f->kind = kind;
        f->tail = &f->head;
        *self->tail = f;
        self->tail = &f->next;
    }
    for (s_series_t *s = f->head; s; s = s->next) {
        if (strcmp(s->labels, labels) == 0) {
            *created = false;
            return s;
        }
    }
    s_series_t *s = sb_xcalloc(1, sizeof *s);
    s->labels = sb_xstrdup(labels);
    *f->tail = s;
    f->tail = &s->next;
    *created = true;
    return s;
}

sb_counter_t *
sb_metrics_counter(sb_metrics_t *self, const char *name, const char *help, const char *labels)
{
    bool created;
    pthread_mutex_lock(&self->lock);
    s_series_t *s = s_series_get(self, S_COUNTER, name, help, labels, &created);
    if (created)
        atomic_init(&s->u.counter.value, 0);
    pthread_mutex_unlock(&self->lock);
    return &s->u.counter;
}

sb_gauge_t *
sb_metrics_gauge(sb_metrics_t *self, const char *name, const char *help, const char *labels)
{
    bool created;
    pthread_mutex_lock(&self->lock);
    s_series_t *s = s_series_get(self, S_GAUGE, name, help, labels, &created);
    if (created)
        atomic_init(&s->u.gauge.bits, s_bits(0.0));
    pthread_mutex_unlock(&self->lock);
    return &s->u.gauge;
}

sb_histogram_t *
sb_metrics_histogram(sb_metrics_t *self, const char *name, const char *help, const char *labels,
                     const double *bounds, size_t n_bounds)
{
    assert(bounds || n_bounds == 0);
    for (size_t i = 1; i < n_bounds; i++)
        assert(bounds[i - 1] < bounds[i]);
    bool created;
    pthread_mutex_lock(&self->lock);
    s_series_t *s = s_series_get(self, S_HISTOGRAM, name, help, labels, &created);
    if (created) {
        struct sb_histogram *h = &s->u.histogram;
        h->n_bounds = n_bounds;
        h->bounds = sb_xmalloc(n_bounds * sizeof *h->bounds);
        if (n_bounds > 0)
            memcpy(h->bounds, bounds, n_bounds * sizeof *h->bounds);
        h->buckets = sb_xmalloc((n_bounds + 1) * sizeof *h->buckets);
        for (size_t i = 0; i <= n_bounds; i++)
            atomic_init(&h->buckets[i], 0);
        atomic_init(&h->sum_bits, s_bits(0.0));
    }
    pthread_mutex_unlock(&self->lock);
    return &s->u.histogram;
}

// Updates: relaxed ordering is enough, since each value stands alone and the scrape only
// needs to see it eventually.

void
sb_counter_add(sb_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t
sb_counter_value(const sb_counter_t *c)
{
    return atomic_load_explicit(&((sb_counter_t *)c)->value, memory_order_relaxed);
}

void
sb_gauge_set(sb_gauge_t *g, double v)
{
    atomic_store_explicit(&g->bits, s_bits(v), memory_order_relaxed);
}

double
sb_gauge_value(const sb_gauge_t *g)
{
    return s_double(atomic_load_explicit(&((sb_gauge_t *)g)->bits, memory_order_relaxed));
}

void
sb_histogram_observe(sb_histogram_t *h, double v)
{
    size_t i = 0; // the first bucket whose bound holds v; NaN ends in +Inf
    while (i < h->n_bounds && !(v <= h->bounds[i]))
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, s_bits(s_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ; // old now holds the current sum: add to that
}

// ---------------------------------------------------------------------------------------
// Rendering: Prometheus text exposition format 0.0.4.

typedef struct {
    char *buf;  // NUL-terminated
    size_t len; // bytes before the NUL
    size_t cap; // bytes allocated
} s_buf_t;

static void
s_buf_add(s_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->buf = sb_xrealloc(b->buf, cap);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void
s_buf_puts(s_buf_t *b, const char *s)
{
    s_buf_add(b, s, strlen(s));
}

// The shortest decimal that reads back as the same double ("0.0005", not
// "0.00050000000000000001"), and +Inf, -Inf, NaN as the format spells them.
static void
s_format_double(char *out, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
    } else if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, size, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, size, "%.17g", v);
    }
}

// HELP text escapes backslash and newline (format 0.0.4).
static void
s_put_help(s_buf_t *b, const s_family_t *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    s_buf_puts(b, "# HELP ");
    s_buf_puts(b, f->name);
    s_buf_add(b, " ", 1);
    for (const char *p = f->help; *p; p++) {
        if (*p == '\\')
            s_buf_puts(b, "\\\\");
        else if (*p == '\n')
            s_buf_puts(b, "\\n");
        else
            s_buf_add(b, p, 1);
    }
    s_buf_puts(b, "\n# TYPE ");
    s_buf_puts(b, f->name);
    s_buf_add(b, " ", 1);
    s_buf_puts(b, types[f->kind]);
    s_buf_add(b, "\n", 1);
}

// One line: name[suffix]{labels[,extra]} value
static void
s_put_sample(s_buf_t *b, const char *name, const char *suffix, const char *labels,
             const char *extra, const char *value)
{
    s_buf_puts(b, name);
    s_buf_puts(b, suffix);
    bool has_labels = labels[0] != '\0', has_extra = extra[0] != '\0';
    if (has_labels || has_extra) {
        s_buf_add(b, "{", 1);
        s_buf_puts(b, labels);
        if (has_labels && has_extra)
            s_buf_add(b, ",", 1);
        s_buf_puts(b, extra);
        s_buf_add(b, "}", 1);
    }
    s_buf_add(b, " ", 1);
    s_buf_puts(b, value);
    s_buf_add(b, "\n", 1);
}

static void
s_put_histogram(s_buf_t *b, const char *name, const s_series_t *s)
{
    const struct sb_histogram *h = &s->u.histogram;
    char value[32], bound[32], le[48];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cumulative +=
            atomic_load_explicit(&((struct sb_histogram *)h)->buckets[i], memory_order_relaxed);
        s_format_double(bound, sizeof bound, i < h->n_bounds ? h->bounds[i] : INFINITY);
        snprintf(le, sizeof le, "le=\"%s\"", bound);
        snprintf(value, sizeof value, "%" PRIu64, cumulative);
        s_put_sample(b, name, "_bucket", s->labels, le, value);
    }
    uint64_t sum_bits =
        atomic_load_explicit(&((struct sb_histogram *)h)->sum_bits, memory_order_relaxed);
    s_format_double(value, sizeof value, s_double(sum_bits));
    s_put_sample(b, name, "_sum", s->labels, "", value);
    snprintf(value, sizeof value, "%" PRIu64, cumulative);
    s_put_sample(b, name, "_count", s->labels, "", value);
}

char *
sb_metrics_render(sb_metrics_t *self, size_t *len)
{
    s_buf_t b = {0};
    s_buf_add(&b, "", 0); // an empty registry renders as ""
    pthread_mutex_lock(&self->lock);
    for (const s_family_t *f = self->head; f; f = f->next) {
        s_put_help(&b, f);
        for (const s_series_t *s = f->head; s; s = s->next) {
            char value[32];
            switch (f->kind) {
            case S_COUNTER:
                snprintf(value, sizeof value, "%" PRIu64, sb_counter_value(&s->u.counter));
                s_put_sample(&b, f->name, "", s->labels, "", value);
                break;
            case S_GAUGE:
                s_format_double(value, sizeof value, sb_gauge_value(&s->u.gauge));
                s_put_sample(&b, f->name, "", s->labels, "", value);
                break;
            case S_HISTOGRAM:
                s_put_histogram(&b, f->name, s);
                break;
            }
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (len)
        *len = b.len;
    return b.buf;
}

// ---------------------------------------------------------------------------------------
// The HTTP server: libmicrohttpd with its own polling thread.

static enum MHD_Result
s_reply(struct MHD_Connection *conn, unsigned int status, const char *type, char *body, size_t len)
{
    // MUST_FREE hands body (malloc'd) to MHD, which frees it after sending.
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result
s_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
         const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    sb_metrics_server_t *self = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return s_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                       sb_xstrdup("method not allowed\n"), 19);
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        char *body = sb_metrics_render(self->metrics, &len);
        return s_reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
    }
    if (strcmp(url, "/health") == 0)
        return s_reply(conn, MHD_HTTP_OK, "application/json", sb_xstrdup(self->health),
                       strlen(self->health));
    return s_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", sb_xstrdup("not found\n"),
                   10);
}

static char *
s_health_body(const char *stage)
{
    json_t *obj = json_pack("{s:s, s:s}", "status", "ok", "stage", stage ? stage : "");
    if (obj == NULL)
        abort(); // jansson fails only on OOM or invalid UTF-8 in a compiled-in name
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (text == NULL)
        abort();
    char *copy = sb_xstrdup(text); // ours to free() whatever allocator jansson uses
    free(text);
    return copy;
}

sb_metrics_server_t *
sb_metrics_serve(sb_metrics_t *self, const char *listen, const char *stage, sb_err_t *err)
{
    assert(self);
    struct sockaddr_in addr;
    if (sb_net_parse_listen(listen, &addr, err) != 0)
        return NULL;
    sb_metrics_server_t *srv = sb_xcalloc(1, sizeof *srv);
    srv->metrics = self;
    srv->health = s_health_body(stage);
    // No MHD_USE_ERROR_LOG: libmicrohttpd would print free text to stderr, and every
    // stderr line must be sb_log JSON. Port 0 in listen binds an ephemeral port. MHD sets
    // SO_REUSEADDR itself; MHD_OPTION_LISTENING_ADDRESS_REUSE is left out on purpose, as its
    // SO_REUSEPORT would let a second copy share the port and answer half the scrapes.
    errno = 0;
    srv->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, s_handle, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)SB_METRICS_CONN_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)SB_METRICS_CONN_LIMIT, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        // MHD has no error out-parameter; errno is still bind's when bind failed
        // (EADDRINUSE, the usual cause), and 0 when MHD failed before any system call.
        sb_err_set(err, errno, "could not serve /metrics on \"%s\"", listen);
        sb_metrics_server_destroy(&srv);
        return NULL;
    }
    return srv;
}

void
sb_metrics_server_destroy(sb_metrics_server_t **self_p)
{
    assert(self_p);
    sb_metrics_server_t *self = *self_p;
    if (self == NULL)
        return;
    if (self->daemon)
        MHD_stop_daemon(self->daemon); // joins the polling thread: no render after this
    free(self->health);
    free(self);
    *self_p = NULL;
}
