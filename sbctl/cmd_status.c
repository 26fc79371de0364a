/* cmd_status - sbctl status: one screen on the pipeline. The ingress's health JSON (every
 * stage's liveness as the ingress sees it, the database, spool depth, oldest unacked
 * event), each stage's /metrics scraped twice for rates and its /health, and the next
 * expiries of Gmail watches and RingCentral subscriptions from the database. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "renewer.h"
#include "renewer_db.h"
#include "sbctl.h"
#include "sb_mem.h"
#include "sb_time.h"
#include "sb_banned.h"

#define S_MAX_STAGES 16
#define S_EXPIRIES_SHOWN 10 // soonest expiries listed

static const char s_usage[] =
    "usage: sbctl status [--metrics NAME=URL,...] [--ingress-url URL] [--interval SECONDS]\n"
    "\n"
    "One screen on the pipeline: its health as the ingress sees it (stages, database, spool\n"
    "depth, oldest unacknowledged event), each stage's liveness and rates from its /metrics\n"
    "(scraped twice, --interval apart, default 1 s; 0: no rates) and its /health, and the\n"
    "next expiries of Gmail watches and RingCentral subscriptions (needs DATABASE_URL).\n"
    "The stages are INGRESS_URL/metrics and SBCTL_METRICS_URLS (or --metrics).\n"
    "Exit status 0 when everything is up and healthy, 1 when anything is not.\n";

// Rates shown when a stage exports the counter.
static const struct {
    const char *metric;
    const char *label;
} s_rates[] = {{"sb_http_requests_total", "http"},
               {"sb_events_in_total", "in"},
               {"sb_events_written_total", "written"},
               {"sb_events_acked_total", "acked"},
               {"sb_renewer_renewals_total", "renewals"}};

typedef struct {
    char name[32];
    char *url;    // .../metrics
    char *first;  // first scrape, or NULL
    char *second; // second scrape, or NULL
    char error[SB_ERR_MSG_MAX];
    double t0, t1; // scrape times
} s_stage_t;

static char *
s_scrape(const char *url, char *error, size_t size)
{
    char *body = NULL;
    sb_err_t err = {0};
    long st = sb_sbctl_http(NULL, "GET", url, NULL, NULL, 0, &body, NULL, &err);
    if (st == 200)
        return body;
    if (st != 0)
        snprintf(error, size, "%s answered HTTP %ld", url, st);
    else
        snprintf(error, size, "%s", err.msg);
    free(body);
    return NULL;
}

// "name=url,name=url" -> stages after the ingress. -1 with a message on a bad entry.
static int
s_stages_parse(sb_sbctl_t *ctl, const char *list, s_stage_t *stages, size_t *n)
{
    char *copy = sb_xstrdup(list ? list : "");
    char *save = NULL;
    int rc = 0;
    for (char *e = strtok_r(copy, ",", &save); e != NULL && rc == 0;
         e = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(e, '=');
        if (eq == NULL || eq == e || (size_t)(eq - e) >= sizeof stages->name ||
            *n >= S_MAX_STAGES) {
            rc = sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "invalid metrics entry \"%s\" (want NAME=URL)",
                               e);
            break;
        }
        s_stage_t *s = &stages[(*n)++];
        snprintf(s->name, sizeof s->name, "%.*s", (int)(eq - e), e);
        s->url = sb_xstrdup(eq + 1);
    }
    free(copy);
    return rc == 0 ? 0 : -1;
}

// The stage's /health next to its /metrics: "ok", or "degraded: reason". NULL when none.
static char *
s_stage_health(const char *metrics_url, int *healthy)
{
    size_t len = strlen(metrics_url);
    if (len < 8 || strcmp(metrics_url + len - 8, "/metrics") != 0)
        return NULL;
    char *url = sb_xasprintf("%.*s/health", (int)(len - 8), metrics_url);
    char *body = NULL;
    sb_err_t err = {0};
    long st = sb_sbctl_http(NULL, "GET", url, NULL, NULL, 0, &body, NULL, &err);
    free(url);
    json_t *doc = st ? json_loads(body, 0, NULL) : NULL;
    free(body);
    const char *status = json_string_value(json_object_get(doc, "status"));
    char *out = NULL;
    if (status != NULL) {
        *healthy = st == 200 && strcmp(status, "ok") == 0;
        json_t *reasons = json_object_get(doc, "reasons");
        const char *first = json_string_value(json_array_get(reasons, 0));
        out = first ? sb_xasprintf("%s: %s%s", status, first,
                                   json_array_size(reasons) > 1 ? " (and more)" : "")
                    : sb_xstrdup(status);
    }
    json_decref(doc);
    return out;
}

static int
s_print_stage(sb_sbctl_t *ctl, s_stage_t *s)
{
    if (s->first == NULL || (s->second == NULL && s->t1 > 0)) {
        fprintf(ctl->out, "%-10s %-9s %s\n", s->name, "down", s->error);
        return 0;
    }
    char details[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof s_rates / sizeof s_rates[0]; i++) {
        double a = sb_sbctl_metric_sum(s->first, s_rates[i].metric);
        if (isnan(a))
            continue;
        if (s->second != NULL && s->t1 > s->t0) {
            double b = sb_sbctl_metric_sum(s->second, s_rates[i].metric);
            used += (size_t)snprintf(details + used, sizeof details - used, "%s %.1f/s  ",
                                     s_rates[i].label, (b - a) / (s->t1 - s->t0));
        } else {
            used += (size_t)snprintf(details + used, sizeof details - used, "%s %.0f  ",
                                     s_rates[i].label, a);
        }
        if (used >= sizeof details)
            break;
    }
    int healthy = 1;
    char *health = s->url ? s_stage_health(s->url, &healthy) : NULL;
    fprintf(ctl->out, "%-10s %-9s %s%s\n", s->name, healthy ? "up" : "degraded", details,
            health && !healthy ? health : "");
    free(health);
    return healthy;
}

// The ingress's view: pipeline status, reasons, spool. 1 ok, 0 not.
static int
s_pipeline(sb_sbctl_t *ctl, const char *ingress_url)
{
    char *url = sb_xasprintf("%s/api/webhooks/health", ingress_url);
    char *body = NULL;
    sb_err_t err = {0};
    long st = sb_sbctl_http(NULL, "GET", url, NULL, NULL, 0, &body, NULL, &err);
    json_t *doc = st ? json_loads(body, 0, NULL) : NULL;
    const char *status = json_string_value(json_object_get(doc, "status"));
    int ok = 0;
    if (status == NULL) {
        fprintf(ctl->out, "pipeline   unknown: %s\n",
                st ? "the ingress health is not JSON" : err.msg);
    } else {
        ok = st == 200 && strcmp(status, "ok") == 0;
        fprintf(ctl->out, "pipeline   %s", status);
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(doc, "reasons"), i, r)
            fprintf(ctl->out, "%s%s", i == 0 ? ": " : "; ", json_string_value(r));
        fputc('\n', ctl->out);
        json_t *spool = json_object_get(doc, "spool");
        fprintf(ctl->out, "spool      depth %" JSON_INTEGER_FORMAT ", oldest unacked %.1f s\n",
                json_integer_value(json_object_get(spool, "depth")),
                json_number_value(json_object_get(spool, "oldest_unacked_age_seconds")));
        const char *name;
        json_t *stage;
        fprintf(ctl->out, "seen by the ingress:");
        json_object_foreach(json_object_get(doc, "stages"), name, stage)
        {
            json_t *n = json_object_get(stage, "instances");
            fprintf(ctl->out, " %s %s", name,
                    json_is_true(json_object_get(stage, "alive")) ? "alive" : "NOT alive");
            if (json_is_integer(n))
                fprintf(ctl->out, " (%" JSON_INTEGER_FORMAT ")", json_integer_value(n));
        }
        fputc('\n', ctl->out);
    }
    json_decref(doc);
    free(body);
    free(url);
    return ok;
}

// Soonest expiries from the database. 1 when nothing is within 12 h, 0 otherwise.
static int
s_expiries(sb_sbctl_t *ctl)
{
    if (ctl->conf->database_url == NULL || *ctl->conf->database_url == '\0') {
        fprintf(ctl->out, "expiries   (DATABASE_URL is not set)\n");
        return 1;
    }
    if (sb_sbctl_db(ctl) != SB_SBCTL_OK)
        return 0;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", S_EXPIRIES_SHOWN);
    const char *params[] = {limit};
    sb_err_t err = {0};
    PGresult *res = sb_renewer_db_query(
        ctl->db, "could not read the expiries",
        "SELECT what, COALESCE(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        "       'none'), extract(epoch FROM at - now()), note FROM ("
        "  SELECT 'gmail watch  ' || email AS what, watch_expires_at AS at,"
        "         CASE WHEN status <> 'active' THEN status ELSE COALESCE(last_error, '') END AS "
        "note"
        "    FROM mailboxes"
        "  UNION ALL"
        "  SELECT 'subscription ' || id, expires_at, COALESCE(status, '') ||"
        "         COALESCE(' ' || last_error, '') FROM ringcentral_subscriptions"
        "   WHERE COALESCE(status, '') <> 'Retired') x"
        " ORDER BY at NULLS FIRST LIMIT $1::int",
        1, params, &err);
    if (res == NULL) {
        sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", err.msg);
        return 0;
    }
    int ok = 1;
    if (PQntuples(res) == 0)
        fprintf(ctl->out, "expiries   no mailboxes, no subscriptions\n");
    else
        fprintf(ctl->out, "%-21s %-12s %s\n", "EXPIRES", "", "WHAT");
    for (int i = 0; i < PQntuples(res); i++) {
        double left = PQgetisnull(res, i, 2) ? NAN : strtod(PQgetvalue(res, i, 2), NULL);
        char delta[48];
        sb_sbctl_human_delta(left, delta, sizeof delta);
        if (isnan(left) || left < SB_RENEWER_HEALTH_MARGIN_MS / 1000.0)
            ok = 0;
        fprintf(ctl->out, "%-21s %-12s %s%s%.80s\n", PQgetvalue(res, i, 1), delta,
                PQgetvalue(res, i, 0), *PQgetvalue(res, i, 3) ? "  " : "", PQgetvalue(res, i, 3));
    }
    PQclear(res);
    return ok;
}

int
sb_sbctl_status(sb_sbctl_t *ctl, int argc, char **argv)
{
    const char *metrics = ctl->conf->metrics_urls, *ingress = ctl->conf->ingress_url;
    const char *interval = "1";
    int help = 0;
    const sb_sbctl_opt_t opts[] = {{"--metrics", &metrics, NULL},
                                   {"--ingress-url", &ingress, NULL},
                                   {"--interval", &interval, NULL}};
    size_t n_pos = 0;
    sb_err_t err = {0};
    if (sb_sbctl_parse(argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, &n_pos, &help,
                       &err) != 0) {
        sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "%s", err.msg);
        fputs(s_usage, ctl->err);
        return SB_SBCTL_USAGE;
    }
    if (help) {
        fputs(s_usage, ctl->out);
        return SB_SBCTL_OK;
    }
    char *end = NULL;
    double wait_s = strtod(interval, &end);
    if (end == interval || *end != '\0' || !(wait_s >= 0 && wait_s <= 60))
        return sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "--interval must be seconds in [0, 60]");
    s_stage_t stages[S_MAX_STAGES + 1];
    memset(stages, 0, sizeof stages);
    size_t n = 1;
    snprintf(stages[0].name, sizeof stages[0].name, "ingress");
    stages[0].url = sb_xasprintf("%s/metrics", ingress);
    if (s_stages_parse(ctl, metrics, stages, &n) != 0) {
        for (size_t i = 0; i < n; i++)
            free(stages[i].url);
        return SB_SBCTL_USAGE;
    }
    int ok = s_pipeline(ctl, ingress);
    for (size_t i = 0; i < n; i++) {
        stages[i].t0 = sb_mono_s();
        stages[i].first = s_scrape(stages[i].url, stages[i].error, sizeof stages[i].error);
    }
    if (wait_s > 0) {
        struct timespec ts = {(time_t)wait_s, (long)((wait_s - (double)(time_t)wait_s) * 1e9)};
        nanosleep(&ts, NULL);
        for (size_t i = 0; i < n; i++) {
            stages[i].t1 = sb_mono_s();
            if (stages[i].first != NULL)
                stages[i].second = s_scrape(stages[i].url, stages[i].error, sizeof stages[i].error);
        }
    }
    fprintf(ctl->out, "%-10s %-9s %s\n", "STAGE", "STATE", "RATES / HEALTH");
    for (size_t i = 0; i < n; i++) {
        if (!s_print_stage(ctl, &stages[i]) || stages[i].first == NULL)
            ok = 0;
        free(stages[i].url);
        free(stages[i].first);
        free(stages[i].second);
    }
    if (!s_expiries(ctl))
        ok = 0;
    return ok ? SB_SBCTL_OK : SB_SBCTL_FAIL;
}
