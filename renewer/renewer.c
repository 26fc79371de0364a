/* renewer - the loop, its configuration, and the gauges and health of every expiry (see
 * renewer.h). One thread: the provider calls and the queries block, one item at a time. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>
#include <jansson.h>
#include "gmail_watch.h"
#include "rc_subscriptions.h"
#include "renewer.h"
#include "renewer_db.h"
#include "renewer_status.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_stage.h"
#include "sb_metrics.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_MAX_REASONS 20 // health reasons listed; the rest are counted

#define SB_OFF(field) offsetof(sb_renewer_config_t, field)
const sb_config_var_t sb_renewer_config_vars[] = {
    {"LOG_LEVEL", SB_CONFIG_STRING, SB_OFF(log_level), "info", 0, 0, 0,
     "debug, info, warn or error"},
    {"DATABASE_URL", SB_CONFIG_STRING, SB_OFF(database_url), NULL, 0, 0,
     SB_CONFIG_REQUIRED | SB_CONFIG_SECRET,
     "PostgreSQL URL (mailboxes, ringcentral_subscriptions)"},
    {"METRICS_LISTEN", SB_CONFIG_STRING, SB_OFF(metrics_listen), "0.0.0.0:9105", 0, 0, 0,
     "host:port of GET /metrics and GET /health (503 when something is about to expire)"},
    {"ACK_ENDPOINT", SB_CONFIG_STRING, SB_OFF(ack_endpoint), ">tcp://127.0.0.1:5559", 0, 0, 0,
     "every ingress's ack endpoint, for heartbeats (CZMQ endpoints; empty: none)"},
    {"INSTANCE_ID", SB_CONFIG_STRING, SB_OFF(instance_id), NULL, 0, 0, 0,
     "name of this replica in heartbeats (default <hostname>:<pid>)"},
    {"RENEW_BEFORE", SB_CONFIG_STRING, SB_OFF(renew_before), "24h", 0, 0, 0,
     "renew what expires within this (90s, 15m, 24h, 2d)"},
    {"RENEW_INTERVAL", SB_CONFIG_STRING, SB_OFF(renew_interval), "60s", 0, 0, 0,
     "time between two rounds over the mailboxes and subscriptions"},
    {"RENEW_BACKOFF_MIN", SB_CONFIG_STRING, SB_OFF(backoff_min), "30s", 0, 0, 0,
     "wait after a first failure; doubles per failure, with jitter"},
    {"RENEW_BACKOFF_MAX", SB_CONFIG_STRING, SB_OFF(backoff_max), "1h", 0, 0, 0,
     "longest wait between two tries of one item"},
    {"RENEW_CHECK_INTERVAL", SB_CONFIG_STRING, SB_OFF(check_interval), "1h", 0, 0, 0,
     "how often each RingCentral subscription's status is read (Blacklisted is re-created)"},
    {"SWITCHBOARD_SECRET_KEY", SB_CONFIG_STRING, SB_OFF(secret_key), NULL, 0, 0, SB_CONFIG_SECRET,
     "key of the secrets at rest (refresh tokens, verification tokens): 64 hex digits"},
    {"GOOGLE_CLIENT_ID", SB_CONFIG_STRING, SB_OFF(google_client_id), NULL, 0, 0, 0,
     "OAuth client of the mailboxes' refresh tokens"},
    {"GOOGLE_CLIENT_SECRET", SB_CONFIG_STRING, SB_OFF(google_secret), NULL, 0, 0, SB_CONFIG_SECRET,
     "its secret"},
    {"GOOGLE_TOKEN_URL", SB_CONFIG_STRING, SB_OFF(google_token_url),
     "https://oauth2.googleapis.com/token", 0, 0, 0, "OAuth token endpoint"},
    {"GMAIL_API_BASE_URL", SB_CONFIG_STRING, SB_OFF(gmail_base_url), "https://gmail.googleapis.com",
     0, 0, 0, "Gmail API root (a fake server in tests)"},
    {"GMAIL_TOPIC", SB_CONFIG_STRING, SB_OFF(gmail_topic), NULL, 0, 0, 0,
     "Pub/Sub topic of users.watch (projects/P/topics/T); unset: Gmail watches are off"},
    {"RINGCENTRAL_SERVER_URL", SB_CONFIG_STRING, SB_OFF(rc_server_url),
     "https://platform.ringcentral.com", 0, 0, 0, "RingCentral API root"},
    {"RINGCENTRAL_CLIENT_ID", SB_CONFIG_STRING, SB_OFF(rc_client_id), NULL, 0, 0, 0,
     "RingCentral app client id; unset: subscriptions are not renewed"},
    {"RINGCENTRAL_CLIENT_SECRET", SB_CONFIG_STRING, SB_OFF(rc_client_secret), NULL, 0, 0,
     SB_CONFIG_SECRET, "RingCentral app client secret"},
    {"RINGCENTRAL_JWT", SB_CONFIG_STRING, SB_OFF(rc_jwt), NULL, 0, 0, SB_CONFIG_SECRET,
     "RingCentral JWT credential (JWT bearer grant)"},
    {"RINGCENTRAL_VERIFICATION_TOKEN", SB_CONFIG_STRING, SB_OFF(rc_token), NULL, 0, 0,
     SB_CONFIG_SECRET, "token of a re-created subscription when none is stored sealed"},
};
const size_t sb_renewer_config_vars_n =
    sizeof sb_renewer_config_vars / sizeof sb_renewer_config_vars[0];

struct sb_renewer {
    const sb_renewer_config_t *conf; // borrowed
    volatile sig_atomic_t *stop;     // borrowed: SIGTERM
    char *instance;                  // name in heartbeats
    sb_metrics_t *metrics;           // the registry
    sb_renewer_status_t *status;     // /metrics, /health, heartbeats
    sb_secretbox_t *box;             // SWITCHBOARD_SECRET_KEY, or NULL
    sb_gmail_watch_t *gw;            // NULL: Gmail half off
    sb_ringcentral_t *rc;            // NULL: RingCentral half off
    PGconn *db;                      // NULL while disconnected
    char db_error[SB_ERR_MSG_MAX];   // last connection problem, "" when none
    zhashx_t *series;                // gauge labels -> round last seen (uintptr_t)
    uintptr_t round;                 // rounds so far
    sb_counter_t *renewals[2];       // sb_renewer_renewals_total{kind}
    sb_counter_t *failures[2];       // sb_renewer_renewal_failures_total{kind}
    sb_counter_t *recreated;         // sb_renewer_subscriptions_recreated_total
    sb_counter_t *reauth;            // sb_renewer_reauth_total
    sb_gauge_t *next_expiry[2];      // sb_renewer_next_expiry_seconds{kind}
    sb_gauge_t *items[2];            // sb_renewer_items{kind}
    sb_gauge_t *reauth_required;     // mailboxes waiting for a new consent
    sb_gauge_t *db_up;               // sb_renewer_db_up
    sb_gauge_t *healthy;             // sb_renewer_healthy
};

enum { S_GMAIL = 0, S_RC = 1 };
static const char *const s_kinds[] = {"gmail_watch", "ringcentral_subscription"};

// --- Configuration ---------------------------------------------------------------------------

int
sb_renewer_duration_parse(const char *name, const char *text, int64_t min_ms, int64_t max_ms,
                          int64_t *out_ms, sb_err_t *err)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1000}};
    const char *s = text ? text : "";
    char *end = NULL;
    errno = 0;
    long long v = isdigit((unsigned char)*s) ? strtoll(s, &end, 10) : -1;
    for (size_t i = 0; v >= 0 && errno == 0 && i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (v > INT64_MAX / units[i].ms)
            break;
        int64_t ms = (int64_t)v * units[i].ms;
        if (ms < min_ms || ms > max_ms)
            break;
        *out_ms = ms;
        return 0;
    }
    sb_err_set(err, 0,
               "config: %s=\"%s\" is not a duration in [%llds, %llds] (e.g. 90s, 15m, 24h, 2d)",
               name, s, (long long)(min_ms / 1000), (long long)(max_ms / 1000));
    return -1;
}

int
sb_renewer_config_check(sb_renewer_config_t *conf, FILE *problems)
{
    const struct {
        const char *name;
        const char *text;
        int64_t min_ms, max_ms;
        int64_t *out;
    } durations[] = {
        {"RENEW_BEFORE", conf->renew_before, 60000, 30 * 86400000LL, &conf->renew_before_ms},
        {"RENEW_INTERVAL", conf->renew_interval, 1000, 86400000LL, &conf->interval_ms},
        {"RENEW_BACKOFF_MIN", conf->backoff_min, 1000, 86400000LL, &conf->backoff_min_ms},
        {"RENEW_BACKOFF_MAX", conf->backoff_max, 1000, 7 * 86400000LL, &conf->backoff_max_ms},
        {"RENEW_CHECK_INTERVAL", conf->check_interval, 1000, 7 * 86400000LL,
         &conf->check_interval_ms},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        sb_err_t err = {0};
        if (sb_renewer_duration_parse(durations[i].name, durations[i].text, durations[i].min_ms,
                                      durations[i].max_ms, durations[i].out, &err) != 0) {
            fprintf(problems, "%s\n", err.msg);
            rc = -1;
        }
    }
    if (rc == 0 && conf->backoff_max_ms < conf->backoff_min_ms) {
        fprintf(problems,
                "config: RENEW_BACKOFF_MAX=\"%s\" is shorter than RENEW_BACKOFF_MIN=\"%s\"\n",
                conf->backoff_max, conf->backoff_min);
        rc = -1;
    }
    if (sb_config_check_log_level(conf->log_level, problems) != 0)
        rc = -1;
    const char *urls[][2] = {{"GOOGLE_TOKEN_URL", conf->google_token_url},
                             {"GMAIL_API_BASE_URL", conf->gmail_base_url},
                             {"RINGCENTRAL_SERVER_URL", conf->rc_server_url}};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
        if (sb_config_check_url(urls[i][0], urls[i][1], problems) != 0)
            rc = -1;
    int rc_parts = sb_config_is_set(conf->rc_client_id) + sb_config_is_set(conf->rc_client_secret) +
                   sb_config_is_set(conf->rc_jwt);
    if (rc_parts != 0 && rc_parts != 3) {
        fprintf(problems, "config: RINGCENTRAL_CLIENT_ID, RINGCENTRAL_CLIENT_SECRET and "
                          "RINGCENTRAL_JWT go together: set all three or none\n");
        rc = -1;
    }
    fflush(problems);
    return rc;
}

int64_t
sb_renewer_backoff_ms(int failures, int64_t min_ms, int64_t max_ms, double unit)
{
    int64_t wait = min_ms > 0 ? min_ms : 1;
    for (int i = 1; i < failures && wait < max_ms; i++)
        wait *= 2;
    if (wait > max_ms)
        wait = max_ms;
    if (unit < 0.0 || unit >= 1.0)
        unit = 0.0;
    return wait / 2 + (int64_t)((double)(wait - wait / 2) * unit);
}

// --- Setup -----------------------------------------------------------------------------------

static void
s_metrics_register(sb_renewer_t *self)
{
    sb_metrics_t *m = self->metrics;
    char labels[64];
    for (int k = 0; k < 2; k++) {
        snprintf(labels, sizeof labels, "kind=\"%s\"", s_kinds[k]);
        self->renewals[k] = sb_metrics_counter(m, "sb_renewer_renewals_total",
                                               "watches and subscriptions renewed", labels);
        self->failures[k] = sb_metrics_counter(m, "sb_renewer_renewal_failures_total",
                                               "renewals that failed (tried again later)", labels);
        self->next_expiry[k] = sb_metrics_gauge(
            m, "sb_renewer_next_expiry_seconds",
            "seconds until the soonest expiry (negative: expired; NaN: none)", labels);
        self->items[k] = sb_metrics_gauge(m, "sb_renewer_items", "items kept alive", labels);
    }
    self->recreated =
        sb_metrics_counter(m, "sb_renewer_subscriptions_recreated_total",
                           "subscriptions re-created (404, Blacklisted, Suspended)", "");
    self->reauth =
        sb_metrics_counter(m, "sb_renewer_reauth_total",
                           "mailboxes whose refresh token was refused (invalid_grant)", "");
    self->reauth_required =
        sb_metrics_gauge(m, "sb_renewer_reauth_required", "mailboxes that need a new consent", "");
    self->db_up = sb_metrics_gauge(m, "sb_renewer_db_up", "1 when the database answered", "");
    self->healthy = sb_metrics_gauge(m, "sb_renewer_healthy", "1 when /health answers 200", "");
    for (int k = 0; k < 2; k++)
        sb_gauge_set(self->next_expiry[k], NAN);
}

// A provider's retry wait: cut short by SIGTERM.
static int
s_sleep(int64_t ms, void *arg)
{
    sb_renewer_t *self = arg;
    for (int64_t left = ms; left > 0 && !*self->stop; left -= SB_RENEWER_POLL_MS) {
        int64_t step = left < SB_RENEWER_POLL_MS ? left : SB_RENEWER_POLL_MS;
        struct timespec ts = {step / 1000, (long)(step % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    return *self->stop != 0;
}

static int
s_providers_new(sb_renewer_t *self, sb_err_t *err)
{
    const sb_renewer_config_t *conf = self->conf;
    if (sb_config_is_set(conf->gmail_topic)) {
        sb_gmail_watch_opts_t gopts = {
            .api_base_url = conf->gmail_base_url,
            .token_url = conf->google_token_url,
            .client_id = conf->google_client_id,
            .client_secret = conf->google_secret,
            .topic = conf->gmail_topic,
            .timeout_ms = SB_RENEWER_HTTP_TIMEOUT_MS,
            .abort = self->stop,
        };
        self->gw = sb_gmail_watch_new(&gopts, err);
        if (self->gw == NULL)
            return -1;
    }
    if (sb_config_is_set(conf->rc_client_id)) {
        sb_ringcentral_opts_t ropts = {
            .server_url = conf->rc_server_url,
            .client_id = conf->rc_client_id,
            .client_secret = conf->rc_client_secret,
            .jwt = conf->rc_jwt,
            .timeout_ms = SB_RENEWER_HTTP_TIMEOUT_MS,
            .sleep = s_sleep,
            .sleep_arg = self,
        };
        self->rc = sb_ringcentral_new(&ropts, err);
        if (self->rc == NULL)
            return -1;
    }
    return 0;
}

static void
s_say_what_is_on(const sb_renewer_t *self)
{
    const sb_renewer_config_t *conf = self->conf;
    if (self->gw == NULL)
        sb_log_warn(NULL, "Gmail watches are off: GMAIL_TOPIC is not set");
    else if (!sb_config_is_set(conf->google_client_id))
        sb_log_warn(NULL, "GOOGLE_CLIENT_ID is not set: Google will refuse the refresh tokens");
    if (self->rc == NULL)
        sb_log_warn(NULL, "RingCentral subscriptions are off: RINGCENTRAL_CLIENT_ID, "
                          "RINGCENTRAL_CLIENT_SECRET and RINGCENTRAL_JWT are not set");
    if (self->gw == NULL && self->rc == NULL)
        sb_log_warn(NULL, "no provider credentials: the renewer idles (it still reports the "
                          "expiries it finds in the database on /health)");
    if (self->box == NULL)
        sb_log_warn(NULL, "SWITCHBOARD_SECRET_KEY is not set: refresh tokens are read as stored "
                          "and no verification token is kept for re-created subscriptions");
}

sb_renewer_t *
sb_renewer_new(const sb_renewer_config_t *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    assert(conf && stop);
    sb_renewer_t *self = sb_xcalloc(1, sizeof *self);
    self->conf = conf;
    self->stop = stop;
    self->instance = sb_stage_instance(conf->instance_id);
    self->metrics = sb_metrics_new();
    self->series = zhashx_new();
    assert(self->series);
    s_metrics_register(self);
    if (sb_config_is_set(conf->secret_key)) {
        self->box = sb_secretbox_new(conf->secret_key, err);
        if (self->box == NULL)
            goto fail;
    }
    if (s_providers_new(self, err) != 0)
        goto fail;
    self->status = sb_renewer_status_new(self->metrics, conf->metrics_listen, conf->ack_endpoint,
                                         self->instance, err);
    if (self->status == NULL)
        goto fail;
    s_say_what_is_on(self);
    return self;
fail:
    sb_renewer_destroy(&self);
    return NULL;
}

void
sb_renewer_destroy(sb_renewer_t **self_p)
{
    assert(self_p);
    sb_renewer_t *self = *self_p;
    if (self == NULL)
        return;
    sb_renewer_status_destroy(&self->status); // first: its threads read the registry
    if (self->db != NULL)
        PQfinish(self->db);
    sb_gmail_watch_destroy(&self->gw);
    sb_ringcentral_destroy(&self->rc);
    sb_secretbox_destroy(&self->box);
    zhashx_destroy(&self->series);
    sb_metrics_destroy(&self->metrics);
    free(self->instance);
    free(self);
    *self_p = NULL;
}

// --- One round -------------------------------------------------------------------------------

static int
s_db_ready(sb_renewer_t *self, sb_err_t *err)
{
    if (self->db != NULL && PQstatus(self->db) == CONNECTION_OK)
        return 0;
    if (self->db != NULL) {
        PQfinish(self->db);
        self->db = NULL;
    }
    self->db = sb_renewer_db_connect(self->conf->database_url, "sb-renewer",
                                     SB_RENEWER_DB_TIMEOUT_MS, err);
    if (self->db == NULL) {
        if (strcmp(self->db_error, err->msg) != 0) // once per new problem, not every round
            sb_log_error(NULL, "%s", err->msg);
        snprintf(self->db_error, sizeof self->db_error, "%s", err->msg);
        return -1;
    }
    if (self->db_error[0])
        sb_log_info(NULL, "connected to the database again");
    self->db_error[0] = '\0';
    return 0;
}

static void
s_log_mailbox(sb_renewer_t *self, const sb_mailbox_result_t *r)
{
    switch (r->outcome) {
    case SB_MAILBOX_RENEWED: {
        sb_counter_add(self->renewals[S_GMAIL], 1);
        time_t t = (time_t)(r->expires_ms / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        sb_log_info(NULL, "gmail watch of %s renewed until %s%s", r->email, when,
                    r->history_set ? " (history checkpoint set from the watch)" : "");
        break;
    }
    case SB_MAILBOX_REAUTH:
        sb_counter_add(self->failures[S_GMAIL], 1);
        sb_counter_add(self->reauth, 1);
        sb_log_error(NULL,
                     "mailbox %s needs a new consent and is left alone until then (%s): connect "
                     "it again with sbctl mailbox add %s --refresh-token-file FILE",
                     r->email, r->why, r->email);
        break;
    case SB_MAILBOX_FAILED:
        sb_counter_add(self->failures[S_GMAIL], 1);
        sb_log_warn(NULL, "gmail watch of %s not renewed (failure %d, next try in %.1f s): %s",
                    r->email, r->failures, (double)r->retry_in_ms / 1000.0, r->why);
        break;
    case SB_MAILBOX_BUSY:
        sb_log_debug(NULL, "mailbox %s is being renewed by another renewer", r->email);
        break;
    case SB_MAILBOX_NOT_DUE:
        break;
    }
}

static void
s_log_subscription(sb_renewer_t *self, const sb_rc_sub_result_t *r)
{
    switch (r->outcome) {
    case SB_RC_SUB_RENEWED:
        sb_counter_add(self->renewals[S_RC], 1);
        sb_log_info(NULL, "subscription %s renewed until %s", r->id, r->expiration_time);
        break;
    case SB_RC_SUB_CHECKED:
        sb_log_debug(NULL, "subscription %s is %s", r->id, r->status);
        break;
    case SB_RC_SUB_RECREATED:
        sb_counter_add(self->renewals[S_RC], 1);
        sb_counter_add(self->recreated, 1);
        sb_log_warn(NULL, "subscription %s re-created as %s (%s), until %s", r->id, r->new_id,
                    r->why, r->expiration_time);
        break;
    case SB_RC_SUB_FAILED:
        sb_counter_add(self->failures[S_RC], 1);
        sb_log_warn(NULL, "subscription %s not renewed (failure %d, next try in %.1f s): %s", r->id,
                    r->failures, (double)r->retry_in_ms / 1000.0, r->why);
        break;
    default:
        break;
    }
    if (r->note[0])
        sb_log_warn(NULL, "subscription %s: %s", r->id, r->note);
}

// 0, or -1 when the database failed (the round stops: the connection is suspect).
static int
s_round_gmail(sb_renewer_t *self, sb_err_t *err)
{
    sb_gmail_watch_env_t env = {self->db,
                                self->gw,
                                self->box,
                                self->conf->renew_before_ms,
                                self->conf->backoff_min_ms,
                                self->conf->backoff_max_ms};
    char **emails = NULL;
    size_t n = 0;
    if (sb_gmail_watch_due(self->db, env.renew_before_ms, &emails, &n, err) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !*self->stop && rc == 0; i++) {
        sb_mailbox_result_t res;
        rc = sb_gmail_watch_renew(&env, emails[i], &res, err);
        if (rc == 0)
            s_log_mailbox(self, &res);
    }
    sb_renewer_strv_free(&emails);
    return rc;
}

static int
s_round_ringcentral(sb_renewer_t *self, sb_err_t *err)
{
    const sb_renewer_config_t *c = self->conf;
    sb_rc_sub_env_t env = {self->db,          self->rc,           self->box,
                           c->rc_token,       c->renew_before_ms, c->check_interval_ms,
                           c->backoff_min_ms, c->backoff_max_ms};
    char **ids = NULL;
    size_t n = 0;
    if (sb_rc_sub_due(&env, &ids, &n, err) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !*self->stop && rc == 0; i++) {
        sb_rc_sub_result_t res;
        rc = sb_rc_sub_renew(&env, ids[i], 0, &res, err);
        if (rc == 0)
            s_log_subscription(self, &res);
    }
    sb_renewer_strv_free(&ids);
    return rc;
}

// Prometheus label value: backslash, quote and newline escaped.
static void
s_label_value(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = in; *p && n + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            out[n++] = '\\';
            out[n++] = *p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

static void
s_expiry_gauge(sb_renewer_t *self, int kind, const char *id, double expiry_s)
{
    char value[300], labels[400];
    s_label_value(id, value, sizeof value);
    snprintf(labels, sizeof labels, "kind=\"%s\",id=\"%s\"", s_kinds[kind], value);
    sb_gauge_t *g = sb_metrics_gauge(self->metrics, "sb_renewer_expiry_timestamp_seconds",
                                     "when each watch or subscription expires (unix time; NaN: "
                                     "none, or no longer kept)",
                                     labels);
    sb_gauge_set(g, expiry_s);
    zhashx_update(self->series, labels, (void *)self->round);
}

// Gauges of items that were not seen this round (removed, retired): NaN.
static void
s_expiry_gauges_prune(sb_renewer_t *self)
{
    zlistx_t *keys = zhashx_keys(self->series);
    for (const char *k = zlistx_first(keys); k != NULL; k = zlistx_next(keys)) {
        if ((uintptr_t)zhashx_lookup(self->series, k) == self->round)
            continue;
        sb_gauge_set(sb_metrics_gauge(self->metrics, "sb_renewer_expiry_timestamp_seconds", "", k),
                     NAN);
        zhashx_delete(self->series, k);
    }
    zlistx_destroy(&keys);
}

typedef struct {
    json_t *reasons;  // array of text
    size_t n_reasons; // all, also those not listed
    double now_s;     // the database's clock
    double next_s[2]; // soonest expiry per kind (NAN: none)
    int count[2];     // items per kind
    int reauth;       // mailboxes needing consent
} s_scan_t;

static void s_reason(s_scan_t *scan, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
s_reason(s_scan_t *scan, const char *fmt, ...)
{
    scan->n_reasons++;
    if (json_array_size(scan->reasons) >= S_MAX_REASONS)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_array_append_new(scan->reasons, json_string(text));
}

// One item's expiry for the gauges and the health. expiry_s NAN: no watch/subscription yet.
static void
s_scan_item(sb_renewer_t *self, s_scan_t *scan, int kind, const char *id, double expiry_s,
            int failures, const char *last_error, int enabled)
{
    const char *what = kind == S_GMAIL ? "gmail watch of" : "subscription";
    scan->count[kind]++;
    s_expiry_gauge(self, kind, id, expiry_s);
    if (isnan(expiry_s)) {
        if (failures > 0 || !enabled)
            s_reason(scan, "%s %s: none yet (%s)", what, id,
                     enabled ? last_error : "this provider is not configured in the renewer");
        return;
    }
    if (isnan(scan->next_s[kind]) || expiry_s < scan->next_s[kind])
        scan->next_s[kind] = expiry_s;
    double left_h = (expiry_s - scan->now_s) / 3600.0;
    if (expiry_s - scan->now_s > SB_RENEWER_HEALTH_MARGIN_MS / 1000.0)
        return;
    if (left_h < 0)
        s_reason(scan, "%s %s expired %.1f h ago%s%s", what, id, -left_h, *last_error ? ": " : "",
                 last_error);
    else
        s_reason(scan, "%s %s expires in %.1f h%s%s", what, id, left_h, *last_error ? ": " : "",
                 last_error);
}

static double
s_epoch(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NAN : strtod(PQgetvalue(res, row, col), NULL);
}

static int
s_scan_db(sb_renewer_t *self, s_scan_t *scan, sb_err_t *err)
{
    PGresult *res = sb_renewer_db_query(
        self->db, "could not read the mailboxes",
        "SELECT email, status, extract(epoch FROM watch_expires_at), renew_failures,"
        "       COALESCE(last_error, ''), extract(epoch FROM now())"
        "  FROM mailboxes ORDER BY email",
        0, NULL, err);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        scan->now_s = strtod(PQgetvalue(res, i, 5), NULL);
        const char *email = PQgetvalue(res, i, 0);
        if (strcmp(PQgetvalue(res, i, 1), "active") != 0) {
            scan->reauth++;
            s_expiry_gauge(self, S_GMAIL, email, s_epoch(res, i, 2));
            s_reason(scan, "mailbox %s is %s: connect it again (sbctl mailbox add)", email,
                     PQgetvalue(res, i, 1));
            continue;
        }
        s_scan_item(self, scan, S_GMAIL, email, s_epoch(res, i, 2),
                    (int)strtol(PQgetvalue(res, i, 3), NULL, 10), PQgetvalue(res, i, 4),
                    self->gw != NULL);
    }
    PQclear(res);
    res = sb_renewer_db_query(
        self->db, "could not read the subscriptions",
        "SELECT id, extract(epoch FROM expires_at), renew_failures, COALESCE(last_error, ''),"
        "       extract(epoch FROM now())"
        "  FROM ringcentral_subscriptions WHERE COALESCE(status, '') <> 'Retired' ORDER BY id",
        0, NULL, err);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        scan->now_s = strtod(PQgetvalue(res, i, 4), NULL);
        s_scan_item(self, scan, S_RC, PQgetvalue(res, i, 0), s_epoch(res, i, 1),
                    (int)strtol(PQgetvalue(res, i, 2), NULL, 10), PQgetvalue(res, i, 3),
                    self->rc != NULL);
    }
    PQclear(res);
    return 0;
}

// Read every expiry back: gauges, then the health document. 1 when the database answered.
static int
s_publish(sb_renewer_t *self, int db_ok, const char *db_error)
{
    s_scan_t scan = {json_array(), 0, (double)time(NULL), {NAN, NAN}, {0, 0}, 0};
    self->round++;
    sb_err_t err = {0};
    if (db_ok && s_scan_db(self, &scan, &err) != 0) {
        db_ok = 0;
        db_error = err.msg;
        if (strcmp(self->db_error, err.msg) != 0) // once per new problem, not every round
            sb_log_warn(NULL, "%s", err.msg);
        snprintf(self->db_error, sizeof self->db_error, "%s", err.msg);
    }
    if (!db_ok && strstr(db_error, "does not exist") != NULL)
        s_reason(&scan, "database: no renewer tables yet (sb-writer applies the migrations): %s",
                 db_error);
    else if (!db_ok)
        s_reason(&scan, "database: %s", db_error);
    else
        s_expiry_gauges_prune(self);
    if (db_ok)
        self->db_error[0] = '\0';
    if (scan.n_reasons > S_MAX_REASONS)
        json_array_append_new(scan.reasons,
                              json_sprintf("... and %zu more", scan.n_reasons - S_MAX_REASONS));
    for (int k = 0; k < 2 && db_ok; k++) {
        sb_gauge_set(self->next_expiry[k], scan.next_s[k] - scan.now_s); // NAN stays NAN
        sb_gauge_set(self->items[k], scan.count[k]);
    }
    sb_gauge_set(self->reauth_required, scan.reauth);
    sb_gauge_set(self->db_up, db_ok);
    int healthy = scan.n_reasons == 0;
    sb_gauge_set(self->healthy, healthy);
    json_t *doc = json_pack(
        "{s:s,s:s,s:s,s:o,s:{s:b},s:{s:b,s:i},s:{s:b,s:i}}", "status", healthy ? "ok" : "degraded",
        "stage", "renewer", "instance", self->instance, "reasons", scan.reasons, "database",
        "reachable", db_ok, "gmail", "enabled", self->gw != NULL, "mailboxes", scan.count[S_GMAIL],
        "ringcentral", "enabled", self->rc != NULL, "subscriptions", scan.count[S_RC]);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    sb_renewer_status_set(self->status, healthy, text ? text : "{\"status\":\"degraded\"}");
    free(text);
    json_decref(doc);
    return db_ok;
}

int
sb_renewer_tick(sb_renewer_t *self, sb_err_t *err)
{
    if (s_db_ready(self, err) != 0) {
        s_publish(self, 0, err->msg);
        return -1;
    }
    int rc = 0;
    if (self->gw != NULL && s_round_gmail(self, err) != 0)
        rc = -1;
    if (rc == 0 && self->rc != NULL && !*self->stop && s_round_ringcentral(self, err) != 0)
        rc = -1;
    if (rc != 0 && strstr(err->msg, "does not exist") != NULL) {
        // At first start the writer may still be applying the migrations.
        sb_log_warn(NULL, "%s (sb-writer applies the migrations; trying again in %d s)", err->msg,
                    SB_RENEWER_RETRY_MS / 1000);
        s_publish(self, 0, err->msg);
        return -1;
    }
    if (rc != 0) {
        sb_log_error(NULL, "%s", err->msg);
        if (PQstatus(self->db) != CONNECTION_OK) { // reconnect next round
            PQfinish(self->db);
            self->db = NULL;
            s_publish(self, 0, err->msg);
            return -1;
        }
    }
    if (!s_publish(self, 1, NULL) && rc == 0) {
        sb_err_set(err, 0, "could not read the expiries back");
        rc = -1;
    }
    return rc;
}

void
sb_renewer_run(sb_renewer_t *self)
{
    int64_t next = 0;
    while (!*self->stop) {
        int64_t now = sb_mono_ms();
        if (now >= next) {
            sb_err_t err = {0};
            int64_t wait = self->conf->interval_ms;
            if (sb_renewer_tick(self, &err) != 0 && wait > SB_RENEWER_RETRY_MS)
                wait = SB_RENEWER_RETRY_MS; // soon again: nothing was looked at
            next = sb_mono_ms() + wait;
            continue;
        }
        int64_t wait = next - now < SB_RENEWER_POLL_MS ? next - now : SB_RENEWER_POLL_MS;
        struct timespec ts = {wait / 1000, (long)(wait % 1000) * 1000000};
        nanosleep(&ts, NULL); // EINTR on SIGTERM is fine: the loop looks at *stop
    }
}
