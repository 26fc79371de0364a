/* fetch - the enricher's HTTP client: many requests in flight on one libcurl multi
 * handle, driven from the stage's single zmq_poll loop (no threads), with retries.
 *
 *   sb_fetch_req_t *req = sb_fetch_req_new(url);
 *   sb_fetch_req_bearer(req, access_token);          // optional
 *   sb_fetch_start(fetch, req, on_done, arg);        // fetch owns req from here
 *   ... loop: n = sb_fetch_pollitems(fetch, items, max); zmq_poll(items, n, timeout)
 *             with timeout <= sb_fetch_timeout_ms(fetch); sb_fetch_process(fetch, items, n)
 *   on_done(req, arg) runs from sb_fetch_process exactly once per request; req is freed
 *   when it returns. It may start new requests.
 *
 * Retries: a transport failure (connect, timeout, reset ...), 408, 429 or 5xx is tried
 * again up to max_attempts in all, after a backoff that doubles from backoff_ms to
 * backoff_max_ms with +-50% jitter (so that many requests failing together do not come
 * back together); a Retry-After header longer than that wins, up to backoff_max_ms.
 * on_done then sees the last attempt: status 0 (no answer) or the HTTP status. Other
 * answers (2xx, 3xx, 4xx) are final at once: what 401 or 404 mean is the caller's call.
 * At most max_inflight transfers run at once; the others wait their turn in order. */
#ifndef SB_FETCH_H
#define SB_FETCH_H
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>
#include "sb_err.h"
#include "sb_metrics.h"

typedef struct {
    int max_inflight;       // transfers at once; 1..
    int64_t timeout_ms;     // one attempt, connect to last byte
    int max_attempts;       // 1 = no retry
    int64_t backoff_ms;     // wait before the second attempt
    int64_t backoff_max_ms; // cap of the doubling wait
    size_t max_body_bytes;  // a larger answer is a failed attempt (not retried)
} sb_fetch_options_t;

typedef struct sb_fetch sb_fetch_t;
typedef struct sb_fetch_req sb_fetch_req_t;
typedef void(sb_fetch_done_fn)(sb_fetch_req_t *req, void *arg);

// metrics may be NULL; otherwise sb_fetch_* series are registered in it.
sb_fetch_t *sb_fetch_new(const sb_fetch_options_t *options, sb_metrics_t *metrics, sb_err_t *err);
// Abandons what is still running or waiting: no callback runs.
void sb_fetch_destroy(sb_fetch_t **self_p);

// A GET of url (copied).
sb_fetch_req_t *sb_fetch_req_new(const char *url);
// "Authorization: Bearer <token>" (copied; wiped when the request is freed).
void sb_fetch_req_bearer(sb_fetch_req_t *req, const char *token);
// "Authorization: <value>" instead, e.g. "Basic ..." for RingCentral's token endpoint
// (copied; wiped when the request is freed).
void sb_fetch_req_authorization(sb_fetch_req_t *req, const char *value);
// Make it a POST of an application/x-www-form-urlencoded body (copied; wiped).
void sb_fetch_req_form(sb_fetch_req_t *req, const char *body);
// A short name for metrics and logs ("history", "message", "token" ...); static text.
void sb_fetch_req_label(sb_fetch_req_t *req, const char *label);

// Queue req (owned from now on); done(req, arg) follows from a later sb_fetch_process.
void sb_fetch_start(sb_fetch_t *self, sb_fetch_req_t *req, sb_fetch_done_fn *done, void *arg);

// In the done callback: the outcome of the last attempt.
long sb_fetch_req_status(const sb_fetch_req_t *req);                   // HTTP status, 0 if none
const char *sb_fetch_req_body(const sb_fetch_req_t *req, size_t *len); // never NULL ("" if none)
const char *sb_fetch_req_error(const sb_fetch_req_t *req);             // why status is 0, or ""
int sb_fetch_req_attempts(const sb_fetch_req_t *req);
int64_t sb_fetch_req_elapsed_ms(const sb_fetch_req_t *req); // first start to the end

// Loop integration. Fill items[0, max) with the transfers' sockets (zmq_pollitem_t with
// socket NULL and fd set) and return how many; max should be at least
// sb_fetch_sockets(self).
size_t sb_fetch_sockets(const sb_fetch_t *self);
size_t sb_fetch_pollitems(const sb_fetch_t *self, zmq_pollitem_t *items, size_t max);
// Milliseconds until sb_fetch_process has timer work (libcurl's timeouts, due retries),
// at most cap_ms; 0 when it has some now.
int sb_fetch_timeout_ms(const sb_fetch_t *self, int cap_ms);
// Act on the revents of the items that sb_fetch_pollitems filled, run due timers, start
// waiting requests and call the done callbacks of finished ones.
void sb_fetch_process(sb_fetch_t *self, const zmq_pollitem_t *items, size_t n);
// Requests not yet done: running, waiting for a slot or for a retry.
size_t sb_fetch_pending(const sb_fetch_t *self);

#endif
