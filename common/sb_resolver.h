/* sb_resolver - connect a sending socket to EVERY address of a name, and keep doing so
 * as the addresses come and go (DESIGN.md "Scaling"). Under docker compose a service name
 * resolves to one address per replica, but libzmq's own connect resolves a name once and
 * takes the first address, so `--scale verifier=3` would feed one verifier. The resolver
 * takes the same CZMQ endpoint list as zsock_attach and, for each tcp:// entry whose host
 * is a name, connects the socket to tcp://ADDR:PORT for every IPv4 address of the name;
 * after each later resolution it connects to new addresses and disconnects from those
 * that disappeared. libzmq then load-balances (PUSH) or fans out (PUB) over all of them.
 *
 * Entries: "@..." binds once (as zsock_attach); ">..." or no prefix connects (the
 * resolver is for the sending side, so unprefixed means connect, zsock_attach(..., false)).
 * Literal IPv4 hosts, "[IPv6]" hosts and non-tcp transports (ipc://, inproc://) are
 * connected once, unchanged. "tcp://src;host:port" keeps the source part.
 *
 * Threads: getaddrinfo blocks (up to resolv.conf's timeout when DNS is down), and the
 * stage loops must not stall, so names are resolved by a helper thread (a zactor) every
 * SB_RESOLVER_INTERVAL_MS. It only sends address lists over its inproc pipe; the socket is
 * touched only by the caller's thread, inside sb_resolver_new and sb_resolver_refresh.
 * sb_resolver_new resolves each name once itself, so peers exist before the first send.
 * A name that does not resolve keeps the addresses it had (the peers may come back; a
 * dead peer costs libzmq only reconnect attempts) and is retried at the next round.
 *
 *   sb_resolver_t *r = sb_resolver_new(push, conf->push_endpoint, &err); // instead of
 *   if (r == NULL) ...                                                   // zsock_attach
 *   loop: if (sb_resolver_refresh(r, &err) != 0) sb_log_warn(NULL, "%s", err.msg);
 *   sb_resolver_destroy(&r); // before zsock_destroy(&push)
 *
 * One resolver per socket; not thread-safe (like the socket it drives). */
#ifndef SB_RESOLVER_H
#define SB_RESOLVER_H
#include <czmq.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include "sb_err.h"

#define SB_RESOLVER_INTERVAL_MS 2000 // default time between two resolutions of a name
#define SB_RESOLVER_MAX_ADDRS 64     // addresses taken per name; more replicas are ignored

typedef struct sb_resolver sb_resolver_t;

// Parse endpoints, bind the "@" entries, connect the literal ones and resolve the names
// once. A name that does not resolve yet is not an error here (compose may start this
// stage before the next one): the first sb_resolver_refresh reports it. NULL and err on
// an invalid endpoint or a failed bind/connect. Borrows sock; it must outlive the resolver.
sb_resolver_t *sb_resolver_new(zsock_t *sock, const char *endpoints, sb_err_t *err);

// Apply what the helper thread found since the last call: connect new addresses,
// disconnect vanished ones. Never blocks; cheap enough to call every loop turn.
// -1 and err when a name could not be resolved (once per name until it resolves again,
// so the caller can log every -1 without flooding) or a connect failed; the resolver
// keeps working either way.
int sb_resolver_refresh(sb_resolver_t *self, sb_err_t *err);

// Connected peer endpoints right now: literal connects plus every resolved address.
// Binds are not counted. Compare before and after refresh to log a change.
size_t sb_resolver_peers(const sb_resolver_t *self);

// Change the resolution interval (tests; operators keep the default). ms >= 10.
void sb_resolver_set_interval(sb_resolver_t *self, int64_t interval_ms);

void sb_resolver_destroy(sb_resolver_t **self_p); // stops the thread; the socket stays

// Test hook: how a host name becomes IPv4 addresses. Fill out[0..max) and return the
// count (> 0), or -1 and err. Called from the helper thread and from sb_resolver_new.
// The default uses getaddrinfo(AF_INET). Set it before sb_resolver_new; NULL restores.
typedef int sb_resolver_lookup_fn(const char *host, struct in_addr *out, size_t max, sb_err_t *err);
void sb_resolver_set_lookup(sb_resolver_lookup_fn *fn);

#endif
