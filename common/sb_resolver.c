/* sb_resolver - one socket connected to every address of a name (see sb_resolver.h).
 *
 * Two threads, no shared mutable state: the caller's thread owns the socket and the
 * entries; the helper actor owns a copy of the host names and only sends, per name and
 * round, [entry index]["ok"][addr]... or [entry index]["fail"][reason] over its pipe. */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "sb_mem.h"
#include "sb_resolver.h"
#include "sb_banned.h"

#define SB_RESOLVER_MIN_INTERVAL_MS 10 // floor of sb_resolver_set_interval

typedef enum {
    S_OK,              // the last resolution succeeded (or none failed yet)
    S_FAIL_UNREPORTED, // failed; the next sb_resolver_refresh returns -1 with why
    S_FAIL_REPORTED,   // failed and said so; silent until it resolves again
} s_state_t;

typedef struct {
    bool bind;                // "@": bound once by sb_resolver_new
    bool name;                // host is a name to resolve; false: connected once as written
    char *endpoint;           // as written, without the "@" or ">"
    char *prefix;             // names: what precedes the address, "tcp://" or "tcp://src;"
    char *host;               // names: the host name
    char *port;               // names: the port, digits
    char **addrs;             // names: connected endpoints "tcp://ADDR:PORT"
    size_t n_addrs;           // entries in addrs
    s_state_t state;          // of the last resolution
    char why[SB_ERR_MSG_MAX]; // reason of the last failed resolution
} s_entry_t;

struct sb_resolver {
    zsock_t *sock;        // borrowed: the socket that connects
    s_entry_t *entries;   // one per comma-separated endpoint
    size_t n_entries;     // entries in entries
    size_t literal_peers; // connects that need no resolution
    zactor_t *actor;      // the resolving thread; NULL when no entry is a name
    int64_t interval_ms;  // between two resolutions, for the messages
};

// What the actor owns: a copy of every host name (NULL for entries that are not names).
typedef struct {
    char **hosts;              // n_hosts strings or NULL, indexed like the entries
    size_t n_hosts;            // == n_entries
    sb_resolver_lookup_fn *fn; // how a name becomes addresses
    int64_t interval_ms;       // between two rounds
} s_job_t;

static int s_lookup_getaddrinfo(const char *host, struct in_addr *out, size_t max, sb_err_t *err);
static _Atomic(sb_resolver_lookup_fn *) s_lookup_hook; // NULL; clang 14 refuses "= NULL" here

void
sb_resolver_set_lookup(sb_resolver_lookup_fn *fn)
{
    s_lookup_hook = fn;
}

static sb_resolver_lookup_fn *
s_lookup_fn(void)
{
    sb_resolver_lookup_fn *fn = s_lookup_hook;
    return fn ? fn : s_lookup_getaddrinfo;
}

// getaddrinfo(AF_INET): every distinct IPv4 address of host, in the resolver's order.
static int
s_lookup_getaddrinfo(const char *host, struct in_addr *out, size_t max, sb_err_t *err)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        sb_err_set(err, rc == EAI_SYSTEM ? errno : 0, "could not resolve \"%s\": %s", host,
                   rc == EAI_SYSTEM ? "system error" : gai_strerror(rc));
        return -1;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) {
        struct in_addr a = ((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = out[i].s_addr == a.s_addr;
        if (!seen)
            out[n++] = a;
    }
    freeaddrinfo(res);
    if (n == 0) {
        sb_err_set(err, 0, "could not resolve \"%s\": no IPv4 address", host);
        return -1;
    }
    return (int)n;
}

// One name, resolved: the dotted addresses, or the reason it failed. Caller frees.
static char **
s_resolve(sb_resolver_lookup_fn *fn, const char *host, size_t *n, sb_err_t *err)
{
    struct in_addr addrs[SB_RESOLVER_MAX_ADDRS];
    int got = fn(host, addrs, SB_RESOLVER_MAX_ADDRS, err);
    if (got <= 0) {
        if (got == 0)
            sb_err_set(err, 0, "could not resolve \"%s\": no address", host);
        return NULL;
    }
    char **out = sb_xcalloc((size_t)got, sizeof *out);
    for (int i = 0; i < got; i++) {
        char text[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &addrs[i], text, sizeof text);
        out[i] = sb_xstrdup(text);
    }
    *n = (size_t)got;
    return out;
}

static void
s_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

// The helper thread: every interval, resolve each name and post the result. It never
// blocks on the pipe: a result the caller has not read yet is dropped (the next round
// sends a fresher one), so a stalled stage cannot wedge the actor and its $TERM.
static void
s_actor(zsock_t *pipe, void *args)
{
    s_job_t *job = args;
    zsock_signal(pipe, 0);
    zsock_set_sndtimeo(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, NULL);
    zpoller_set_nonstop(poller, true); // the stage decides when to stop, by $TERM
    int64_t next = zclock_mono() + job->interval_ms;
    while (true) {
        int64_t wait_ms = next - zclock_mono();
        void *which = zpoller_wait(poller, wait_ms > 0 ? (int)wait_ms : 0);
        if (which == pipe) {
            zmsg_t *cmd = zmsg_recv(pipe);
            char *verb = cmd ? zmsg_popstr(cmd) : NULL;
            bool term = verb == NULL || streq(verb, "$TERM");
            if (verb != NULL && streq(verb, "INTERVAL")) {
                char *ms = zmsg_popstr(cmd);
                job->interval_ms = ms ? strtoll(ms, NULL, 10) : job->interval_ms;
                next = zclock_mono(); // resolve now, then at the new pace
                free(ms);
            }
            free(verb);
            zmsg_destroy(&cmd);
            if (term)
                break;
            continue;
        }
        if (which == NULL && zpoller_terminated(poller) && zmq_errno() != EINTR)
            break; // the context is going away
        if (zclock_mono() < next)
            continue;
        for (size_t i = 0; i < job->n_hosts; i++) {
            if (job->hosts[i] == NULL)
                continue;
            sb_err_t err = {0};
            size_t n = 0;
            char **addrs = s_resolve(job->fn, job->hosts[i], &n, &err);
            zmsg_t *msg = zmsg_new();
            zmsg_addstrf(msg, "%zu", i);
            zmsg_addstr(msg, addrs ? "ok" : "fail");
            if (addrs == NULL)
                zmsg_addstr(msg, err.msg);
            for (size_t k = 0; k < n; k++)
                zmsg_addstr(msg, addrs[k]);
            s_strv_free(addrs, n);
            if (zmsg_send(&msg, pipe) != 0)
                zmsg_destroy(&msg); // pipe full: the caller is busy, drop this round
        }
        next = zclock_mono() + job->interval_ms;
    }
    zpoller_destroy(&poller);
    s_strv_free(job->hosts, job->n_hosts);
    free(job);
}

static bool
s_valid_host(const char *host)
{
    if (*host == '\0')
        return false;
    for (const char *p = host; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return false;
    return true;
}

// "tcp://[src;]host:port" with a host name: fill prefix, host and port. A literal
// address or another transport leaves entry->name false. -1 on a malformed tcp entry.
static int
s_parse_connect(s_entry_t *entry, sb_err_t *err)
{
    const char *text = entry->endpoint;
    if (strncmp(text, "tcp://", 6) != 0)
        return 0; // ipc://, inproc://, ...: libzmq takes them as they are
    const char *hostport = text + 6;
    const char *semi = strchr(hostport, ';');
    if (semi != NULL)
        hostport = semi + 1;
    if (*hostport == '[')
        return 0; // an IPv6 literal
    const char *colon = strrchr(hostport, ':');
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strtol(colon + 1, NULL, 10) < 1 || strtol(colon + 1, NULL, 10) > 65535) {
        sb_err_set(err, 0, "invalid endpoint \"%s\": expected tcp://host:port", text);
        return -1;
    }
    char *host = sb_xstrndup(hostport, (size_t)(colon - hostport));
    struct in_addr ignored;
    if (inet_pton(AF_INET, host, &ignored) == 1) {
        free(host);
        return 0;
    }
    if (!s_valid_host(host)) {
        sb_err_set(err, 0, "invalid endpoint \"%s\": \"%s\" is not a host name", text, host);
        free(host);
        return -1;
    }
    entry->name = true;
    entry->host = host;
    entry->port = sb_xstrdup(colon + 1);
    entry->prefix = sb_xstrndup(text, (size_t)(hostport - text));
    return 0;
}

// Split the CZMQ list into entries; nothing is bound or connected yet.
static int
s_parse(sb_resolver_t *self, const char *endpoints, sb_err_t *err)
{
    const char *p = endpoints;
    while (true) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        bool bind = len > 0 && *p == '@';
        if (len > 0 && (*p == '@' || *p == '>')) {
            p++;
            len--;
        }
        if (len == 0) {
            sb_err_set(err, 0, "invalid endpoint list \"%s\": empty entry", endpoints);
            return -1;
        }
        self->entries = sb_xrealloc(self->entries, (self->n_entries + 1) * sizeof *self->entries);
        s_entry_t *entry = &self->entries[self->n_entries++];
        memset(entry, 0, sizeof *entry);
        entry->bind = bind;
        entry->endpoint = sb_xstrndup(p, len);
        if (!bind && s_parse_connect(entry, err) != 0)
            return -1;
        if (end == NULL)
            return 0;
        p = end + 1;
    }
}

static bool
s_contains(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (streq(v[i], s))
            return true;
    return false;
}

// Make entry's connections equal the resolved addresses: connect the new ones first, so
// a replica swap never leaves the socket without a peer, then drop the vanished ones.
static int
s_apply(sb_resolver_t *self, s_entry_t *entry, char *const *addrs, size_t n, sb_err_t *err)
{
    int rc = 0;
    char **want = sb_xcalloc(n ? n : 1, sizeof *want);
    for (size_t i = 0; i < n; i++)
        want[i] = sb_xasprintf("%s%s:%s", entry->prefix, addrs[i], entry->port);
    for (size_t i = 0; i < n; i++) {
        if (s_contains(entry->addrs, entry->n_addrs, want[i]))
            continue;
        if (zsock_connect(self->sock, "%s", want[i]) != 0) {
            sb_err_set(err, zmq_errno(), "could not connect to \"%s\" (%s)", want[i], entry->host);
            rc = -1;
            continue; // not recorded: the next round tries again
        }
        entry->addrs = sb_xrealloc(entry->addrs, (entry->n_addrs + 1) * sizeof *entry->addrs);
        entry->addrs[entry->n_addrs++] = sb_xstrdup(want[i]);
    }
    for (size_t i = 0; i < entry->n_addrs;) {
        if (s_contains(want, n, entry->addrs[i])) {
            i++;
            continue;
        }
        // A failure means libzmq no longer knows the endpoint: forgetting it is right.
        zsock_disconnect(self->sock, "%s", entry->addrs[i]);
        free(entry->addrs[i]);
        entry->addrs[i] = entry->addrs[--entry->n_addrs];
    }
    s_strv_free(want, n);
    return rc;
}

// Bind "@" entries, connect literal ones, resolve names once here in the caller's thread.
static int
s_start(sb_resolver_t *self, sb_resolver_lookup_fn *fn, sb_err_t *err)
{
    for (size_t i = 0; i < self->n_entries; i++) {
        s_entry_t *entry = &self->entries[i];
        if (entry->bind) {
            if (zsock_bind(self->sock, "%s", entry->endpoint) < 0) {
                sb_err_set(err, zmq_errno(), "could not bind \"%s\"", entry->endpoint);
                return -1;
            }
        } else if (!entry->name) {
            if (zsock_connect(self->sock, "%s", entry->endpoint) != 0) {
                sb_err_set(err, zmq_errno(), "could not connect to \"%s\"", entry->endpoint);
                return -1;
            }
            self->literal_peers++;
        } else {
            size_t n = 0;
            sb_err_t why = {0};
            char **addrs = s_resolve(fn, entry->host, &n, &why);
            if (addrs == NULL) {
                entry->state = S_FAIL_UNREPORTED; // compose may not have started it yet
                memcpy(entry->why, why.msg, sizeof entry->why);
            } else if (s_apply(self, entry, addrs, n, err) != 0) {
                s_strv_free(addrs, n);
                return -1;
            }
            s_strv_free(addrs, n);
        }
    }
    return 0;
}

static zactor_t *
s_actor_start(const sb_resolver_t *self, sb_resolver_lookup_fn *fn)
{
    s_job_t *job = sb_xcalloc(1, sizeof *job);
    job->fn = fn;
    job->interval_ms = SB_RESOLVER_INTERVAL_MS;
    job->n_hosts = self->n_entries;
    job->hosts = sb_xcalloc(self->n_entries, sizeof *job->hosts);
    for (size_t i = 0; i < self->n_entries; i++)
        if (self->entries[i].name)
            job->hosts[i] = sb_xstrdup(self->entries[i].host);
    return zactor_new(s_actor, job); // the actor frees job
}

sb_resolver_t *
sb_resolver_new(zsock_t *sock, const char *endpoints, sb_err_t *err)
{
    assert(sock);
    sb_resolver_t *self = sb_xcalloc(1, sizeof *self);
    self->sock = sock;
    self->interval_ms = SB_RESOLVER_INTERVAL_MS;
    if (endpoints == NULL || *endpoints == '\0') {
        sb_err_set(err, 0, "invalid endpoint list \"\": expected @... or >...");
        goto fail;
    }
    sb_resolver_lookup_fn *fn = s_lookup_fn();
    if (s_parse(self, endpoints, err) != 0 || s_start(self, fn, err) != 0)
        goto fail;
    bool any_name = false;
    for (size_t i = 0; i < self->n_entries; i++)
        any_name = any_name || self->entries[i].name;
    if (any_name) {
        self->actor = s_actor_start(self, fn);
        if (self->actor == NULL) {
            sb_err_set(err, 0, "could not start the resolver thread for \"%s\"", endpoints);
            goto fail;
        }
    }
    return self;
fail:
    sb_resolver_destroy(&self);
    return NULL;
}

// One message of the actor: [index]["ok"][addr]... or [index]["fail"][reason].
static int
s_take(sb_resolver_t *self, zmsg_t *msg, sb_err_t *err)
{
    char *index = zmsg_popstr(msg);
    char *status = zmsg_popstr(msg);
    size_t i = index ? (size_t)strtoull(index, NULL, 10) : SIZE_MAX;
    int rc = 0;
    if (i < self->n_entries && self->entries[i].name && status != NULL) {
        s_entry_t *entry = &self->entries[i];
        if (streq(status, "ok")) {
            size_t n = zmsg_size(msg);
            char **addrs = sb_xcalloc(n ? n : 1, sizeof *addrs);
            for (size_t k = 0; k < n; k++)
                addrs[k] = zmsg_popstr(msg);
            rc = s_apply(self, entry, addrs, n, err);
            entry->state = S_OK;
            s_strv_free(addrs, n);
        } else if (entry->state == S_OK) {
            char *why = zmsg_popstr(msg);
            snprintf(entry->why, sizeof entry->why, "%s", why ? why : "could not resolve");
            entry->state = S_FAIL_UNREPORTED; // the addresses it had stay connected
            free(why);
        }
    }
    free(index);
    free(status);
    return rc;
}

int
sb_resolver_refresh(sb_resolver_t *self, sb_err_t *err)
{
    assert(self);
    int rc = 0;
    // zsock_events is a getsockopt: no blocking, so the loop never waits for DNS here.
    while (self->actor != NULL && (zsock_events(self->actor) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv(self->actor);
        if (msg == NULL)
            break; // interrupted; the rest waits for the next call
        if (s_take(self, msg, err) != 0)
            rc = -1;
        zmsg_destroy(&msg);
    }
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < self->n_entries; i++) {
        s_entry_t *entry = &self->entries[i];
        if (entry->state == S_FAIL_UNREPORTED) {
            sb_err_set(err, 0, "%s; retrying every %" PRId64 " ms", entry->why, self->interval_ms);
            entry->state = S_FAIL_REPORTED;
            return -1;
        }
    }
    return 0;
}

size_t
sb_resolver_peers(const sb_resolver_t *self)
{
    assert(self);
    size_t n = self->literal_peers;
    for (size_t i = 0; i < self->n_entries; i++)
        n += self->entries[i].n_addrs;
    return n;
}

void
sb_resolver_set_interval(sb_resolver_t *self, int64_t interval_ms)
{
    assert(self);
    if (self->actor == NULL)
        return;
    if (interval_ms < SB_RESOLVER_MIN_INTERVAL_MS)
        interval_ms = SB_RESOLVER_MIN_INTERVAL_MS;
    self->interval_ms = interval_ms;
    char ms[32];
    snprintf(ms, sizeof ms, "%" PRId64, interval_ms);
    zstr_sendx(self->actor, "INTERVAL", ms, NULL);
}

void
sb_resolver_destroy(sb_resolver_t **self_p)
{
    assert(self_p);
    sb_resolver_t *self = *self_p;
    if (self == NULL)
        return;
    zactor_destroy(&self->actor); // sends $TERM and waits for the thread
    for (size_t i = 0; i < self->n_entries; i++) {
        s_entry_t *entry = &self->entries[i];
        free(entry->endpoint);
        free(entry->prefix);
        free(entry->host);
        free(entry->port);
        s_strv_free(entry->addrs, entry->n_addrs);
    }
    free(self->entries);
    free(self);
    *self_p = NULL;
}
