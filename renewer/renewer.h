/* renewer - sb-renewer keeps the providers' delivery alive (SPEC "renewer", issue 6):
 * Gmail watches (users.watch, 7 days) and RingCentral webhook subscriptions (expire, or
 * get Blacklisted/Suspended after delivery errors).
 *
 * Every RENEW_INTERVAL the renewer
 *   1. renews the watch of every active mailbox whose watch expires within RENEW_BEFORE or
 *      that has none (gmail_watch.h), and
 *   2. renews every subscription expiring within RENEW_BEFORE, checks the status of the
 *      others every RENEW_CHECK_INTERVAL, and re-creates one that is gone (404),
 *      Blacklisted or Suspended (rc_subscriptions.h);
 *   3. reads every expiry back for the gauges and the health (/health answers 503 with
 *      the reasons while anything expires within SB_RENEWER_HEALTH_MARGIN_MS, a mailbox
 *      needs re-authorisation, or the database is unreachable).
 * Several replicas may run: each item is claimed with a PostgreSQL advisory lock and read
 * again under it, so nothing is renewed twice. A failure sets the item's renew_after
 * (exponential backoff with jitter, RENEW_BACKOFF_MIN doubling up to RENEW_BACKOFF_MAX);
 * invalid_grant marks the mailbox 'reauth_required' and it is left alone until a new
 * refresh token is stored (sbctl mailbox add).
 *
 * Without GMAIL_TOPIC the Gmail half is off; without the RingCentral credentials the
 * RingCentral half is off; with neither, the renewer idles (and says so), still serving
 * /health and heartbeats. Calling sequence (main.c):
 *   sb_renewer_config_check(&conf, stderr);   after sb_config_load
 *   r = sb_renewer_new(&conf, &stop, &err); sb_renewer_run(r); sb_renewer_destroy(&r);
 * One thread runs the loop (blocking libpq and libcurl); the metrics server and the
 * heartbeat sender have threads of their own (renewer_status.h). */
#ifndef SB_RENEWER_H
#define SB_RENEWER_H
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include "sb_config.h"
#include "sb_err.h"

#define SB_RENEWER_HEALTH_MARGIN_MS (12 * 3600 * 1000LL) // degraded this close to an expiry
#define SB_RENEWER_HTTP_TIMEOUT_MS 15000L                // one provider request
#define SB_RENEWER_DB_TIMEOUT_MS 10000                   // statement_timeout of our queries
#define SB_RENEWER_HEARTBEAT_MS 1000                     // as the other stages
#define SB_RENEWER_POLL_MS 200                           // the loop sees SIGTERM this often
#define SB_RENEWER_RETRY_MS 5000 // after a round the database failed (not migrated yet ...)
#define SB_RENEWER_LOCK_MAILBOX 1935831552      // advisory lock class of mailboxes: "sbr\0"
#define SB_RENEWER_LOCK_SUBSCRIPTION 1935831808 // ... of subscriptions: "sbs\0"

typedef struct {
    char *log_level;         // LOG_LEVEL
    char *database_url;      // DATABASE_URL
    char *metrics_listen;    // METRICS_LISTEN: GET /metrics, GET /health
    char *ack_endpoint;      // ACK_ENDPOINT: heartbeats to every ingress ("" none)
    char *instance_id;       // INSTANCE_ID
    char *renew_before;      // RENEW_BEFORE, a duration ("24h")
    char *renew_interval;    // RENEW_INTERVAL
    char *backoff_min;       // RENEW_BACKOFF_MIN
    char *backoff_max;       // RENEW_BACKOFF_MAX
    char *check_interval;    // RENEW_CHECK_INTERVAL
    char *secret_key;        // SWITCHBOARD_SECRET_KEY
    char *google_client_id;  // GOOGLE_CLIENT_ID
    char *google_secret;     // GOOGLE_CLIENT_SECRET
    char *google_token_url;  // GOOGLE_TOKEN_URL
    char *gmail_base_url;    // GMAIL_API_BASE_URL
    char *gmail_topic;       // GMAIL_TOPIC
    char *rc_server_url;     // RINGCENTRAL_SERVER_URL
    char *rc_client_id;      // RINGCENTRAL_CLIENT_ID
    char *rc_client_secret;  // RINGCENTRAL_CLIENT_SECRET
    char *rc_jwt;            // RINGCENTRAL_JWT
    char *rc_token;          // RINGCENTRAL_VERIFICATION_TOKEN
    int64_t renew_before_ms; // the durations above, parsed by sb_renewer_config_check
    int64_t interval_ms;
    int64_t backoff_min_ms;
    int64_t backoff_max_ms;
    int64_t check_interval_ms;
} sb_renewer_config_t;

extern const sb_config_var_t sb_renewer_config_vars[];
extern const size_t sb_renewer_config_vars_n;

// Parse the durations and check the URLs and LOG_LEVEL: 0, or -1 after one line per
// problem on `problems`.
int sb_renewer_config_check(sb_renewer_config_t *conf, FILE *problems);

// "90" (seconds), "90s", "15m", "24h", "7d", "250ms" -> milliseconds in [min_ms, max_ms].
// 0, or -1 with err naming the variable.
int sb_renewer_duration_parse(const char *name, const char *text, int64_t min_ms, int64_t max_ms,
                              int64_t *out_ms, sb_err_t *err);

// The wait before the next try after `failures` failures in a row (1 for the first):
// min_ms doubling per failure up to max_ms, then drawn from [half, full] of it by
// unit, a uniform value in [0, 1) (jitter: replicas that failed together spread out).
int64_t sb_renewer_backoff_ms(int failures, int64_t min_ms, int64_t max_ms, double unit);

typedef struct sb_renewer sb_renewer_t;

// conf is borrowed and must outlive the renewer; so must stop, the flag SIGTERM sets (a
// provider call in progress is cut short when it becomes non-zero). NULL and err when the
// metrics port, the heartbeat endpoint, the secret key or a provider client cannot be set
// up. The database may be down: the loop connects (and reconnects) itself.
sb_renewer_t *sb_renewer_new(const sb_renewer_config_t *conf, volatile sig_atomic_t *stop,
                             sb_err_t *err);
void sb_renewer_destroy(sb_renewer_t **self_p);

// Loop until *stop: a round every RENEW_INTERVAL (sb_renewer_tick).
void sb_renewer_run(sb_renewer_t *self);

// One round: steps 1-3 above. Logs what it did; 0, or -1 with err when the database could
// not be used at all (the health says so too).
int sb_renewer_tick(sb_renewer_t *self, sb_err_t *err);

#endif
