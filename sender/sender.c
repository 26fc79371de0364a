/* sender - sb-sender's loop (see the header; docs/SENDER.md for the rules). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "sender.h"
#include "outbox.h"
#include "send_email.h"
#include "send_sms.h"
#include "sb_log.h"
#include "sb_time.h"
#include "sb_mem.h"
#include "sb_metrics.h"
#include "sb_phone.h"
#include "sb_ringcentral.h"
#include "sb_secretbox.h"
#include "sb_banned.h"

#define SB_OFF(field) offsetof(sb_sender_config_t, field)
#define S_SLEEP_STEP_MS 100 // a wait checks the stop flag this often
#define S_LOG_ID_MAX 32     // "outbox:<id>" in log lines
#define S_GAUGES_MS 10000   // the outbox gauges are counted at most this often

const sb_config_var_t sb_sender_config_vars[] = {
    {"LOG_LEVEL", SB_CONFIG_STRING, SB_OFF(log_level), "info", 0, 0, 0,
     "debug, info, warn or error"},
    {"DATABASE_URL", SB_CONFIG_STRING, SB_OFF(database_url), NULL, 0, 0,
     SB_CONFIG_REQUIRED | SB_CONFIG_SECRET, "PostgreSQL URL (outbox, communications, mailboxes)"},
    {"METRICS_LISTEN", SB_CONFIG_STRING, SB_OFF(metrics_listen), "0.0.0.0:9106", 0, 0, 0,
     "host:port of GET /metrics and GET /health"},
    {"RINGCENTRAL_SERVER_URL", SB_CONFIG_STRING, SB_OFF(rc_server_url),
     "https://platform.ringcentral.com", 0, 0, 0, "RingCentral API root"},
    {"RINGCENTRAL_CLIENT_ID", SB_CONFIG_STRING, SB_OFF(rc_client_id), NULL, 0, 0, 0,
     "RingCentral app client id (SMS replies need the three credentials)"},
    {"RINGCENTRAL_CLIENT_SECRET", SB_CONFIG_STRING, SB_OFF(rc_client_secret), NULL, 0, 0,
     SB_CONFIG_SECRET, "RingCentral app client secret"},
    {"RINGCENTRAL_JWT", SB_CONFIG_STRING, SB_OFF(rc_jwt), NULL, 0, 0, SB_CONFIG_SECRET,
     "RingCentral JWT credential (JWT bearer grant)"},
    {"RINGCENTRAL_SMS_FROM", SB_CONFIG_STRING, SB_OFF(sms_from), NULL, 0, 0, 0,
     "our number for SMS replies whose from_address is empty and not implied by in_reply_to"},
    {"GOOGLE_CLIENT_ID", SB_CONFIG_STRING, SB_OFF(google_client_id), NULL, 0, 0, 0,
     "OAuth client of the mailboxes' refresh tokens"},
    {"GOOGLE_CLIENT_SECRET", SB_CONFIG_STRING, SB_OFF(google_client_secret), NULL, 0, 0,
     SB_CONFIG_SECRET, "its secret"},
    {"GOOGLE_TOKEN_URL", SB_CONFIG_STRING, SB_OFF(google_token_url),
     "https://oauth2.googleapis.com/token", 0, 0, 0, "OAuth token endpoint"},
    {"GMAIL_API_BASE_URL", SB_CONFIG_STRING, SB_OFF(gmail_api_base_url),
     "https://gmail.googleapis.com", 0, 0, 0, "Gmail API root (a fake server in tests)"},
    {"SENDER_EMAIL_FROM", SB_CONFIG_STRING, SB_OFF(email_from), NULL, 0, 0, 0,
     "mailbox for e-mail replies whose from_address is empty and not implied by in_reply_to"},
    {"SWITCHBOARD_SECRET_KEY", SB_CONFIG_STRING, SB_OFF(secret_key), NULL, 0, 0, SB_CONFIG_SECRET,
     "key of sealed refresh tokens in mailboxes (common/sb_secretbox.h)"},
    {"DEFAULT_COUNTRY_CODE", SB_CONFIG_STRING, SB_OFF(default_cc), "1", 0, 0, 0,
     "country code given to national phone numbers (digits)"},
    {"SENDER_POLL_MS", SB_CONFIG_INT, SB_OFF(poll_ms), "5000", 50, 600000, 0,
     "look at the outbox at least this often (a NOTIFY outbox wakes the sender at once)"},
    {"SENDER_MAX_ATTEMPTS", SB_CONFIG_INT, SB_OFF(max_attempts), "6", 1, 100, 0,
     "tries of a reply that fails transiently (429, 5xx, network) before it is 'failed'"},
    {"SENDER_BACKOFF_MS", SB_CONFIG_INT, SB_OFF(backoff_ms), "2000", 1, 3600000, 0,
     "wait before the second try; doubles per try, with jitter"},
    {"SENDER_BACKOFF_MAX_MS", SB_CONFIG_INT, SB_OFF(backoff_max_ms), "300000", 1, 86400000, 0,
     "cap of that wait"},
    {"SENDER_RECONCILE_AFTER_MS", SB_CONFIG_INT, SB_OFF(reconcile_after_ms), "30000", 0, 86400000,
     0,
     "a reply left 'sending' by a sender that is gone is looked up this long after its send "
     "began (at least SENDER_HTTP_TIMEOUT_MS)"},
    {"SENDER_VERIFY_DELAY_MS", SB_CONFIG_INT, SB_OFF(verify_delay_ms), "10000", 0, 3600000, 0,
     "after an answer that leaves the outcome unknown (5xx, timeout), wait at least this long "
     "before looking at the provider, so that a message it did take is there to be found"},
    {"SENDER_LEASE_MS", SB_CONFIG_INT, SB_OFF(lease_ms), "900000", 1000, 86400000, 0,
     "a reply 'sending' for this long is taken over even if its sender seems alive"},
    {"SENDER_HTTP_TIMEOUT_MS", SB_CONFIG_INT, SB_OFF(http_timeout_ms), "15000", 100, 300000, 0,
     "one provider request, connect to last byte"},
};
const size_t sb_sender_config_vars_n =
    sizeof sb_sender_config_vars / sizeof sb_sender_config_vars[0];

int
sb_sender_config_check(const sb_sender_config_t *conf, FILE *problems)
{
    int rc = sb_config_check_log_level(conf->log_level, problems);
    char e164[SB_PHONE_E164_MAX];
    if (sb_config_check_country_code(conf->default_cc, problems) != 0) {
        rc = -1;
    } else if (conf->sms_from && conf->sms_from[0] &&
               sb_phone_e164(conf->sms_from, conf->default_cc, e164, sizeof e164) != 0) {
        fprintf(problems, "config: RINGCENTRAL_SMS_FROM=\"%s\" is not a phone number\n",
                conf->sms_from);
        rc = -1;
    }
    int rc_set =
        (conf->rc_client_id != NULL) + (conf->rc_client_secret != NULL) + (conf->rc_jwt != NULL);
    if (rc_set != 0 && rc_set != 3) {
        fprintf(problems, "config: RINGCENTRAL_CLIENT_ID, RINGCENTRAL_CLIENT_SECRET and "
                          "RINGCENTRAL_JWT go together (SMS replies need all three)\n");
        rc = -1;
    }
    char *mailbox = conf->email_from ? sb_email_normalize(conf->email_from) : NULL;
    if (conf->email_from && conf->email_from[0] && mailbox == NULL) {
        fprintf(problems, "config: SENDER_EMAIL_FROM=\"%s\" is not an e-mail address\n",
                conf->email_from);
        rc = -1;
    }
    free(mailbox);
    if (conf->reconcile_after_ms < conf->http_timeout_ms) {
        // A request the dead sender had in flight could still be running at the provider.
        fprintf(problems,
                "config: SENDER_RECONCILE_AFTER_MS (%" PRId64 ") must be at least "
                "SENDER_HTTP_TIMEOUT_MS (%" PRId64 ")\n",
                conf->reconcile_after_ms, conf->http_timeout_ms);
        rc = -1;
    }
    if (conf->lease_ms < conf->reconcile_after_ms) {
        fprintf(problems, "config: SENDER_LEASE_MS must be at least SENDER_RECONCILE_AFTER_MS\n");
        rc = -1;
    }
    return rc;
}

typedef struct {
    sb_counter_t *sent;      // replies sent (or found sent by a verification)
    sb_counter_t *failed;    // replies that became 'failed'
    sb_counter_t *retried;   // attempts put back in the queue
    sb_counter_t *found;     // verifications that found the message
    sb_counter_t *not_found; // verifications that did not
    sb_histogram_t *seconds; // provider call durations
} s_channel_metrics_t;

struct sb_sender {
    const sb_sender_config_t *conf; // borrowed
    PGconn *conn;                   // NULL while disconnected
    char sender_id[80];             // this connection's id (a new one per connection)
    sb_ringcentral_t *rc;           // NULL when RingCentral is not configured
    sb_gmail_send_t *gmail;         // Gmail API client with its token cache
    sb_secretbox_t *box;            // NULL without SWITCHBOARD_SECRET_KEY
    sb_outbox_defaults_t defaults;  // what resolution falls back to
    sb_metrics_t *metrics;
    sb_metrics_server_t *server;
    s_channel_metrics_t sms, email;
    sb_gauge_t *queued, *sending, *failed_rows; // outbox rows per status
    sb_counter_t *db_errors;                    // lost connections and failed statements
    volatile sig_atomic_t *stop;                // set by the signal handler
    int64_t reconnect_ms;                       // the next wait before reconnecting
    int64_t gauges_ms;                          // when the gauges were last counted
    uint64_t rng;                               // jitter
};

// --- Time and waits ------------------------------------------------------------------------------

static int
s_stopping(const sb_sender_t *self)
{
    return self->stop != NULL && *self->stop;
}

// Sleep ms in steps, returning early (1) when a stop is requested.
static int
s_sleep(sb_sender_t *self, int64_t ms)
{
    while (ms > 0 && !s_stopping(self)) {
        int64_t step = ms < S_SLEEP_STEP_MS ? ms : S_SLEEP_STEP_MS;
        struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return s_stopping(self);
}

// The RingCentral client's waits between its own retries: interrupted by a stop.
static int
s_rc_sleep(int64_t ms, void *arg)
{
    return s_sleep(arg, ms);
}

int64_t
sb_sender_backoff_ms(int attempts, int64_t backoff_ms, int64_t backoff_max_ms,
                     int64_t retry_after_ms, uint64_t rnd)
{
    int64_t wait = backoff_ms;
    for (int i = 1; i < attempts && wait < backoff_max_ms; i++)
        wait *= 2;
    if (wait > backoff_max_ms)
        wait = backoff_max_ms;
    wait = wait / 2 + (int64_t)(rnd % (uint64_t)(wait / 2 + 1));
    return retry_after_ms > wait ? retry_after_ms : wait;
}

static uint64_t
s_rand(sb_sender_t *self)
{
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    return self->rng;
}

// --- Database connection -----------------------------------------------------------------------

static void
s_disconnect(sb_sender_t *self, const char *why)
{
    if (self->conn == NULL)
        return;
    sb_log_warn(NULL, "database connection dropped: %s", why);
    sb_counter_add(self->db_errors, 1);
    PQfinish(self->conn);
    self->conn = NULL;
}

// A new sender id per connection: the rows a previous connection left in 'sending' then
// look like a dead sender's (they are: that session and its lock are gone) and get
// reconciled, never silently kept.
static int
s_new_sender_id(sb_sender_t *self)
{
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -1;
    char host[40] = "sender";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(self->sender_id, sizeof self->sender_id, "%.40s:%ld:%02x%02x%02x%02x%02x%02x", host,
             (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    return 0;
}

static int
s_connect(sb_sender_t *self)
{
    sb_err_t err = {0};
    PGconn *conn = PQconnectdb(self->conf->database_url);
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(conn);
        size_t n = strcspn(msg, "\n");
        sb_log_warn(NULL, "could not connect to the database: %.*s", (int)n, msg);
        PQfinish(conn);
        return -1;
    }
    PGresult *res = PQexec(conn, "LISTEN outbox");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok || s_new_sender_id(self) != 0 || sb_outbox_lock(conn, self->sender_id, &err) != 0) {
        sb_log_warn(NULL, "could not prepare the database session: %s",
                    err.msg[0] ? err.msg : PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    self->conn = conn;
    self->reconnect_ms = 0;
    sb_log_info(NULL, "connected to the database as sender %s", self->sender_id);
    return 0;
}

// Wait up to timeout_ms for a NOTIFY outbox (or a stop); drain what came.
static void
s_wait(sb_sender_t *self, int64_t timeout_ms)
{
    int64_t deadline = sb_wall_ms() + timeout_ms;
    while (!s_stopping(self) && self->conn) {
        int64_t left = deadline - sb_wall_ms();
        if (left <= 0)
            return;
        struct pollfd pfd = {.fd = PQsocket(self->conn), .events = POLLIN};
        int n = poll(&pfd, 1, (int)(left < S_SLEEP_STEP_MS ? left : S_SLEEP_STEP_MS));
        if (n < 0 && errno != EINTR)
            return;
        if (n <= 0)
            continue;
        if (PQconsumeInput(self->conn) == 0) {
            s_disconnect(self, PQerrorMessage(self->conn));
            return;
        }
        int woken = 0;
        PGnotify *note;
        while ((note = PQnotifies(self->conn)) != NULL) {
            woken = 1;
            PQfreemem(note);
        }
        if (woken)
            return;
    }
}

// --- One reply -----------------------------------------------------------------------------------

static s_channel_metrics_t *
s_metrics_of(sb_sender_t *self, const sb_outbox_job_t *job)
{
    return strcmp(job->channel, "email") == 0 ? &self->email : &self->sms;
}

// A sent message is recorded whatever it takes: the database coming back, or (stopping)
// the reconciliation of the next start, which finds it at the provider.
static void
s_record(sb_sender_t *self, const sb_outbox_job_t *job, const sb_outbox_sent_t *sent, char *log_id)
{
    for (;;) {
        if (self->conn == NULL && s_connect(self) != 0) {
            if (s_sleep(self, 1000)) {
                sb_log_error(log_id,
                             "sent as %s but not recorded (stopping without a database): the "
                             "next start finds it at the provider",
                             sent->external_id);
                return;
            }
            continue;
        }
        sb_err_t err = {0};
        int64_t comm_id = 0;
        int taken_over = 0;
        if (sb_outbox_record_sent(self->conn, job, sent, &comm_id, &taken_over, &err) == 0) {
            sb_counter_add(s_metrics_of(self, job)->sent, 1);
            if (taken_over)
                sb_log_warn(log_id,
                            "sent as %s, communication %" PRId64
                            "; the row had been taken over meanwhile",
                            sent->external_id, comm_id);
            else
                sb_log_info(log_id, "sent as %s, communication %" PRId64 " (attempt %d)",
                            sent->external_id, comm_id, job->attempts);
            return;
        }
        sb_log_warn(log_id, "%s", err.msg);
        s_disconnect(self, err.msg);
    }
}

static void
s_fail(sb_sender_t *self, const sb_outbox_job_t *job, const char *why, char *log_id)
{
    sb_err_t err = {0};
    if (self->conn && sb_outbox_fail(self->conn, job, why, &err) == 0) {
        sb_counter_add(s_metrics_of(self, job)->failed, 1);
        sb_log_warn(log_id, "failed: %s", why);
        return;
    }
    // The row stays 'sending' under this (now dead) sender id: it will be reconciled.
    sb_log_warn(log_id, "could not mark failed (%s): %s", err.msg, why);
    s_disconnect(self, err.msg);
}

// Back to the queue, or 'failed' once the attempts are spent.
static void
s_retry(sb_sender_t *self, const sb_outbox_job_t *job, const char *why, const char *verify,
        char *log_id)
{
    if (job->attempts >= self->conf->max_attempts) {
        char *text = sb_xasprintf("gave up after %d attempts: %s%s", job->attempts, why,
                                  verify ? " (the last attempt may have been sent: check before "
                                           "sending it again)"
                                         : "");
        s_fail(self, job, text, log_id);
        free(text);
        return;
    }
    int64_t delay = sb_sender_backoff_ms(job->attempts, self->conf->backoff_ms,
                                         self->conf->backoff_max_ms, 0, s_rand(self));
    if (verify && delay < self->conf->verify_delay_ms)
        delay = self->conf->verify_delay_ms; // the provider's search may lag its send
    sb_err_t err = {0};
    if (self->conn && sb_outbox_requeue(self->conn, job, delay, why, verify, &err) == 0) {
        sb_counter_add(s_metrics_of(self, job)->retried, 1);
        sb_log_info(log_id, "attempt %d: %s; again in %" PRId64 " ms%s", job->attempts, why, delay,
                    verify ? " after a look at the provider" : "");
        return;
    }
    sb_log_warn(log_id, "could not put back in the queue (%s): %s", err.msg, why);
    s_disconnect(self, err.msg);
}

static const char s_crash_not_found[] =
    "the outcome of an attempt interrupted by a stop of sb-sender is unknown and the message "
    "is not in RingCentral's message store; not sent again automatically: set status back to "
    "'queued' to send it";

// --- SMS ---

static void
s_handle_sms(sb_sender_t *self, const sb_outbox_job_t *job, char *log_id)
{
    const char *cc = self->conf->default_cc;
    if (self->rc == NULL) {
        s_fail(self, job,
               "RingCentral API credentials are not configured (RINGCENTRAL_CLIENT_ID, "
               "RINGCENTRAL_CLIENT_SECRET, RINGCENTRAL_JWT)",
               log_id);
        return;
    }
    sb_sms_record_t found[SB_SEND_SMS_MATCHES_MAX], rec;
    memset(&rec, 0, sizeof rec);
    char *why = NULL;
    sb_send_status_t st = SB_SEND_NOT_FOUND;
    if (job->verify) {
        size_t n = 0;
        st = sb_send_sms_find(self->rc, job, cc, found, SB_SEND_SMS_MATCHES_MAX, &n, &why);
        if (st == SB_SEND_OK) {
            char *ids[SB_SEND_SMS_MATCHES_MAX];
            for (size_t i = 0; i < n; i++)
                ids[i] = found[i].id;
            sb_err_t err = {0};
            int pick = sb_outbox_first_unclaimed(self->conn, job->id, ids, n, &err);
            if (pick == -2) {
                s_disconnect(self, err.msg); // reconciled again later
                st = SB_SEND_RETRY;
            } else if (pick < 0) {
                st = SB_SEND_NOT_FOUND; // each candidate is another reply's message
            } else {
                rec = found[pick];
                memset(&found[pick], 0, sizeof found[pick]);
            }
            for (size_t i = 0; i < n; i++)
                sb_sms_record_release(&found[i]);
            if (pick == -2)
                return;
        }
        sb_counter_add(st == SB_SEND_OK ? self->sms.found : self->sms.not_found,
                       st == SB_SEND_OK || st == SB_SEND_NOT_FOUND);
        if (st == SB_SEND_RETRY) {
            s_retry(self, job, why ? why : "message store not readable", NULL, log_id);
            free(why);
            return;
        }
        if (st == SB_SEND_NOT_FOUND && strcmp(job->verify, "after_crash") == 0) {
            s_fail(self, job, s_crash_not_found, log_id);
            return;
        }
        if (st == SB_SEND_OK)
            sb_log_info(log_id, "found in the message store as %s: not sent again", rec.id);
    }
    if (st != SB_SEND_OK) {
        int64_t t0 = sb_wall_ms();
        st = sb_send_sms(self->rc, job, cc, &rec, &why);
        sb_histogram_observe(self->sms.seconds, (double)(sb_wall_ms() - t0) / 1000.0);
    }
    if (st == SB_SEND_OK) {
        sb_outbox_sent_t sent = {.external_id = rec.id,
                                 .thread_id = rec.conversation_id,
                                 .status = rec.status,
                                 .occurred_at = rec.creation_time,
                                 .from_address = rec.from,
                                 .to_address = rec.to};
        s_record(self, job, &sent, log_id);
    } else if (st == SB_SEND_PERMANENT) {
        s_fail(self, job, why, log_id);
    } else {
        s_retry(self, job, why, st == SB_SEND_UNCERTAIN ? "after_error" : NULL, log_id);
    }
    sb_sms_record_release(&rec);
    free(why);
}

// --- E-mail ---

static void
s_handle_email(sb_sender_t *self, sb_outbox_job_t *job, char *log_id)
{
    char *token = NULL, *why = NULL;
    sb_err_t err = {0};
    int got = sb_outbox_mailbox_token(self->conn, self->box, job->from_address, &token, &err);
    if (got < 0) {
        s_disconnect(self, err.msg); // the row is reconciled later
        return;
    }
    if (got > 0) {
        s_fail(self, job, err.msg, log_id);
        return;
    }
    sb_gmail_sent_t sent;
    memset(&sent, 0, sizeof sent);
    sb_send_status_t st = SB_SEND_NOT_FOUND;
    if (job->verify) {
        // Gmail's send is synchronous and searchable: not found means not sent, so the
        // message goes out (again) below.
        st = sb_send_email_find(self->gmail, job, token, &sent, &why);
        sb_counter_add(st == SB_SEND_OK ? self->email.found : self->email.not_found,
                       st == SB_SEND_OK || st == SB_SEND_NOT_FOUND);
        if (st == SB_SEND_OK)
            sb_log_info(log_id, "found in the mailbox as %s: not sent again", sent.id);
    }
    if (st == SB_SEND_NOT_FOUND) {
        st = sb_send_email_parent(self->gmail, job, token, &why);
        if (st == SB_SEND_OK) {
            int64_t t0 = sb_wall_ms();
            st = sb_send_email(self->gmail, job, token, sb_wall_ms(), &sent, &why);
            sb_histogram_observe(self->email.seconds, (double)(sb_wall_ms() - t0) / 1000.0);
        }
    }
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    if (st == SB_SEND_OK) {
        sb_outbox_sent_t rec = {
            .external_id = sent.id, .thread_id = sent.thread_id, .references = sent.references};
        s_record(self, job, &rec, log_id);
    } else if (st == SB_SEND_PERMANENT) {
        s_fail(self, job, why, log_id);
    } else {
        s_retry(self, job, why ? why : "not sent", st == SB_SEND_UNCERTAIN ? "after_error" : NULL,
                log_id);
    }
    sb_gmail_sent_release(&sent);
    free(why);
}

static void
s_handle(sb_sender_t *self, sb_outbox_job_t *job)
{
    char log_id[S_LOG_ID_MAX];
    snprintf(log_id, sizeof log_id, "outbox:%" PRId64, job->id);
    sb_log_info(log_id, "%s to %s (attempt %d%s%s)", job->channel, job->to_address, job->attempts,
                job->verify ? ", verify " : "", job->verify ? job->verify : "");
    if (strcmp(job->channel, "email") == 0)
        s_handle_email(self, job, log_id);
    else
        s_handle_sms(self, job, log_id);
}

// --- The loop ------------------------------------------------------------------------------------

// Reconcile, then claim, until nothing is due. -1 after a database error.
static int
s_work(sb_sender_t *self)
{
    sb_err_t err = {0};
    for (;;) {
        if (s_stopping(self) || self->conn == NULL)
            return self->conn ? 0 : -1;
        sb_outbox_job_t job;
        int64_t failed_id = 0;
        int rc =
            sb_outbox_reclaim(self->conn, self->sender_id, &self->defaults,
                              self->conf->reconcile_after_ms, self->conf->lease_ms, &job, &err);
        if (rc == 0)
            rc = sb_outbox_claim(self->conn, self->sender_id, &self->defaults, &job, &failed_id,
                                 &err);
        if (rc < 0) {
            s_disconnect(self, err.msg);
            return -1;
        }
        if (rc == 0 && failed_id == 0)
            return 0;
        if (rc == 0) { // claimed, but it cannot be sent as written
            char log_id[S_LOG_ID_MAX];
            snprintf(log_id, sizeof log_id, "outbox:%" PRId64, failed_id);
            sb_log_warn(log_id, "failed: %s", err.msg);
            continue;
        }
        s_handle(self, &job);
        sb_outbox_job_release(&job);
    }
}

static void
s_update_gauges(sb_sender_t *self)
{
    int64_t now = sb_wall_ms();
    if (now - self->gauges_ms < S_GAUGES_MS)
        return;
    self->gauges_ms = now;
    int64_t queued, sending, failed;
    sb_err_t err = {0};
    if (self->conn && sb_outbox_counts(self->conn, &queued, &sending, &failed, &err) == 0) {
        sb_gauge_set(self->queued, (double)queued);
        sb_gauge_set(self->sending, (double)sending);
        sb_gauge_set(self->failed_rows, (double)failed);
    }
}

void
sb_sender_run(sb_sender_t *self, volatile sig_atomic_t *stop)
{
    self->stop = stop;
    while (!s_stopping(self)) {
        if (self->conn == NULL && s_connect(self) != 0) {
            self->reconnect_ms = self->reconnect_ms ? self->reconnect_ms * 2 : 100;
            if (self->reconnect_ms > SB_SENDER_RECONNECT_MAX_MS)
                self->reconnect_ms = SB_SENDER_RECONNECT_MAX_MS;
            s_sleep(self, self->reconnect_ms);
            continue;
        }
        if (s_work(self) != 0)
            continue;
        s_update_gauges(self);
        sb_err_t err = {0};
        int64_t due = self->conn
                          ? sb_outbox_next_due_ms(self->conn, self->conf->reconcile_after_ms, &err)
                          : 0;
        if (due == -2) {
            s_disconnect(self, err.msg);
            continue;
        }
        int64_t wait = self->conf->poll_ms;
        if (due >= 0 && due < wait)
            wait = due;
        s_wait(self, wait);
    }
}

// --- Construction --------------------------------------------------------------------------------

static void
s_channel_metrics(sb_metrics_t *m, const char *channel, s_channel_metrics_t *out)
{
    char labels[64];
    snprintf(labels, sizeof labels, "channel=\"%s\"", channel);
    out->sent = sb_metrics_counter(m, "sb_sender_sent_total", "replies sent", labels);
    out->failed =
        sb_metrics_counter(m, "sb_sender_failed_total", "replies that became 'failed'", labels);
    out->retried = sb_metrics_counter(m, "sb_sender_retries_total",
                                      "attempts put back in the queue (429, 5xx, network)", labels);
    char found[96], not_found[96];
    snprintf(found, sizeof found, "%s,result=\"found\"", labels);
    snprintf(not_found, sizeof not_found, "%s,result=\"not_found\"", labels);
    const char *help = "looks at the provider for a send whose outcome was unknown";
    out->found = sb_metrics_counter(m, "sb_sender_verifications_total", help, found);
    out->not_found = sb_metrics_counter(m, "sb_sender_verifications_total", help, not_found);
    out->seconds = sb_metrics_histogram(m, "sb_sender_send_seconds", "provider send calls", labels,
                                        sb_metrics_latency_bounds, sb_metrics_latency_bounds_n);
}

sb_sender_t *
sb_sender_new(const sb_sender_config_t *conf, sb_err_t *err)
{
    sb_sender_t *self = sb_xcalloc(1, sizeof *self);
    self->conf = conf;
    self->defaults = (sb_outbox_defaults_t){conf->default_cc, conf->sms_from, conf->email_from};
    if (RAND_bytes((unsigned char *)&self->rng, sizeof self->rng) != 1 || self->rng == 0)
        self->rng = (uint64_t)sb_wall_ms() | 1;
    if (conf->secret_key && conf->secret_key[0]) {
        self->box = sb_secretbox_new(conf->secret_key, err);
        if (self->box == NULL)
            goto fail;
    }
    if (conf->rc_client_id && conf->rc_client_secret && conf->rc_jwt) {
        sb_ringcentral_opts_t opts = {.server_url = conf->rc_server_url,
                                      .client_id = conf->rc_client_id,
                                      .client_secret = conf->rc_client_secret,
                                      .jwt = conf->rc_jwt,
                                      .timeout_ms = (long)conf->http_timeout_ms,
                                      .sleep = s_rc_sleep,
                                      .sleep_arg = self};
        self->rc = sb_ringcentral_new(&opts, err);
        if (self->rc == NULL)
            goto fail;
    }
    self->gmail =
        sb_gmail_send_new(conf->gmail_api_base_url, conf->google_token_url, conf->google_client_id,
                          conf->google_client_secret, (long)conf->http_timeout_ms);
    self->metrics = sb_metrics_new();
    s_channel_metrics(self->metrics, "sms", &self->sms);
    s_channel_metrics(self->metrics, "email", &self->email);
    const char *rows = "outbox rows by status";
    self->queued =
        sb_metrics_gauge(self->metrics, "sb_sender_outbox_rows", rows, "status=\"queued\"");
    self->sending =
        sb_metrics_gauge(self->metrics, "sb_sender_outbox_rows", rows, "status=\"sending\"");
    self->failed_rows =
        sb_metrics_gauge(self->metrics, "sb_sender_outbox_rows", rows, "status=\"failed\"");
    self->db_errors = sb_metrics_counter(self->metrics, "sb_sender_db_errors_total",
                                         "database connections lost or statements failed", "");
    self->server = sb_metrics_serve(self->metrics, conf->metrics_listen, "sender", err);
    if (self->server == NULL)
        goto fail;
    return self;
fail:
    sb_sender_destroy(&self);
    return NULL;
}

void
sb_sender_destroy(sb_sender_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sb_sender_t *self = *self_p;
    sb_metrics_server_destroy(&self->server);
    if (self->conn)
        PQfinish(self->conn); // our advisory lock goes with the session
    sb_gmail_send_destroy(&self->gmail);
    sb_ringcentral_destroy(&self->rc);
    sb_secretbox_destroy(&self->box);
    sb_metrics_destroy(&self->metrics);
    free(self);
    *self_p = NULL;
}
