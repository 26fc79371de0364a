/* sb_stage - small pieces every stage's setup shares: its replica name in heartbeats
 * and a ZeroMQ socket attached to its configured endpoints, optionally monitored. */
#ifndef SB_STAGE_H
#define SB_STAGE_H
#include <czmq.h>
#include <stdbool.h>
#include "sb_err.h"
#include "sb_metrics.h"
#include "sb_zmonitor.h"

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

#endif
