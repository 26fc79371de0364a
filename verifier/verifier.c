/* verifier - the stage's logic (see verifier.h): one verify function per source, the
 * verdict and redaction of one envelope, and the loop over the sockets.
 * Invariants: every event that arrives leaves with a verdict, rejected ones included;
 * no configured secret leaves this stage inside the headers; a message that is not an
 * envelope is dropped (not acked, so the ingress sends it again). */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "sb_hex.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_stage.h"
#include "sb_resolver.h"
#include "sb_zmonitor.h"
#include "verifier.h"
#include "verify_ringcentral.h"
#include "sb_banned.h"

#define S_HEARTBEAT_MS 1000   // heartbeat period; the ingress's health expects ~1 s
#define S_SEND_TIMEOUT_MS 250 // a blocked PUSH wakes this often to heartbeat and look at stop
#define S_STOP_GRACE_MS 2000  // after a stop signal, how long the event in hand may still wait
#define S_PUSH_LINGER_MS 2000 // queued events still flushed at exit
#define S_BATCH_MAX 64        // events handled per poll when more are already queued
#define S_REDACTED "[redacted]"

#define SB_OFF(field) offsetof(sb_verifier_config_t, field)
const sb_config_var_t sb_verifier_config_vars[] = {
    {"LOG_LEVEL", SB_CONFIG_STRING, SB_OFF(log_level), "info", 0, 0, 0,
     "debug, info, warn or error"},
    {"VERIFIER_PULL_ENDPOINT", SB_CONFIG_STRING, SB_OFF(pull_endpoint), "@tcp://*:5557", 0, 0, 0,
     "where events arrive (CZMQ endpoints, comma-separated)"},
    {"VERIFIER_PUSH_ENDPOINT", SB_CONFIG_STRING, SB_OFF(push_endpoint), ">tcp://127.0.0.1:5560", 0,
     0, 0, "every replica of the next stage, the enrichers (CZMQ endpoints)"},
    {"ACK_ENDPOINT", SB_CONFIG_STRING, SB_OFF(ack_endpoint), ">tcp://127.0.0.1:5559", 0, 0, 0,
     "every ingress's ack endpoint, for heartbeats (CZMQ endpoints)"},
    {"METRICS_LISTEN", SB_CONFIG_STRING, SB_OFF(metrics_listen), "0.0.0.0:9102", 0, 0, 0,
     "host:port of GET /metrics and GET /health"},
    {"INSTANCE_ID", SB_CONFIG_STRING, SB_OFF(instance_id), NULL, 0, 0, 0,
     "name of this replica in heartbeats (default <hostname>:<pid>)"},
    {"RINGCENTRAL_VERIFICATION_TOKEN", SB_CONFIG_STRING, SB_OFF(rc_verification_token), NULL, 0, 0,
     SB_CONFIG_SECRET, "RingCentral webhooks must carry it in Verification-Token"},
    {"RINGCENTRAL_WEBHOOK_SECRET", SB_CONFIG_STRING, SB_OFF(rc_webhook_secret), NULL, 0, 0,
     SB_CONFIG_SECRET,
     "also accept X-RingCentral-Signature, HMAC-SHA256 of the body (RingCentral never signs)"},
    {"GMAIL_PUSH_TOKEN", SB_CONFIG_STRING, SB_OFF(gmail_push_token), NULL, 0, 0, SB_CONFIG_SECRET,
     "Gmail pushes must carry it as ?token="},
    {"GMAIL_PUSH_AUDIENCE", SB_CONFIG_STRING, SB_OFF(gmail_push_audience), NULL, 0, 0, 0,
     "aud of the Pub/Sub push OIDC token; setting it turns the JWT check on"},
    {"GMAIL_PUSH_SERVICE_ACCOUNT", SB_CONFIG_STRING, SB_OFF(gmail_push_account), NULL, 0, 0, 0,
     "when set, the token's email claim must be this (and verified)"},
    {"GOOGLE_JWKS_URL", SB_CONFIG_STRING, SB_OFF(google_jwks_url), SB_GOOGLE_JWKS_URL_DEFAULT, 0, 0,
     0, "where Google's signing keys are fetched"},
    {"GOOGLE_JWKS_FILE", SB_CONFIG_STRING, SB_OFF(google_jwks_file), NULL, 0, 0, 0,
     "read the signing keys from this file instead of GOOGLE_JWKS_URL"},
    {"SWITCHBOARD_ALLOW_UNVERIFIED", SB_CONFIG_BOOL, SB_OFF(allow_unverified), "0", 0, 0, 0,
     "accept events of a source with no verification configured (development only)"},
};
const size_t sb_verifier_config_vars_n =
    sizeof sb_verifier_config_vars / sizeof sb_verifier_config_vars[0];

// --- Verification, one function per source -------------------------------------------

// Decide one event of a source: 0 accepted, -1 rejected, *reason static (NULL when a
// scheme passed). headers is the parsed headers object, or NULL when it was not one.
typedef int(s_verify_fn)(const sb_verifier_config_t *conf, sb_google_verifier_t *google,
                         const json_t *headers, const sb_envelope_t *env, const char **reason);

static const char *
s_header(const json_t *headers, const char *name)
{
    // json_object_get takes a non-const object but does not change it
    return json_string_value(json_object_get((json_t *)headers, name));
}

int
sb_verifier_secret_equal(const char *expected, const char *given)
{
    if (expected == NULL || given == NULL)
        return 0;
    // Compare fixed-size digests rather than the strings: CRYPTO_memcmp needs equal
    // lengths, and an early exit on a length mismatch would tell the length of the secret.
    unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
    unsigned int want_len = 0, got_len = 0;
    size_t expected_len = strlen(expected), given_len = strlen(given);
    if (EVP_Digest(expected, expected_len, want, &want_len, EVP_sha256(), NULL) != 1 ||
        EVP_Digest(given, given_len, got, &got_len, EVP_sha256(), NULL) != 1 || want_len != got_len)
        return 0;
    int same = CRYPTO_memcmp(want, got, want_len) == 0;
    return same & (expected_len == given_len);
}

// application/x-www-form-urlencoded value: '+' is a space, %XX a byte. NULL when a
// '%' is not followed by two hex digits or decodes to NUL (it would cut the C string).
static char *
s_url_decode(const char *text, size_t len)
{
    char *out = sb_xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '+') {
            out[n++] = ' ';
        } else if (text[i] != '%') {
            out[n++] = text[i];
        } else {
            int hi = i + 2 < len ? sb_hex_digit(text[i + 1]) : -1;
            int lo = hi >= 0 ? sb_hex_digit(text[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        }
    }
    out[n] = '\0';
    return out;
}

char *
sb_verifier_query_param(const char *query, const char *name)
{
    if (query == NULL || name == NULL)
        return NULL;
    if (*query == '?')
        query++;
    size_t name_len = strlen(name);
    const char *p = query;
    for (;;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= name_len && strncmp(p, name, name_len) == 0) {
            if (len == name_len)
                return sb_xstrdup("");
            if (p[name_len] == '=')
                return s_url_decode(p + name_len + 1, len - name_len - 1);
        }
        if (end == NULL)
            return NULL;
        p = end + 1;
    }
}

static int
s_verify_ringcentral(const sb_verifier_config_t *conf, sb_google_verifier_t *google,
                     const json_t *headers, const sb_envelope_t *env, const char **reason)
{
    (void)google;
    sb_verify_ringcentral_keys_t keys = {
        .verification_token = conf->rc_verification_token,
        .webhook_secret = conf->rc_webhook_secret,
        .allow_unverified = conf->allow_unverified,
    };
    return sb_verify_ringcentral(&keys, s_header(headers, "verification-token"),
                                 s_header(headers, "x-ringcentral-signature"), env->body,
                                 env->body ? env->body_len : 0, reason);
}

// Two schemes (SPEC "Verification"): the Pub/Sub OIDC JWT in Authorization when
// GMAIL_PUSH_AUDIENCE is set, and ?token= when GMAIL_PUSH_TOKEN is set. One that passes
// is enough; with neither configured the push is rejected unless unverified events are
// allowed. The JWT reason wins over the token's, as it says more.
static int
s_verify_gmail_push(const sb_verifier_config_t *conf, sb_google_verifier_t *google,
                    const json_t *headers, const sb_envelope_t *env, const char **reason)
{
    (void)env;
    if (!sb_config_is_set(conf->gmail_push_token) && google == NULL) {
        *reason = conf->allow_unverified ? "unverified_allowed" : "no_verification_configured";
        return conf->allow_unverified ? 0 : -1;
    }
    const char *token_reason = NULL, *jwt_reason = NULL;
    if (sb_config_is_set(conf->gmail_push_token)) {
        char *token = sb_verifier_query_param(s_header(headers, ":query"), "token");
        int ok = sb_verifier_secret_equal(conf->gmail_push_token, token);
        free(token);
        if (ok) {
            *reason = NULL;
            return 0;
        }
        token_reason = "bad_push_token";
    }
    if (google != NULL) {
        const char *auth = s_header(headers, "authorization");
        if (sb_google_verify(google, auth ? auth : "", (int64_t)time(NULL), &jwt_reason) == 0) {
            *reason = NULL;
            return 0;
        }
        if (jwt_reason != NULL && strcmp(jwt_reason, "jwks_unavailable") == 0) {
            *reason = jwt_reason;
            return -2;
        }
    }
    *reason = jwt_reason ? jwt_reason : token_reason;
    return -1;
}

static const struct {
    const char *source;  // envelope frame [2]
    s_verify_fn *verify; // its rules
} s_sources[] = {
    {"ringcentral_sms", s_verify_ringcentral},
    {"ringcentral_call", s_verify_ringcentral},
    {"gmail_push", s_verify_gmail_push},
};
#define S_N_SOURCES (sizeof s_sources / sizeof s_sources[0])

// Index into s_sources, or S_N_SOURCES for anything else: metric labels and log lines
// only ever show known names, never text from the network.
static size_t
s_source_index(const char *source)
{
    for (size_t i = 0; source != NULL && i < S_N_SOURCES; i++)
        if (strcmp(source, s_sources[i].source) == 0)
            return i;
    return S_N_SOURCES;
}

static const char *
s_source_label(size_t index)
{
    return index < S_N_SOURCES ? s_sources[index].source : "unknown";
}

// --- Redaction -----------------------------------------------------------------------

// Does text hold a configured secret, as is or URL-encoded (a query string)?
static int
s_holds_secret(const sb_verifier_config_t *conf, const char *text)
{
    const char *secrets[] = {conf->rc_verification_token, conf->rc_webhook_secret,
                             conf->gmail_push_token};
    char *decoded =
        strchr(text, '%') || strchr(text, '+') ? s_url_decode(text, strlen(text)) : NULL;
    int found = 0;
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0] && !found; i++)
        found = sb_config_is_set(secrets[i]) &&
                (strstr(text, secrets[i]) || (decoded && strstr(decoded, secrets[i])));
    free(decoded);
    return found;
}

// Belt and braces after sb_envelope_redact, which works by header name: any header
// whose value still contains a configured secret (sent under another name, say) is
// redacted too.
static void
s_scrub(const sb_verifier_config_t *conf, sb_envelope_t *env)
{
    json_t *headers = json_loads(env->headers, 0, NULL);
    if (!json_is_object(headers)) {
        json_decref(headers);
        sb_envelope_set(&env->headers, "{}");
        return;
    }
    int changed = 0;
    const char *key;
    json_t *value;
    json_object_foreach(headers, key, value)
    {
        char *dumped = json_is_string(value) ? NULL : json_dumps(value, JSON_ENCODE_ANY);
        const char *text = dumped ? dumped : json_string_value(value);
        if (text != NULL && s_holds_secret(conf, text)) {
            json_object_set_new(headers, key, json_string(S_REDACTED));
            changed = 1;
        }
        free(dumped);
    }
    if (changed) {
        char *text = json_dumps(headers, JSON_COMPACT);
        sb_envelope_set(&env->headers, text ? text : "{}");
        free(text);
    }
    json_decref(headers);
}

int
sb_verifier_check(const sb_verifier_config_t *conf, sb_google_verifier_t *google,
                  sb_envelope_t *env)
{
    json_t *headers = env->headers ? json_loads(env->headers, 0, NULL) : NULL;
    if (!json_is_object(headers)) {
        // Not the ingress's output: nothing in it can pass, and nothing in it may leave.
        json_decref(headers);
        headers = NULL;
        sb_envelope_set(&env->headers, "{}");
    }
    const char *reason = "unknown_source";
    int rc = -1;
    size_t index = s_source_index(env->source);
    if (index < S_N_SOURCES)
        rc = s_sources[index].verify(conf, google, headers, env, &reason);
    json_decref(headers);
    if (rc == -2) { // undecided: nothing about it goes on, redaction is moot
        sb_envelope_set(&env->reason, reason);
        return rc;
    }
    sb_envelope_set(&env->verdict, rc == 0 ? "accepted" : "rejected");
    sb_envelope_set(&env->reason, reason);
    sb_envelope_redact(env);
    s_scrub(conf, env);
    return rc;
}

// --- The running stage ---------------------------------------------------------------

struct sb_verifier {
    const sb_verifier_config_t *conf;      // borrowed from main
    zsock_t *pull;                         // events in
    zsock_t *push;                         // events out, blocking (backpressure)
    zsock_t *pub;                          // heartbeats, NULL when no ACK_ENDPOINT
    sb_resolver_t *push_peers;             // push to every replica of the next stage
    sb_resolver_t *pub_peers;              // pub to every ingress replica, or NULL
    sb_zmonitor_t *pull_mon;               // sb_zmq_* of pull ("pull")
    sb_zmonitor_t *push_mon;               // of push ("push")
    sb_zmonitor_t *pub_mon;                // of pub ("heartbeat"), NULL without it
    zpoller_t *poller;                     // over pull
    sb_google_verifier_t *google;          // Pub/Sub JWTs, NULL without GMAIL_PUSH_AUDIENCE
    char *instance;                        // name in heartbeats
    int64_t next_heartbeat_ms;             // zclock_mono() of the next one
    int blocked;                           // the last send timed out
    sb_metrics_t *metrics;                 // owned registry
    sb_metrics_server_t *server;           // GET /metrics, NULL when not listening
    sb_counter_t *in[S_N_SOURCES + 1];     // sb_events_in_total{source}
    sb_counter_t *out[S_N_SOURCES + 1][2]; // sb_events_out_total{source,verdict}
    sb_counter_t *malformed;               // sb_malformed_envelopes_total
    sb_counter_t *send_failed;             // sb_forward_failures_total
    sb_histogram_t *verify_seconds;        // sb_verify_duration_seconds
};

static void
s_metrics_register(sb_verifier_t *self)
{
    self->metrics = sb_metrics_new();
    char labels[128];
    for (size_t i = 0; i <= S_N_SOURCES; i++) {
        snprintf(labels, sizeof labels, "source=\"%s\"", s_source_label(i));
        self->in[i] = sb_metrics_counter(self->metrics, "sb_events_in_total",
                                         "events received by the verifier", labels);
        for (int rejected = 0; rejected < 2; rejected++) {
            snprintf(labels, sizeof labels, "source=\"%s\",verdict=\"%s\"", s_source_label(i),
                     rejected ? "rejected" : "accepted");
            self->out[i][rejected] = sb_metrics_counter(self->metrics, "sb_events_out_total",
                                                        "events passed on, by verdict", labels);
        }
    }
    self->malformed = sb_metrics_counter(self->metrics, "sb_malformed_envelopes_total",
                                         "messages that were not envelopes (dropped)", "");
    self->send_failed = sb_metrics_counter(self->metrics, "sb_forward_failures_total",
                                           "events not passed on (the ingress resends)", "");
    self->verify_seconds = sb_metrics_histogram(
        self->metrics, "sb_verify_duration_seconds", "time to verify and redact one event", "",
        sb_metrics_latency_bounds, sb_metrics_latency_bounds_n);
}

sb_verifier_t *
sb_verifier_new(const sb_verifier_config_t *conf, sb_err_t *err)
{
    sb_verifier_t *self = sb_xcalloc(1, sizeof *self);
    self->conf = conf;
    self->instance = sb_stage_instance(conf->instance_id);
    s_metrics_register(self);
    if (sb_config_is_set(conf->gmail_push_audience)) {
        self->google =
            sb_google_verifier_new(conf->google_jwks_file, conf->google_jwks_url,
                                   conf->gmail_push_audience, conf->gmail_push_account, err);
        if (self->google == NULL)
            goto fail;
    }
    self->pull = sb_stage_socket_monitored(ZMQ_PULL, conf->pull_endpoint, true, "pull",
                                           self->metrics, &self->pull_mon, err);
    if (self->pull == NULL)
        goto fail;
    self->push = sb_stage_push_socket(conf->push_endpoint, S_PUSH_LINGER_MS, self->metrics,
                                      &self->push_mon, &self->push_peers, err);
    if (self->push == NULL)
        goto fail;
    zsock_set_sndtimeo(self->push, S_SEND_TIMEOUT_MS);
    if (sb_config_is_set(conf->ack_endpoint)) {
        self->pub = sb_stage_heartbeat_socket(conf->ack_endpoint, self->metrics, &self->pub_mon,
                                              &self->pub_peers, err);
        if (self->pub == NULL)
            goto fail;
    }
    self->poller = zpoller_new(self->pull, NULL);
    if (sb_config_is_set(conf->metrics_listen)) {
        self->server = sb_metrics_serve(self->metrics, conf->metrics_listen, "verifier", err);
        if (self->server == NULL)
            goto fail;
    }
    self->next_heartbeat_ms = zclock_mono();
    return self;
fail:
    sb_verifier_destroy(&self);
    return NULL;
}

void
sb_verifier_destroy(sb_verifier_t **self_p)
{
    assert(self_p);
    sb_verifier_t *self = *self_p;
    if (self == NULL)
        return;
    sb_metrics_server_destroy(&self->server); // first: it reads the registry
    zpoller_destroy(&self->poller);
    sb_google_verifier_destroy(&self->google);
    sb_resolver_destroy(&self->pub_peers);
    sb_resolver_destroy(&self->push_peers);
    sb_zmonitor_destroy(&self->pub_mon); // before their sockets
    sb_zmonitor_destroy(&self->push_mon);
    sb_zmonitor_destroy(&self->pull_mon);
    zsock_destroy(&self->pub);
    zsock_destroy(&self->push);
    zsock_destroy(&self->pull);
    sb_metrics_destroy(&self->metrics);
    free(self->instance);
    free(self);
    *self_p = NULL;
}

sb_metrics_t *
sb_verifier_metrics(sb_verifier_t *self)
{
    return self->metrics;
}

// PUB never blocks and drops at its high-water mark: a heartbeat is never worth a wait.
static void
s_heartbeat_maybe(sb_verifier_t *self)
{
    int64_t now = zclock_mono();
    if (self->pub == NULL || now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + S_HEARTBEAT_MS;
    const char *status =
        self->blocked ? "{\"ok\":false,\"reason\":\"downstream_blocked\"}" : "{\"ok\":true}";
    sb_err_t err = {0};
    if (sb_heartbeat_send(self->pub, "verifier", self->instance, status, &err) != 0)
        sb_log_debug(NULL, "could not send a heartbeat: %s", err.msg);
}

// Count and log what the sockets saw of their peers since the last turn (sb_zmonitor.h).
static void
s_monitors_drain(sb_verifier_t *self)
{
    sb_zmonitor_drain(self->pull_mon);
    sb_zmonitor_drain(self->push_mon);
    if (self->pub_mon != NULL)
        sb_zmonitor_drain(self->pub_mon);
}

// Blocking send: a full downstream holds this stage back (backpressure) instead of
// losing events. Every S_SEND_TIMEOUT_MS the wait wakes to heartbeat and to look at
// *stop; after a stop the event gets S_STOP_GRACE_MS more, then the ingress resends it.
static int
s_forward(sb_verifier_t *self, const sb_envelope_t *env, volatile sig_atomic_t *stop)
{
    int64_t give_up_ms = -1;
    for (;;) {
        sb_err_t err = {0};
        if (sb_envelope_send(env, self->push, 0, &err) == 0) {
            self->blocked = 0;
            return 0;
        }
        if (err.code != EAGAIN && err.code != EINTR) {
            sb_log_error(env->event_id, "could not pass the event on: %s", err.msg);
            return -1;
        }
        if (err.code == EAGAIN && !self->blocked) {
            self->blocked = 1;
            sb_log_warn(env->event_id, "next stage is not taking events; waiting");
        }
        if (*stop && give_up_ms < 0)
            give_up_ms = zclock_mono() + S_STOP_GRACE_MS;
        if (give_up_ms >= 0 && zclock_mono() >= give_up_ms) {
            sb_log_warn(env->event_id, "stopping with the event not passed on; "
                                       "the ingress will send it again");
            return -1;
        }
        s_heartbeat_maybe(self);
        s_monitors_drain(self); // a blocked next stage may be one that went away
    }
}

static void
s_handle(sb_verifier_t *self, sb_envelope_t *env, volatile sig_atomic_t *stop)
{
    size_t index = s_source_index(env->source);
    sb_counter_add(self->in[index], 1);
    int64_t start_us = zclock_usecs();
    int rc = sb_verifier_check(self->conf, self->google, env);
    sb_histogram_observe(self->verify_seconds, (double)(zclock_usecs() - start_us) / 1e6);
    if (rc == -2) {
        // Our fault, not the sender's: do not store a verdict. Without an ack the
        // ingress sends the event again after its redelivery delay.
        sb_counter_add(self->send_failed, 1);
        sb_log_warn(env->event_id, "cannot verify now (%s: %s); the ingress will resend it",
                    env->reason ? env->reason : "", sb_google_verifier_jwks_error(self->google));
        return;
    }
    if (rc != 0) {
        char labels[96];
        snprintf(labels, sizeof labels, "reason=\"%s\"", env->reason ? env->reason : "");
        sb_counter_add(sb_metrics_counter(self->metrics, "sb_verify_rejected_total",
                                          "events rejected, by reason", labels),
                       1);
        sb_log_info(env->event_id, "rejected: source=%s reason=%s", s_source_label(index),
                    env->reason ? env->reason : "");
    } else if (env->reason != NULL) {
        sb_log_debug(env->event_id, "accepted: source=%s reason=%s", s_source_label(index),
                     env->reason);
    }
    if (s_forward(self, env, stop) == 0)
        sb_counter_add(self->out[index][rc != 0], 1);
    else
        sb_counter_add(self->send_failed, 1);
}

// Receive and handle one event; 0 when nothing was there to read (interrupted).
static int
s_receive_one(sb_verifier_t *self, volatile sig_atomic_t *stop)
{
    sb_err_t err = {0};
    sb_envelope_t *env = sb_envelope_recv(self->pull, &err);
    if (env == NULL) {
        if (err.code == EINTR || err.code == EAGAIN)
            return 0;
        sb_counter_add(self->malformed, 1);
        sb_log_warn(NULL, "dropped a malformed envelope: %s", err.msg);
        return 1;
    }
    s_handle(self, env, stop);
    sb_envelope_destroy(&env);
    return 1;
}

int
sb_verifier_step(sb_verifier_t *self, int timeout_ms, volatile sig_atomic_t *stop)
{
    sb_err_t err = {0};
    if (sb_resolver_refresh(self->push_peers, &err) != 0)
        sb_log_warn(NULL, "VERIFIER_PUSH_ENDPOINT: %s", err.msg);
    if (self->pub_peers != NULL && sb_resolver_refresh(self->pub_peers, &err) != 0)
        sb_log_warn(NULL, "ACK_ENDPOINT: %s", err.msg);
    s_monitors_drain(self);
    s_heartbeat_maybe(self);
    if (zpoller_wait(self->poller, timeout_ms) != self->pull)
        return 0;
    // Drain what is already queued without a poll per event, but bounded, so that
    // heartbeats and a stop signal are still seen under a steady flood.
    int handled = 0;
    do {
        if (s_receive_one(self, stop) == 0)
            break;
        handled++;
        s_heartbeat_maybe(self);
    } while (handled < S_BATCH_MAX && !*stop && (zsock_events(self->pull) & ZMQ_POLLIN));
    return handled;
}

void
sb_verifier_run(sb_verifier_t *self, volatile sig_atomic_t *stop)
{
    while (!*stop)
        sb_verifier_step(self, S_SEND_TIMEOUT_MS, stop);
}
