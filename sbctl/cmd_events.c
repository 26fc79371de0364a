/* cmd_events - sbctl events (what webhook_events holds) and sbctl replay (post stored raw
 * requests through the pipeline again).
 *
 * A replay is a new request to the ingress: it gets a new event id and its own
 * webhook_events row, and travels the whole pipeline (verification included). It is
 * idempotent by design: the communication is keyed by the provider's id, so replaying an
 * event that was stored already, or twice, only adds 'duplicate' rows. The stored headers
 * had their secrets redacted, so sbctl adds the configured ones again (see
 * sb_sbctl_replay_request). A 'rejected' event may have been a forgery: replaying it would
 * vouch for it with our token, so it takes --include-rejected. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "renewer_db.h"
#include "sbctl.h"
#include "sb_mem.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_PROGRESS_EVERY_S 1.0 // a progress line this often during a replay
#define S_PROGRESS_MIN 20      // ... when it has at least this many events

static const char s_events_usage[] =
    "usage: sbctl events [--outcome OUTCOME] [--since WHEN] [--source SOURCE]\n"
    "                    [--limit N] [--json]\n"
    "\n"
    "Stored webhook events (webhook_events), oldest first: the newest N (default 50) of\n"
    "those that match. OUTCOME: stored, duplicate, rejected, ignored, failed. SOURCE:\n"
    "ringcentral_sms, ringcentral_call, gmail_push. WHEN: a duration back from now (90s,\n"
    "15m, 2h, 7d) or a timestamp (2026-11-24, '2026-11-24 15:00+00'). --json: one JSON\n"
    "object per line.\n";

static const char s_replay_usage[] =
    "usage: sbctl replay EVENT_ID...\n"
    "       sbctl replay --outcome OUTCOME [--since WHEN] [--source SOURCE] [--limit N]\n"
    "       (either form: [--include-rejected] [--dry-run])\n"
    "\n"
    "The filters are those of sbctl events; --limit N replays the oldest N that match.\n"
    "\n"
    "Post stored raw requests to the ingress (INGRESS_URL) again, with their stored headers\n"
    "and body, through the whole pipeline. EVENT_ID is webhook_events.event_id or its\n"
    "numeric id. Each replay is a new request with a new webhook_events row; the original\n"
    "row stays as it was. Replays are idempotent: communications are keyed by the\n"
    "provider's id, so a replayed event that is already stored becomes 'duplicate'.\n"
    "\n"
    "Secrets were redacted before storage, so sbctl adds them from its environment:\n"
    "RINGCENTRAL_VERIFICATION_TOKEN as Verification-Token for RingCentral events, and\n"
    "GMAIL_PUSH_TOKEN as ?token= for Gmail pushes (their OIDC JWT is gone; without\n"
    "GMAIL_PUSH_TOKEN on the verifier a replayed push is rejected). Each request carries\n"
    "X-Request-Id: sbctl-replay:<event id> unless it had one. 'rejected' events are only\n"
    "replayed with --include-rejected: they may have been forged, and a replay vouches for\n"
    "them. --dry-run lists what would be posted. A progress line goes to stderr during long\n"
    "replays. Exit status 1 when any request was not accepted (not 200).\n";

static const char *const s_outcomes[] = {"stored", "duplicate", "rejected", "ignored", "failed"};
static const char *const s_sources[] = {"ringcentral_sms", "ringcentral_call", "gmail_push"};

static int
s_one_of(const char *v, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, list[i]) == 0)
            return 1;
    return 0;
}

typedef struct {
    const char *outcome; // --outcome
    const char *since;   // --since
    const char *source;  // --source
    const char *limit;   // --limit
} s_filter_t;

static int
s_usage_error(sb_sbctl_t *ctl, const char *usage, const char *msg)
{
    sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "%s", msg);
    fputs(usage, ctl->err);
    return SB_SBCTL_USAGE;
}

// Check the filter and turn it into query parameters: $1 outcome, $2 since (timestamptz
// text), $3 since as an interval, $4 source, $5 limit. 0, or an exit status.
static int
s_filter_params(sb_sbctl_t *ctl, const char *usage, const s_filter_t *f, char *since_buf,
                size_t size, const char *params[5], long default_limit, char *limit_buf,
                size_t limit_size)
{
    if (f->outcome && !s_one_of(f->outcome, s_outcomes, 5))
        return s_usage_error(ctl, usage,
                             "--outcome must be stored, duplicate, rejected, ignored or failed");
    if (f->source && !s_one_of(f->source, s_sources, 3))
        return s_usage_error(ctl, usage,
                             "--source must be ringcentral_sms, ringcentral_call or gmail_push");
    long limit = default_limit;
    if (f->limit != NULL) {
        char *end = NULL;
        limit = strtol(f->limit, &end, 10);
        if (end == f->limit || *end != '\0' || limit < 1 || limit > 10000000)
            return s_usage_error(ctl, usage, "--limit must be a number in [1, 10000000]");
    }
    snprintf(limit_buf, limit_size, "%ld", limit);
    int interval = 0;
    params[1] = params[2] = NULL;
    if (f->since != NULL) {
        if (sb_sbctl_since(f->since, since_buf, size, &interval) != 0)
            return s_usage_error(ctl, usage, "--since needs a duration or a timestamp");
        params[interval ? 2 : 1] = since_buf;
    }
    params[0] = f->outcome;
    params[3] = f->source;
    params[4] = limit_buf;
    return SB_SBCTL_OK;
}

#define S_WHERE                                                                                    \
    " WHERE ($1::text IS NULL OR outcome = $1)"                                                    \
    "   AND ($2::timestamptz IS NULL OR received_at >= $2::timestamptz)"                           \
    "   AND ($3::interval IS NULL OR received_at >= now() - $3::interval)"                         \
    "   AND ($4::text IS NULL OR source = $4)"

// A PostgreSQL error about --since (22007 invalid_datetime_format, 22008 ...) is the user's.
static int
s_query_failed(sb_sbctl_t *ctl, const char *usage, const char *msg)
{
    if (strstr(msg, "invalid input syntax for type timestamp") != NULL ||
        strstr(msg, "time zone") != NULL || strstr(msg, "out of range") != NULL ||
        strstr(msg, "invalid input syntax for type interval") != NULL)
        return s_usage_error(ctl, usage,
                             "--since is not a duration or timestamp PostgreSQL "
                             "understands");
    return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", msg);
}

int
sb_sbctl_events(sb_sbctl_t *ctl, int argc, char **argv)
{
    s_filter_t f = {0};
    int json = 0, help = 0;
    const sb_sbctl_opt_t opts[] = {{"--outcome", &f.outcome, NULL},
                                   {"--since", &f.since, NULL},
                                   {"--source", &f.source, NULL},
                                   {"--limit", &f.limit, NULL},
                                   {"--json", NULL, &json}};
    size_t n_pos = 0;
    sb_err_t err = {0};
    if (sb_sbctl_parse(argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, &n_pos, &help,
                       &err) != 0)
        return s_usage_error(ctl, s_events_usage, err.msg);
    if (help) {
        fputs(s_events_usage, ctl->out);
        return SB_SBCTL_OK;
    }
    char since[128], limit[24];
    const char *params[5];
    int rc = s_filter_params(ctl, s_events_usage, &f, since, sizeof since, params, 50, limit,
                             sizeof limit);
    if (rc == SB_SBCTL_OK)
        rc = sb_sbctl_db(ctl);
    if (rc != SB_SBCTL_OK)
        return rc;
    PGresult *res = sb_renewer_db_query(
        ctl->db, "could not read webhook_events",
        "SELECT id, event_id, source, to_char(received_at AT TIME ZONE 'UTC',"
        "       'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), outcome, COALESCE(reason, ''),"
        "       COALESCE(communication_id::text, ''), length(body)"
        "  FROM (SELECT * FROM webhook_events" S_WHERE " ORDER BY id DESC LIMIT $5::bigint) e"
        " ORDER BY id",
        5, params, &err);
    if (res == NULL)
        return s_query_failed(ctl, s_events_usage, err.msg);
    if (!json)
        fprintf(ctl->out, "%-8s %-28s %-16s %-24s %-9s %-7s %-7s %s\n", "ID", "EVENT_ID", "SOURCE",
                "RECEIVED_AT", "OUTCOME", "COMM", "BYTES", "REASON");
    for (int i = 0; i < PQntuples(res); i++) {
        if (json) {
            json_t *o =
                json_pack("{s:I,s:s,s:s,s:s,s:s,s:s*,s:s*,s:I}", "id",
                          (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10), "event_id",
                          PQgetvalue(res, i, 1), "source", PQgetvalue(res, i, 2), "received_at",
                          PQgetvalue(res, i, 3), "outcome", PQgetvalue(res, i, 4), "reason",
                          *PQgetvalue(res, i, 5) ? PQgetvalue(res, i, 5) : NULL, "communication_id",
                          *PQgetvalue(res, i, 6) ? PQgetvalue(res, i, 6) : NULL, "bytes",
                          (json_int_t)strtoll(PQgetvalue(res, i, 7), NULL, 10));
            char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            fprintf(ctl->out, "%s\n", text ? text : "{}");
            free(text);
            json_decref(o);
        } else {
            fprintf(ctl->out, "%-8s %-28s %-16s %-24s %-9s %-7s %-7s %.100s\n",
                    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                    PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), PQgetvalue(res, i, 6),
                    PQgetvalue(res, i, 7), PQgetvalue(res, i, 5));
        }
    }
    if (!json)
        fprintf(ctl->out, "%d event%s\n", PQntuples(res), PQntuples(res) == 1 ? "" : "s");
    PQclear(res);
    return SB_SBCTL_OK;
}

// --- Replay ----------------------------------------------------------------------------------

typedef struct {
    sb_sbctl_t *ctl;
    CURL *curl;            // one connection for every request (keep-alive)
    int dry_run;           // list, do not post
    int include_rejected;  // --include-rejected
    size_t total;          // events to replay (for the progress line)
    size_t sent, accepted; // so far
    size_t skipped;        // rejected ones left out
    double started, last;  // monotonic seconds
    int progress;          // print progress lines
    int tty;               // stderr is a terminal: one line, rewritten
} s_replay_t;

static void
s_progress(s_replay_t *r, int final)
{
    double now = sb_mono_s();
    if (!r->progress || (!final && now - r->last < S_PROGRESS_EVERY_S))
        return;
    r->last = now;
    double rate = now > r->started ? (double)r->sent / (now - r->started) : 0;
    fprintf(r->ctl->err, "%sreplay: %zu/%zu sent, %zu accepted, %zu not (%.0f/s)%s",
            r->tty ? "\r" : "", r->sent, r->total, r->accepted, r->sent - r->accepted, rate,
            r->tty && !final ? "" : "\n");
    fflush(r->ctl->err);
}

static unsigned char *
s_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    unsigned char *out = sb_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned int b = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            b = b * 16 + (unsigned)(isdigit((unsigned char)c) ? c - '0' : (c | 32) - 'a' + 10);
        }
        out[i] = (unsigned char)b;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

// Post one stored event again. 1 accepted, 0 not.
static int
s_replay_one(s_replay_t *r, const char *event_id, const char *source, const char *outcome,
             const char *headers, const char *body_hex)
{
    sb_sbctl_t *ctl = r->ctl;
    if (strcmp(outcome, "rejected") == 0 && !r->include_rejected) {
        r->skipped++;
        return 1;
    }
    sb_sbctl_replay_req_t req;
    sb_err_t err = {0};
    if (sb_sbctl_replay_request(source, headers, event_id, ctl->conf->rc_token,
                                ctl->conf->gmail_push_token, &req, &err) != 0) {
        sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s: %s", event_id, err.msg);
        r->sent++;
        return 0;
    }
    size_t len = 0;
    unsigned char *body = s_unhex(body_hex, &len);
    int ok = 1;
    if (r->dry_run) {
        const char *q = strchr(req.path, '?');
        fprintf(ctl->out, "would post %s (%s, %zu bytes) to %.*s%s\n", event_id, outcome, len,
                (int)(q ? (size_t)(q - req.path) : strlen(req.path)), req.path, q ? "?..." : "");
    } else {
        char *url = sb_xasprintf("%s%s", ctl->conf->ingress_url, req.path);
        long st = sb_sbctl_http(r->curl, "POST", url, req.headers, body, len, NULL, NULL, &err);
        ok = st == 200;
        if (!ok && st != 0)
            sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s: the ingress answered HTTP %ld", event_id, st);
        else if (!ok)
            sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s: %s", event_id,
                          "could not reach the ingress (INGRESS_URL)");
        OPENSSL_cleanse(url, strlen(url));
        free(url);
    }
    r->sent++;
    r->accepted += (size_t)ok;
    free(body);
    sb_sbctl_replay_req_release(&req);
    return ok;
}

// Replay the events with these ids, in id order.
static int
s_replay_ids(s_replay_t *r, const char **ids, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(ids[i]));
    char *list = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    const char *params[] = {list};
    sb_err_t err = {0};
    PGresult *res = sb_renewer_db_query(
        r->ctl->db, "could not read webhook_events",
        "SELECT e.event_id, e.source, e.outcome, e.headers::text, encode(e.body, 'hex')"
        "  FROM webhook_events e"
        " WHERE e.event_id IN (SELECT jsonb_array_elements_text($1::jsonb))"
        "    OR e.id::text IN (SELECT jsonb_array_elements_text($1::jsonb))"
        " ORDER BY e.id",
        1, params, &err);
    free(list);
    if (res == NULL)
        return sb_sbctl_fail(r->ctl, SB_SBCTL_FAIL, "%s", err.msg);
    int rc = SB_SBCTL_OK;
    if ((size_t)PQntuples(res) < n)
        rc = sb_sbctl_fail(r->ctl, SB_SBCTL_FAIL, "%zu of the %zu events are not in webhook_events",
                           n - (size_t)PQntuples(res), n);
    r->total = (size_t)PQntuples(res);
    r->progress = r->total >= S_PROGRESS_MIN;
    for (int i = 0; i < PQntuples(res); i++) {
        s_replay_one(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                     PQgetvalue(res, i, 3), PQgetvalue(res, i, 4));
        s_progress(r, 0);
    }
    PQclear(res);
    return rc;
}

// Replay what a filter selects, a page at a time (keyset on id), oldest first.
static int
s_replay_filter(s_replay_t *r, const s_filter_t *f)
{
    char since[128], limit[24];
    const char *params[7];
    int rc = s_filter_params(r->ctl, s_replay_usage, f, since, sizeof since, params, 10000000,
                             limit, sizeof limit);
    if (rc != SB_SBCTL_OK)
        return rc;
    sb_err_t err = {0};
    // How many, and the highest id now: events that arrive meanwhile (the replays among
    // them) are never picked up, so a replay cannot chase its own tail.
    PGresult *res =
        sb_renewer_db_query(r->ctl->db, "could not count webhook_events",
                            "SELECT count(*), COALESCE(max(id), 0) FROM (SELECT id"
                            " FROM webhook_events" S_WHERE " ORDER BY id LIMIT $5::bigint) e",
                            5, params, &err);
    if (res == NULL)
        return s_query_failed(r->ctl, s_replay_usage, err.msg);
    r->total = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    char max_id[32], after[32] = "0", page[16];
    snprintf(max_id, sizeof max_id, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    r->progress = r->total >= S_PROGRESS_MIN;
    snprintf(page, sizeof page, "%d", SB_SBCTL_REPLAY_PAGE);
    params[5] = max_id;
    params[6] = after;
    size_t done = 0;
    while (done < r->total) {
        params[4] = page;
        res = sb_renewer_db_query(
            r->ctl->db, "could not read webhook_events",
            "SELECT id, event_id, source, outcome, headers::text, encode(body, 'hex')"
            "  FROM webhook_events" S_WHERE "   AND id <= $6::bigint AND id > $7::bigint"
            " ORDER BY id LIMIT $5::bigint",
            7, params, &err);
        if (res == NULL)
            return sb_sbctl_fail(r->ctl, SB_SBCTL_FAIL, "%s", err.msg);
        int rows = PQntuples(res);
        for (int i = 0; i < rows && done < r->total; i++, done++) {
            s_replay_one(r, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                         PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
            s_progress(r, 0);
            snprintf(after, sizeof after, "%s", PQgetvalue(res, i, 0));
        }
        PQclear(res);
        if (rows == 0)
            break;
    }
    return SB_SBCTL_OK;
}

int
sb_sbctl_replay(sb_sbctl_t *ctl, int argc, char **argv)
{
    s_filter_t f = {0};
    int help = 0, dry_run = 0, include_rejected = 0;
    const sb_sbctl_opt_t opts[] = {
        {"--outcome", &f.outcome, NULL}, {"--since", &f.since, NULL},
        {"--source", &f.source, NULL},   {"--limit", &f.limit, NULL},
        {"--dry-run", NULL, &dry_run},   {"--include-rejected", NULL, &include_rejected}};
    const char *ids[256];
    size_t n = 0;
    sb_err_t err = {0};
    if (sb_sbctl_parse(argc, argv, opts, sizeof opts / sizeof opts[0], ids, 256, &n, &help, &err) !=
        0)
        return s_usage_error(ctl, s_replay_usage, err.msg);
    if (help) {
        fputs(s_replay_usage, ctl->out);
        return SB_SBCTL_OK;
    }
    int by_filter = f.outcome || f.since || f.source;
    if (n == 0 && !by_filter)
        return s_usage_error(ctl, s_replay_usage, "replay needs EVENT_IDs or --outcome/--since");
    if (n > 0 && by_filter)
        return s_usage_error(ctl, s_replay_usage, "give EVENT_IDs or a filter, not both");
    if (!dry_run && (ctl->conf->rc_token == NULL || *ctl->conf->rc_token == '\0'))
        sb_sbctl_fail(ctl, SB_SBCTL_OK,
                      "warning: RINGCENTRAL_VERIFICATION_TOKEN is not set: "
                      "replayed RingCentral events will be rejected");
    int rc = sb_sbctl_db(ctl);
    if (rc != SB_SBCTL_OK)
        return rc;
    s_replay_t r = {.ctl = ctl, .dry_run = dry_run, .include_rejected = include_rejected};
    r.curl = dry_run ? NULL : curl_easy_init();
    r.started = r.last = sb_mono_s();
    r.tty = isatty(fileno(ctl->err));
    rc = n > 0 ? s_replay_ids(&r, ids, n) : s_replay_filter(&r, &f);
    s_progress(&r, 1);
    if (r.curl != NULL)
        curl_easy_cleanup(r.curl);
    fprintf(ctl->out, "%s %zu event%s: %zu accepted, %zu not",
            dry_run ? "would replay" : "replayed", r.sent, r.sent == 1 ? "" : "s", r.accepted,
            r.sent - r.accepted);
    if (r.skipped)
        fprintf(ctl->out, "; %zu rejected left out (see --include-rejected)", r.skipped);
    fputc('\n', ctl->out);
    if (rc == SB_SBCTL_OK && r.accepted < r.sent)
        rc = SB_SBCTL_FAIL;
    return rc;
}
