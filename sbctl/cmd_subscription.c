/* cmd_subscription - sbctl subscription create | list | renew | delete: RingCentral webhook
 * subscriptions and their rows (renewer/rc_subscriptions.h does the work). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "renewer.h"
#include "renewer_db.h"
#include "sbctl.h"
#include "sb_mem.h"
#include "sb_banned.h"

static const char s_usage[] =
    "usage: sbctl subscription create (--sms-url URL | --call-url URL)\n"
    "                                 [--verification-token-file FILE]\n"
    "       sbctl subscription list [--all]\n"
    "       sbctl subscription renew ID\n"
    "       sbctl subscription delete ID\n"
    "\n"
    "RingCentral webhook subscriptions (table ringcentral_subscriptions).\n"
    "\n"
    "  create  subscribe URL, the public address of this ingress's\n"
    "          /api/webhooks/ringcentral/sms (--sms-url: inbound SMS, outbound SMS in the\n"
    "          message store, expiry reminders) or /api/webhooks/ringcentral/call\n"
    "          (--call-url: telephony sessions, expiry reminders). RingCentral calls URL at\n"
    "          once with a Validation-Token, so the ingress must be reachable there.\n"
    "          The verification token RingCentral will send with every event is, in order:\n"
    "          the one in FILE, RINGCENTRAL_VERIFICATION_TOKEN, or a new random one that\n"
    "          is printed ONCE: give it to the verifier as RINGCENTRAL_VERIFICATION_TOKEN.\n"
    "          It is stored only sealed with SWITCHBOARD_SECRET_KEY (else not at all), so\n"
    "          that sb-renewer can re-create the subscription with the same token.\n"
    "  list    the subscriptions (--all: retired ones too).\n"
    "  renew   renew ID now, whatever its expiry; one that is gone or Blacklisted or\n"
    "          Suspended is re-created (same filters, address and token) and its row\n"
    "          retired, as sb-renewer does.\n"
    "  delete  delete ID at RingCentral and its row: no more events from it.\n";

static int
s_usage_error(sb_sbctl_t *ctl, const char *msg)
{
    sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "%s", msg);
    fputs(s_usage, ctl->err);
    return SB_SBCTL_USAGE;
}

static int
s_env(sb_sbctl_t *ctl, sb_rc_sub_env_t *env)
{
    int rc = sb_sbctl_box(ctl);
    if (rc == SB_SBCTL_OK)
        rc = sb_sbctl_rc(ctl);
    if (rc == SB_SBCTL_OK)
        rc = sb_sbctl_db(ctl);
    if (rc != SB_SBCTL_OK)
        return rc;
    memset(env, 0, sizeof *env);
    env->db = ctl->db;
    env->rc = ctl->rc;
    env->box = ctl->box;
    env->configured_token = ctl->conf->rc_token;
    env->renew_before_ms = 24 * 3600 * 1000LL; // unused with force
    env->check_interval_ms = 3600 * 1000LL;
    env->backoff_min_ms = 30 * 1000LL;
    env->backoff_max_ms = 3600 * 1000LL;
    return SB_SBCTL_OK;
}

static int
s_url_ok(const char *url)
{
    return (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) &&
           strpbrk(url, " \t\r\n\"") == NULL;
}

// The token of a new subscription (see the usage text); *generated says it is new.
static char *
s_token(sb_sbctl_t *ctl, const char *file, int *generated, int *rc)
{
    *generated = 0;
    *rc = SB_SBCTL_OK;
    if (file != NULL) {
        sb_err_t err = {0};
        char *token = sb_sbctl_read_token_file(file, &err);
        if (token == NULL)
            *rc = sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "%s", err.msg);
        return token;
    }
    if (ctl->conf->rc_token != NULL && *ctl->conf->rc_token != '\0')
        return sb_xstrdup(ctl->conf->rc_token);
    *generated = 1;
    return sb_rc_sub_token_generate();
}

static int
s_create(sb_sbctl_t *ctl, const char *sms_url, const char *call_url, const char *token_file)
{
    if ((sms_url == NULL) == (call_url == NULL))
        return s_usage_error(ctl, "subscription create needs --sms-url URL or --call-url URL");
    const char *url = sms_url ? sms_url : call_url;
    if (!s_url_ok(url))
        return s_usage_error(ctl, "the URL must be an http:// or https:// URL");
    const char *want = sms_url ? "/api/webhooks/ringcentral/sms" : "/api/webhooks/ringcentral/call";
    if (strstr(url, want) == NULL)
        sb_sbctl_fail(ctl, SB_SBCTL_OK, "warning: %s does not end in %s, the ingress's route", url,
                      want);
    sb_rc_sub_env_t env;
    int rc = s_env(ctl, &env);
    if (rc != SB_SBCTL_OK)
        return rc;
    int generated = 0;
    char *token = s_token(ctl, token_file, &generated, &rc);
    if (token == NULL)
        return rc;
    sb_rc_sub_result_t res;
    sb_err_t err = {0};
    if (sb_rc_sub_create(&env, sms_url ? SB_RC_SUB_SMS : SB_RC_SUB_CALL, url, token, &res, &err) !=
        0) {
        rc = sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s (the new subscription was deleted again)",
                           err.msg);
    } else if (res.outcome != SB_RC_SUB_RECREATED) {
        rc = sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", res.why);
    } else {
        fprintf(ctl->out, "subscription %s created: %s events to %s, %s until %s\n", res.new_id,
                sms_url ? "SMS" : "call", url, res.status, res.expiration_time);
        if (generated)
            fprintf(ctl->out,
                    "verification token (shown only now): %s\n"
                    "give it to sb-verifier as RINGCENTRAL_VERIFICATION_TOKEN (and to sbctl, "
                    "for replays), then restart the verifier\n",
                    token);
        else
            fprintf(ctl->out, "verification token: %s\n",
                    token_file ? "the one from the file" : "RINGCENTRAL_VERIFICATION_TOKEN");
        if (ctl->box == NULL)
            fprintf(ctl->out, "SWITCHBOARD_SECRET_KEY is not set: the token is not stored; "
                              "sb-renewer re-creates with its RINGCENTRAL_VERIFICATION_TOKEN\n");
    }
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    return rc;
}

static int
s_list(sb_sbctl_t *ctl, int all)
{
    int rc = sb_sbctl_db(ctl);
    if (rc != SB_SBCTL_OK)
        return rc;
    sb_err_t err = {0};
    const char *params[] = {all ? "t" : "f"};
    PGresult *res = sb_renewer_db_query(
        ctl->db, "could not list the subscriptions",
        "SELECT id, event_filters::text, COALESCE(status, '-'),"
        "       COALESCE(to_char(expires_at AT TIME ZONE 'UTC',"
        "                        'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),"
        "       extract(epoch FROM expires_at - now()),"
        "       CASE WHEN verification_token IS NOT NULL THEN 'sealed'"
        "            WHEN verification_token_sha256 IS NOT NULL THEN 'hash' ELSE 'none' END,"
        "       renew_failures, COALESCE(address, '-'),"
        "       COALESCE('replaced by ' || replaced_by, last_error, '')"
        "  FROM ringcentral_subscriptions"
        " WHERE $1::boolean OR COALESCE(status, '') <> 'Retired'"
        " ORDER BY created_at, id",
        1, params, &err);
    if (res == NULL)
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", err.msg);
    fprintf(ctl->out, "%-38s %-5s %-11s %-21s %-12s %-6s %-8s %s\n", "ID", "KIND", "STATUS",
            "EXPIRES", "", "TOKEN", "FAILURES", "ADDRESS / NOTE");
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *filters = json_loads(PQgetvalue(res, i, 1), 0, NULL);
        char delta[48];
        sb_sbctl_human_delta(PQgetisnull(res, i, 4) ? NAN : strtod(PQgetvalue(res, i, 4), NULL),
                             delta, sizeof delta);
        const char *note = PQgetvalue(res, i, 8);
        fprintf(ctl->out, "%-38s %-5s %-11s %-21s %-12s %-6s %-8s %s%s%.80s\n",
                PQgetvalue(res, i, 0), sb_rc_sub_kind_name(filters), PQgetvalue(res, i, 2),
                PQgetvalue(res, i, 3), delta, PQgetvalue(res, i, 5), PQgetvalue(res, i, 6),
                PQgetvalue(res, i, 7), *note ? "  " : "", note);
        json_decref(filters);
    }
    fprintf(ctl->out, "%d subscription%s\n", PQntuples(res), PQntuples(res) == 1 ? "" : "s");
    PQclear(res);
    return SB_SBCTL_OK;
}

static int
s_result(sb_sbctl_t *ctl, const char *id, int delete, const sb_rc_sub_result_t *res)
{
    if (res->note[0])
        sb_sbctl_fail(ctl, SB_SBCTL_OK, "note: %s", res->note);
    switch (res->outcome) {
    case SB_RC_SUB_RENEWED:
        fprintf(ctl->out, "subscription %s renewed: %s until %s\n", id, res->status,
                res->expiration_time);
        return SB_SBCTL_OK;
    case SB_RC_SUB_RECREATED:
        fprintf(ctl->out, "subscription %s re-created as %s (%s): %s until %s\n", id, res->new_id,
                res->why, res->status, res->expiration_time);
        return SB_SBCTL_OK;
    case SB_RC_SUB_DELETED:
        fprintf(ctl->out, "subscription %s deleted\n", id);
        return SB_SBCTL_OK;
    case SB_RC_SUB_BUSY:
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL,
                             "subscription %s is being renewed by sb-renewer right now; try again",
                             id);
    case SB_RC_SUB_NOT_FOUND:
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "no subscription %s%s", id,
                             delete ? "" : " (a retired one cannot be renewed: see list --all)");
    case SB_RC_SUB_FAILED:
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "subscription %s: %s", id, res->why);
    default:
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "subscription %s: nothing done", id);
    }
}

static int
s_renew_or_delete(sb_sbctl_t *ctl, const char *id, int delete)
{
    sb_rc_sub_env_t env;
    int rc = s_env(ctl, &env);
    if (rc != SB_SBCTL_OK)
        return rc;
    sb_rc_sub_result_t res;
    sb_err_t err = {0};
    if ((delete ? sb_rc_sub_delete(&env, id, &res, &err)
                : sb_rc_sub_renew(&env, id, 1, &res, &err)) != 0)
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", err.msg);
    return s_result(ctl, id, delete, &res);
}

int
sb_sbctl_subscription(sb_sbctl_t *ctl, int argc, char **argv)
{
    const char *sms_url = NULL, *call_url = NULL, *token_file = NULL;
    int all = 0, help = 0;
    const sb_sbctl_opt_t opts[] = {{"--sms-url", &sms_url, NULL},
                                   {"--call-url", &call_url, NULL},
                                   {"--verification-token-file", &token_file, NULL},
                                   {"--all", NULL, &all}};
    const char *pos[2];
    size_t n = 0;
    sb_err_t err = {0};
    if (sb_sbctl_parse(argc, argv, opts, sizeof opts / sizeof opts[0], pos, 2, &n, &help, &err) !=
        0)
        return s_usage_error(ctl, err.msg);
    if (help) {
        fputs(s_usage, ctl->out);
        return SB_SBCTL_OK;
    }
    const char *verb = n > 0 ? pos[0] : "";
    if (strcmp(verb, "create") == 0 && n == 1)
        return s_create(ctl, sms_url, call_url, token_file);
    if (strcmp(verb, "list") == 0 && n == 1)
        return s_list(ctl, all);
    if (strcmp(verb, "renew") == 0 && n == 2)
        return s_renew_or_delete(ctl, pos[1], 0);
    if (strcmp(verb, "delete") == 0 && n == 2)
        return s_renew_or_delete(ctl, pos[1], 1);
    return s_usage_error(ctl, n == 0 ? "subscription needs create, list, renew or delete"
                                     : "wrong arguments for subscription");
}
