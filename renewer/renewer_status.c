/* renewer_status - /metrics, /health and heartbeats (see renewer_status.h). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <czmq.h>
#include <microhttpd.h>
#include "renewer.h"
#include "renewer_status.h"
#include "sb_envelope.h"
#include "sb_mem.h"
#include "sb_net.h"
#include "sb_log.h"
#include "sb_resolver.h"
#include "sb_zmonitor.h"
#include "sb_banned.h"

#define S_CONN_LIMIT 64     // scrapers and health probes at once
#define S_CONN_TIMEOUT_S 10 // an idle connection is closed after this
#define S_PUB_SNDHWM 16     // heartbeats are worthless when late: keep the queue short

struct sb_renewer_status {
    sb_metrics_t *metrics;     // borrowed
    struct MHD_Daemon *daemon; // NULL without a server
    int port;                  // bound port
    pthread_mutex_t lock;      // guards health, healthy, stopping
    pthread_cond_t wake;       // the heartbeat thread waits on it
    char *health;              // the JSON served, owned
    int healthy;               // 200 or 503
    int stopping;              // the heartbeat thread ends
    pthread_t beat;            // the heartbeat thread
    int beat_running;          // beat was started
    char *ack_endpoint;        // owned
    char *instance;            // owned
};

static enum MHD_Result
s_reply(struct MHD_Connection *conn, unsigned int status, const char *type, char *body)
{
    size_t len = strlen(body);
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
    sb_renewer_status_t *self = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                       sb_xstrdup("method not allowed\n"));
    if (strcmp(url, "/metrics") == 0)
        return s_reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                       sb_metrics_render(self->metrics, NULL));
    if (strcmp(url, "/health") == 0) {
        pthread_mutex_lock(&self->lock);
        char *body = sb_xstrdup(self->health);
        unsigned int status = self->healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        pthread_mutex_unlock(&self->lock);
        return s_reply(conn, status, "application/json", body);
    }
    return s_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
                   sb_xstrdup("not found\n"));
}

static int
s_serve(sb_renewer_status_t *self, const char *listen, sb_err_t *err)
{
    struct sockaddr_in addr;
    if (sb_net_parse_listen(listen, &addr, err) != 0)
        return -1;
    // No MHD_USE_ERROR_LOG: every stderr line must be sb_log JSON.
    errno = 0;
    self->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, s_handle,
                         self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)S_CONN_TIMEOUT_S,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)S_CONN_LIMIT, MHD_OPTION_END);
    if (self->daemon == NULL) {
        sb_err_set(err, errno, "could not serve /metrics and /health on \"%s\"", listen);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    return 0;
}

static void
s_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

// The heartbeat thread: owns its PUB socket and the socket's monitor (ZeroMQ sockets stay
// in one thread).
static void *
s_beat(void *arg)
{
    sb_renewer_status_t *self = arg;
    zsock_t *pub = zsock_new(ZMQ_PUB);
    sb_resolver_t *resolver = NULL;
    sb_zmonitor_t *monitor = NULL;
    sb_err_t err = {0};
    if (pub != NULL) {
        // Before connecting, so that no ingress goes unseen. Without it the heartbeats
        // still go out: only sb_zmq_* and the connect lines are missing.
        monitor = sb_zmonitor_new(pub, "heartbeat", self->metrics, &err);
        if (monitor == NULL)
            sb_log_warn(NULL, "heartbeat socket not monitored: %s", err.msg);
        zsock_set_sndhwm(pub, S_PUB_SNDHWM); // before connecting: it applies per pipe
        zsock_set_linger(pub, 0);
        resolver = sb_resolver_new(pub, self->ack_endpoint, &err); // checked in _new already
    }
    pthread_mutex_lock(&self->lock);
    while (!self->stopping) {
        char *doc = sb_xstrdup(self->health);
        pthread_mutex_unlock(&self->lock);
        if (resolver != NULL) {
            sb_resolver_refresh(resolver, &err); // an unresolved ingress is retried next time
            sb_heartbeat_send(zsock_resolve(pub), "renewer", self->instance, doc, &err);
        }
        if (monitor != NULL)
            sb_zmonitor_drain(monitor);
        free(doc);
        struct timespec until;
        s_deadline(&until, SB_RENEWER_HEARTBEAT_MS);
        pthread_mutex_lock(&self->lock);
        while (!self->stopping && pthread_cond_timedwait(&self->wake, &self->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&self->lock);
    sb_resolver_destroy(&resolver);
    sb_zmonitor_destroy(&monitor); // before its socket
    zsock_destroy(&pub);
    return NULL;
}

// Parse the endpoints once here, so a typo stops the renewer at start and not silently.
static int
s_endpoints_ok(const char *endpoints, sb_err_t *err)
{
    zsock_t *probe = zsock_new(ZMQ_PUB);
    if (probe == NULL) {
        sb_err_set(err, errno, "could not create the heartbeat socket");
        return -1;
    }
    zsock_set_linger(probe, 0);
    sb_resolver_t *r = sb_resolver_new(probe, endpoints, err);
    int ok = r != NULL;
    sb_resolver_destroy(&r);
    zsock_destroy(&probe);
    return ok ? 0 : -1;
}

sb_renewer_status_t *
sb_renewer_status_new(sb_metrics_t *metrics, const char *listen, const char *ack_endpoint,
                      const char *instance, sb_err_t *err)
{
    sb_renewer_status_t *self = sb_xcalloc(1, sizeof *self);
    self->metrics = metrics;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    self->health = sb_xstrdup("{\"status\":\"degraded\",\"stage\":\"renewer\","
                              "\"reasons\":[\"starting\"]}");
    self->instance = sb_xstrdup(instance ? instance : "renewer");
    if (listen != NULL && *listen != '\0' && s_serve(self, listen, err) != 0)
        goto fail;
    if (ack_endpoint != NULL && *ack_endpoint != '\0') {
        if (s_endpoints_ok(ack_endpoint, err) != 0)
            goto fail;
        self->ack_endpoint = sb_xstrdup(ack_endpoint);
        if (pthread_create(&self->beat, NULL, s_beat, self) != 0) {
            sb_err_set(err, errno, "could not start the heartbeat thread");
            goto fail;
        }
        self->beat_running = 1;
    }
    return self;
fail:
    sb_renewer_status_destroy(&self);
    return NULL;
}

void
sb_renewer_status_destroy(sb_renewer_status_t **self_p)
{
    assert(self_p);
    sb_renewer_status_t *self = *self_p;
    if (self == NULL)
        return;
    if (self->daemon != NULL)
        MHD_stop_daemon(self->daemon); // joins its thread: no handler runs after this
    if (self->beat_running) {
        pthread_mutex_lock(&self->lock);
        self->stopping = 1;
        pthread_cond_signal(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->beat, NULL);
    }
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self->health);
    free(self->ack_endpoint);
    free(self->instance);
    free(self);
    *self_p = NULL;
}

void
sb_renewer_status_set(sb_renewer_status_t *self, int healthy, const char *doc)
{
    char *copy = sb_xstrdup(doc);
    pthread_mutex_lock(&self->lock);
    free(self->health);
    self->health = copy;
    self->healthy = healthy;
    pthread_mutex_unlock(&self->lock);
}

int
sb_renewer_status_port(const sb_renewer_status_t *self)
{
    return self->port;
}
