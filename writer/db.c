/* db - the writer's connection, its prepared statements and the pipelined batch
 * transaction (see db.h). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "db.h"
#include "map_extra.h"
#include "db_call.h"
#include "db_batch.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_time.h"
#include "sb_banned.h"

#define SB_DB_POLL_MS 100 // connect: how often tick() runs while waiting for the server

// Type OIDs of the parameters (pg_type.h; stable across versions).
#define S_TEXT 25
#define S_INT8 20
#define S_BYTEA 17
#define S_JSONB 3802
#define S_TIMESTAMPTZ 1184

// $1..$5 are the same in both statements: the webhook_events row.
#define S_EVENT_PARAMS 5
#define S_COMM_PARAMS 18

// A communication event: insert the communication unless this event id is a redelivery
// (seen) or the provider id is already stored (ON CONFLICT: 'duplicate', pointing at the
// row that is there), then the event row. A redelivered event id inserts nothing and
// returns no row. Customers: the lowest id whose phone or email matches (SPEC).
static const char s_comm_sql[] =
    "WITH seen AS (SELECT 1 FROM webhook_events WHERE event_id = $1),"
    " cust AS (SELECT min(id) AS id FROM ("
    "   SELECT id FROM customers WHERE phone_e164 = $17"
    "   UNION ALL SELECT id FROM customers WHERE email_norm = $18) m),"
    " c AS (INSERT INTO communications (customer_id, channel, direction, provider,"
    "   external_id, thread_id, from_address, to_address, subject, body, status, occurred_at)"
    "   SELECT (SELECT id FROM cust), $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
    "     COALESCE($16, to_timestamp($3 / 1000.0))"
    "   WHERE NOT EXISTS (SELECT 1 FROM seen)"
    "   ON CONFLICT (provider, channel, external_id) DO NOTHING RETURNING id),"
    " existing AS (SELECT id FROM communications"
    "   WHERE provider = $8 AND channel = $6 AND external_id = $9)"
    " INSERT INTO webhook_events (event_id, source, received_at, outcome, communication_id,"
    "   headers, body)"
    " SELECT $1, $2, to_timestamp($3 / 1000.0),"
    "   CASE WHEN EXISTS (SELECT 1 FROM c) THEN 'stored' ELSE 'duplicate' END,"
    "   COALESCE((SELECT id FROM c), (SELECT id FROM existing)), $4, $5"
    " ON CONFLICT (event_id) DO NOTHING RETURNING outcome";
static const Oid s_comm_types[S_COMM_PARAMS] = {
    S_TEXT, S_TEXT, S_INT8, S_JSONB, S_BYTEA, S_TEXT, S_TEXT,        S_TEXT, S_TEXT,
    S_TEXT, S_TEXT, S_TEXT, S_TEXT,  S_TEXT,  S_TEXT, S_TIMESTAMPTZ, S_TEXT, S_TEXT};

// An event the enricher filled (map_extra.h): $6 the rows as a JSON array, $7 the
// mailbox, $8 its new history id, $9 the outcome when no row is stored, $10 the reason,
// $11 the mailbox's new status. Rows are inserted like sb_comm's one; the event is
// 'stored' when a row was new, 'duplicate' when all were there; communication_id is the
// first row's. The checkpoint only moves forward (GREATEST), in this transaction.
static const char s_extra_sql[] =
    "WITH seen AS (SELECT 1 FROM webhook_events WHERE event_id = $1),"
    " r AS (SELECT * FROM jsonb_to_recordset($6) AS x(ord int, channel text, direction text,"
    "   provider text, external_id text, thread_id text, from_address text, to_address text,"
    "   subject text, body text, status text, occurred_at timestamptz, match_phone text,"
    "   match_email text, message_id text, email_references text)"
    "   WHERE NOT EXISTS (SELECT 1 FROM seen)),"
    " c AS (INSERT INTO communications (customer_id, channel, direction, provider,"
    "   external_id, thread_id, from_address, to_address, subject, body, status, occurred_at,"
    "   message_id, email_references)"
    "   SELECT LEAST((SELECT min(id) FROM customers WHERE phone_e164 = r.match_phone),"
    "     (SELECT min(id) FROM customers WHERE email_norm = r.match_email)),"
    "     channel, direction, provider, external_id, thread_id, from_address, to_address,"
    "     subject, body, status, COALESCE(occurred_at, to_timestamp($3 / 1000.0)),"
    "     message_id, email_references"
    "   FROM r ORDER BY ord"
    "   ON CONFLICT (provider, channel, external_id) DO NOTHING"
    "   RETURNING id, provider, channel, external_id),"
    " f AS (SELECT provider, channel, external_id FROM r ORDER BY ord LIMIT 1),"
    " m AS (UPDATE mailboxes SET history_id = GREATEST(history_id, $8),"
    "   status = COALESCE($11, status), updated_at = now()"
    "   WHERE $7::text IS NOT NULL AND lower(email) = lower($7)"
    "   AND NOT EXISTS (SELECT 1 FROM seen) RETURNING 1)"
    " INSERT INTO webhook_events (event_id, source, received_at, outcome, reason,"
    "   communication_id, headers, body)"
    " SELECT $1, $2, to_timestamp($3 / 1000.0),"
    "   CASE WHEN EXISTS (SELECT 1 FROM c) THEN 'stored'"
    "     WHEN EXISTS (SELECT 1 FROM r) THEN 'duplicate' ELSE $9 END, $10,"
    "   COALESCE((SELECT c.id FROM c JOIN f USING (provider, channel, external_id)),"
    "     (SELECT x.id FROM communications x JOIN f USING (provider, channel, external_id))),"
    "   $4, $5"
    " ON CONFLICT (event_id) DO NOTHING RETURNING outcome";
#define S_EXTRA_PARAMS 11
_Static_assert(S_EXTRA_PARAMS <= S_COMM_PARAMS, "s_params_t holds every statement's parameters");
_Static_assert(S_EVENT_PARAMS + SB_COMM_COLUMNS == S_COMM_PARAMS, "the row after the event");
static const Oid s_extra_types[S_EXTRA_PARAMS] = {S_TEXT, S_TEXT, S_INT8, S_JSONB, S_BYTEA, S_JSONB,
                                                  S_TEXT, S_INT8, S_TEXT, S_TEXT,  S_TEXT};

// An event without a communication: rejected, ignored, or failed.
static const char s_event_sql[] =
    "INSERT INTO webhook_events (event_id, source, received_at, outcome, reason, headers, body)"
    " VALUES ($1, $2, to_timestamp($3 / 1000.0), $6, $7, $4, $5)"
    " ON CONFLICT (event_id) DO NOTHING RETURNING outcome";
static const Oid s_event_types[S_EVENT_PARAMS + 2] = {S_TEXT,  S_TEXT, S_INT8, S_JSONB,
                                                      S_BYTEA, S_TEXT, S_TEXT};

struct sb_db {
    char *url;    // DATABASE_URL, a secret: never logged
    PGconn *conn; // NULL while disconnected
    int prepared; // the statements exist in this session
    int setwise;  // runs of plain events go as one "sb_batch" statement (db_batch.h)
};

// One statement of a batch's pipeline: a single event's, or the set-wise statement of a
// run of consecutive plain events.
typedef struct {
    size_t first; // its first event
    size_t count; // its events: 1 unless batch
    int batch;    // the "sb_batch" statement
} s_cmd_t;

// The parameters of one event's statement; values point into the event.
typedef struct {
    const char *values[S_COMM_PARAMS];
    int lengths[S_COMM_PARAMS];
    int formats[S_COMM_PARAMS];
    char received[24]; // $3 as text
} s_params_t;

sb_db_t *
sb_db_new(const char *url)
{
    sb_db_t *self = sb_xcalloc(1, sizeof *self);
    self->url = sb_xstrdup(url);
    self->setwise = 1;
    return self;
}

void
sb_db_destroy(sb_db_t **self_p)
{
    assert(self_p);
    sb_db_t *self = *self_p;
    if (self == NULL)
        return;
    sb_db_disconnect(self);
    // The URL may hold a password: do not leave it in freed memory.
    memset(self->url, 0, strlen(self->url));
    free(self->url);
    free(self);
    *self_p = NULL;
}

void
sb_db_set_setwise(sb_db_t *self, int on)
{
    self->setwise = on != 0;
}

void
sb_db_disconnect(sb_db_t *self)
{
    if (self->conn)
        PQfinish(self->conn);
    self->conn = NULL;
    self->prepared = 0;
}

int
sb_db_connected(const sb_db_t *self)
{
    return self->conn != NULL && PQstatus(self->conn) == CONNECTION_OK;
}

PGconn *
sb_db_conn(sb_db_t *self)
{
    return self->conn;
}

// Copy the first line of text into out, so that libpq's multi-line messages stay one
// log line.
static void
s_first_line(const char *text, char *out, size_t size)
{
    size_t n = strcspn(text, "\r\n");
    if (n >= size)
        n = size - 1;
    memcpy(out, text, n);
    out[n] = '\0';
}

void
sb_db_describe_error(const PGconn *conn, const PGresult *res, char *out, size_t size)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char line[SB_ERR_MSG_MAX];
    if (primary) {
        s_first_line(primary, line, sizeof line);
    } else {
        const char *text = res ? PQresultErrorMessage(res) : "";
        if (*text == '\0')
            text = PQerrorMessage(conn);
        s_first_line(*text ? text : "unknown error", line, sizeof line);
    }
    if (state)
        snprintf(out, size, "%s: %s", state, line);
    else
        snprintf(out, size, "%s", line);
}

sb_db_status_t
sb_db_classify(const PGconn *conn, const PGresult *res)
{
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
        return SB_DB_CONN;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL || strlen(state) != 5)
        return SB_DB_CONN; // libpq's own error: trust nothing about this session
    // 08 connection exception, 57P01-03 the server is shutting down or starting, 25 a
    // transaction state we did not expect: a fresh session is the cure.
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
        strncmp(state, "25", 2) == 0)
        return SB_DB_CONN;
    // 40 deadlock / serialisation, 53 out of resources (disk full ...), 55P03 lock not
    // available, 57014 statement cancelled, 58 system error: not the data's fault.
    if (strncmp(state, "40", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 || strncmp(state, "58", 2) == 0)
        return SB_DB_TRANSIENT;
    return SB_DB_DATA; // 22 data exception, 23 constraint, 42 schema, XX ...
}

static int
s_prepare(PGconn *conn, const char *name, const char *sql, int n, const Oid *types, sb_err_t *err)
{
    PGresult *res = PQprepare(conn, name, sql, n, types);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char why[SB_ERR_MSG_MAX];
        sb_db_describe_error(conn, res, why, sizeof why);
        sb_err_set(err, 0, "could not prepare statement \"%s\": %s", name, why);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

// Server notices and warnings would go to stderr as free text and break the one-JSON-
// object-per-line log: route them through sb_log (NOTICEs are silenced below).
static void
s_notice(void *arg, const char *message)
{
    (void)arg;
    char line[SB_ERR_MSG_MAX];
    s_first_line(message, line, sizeof line);
    sb_log_warn(NULL, "database: %s", line);
}

// Session set-up after every (re)connect.
static int
s_session(PGconn *conn, sb_err_t *err)
{
    PQsetNoticeProcessor(conn, s_notice, NULL);
    // A creationTime without a zone means UTC, whatever the server's default is. The
    // migrations' "already exists, skipping" NOTICEs are noise.
    PGresult *res = PQexec(conn, "SET TIME ZONE 'UTC'; SET client_min_messages = warning");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        char why[SB_ERR_MSG_MAX];
        sb_db_describe_error(conn, res, why, sizeof why);
        sb_err_set(err, 0, "could not set the session time zone: %s", why);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

// Prepared statements live per session. They are made at the first write, not at
// connect, because the first connection is also the one that creates the tables.
static int
s_prepare_all(sb_db_t *self, sb_err_t *err)
{
    if (self->prepared)
        return 0;
    if (s_prepare(self->conn, "sb_comm", s_comm_sql, S_COMM_PARAMS, s_comm_types, err) != 0 ||
        s_prepare(self->conn, "sb_extra", s_extra_sql, S_EXTRA_PARAMS, s_extra_types, err) != 0 ||
        s_prepare(self->conn, "sb_event", s_event_sql, S_EVENT_PARAMS + 2, s_event_types, err) !=
            0 ||
        s_prepare(self->conn, "sb_call", sb_db_call_sql, SB_DB_CALL_PARAMS, sb_db_call_types,
                  err) != 0 ||
        s_prepare(self->conn, "sb_batch", sb_db_batch_sql, SB_DB_BATCH_PARAMS, sb_db_batch_types,
                  err) != 0)
        return -1;
    self->prepared = 1;
    return 0;
}

// Drive a non-blocking connect so that the caller's tick (heartbeats) keeps running while
// a host does not answer. libpq's connect_timeout only applies to blocking connects.
static int
s_poll_connect(PGconn *conn, sb_db_tick_fn tick, void *arg, sb_err_t *err)
{
    int64_t deadline = sb_mono_ms() + SB_DB_CONNECT_TIMEOUT_MS;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING; // as the libpq manual says
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            char why[SB_ERR_MSG_MAX];
            s_first_line(PQerrorMessage(conn), why, sizeof why);
            sb_err_set(err, 0, "could not connect to the database: %s", why);
            return -1;
        }
        struct pollfd pfd = {PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        int ready = poll(&pfd, 1, SB_DB_POLL_MS);
        if (ready < 0 && errno != EINTR) {
            sb_err_set(err, errno, "could not connect to the database");
            return -1;
        }
        if (ready > 0) {
            st = PQconnectPoll(conn);
            continue;
        }
        if (tick && tick(arg) != 0) {
            sb_err_set(err, EINTR, "could not connect to the database");
            return -1;
        }
        if (sb_mono_ms() > deadline) {
            sb_err_set(err, 0, "could not connect to the database: timeout after %d ms",
                       SB_DB_CONNECT_TIMEOUT_MS);
            return -1;
        }
    }
    return 0;
}

int
sb_db_connect(sb_db_t *self, sb_db_tick_fn tick, void *arg, sb_err_t *err)
{
    sb_db_disconnect(self);
    // Our defaults first: with expand_dbname the URL (dbname, last) overrides them.
    // Keepalives and tcp_user_timeout bound how long a vanished server can hang a batch.
    static const char *const keys[] = {"connect_timeout",  "application_name",
                                       "client_encoding",  "keepalives",
                                       "keepalives_idle",  "keepalives_interval",
                                       "keepalives_count", "tcp_user_timeout",
                                       "dbname",           NULL};
    const char *values[] = {"5", "sb-writer", "UTF8",  "1",       "10",
                            "5", "3",         "30000", self->url, NULL};
    PGconn *conn = PQconnectStartParams(keys, values, 1);
    if (conn == NULL) {
        sb_err_set(err, ENOMEM, "could not connect to the database");
        return -1;
    }
    int rc = -1;
    if (PQstatus(conn) == CONNECTION_BAD) {
        char why[SB_ERR_MSG_MAX];
        s_first_line(PQerrorMessage(conn), why, sizeof why);
        sb_err_set(err, 0, "could not connect to the database: %s", why);
        goto cleanup;
    }
    if (s_poll_connect(conn, tick, arg, err) != 0 || s_session(conn, err) != 0)
        goto cleanup;
    self->conn = conn;
    conn = NULL;
    rc = 0;
cleanup:
    if (conn)
        PQfinish(conn);
    return rc;
}

// The parameters of ev's statement. failed_reason: store it as 'failed' with that reason.
static void
s_params(const sb_db_event_t *ev, const char *failed_reason, s_params_t *p)
{
    memset(p, 0, sizeof *p);
    const sb_envelope_t *env = ev->env;
    snprintf(p->received, sizeof p->received, "%" PRId64, env->received_at_ms);
    p->values[0] = env->event_id;
    p->values[1] = env->source;
    p->values[2] = p->received;
    p->values[3] = env->headers ? env->headers : "{}";
    // The raw body goes as a binary bytea parameter: byte exact, NULs included, no escaping.
    p->values[4] = env->body ? env->body : "";
    p->lengths[4] = env->body ? (int)env->body_len : 0;
    p->formats[4] = 1;
    const sb_map_t *map = ev->map;
    if (failed_reason == NULL && map->kind == SB_MAP_EXTRA) {
        const sb_map_extra_t *x = map->extra;
        const char *extra[] = {x->rows_json, x->mailbox_email, x->history_id,
                               x->outcome,   x->reason,        x->mailbox_status};
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
            p->values[S_EVENT_PARAMS + i] = extra[i];
        return;
    }
    if (failed_reason == NULL && map->kind == SB_MAP_CALL) { // db_call.h
        p->values[5] = map->call;
        p->values[6] = ev->call_locks;
        return;
    }
    if (failed_reason || map->kind != SB_MAP_COMMUNICATION) {
        p->values[5] = failed_reason                 ? "failed"
                       : map->kind == SB_MAP_IGNORED ? "ignored"
                                                     : "rejected";
        p->values[6] = failed_reason ? failed_reason : map->reason;
        return;
    }
    sb_comm_columns(&map->comm, &p->values[S_EVENT_PARAMS]);
}

static int
s_send_event(PGconn *conn, const sb_db_event_t *ev, const char *failed_reason)
{
    s_params_t p;
    s_params(ev, failed_reason, &p);
    int comm = failed_reason == NULL && ev->map->kind == SB_MAP_COMMUNICATION;
    if (failed_reason == NULL && ev->map->kind == SB_MAP_EXTRA)
        return PQsendQueryPrepared(conn, "sb_extra", S_EXTRA_PARAMS, p.values, p.lengths, p.formats,
                                   0);
    if (failed_reason == NULL && ev->map->kind == SB_MAP_CALL)
        return PQsendQueryPrepared(conn, "sb_call", SB_DB_CALL_PARAMS, p.values, p.lengths,
                                   p.formats, 0);
    return PQsendQueryPrepared(conn, comm ? "sb_comm" : "sb_event",
                               comm ? S_COMM_PARAMS : S_EVENT_PARAMS + 2, p.values, p.lengths,
                               p.formats, 0);
}

static const char *
s_outcome_literal(const char *text)
{
    static const char *const outcomes[] = {"stored", "duplicate", "rejected", "ignored", "failed"};
    for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
        if (strcmp(text, outcomes[i]) == 0)
            return outcomes[i];
    return "stored"; // cannot happen: the CHECK constraint allows no other value
}

// Split the batch into statements: each run of two or more consecutive plain events is
// one set-wise statement (a run of one gains nothing from arrays), every other event
// gets its own. Batch order is kept, so an event sees exactly what the events before it
// stored, as with one statement per event. Returns the number of statements.
static size_t
s_plan(const sb_db_event_t *events, size_t n, int setwise, s_cmd_t *cmds)
{
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        size_t run = 0;
        while (setwise && i + run < n && sb_db_batch_fits(&events[i + run]))
            run++;
        if (run < 2)
            run = 1;
        cmds[m++] = (s_cmd_t){i, run, run >= 2};
        i += run;
    }
    return m;
}

static int
s_send_batch(PGconn *conn, const sb_db_event_t *events, size_t n)
{
    sb_db_batch_params_t p;
    sb_db_batch_params(&p, events, n);
    // libpq copies the parameters into its output buffer: they can go at once.
    int sent = PQsendQueryPrepared(conn, "sb_batch", SB_DB_BATCH_PARAMS, p.values, p.lengths,
                                   p.formats, 0);
    sb_db_batch_params_release(&p);
    return sent;
}

// What came back for one pipelined batch.
typedef struct {
    const s_cmd_t *cmds;   // the statements between BEGIN and COMMIT
    size_t m;              // how many
    size_t cmd;            // command whose results are being read: 0 BEGIN, 1..m, m+1 COMMIT
    int committed;         // COMMIT answered "COMMIT"
    int synced;            // the PGRES_PIPELINE_SYNC arrived
    sb_db_status_t status; // of the first error
    int failed;            // an error was seen
    int batch_failed;      // ... and it was a set-wise statement's, which names no event
} s_reply_t;

typedef struct {
    const char *event_id; // borrowed from the event
    size_t i;             // its index in the batch
} s_id_t;

static int
s_id_cmp(const void *a, const void *b)
{
    const s_id_t *x = a, *y = b;
    int c = strcmp(x->event_id, y->event_id);
    return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

// A set-wise statement answers (event_id, outcome) for each event that got a
// webhook_events row, in no particular order. Only the first copy of an id in the run
// can have got one (the statement keeps the first), so that is the one to mark.
static void
s_on_batch_rows(const PGresult *res, const s_cmd_t *cmd, sb_db_event_t *events)
{
    s_id_t *ids = sb_xcalloc(cmd->count, sizeof *ids);
    for (size_t k = 0; k < cmd->count; k++)
        ids[k] = (s_id_t){events[cmd->first + k].env->event_id, cmd->first + k};
    qsort(ids, cmd->count, sizeof *ids, s_id_cmp);
    for (int row = 0; row < PQntuples(res); row++) {
        s_id_t key = {PQgetvalue(res, row, 0), 0}; // i 0 sorts first among equal ids
        size_t lo = 0, hi = cmd->count;
        while (lo < hi) { // the first entry not below key
            size_t mid = lo + (hi - lo) / 2;
            if (s_id_cmp(&ids[mid], &key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < cmd->count && strcmp(ids[lo].event_id, key.event_id) == 0)
            events[ids[lo].i].outcome = s_outcome_literal(PQgetvalue(res, row, 1));
    }
    free(ids);
}

// A statement's rows: a single event's statement answers its outcome when it wrote a
// webhook_events row, nothing for a redelivery. Outcomes not answered stay NULL.
static void
s_on_rows(const PGresult *res, const s_cmd_t *cmd, sb_db_event_t *events)
{
    if (cmd->batch) {
        s_on_batch_rows(res, cmd, events);
        return;
    }
    events[cmd->first].outcome =
        PQntuples(res) == 1 ? s_outcome_literal(PQgetvalue(res, 0, 0)) : NULL;
}

static void
s_on_result(PGconn *conn, PGresult *res, sb_db_event_t *events, s_reply_t *r, sb_err_t *err)
{
    const s_cmd_t *cmd = r->cmd >= 1 && r->cmd <= r->m ? &r->cmds[r->cmd - 1] : NULL;
    switch (PQresultStatus(res)) {
    case PGRES_PIPELINE_SYNC:
        r->synced = 1;
        break;
    case PGRES_TUPLES_OK:
        if (cmd)
            s_on_rows(res, cmd, events);
        break;
    case PGRES_COMMAND_OK:
        if (r->cmd == r->m + 1)
            r->committed = strcmp(PQcmdStatus(res), "COMMIT") == 0;
        break;
    case PGRES_PIPELINE_ABORTED: // skipped because an earlier command failed
        break;
    default:
        if (!r->failed) {
            char why[SB_ERR_MSG_MAX];
            sb_db_describe_error(conn, res, why, sizeof why);
            sb_err_set(err, 0, "%s", why);
            r->status = sb_db_classify(conn, res);
            r->failed = 1;
            if (cmd && cmd->batch)
                r->batch_failed = 1;
            else if (cmd)
                events[cmd->first].failed = 1; // the poison, for the caller to set aside
        }
        break;
    }
}

// Read every result of the pipeline up to its sync point. A NULL from PQgetResult ends
// one command's results; the sync point is not followed by one.
static void
s_read_replies(PGconn *conn, sb_db_event_t *events, s_reply_t *r, sb_err_t *err)
{
    while (!r->synced) {
        PGresult *res = PQgetResult(conn);
        if (res == NULL) {
            if (PQstatus(conn) != CONNECTION_OK || ++r->cmd > r->m + 2) {
                if (!r->failed) {
                    char why[SB_ERR_MSG_MAX];
                    sb_db_describe_error(conn, NULL, why, sizeof why);
                    sb_err_set(err, 0, "%s", why);
                }
                r->status = SB_DB_CONN;
                r->failed = 1;
                return;
            }
            continue;
        }
        s_on_result(conn, res, events, r, err);
        PQclear(res);
    }
}

// BEGIN; the batch's statements; COMMIT; sync. One round trip, one commit. setwise: runs
// of plain events go as one statement each. *batch_failed: the first error was a
// set-wise statement's, so no event is marked failed.
static sb_db_status_t
s_run(sb_db_t *self, sb_db_event_t *events, size_t n, const char *failed_reason, int setwise,
      int *batch_failed, sb_err_t *err)
{
    PGconn *conn = self->conn;
    *batch_failed = 0;
    if (!sb_db_connected(self)) {
        sb_err_set(err, 0, "not connected to the database");
        return SB_DB_CONN;
    }
    for (size_t i = 0; i < n; i++) {
        events[i].outcome = NULL;
        events[i].failed = 0;
    }
    if (s_prepare_all(self, err) != 0) {
        // Missing tables (42P01) are not this batch's fault: retry, do not mark it failed.
        return PQstatus(conn) == CONNECTION_OK ? SB_DB_TRANSIENT : SB_DB_CONN;
    }
    s_cmd_t *cmds = sb_xcalloc(n, sizeof *cmds);
    size_t m = s_plan(events, n, setwise && failed_reason == NULL, cmds);
    // Blocking mode is safe here: while libpq waits to send, it reads and buffers what
    // the server sends, so neither side can stall on a full socket.
    int sent =
        PQenterPipelineMode(conn) && PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    char *call_locks = failed_reason ? NULL : sb_db_call_locks(events, n);
    for (size_t k = 0; k < m && sent; k++)
        sent = cmds[k].batch ? s_send_batch(conn, &events[cmds[k].first], cmds[k].count)
                             : s_send_event(conn, &events[cmds[k].first], failed_reason);
    free(call_locks);
    sent = sent && PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) &&
           PQpipelineSync(conn);
    if (!sent) {
        char why[SB_ERR_MSG_MAX];
        s_first_line(PQerrorMessage(conn), why, sizeof why);
        sb_err_set(err, 0, "could not send the batch: %s", why);
        sb_db_disconnect(self); // a half-sent pipeline cannot be resumed
        free(cmds);
        return SB_DB_CONN;
    }
    s_reply_t r = {.cmds = cmds, .m = m};
    s_read_replies(conn, events, &r, err);
    free(cmds);
    if (!r.failed && !r.committed) {
        sb_err_set(err, 0, "the batch did not commit");
        r.status = SB_DB_TRANSIENT;
        r.failed = 1;
    }
    if (r.status == SB_DB_CONN || !PQexitPipelineMode(conn)) {
        sb_db_disconnect(self);
        return SB_DB_CONN;
    }
    if (r.failed && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(conn, "ROLLBACK");
        PQclear(res);
    }
    *batch_failed = r.failed && r.batch_failed;
    return r.failed ? r.status : SB_DB_OK;
}

sb_db_status_t
sb_db_write(sb_db_t *self, sb_db_event_t *events, size_t n, sb_err_t *err)
{
    int batch_failed;
    sb_db_status_t st = s_run(self, events, n, NULL, self->setwise, &batch_failed, err);
    if (st == SB_DB_DATA && batch_failed) {
        // A set-wise statement cannot say which event broke it. Write the batch again
        // one statement per event, which names the poison for the caller to set aside
        // (or succeeds, if the set-wise statement itself was at fault).
        sb_log_warn(NULL,
                    "set-wise statement of a batch of %zu events failed (%s); "
                    "writing it one statement per event",
                    n, err->msg);
        st = s_run(self, events, n, NULL, 0, &batch_failed, err);
    }
    return st;
}

sb_db_status_t
sb_db_write_failed(sb_db_t *self, sb_db_event_t *event, const char *reason, sb_err_t *err)
{
    assert(reason);
    int batch_failed;
    return s_run(self, event, 1, reason, 0, &batch_failed, err);
}
