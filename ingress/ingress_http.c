/* ingress_http - the libmicrohttpd side of the ingress: routes, body collection with
 * the MAX_BODY_BYTES limit (Content-Length or chunked), the Validation-Token handshake,
 * header selection, /health and /metrics. What to do with a complete body is decided
 * in ingress.c (sb_ingress_accept). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include "ingress_internal.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_net.h"
#include "sb_banned.h"

#define SB_HTTP_TIMEOUT_S 30 // idle connection timeout; 10-120
// Per-connection pool: the read buffer and the headers (bodies are copied out as they
// arrive). libmicrohttpd zeroes the whole pool before each keep-alive request, so its
// size is paid on every request: 16 KiB (half of its default) leaves room for 8 KiB of
// headers and cost a third of 64 KiB's CPU under wrk.
#define SB_HTTP_MEMORY_LIMIT (16 * 1024)
// Hostile clients (docs/SECURITY.md): MHD's idle timeout restarts with every byte, so a
// client sending a byte a second (slowloris) would hold a connection for ever. These
// bound the whole phase instead; s_sweep closes a connection that breaks them.
#define SB_HTTP_HEADER_TIMEOUT_S 10    // a new connection's request headers complete by then
#define SB_HTTP_BODY_GRACE_S 10        // a body may take this long at any rate ...
#define SB_HTTP_MIN_BODY_RATE 1024     // ... then must average this many bytes/s; 500-65536
#define SB_HTTP_DISCARD_S 10           // reading an oversized body to answer 413, at most this
#define SB_HTTP_FD_RESERVE 128         // descriptors kept for the spool, ZeroMQ and the syncer
#define SB_HTTP_TLS_FILE_MAX (1 << 20) // bytes of a PEM file; a chain is a few KiB
// TLS 1.2 and 1.3 only, GnuTLS's NORMAL ciphers otherwise.
#define SB_HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

// Request headers that travel with the event (lower case). The secrets among them are
// needed by the verifier and redacted by it before anything is stored.
static const char *const s_kept_headers[] = {
    "content-type",  "user-agent",        "verification-token",    "x-ringcentral-signature",
    "authorization", "x-goog-channel-id", "x-goog-message-number", "x-forwarded-for",
    "x-request-id"};

typedef struct {
    const char *path;   // exact URL path
    const char *source; // event source for POST routes, NULL for GET routes
    const char *name;   // metrics label
} s_route_t;

static const s_route_t s_routes[] = {
    {"/api/webhooks/ringcentral/sms", "ringcentral_sms", "ringcentral_sms"},
    {"/api/webhooks/ringcentral/call", "ringcentral_call", "ringcentral_call"},
    {"/api/webhooks/gmail/push", "gmail_push", "gmail_push"},
    {"/api/webhooks/health", NULL, "health"},
    {"/metrics", NULL, "metrics"},
};
#define SB_N_ROUTES (sizeof s_routes / sizeof s_routes[0])
static const unsigned s_codes[] = {200, 400, 404, 405, 413, 500, 503};
#define SB_N_CODES (sizeof s_codes / sizeof s_codes[0])
static sb_counter_t *s_requests[SB_N_ROUTES + 1][SB_N_CODES]; // +1: unknown path
// Connections closed by s_sweep, by reason (the order of s_cut_reasons).
static const char *const s_cut_reasons[] = {"header_timeout", "slow_body", "endless_body"};
static sb_counter_t *s_cut[3];

// Per-connection state for the deadlines (MHD socket context), in a list that only the
// loop thread touches.
typedef enum {
    S_WAIT_HEADERS, // connected, or answered and kept alive: the next request's headers due
                    // within SB_HTTP_HEADER_TIMEOUT_S, or SB_HTTP_TIMEOUT_S once kept alive
                    // (clients reuse idle connections; MHD closed those at 30 s before)
    S_BODY,         // headers in, body arriving
    S_ANSWERING,    // body complete: waiting for the group sync, or the answer is going out
    S_CUT,          // closed by s_sweep; MHD has not noticed yet
} s_phase_t;

typedef struct s_conn {
    int fd;                     // the client socket (MHD owns it)
    s_phase_t phase;            // see above
    int64_t since_ms;           // when the phase began
    uint64_t body_bytes;        // bytes of this request's body so far
    int64_t too_large_ms;       // when the body passed MAX_BODY_BYTES, 0 if it did not
    int kept_alive;             // a request was answered on it already
    struct s_conn *prev, *next; // s_conns
} s_conn_t;
static s_conn_t *s_conns;

// Per-request state, from the first call of the handler to the completed callback.
typedef struct {
    const s_route_t *route;
    char *body;      // collected upload, NULL once too large
    size_t len, cap; // bytes in body, allocated
    int too_large;   // the upload passed MAX_BODY_BYTES
} s_request_t;

void
sb_ingress_http_count(sb_ingress_t *self, const char *route, unsigned status)
{
    (void)self;
    size_t r = SB_N_ROUTES;
    for (size_t i = 0; i < SB_N_ROUTES && route; i++)
        if (strcmp(s_routes[i].name, route) == 0)
            r = i;
    for (size_t c = 0; c < SB_N_CODES; c++)
        if (s_codes[c] == status && s_requests[r][c])
            sb_counter_add(s_requests[r][c], 1);
}

static enum MHD_Result
s_reply(sb_ingress_t *self, struct MHD_Connection *conn, const s_route_t *route, unsigned status,
        const char *content_type, char *body)
{
    size_t len = body ? strlen(body) : 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    sb_ingress_http_count(self, route ? route->name : NULL, status);
    return rc;
}

static enum MHD_Result
s_reply_error(sb_ingress_t *self, struct MHD_Connection *conn, const s_route_t *route,
              unsigned status, const char *error)
{
    return s_reply(self, conn, route, status, "application/json",
                   sb_xasprintf("{\"error\":\"%s\"}", error));
}

static enum MHD_Result
s_method_not_allowed(sb_ingress_t *self, struct MHD_Connection *conn, const s_route_t *route)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, route->source ? "POST" : "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
    MHD_destroy_response(resp);
    sb_ingress_http_count(self, route->name, MHD_HTTP_METHOD_NOT_ALLOWED);
    return rc;
}

// RingCentral's subscription handshake: echo the header at once, nothing is stored.
static enum MHD_Result
s_validation_reply(sb_ingress_t *self, struct MHD_Connection *conn, const s_route_t *route,
                   const char *token)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_NO;
    if (MHD_add_response_header(resp, "Validation-Token", token) == MHD_YES)
        rc = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    else // a token with CR/LF or other bytes that cannot be a header value
        rc = s_reply_error(self, conn, route, MHD_HTTP_BAD_REQUEST, "invalid Validation-Token");
    MHD_destroy_response(resp);
    if (rc == MHD_YES)
        sb_ingress_http_count(self, route->name, MHD_HTTP_OK);
    sb_log_info(NULL, "answered a Validation-Token handshake on %s", route->path);
    return rc;
}

// JSON string of a header value: kept as is when it is valid UTF-8, else every byte
// outside printable ASCII becomes '?', so that one odd header never loses an event.
static json_t *
s_json_text(const char *value)
{
    json_t *s = json_string(value);
    if (s)
        return s;
    char *copy = sb_xstrdup(value);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    s = json_string(copy);
    free(copy);
    return s;
}

static enum MHD_Result
s_collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    json_t *headers = cls;
    char name[64];
    size_t n = strlen(key);
    if (n >= sizeof name || value == NULL)
        return MHD_YES;
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)tolower((unsigned char)key[i]);
    for (size_t i = 0; i < sizeof s_kept_headers / sizeof s_kept_headers[0]; i++)
        if (strcmp(name, s_kept_headers[i]) == 0)
            json_object_set_new(headers, name, s_json_text(value));
    return MHD_YES;
}

// Rebuild the query string from MHD's decoded arguments, percent-encoding again.
static enum MHD_Result
s_collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    char **query = cls;
    static const char hex[] = "0123456789ABCDEF";
    const char *parts[2] = {key, value ? value : ""};
    size_t need = strlen(*query) + 3 * (strlen(parts[0]) + strlen(parts[1])) + 3;
    char *out = sb_xrealloc(*query, need);
    size_t n = strlen(out);
    if (n > 0)
        out[n++] = '&';
    for (int k = 0; k < 2; k++) {
        for (const unsigned char *p = (const unsigned char *)parts[k]; *p; p++) {
            if (isalnum(*p) || strchr("-._~", *p)) {
                out[n++] = (char)*p;
            } else {
                out[n++] = '%';
                out[n++] = hex[*p >> 4];
                out[n++] = hex[*p & 15];
            }
        }
        if (k == 0 && value)
            out[n++] = '=';
    }
    out[n] = '\0';
    *query = out;
    return MHD_YES;
}

static char *
s_headers_json(struct MHD_Connection *conn)
{
    json_t *headers = json_object();
    MHD_get_connection_values(conn, MHD_HEADER_KIND, s_collect_header, headers);
    char *query = sb_xstrdup("");
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, s_collect_query, &query);
    if (*query)
        json_object_set_new(headers, ":query", s_json_text(query));
    free(query);
    char *text = json_dumps(headers, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(headers);
    return text ? text : sb_xstrdup("{}");
}

static const s_route_t *
s_route_of(const char *url)
{
    for (size_t i = 0; i < SB_N_ROUTES; i++)
        if (strcmp(url, s_routes[i].path) == 0)
            return &s_routes[i];
    return NULL;
}

static enum MHD_Result
s_get(sb_ingress_t *self, struct MHD_Connection *conn, const s_route_t *route)
{
    int64_t now = sb_ingress_now_ms();
    sb_ingress_gauges_update(self, now);
    if (strcmp(route->name, "metrics") == 0) {
        size_t len;
        char *text = sb_metrics_render(self->metrics, &len);
        return s_reply(self, conn, route, MHD_HTTP_OK, "text/plain; version=0.0.4", text);
    }
    int healthy = 0;
    char *doc = sb_ingress_health_json(self, now, &healthy);
    return s_reply(self, conn, route, healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                   "application/json", doc);
}

static s_conn_t *
s_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static void
s_phase(s_conn_t *c, s_phase_t phase)
{
    c->phase = phase;
    c->since_ms = sb_ingress_now_ms();
    c->body_bytes = 0;
    c->too_large_ms = 0;
}

// The upload passed MAX_BODY_BYTES in the middle of a (chunked) body. libmicrohttpd
// cannot queue a response while it hands us upload data, so the rest is read and
// thrown away (memory stays bounded) and the 413 goes out when the body ends; an endless
// body is cut after SB_HTTP_DISCARD_S (s_sweep).
static void
s_too_large_now(sb_ingress_t *self, s_request_t *req)
{
    free(req->body);
    req->body = NULL;
    req->too_large = 1;
    sb_log_warn(NULL, "rejecting a body over MAX_BODY_BYTES (%lld) on %s with 413",
                (long long)self->conf->max_body_bytes, req->route->path);
}

static enum MHD_Result
s_first_call(sb_ingress_t *self, struct MHD_Connection *conn, const char *url, const char *method,
             void **req_cls)
{
    const s_route_t *route = s_route_of(url);
    if (route == NULL)
        return s_reply_error(self, conn, NULL, MHD_HTTP_NOT_FOUND, "not found");
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, "HEAD") == 0;
    if (route->source == NULL)
        return is_get ? s_get(self, conn, route) : s_method_not_allowed(self, conn, route);
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return s_method_not_allowed(self, conn, route);
    const char *vt = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Validation-Token");
    if (vt != NULL)
        return s_validation_reply(self, conn, route, vt);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    if (declared > (unsigned long long)self->conf->max_body_bytes) {
        sb_log_warn(NULL, "rejected a body of %llu bytes (MAX_BODY_BYTES %lld) on %s with 413",
                    declared, (long long)self->conf->max_body_bytes, route->path);
        return s_reply_error(self, conn, route, MHD_HTTP_CONTENT_TOO_LARGE, "body too large");
    }
    s_request_t *req = sb_xcalloc(1, sizeof *req);
    req->route = route;
    req->cap = declared ? (size_t)declared + 1 : 4096;
    req->body = sb_xmalloc(req->cap);
    *req_cls = req;
    return MHD_YES;
}

static enum MHD_Result
s_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
         const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
    (void)version;
    sb_ingress_t *self = cls;
    s_request_t *req = *req_cls;
    s_conn_t *c = s_conn_of(conn);
    if (req == NULL) {
        enum MHD_Result rc = s_first_call(self, conn, url, method, req_cls);
        if (c) // a request object means a body comes; otherwise it was answered at once
            s_phase(c, *req_cls ? S_BODY : S_ANSWERING);
        return rc;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c)
            c->body_bytes += n;
        if (req->too_large)
            return MHD_YES; // discarding what is still in flight
        if (req->len + n > (size_t)self->conf->max_body_bytes) {
            s_too_large_now(self, req);
            if (c)
                c->too_large_ms = sb_ingress_now_ms();
            return MHD_YES;
        }
        if (req->len + n + 1 > req->cap) {
            while (req->len + n + 1 > req->cap)
                req->cap *= 2;
            req->body = sb_xrealloc(req->body, req->cap);
        }
        memcpy(req->body + req->len, upload_data, n);
        req->len += n;
        return MHD_YES;
    }
    if (c)
        s_phase(c, S_ANSWERING);
    if (req->too_large)
        return s_reply_error(self, conn, req->route, MHD_HTTP_CONTENT_TOO_LARGE, "body too large");
    char *headers = s_headers_json(conn);
    unsigned status =
        sb_ingress_accept(self, conn, req->route->source, headers, req->body, req->len);
    free(req->body);
    req->body = NULL;
    if (status == 0)
        return MHD_YES; // suspended until the group fdatasync
    return s_reply_error(self, conn, req->route, status,
                         status == MHD_HTTP_SERVICE_UNAVAILABLE ? "spool unavailable"
                                                                : "cannot accept");
}

static void
s_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
            enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    s_request_t *req = *req_cls;
    if (req) {
        free(req->body);
        free(req);
        *req_cls = NULL;
    }
    s_conn_t *c = s_conn_of(conn);
    if (c && c->phase != S_CUT) { // kept alive: the next request's headers are due
        s_phase(c, S_WAIT_HEADERS);
        c->kept_alive = 1;
    }
}

static void
s_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        s_conn_t *c = sb_xcalloc(1, sizeof *c);
        c->fd = info ? info->connect_fd : -1;
        s_phase(c, S_WAIT_HEADERS);
        c->next = s_conns;
        if (s_conns)
            s_conns->prev = c;
        s_conns = c;
        *socket_context = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        s_conn_t *c = *socket_context;
        if (c->prev)
            c->prev->next = c->next;
        else
            s_conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        free(c);
        *socket_context = NULL;
    }
}

// Why c should be closed now, or NULL. Connections waiting for the group sync are ours
// to answer and never cut.
static const char *
s_overdue(const s_conn_t *c, int64_t now_ms)
{
    int64_t elapsed_ms = now_ms - c->since_ms;
    int64_t header_ms = (c->kept_alive ? SB_HTTP_TIMEOUT_S : SB_HTTP_HEADER_TIMEOUT_S) * 1000;
    if (c->phase == S_WAIT_HEADERS && elapsed_ms > header_ms)
        return "header_timeout";
    if (c->phase != S_BODY)
        return NULL;
    if (c->too_large_ms && now_ms - c->too_large_ms > SB_HTTP_DISCARD_S * 1000)
        return "endless_body";
    int64_t owed_ms = elapsed_ms - SB_HTTP_BODY_GRACE_S * 1000;
    if (owed_ms > 0 && c->body_bytes < (uint64_t)(owed_ms * SB_HTTP_MIN_BODY_RATE / 1000))
        return "slow_body";
    return NULL;
}

void
sb_ingress_http_sweep(sb_ingress_t *self, int64_t now_ms)
{
    (void)self;
    size_t cut[3] = {0, 0, 0};
    for (s_conn_t *c = s_conns; c; c = c->next) {
        const char *why = s_overdue(c, now_ms);
        if (why == NULL || c->fd < 0)
            continue;
        // MHD has no call to drop a connection; a shutdown makes its next read see EOF,
        // and MHD then closes the socket and frees the connection as for any client.
        shutdown(c->fd, SHUT_RDWR);
        c->phase = S_CUT;
        for (size_t i = 0; i < 3; i++)
            cut[i] += strcmp(why, s_cut_reasons[i]) == 0;
    }
    if (cut[0] + cut[1] + cut[2] == 0)
        return;
    for (size_t i = 0; i < 3; i++)
        sb_counter_add(s_cut[i], cut[i]);
    sb_log_warn(NULL,
                "closed %zu connections without complete request headers in time (%d s, "
                "%d s once kept alive), %zu sending a body slower than %d bytes/s and %zu "
                "still sending an oversized body after %d s",
                cut[0], SB_HTTP_HEADER_TIMEOUT_S, SB_HTTP_TIMEOUT_S, cut[1], SB_HTTP_MIN_BODY_RATE,
                cut[2], SB_HTTP_DISCARD_S);
}

static void
s_register_counters(sb_ingress_t *self)
{
    for (size_t r = 0; r <= SB_N_ROUTES; r++)
        for (size_t c = 0; c < SB_N_CODES; c++) {
            char labels[96];
            snprintf(labels, sizeof labels, "route=\"%s\",code=\"%u\"",
                     r < SB_N_ROUTES ? s_routes[r].name : "unknown", s_codes[c]);
            s_requests[r][c] = sb_metrics_counter(self->metrics, "sb_http_requests_total",
                                                  "HTTP requests by route and status", labels);
        }
    for (size_t i = 0; i < 3; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "reason=\"%s\"", s_cut_reasons[i]);
        s_cut[i] = sb_metrics_counter(self->metrics, "sb_http_connections_cut_total",
                                      "connections closed for missing a deadline", labels);
    }
}

// Every connection is a descriptor: raise the soft limit to the hard one, and keep the
// connection limit below it, so that a flood of connections finds MHD's limit (the
// listener stays usable) rather than EMFILE.
static unsigned
s_connection_limit(int64_t wanted)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return (unsigned)wanted;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)wanted + SB_HTTP_FD_RESERVE > rl.rlim_cur) {
        int64_t fit = rl.rlim_cur > 2 * SB_HTTP_FD_RESERVE
                          ? (int64_t)rl.rlim_cur - SB_HTTP_FD_RESERVE
                          : (int64_t)rl.rlim_cur / 2;
        sb_log_warn(NULL,
                    "INGRESS_MAX_CONNECTIONS %lld does not fit the descriptor limit %llu: "
                    "using %lld",
                    (long long)wanted, (unsigned long long)rl.rlim_cur, (long long)fit);
        return (unsigned)fit;
    }
    return (unsigned)wanted;
}

// A whole PEM file as a C string (caller frees), or NULL with err.
static char *
s_read_pem(const char *path, const char *var, sb_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        sb_err_set(err, errno, "cannot read %s \"%s\"", var, path);
        return NULL;
    }
    char *text = sb_xmalloc(SB_HTTP_TLS_FILE_MAX + 1);
    size_t n = fread(text, 1, SB_HTTP_TLS_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n == 0 || n > SB_HTTP_TLS_FILE_MAX) {
        sb_err_set(err, 0, "cannot read %s \"%s\": %s", var, path,
                   bad      ? "read error"
                   : n == 0 ? "empty"
                            : "over 1 MiB");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

// Native HTTPS (TLS_CERT_FILE and TLS_KEY_FILE): fills opts with MHD's TLS options and
// returns MHD_USE_TLS, or 0 without TLS (opts then holds only the end marker); -1 with
// err when half configured, unreadable or unsupported. The PEM texts stay allocated for
// the process's lifetime, as the daemon may refer to them.
static int
s_tls_options(const sb_ingress_config_t *conf, struct MHD_OptionItem opts[4], sb_err_t *err)
{
    static char *cert, *key;
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    int has_cert = conf->tls_cert_file && *conf->tls_cert_file;
    int has_key = conf->tls_key_file && *conf->tls_key_file;
    if (!has_cert && !has_key)
        return 0;
    if (!has_cert || !has_key) {
        sb_err_set(err, 0, "set both TLS_CERT_FILE and TLS_KEY_FILE, or neither");
        return -1;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        sb_err_set(err, 0, "TLS_CERT_FILE is set but this libmicrohttpd has no TLS (GnuTLS)");
        return -1;
    }
    free(cert);
    free(key);
    cert = s_read_pem(conf->tls_cert_file, "TLS_CERT_FILE", err);
    key = cert ? s_read_pem(conf->tls_key_file, "TLS_KEY_FILE", err) : NULL;
    if (key == NULL)
        return -1;
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
    opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
    opts[2] =
        (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)SB_HTTP_TLS_PRIORITIES};
    opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_USE_TLS;
}

struct MHD_Daemon *
sb_ingress_http_start(sb_ingress_t *self, sb_err_t *err)
{
    struct sockaddr_in addr;
    if (sb_net_parse_listen(self->conf->listen, &addr, err) != 0)
        return NULL;
    struct MHD_OptionItem tls[4];
    int tls_flag = s_tls_options(self->conf, tls, err);
    if (tls_flag < 0)
        return NULL;
    s_register_counters(self);
    // External epoll: the ingress loop polls MHD's epoll fd beside its ZeroMQ sockets.
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | (unsigned)tls_flag, 0, NULL,
        NULL, s_handle, self, MHD_OPTION_ARRAY, tls, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self, MHD_OPTION_NOTIFY_CONNECTION,
        s_notify_connection, self, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SB_HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, s_connection_limit(self->conf->max_connections),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SB_HTTP_MEMORY_LIMIT,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U, MHD_OPTION_END);
    if (d == NULL)
        sb_err_set(err, 0, "could not listen on \"%s\" (in use, or not an address here%s)",
                   self->conf->listen,
                   tls_flag ? "; or TLS_CERT_FILE/TLS_KEY_FILE are no "
                              "matching PEM certificate and key"
                            : "");
    else if (tls_flag)
        sb_log_info(NULL, "serving HTTPS on %s (TLS 1.2 and 1.3)", self->conf->listen);
    return d;
}
