/* verifier - the verification stage (SPEC "Verification", docs/topology.md).
 * Reads envelopes on a PULL socket (VERIFIER_PULL_ENDPOINT), decides each one with
 * sb_verifier_check() (a function per source: RingCentral in verify_ringcentral.c,
 * Gmail push below; a verify_google.c for OIDC JWTs slots in next to it), removes the
 * secrets from the headers, and PUSHes every event on (VERIFIER_PUSH_ENDPOINT), the
 * rejected ones too: the writer stores them as 'rejected' webhook_events rows. Nothing
 * is acked here; an event lost in between is resent by the ingress.
 * A malformed message is logged, counted and dropped (the ingress resends it).
 * About once a second a heartbeat goes out on a PUB socket (ACK_ENDPOINT).
 *
 * Calling sequence (main.c): sb_config_load(sb_verifier_config_vars ...), sb_log_init,
 * sb_verifier_new, sb_verifier_run until a signal sets *stop, sb_verifier_destroy. */
#ifndef SB_VERIFIER_H
#define SB_VERIFIER_H
#include <signal.h>
#include <stddef.h>
#include "sb_config.h"
#include "sb_envelope.h"
#include "sb_err.h"
#include "sb_metrics.h"
#include "verify_google.h"

typedef struct {
    char *log_level;             // LOG_LEVEL: debug, info, warn, error
    char *pull_endpoint;         // VERIFIER_PULL_ENDPOINT, CZMQ syntax, comma list allowed
    char *push_endpoint;         // VERIFIER_PUSH_ENDPOINT: every replica of the next stage
    char *ack_endpoint;          // ACK_ENDPOINT: every ingress (heartbeats only)
    char *metrics_listen;        // METRICS_LISTEN "host:port"; empty = no metrics server
    char *instance_id;           // INSTANCE_ID; NULL = "<hostname>:<pid>"
    char *rc_verification_token; // RINGCENTRAL_VERIFICATION_TOKEN (secret)
    char *rc_webhook_secret;     // RINGCENTRAL_WEBHOOK_SECRET (secret)
    char *gmail_push_token;      // GMAIL_PUSH_TOKEN (secret)
    char *gmail_push_audience;   // GMAIL_PUSH_AUDIENCE: set = the OIDC JWT scheme is on
    char *gmail_push_account;    // GMAIL_PUSH_SERVICE_ACCOUNT: required `email` claim
    char *google_jwks_url;       // GOOGLE_JWKS_URL (default Google's certs)
    char *google_jwks_file;      // GOOGLE_JWKS_FILE: wins over the URL when set
    int allow_unverified;        // SWITCHBOARD_ALLOW_UNVERIFIED (development only)
} sb_verifier_config_t;

// The stage's variables for sb_config_load / sb_config_args / sb_config_describe.
extern const sb_config_var_t sb_verifier_config_vars[];
extern const size_t sb_verifier_config_vars_n;

// Decide one event without any socket: sets env->verdict ("accepted" | "rejected") and
// env->reason (NULL, or why), then removes the secrets from env->headers. google is the
// Pub/Sub JWT verifier, or NULL when GMAIL_PUSH_AUDIENCE is unset. Returns 0 when
// accepted, -1 when rejected, and -2 when it cannot tell now because the fault is ours
// (the Google keys cannot be loaded): the event must not go on as rejected; dropping
// it lets the ingress send it again later. Never fails otherwise.
int sb_verifier_check(const sb_verifier_config_t *conf, sb_google_verifier_t *google,
                      sb_envelope_t *env);

// Constant-time equality of two secrets, NULL-safe: 1 when equal, else 0. Neither the
// position of the first difference nor a length mismatch shows in the timing.
int sb_verifier_secret_equal(const char *expected, const char *given);

// The URL-decoded value of parameter name in a raw query string ("a=1&token=x%2By"),
// or NULL when absent or badly encoded (caller frees).
char *sb_verifier_query_param(const char *query, const char *name);

// The running stage: sockets, heartbeat timer, metrics.
typedef struct sb_verifier sb_verifier_t;

// Binds/connects the sockets and starts the metrics server. conf is borrowed and must
// outlive the verifier. NULL and err on failure.
sb_verifier_t *sb_verifier_new(const sb_verifier_config_t *conf, sb_err_t *err);
void sb_verifier_destroy(sb_verifier_t **self_p);
// One loop turn: waits up to timeout_ms for an event and handles at most one, and sends
// a heartbeat when one is due. Returns 1 when an event (good or malformed) was handled,
// 0 when none came.
int sb_verifier_step(sb_verifier_t *self, int timeout_ms, volatile sig_atomic_t *stop);
// Turns until *stop becomes non-zero (a signal handler sets it); the event in hand is
// finished first.
void sb_verifier_run(sb_verifier_t *self, volatile sig_atomic_t *stop);
// The stage's metrics registry (borrowed), for tests.
sb_metrics_t *sb_verifier_metrics(sb_verifier_t *self);

#endif
