/* enrich_ringcentral - message-store notifications to fetched SMS rows (see the header).
 * A job per event: it waits for the shared token when there is none, then fetches its
 * messages at once; it ends when every message has a final state, and only then leaves:
 * forwarded with its rows, or dropped for redelivery when a fetch failed transiently. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "enrich_ringcentral.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_ringcentral.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_ID_MAX 20 // digits of a RingCentral message id (int64)

typedef enum {
    S_WAIT = 0, // needs a token, then a fetch
    S_RUNNING,  // fetch in flight
    S_OK,       // record in hand
    S_GONE,     // 404: deleted meanwhile, or never there
    S_REFUSED,  // another 4xx: not ours to read
    S_BAD,      // an answer that is not an SMS record
    S_FAILED,   // transient failure after the retries: the event goes back
} s_msg_state_t;

typedef struct s_rc s_rc_t;
typedef struct s_job s_job_t;

typedef struct {
    s_job_t *job;        // owner
    size_t index;        // into the job's ids
    s_msg_state_t state; // see above
    int refreshed;       // already asked again after a 401
    uint64_t serial;     // token serial the fetch was made with
    json_t *row;         // S_OK: the communications row
} s_msg_t;

struct s_job {
    s_rc_t *rc;              // the handler
    sb_envelope_t *env;      // owned until forwarded or dropped
    sb_rc_changes_t changes; // what to fetch
    s_msg_t *msgs;           // one per id
    size_t pending;          // messages without a final state
    int waiting;             // in rc->wait
    s_job_t *next_wait;      // token wait list
    s_job_t *prev, *next;    // every live job, so destroy can free them
};

struct s_rc {
    sb_enricher_t *enricher;          // borrowed
    const sb_enricher_config_t *conf; // borrowed
    char *basic;                      // "Basic ..." of the token request (secret), NULL: off
    char *token;                      // access token (secret), or NULL
    int64_t token_until_ms;           // monotonic: not used after this
    uint64_t token_serial;            // bumped for every new token
    int token_pending;                // a token request is running
    int64_t blocked_until_ms;         // after a refused token request
    s_job_t *wait_head, *wait_tail;   // jobs waiting for a token
    s_job_t *jobs;                    // every live job
    sb_counter_t *fetched[5];         // sb_rc_messages_total{result}
    sb_counter_t *tokens[3];          // sb_rc_token_requests_total{result}
};

static const char *const s_msg_results[] = {"ok", "not_found", "refused", "unrecognized", "failed"};
static const char *const s_token_results[] = {"ok", "refused", "failed"};

static void
s_wipe(char **secret)
{
    if (*secret) {
        memset(*secret, 0, strlen(*secret));
        free(*secret);
        *secret = NULL;
    }
}

// --- Pure pieces ------------------------------------------------------------------------

// The exact decimal text of an id sent as a JSON integer or a string of digits, or NULL.
static char *
s_id_text(const json_t *value)
{
    if (json_is_integer(value) && json_integer_value(value) >= 0)
        return sb_xasprintf("%lld", (long long)json_integer_value(value));
    const char *text = json_string_value(value);
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len > S_ID_MAX || strspn(text, "0123456789") != len)
        return NULL;
    return sb_xstrdup(text);
}

static void
s_add_id(sb_rc_changes_t *out, char *id)
{
    for (size_t i = 0; i < out->n_ids; i++) {
        if (strcmp(out->ids[i], id) == 0) { // announced twice: fetched once
            free(id);
            return;
        }
    }
    out->ids = sb_xrealloc(out->ids, (out->n_ids + 1) * sizeof *out->ids);
    out->ids[out->n_ids++] = id;
}

// Whether body has the 9 bytes "changes" (with the quotes) anywhere.
static int
s_mentions_changes(const char *body, size_t len)
{
    static const char key[] = "\"changes\"";
    const size_t n = sizeof key - 1;
    for (const char *p = body, *end = body + len; (size_t)(end - p) >= n; p++) {
        p = memchr(p, '"', (size_t)(end - p) - (n - 1));
        if (p == NULL)
            return 0;
        if (memcmp(p, key, n) == 0)
            return 1;
    }
    return 0;
}

int
sb_rc_changes_parse(const char *body, size_t len, sb_rc_changes_t *out)
{
    memset(out, 0, sizeof *out);
    // Most notifications are instant SMS, which carry the message itself and have no
    // "changes" member: no parse for them (it was 40% of the enricher's CPU under load).
    // A member name written with \u escapes is not seen here: such a notification goes
    // on as an instant SMS and the writer stores it as failed, nothing worse.
    if (!s_mentions_changes(body, len))
        return 0;
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *msg = json_object_get(root, "body");
    const json_t *changes = json_object_get(msg, "changes");
    if (!json_is_array(changes)) {
        json_decref(root);
        return 0;
    }
    out->account_id = s_id_text(json_object_get(msg, "accountId"));
    out->extension_id = s_id_text(json_object_get(msg, "extensionId"));
    size_t i;
    const json_t *change;
    json_array_foreach(changes, i, change)
    {
        const char *type = json_string_value(json_object_get(change, "type"));
        if (type == NULL || strcmp(type, "SMS") != 0)
            continue; // Fax, VoiceMail, Pager: not what this pipeline stores
        size_t j;
        const json_t *value;
        json_array_foreach(json_object_get(change, "newMessageIds"), j, value)
        {
            char *id = s_id_text(value);
            if (id != NULL && out->n_ids < SB_RC_MAX_IDS)
                s_add_id(out, id);
            else
                free(id);
        }
    }
    json_decref(root);
    return 1;
}

void
sb_rc_changes_release(sb_rc_changes_t *self)
{
    for (size_t i = 0; i < self->n_ids; i++)
        free(self->ids[i]);
    free(self->ids);
    free(self->account_id);
    free(self->extension_id);
    memset(self, 0, sizeof *self);
}

// The number of a party ({phoneNumber, extensionNumber ...}), or NULL.
static const char *
s_party_number(const json_t *party)
{
    const char *number = json_string_value(json_object_get(party, "phoneNumber"));
    if (number == NULL || *number == '\0')
        number = json_string_value(json_object_get(party, "extensionNumber"));
    return number && *number ? number : NULL;
}

// E.164 when the number is a phone number, else the raw text; JSON null when absent.
static json_t *
s_address(const char *number, const char *default_cc)
{
    if (number == NULL)
        return json_null();
    char e164[SB_PHONE_E164_MAX];
    if (sb_phone_e164(number, default_cc, e164, sizeof e164) == 0)
        return json_string(e164);
    return json_string(number);
}

static json_t *
s_string_or_null(const json_t *obj, const char *key)
{
    const char *text = json_string_value(json_object_get(obj, key));
    return text ? json_string(text) : json_null();
}

json_t *
sb_rc_sms_row(const json_t *record, const char *id, const char *default_cc)
{
    const char *type = json_string_value(json_object_get(record, "type"));
    const char *direction = json_string_value(json_object_get(record, "direction"));
    const char *from = s_party_number(json_object_get(record, "from"));
    const char *to = s_party_number(json_array_get(json_object_get(record, "to"), 0));
    if (!json_is_object(record) || (type && strcmp(type, "SMS") != 0) || direction == NULL ||
        from == NULL)
        return NULL;
    int inbound;
    if (strcasecmp(direction, "Inbound") == 0)
        inbound = 1;
    else if (strcasecmp(direction, "Outbound") == 0)
        inbound = 0;
    else
        return NULL;
    char *thread = s_id_text(json_object_get(json_object_get(record, "conversation"), "id"));
    if (thread == NULL)
        thread = s_id_text(json_object_get(record, "conversationId"));
    json_t *row = json_object();
    json_object_set_new(row, "channel", json_string("sms"));
    json_object_set_new(row, "direction", json_string(inbound ? "inbound" : "outbound"));
    json_object_set_new(row, "provider", json_string("ringcentral"));
    json_object_set_new(row, "external_id", json_string(id));
    json_object_set_new(row, "thread_id", thread ? json_string(thread) : json_null());
    json_object_set_new(row, "from_address", s_address(from, default_cc));
    json_object_set_new(row, "to_address", s_address(to, default_cc));
    json_object_set_new(row, "subject", json_null());
    json_object_set_new(row, "body", s_string_or_null(record, "subject")); // the SMS text
    json_object_set_new(row, "status", s_string_or_null(record, "messageStatus"));
    json_object_set_new(row, "occurred_at", s_string_or_null(record, "creationTime"));
    // Inbound SMS match on the sender, outbound on the recipient (SPEC).
    const char *match = inbound ? from : to;
    json_object_set_new(row, "match_phone", match ? json_string(match) : json_null());
    json_object_set_new(row, "match_email", json_null());
    free(thread);
    return row;
}

// --- Jobs -----------------------------------------------------------------------------

static void
s_job_free(s_job_t *job)
{
    s_rc_t *rc = job->rc;
    if (job->prev)
        job->prev->next = job->next;
    else
        rc->jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    for (size_t i = 0; i < job->changes.n_ids; i++)
        json_decref(job->msgs[i].row);
    free(job->msgs);
    sb_rc_changes_release(&job->changes);
    sb_envelope_destroy(&job->env);
    free(job);
}

// Pass env on with extra, and free the job.
static void
s_job_forward(s_job_t *job, json_t *extra)
{
    char *text = json_dumps(extra, JSON_COMPACT);
    json_decref(extra);
    if (text == NULL)
        abort(); // jansson fails only when out of memory
    sb_enricher_forward(job->rc->enricher, &job->env, text);
    free(text);
    s_job_free(job);
}

static json_t *
s_outcome(const char *outcome, const char *reason)
{
    return json_pack("{s:[], s:s, s:s}", "communications", "outcome", outcome, "reason", reason);
}

// Every message has a final state: forward the rows, or drop the event for redelivery.
static void
s_job_finish(s_job_t *job)
{
    size_t count[S_FAILED + 1] = {0};
    json_t *rows = json_array();
    for (size_t i = 0; i < job->changes.n_ids; i++) {
        count[job->msgs[i].state]++;
        if (job->msgs[i].state == S_OK)
            json_array_append(rows, job->msgs[i].row);
    }
    if (count[S_FAILED] > 0) {
        json_decref(rows);
        char why[128];
        snprintf(why, sizeof why, "%zu of %zu messages could not be fetched from RingCentral",
                 count[S_FAILED], job->changes.n_ids);
        sb_enricher_drop(job->rc->enricher, &job->env, why);
        s_job_free(job);
        return;
    }
    if (json_array_size(rows) > 0) {
        s_job_forward(job, json_pack("{s:o}", "communications", rows));
        return;
    }
    json_decref(rows);
    if (count[S_REFUSED] > 0)
        s_job_forward(job, s_outcome("failed", "message_fetch_refused"));
    else if (count[S_BAD] > 0)
        s_job_forward(job, s_outcome("failed", "unrecognized_message"));
    else
        s_job_forward(job, s_outcome("ignored", "message_not_found"));
}

static void
s_msg_final(s_msg_t *m, s_msg_state_t state)
{
    static const size_t result[] = {
        [S_OK] = 0, [S_GONE] = 1, [S_REFUSED] = 2, [S_BAD] = 3, [S_FAILED] = 4};
    m->state = state;
    sb_counter_add(m->job->rc->fetched[result[state]], 1);
    if (--m->job->pending == 0)
        s_job_finish(m->job);
}

static void s_need_token(s_rc_t *rc, s_job_t *job);

static void
s_on_message(sb_fetch_req_t *req, void *arg)
{
    s_msg_t *m = arg;
    s_job_t *job = m->job;
    s_rc_t *rc = job->rc;
    const char *id = job->changes.ids[m->index];
    long status = sb_fetch_req_status(req);
    if (status == 200) {
        size_t len;
        const char *body = sb_fetch_req_body(req, &len);
        json_t *record = json_loadb(body, len, 0, NULL);
        m->row = sb_rc_sms_row(record, id, rc->conf->default_cc);
        json_decref(record);
        if (m->row == NULL)
            sb_log_warn(job->env->event_id, "message %s is not an SMS record; left out", id);
        s_msg_final(m, m->row ? S_OK : S_BAD);
    } else if (status == 401 && !m->refreshed) {
        // The token was revoked or expired early: a new one, and this message once more.
        m->refreshed = 1;
        if (m->serial == rc->token_serial)
            s_wipe(&rc->token);
        m->state = S_WAIT;
        s_need_token(rc, job);
    } else if (status == 404) {
        sb_log_info(job->env->event_id, "message %s is not in the message store; left out", id);
        s_msg_final(m, S_GONE);
    } else if (status >= 400 && status < 500 && status != 401 && status != 408 && status != 429) {
        sb_log_warn(job->env->event_id, "RingCentral refused message %s: HTTP %ld", id, status);
        s_msg_final(m, S_REFUSED);
    } else {
        if (status)
            sb_log_warn(job->env->event_id, "could not fetch message %s: HTTP %ld after %d tries",
                        id, status, sb_fetch_req_attempts(req));
        else
            sb_log_warn(job->env->event_id, "could not fetch message %s: %s after %d tries", id,
                        sb_fetch_req_error(req), sb_fetch_req_attempts(req));
        s_msg_final(m, S_FAILED);
    }
}

static void
s_fetch_message(s_rc_t *rc, s_msg_t *m)
{
    s_job_t *job = m->job;
    char *path = sb_ringcentral_message_path(job->changes.account_id, job->changes.extension_id,
                                             job->changes.ids[m->index]);
    assert(path); // the ids were checked by sb_rc_changes_parse
    char *url = sb_xasprintf("%s%s", rc->conf->rc_server_url, path);
    sb_fetch_req_t *req = sb_fetch_req_new(url);
    sb_fetch_req_bearer(req, rc->token);
    sb_fetch_req_label(req, "rc_message");
    m->state = S_RUNNING;
    m->serial = rc->token_serial;
    sb_enricher_fetch(rc->enricher, req, s_on_message, m);
    free(url);
    free(path);
}

// The token is there: fetch every message of job that waits for one.
static void
s_job_run(s_rc_t *rc, s_job_t *job)
{
    for (size_t i = 0; i < job->changes.n_ids; i++)
        if (job->msgs[i].state == S_WAIT)
            s_fetch_message(rc, &job->msgs[i]);
}

// No token can be had now: every waiting message fails, and its event goes back.
static void
s_job_fail_waiting(s_job_t *job)
{
    for (size_t i = 0; i < job->changes.n_ids && job->pending > 0; i++) {
        if (job->msgs[i].state != S_WAIT)
            continue;
        // The last final state may finish (and free) the job: stop looking at it then.
        int last = job->pending == 1;
        s_msg_final(&job->msgs[i], S_FAILED);
        if (last)
            return;
    }
}

static void s_token_request(s_rc_t *rc);

static void
s_need_token(s_rc_t *rc, s_job_t *job)
{
    if (rc->token && sb_mono_ms() < rc->token_until_ms) {
        s_job_run(rc, job);
        return;
    }
    s_wipe(&rc->token);
    if (sb_mono_ms() < rc->blocked_until_ms) {
        s_job_fail_waiting(job);
        return;
    }
    if (!job->waiting) {
        job->waiting = 1;
        job->next_wait = NULL;
        if (rc->wait_tail)
            rc->wait_tail->next_wait = job;
        else
            rc->wait_head = job;
        rc->wait_tail = job;
    }
    if (!rc->token_pending)
        s_token_request(rc);
}

static void
s_on_token(sb_fetch_req_t *req, void *arg)
{
    s_rc_t *rc = arg;
    rc->token_pending = 0;
    size_t len;
    const char *body = sb_fetch_req_body(req, &len);
    long status = sb_fetch_req_status(req);
    sb_err_t err = {0};
    int64_t lifetime_ms = 0;
    char *token = NULL;
    int ok = status != 0 &&
             sb_ringcentral_token_parse(status, body, len, &token, &lifetime_ms, &err) == 0;
    if (ok) {
        rc->token = token;
        rc->token_until_ms = sb_mono_ms() + lifetime_ms;
        rc->token_serial++;
        sb_counter_add(rc->tokens[0], 1);
    } else if (status == 0 || status == 200 || status == 408 || status == 429 || status >= 500) {
        sb_counter_add(rc->tokens[2], 1);
        if (status == 0)
            sb_log_warn(NULL, "could not get a RingCentral access token: %s after %d tries",
                        sb_fetch_req_error(req), sb_fetch_req_attempts(req));
        else if (status == 200)
            sb_log_warn(NULL, "could not get a RingCentral access token: %s", err.msg);
        else
            sb_log_warn(NULL, "could not get a RingCentral access token: HTTP %ld after %d tries",
                        status, sb_fetch_req_attempts(req));
    } else {
        // Wrong credentials will not fix themselves: ask again only after a while, and
        // meanwhile let the ingress keep the events.
        sb_counter_add(rc->tokens[1], 1);
        rc->blocked_until_ms = sb_mono_ms() + SB_RC_TOKEN_BLOCK_MS;
        sb_log_error(NULL,
                     "%s; check RINGCENTRAL_CLIENT_ID, RINGCENTRAL_CLIENT_SECRET and "
                     "RINGCENTRAL_JWT (no new request for %d s)",
                     err.msg, SB_RC_TOKEN_BLOCK_MS / 1000);
    }
    // Take the whole list first: finishing a job frees it, and a 401 in a callback of a
    // fetch started here may queue a job again.
    s_job_t *job = rc->wait_head;
    rc->wait_head = rc->wait_tail = NULL;
    while (job != NULL) {
        s_job_t *next = job->next_wait;
        job->waiting = 0;
        if (ok)
            s_job_run(rc, job);
        else
            s_job_fail_waiting(job);
        job = next;
    }
}

static void
s_token_request(s_rc_t *rc)
{
    char *url = sb_xasprintf("%s/restapi/oauth/token", rc->conf->rc_server_url);
    char *form = sb_ringcentral_token_form(rc->conf->rc_jwt);
    sb_fetch_req_t *req = sb_fetch_req_new(url);
    sb_fetch_req_authorization(req, rc->basic);
    sb_fetch_req_form(req, form);
    sb_fetch_req_label(req, "rc_token");
    rc->token_pending = 1;
    sb_enricher_fetch(rc->enricher, req, s_on_token, rc);
    s_wipe(&form);
    free(url);
}

// --- The handler ------------------------------------------------------------------------

void *
sb_rc_handler_new(sb_enricher_t *enricher, sb_err_t *err)
{
    (void)err;
    s_rc_t *rc = sb_xcalloc(1, sizeof *rc);
    rc->enricher = enricher;
    rc->conf = sb_enricher_config(enricher);
    if (sb_config_is_set(rc->conf->rc_client_id) && sb_config_is_set(rc->conf->rc_client_secret) &&
        sb_config_is_set(rc->conf->rc_jwt))
        rc->basic =
            sb_ringcentral_basic_credentials(rc->conf->rc_client_id, rc->conf->rc_client_secret);
    else
        sb_log_warn(NULL, "RINGCENTRAL_CLIENT_ID, RINGCENTRAL_CLIENT_SECRET or RINGCENTRAL_JWT "
                          "is not set: message-store SMS notifications cannot be fetched and "
                          "are stored as failed");
    sb_metrics_t *m = sb_enricher_metrics(enricher);
    char labels[64];
    for (size_t i = 0; i < sizeof s_msg_results / sizeof s_msg_results[0]; i++) {
        snprintf(labels, sizeof labels, "result=\"%s\"", s_msg_results[i]);
        rc->fetched[i] = sb_metrics_counter(m, "sb_rc_messages_total",
                                            "message-store records fetched, by result", labels);
    }
    for (size_t i = 0; i < sizeof s_token_results / sizeof s_token_results[0]; i++) {
        snprintf(labels, sizeof labels, "result=\"%s\"", s_token_results[i]);
        rc->tokens[i] = sb_metrics_counter(m, "sb_rc_token_requests_total",
                                           "RingCentral token requests, by result", labels);
    }
    return rc;
}

void
sb_rc_handler_destroy(void **state_p)
{
    s_rc_t *rc = *state_p;
    if (rc == NULL)
        return;
    while (rc->jobs != NULL) // their fetches were abandoned with the stage's client
        s_job_free(rc->jobs);
    s_wipe(&rc->token);
    s_wipe(&rc->basic);
    free(rc);
    *state_p = NULL;
}

void
sb_rc_handler_handle(void *state, sb_enricher_t *enricher, sb_envelope_t *env)
{
    s_rc_t *rc = state;
    sb_rc_changes_t changes;
    if (!sb_rc_changes_parse(env->body, env->body_len, &changes)) {
        sb_rc_changes_release(&changes);
        sb_enricher_forward(enricher, &env, NULL); // instant SMS and the rest: as they are
        return;
    }
    const char *extra = NULL;
    if (changes.n_ids == 0)
        extra = "{\"communications\":[],\"outcome\":\"ignored\",\"reason\":\"no_new_messages\"}";
    else if (rc->basic == NULL)
        extra = "{\"communications\":[],\"outcome\":\"failed\","
                "\"reason\":\"ringcentral_api_not_configured\"}";
    if (extra != NULL) {
        sb_rc_changes_release(&changes);
        sb_enricher_forward(enricher, &env, extra);
        return;
    }
    s_job_t *job = sb_xcalloc(1, sizeof *job);
    job->rc = rc;
    job->env = env;
    job->changes = changes;
    job->msgs = sb_xcalloc(changes.n_ids, sizeof *job->msgs);
    for (size_t i = 0; i < changes.n_ids; i++)
        job->msgs[i] = (s_msg_t){.job = job, .index = i, .state = S_WAIT};
    job->pending = changes.n_ids;
    job->next = rc->jobs;
    if (rc->jobs)
        rc->jobs->prev = job;
    rc->jobs = job;
    s_need_token(rc, job);
}
