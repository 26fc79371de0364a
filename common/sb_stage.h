/* sb_stage - what every stage's setup shares: the whole of main() around the stage's own
 * objects, its replica name in heartbeats and a ZeroMQ socket attached to its configured
 * endpoints, optionally monitored.
 *
 * A stage's main.c fills an sb_stage_spec_t and returns sb_stage_main(...), which does,
 * in this order: --help / --version / a stray argument (sb_config_args); sb_config_load;
 * the stage's check; LOG_LEVEL; sb_log_init; the signal handlers; libcurl when asked; the
 * line "starting sb-<name> <version>: <effective config>"; the stage's run; the line that
 * says how it ended; cleanup. Exit status: 0 stopped when asked (or --help, --version),
 * 1 could not start or stopped on an error, 2 usage or configuration error. */
#ifndef SB_STAGE_H
#define SB_STAGE_H
#include <czmq.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include "sb_config.h"
#include "sb_err.h"
#include "sb_metrics.h"
#include "sb_resolver.h"
#include "sb_zmonitor.h"

#define SB_STAGE_HEARTBEAT_SNDHWM 16 // heartbeats queued per ingress: a late one is worthless

// How a stage's run ended; sb_stage_main logs it and turns it into the exit status.
typedef enum {
    SB_STAGE_STOPPED,      // stopped when asked: "stopped", exit 0
    SB_STAGE_FAILED,       // stopped on the error in err: "stopped on error: ...", exit 1
    SB_STAGE_CANNOT_START, // could not build its objects (err): "cannot start: ...", exit 1
} sb_stage_end_t;

typedef struct {
    const char *name;            // "ingress": the log's stage; the program is "sb-ingress"
    const char *description;     // --help's text under the usage line
    const sb_config_var_t *vars; // the stage's variables (one of them LOG_LEVEL)
    size_t n_vars;
    // Optional: checks across variables after sb_config_load, one line per problem to
    // problems, 0 or -1 (exit 2). May fill derived fields of conf.
    int (*check)(void *conf, FILE *problems);
    // Optional: called from the SIGTERM/SIGINT handler too, so async-signal-safe; for a
    // stage whose loop watches a flag of its own rather than *stop.
    void (*on_stop)(void);
    bool curl; // curl_global_init before run (before any thread uses libcurl), cleanup after
    // Build the stage's objects, run until *stop is set by SIGTERM or SIGINT (then drain as
    // the stage does), destroy them. conf is loaded and checked; err says why on failure.
    sb_stage_end_t (*run)(void *conf, volatile sig_atomic_t *stop, sb_err_t *err);
} sb_stage_spec_t;

// The whole main() of a stage: conf is the stage's zeroed config struct, filled from the
// environment through spec->vars and released before returning. Returns the exit status.
int sb_stage_main(const sb_stage_spec_t *spec, void *conf, int argc, char **argv);

// The replica's name: configured (INSTANCE_ID) when set and not empty, else
// "<hostname>:<pid>". Caller frees.
char *sb_stage_instance(const char *configured);

// A socket of type attached to endpoints (CZMQ syntax; serverish: unprefixed entries
// bind). NULL and err ("could not create/attach the <what> socket ...") on failure.
zsock_t *sb_stage_socket(int type, const char *endpoints, bool serverish, const char *what,
                         sb_err_t *err);

// The same, watched by an sb_zmonitor named what (sb_zmq_* metrics in metrics) that is
// set up before the socket binds or connects, so that no peer goes unseen. *monitor gets
// it: drain it in the loop, destroy it before the socket. NULL and err on failure.
zsock_t *sb_stage_socket_monitored(int type, const char *endpoints, bool serverish,
                                   const char *what, sb_metrics_t *metrics, sb_zmonitor_t **monitor,
                                   sb_err_t *err);

// The sending sockets of a pipeline stage. Each connects to every replica behind its
// endpoints through an sb_resolver (*peers: refresh it in the loop) and is watched by an
// sb_zmonitor set up before the first connect (*monitor: drain it in the loop). Destroy
// *peers and *monitor before the socket. NULL and err on failure, with nothing left over.
//
// PUSH to the next stage ("push"): never queues to a replica that is not connected
// (ZMQ_IMMEDIATE), so a dead replica does not hold events; lingers linger_ms at exit.
zsock_t *sb_stage_push_socket(const char *endpoints, int linger_ms, sb_metrics_t *metrics,
                              sb_zmonitor_t **monitor, sb_resolver_t **peers, sb_err_t *err);
// PUB of heartbeats to every ingress ("heartbeat"; ACK_ENDPOINT): a short send queue
// (SB_STAGE_HEARTBEAT_SNDHWM) and no linger.
zsock_t *sb_stage_heartbeat_socket(const char *endpoints, sb_metrics_t *metrics,
                                   sb_zmonitor_t **monitor, sb_resolver_t **peers, sb_err_t *err);

#endif
