/* sb_metrics - Prometheus counters, gauges and histograms, and the tiny HTTP server
 * that every stage uses for GET /metrics (text exposition format 0.0.4) and
 * GET /health. Registration takes a lock; updates are lock-free atomics, so any
 * thread may update while the server thread renders. Handles live as long as the
 * registry. Asking twice for the same name and labels returns the same handle.
 *
 *   sb_metrics_t *m = sb_metrics_new();
 *   sb_counter_t *in = sb_metrics_counter(m, "sb_events_in_total", "events received",
 *                                         "source=\"ringcentral_sms\"");
 *   sb_counter_add(in, 1);
 *   sb_metrics_server_t *srv = sb_metrics_serve(m, "0.0.0.0:9102", &err);
 */
#ifndef SB_METRICS_H
#define SB_METRICS_H
#include <stddef.h>
#include <stdint.h>
#include "sb_err.h"

typedef struct sb_metrics sb_metrics_t;
typedef struct sb_counter sb_counter_t;
typedef struct sb_gauge sb_gauge_t;
typedef struct sb_histogram sb_histogram_t;
typedef struct sb_metrics_server sb_metrics_server_t;

sb_metrics_t *sb_metrics_new(void);
void sb_metrics_destroy(sb_metrics_t **self_p);

// labels: Prometheus label text without braces, e.g. "source=\"x\",outcome=\"y\"", or "".
sb_counter_t *sb_metrics_counter(sb_metrics_t *self, const char *name, const char *help,
                                 const char *labels);
sb_gauge_t *sb_metrics_gauge(sb_metrics_t *self, const char *name, const char *help,
                             const char *labels);
// bounds: ascending upper bounds (the +Inf bucket is added), copied.
sb_histogram_t *sb_metrics_histogram(sb_metrics_t *self, const char *name, const char *help,
                                     const char *labels, const double *bounds, size_t n_bounds);

void sb_counter_add(sb_counter_t *c, uint64_t n);
uint64_t sb_counter_value(const sb_counter_t *c);
void sb_gauge_set(sb_gauge_t *g, double v);
double sb_gauge_value(const sb_gauge_t *g);
void sb_histogram_observe(sb_histogram_t *h, double v);

// Latency buckets in seconds from 0.5 ms to 10 s, for sb_metrics_histogram.
extern const double sb_metrics_latency_bounds[];
extern const size_t sb_metrics_latency_bounds_n;

// The whole registry as Prometheus text; *len gets its length. Caller frees.
char *sb_metrics_render(sb_metrics_t *self, size_t *len);

// Serve GET /metrics and GET /health on listen ("host:port", e.g. "0.0.0.0:9102")
// from a thread of its own. /health answers 200 {"status":"ok","stage":...}.
sb_metrics_server_t *sb_metrics_serve(sb_metrics_t *self, const char *listen, const char *stage,
                                      sb_err_t *err);
void sb_metrics_server_destroy(sb_metrics_server_t **self_p);

#endif
