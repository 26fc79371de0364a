/* fetch - libcurl multi driven by the caller's zmq_poll (see fetch.h). libcurl tells us
 * which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it
 * (CURLMOPT_TIMERFUNCTION); we keep both here and hand them to the loop as pollitems.
 * Invariants: a request is in exactly one place: the waiting queue, the retry list, or
 * running on the multi handle (running counts those). Its callback runs once, from
 * sb_fetch_process, never from inside a libcurl call. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include "fetch.h"
#include "sb_mem.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_CONNECT_TIMEOUT_MS 5000 // connect phase of one attempt (capped by timeout_ms)
#define S_USER_AGENT "switchboard-enricher/" SB_VERSION

struct sb_fetch_req {
    char *url;                   // owned
    char *auth;                  // "Authorization: Bearer ..." (secret), or NULL
    char *form;                  // POST body (may hold secrets), or NULL: GET
    const char *label;           // static, for metrics
    sb_fetch_done_fn *done;      // the caller's callback
    void *arg;                   // its argument
    CURL *easy;                  // while running
    struct curl_slist *headers;  // while running
    char *body;                  // the answer of the current attempt
    size_t len, cap;             // of body
    int too_big;                 // the answer exceeded max_body_bytes
    long status;                 // HTTP status of the last attempt, 0 when none
    CURLcode result;             // libcurl's result of the last attempt
    char error[CURL_ERROR_SIZE]; // libcurl's error text of the last attempt
    int attempts;                // started so far
    int64_t retry_after_ms;      // Retry-After of the last answer, 0 when none
    int64_t first_ms;            // when the first attempt started
    int64_t due_ms;              // in the retry list: when to try again
    sb_fetch_t *owner;           // for the write callback's limit
    struct sb_fetch_req *next;   // queue / retry list link
    struct sb_fetch_req *rprev;  // running list links
    struct sb_fetch_req *rnext;  //
};

typedef struct {
    curl_socket_t fd; // a socket libcurl wants watched
    int what;         // CURL_POLL_IN, _OUT or _INOUT
} s_sock_t;

struct sb_fetch {
    sb_fetch_options_t opt;    // copied
    CURLM *multi;              // all transfers
    s_sock_t *socks;           // watched sockets
    size_t n_socks, cap_socks; // of socks
    int64_t curl_due_ms;       // libcurl's timer, -1 when none
    sb_fetch_req_t *wait_head; // waiting for a slot, FIFO
    sb_fetch_req_t *wait_tail; //
    sb_fetch_req_t *retry;     // waiting for a retry, unordered
    size_t n_wait, n_retry;    // lengths of those lists
    int running;               // transfers on the multi handle
    sb_fetch_req_t *run_head;  // those transfers' requests
    uint64_t rng;              // xorshift state for jitter
    sb_metrics_t *metrics;     // borrowed, or NULL
    sb_histogram_t *seconds;   // sb_fetch_duration_seconds
    sb_gauge_t *inflight;      // sb_fetch_inflight
};

// --- Requests ---------------------------------------------------------------------------

sb_fetch_req_t *
sb_fetch_req_new(const char *url)
{
    sb_fetch_req_t *req = sb_xcalloc(1, sizeof *req);
    req->url = sb_xstrdup(url);
    req->label = "other";
    return req;
}

static void
s_wipe_free(char *text)
{
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
}

void
sb_fetch_req_bearer(sb_fetch_req_t *req, const char *token)
{
    s_wipe_free(req->auth);
    req->auth = sb_xasprintf("Authorization: Bearer %s", token);
}

void
sb_fetch_req_authorization(sb_fetch_req_t *req, const char *value)
{
    s_wipe_free(req->auth);
    req->auth = sb_xasprintf("Authorization: %s", value);
}

void
sb_fetch_req_form(sb_fetch_req_t *req, const char *body)
{
    s_wipe_free(req->form);
    req->form = sb_xstrdup(body);
}

void
sb_fetch_req_label(sb_fetch_req_t *req, const char *label)
{
    req->label = label;
}

static void
s_body_reset(sb_fetch_req_t *req)
{
    if (req->body != NULL)
        OPENSSL_cleanse(req->body, req->len); // a token answer holds a secret
    req->len = 0;
    req->too_big = 0;
    if (req->body != NULL)
        req->body[0] = '\0';
}

static void
s_req_destroy(sb_fetch_req_t **req_p)
{
    sb_fetch_req_t *req = *req_p;
    if (req == NULL)
        return;
    if (req->easy != NULL)
        curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    s_body_reset(req);
    free(req->body);
    free(req->url);
    s_wipe_free(req->auth);
    s_wipe_free(req->form);
    free(req);
    *req_p = NULL;
}

long
sb_fetch_req_status(const sb_fetch_req_t *req)
{
    return req->status;
}

const char *
sb_fetch_req_body(const sb_fetch_req_t *req, size_t *len)
{
    if (len != NULL)
        *len = req->len;
    return req->body ? req->body : "";
}

const char *
sb_fetch_req_error(const sb_fetch_req_t *req)
{
    if (req->too_big)
        return "answer too large";
    return req->error;
}

int
sb_fetch_req_attempts(const sb_fetch_req_t *req)
{
    return req->attempts;
}

int64_t
sb_fetch_req_elapsed_ms(const sb_fetch_req_t *req)
{
    return sb_mono_ms() - req->first_ms;
}

// --- libcurl callbacks --------------------------------------------------------------------

static size_t
s_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    sb_fetch_req_t *req = arg;
    size_t n = size * nmemb;
    if (req->len + n > req->owner->opt.max_body_bytes) {
        req->too_big = 1;
        return 0; // CURLE_WRITE_ERROR ends the transfer
    }
    if (req->len + n + 1 > req->cap) {
        req->cap = (req->len + n + 1) * 2;
        req->body = sb_xrealloc(req->body, req->cap);
    }
    memcpy(req->body + req->len, ptr, n);
    req->len += n;
    req->body[req->len] = '\0';
    return n;
}

static int
s_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    sb_fetch_t *self = userp;
    size_t i = 0;
    while (i < self->n_socks && self->socks[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < self->n_socks)
            self->socks[i] = self->socks[--self->n_socks];
        return 0;
    }
    if (i == self->n_socks) {
        if (self->n_socks == self->cap_socks) {
            self->cap_socks = self->cap_socks ? self->cap_socks * 2 : 16;
            self->socks = sb_xrealloc(self->socks, self->cap_socks * sizeof *self->socks);
        }
        self->n_socks++;
    }
    self->socks[i].fd = fd;
    self->socks[i].what = what;
    return 0;
}

static int
s_on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    sb_fetch_t *self = userp;
    self->curl_due_ms = timeout_ms < 0 ? -1 : sb_mono_ms() + timeout_ms;
    return 0;
}

// --- The object ---------------------------------------------------------------------------

sb_fetch_t *
sb_fetch_new(const sb_fetch_options_t *options, sb_metrics_t *metrics, sb_err_t *err)
{
    assert(options && options->max_inflight >= 1 && options->max_attempts >= 1);
    sb_fetch_t *self = sb_xcalloc(1, sizeof *self);
    self->opt = *options;
    self->curl_due_ms = -1;
    self->rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL) ^ 0x5bd1e995;
    self->multi = curl_multi_init();
    if (self->multi == NULL) {
        sb_err_set(err, 0, "could not create a libcurl multi handle");
        free(self);
        return NULL;
    }
    curl_multi_setopt(self->multi, CURLMOPT_SOCKETFUNCTION, s_on_socket);
    curl_multi_setopt(self->multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt(self->multi, CURLMOPT_TIMERFUNCTION, s_on_timer);
    curl_multi_setopt(self->multi, CURLMOPT_TIMERDATA, self);
    // Keep a connection per running transfer, so that a burst reuses them all.
    curl_multi_setopt(self->multi, CURLMOPT_MAXCONNECTS, (long)options->max_inflight + 8);
    self->metrics = metrics;
    if (metrics != NULL) {
        self->seconds = sb_metrics_histogram(
            metrics, "sb_fetch_duration_seconds", "provider request time, retries included", "",
            sb_metrics_latency_bounds, sb_metrics_latency_bounds_n);
        self->inflight =
            sb_metrics_gauge(metrics, "sb_fetch_inflight", "provider requests running", "");
    }
    return self;
}

static void
s_list_destroy(sb_fetch_req_t *head)
{
    while (head != NULL) {
        sb_fetch_req_t *next = head->next;
        s_req_destroy(&head);
        head = next;
    }
}

void
sb_fetch_destroy(sb_fetch_t **self_p)
{
    assert(self_p);
    sb_fetch_t *self = *self_p;
    if (self == NULL)
        return;
    // Running transfers: take each off the multi handle before freeing it.
    while (self->run_head != NULL) {
        sb_fetch_req_t *req = self->run_head;
        self->run_head = req->rnext;
        curl_multi_remove_handle(self->multi, req->easy);
        s_req_destroy(&req);
    }
    curl_multi_cleanup(self->multi);
    s_list_destroy(self->wait_head);
    s_list_destroy(self->retry);
    free(self->socks);
    free(self);
    *self_p = NULL;
}

static void
s_enqueue(sb_fetch_t *self, sb_fetch_req_t *req)
{
    req->next = NULL;
    if (self->wait_tail != NULL)
        self->wait_tail->next = req;
    else
        self->wait_head = req;
    self->wait_tail = req;
    self->n_wait++;
}

void
sb_fetch_start(sb_fetch_t *self, sb_fetch_req_t *req, sb_fetch_done_fn *done, void *arg)
{
    req->done = done;
    req->arg = arg;
    req->owner = self;
    req->first_ms = sb_mono_ms();
    s_enqueue(self, req);
}

// Put one attempt of req on the multi handle; -1 when libcurl refuses (then req has
// status 0 and an error text).
static int
s_launch(sb_fetch_t *self, sb_fetch_req_t *req)
{
    s_body_reset(req);
    req->status = 0;
    req->result = CURLE_OK;
    req->error[0] = '\0';
    req->retry_after_ms = 0;
    req->attempts++;
    req->easy = curl_easy_init();
    if (req->easy == NULL) {
        snprintf(req->error, sizeof req->error, "could not create a libcurl handle");
        return -1;
    }
    CURL *e = req->easy;
    req->headers = curl_slist_append(req->headers, "Accept: application/json");
    if (req->auth != NULL)
        req->headers = curl_slist_append(req->headers, req->auth);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->error);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, S_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); // gzip when the server offers it
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);        // prefer a shared HTTP/2 connection
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)self->opt.timeout_ms);
    long connect_ms = self->opt.timeout_ms < S_CONNECT_TIMEOUT_MS ? (long)self->opt.timeout_ms
                                                                  : S_CONNECT_TIMEOUT_MS;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (req->form != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->form);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(req->form));
    }
    if (curl_multi_add_handle(self->multi, e) != CURLM_OK) {
        snprintf(req->error, sizeof req->error, "could not start a libcurl transfer");
        curl_easy_cleanup(e);
        req->easy = NULL;
        return -1;
    }
    self->running++;
    req->rprev = NULL;
    req->rnext = self->run_head;
    if (self->run_head != NULL)
        self->run_head->rprev = req;
    self->run_head = req;
    return 0;
}

static int
s_transient_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

static int
s_transient(const sb_fetch_req_t *req)
{
    if (req->status == 0)
        return !req->too_big && s_transient_curl(req->result);
    return req->status == 408 || req->status == 429 || req->status >= 500;
}

// The wait before attempt number req->attempts + 1.
static int64_t
s_backoff_ms(sb_fetch_t *self, const sb_fetch_req_t *req)
{
    int64_t wait = self->opt.backoff_ms;
    for (int i = 1; i < req->attempts && wait < self->opt.backoff_max_ms; i++)
        wait *= 2;
    if (wait > self->opt.backoff_max_ms)
        wait = self->opt.backoff_max_ms;
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    wait = wait / 2 + (int64_t)(self->rng % (uint64_t)(wait + 1)); // [50%, 150%]
    if (req->retry_after_ms > wait)
        wait = req->retry_after_ms < self->opt.backoff_max_ms ? req->retry_after_ms
                                                              : self->opt.backoff_max_ms;
    return wait;
}

static void
s_count(sb_fetch_t *self, const sb_fetch_req_t *req, const char *outcome)
{
    if (self->metrics == NULL)
        return;
    char labels[128];
    snprintf(labels, sizeof labels, "call=\"%s\",outcome=\"%s\"", req->label, outcome);
    sb_counter_add(sb_metrics_counter(self->metrics, "sb_fetch_requests_total",
                                      "provider requests finished (retries included)", labels),
                   1);
}

// An attempt ended: try again later, or hand the result to the caller.
static void
s_finished(sb_fetch_t *self, sb_fetch_req_t *req)
{
    if (s_transient(req) && req->attempts < self->opt.max_attempts) {
        req->due_ms = sb_mono_ms() + s_backoff_ms(self, req);
        req->next = self->retry;
        self->retry = req;
        self->n_retry++;
        if (self->metrics != NULL) {
            char labels[96];
            snprintf(labels, sizeof labels, "call=\"%s\"", req->label);
            sb_counter_add(sb_metrics_counter(self->metrics, "sb_fetch_retries_total",
                                              "provider requests tried again", labels),
                           1);
        }
        return;
    }
    s_count(self, req,
            req->status == 0                          ? "no_answer"
            : req->status >= 200 && req->status < 300 ? "ok"
                                                      : "http_error");
    if (self->seconds != NULL)
        sb_histogram_observe(self->seconds, (double)sb_fetch_req_elapsed_ms(req) / 1000.0);
    req->done(req, req->arg);
    s_req_destroy(&req);
}

static void
s_collect_done(sb_fetch_t *self)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(self->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode result = msg->data.result; // msg is invalid after remove_handle
        char *priv = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        sb_fetch_req_t *req = (sb_fetch_req_t *)priv;
        req->result = result;
        if (result == CURLE_OK) {
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &req->status);
            curl_off_t retry_after = 0;
            if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
                retry_after > 0 && retry_after < 86400)
                req->retry_after_ms = (int64_t)retry_after * 1000;
        } else if (req->error[0] == '\0') {
            snprintf(req->error, sizeof req->error, "%s", curl_easy_strerror(result));
        }
        curl_multi_remove_handle(self->multi, e);
        curl_easy_cleanup(e);
        req->easy = NULL;
        curl_slist_free_all(req->headers);
        req->headers = NULL;
        self->running--;
        if (req->rprev != NULL)
            req->rprev->rnext = req->rnext;
        else
            self->run_head = req->rnext;
        if (req->rnext != NULL)
            req->rnext->rprev = req->rprev;
        req->rprev = req->rnext = NULL;
        s_finished(self, req);
    }
}

// Due retries go back to the end of the waiting queue.
static void
s_retries_due(sb_fetch_t *self, int64_t now)
{
    sb_fetch_req_t **link = &self->retry;
    while (*link != NULL) {
        sb_fetch_req_t *req = *link;
        if (req->due_ms <= now) {
            *link = req->next;
            self->n_retry--;
            s_enqueue(self, req);
        } else {
            link = &req->next;
        }
    }
}

// Start waiting requests while there are free slots. A request libcurl refuses ends at
// once (status 0).
static void
s_pump(sb_fetch_t *self)
{
    while (self->wait_head != NULL && self->running < self->opt.max_inflight) {
        sb_fetch_req_t *req = self->wait_head;
        self->wait_head = req->next;
        if (self->wait_head == NULL)
            self->wait_tail = NULL;
        self->n_wait--;
        req->next = NULL;
        if (s_launch(self, req) != 0) {
            req->attempts = self->opt.max_attempts; // no retry for our own failure
            s_finished(self, req);
        }
    }
}

size_t
sb_fetch_sockets(const sb_fetch_t *self)
{
    return self->n_socks;
}

size_t
sb_fetch_pollitems(const sb_fetch_t *self, zmq_pollitem_t *items, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n_socks && n < max; i++, n++) {
        items[n].socket = NULL;
        items[n].fd = self->socks[i].fd;
        items[n].events = 0;
        items[n].revents = 0;
        if (self->socks[i].what & CURL_POLL_IN)
            items[n].events |= ZMQ_POLLIN;
        if (self->socks[i].what & CURL_POLL_OUT)
            items[n].events |= ZMQ_POLLOUT;
    }
    return n;
}

int
sb_fetch_timeout_ms(const sb_fetch_t *self, int cap_ms)
{
    if (self->wait_head != NULL && self->running < self->opt.max_inflight)
        return 0;
    int64_t now = sb_mono_ms();
    int64_t due = now + cap_ms;
    if (self->curl_due_ms >= 0 && self->curl_due_ms < due)
        due = self->curl_due_ms;
    for (const sb_fetch_req_t *req = self->retry; req != NULL; req = req->next)
        if (req->due_ms < due)
            due = req->due_ms;
    return due <= now ? 0 : (int)(due - now);
}

void
sb_fetch_process(sb_fetch_t *self, const zmq_pollitem_t *items, size_t n)
{
    int still = 0;
    for (size_t i = 0; i < n; i++) {
        int flags = 0;
        if (items[i].revents & ZMQ_POLLIN)
            flags |= CURL_CSELECT_IN;
        if (items[i].revents & ZMQ_POLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (items[i].revents & ZMQ_POLLERR)
            flags |= CURL_CSELECT_ERR;
        if (flags != 0) // a socket libcurl closed meanwhile is simply not found there
            curl_multi_socket_action(self->multi, items[i].fd, flags, &still);
    }
    int64_t now = sb_mono_ms();
    if (self->curl_due_ms >= 0 && now >= self->curl_due_ms) {
        self->curl_due_ms = -1;
        curl_multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &still);
    }
    s_collect_done(self);
    s_retries_due(self, now);
    s_pump(self);
    // Callbacks may have started requests: launch them in this turn.
    if (self->curl_due_ms >= 0 && sb_mono_ms() >= self->curl_due_ms) {
        self->curl_due_ms = -1;
        curl_multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &still);
        s_collect_done(self);
        s_pump(self);
    }
    if (self->inflight != NULL)
        sb_gauge_set(self->inflight, self->running);
}

size_t
sb_fetch_pending(const sb_fetch_t *self)
{
    return (size_t)self->running + self->n_wait + self->n_retry;
}
