/* gmail - Gmail pushes to e-mails (see gmail.h for the steps and the one-mailbox rule).
 * The pure pieces come first, then the database, then a job's steps in the order they
 * run: gate (lock, checkpoint), token, history walk (or full sync), message fetches,
 * finish. Every step ends by starting the next one from a callback of fetch.c or a timer,
 * never by waiting. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include "gmail.h"
#include "sb_b64.h"
#include "sb_google_oauth.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_secretbox.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_PUSH_MAX_BYTES 65536  // a Pub/Sub push body is a few hundred bytes
#define S_EMAIL_MAX 320         // longest valid address
#define S_ID_MAX 128            // longest plausible Gmail message id
#define S_LOCK_CLASS 1935828224 // first key of the mailbox advisory locks: "sbe\0"

// --- Pure pieces ---------------------------------------------------------------------------

int
sb_gmail_history_id_parse(const json_t *value, uint64_t *out)
{
    if (json_is_integer(value)) {
        if (json_integer_value(value) < 0)
            return -1;
        *out = (uint64_t)json_integer_value(value);
        return 0;
    }
    const char *text = json_string_value(value);
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len > 19)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)text[i]))
            return -1;
    *out = strtoull(text, NULL, 10);
    return *out > (uint64_t)INT64_MAX ? -1 : 0; // mailboxes.history_id is a bigint
}

static int
s_email_ok(const char *text)
{
    size_t len = text ? strlen(text) : 0;
    if (len < 3 || len > S_EMAIL_MAX || strchr(text, '@') == NULL)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] <= 0x20 || text[i] == 0x7f)
            return 0;
    return 1;
}

int
sb_gmail_pubsub_decode(const char *body, size_t len, char **email, char **history_id, sb_err_t *err)
{
    *email = *history_id = NULL;
    json_t *root = len <= S_PUSH_MAX_BYTES ? json_loadb(body, len, 0, NULL) : NULL;
    const char *data = json_string_value(json_object_get(json_object_get(root, "message"), "data"));
    if (data == NULL) {
        sb_err_set(err, 0, "push body has no message.data");
        json_decref(root);
        return -1;
    }
    size_t n = 0;
    // Pub/Sub sends standard base64; some relays re-encode as base64url (SPEC quirk).
    unsigned char *decoded = sb_b64_decode(data, strlen(data), SB_B64_ANY, &n);
    json_decref(root);
    if (decoded == NULL) {
        sb_err_set(err, 0, "message.data is not base64");
        return -1;
    }
    json_t *doc = json_loadb((const char *)decoded, n, 0, NULL);
    free(decoded);
    const char *address = json_string_value(json_object_get(doc, "emailAddress"));
    uint64_t history = 0;
    int rc = -1;
    if (!s_email_ok(address))
        sb_err_set(err, 0, "message.data has no valid emailAddress");
    else if (sb_gmail_history_id_parse(json_object_get(doc, "historyId"), &history) != 0)
        sb_err_set(err, 0, "message.data has no valid historyId");
    else
        rc = 0;
    if (rc == 0) {
        *email = sb_xstrdup(address);
        *history_id = sb_xasprintf("%" PRIu64, history);
    }
    json_decref(doc);
    return rc;
}

void
sb_gmail_ids_init(sb_gmail_ids_t *ids)
{
    memset(ids, 0, sizeof *ids);
    ids->seen = json_object();
}

void
sb_gmail_ids_release(sb_gmail_ids_t *ids)
{
    for (size_t i = 0; i < ids->n; i++) {
        free(ids->ids[i]);
        free(ids->records[i]);
    }
    free(ids->ids);
    free(ids->records);
    json_decref(ids->seen);
    memset(ids, 0, sizeof *ids);
}

// Gmail ids are short hex strings; anything else must not reach a URL path.
static int
s_id_ok(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > S_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '_')
            return 0;
    return 1;
}

void
sb_gmail_ids_add(sb_gmail_ids_t *ids, const char *id, const char *record)
{
    if (!s_id_ok(id) || json_object_get(ids->seen, id) != NULL)
        return;
    json_object_set_new(ids->seen, id, json_true());
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 16;
        ids->ids = sb_xrealloc(ids->ids, ids->cap * sizeof *ids->ids);
        ids->records = sb_xrealloc(ids->records, ids->cap * sizeof *ids->records);
    }
    ids->ids[ids->n] = sb_xstrdup(id);
    ids->records[ids->n] = record ? sb_xstrdup(record) : NULL;
    ids->n++;
}

static int
s_has_label(const json_t *labels, const char *label)
{
    size_t i;
    const json_t *value;
    json_array_foreach(labels, i, value)
    {
        const char *text = json_string_value(value);
        if (text && strcmp(text, label) == 0)
            return 1;
    }
    return 0;
}

// A history id member as decimal text, or NULL.
static char *
s_history_text(const json_t *value)
{
    uint64_t id;
    return sb_gmail_history_id_parse(value, &id) == 0 ? sb_xasprintf("%" PRIu64, id) : NULL;
}

int
sb_gmail_history_page(const char *json, size_t len, sb_gmail_ids_t *ids, char **next_page,
                      char **history_id, sb_err_t *err)
{
    *next_page = *history_id = NULL;
    json_t *root = json_loadb(json, len, 0, NULL);
    const json_t *history = json_object_get(root, "history");
    if (!json_is_object(root) || (history != NULL && !json_is_array(history))) {
        sb_err_set(err, 0, "history.list answer is not a history page");
        json_decref(root);
        return -1;
    }
    *history_id = s_history_text(json_object_get(root, "historyId"));
    if (*history_id == NULL) {
        sb_err_set(err, 0, "history.list answer has no historyId");
        json_decref(root);
        return -1;
    }
    size_t i, j;
    const json_t *record, *added;
    json_array_foreach(history, i, record)
    {
        char *record_id = s_history_text(json_object_get(record, "id"));
        json_array_foreach(json_object_get(record, "messagesAdded"), j, added)
        {
            const json_t *msg = json_object_get(added, "message");
            if (s_has_label(json_object_get(msg, "labelIds"), "DRAFT"))
                continue; // a draft is not a communication (yet)
            sb_gmail_ids_add(ids, json_string_value(json_object_get(msg, "id")), record_id);
        }
        free(record_id);
    }
    const char *token = json_string_value(json_object_get(root, "nextPageToken"));
    if (token != NULL && *token != '\0')
        *next_page = sb_xstrdup(token);
    json_decref(root);
    return 0;
}

int
sb_gmail_message_list(const char *json, size_t len, sb_gmail_ids_t *ids, sb_err_t *err)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    const json_t *messages = json_object_get(root, "messages");
    if (!json_is_object(root) || (messages != NULL && !json_is_array(messages))) {
        sb_err_set(err, 0, "messages.list answer is not a message list");
        json_decref(root);
        return -1;
    }
    size_t i;
    const json_t *msg;
    json_array_foreach(messages, i, msg)
        sb_gmail_ids_add(ids, json_string_value(json_object_get(msg, "id")), NULL);
    json_decref(root);
    return 0;
}

int
sb_gmail_profile_history(const char *json, size_t len, char **history_id, sb_err_t *err)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    *history_id = s_history_text(json_object_get(root, "historyId"));
    json_decref(root);
    if (*history_id == NULL) {
        sb_err_set(err, 0, "users.getProfile answer has no historyId");
        return -1;
    }
    return 0;
}

// "2026-11-24T15:10:00.000Z" of epoch milliseconds; "" for 0 (unknown).
static void
s_iso8601(int64_t ms, char *out, size_t size)
{
    out[0] = '\0';
    if (ms <= 0)
        return;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL || tm.tm_year + 1900 > 9999)
        return;
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static json_t *
s_string_or_null(const char *text)
{
    return text ? json_string(text) : json_null();
}

// The To addresses as one comma-separated value, or NULL when there are none.
static char *
s_join(char *const *list, size_t n)
{
    if (n == 0)
        return NULL;
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(list[i]) + 2;
    char *out = sb_xmalloc(len), *p = out;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(list[i]);
        if (i > 0) {
            memcpy(p, ", ", 2);
            p += 2;
        }
        memcpy(p, list[i], k);
        p += k;
    }
    *p = '\0';
    return out;
}

json_t *
sb_gmail_comm_json(const sb_gmail_message_t *msg)
{
    int outbound = strcmp(msg->direction, "outbound") == 0;
    char occurred[80]; // room for any int the compiler imagines in each field
    s_iso8601(msg->internal_date_ms, occurred, sizeof occurred);
    char *to = s_join(msg->to_addresses, msg->to_count);
    // Inbound mail matches on the sender, outbound on the first recipient (SPEC).
    const char *match =
        outbound ? (msg->to_count ? msg->to_addresses[0] : NULL) : msg->from_address;
    json_t *c = json_object();
    json_object_set_new(c, "channel", json_string("email"));
    json_object_set_new(c, "direction", json_string(msg->direction));
    json_object_set_new(c, "provider", json_string("gmail"));
    json_object_set_new(c, "external_id", json_string(msg->id));
    json_object_set_new(c, "thread_id", s_string_or_null(msg->thread_id));
    json_object_set_new(c, "from_address", s_string_or_null(msg->from_address));
    json_object_set_new(c, "to_address", s_string_or_null(to));
    json_object_set_new(c, "subject", s_string_or_null(msg->subject));
    json_object_set_new(c, "body", json_string(msg->body_text));
    json_object_set_new(c, "status", json_null());
    json_object_set_new(c, "occurred_at", s_string_or_null(occurred[0] ? occurred : NULL));
    json_object_set_new(c, "match_email", s_string_or_null(match));
    json_object_set_new(c, "match_phone", json_null());
    // Threading headers, so that a staff reply can carry In-Reply-To and References
    // (writer/migrations/0006_outbox.sql): References, or In-Reply-To when it has none.
    json_object_set_new(c, "message_id", s_string_or_null(msg->message_id));
    json_object_set_new(c, "email_references",
                        s_string_or_null(msg->references ? msg->references : msg->in_reply_to));
    free(to);
    return c;
}

char *
sb_gmail_extra(json_t *comms, const char *mailbox, const char *history_id, int full_sync)
{
    json_t *root = json_object();
    json_object_set_new(root, "communications", comms ? comms : json_array());
    json_t *mb = json_object();
    json_object_set_new(mb, "email", json_string(mailbox));
    json_object_set_new(mb, "history_id", s_string_or_null(history_id));
    json_object_set_new(mb, "full_sync", json_boolean(full_sync));
    json_object_set_new(root, "mailbox", mb);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    assert(text); // only fails on OOM, and jansson's allocator would have said so
    return text;
}

// --- State ---------------------------------------------------------------------------------

typedef struct s_job s_job_t;

typedef struct {
    char *key;               // lower-cased address
    s_job_t *job;            // running, or NULL
    sb_envelope_t **waiting; // pushes that came while job ran (owned)
    size_t n_waiting, cap_waiting;
    uint64_t forwarded_history; // checkpoint of the last job passed on (0: none yet)
    int64_t forwarded_ms;       // when (monotonic)
} s_mailbox_t;

typedef struct {
    s_job_t *job; // the job a message fetch belongs to
    size_t index; // its message
} s_get_t;

typedef enum { S_STEP_HISTORY, S_STEP_PROFILE, S_STEP_LIST, S_STEP_GETS } s_step_t;

enum { S_GET_NEW = 0, S_GET_ASKED, S_GET_AGAIN }; // a message fetch: not yet, done/running, 401

struct s_job {
    struct sb_gmail *gmail; // the handler
    s_mailbox_t *mb;        // the mailbox's queue entry
    sb_envelope_t **envs;   // the pushes it answers (owned); envs[0] leads
    size_t n_envs;
    int64_t started_ms;       // monotonic
    int64_t lock_deadline_ms; // give up waiting for the advisory lock then
    int lock_held;            // we hold the advisory lock
    char *email;              // the address as stored in mailboxes
    char *refresh_token;      // secret: wiped when freed
    uint64_t checkpoint;      // mailboxes.history_id; has_checkpoint says if set
    int has_checkpoint;
    int token_renewed;         // a 401 already cost one new token
    s_step_t step;             // what a new token resumes
    char *page_token;          // next history page, or NULL
    int pages;                 // history pages read
    char *new_history;         // the checkpoint to store, decimal
    int full_sync;             // history.list said 404: recent INBOX instead
    int truncated;             // more messages than GMAIL_MAX_MESSAGES_PER_PUSH
    sb_gmail_ids_t ids;        // messages to fetch
    sb_gmail_message_t **msgs; // parsed, per id; NULL when skipped
    s_get_t *gets;             // callback arguments, per id
    unsigned char *get_state;  // per id: S_GET_*
    size_t next_get;           // first id s_gets_pump has not looked at
    size_t outstanding;        // requests of this job in flight
    int failed;                // give the pushes up (the ingress resends)
    char why[SB_ERR_MSG_MAX];  // why, for the log
};

typedef struct sb_gmail {
    sb_enricher_t *enricher;          // borrowed
    const sb_enricher_config_t *conf; // borrowed
    char *base_url;                   // GMAIL_API_BASE_URL without a final '/'
    sb_google_oauth_t *oauth;         // access tokens per mailbox
    sb_secretbox_t *box;              // SWITCHBOARD_SECRET_KEY, or NULL: opens sealed tokens
    PGconn *db;                       // NULL while disconnected
    int64_t db_failed_ms;             // last failed connect (monotonic), 0 none
    zhashx_t *mailboxes;              // key -> s_mailbox_t
    sb_counter_t *pushes[7];          // sb_gmail_pushes_total{result}
    sb_counter_t *messages;           // sb_gmail_messages_total
    sb_counter_t *full_syncs;         // sb_gmail_full_syncs_total
    sb_counter_t *stale;              // sb_gmail_stale_pushes_total
    sb_counter_t *tokens;             // sb_gmail_token_requests_total
} sb_gmail_t;

enum { S_R_STORED, S_R_COVERED, S_R_UNKNOWN, S_R_MALFORMED, S_R_REAUTH, S_R_DROPPED, S_R_N };
static const char *const s_results[] = {"enriched",  "covered", "unknown_mailbox",
                                        "malformed", "reauth",  "dropped"};

static void
s_wipe_free(char *text)
{
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
}

static void
s_key(const char *address, char *out, size_t size)
{
    size_t i = 0;
    for (; address[i] != '\0' && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)address[i]);
    out[i] = '\0';
}

// Percent-encode for a URL path segment or query value (RFC 3986 unreserved kept).
static char *
s_escape(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = sb_xmalloc(strlen(text) * 3 + 1), *p = out;
    for (const unsigned char *t = (const unsigned char *)text; *t; t++) {
        if (isalnum(*t) || *t == '-' || *t == '.' || *t == '_' || *t == '~') {
            *p++ = (char)*t;
        } else {
            *p++ = '%';
            *p++ = hex[*t >> 4];
            *p++ = hex[*t & 15];
        }
    }
    *p = '\0';
    return out;
}

// --- Database (synchronous, short statements, bounded by statement_timeout) ----------------

static void
s_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; // e.g. "you don't own a lock" after a reconnect: nothing to act on
}

static void
s_db_close(sb_gmail_t *self)
{
    if (self->db != NULL)
        PQfinish(self->db);
    self->db = NULL;
}

// The connection, made on first use; NULL (and err) when the database is away. After a
// failed attempt, later calls fail fast for SB_GMAIL_DB_RETRY_MS: the loop must not spend
// its time in connect timeouts while the ingress redelivers.
static PGconn *
s_db(sb_gmail_t *self, sb_err_t *err)
{
    if (self->db != NULL && PQstatus(self->db) == CONNECTION_OK)
        return self->db;
    s_db_close(self);
    int64_t now = sb_mono_ms();
    if (self->db_failed_ms != 0 && now - self->db_failed_ms < SB_GMAIL_DB_RETRY_MS) {
        sb_err_set(err, 0, "database unavailable (retrying shortly)");
        return NULL;
    }
    char timeout[32];
    snprintf(timeout, sizeof timeout, "-c statement_timeout=%d", SB_GMAIL_DB_TIMEOUT_MS);
    const char *keys[] = {"connect_timeout", "application_name", "client_encoding",
                          "options",         "dbname",           NULL};
    const char *values[] = {"3", "sb-enricher", "UTF8", timeout, self->conf->database_url, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        char line[SB_ERR_MSG_MAX] = "out of memory";
        if (conn != NULL) {
            snprintf(line, sizeof line, "%s", PQerrorMessage(conn));
            line[strcspn(line, "\r\n")] = '\0';
        }
        sb_err_set(err, 0, "could not connect to the database: %s", line);
        if (conn != NULL)
            PQfinish(conn);
        self->db_failed_ms = now;
        return NULL;
    }
    PQsetNoticeProcessor(conn, s_notice, NULL);
    self->db = conn;
    self->db_failed_ms = 0;
    return conn;
}

// Run one statement; the result when it returned rows, else NULL and err (a lost
// connection is closed so that the next call reconnects).
static PGresult *
s_query(sb_gmail_t *self, const char *sql, int n, const char *const *params, sb_err_t *err)
{
    PGconn *conn = s_db(self, err);
    if (conn == NULL)
        return NULL;
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    sb_err_set(err, 0, "could not read mailboxes: %s: %s", state ? state : "-",
               msg ? msg : "connection lost");
    PQclear(res);
    if (PQstatus(conn) != CONNECTION_OK)
        s_db_close(self);
    return NULL;
}

// 1 locked, 0 held by another session, -1 error.
static int
s_lock(sb_gmail_t *self, const char *key, int unlock, sb_err_t *err)
{
    char cls[16];
    snprintf(cls, sizeof cls, "%d", S_LOCK_CLASS);
    const char *params[] = {cls, key};
    PGresult *res = s_query(self,
                            unlock ? "SELECT pg_advisory_unlock($1::int, hashtext($2))"
                                   : "SELECT pg_try_advisory_lock($1::int, hashtext($2))",
                            2, params, err);
    if (res == NULL)
        return -1;
    int got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return got;
}

// Read the mailbox row into the job. 1 found, 0 unknown, -1 error.
static int
s_read_mailbox(s_job_t *job, sb_err_t *err)
{
    const char *params[] = {job->mb->key};
    PGresult *res = s_query(job->gmail,
                            "SELECT email, refresh_token, history_id FROM mailboxes"
                            " WHERE lower(email) = $1 ORDER BY id LIMIT 1",
                            1, params, err);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        free(job->email);
        s_wipe_free(job->refresh_token);
        job->email = sb_xstrdup(PQgetvalue(res, 0, 0));
        job->refresh_token = PQgetisnull(res, 0, 1) ? NULL : sb_xstrdup(PQgetvalue(res, 0, 1));
        if (job->refresh_token != NULL && sb_secretbox_is_sealed(job->refresh_token)) {
            // Sealed by sbctl or the renewer (context: the address as stored). One that
            // cannot be opened (no key, another key) counts as no token at all.
            char *ctx = sb_xasprintf("mailboxes.refresh_token:%s", job->email);
            sb_err_t why = {0};
            char *plain = sb_secretbox_load(job->gmail->box, job->refresh_token, ctx, &why);
            if (plain == NULL)
                sb_log_warn(job->envs[0]->event_id, "mailbox %s: cannot open its refresh token: %s",
                            job->email, why.msg);
            s_wipe_free(job->refresh_token);
            job->refresh_token = plain;
            free(ctx);
        }
        job->has_checkpoint = !PQgetisnull(res, 0, 2);
        job->checkpoint = job->has_checkpoint ? strtoull(PQgetvalue(res, 0, 2), NULL, 10) : 0;
        OPENSSL_cleanse(PQgetvalue(res, 0, 1), strlen(PQgetvalue(res, 0, 1)));
    }
    PQclear(res);
    return found;
}

// --- Jobs ------------------------------------------------------------------------------------

static void s_job_start(sb_gmail_t *self, s_mailbox_t *mb);
static void s_gate(void *arg);
static void s_token(s_job_t *job);
static void s_history(s_job_t *job);
static void s_full_sync(s_job_t *job);
static void s_gets(s_job_t *job);

static void
s_job_destroy(s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (job == NULL)
        return;
    for (size_t i = 0; i < job->n_envs; i++)
        sb_envelope_destroy(&job->envs[i]);
    free(job->envs);
    for (size_t i = 0; job->msgs != NULL && i < job->ids.n; i++)
        sb_gmail_message_destroy(&job->msgs[i]);
    free(job->msgs);
    free(job->gets);
    free(job->get_state);
    sb_gmail_ids_release(&job->ids);
    free(job->email);
    s_wipe_free(job->refresh_token);
    free(job->page_token);
    free(job->new_history);
    free(job);
    *job_p = NULL;
}

static void
s_count(sb_gmail_t *self, int result, size_t n)
{
    sb_counter_add(self->pushes[result], n);
}

// The job is over: release the lock, free it, start the pushes that waited.
static void
s_job_end(s_job_t *job)
{
    sb_gmail_t *self = job->gmail;
    s_mailbox_t *mb = job->mb;
    if (job->lock_held) {
        sb_err_t err = {0};
        if (s_lock(self, mb->key, 1, &err) < 0)
            sb_log_debug(NULL, "mailbox %s: %s (the lock went with the session)", mb->key, err.msg);
    }
    mb->job = NULL;
    s_job_destroy(&job);
    if (mb->n_waiting > 0)
        s_job_start(self, mb);
    else if (mb->forwarded_history == 0) // unknown or never fetched: nothing worth keeping
        zhashx_delete(self->mailboxes, mb->key);
}

// Give every push of the job up: the ingress sends them again later.
static void
s_job_drop(s_job_t *job, const char *why)
{
    s_count(job->gmail, S_R_DROPPED, job->n_envs);
    sb_log_warn(job->envs[0]->event_id, "mailbox %s: %s", job->mb->key, why);
    for (size_t i = 0; i < job->n_envs; i++)
        sb_enricher_drop(job->gmail->enricher, &job->envs[i], why);
    s_job_end(job);
}

// Pass every push on with an explicit outcome and nothing to store; mailbox_status, if
// set, is written to the mailbox by the leader's row.
static void
s_job_outcome(s_job_t *job, int result, const char *outcome, const char *reason,
              const char *mailbox_status)
{
    for (size_t i = 0; i < job->n_envs; i++) {
        json_t *doc = json_pack("{s:s,s:s}", "outcome", outcome, "reason", reason);
        if (i == 0 && mailbox_status != NULL && job->email != NULL)
            json_object_set_new(
                doc, "mailbox",
                json_pack("{s:s,s:s}", "email", job->email, "status", mailbox_status));
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        sb_enricher_forward(job->gmail->enricher, &job->envs[i], text);
        free(text);
    }
    s_count(job->gmail, result, job->n_envs);
    s_job_end(job);
}

// Remember the first failure of a message fetch: "<what>: <detail>".
static void
s_fail(s_job_t *job, const char *what, const char *detail)
{
    if (!job->failed) {
        job->failed = 1;
        snprintf(job->why, sizeof job->why, "%s: %.200s", what, detail);
    }
}

// The e-mails are in: the leader carries them and the checkpoint, the others are covered.
static void
s_finish(s_job_t *job)
{
    sb_gmail_t *self = job->gmail;
    json_t *comms = json_array();
    size_t n = 0;
    for (size_t i = 0; i < job->ids.n; i++) {
        if (job->msgs[i] != NULL) {
            json_array_append_new(comms, sb_gmail_comm_json(job->msgs[i]));
            n++;
        }
    }
    char *extra = sb_gmail_extra(comms, job->email, job->new_history, job->full_sync);
    sb_log_info(job->envs[0]->event_id,
                "mailbox %s: %zu e-mails, checkpoint %" PRIu64 " -> %s%s%s, %zu push(es), "
                "%lld ms",
                job->mb->key, n, job->checkpoint, job->new_history,
                job->full_sync ? ", full sync" : "", job->truncated ? ", more to come" : "",
                job->n_envs, (long long)(sb_mono_ms() - job->started_ms));
    sb_counter_add(self->messages, n);
    sb_enricher_forward(self->enricher, &job->envs[0], extra);
    free(extra);
    for (size_t i = 1; i < job->n_envs; i++)
        sb_enricher_forward(self->enricher, &job->envs[i],
                            "{\"outcome\":\"ignored\",\"reason\":\"covered_by_earlier_push\"}");
    s_count(self, S_R_STORED, 1);
    s_count(self, S_R_COVERED, job->n_envs - 1);
    job->mb->forwarded_history = strtoull(job->new_history, NULL, 10);
    job->mb->forwarded_ms = sb_mono_ms();
    s_job_end(job);
}

// Start a job with every push that waits for the mailbox.
static void
s_job_start(sb_gmail_t *self, s_mailbox_t *mb)
{
    assert(mb->job == NULL && mb->n_waiting > 0);
    s_job_t *job = sb_xcalloc(1, sizeof *job);
    job->gmail = self;
    job->mb = mb;
    job->envs = mb->waiting;
    job->n_envs = mb->n_waiting;
    mb->waiting = NULL;
    mb->n_waiting = mb->cap_waiting = 0;
    job->started_ms = sb_mono_ms();
    job->lock_deadline_ms = job->started_ms + SB_GMAIL_LOCK_WAIT_MS;
    sb_gmail_ids_init(&job->ids);
    mb->job = job;
    s_gate(job);
}

// Gate: the advisory lock, the mailbox row, and a checkpoint that includes what this
// process passed on last. Re-entered from a timer while waiting.
static void
s_gate(void *arg)
{
    s_job_t *job = arg;
    sb_gmail_t *self = job->gmail;
    sb_err_t err = {0};
    int64_t now = sb_mono_ms();
    if (!job->lock_held && now < job->lock_deadline_ms) {
        int got = s_lock(self, job->mb->key, 0, &err);
        if (got < 0) {
            s_job_drop(job, err.msg);
            return;
        }
        if (got == 0) { // another replica works on this mailbox now
            sb_enricher_timer(self->enricher, SB_GMAIL_LOCK_RETRY_MS, s_gate, job);
            return;
        }
        job->lock_held = 1;
    }
    int found = s_read_mailbox(job, &err);
    if (found < 0) {
        s_job_drop(job, err.msg);
        return;
    }
    if (found == 0) {
        sb_log_info(job->envs[0]->event_id, "push for unknown mailbox %s", job->mb->key);
        s_job_outcome(job, S_R_UNKNOWN, "ignored", "unknown_mailbox", NULL);
        return;
    }
    s_mailbox_t *mb = job->mb;
    if (mb->forwarded_history > job->checkpoint && now - mb->forwarded_ms < SB_GMAIL_CATCHUP_MS) {
        // The writer has not committed our last checkpoint yet: listing from the old
        // one would fetch those e-mails again.
        sb_enricher_timer(self->enricher, SB_GMAIL_CATCHUP_POLL_MS, s_gate, job);
        return;
    }
    if (job->refresh_token == NULL || job->refresh_token[0] == '\0') {
        s_job_outcome(job, S_R_REAUTH, "failed", "mailbox_has_no_refresh_token", NULL);
        return;
    }
    job->step = job->has_checkpoint ? S_STEP_HISTORY : S_STEP_PROFILE;
    job->full_sync = !job->has_checkpoint;
    if (job->full_sync)
        sb_counter_add(self->full_syncs, 1);
    s_token(job);
}

// Continue with the step that needed a token.
static void
s_resume(s_job_t *job)
{
    switch (job->step) {
    case S_STEP_HISTORY:
        s_history(job);
        break;
    case S_STEP_PROFILE:
    case S_STEP_LIST:
        s_full_sync(job);
        break;
    case S_STEP_GETS:
        s_gets(job);
        break;
    }
}

static const char *
s_token_of(s_job_t *job)
{
    return sb_google_oauth_token(job->gmail->oauth, job->mb->key, sb_wall_ms());
}

static void
s_on_token(sb_fetch_req_t *req, void *arg)
{
    s_job_t *job = arg;
    sb_gmail_t *self = job->gmail;
    job->outstanding--;
    size_t len = 0;
    const char *body = sb_fetch_req_body(req, &len);
    sb_err_t err = {0};
    sb_google_oauth_status_t st =
        sb_google_oauth_response(self->oauth, job->mb->key, job->refresh_token,
                                 sb_fetch_req_status(req), body, len, sb_wall_ms(), &err);
    switch (st) {
    case SB_GOOGLE_OAUTH_OK:
        s_resume(job);
        break;
    case SB_GOOGLE_OAUTH_INVALID_GRANT:
        sb_log_error(job->envs[0]->event_id, "mailbox %s: %s", job->mb->key, err.msg);
        s_job_outcome(job, S_R_REAUTH, "failed", "mailbox_reauth_required", "reauth_required");
        break;
    case SB_GOOGLE_OAUTH_CLIENT:
        sb_log_error(job->envs[0]->event_id,
                     "mailbox %s: %s (check GOOGLE_CLIENT_ID and "
                     "GOOGLE_CLIENT_SECRET)",
                     job->mb->key, err.msg);
        s_job_drop(job, "no access token");
        break;
    case SB_GOOGLE_OAUTH_TRANSIENT:
        s_job_drop(job, sb_fetch_req_status(req) == 0 ? sb_fetch_req_error(req) : err.msg);
        break;
    }
}

// Make sure an access token is cached, then resume the job's step.
static void
s_token(s_job_t *job)
{
    sb_gmail_t *self = job->gmail;
    int64_t now = sb_wall_ms();
    if (s_token_of(job) != NULL) {
        s_resume(job);
        return;
    }
    if (sb_google_oauth_blocked(self->oauth, job->mb->key, job->refresh_token, now)) {
        s_job_outcome(job, S_R_REAUTH, "failed", "mailbox_reauth_required", NULL);
        return;
    }
    sb_fetch_req_t *req = sb_fetch_req_new(sb_google_oauth_url(self->oauth));
    char *form = sb_google_oauth_request_body(self->oauth, job->refresh_token);
    sb_fetch_req_form(req, form);
    s_wipe_free(form);
    sb_fetch_req_label(req, "token");
    sb_counter_add(self->tokens, 1);
    job->outstanding++;
    sb_enricher_fetch(self->enricher, req, s_on_token, job);
}

// A Gmail API request of the job, with its token.
static void
s_api(s_job_t *job, char *url, const char *label, sb_fetch_done_fn *done, void *arg)
{
    sb_fetch_req_t *req = sb_fetch_req_new(url);
    free(url);
    const char *token = s_token_of(job);
    sb_fetch_req_bearer(req, token ? token : "");
    sb_fetch_req_label(req, label);
    job->outstanding++;
    sb_enricher_fetch(job->gmail->enricher, req, done, arg);
}

static char *
s_user_url(s_job_t *job, const char *rest)
{
    char *user = s_escape(job->email);
    char *url = sb_xasprintf("%s/gmail/v1/users/%s/%s", job->gmail->base_url, user, rest);
    free(user);
    return url;
}

// A 401: the token went stale early (revoked, rotated). One new token per job.
static int
s_renew_token(s_job_t *job)
{
    if (job->token_renewed)
        return -1;
    job->token_renewed = 1;
    sb_google_oauth_invalidate(job->gmail->oauth, job->mb->key);
    s_token(job);
    return 0;
}

// More messages than one push may carry: keep whole history records up to the limit,
// and make the last kept record the checkpoint, so the next push continues there.
static void
s_truncate(s_job_t *job)
{
    sb_gmail_ids_t *ids = &job->ids;
    size_t max = (size_t)job->gmail->conf->gmail_max_messages, k = max;
    while (k > 0 && k < ids->n && ids->records[k - 1] && ids->records[k] &&
           strcmp(ids->records[k - 1], ids->records[k]) == 0)
        k--;
    if (k == 0) // one record holds more than the limit: take it whole
        for (k = 1; k < ids->n && strcmp(ids->records[k - 1], ids->records[k]) == 0; k++)
            ;
    if (k >= ids->n || ids->records[k - 1] == NULL)
        return;
    for (size_t i = k; i < ids->n; i++) {
        json_object_del(ids->seen, ids->ids[i]);
        free(ids->ids[i]);
        free(ids->records[i]);
    }
    ids->n = k;
    free(job->new_history);
    job->new_history = sb_xstrdup(ids->records[k - 1]);
    job->truncated = 1;
}

static void
s_on_history(sb_fetch_req_t *req, void *arg)
{
    s_job_t *job = arg;
    job->outstanding--;
    long status = sb_fetch_req_status(req);
    size_t len = 0;
    const char *body = sb_fetch_req_body(req, &len);
    if (status == 401 && s_renew_token(job) == 0)
        return;
    if (status == 404 || status == 400) { // checkpoint too old (or never valid): full sync
        sb_log_info(job->envs[0]->event_id,
                    "mailbox %s: history from %" PRIu64 " is gone (HTTP %ld); listing recent "
                    "INBOX messages instead",
                    job->mb->key, job->checkpoint, status);
        sb_counter_add(job->gmail->full_syncs, 1);
        job->full_sync = 1;
        job->step = S_STEP_PROFILE;
        sb_gmail_ids_release(&job->ids); // nothing from a partial walk is kept
        sb_gmail_ids_init(&job->ids);
        s_full_sync(job);
        return;
    }
    if (status != 200) {
        char why[96];
        snprintf(why, sizeof why, "history.list: %s%ld", status ? "HTTP " : "",
                 status ? status : 0L);
        s_job_drop(job, status ? why : sb_fetch_req_error(req));
        return;
    }
    char *next = NULL, *history = NULL;
    sb_err_t err = {0};
    if (sb_gmail_history_page(body, len, &job->ids, &next, &history, &err) != 0) {
        s_job_drop(job, err.msg);
        return;
    }
    job->pages++;
    free(job->page_token);
    job->page_token = next;
    free(job->new_history);
    job->new_history = history;
    if (job->ids.n > (size_t)job->gmail->conf->gmail_max_messages) {
        s_truncate(job);
        free(job->page_token);
        job->page_token = NULL;
    } else if (job->page_token != NULL && job->pages >= SB_GMAIL_MAX_PAGES) {
        s_job_drop(job, "history.list: too many pages");
        return;
    }
    if (job->page_token != NULL)
        s_history(job);
    else
        s_gets(job);
}

static void
s_history(s_job_t *job)
{
    job->step = S_STEP_HISTORY;
    char *page = job->page_token ? s_escape(job->page_token) : NULL;
    char *rest = sb_xasprintf("history?startHistoryId=%" PRIu64 "&historyTypes=messageAdded"
                              "&maxResults=%d%s%s",
                              job->checkpoint, SB_GMAIL_HISTORY_PAGE_SIZE,
                              page ? "&pageToken=" : "", page ? page : "");
    free(page);
    s_api(job, s_user_url(job, rest), "history", s_on_history, job);
    free(rest);
}

static void
s_on_full_sync(sb_fetch_req_t *req, void *arg)
{
    s_job_t *job = arg;
    job->outstanding--;
    long status = sb_fetch_req_status(req);
    size_t len = 0;
    const char *body = sb_fetch_req_body(req, &len);
    if (status == 401 && s_renew_token(job) == 0)
        return;
    if (status != 200) {
        char why[96];
        snprintf(why, sizeof why, "%s: HTTP %ld",
                 job->step == S_STEP_PROFILE ? "users.getProfile" : "messages.list", status);
        s_job_drop(job, status ? why : sb_fetch_req_error(req));
        return;
    }
    sb_err_t err = {0};
    if (job->step == S_STEP_PROFILE) {
        free(job->new_history);
        if (sb_gmail_profile_history(body, len, &job->new_history, &err) != 0) {
            s_job_drop(job, err.msg);
            return;
        }
        job->step = S_STEP_LIST;
        s_full_sync(job);
        return;
    }
    if (sb_gmail_message_list(body, len, &job->ids, &err) != 0) {
        s_job_drop(job, err.msg);
        return;
    }
    s_gets(job);
}

// Full sync: the profile's historyId first (so nothing that arrives while we list is
// missed: the next push starts there), then the most recent INBOX messages.
static void
s_full_sync(s_job_t *job)
{
    char *url;
    if (job->step == S_STEP_PROFILE) {
        url = s_user_url(job, "profile");
    } else {
        char rest[96];
        snprintf(rest, sizeof rest, "messages?labelIds=INBOX&maxResults=%d",
                 (int)job->gmail->conf->gmail_full_sync_max);
        url = s_user_url(job, rest);
    }
    s_api(job, url, job->step == S_STEP_PROFILE ? "profile" : "list", s_on_full_sync, job);
}

// Every message fetch has answered: finish, fetch the 401s again with a new token, or
// give up.
static void
s_gets_settled(s_job_t *job)
{
    if (job->failed) {
        s_job_drop(job, job->why);
        return;
    }
    for (size_t i = 0; i < job->ids.n; i++) {
        if (job->get_state[i] == S_GET_AGAIN) {
            job->next_get = 0; // s_gets, after the new token, looks for them again
            if (s_renew_token(job) != 0)
                s_job_drop(job, "messages.get: HTTP 401 with a new token");
            return;
        }
    }
    s_finish(job);
}

static void s_gets_pump(s_job_t *job);

static void
s_on_message(sb_fetch_req_t *req, void *arg)
{
    s_get_t *get = arg;
    s_job_t *job = get->job;
    job->outstanding--;
    long status = sb_fetch_req_status(req);
    size_t len = 0;
    const char *body = sb_fetch_req_body(req, &len);
    if (status == 200) {
        sb_err_t err = {0};
        job->msgs[get->index] = sb_gmail_message_parse(body, len, &err);
        if (job->msgs[get->index] == NULL)
            s_fail(job, "messages.get", err.msg);
    } else if (status == 401) {
        job->get_state[get->index] = S_GET_AGAIN;
    } else if (status != 404) { // 404: deleted since it was added; nothing to store
        char code[32];
        snprintf(code, sizeof code, "HTTP %ld", status);
        s_fail(job, "messages.get", status ? code : sb_fetch_req_error(req));
    }
    if (!job->failed) // after a failure the job is given up: start nothing more
        s_gets_pump(job);
    if (job->outstanding == 0)
        s_gets_settled(job);
}

// Start message fetches up to SB_GMAIL_GETS_PER_MAILBOX at once, in history order.
static void
s_gets_pump(s_job_t *job)
{
    while (job->outstanding < SB_GMAIL_GETS_PER_MAILBOX && job->next_get < job->ids.n) {
        size_t i = job->next_get++;
        if (job->get_state[i] == S_GET_ASKED)
            continue; // answered or on its way
        job->get_state[i] = S_GET_ASKED;
        job->gets[i].job = job;
        job->gets[i].index = i;
        char *rest = sb_xasprintf("messages/%s?format=full", job->ids.ids[i]);
        s_api(job, s_user_url(job, rest), "message", s_on_message, &job->gets[i]);
        free(rest);
    }
}

// Fetch every message not asked for yet (all of them the first time; those that got a
// 401 after a new token).
static void
s_gets(s_job_t *job)
{
    job->step = S_STEP_GETS;
    size_t n = job->ids.n;
    if (job->msgs == NULL && n > 0) {
        job->msgs = sb_xcalloc(n, sizeof *job->msgs);
        job->gets = sb_xcalloc(n, sizeof *job->gets);
        job->get_state = sb_xcalloc(n, 1);
    }
    s_gets_pump(job);
    if (job->outstanding == 0)
        s_finish(job); // nothing added: the cheap case of a stale or repeated push
}

// --- The handler ---------------------------------------------------------------------------

static void
s_mailbox_destroy(void **item)
{
    s_mailbox_t *mb = *item;
    if (mb == NULL)
        return;
    s_job_destroy(&mb->job);
    for (size_t i = 0; i < mb->n_waiting; i++)
        sb_envelope_destroy(&mb->waiting[i]);
    free(mb->waiting);
    free(mb->key);
    free(mb);
    *item = NULL;
}

void *
sb_gmail_handler_new(sb_enricher_t *enricher, sb_err_t *err)
{
    const sb_enricher_config_t *conf = sb_enricher_config(enricher);
    sb_secretbox_t *box = NULL;
    if (conf->secret_key != NULL && *conf->secret_key != '\0') {
        box = sb_secretbox_new(conf->secret_key, err); // a bad key stops the enricher
        if (box == NULL)
            return NULL;
    }
    sb_gmail_t *self = sb_xcalloc(1, sizeof *self);
    self->box = box;
    self->enricher = enricher;
    self->conf = conf;
    self->base_url = sb_xstrdup(conf->gmail_api_base_url);
    size_t len = strlen(self->base_url);
    while (len > 0 && self->base_url[len - 1] == '/')
        self->base_url[--len] = '\0';
    self->oauth = sb_google_oauth_new(conf->google_token_url, conf->google_client_id,
                                      conf->google_client_secret);
    self->mailboxes = zhashx_new();
    zhashx_set_destructor(self->mailboxes, s_mailbox_destroy);
    sb_metrics_t *m = sb_enricher_metrics(enricher);
    char labels[64];
    for (int i = 0; i < S_R_N; i++) {
        snprintf(labels, sizeof labels, "result=\"%s\"", s_results[i]);
        self->pushes[i] =
            sb_metrics_counter(m, "sb_gmail_pushes_total", "Gmail pushes, by result", labels);
    }
    self->messages =
        sb_metrics_counter(m, "sb_gmail_messages_total", "e-mails fetched and passed on", "");
    self->full_syncs = sb_metrics_counter(m, "sb_gmail_full_syncs_total",
                                          "history gone or no checkpoint: INBOX listed", "");
    self->stale = sb_metrics_counter(m, "sb_gmail_stale_pushes_total",
                                     "pushes whose historyId was not past the checkpoint", "");
    self->tokens = sb_metrics_counter(m, "sb_gmail_token_requests_total",
                                      "OAuth refresh-token grants requested", "");
    if (conf->google_client_id == NULL || conf->google_client_secret == NULL)
        sb_log_warn(NULL, "GOOGLE_CLIENT_ID or GOOGLE_CLIENT_SECRET is not set: Google will "
                          "refuse to renew access tokens");
    return self;
}

void
sb_gmail_handler_destroy(void **state_p)
{
    sb_gmail_t *self = *state_p;
    if (self == NULL)
        return;
    zhashx_destroy(&self->mailboxes);
    sb_google_oauth_destroy(&self->oauth);
    sb_secretbox_destroy(&self->box);
    s_db_close(self);
    free(self->base_url);
    free(self);
    *state_p = NULL;
}

void
sb_gmail_handler_handle(void *state, sb_enricher_t *enricher, sb_envelope_t *env)
{
    sb_gmail_t *self = state;
    char *email = NULL, *history = NULL;
    sb_err_t err = {0};
    if (sb_gmail_pubsub_decode(env->body, env->body_len, &email, &history, &err) != 0) {
        sb_log_info(env->event_id, "malformed Gmail push: %s", err.msg);
        s_count(self, S_R_MALFORMED, 1);
        sb_enricher_forward(enricher, &env,
                            "{\"outcome\":\"rejected\",\"reason\":\"malformed_push\"}");
        return;
    }
    char key[S_EMAIL_MAX + 1];
    s_key(email, key, sizeof key);
    s_mailbox_t *mb = zhashx_lookup(self->mailboxes, key);
    if (mb == NULL) {
        mb = sb_xcalloc(1, sizeof *mb);
        mb->key = sb_xstrdup(key);
        zhashx_insert(self->mailboxes, key, mb);
    }
    uint64_t pushed = strtoull(history, NULL, 10);
    if (mb->forwarded_history != 0 && pushed <= mb->forwarded_history)
        sb_counter_add(self->stale, 1); // still listed: an earlier push may have been lost
    sb_log_debug(env->event_id, "Gmail push for %s, historyId %s", key, history);
    free(email);
    free(history);
    if (mb->n_waiting == mb->cap_waiting) {
        mb->cap_waiting = mb->cap_waiting ? mb->cap_waiting * 2 : 4;
        mb->waiting = sb_xrealloc(mb->waiting, mb->cap_waiting * sizeof *mb->waiting);
    }
    mb->waiting[mb->n_waiting++] = env;
    if (mb->job == NULL)
        s_job_start(self, mb);
}
