/* sb_zmonitor - what a ZeroMQ socket sees of its peers (DESIGN.md "Operations"), as
 * Prometheus metrics and log lines, from zmq_socket_monitor(3):
 *
 *   sb_zmq_events_total{socket="push",event="connected"}  connected, accepted,
 *       disconnected, closed, handshake_failed, handshake_succeeded, connect_retried
 *   sb_zmq_peers{socket="push"}  connections up now: connected + accepted - disconnected
 *
 * and one sb_log line per connect, accept and disconnect (info) and per failed handshake
 * (warn); closed, connect_retried and handshake_succeeded only at debug, since a replica
 * that is down makes them every reconnect interval. At most SB_ZMONITOR_LOG_BURST info
 * and warn lines per SB_ZMONITOR_LOG_WINDOW_MS per socket (a port scanner cannot flood
 * the log); the counters see everything. Unlike the rest of common/ this module logs
 * itself: an event is an observation, not an error with a caller to decide about.
 *
 * No thread: libzmq writes the events to an inproc PAIR that sb_zmonitor_drain reads
 * without blocking, from the thread that owns the socket, once per loop turn or tick
 * (or when sb_zmonitor_sock is readable, for a loop that polls it).
 *
 *   push = zsock_new(ZMQ_PUSH);
 *   mon = sb_zmonitor_new(push, "push", metrics, &err); // before connecting: no event
 *   ... sb_resolver_new(push, ...) / zsock_attach ...   // is missed
 *   loop: sb_zmonitor_drain(mon);
 *   sb_zmonitor_destroy(&mon); // BEFORE zsock_destroy(&push)
 *
 * Limit: libzmq reports no event when this side ends a connection itself (zmq_disconnect,
 * as sb_resolver does when a replica's address goes away), so sb_zmq_peers can stay one
 * too high until that socket closes; it counts what the peers did. */
#ifndef SB_ZMONITOR_H
#define SB_ZMONITOR_H
#include <czmq.h>
#include <stddef.h>
#include "sb_err.h"
#include "sb_metrics.h"

#define SB_ZMONITOR_DRAIN_MAX 1000      // events read per drain; the rest wait a turn
#define SB_ZMONITOR_LOG_BURST 20        // info/warn lines per socket per window
#define SB_ZMONITOR_LOG_WINDOW_MS 10000 // then one summary line says how many were not
#define SB_ZMONITOR_NAME_MAX 32         // socket names: [a-z0-9_], as metric label values

typedef struct sb_zmonitor sb_zmonitor_t;

// Start monitoring sock (borrowed: it must outlive the monitor) under socket_name, with
// its series registered in metrics (borrowed; every series starts at 0). Call from the
// thread that owns sock. NULL and err when the name is invalid or libzmq refuses.
sb_zmonitor_t *sb_zmonitor_new(zsock_t *sock, const char *socket_name, sb_metrics_t *metrics,
                               sb_err_t *err);

// Stops the monitor (zmq_socket_monitor(sock, NULL, 0)) and closes the PAIR; events not
// read yet are dropped. Safe with *self_p NULL. Call before destroying the socket.
void sb_zmonitor_destroy(sb_zmonitor_t **self_p);

// Read the pending events without blocking (at most SB_ZMONITOR_DRAIN_MAX), count and
// log them. Returns how many were read; a malformed one is skipped (debug line).
size_t sb_zmonitor_drain(sb_zmonitor_t *self);

// Count and log one monitor message (drain calls it; tests feed hand-made ones). Borrows
// msg. 0, or -1 when msg is not [6-byte event][endpoint] (skipped with a debug line).
int sb_zmonitor_take(sb_zmonitor_t *self, zmsg_t *msg);

// The PAIR the events arrive on, for a zpoller or zmq_poll (readable: call drain).
zsock_t *sb_zmonitor_sock(sb_zmonitor_t *self);

// Connections up now, as in sb_zmq_peers.
size_t sb_zmonitor_peers(const sb_zmonitor_t *self);

#endif
