#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_stage.h"
#include "sb_banned.h"

static volatile sig_atomic_t s_stop = 0; // set by SIGTERM/SIGINT; the stage's loop drains
static void (*s_on_stop)(void) = NULL;   // the stage's own stop, when it has one

static void
s_on_signal(int signo)
{
    (void)signo;
    s_stop = 1;
    if (s_on_stop != NULL)
        s_on_stop();
}

// Our own handlers, not CZMQ's: those would only set zsys_interrupted, which the stage
// loops do not watch and which makes zpoller and zloop give up instead of draining. No
// SA_RESTART: a blocking poll, sleep or ZeroMQ call returns EINTR, so the loop sees the
// stop at once.
static void
s_signals_install(void (*on_stop)(void))
{
    zsys_handler_set(NULL); // before the first socket, or CZMQ installs its own handlers
    s_on_stop = on_stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN; // a peer, provider or metrics client that hangs up must not kill us
    sigaction(SIGPIPE, &sa, NULL);
}

// LOG_LEVEL from the stage's own table, so that the spec need not say where it lives.
static int
s_log_level(const sb_stage_spec_t *spec, const void *conf, sb_log_level_t *level)
{
    const char *text = NULL;
    for (size_t i = 0; i < spec->n_vars; i++)
        if (strcmp(spec->vars[i].name, "LOG_LEVEL") == 0)
            text = *(char *const *)((const char *)conf + spec->vars[i].offset);
    if (sb_config_check_log_level(text, stderr) != 0)
        return -1;
    return sb_log_level_parse(text, level);
}

static int
s_log_end(sb_stage_end_t end, const sb_err_t *err)
{
    switch (end) {
    case SB_STAGE_STOPPED:
        sb_log_info(NULL, "stopped");
        return EXIT_SUCCESS;
    case SB_STAGE_FAILED:
        sb_log_error(NULL, "stopped on error: %s", err->msg);
        return EXIT_FAILURE;
    case SB_STAGE_CANNOT_START:
        break;
    }
    sb_log_error(NULL, "cannot start: %s", err->msg);
    return EXIT_FAILURE;
}

int
sb_stage_main(const sb_stage_spec_t *spec, void *conf, int argc, char **argv)
{
    assert(spec && spec->name && spec->vars && spec->run && conf);
    char program[64];
    snprintf(program, sizeof program, "sb-%s", spec->name);
    int args = sb_config_args(argc, argv, spec->vars, spec->n_vars, program, spec->description);
    if (args != 0)
        return args == 1 ? EXIT_SUCCESS : 2;
    if (sb_config_load(spec->vars, spec->n_vars, conf, stderr) != 0)
        return 2;
    sb_log_level_t level;
    // A stage's check reports LOG_LEVEL among its other problems; without one, it is here.
    if ((spec->check != NULL && spec->check(conf, stderr) != 0) ||
        s_log_level(spec, conf, &level) != 0) {
        sb_config_release(spec->vars, spec->n_vars, conf);
        return 2;
    }
    sb_log_init(spec->name, level);
    s_signals_install(spec->on_stop);
    if (spec->curl)
        curl_global_init(CURL_GLOBAL_DEFAULT); // once, before any thread uses libcurl
    char *described = sb_config_describe(spec->vars, spec->n_vars, conf);
    sb_log_info(NULL, "starting %s %s: %s", program, SB_VERSION, described);
    free(described);

    sb_err_t err = {0};
    int status = s_log_end(spec->run(conf, &s_stop, &err), &err);
    if (spec->curl)
        curl_global_cleanup();
    sb_config_release(spec->vars, spec->n_vars, conf);
    return status;
}

char *
sb_stage_instance(const char *configured)
{
    if (configured != NULL && configured[0] != '\0')
        return sb_xstrdup(configured);
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "unknown");
    return sb_xasprintf("%s:%ld", host, (long)getpid());
}

static zsock_t *
s_socket(int type, const char *endpoints, bool serverish, const char *what, sb_metrics_t *metrics,
         sb_zmonitor_t **monitor, sb_err_t *err)
{
    zsock_t *sock = zsock_new(type);
    if (sock == NULL) {
        sb_err_set(err, errno, "could not create the %s socket", what);
        return NULL;
    }
    if (monitor != NULL && (*monitor = sb_zmonitor_new(sock, what, metrics, err)) == NULL) {
        zsock_destroy(&sock);
        return NULL;
    }
    if (zsock_attach(sock, endpoints, serverish) != 0) {
        sb_err_set(err, errno, "could not attach the %s socket to \"%s\"", what, endpoints);
        if (monitor != NULL)
            sb_zmonitor_destroy(monitor); // before its socket
        zsock_destroy(&sock);
    }
    return sock;
}

zsock_t *
sb_stage_socket(int type, const char *endpoints, bool serverish, const char *what, sb_err_t *err)
{
    return s_socket(type, endpoints, serverish, what, NULL, NULL, err);
}

zsock_t *
sb_stage_socket_monitored(int type, const char *endpoints, bool serverish, const char *what,
                          sb_metrics_t *metrics, sb_zmonitor_t **monitor, sb_err_t *err)
{
    assert(metrics && monitor);
    return s_socket(type, endpoints, serverish, what, metrics, monitor, err);
}

typedef struct {
    int linger_ms;  // ZMQ_LINGER
    int sndhwm;     // ZMQ_SNDHWM, 0 for libzmq's default
    bool immediate; // ZMQ_IMMEDIATE
} s_sockopts_t;

static zsock_t *
s_resolved_socket(int type, const char *endpoints, const char *what, const s_sockopts_t *opts,
                  sb_metrics_t *metrics, sb_zmonitor_t **monitor, sb_resolver_t **peers,
                  sb_err_t *err)
{
    assert(metrics && monitor && peers);
    *monitor = NULL;
    *peers = NULL;
    zsock_t *sock = zsock_new(type);
    if (sock == NULL) {
        sb_err_set(err, errno, "could not create the %s socket", what);
        return NULL;
    }
    *monitor = sb_zmonitor_new(sock, what, metrics, err);
    if (*monitor == NULL) {
        zsock_destroy(&sock);
        return NULL;
    }
    // Before the first connect: the high-water mark and ZMQ_IMMEDIATE apply per pipe.
    zsock_set_linger(sock, opts->linger_ms);
    if (opts->sndhwm > 0)
        zsock_set_sndhwm(sock, opts->sndhwm);
    if (opts->immediate)
        zsock_set_immediate(sock, 1);
    *peers = sb_resolver_new(sock, endpoints, err);
    if (*peers == NULL) {
        sb_zmonitor_destroy(monitor); // before its socket
        zsock_destroy(&sock);
    }
    return sock;
}

zsock_t *
sb_stage_push_socket(const char *endpoints, int linger_ms, sb_metrics_t *metrics,
                     sb_zmonitor_t **monitor, sb_resolver_t **peers, sb_err_t *err)
{
    const s_sockopts_t opts = {.linger_ms = linger_ms, .immediate = true};
    return s_resolved_socket(ZMQ_PUSH, endpoints, "push", &opts, metrics, monitor, peers, err);
}

zsock_t *
sb_stage_heartbeat_socket(const char *endpoints, sb_metrics_t *metrics, sb_zmonitor_t **monitor,
                          sb_resolver_t **peers, sb_err_t *err)
{
    const s_sockopts_t opts = {.linger_ms = 0, .sndhwm = SB_STAGE_HEARTBEAT_SNDHWM};
    return s_resolved_socket(ZMQ_PUB, endpoints, "heartbeat", &opts, metrics, monitor, peers, err);
}
