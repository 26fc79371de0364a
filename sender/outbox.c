/* outbox - sb-sender's statements on the outbox table (see the header). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "outbox.h"
#include "rfc5322.h"
#include "sender.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define S_ERROR_MAX 1000 // bytes of last_error kept
#define SB_STR_(x) #x
#define SB_STR(x) SB_STR_(x) // a number macro as a string literal, for the SQL

// The columns a claim reads, in this order (s_job_from_row).
#define S_JOB_COLUMNS                                                                              \
    "o.id, o.channel, o.customer_id, o.to_address, o.from_address, o.subject, o.body,"             \
    " o.in_reply_to, o.attempts, o.verify, o.thread_id, o.message_id"

static const char s_claim_sql[] =
    "SELECT " S_JOB_COLUMNS " FROM outbox o"
    " WHERE o.status = 'queued' AND o.next_attempt_at <= now()"
    " ORDER BY o.next_attempt_at, o.id LIMIT 1 FOR UPDATE SKIP LOCKED";

// The sender of row o holds no advisory lock on its id any more: its session is gone.
#define S_OWNER_GONE(class_param)                                                                  \
    "NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'"                           \
    " AND l.granted AND l.objsubid = 2"                                                            \
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"           \
    " AND l.classid = " class_param "::int::oid AND l.objid = hashtext(o.sender_id)::oid)"

// A 'sending' row whose sender's advisory lock is free (the sender is gone: PostgreSQL
// drops a session's locks when its connection ends) once $1 ms have passed, so that a
// request the dead sender had in flight has run its course; or any 'sending' row after
// the lease $2 ms (a stuck sender, or two ids hashing alike).
static const char s_reclaim_sql[] =
    "SELECT " S_JOB_COLUMNS " FROM outbox o"
    " WHERE o.status = 'sending' AND (o.sending_at IS NULL"
    "   OR o.sending_at < now() - $2::bigint * interval '1 millisecond'"
    "   OR (o.sending_at < now() - $1::bigint * interval '1 millisecond' AND " S_OWNER_GONE(
        "$3") "))"
              " ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED";

static const char s_next_due_sql[] =
    "SELECT GREATEST(0, ceil(extract(epoch FROM min(t) - now()) * 1000))::bigint FROM ("
    " SELECT min(next_attempt_at) AS t FROM outbox WHERE status = 'queued'"
    " UNION ALL"
    " SELECT min(o.sending_at + $1::bigint * interval '1 millisecond') FROM outbox o"
    " WHERE o.status = 'sending'"
    "   AND o.sending_at + $1::bigint * interval '1 millisecond' > now() AND " S_OWNER_GONE(
        "$2") ") x";

// The claim's UPDATE: resolved fields, the new attempt, 'sending'. Returns first_sending_at.
static const char s_sending_sql[] =
    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, sender_id = $2,"
    " attempt_id = $3, sending_at = now(), first_sending_at = COALESCE(first_sending_at, now()),"
    " to_address = $4, from_address = $5, subject = $6, thread_id = $7, message_id = $8,"
    " verify = COALESCE($9, verify)"
    " WHERE id = $1"
    " RETURNING attempts, (extract(epoch FROM first_sending_at) * 1000)::bigint";

static const char s_parent_sql[] =
    "SELECT channel, direction, provider, external_id, thread_id, from_address, to_address,"
    " subject, message_id, email_references, customer_id FROM communications WHERE id = $1";

// --- Small helpers ---------------------------------------------------------------------------

static char *
s_dup_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : sb_xstrdup(PQgetvalue(res, row, col));
}

static void
s_describe(PGconn *conn, const PGresult *res, const char *what, sb_err_t *err)
{
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(conn);
    char clean[200];
    size_t n = 0;
    for (const char *p = msg; *p && n + 1 < sizeof clean; p++)
        clean[n++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
    while (n > 0 && clean[n - 1] == ' ')
        n--;
    clean[n] = '\0';
    sb_err_set(err, 0, "could not %s: %s", what, clean);
}

// One statement with text parameters. The result (tuples or command ok), or NULL and err.
static PGresult *
s_exec(PGconn *conn, const char *sql, int n, const char *const *params, const char *what,
       sb_err_t *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    s_describe(conn, res, what, err);
    PQclear(res);
    return NULL;
}

static int
s_command(PGconn *conn, const char *sql, sb_err_t *err)
{
    PGresult *res = s_exec(conn, sql, 0, NULL, sql, err);
    PQclear(res);
    return res ? 0 : -1;
}

static void
s_rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK")); // after an error; a broken connection is seen later
}

static char *
s_i64(int64_t v)
{
    return sb_xasprintf("%lld", (long long)v);
}

// last_error as stored: bounded, one line.
static char *
s_error_text(const char *text)
{
    char *out = sb_xstrndup(text ? text : "", S_ERROR_MAX);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return out;
}

static char *
s_attempt_id(void)
{
    unsigned char rnd[12];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return NULL;
    char hex[2 * sizeof rnd + 1];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    return sb_xstrdup(hex);
}

void
sb_outbox_job_release(sb_outbox_job_t *job)
{
    if (job == NULL)
        return;
    free(job->to_address);
    free(job->from_address);
    free(job->subject);
    free(job->body);
    free(job->thread_id);
    free(job->message_id);
    free(job->parent_message_id);
    free(job->parent_references);
    free(job->parent_external_id);
    free(job->verify);
    free(job->attempt_id);
    memset(job, 0, sizeof *job);
}

static void
s_job_from_row(const PGresult *res, sb_outbox_job_t *job)
{
    memset(job, 0, sizeof *job);
    job->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(job->channel, sizeof job->channel, "%s", PQgetvalue(res, 0, 1));
    job->customer_id = PQgetisnull(res, 0, 2) ? 0 : strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    job->to_address = s_dup_or_null(res, 0, 3);
    job->from_address = s_dup_or_null(res, 0, 4);
    job->subject = s_dup_or_null(res, 0, 5);
    job->body = sb_xstrdup(PQgetvalue(res, 0, 6));
    job->in_reply_to = PQgetisnull(res, 0, 7) ? 0 : strtoll(PQgetvalue(res, 0, 7), NULL, 10);
    job->attempts = (int)strtol(PQgetvalue(res, 0, 8), NULL, 10);
    job->verify = s_dup_or_null(res, 0, 9);
    job->thread_id = s_dup_or_null(res, 0, 10);
    job->message_id = s_dup_or_null(res, 0, 11);
}

// --- Resolution --------------------------------------------------------------------------------

// The replied-to communication, as far as resolution needs it.
typedef struct {
    int found;
    int usable; // same family as the reply: an SMS or call for an SMS, an e-mail for an e-mail
    int inbound;
    int gmail;
    char *external_id, *thread_id, *from, *to, *subject, *message_id, *references;
    int64_t customer_id;
} s_parent_t;

static void
s_parent_release(s_parent_t *p)
{
    free(p->external_id);
    free(p->thread_id);
    free(p->from);
    free(p->to);
    free(p->subject);
    free(p->message_id);
    free(p->references);
    memset(p, 0, sizeof *p);
}

static int
s_parent_load(PGconn *conn, const sb_outbox_job_t *job, s_parent_t *p, sb_err_t *err)
{
    memset(p, 0, sizeof *p);
    if (job->in_reply_to == 0)
        return 0;
    char *id = s_i64(job->in_reply_to);
    const char *params[] = {id};
    PGresult *res = s_exec(conn, s_parent_sql, 1, params, "read the replied-to communication", err);
    free(id);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        const char *channel = PQgetvalue(res, 0, 0);
        p->found = 1;
        p->usable = strcmp(job->channel, "email") == 0 ? strcmp(channel, "email") == 0
                                                       : strcmp(channel, "email") != 0;
        p->inbound = strcmp(PQgetvalue(res, 0, 1), "inbound") == 0;
        p->gmail = strcmp(PQgetvalue(res, 0, 2), "gmail") == 0;
        p->external_id = s_dup_or_null(res, 0, 3);
        p->thread_id = s_dup_or_null(res, 0, 4);
        p->from = s_dup_or_null(res, 0, 5);
        p->to = s_dup_or_null(res, 0, 6);
        p->subject = s_dup_or_null(res, 0, 7);
        p->message_id = s_dup_or_null(res, 0, 8);
        p->references = s_dup_or_null(res, 0, 9);
        p->customer_id = PQgetisnull(res, 0, 10) ? 0 : strtoll(PQgetvalue(res, 0, 10), NULL, 10);
    }
    PQclear(res);
    return 0;
}

// The first address of a "a, b" list, or NULL.
static char *
s_first_of(const char *list)
{
    if (list == NULL)
        return NULL;
    size_t n = strcspn(list, ",");
    while (n > 0 && list[n - 1] == ' ')
        n--;
    while (*list == ' ' && n > 0) {
        list++;
        n--;
    }
    return n ? sb_xstrndup(list, n) : NULL;
}

// The customer's phone_e164 (sms) or email_norm (email), or NULL.
static int
s_customer_address(PGconn *conn, int64_t customer_id, int email, char **out, sb_err_t *err)
{
    *out = NULL;
    if (customer_id == 0)
        return 0;
    char *id = s_i64(customer_id);
    const char *params[] = {id};
    PGresult *res =
        s_exec(conn,
               email ? "SELECT email_norm FROM customers WHERE id = $1 ORDER BY 1 LIMIT 1"
                     : "SELECT phone_e164 FROM customers WHERE id = $1 ORDER BY 1 LIMIT 1",
               1, params, "read the customer", err);
    free(id);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1)
        *out = s_dup_or_null(res, 0, 0);
    PQclear(res);
    return 0;
}

// A connected mailbox among the addresses of list, else default_from, else the only
// connected mailbox. *out NULL when none.
static int
s_mailbox_for(PGconn *conn, const char *list, const char *default_from, char **out, sb_err_t *err)
{
    *out = NULL;
    const char *params[] = {list ? list : "", default_from ? default_from : ""};
    PGresult *res = s_exec(
        conn,
        "SELECT email FROM ("
        " (SELECT email, 1 AS pref, id FROM mailboxes"
        "   WHERE lower(email) = ANY (regexp_split_to_array(lower($1::text), '\\s*,\\s*')))"
        " UNION ALL (SELECT $2::text, 2, 0 WHERE $2::text <> '')"
        " UNION ALL (SELECT email, 3, id FROM mailboxes WHERE (SELECT count(*) FROM mailboxes) = 1)"
        ") m ORDER BY pref, id LIMIT 1",
        2, params, "find the sending mailbox", err);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1)
        *out = s_dup_or_null(res, 0, 0);
    PQclear(res);
    return 0;
}

// Fill job->to_address; 1 with why when there is no usable recipient.
static int
s_resolve_to(PGconn *conn, sb_outbox_job_t *job, const s_parent_t *p, const char *cc, char *why,
             size_t why_size, sb_err_t *err)
{
    int email = strcmp(job->channel, "email") == 0;
    char *to = job->to_address ? sb_xstrdup(job->to_address) : NULL;
    if (to == NULL && p->usable)
        to = p->inbound ? (p->from ? sb_xstrdup(p->from) : NULL) : s_first_of(p->to);
    if (to == NULL) {
        int64_t customer = job->customer_id ? job->customer_id : p->customer_id;
        if (s_customer_address(conn, customer, email, &to, err) != 0)
            return -1;
    }
    if (to == NULL) {
        snprintf(why, why_size, "no recipient: set to_address, or a customer_id whose %s is set",
                 email ? "email" : "phone");
        return 1;
    }
    char *norm = NULL;
    if (email) {
        norm = sb_email_normalize(to);
    } else {
        char e164[SB_PHONE_E164_MAX];
        if (sb_phone_e164(to, cc, e164, sizeof e164) == 0)
            norm = sb_xstrdup(e164);
    }
    if (norm == NULL)
        snprintf(why, why_size, "invalid %s \"%.100s\"", email ? "e-mail address" : "phone number",
                 to);
    free(to);
    if (norm == NULL)
        return 1;
    free(job->to_address);
    job->to_address = norm;
    return 0;
}

// Fill job->from_address; 1 with why when there is none.
static int
s_resolve_from(PGconn *conn, sb_outbox_job_t *job, const s_parent_t *p,
               const sb_outbox_defaults_t *d, char *why, size_t why_size, sb_err_t *err)
{
    if (strcmp(job->channel, "email") == 0) {
        if (job->from_address == NULL) {
            const char *ours = p->usable ? (p->inbound ? p->to : p->from) : NULL;
            if (s_mailbox_for(conn, ours, d->email_from, &job->from_address, err) != 0)
                return -1;
        }
        char *norm = job->from_address ? sb_email_normalize(job->from_address) : NULL;
        if (norm == NULL) {
            snprintf(why, why_size, "no sending mailbox: set from_address or SENDER_EMAIL_FROM");
            return 1;
        }
        free(job->from_address);
        job->from_address = norm;
        return 0;
    }
    char e164[SB_PHONE_E164_MAX];
    if (job->from_address == NULL && p->usable) {
        char *ours = p->inbound ? s_first_of(p->to) : (p->from ? sb_xstrdup(p->from) : NULL);
        if (ours && sb_phone_e164(ours, d->default_cc, e164, sizeof e164) == 0)
            job->from_address = sb_xstrdup(e164);
        free(ours);
    }
    if (job->from_address == NULL && d->sms_from && d->sms_from[0])
        job->from_address = sb_xstrdup(d->sms_from);
    if (job->from_address == NULL ||
        sb_phone_e164(job->from_address, d->default_cc, e164, sizeof e164) != 0) {
        snprintf(why, why_size, "no valid sender number: set from_address or RINGCENTRAL_SMS_FROM");
        return 1;
    }
    free(job->from_address);
    job->from_address = sb_xstrdup(e164);
    return 0;
}

// The e-mail parts: subject, thread, Message-ID, the parent's threading headers.
static int
s_resolve_email(sb_outbox_job_t *job, s_parent_t *p, sb_err_t *err)
{
    if (p->usable) {
        if (job->subject == NULL && p->subject)
            job->subject = sb_rfc5322_reply_subject(p->subject);
        if (job->thread_id == NULL && p->gmail && p->thread_id)
            job->thread_id = sb_xstrdup(p->thread_id);
        job->parent_message_id = p->message_id;
        job->parent_references = p->references;
        job->parent_external_id = p->gmail ? p->external_id : NULL;
        p->message_id = p->references = NULL; // moved
        if (p->gmail)
            p->external_id = NULL;
    }
    if (job->message_id == NULL &&
        sb_rfc5322_message_id(job->id, job->from_address, &job->message_id, err) != 0)
        return -1;
    return 0;
}

// 0 resolved, 1 cannot be (why), -1 database error.
static int
s_resolve(PGconn *conn, sb_outbox_job_t *job, const sb_outbox_defaults_t *d, char *why,
          size_t why_size, sb_err_t *err)
{
    s_parent_t p;
    if (s_parent_load(conn, job, &p, err) != 0)
        return -1;
    int rc = 0;
    if (job->in_reply_to && !p.found) {
        snprintf(why, why_size, "in_reply_to %lld is not a stored communication",
                 (long long)job->in_reply_to);
        rc = 1;
    }
    if (rc == 0)
        rc = s_resolve_to(conn, job, &p, d->default_cc, why, why_size, err);
    if (rc == 0)
        rc = s_resolve_from(conn, job, &p, d, why, why_size, err);
    if (rc == 0 && strcmp(job->channel, "email") == 0)
        rc = s_resolve_email(job, &p, err);
    s_parent_release(&p);
    return rc;
}

// --- Claims ------------------------------------------------------------------------------------

// Mark the row (locked by this transaction) 'sending' with its resolved fields.
static int
s_mark_sending(PGconn *conn, const char *sender_id, sb_outbox_job_t *job, const char *verify,
               sb_err_t *err)
{
    job->attempt_id = s_attempt_id();
    if (job->attempt_id == NULL) {
        sb_err_set(err, 0, "could not get random bytes for an attempt id");
        return -1;
    }
    char *id = s_i64(job->id);
    const char *params[] = {
        id,           sender_id,      job->attempt_id, job->to_address, job->from_address,
        job->subject, job->thread_id, job->message_id, verify};
    PGresult *res = s_exec(conn, s_sending_sql, 9, params, "mark the outbox row sending", err);
    free(id);
    if (res == NULL)
        return -1;
    job->attempts = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    job->first_sending_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    if (verify) {
        free(job->verify);
        job->verify = sb_xstrdup(verify);
    }
    PQclear(res);
    return 0;
}

static int
s_fail_locked(PGconn *conn, int64_t id, const char *why, sb_err_t *err)
{
    char *sid = s_i64(id);
    char *text = s_error_text(why);
    const char *params[] = {sid, text};
    PGresult *res = s_exec(conn,
                           "UPDATE outbox SET status = 'failed', last_error = $2,"
                           " attempts = attempts + 1 WHERE id = $1",
                           2, params, "mark the outbox row failed", err);
    free(sid);
    free(text);
    PQclear(res);
    return res ? 0 : -1;
}

// The body of claim and reclaim: select (sql), resolve, mark; one transaction.
static int
s_take(PGconn *conn, const char *sql, int n, const char *const *params, const char *sender_id,
       const sb_outbox_defaults_t *d, const char *verify, sb_outbox_job_t *job, int64_t *failed_id,
       sb_err_t *err)
{
    memset(job, 0, sizeof *job);
    if (s_command(conn, "BEGIN", err) != 0)
        return -1;
    PGresult *res = s_exec(conn, sql, n, params, "claim an outbox row", err);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return s_command(conn, "COMMIT", err);
    }
    s_job_from_row(res, job);
    PQclear(res);
    char why[300] = "";
    int rc = s_resolve(conn, job, d, why, sizeof why, err);
    if (rc < 0)
        goto fail;
    if (rc == 1) {
        if (s_fail_locked(conn, job->id, why, err) != 0 || s_command(conn, "COMMIT", err) != 0)
            goto fail;
        if (failed_id)
            *failed_id = job->id;
        sb_err_set(err, 0, "%s", why);
        sb_outbox_job_release(job);
        return 0;
    }
    if (s_mark_sending(conn, sender_id, job, verify, err) != 0 ||
        s_command(conn, "COMMIT", err) != 0)
        goto fail;
    return 1;
fail:
    s_rollback(conn);
    sb_outbox_job_release(job);
    return -1;
}

int
sb_outbox_lock(PGconn *conn, const char *sender_id, sb_err_t *err)
{
    const char *params[] = {SB_STR(SB_SENDER_LOCK_CLASS), sender_id};
    PGresult *res = s_exec(conn, "SELECT pg_advisory_lock($1::int, hashtext($2))", 2, params,
                           "take the sender's advisory lock", err);
    PQclear(res);
    return res ? 0 : -1;
}

int
sb_outbox_claim(PGconn *conn, const char *sender_id, const sb_outbox_defaults_t *defaults,
                sb_outbox_job_t *job, int64_t *failed_id, sb_err_t *err)
{
    if (failed_id)
        *failed_id = 0;
    return s_take(conn, s_claim_sql, 0, NULL, sender_id, defaults, NULL, job, failed_id, err);
}

int
sb_outbox_reclaim(PGconn *conn, const char *sender_id, const sb_outbox_defaults_t *defaults,
                  int64_t reconcile_after_ms, int64_t lease_ms, sb_outbox_job_t *job, sb_err_t *err)
{
    char *after = s_i64(reconcile_after_ms), *lease = s_i64(lease_ms);
    const char *params[] = {after, lease, SB_STR(SB_SENDER_LOCK_CLASS)};
    int64_t failed = 0;
    int rc = s_take(conn, s_reclaim_sql, 3, params, sender_id, defaults, "after_crash", job,
                    &failed, err);
    free(after);
    free(lease);
    return rc;
}

// --- After the provider call ----------------------------------------------------------------

// The id of the communications row (provider, channel, external_id), inserted or found.
static int
s_insert_comm(PGconn *conn, const sb_outbox_job_t *job, const sb_outbox_sent_t *s, int64_t *comm_id,
              sb_err_t *err)
{
    int email = strcmp(job->channel, "email") == 0;
    const char *provider = email ? "gmail" : "ringcentral";
    char *customer = job->customer_id ? s_i64(job->customer_id) : NULL;
    const char *params[] = {customer,
                            email ? NULL : job->to_address,
                            email ? job->to_address : NULL,
                            job->channel,
                            provider,
                            s->external_id,
                            s->thread_id,
                            s->from_address ? s->from_address : job->from_address,
                            s->to_address ? s->to_address : job->to_address,
                            email ? job->subject : NULL,
                            job->body,
                            s->status,
                            s->occurred_at,
                            email ? job->message_id : NULL,
                            email ? s->references : NULL};
    PGresult *res = s_exec(
        conn,
        "INSERT INTO communications (customer_id, channel, direction, provider, external_id,"
        " thread_id, from_address, to_address, subject, body, status, occurred_at, message_id,"
        " email_references)"
        " SELECT COALESCE($1::bigint, LEAST("
        "   (SELECT min(id) FROM customers WHERE phone_e164 = $2),"
        "   (SELECT min(id) FROM customers WHERE email_norm = $3))),"
        " $4, 'outbound', $5, $6, $7, $8, $9, $10, $11, $12, COALESCE($13::timestamptz, now()),"
        " $14, $15"
        " ON CONFLICT (provider, channel, external_id) DO NOTHING RETURNING id",
        15, params, "store the sent message", err);
    free(customer);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        *comm_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return 0;
    }
    PQclear(res);
    // The webhook (or history) event of this very message was stored first: that row is
    // the message. A new statement sees it even if it committed a moment ago.
    const char *key[] = {provider, job->channel, s->external_id};
    res = s_exec(conn,
                 "SELECT id FROM communications WHERE provider = $1 AND channel = $2"
                 " AND external_id = $3",
                 3, key, "find the stored message", err);
    if (res == NULL)
        return -1;
    int rc = -1;
    if (PQntuples(res) == 1) {
        *comm_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        rc = 0;
    } else {
        sb_err_set(err, 0, "could not find communication %s/%s/%s after a conflict", provider,
                   job->channel, s->external_id);
    }
    PQclear(res);
    return rc;
}

int
sb_outbox_record_sent(PGconn *conn, const sb_outbox_job_t *job, const sb_outbox_sent_t *sent,
                      int64_t *comm_id, int *taken_over, sb_err_t *err)
{
    *taken_over = 0;
    if (s_command(conn, "BEGIN", err) != 0)
        return -1;
    if (s_insert_comm(conn, job, sent, comm_id, err) != 0)
        goto fail;
    char *id = s_i64(job->id), *comm = s_i64(*comm_id), *customer = NULL;
    if (job->customer_id)
        customer = s_i64(job->customer_id);
    // A row the webhook stored before the customer existed gets the customer we know.
    const char *link[] = {comm, customer};
    PGresult *res = customer ? s_exec(conn,
                                      "UPDATE communications SET customer_id = $2"
                                      " WHERE id = $1 AND customer_id IS NULL",
                                      2, link, "match the stored message", err)
                             : NULL;
    int ok = customer == NULL || res != NULL;
    PQclear(res);
    const char *params[] = {id, job->attempt_id, sent->external_id, comm, sent->thread_id};
    res = ok ? s_exec(conn,
                      "UPDATE outbox SET status = 'sent', external_id = $3,"
                      " communication_id = $4::bigint, thread_id = COALESCE($5, thread_id),"
                      " sent_at = now(), last_error = NULL"
                      " WHERE id = $1 AND attempt_id = $2 AND status = 'sending'",
                      5, params, "mark the outbox row sent", err)
             : NULL;
    free(id);
    free(comm);
    free(customer);
    if (res == NULL)
        goto fail;
    *taken_over = strcmp(PQcmdTuples(res), "0") == 0;
    PQclear(res);
    if (s_command(conn, "COMMIT", err) != 0)
        goto fail;
    return 0;
fail:
    s_rollback(conn);
    return -1;
}

static int
s_update_attempt(PGconn *conn, const char *sql, int n, const char *const *params, const char *what,
                 sb_err_t *err)
{
    PGresult *res = s_exec(conn, sql, n, params, what, err);
    PQclear(res);
    return res ? 0 : -1;
}

int
sb_outbox_requeue(PGconn *conn, const sb_outbox_job_t *job, int64_t delay_ms,
                  const char *last_error, const char *verify, sb_err_t *err)
{
    char *id = s_i64(job->id), *delay = s_i64(delay_ms), *text = s_error_text(last_error);
    const char *params[] = {id, job->attempt_id, delay, text, verify};
    int rc = s_update_attempt(conn,
                              "UPDATE outbox SET status = 'queued', last_error = $4,"
                              " next_attempt_at = now() + $3::bigint * interval '1 millisecond',"
                              " verify = COALESCE($5, verify)"
                              " WHERE id = $1 AND attempt_id = $2 AND status = 'sending'",
                              5, params, "put the outbox row back in the queue", err);
    free(id);
    free(delay);
    free(text);
    return rc;
}

int
sb_outbox_fail(PGconn *conn, const sb_outbox_job_t *job, const char *last_error, sb_err_t *err)
{
    char *id = s_i64(job->id), *text = s_error_text(last_error);
    const char *params[] = {id, job->attempt_id, text};
    int rc = s_update_attempt(conn,
                              "UPDATE outbox SET status = 'failed', last_error = $3"
                              " WHERE id = $1 AND attempt_id = $2 AND status = 'sending'",
                              3, params, "mark the outbox row failed", err);
    free(id);
    free(text);
    return rc;
}

int
sb_outbox_first_unclaimed(PGconn *conn, int64_t outbox_id, char *const *ids, size_t n,
                          sb_err_t *err)
{
    if (n == 0)
        return -1;
    // An array literal of decimal ids (the caller checked they are digits only).
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += strlen(ids[i]) + 1;
    char *array = sb_xmalloc(len), *p = array;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(ids[i]);
        if (i)
            *p++ = ',';
        memcpy(p, ids[i], k);
        p += k;
    }
    *p++ = '}';
    *p = '\0';
    char *id = s_i64(outbox_id);
    const char *params[] = {array, id};
    PGresult *res = s_exec(conn,
                           "SELECT t.n FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n)"
                           " WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.channel = 'sms'"
                           "   AND o.external_id = t.x AND o.id <> $2::bigint)"
                           " ORDER BY t.n LIMIT 1",
                           2, params, "check the message ids of other replies", err);
    free(array);
    free(id);
    if (res == NULL)
        return -2;
    int found = PQntuples(res) == 1 ? (int)strtol(PQgetvalue(res, 0, 0), NULL, 10) - 1 : -1;
    PQclear(res);
    return found;
}

int
sb_outbox_mailbox_token(PGconn *conn, const sb_secretbox_t *box, const char *mailbox, char **token,
                        sb_err_t *err)
{
    *token = NULL;
    const char *params[] = {mailbox};
    PGresult *res = s_exec(conn,
                           "SELECT email, refresh_token FROM mailboxes"
                           " WHERE lower(email) = lower($1) ORDER BY id LIMIT 1",
                           1, params, "read the mailbox", err);
    if (res == NULL)
        return -1;
    int rc = 1;
    if (PQntuples(res) == 0) {
        sb_err_set(err, 0, "mailbox \"%.100s\" is not connected", mailbox);
    } else if (PQgetisnull(res, 0, 1) || PQgetvalue(res, 0, 1)[0] == '\0') {
        sb_err_set(err, 0, "mailbox \"%.100s\" has no refresh token", mailbox);
    } else {
        char *context = sb_xasprintf("mailboxes.refresh_token:%s", PQgetvalue(res, 0, 0));
        *token = sb_secretbox_load(box, PQgetvalue(res, 0, 1), context, err);
        free(context);
        rc = *token ? 0 : 2;
        char *stored = PQgetvalue(res, 0, 1);
        OPENSSL_cleanse(stored, strlen(stored));
    }
    PQclear(res);
    return rc;
}

int64_t
sb_outbox_next_due_ms(PGconn *conn, int64_t reconcile_after_ms, sb_err_t *err)
{
    // A queued row's next attempt, or the moment a dead sender's 'sending' row becomes
    // ours to reconcile. One already past was skipped by our last claim (another sender
    // holds it), so it does not count: no busy loop.
    char *after = s_i64(reconcile_after_ms);
    const char *params[] = {after, SB_STR(SB_SENDER_LOCK_CLASS)};
    PGresult *res = s_exec(conn, s_next_due_sql, 2, params, "find the next due reply", err);
    free(after);
    if (res == NULL)
        return -2;
    int64_t ms = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return ms;
}

int
sb_outbox_counts(PGconn *conn, int64_t *queued, int64_t *sending, int64_t *failed, sb_err_t *err)
{
    // Three probes of partial indexes: the sent rows, nearly all of them, are never read.
    PGresult *res = s_exec(conn,
                           "SELECT (SELECT count(*) FROM outbox WHERE status = 'queued'),"
                           " (SELECT count(*) FROM outbox WHERE status = 'sending'),"
                           " (SELECT count(*) FROM outbox WHERE status = 'failed')",
                           0, NULL, "count the outbox", err);
    if (res == NULL)
        return -1;
    *queued = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *sending = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    *failed = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    return 0;
}
