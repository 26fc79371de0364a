/* cmd_mailbox - sbctl mailbox add | list | remove: the rows of `mailboxes` that the enricher
 * reads and the renewer keeps watched (renewer/gmail_watch.h). */
#include <ctype.h>
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
    "usage: sbctl mailbox add EMAIL --refresh-token-file FILE [--history-id N]\n"
    "       sbctl mailbox list\n"
    "       sbctl mailbox remove EMAIL [--keep-watch]\n"
    "\n"
    "Connected Gmail mailboxes (table mailboxes).\n"
    "\n"
    "  add     store EMAIL with the OAuth refresh token read from FILE (\"-\": stdin),\n"
    "          sealed with SWITCHBOARD_SECRET_KEY when it is set; an existing mailbox gets\n"
    "          the new token and becomes active again (after reauth_required). sb-renewer\n"
    "          starts its Gmail watch within RENEW_INTERVAL and, when the mailbox has no\n"
    "          history checkpoint yet, sets it from the watch. --history-id N sets the\n"
    "          checkpoint now instead (history is read from there on).\n"
    "  list    every mailbox: status, checkpoint, watch expiry, renewal failures.\n"
    "  remove  stop the mailbox's Gmail watch (users.stop; needs GOOGLE_CLIENT_ID and\n"
    "          GOOGLE_CLIENT_SECRET; --keep-watch skips it) and delete the row. Pushes\n"
    "          for it are then stored as 'ignored'. Its e-mails stay in communications.\n";

static int
s_usage_error(sb_sbctl_t *ctl, const char *msg)
{
    sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "%s", msg);
    fputs(s_usage, ctl->err);
    return SB_SBCTL_USAGE;
}

static int
s_email_ok(const char *email)
{
    const char *at = strchr(email, '@');
    if (at == NULL || at == email || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
        strlen(email) > 254)
        return 0;
    for (const unsigned char *p = (const unsigned char *)email; *p; p++)
        if (isspace(*p) || iscntrl(*p) || *p == '<' || *p == '>' || *p == ',')
            return 0;
    return 1;
}

// The mailbox's address as stored (the row may spell it in another case), or NULL.
static char *
s_stored_email(sb_sbctl_t *ctl, const char *email, int *failed)
{
    const char *params[] = {email};
    sb_err_t err = {0};
    PGresult *res = sb_renewer_db_query(ctl->db, "could not read mailboxes",
                                        "SELECT email FROM mailboxes WHERE lower(email) = lower($1)"
                                        " ORDER BY id LIMIT 1",
                                        1, params, &err);
    *failed = res == NULL;
    if (res == NULL) {
        sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", err.msg);
        return NULL;
    }
    char *out = PQntuples(res) == 1 ? sb_xstrdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    return out;
}

static int
s_store(sb_sbctl_t *ctl, const char *email, int exists, const char *stored, const char *history)
{
    const char *params[] = {email, stored, history};
    const char *sql =
        exists ? "UPDATE mailboxes SET refresh_token = $2, status = 'active',"
                 " history_id = COALESCE($3::bigint, history_id), renew_failures = 0,"
                 " renew_after = NULL, last_error = NULL, updated_at = now() WHERE email = $1"
               : "INSERT INTO mailboxes (email, refresh_token, history_id) VALUES ($1, $2, $3)";
    sb_err_t err = {0};
    if (sb_renewer_db_exec(ctl->db, "could not store the mailbox", sql, 3, params, &err) != 0)
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", err.msg);
    return SB_SBCTL_OK;
}

static int
s_add(sb_sbctl_t *ctl, const char *email, const char *token_file, const char *history)
{
    if (!s_email_ok(email))
        return s_usage_error(ctl, "invalid e-mail address");
    if (token_file == NULL)
        return s_usage_error(ctl, "mailbox add needs --refresh-token-file FILE");
    if (history != NULL &&
        (strspn(history, "0123456789") != strlen(history) || !*history || strlen(history) > 18))
        return s_usage_error(ctl, "--history-id must be a decimal Gmail history id");
    int rc = sb_sbctl_box(ctl);
    if (rc == SB_SBCTL_OK)
        rc = sb_sbctl_db(ctl);
    if (rc != SB_SBCTL_OK)
        return rc;
    sb_err_t err = {0};
    char *token = sb_sbctl_read_token_file(token_file, &err);
    if (token == NULL)
        return sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "%s", err.msg);
    int failed = 0;
    char *existing = s_stored_email(ctl, email, &failed);
    const char *as_stored = existing ? existing : email;
    // The context binds the sealed value to this row (the enricher opens it the same way).
    char *ctx = sb_xasprintf("mailboxes.refresh_token:%s", as_stored);
    char *stored = failed ? NULL : sb_secretbox_store(ctl->box, token, ctx, &err);
    if (failed)
        rc = SB_SBCTL_FAIL;
    else if (stored == NULL)
        rc = sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", err.msg);
    else
        rc = s_store(ctl, as_stored, existing != NULL, stored, history);
    if (rc == SB_SBCTL_OK) {
        fprintf(ctl->out, "mailbox %s %s; refresh token stored %s\n", as_stored,
                existing ? "updated (active again)" : "added",
                ctl->box ? "sealed" : "IN CLEAR (SWITCHBOARD_SECRET_KEY is not set)");
        fprintf(ctl->out, "sb-renewer starts its Gmail watch within RENEW_INTERVAL; "
                          "`sbctl mailbox list` shows the expiry\n");
    }
    if (stored != NULL)
        OPENSSL_cleanse(stored, strlen(stored));
    free(stored);
    free(ctx);
    free(existing);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    return rc;
}

static int
s_list(sb_sbctl_t *ctl)
{
    int rc = sb_sbctl_db(ctl);
    if (rc != SB_SBCTL_OK)
        return rc;
    sb_err_t err = {0};
    PGresult *res = sb_renewer_db_query(
        ctl->db, "could not list the mailboxes",
        "SELECT email, status, COALESCE(history_id::text, '-'),"
        "       COALESCE(to_char(watch_expires_at AT TIME ZONE 'UTC',"
        "                        'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),"
        "       extract(epoch FROM watch_expires_at - now()),"
        "       CASE WHEN refresh_token IS NULL THEN 'none'"
        "            WHEN refresh_token ~ '^v[0-9]+:' THEN 'sealed' ELSE 'clear' END,"
        "       renew_failures, COALESCE(last_error, '')"
        "  FROM mailboxes ORDER BY lower(email)",
        0, NULL, &err);
    if (res == NULL)
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", err.msg);
    fprintf(ctl->out, "%-32s %-16s %-12s %-21s %-12s %-6s %-8s %s\n", "EMAIL", "STATUS",
            "HISTORY_ID", "WATCH_EXPIRES", "", "TOKEN", "FAILURES", "LAST_ERROR");
    for (int i = 0; i < PQntuples(res); i++) {
        char delta[48];
        sb_sbctl_human_delta(PQgetisnull(res, i, 4) ? NAN : strtod(PQgetvalue(res, i, 4), NULL),
                             delta, sizeof delta);
        fprintf(ctl->out, "%-32s %-16s %-12s %-21s %-12s %-6s %-8s %.80s\n", PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), delta,
                PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), PQgetvalue(res, i, 7));
    }
    fprintf(ctl->out, "%d mailbox%s\n", PQntuples(res), PQntuples(res) == 1 ? "" : "es");
    PQclear(res);
    return SB_SBCTL_OK;
}

// users.stop with the mailbox's own token. Best effort: the row goes either way.
static void
s_stop_watch(sb_sbctl_t *ctl, const char *email)
{
    if (sb_sbctl_box(ctl) != SB_SBCTL_OK)
        return;
    const char *params[] = {email};
    sb_err_t err = {0};
    PGresult *res = sb_renewer_db_query(ctl->db, "could not read the mailbox",
                                        "SELECT refresh_token FROM mailboxes WHERE email = $1", 1,
                                        params, &err);
    char *token = NULL;
    if (res != NULL && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        char *ctx = sb_xasprintf("mailboxes.refresh_token:%s", email);
        token = sb_secretbox_load(ctl->box, PQgetvalue(res, 0, 0), ctx, &err);
        OPENSSL_cleanse(PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)));
        free(ctx);
    }
    PQclear(res);
    if (token == NULL) {
        sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "warning: cannot stop the Gmail watch of %s: %s", email,
                      err.msg[0] ? err.msg : "no refresh token");
        return;
    }
    if (sb_sbctl_gmail(ctl) == SB_SBCTL_OK) {
        if (sb_gmail_watch_stop(ctl->gw, email, token, &err) == SB_GMAIL_WATCH_OK)
            fprintf(ctl->out, "Gmail watch of %s stopped\n", email);
        else
            sb_sbctl_fail(ctl, SB_SBCTL_FAIL,
                          "warning: could not stop the Gmail watch of %s (it ends by itself "
                          "within 7 days): %s",
                          email, err.msg);
    }
    OPENSSL_cleanse(token, strlen(token));
    free(token);
}

static int
s_remove(sb_sbctl_t *ctl, const char *email, int keep_watch)
{
    int rc = sb_sbctl_db(ctl);
    if (rc != SB_SBCTL_OK)
        return rc;
    int failed = 0;
    char *stored = s_stored_email(ctl, email, &failed);
    if (failed)
        return SB_SBCTL_FAIL;
    if (stored == NULL)
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "no mailbox %s", email);
    if (!keep_watch)
        s_stop_watch(ctl, stored);
    const char *params[] = {stored};
    sb_err_t err = {0};
    if (sb_renewer_db_exec(ctl->db, "could not delete the mailbox",
                           "DELETE FROM mailboxes WHERE email = $1", 1, params, &err) != 0)
        rc = sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", err.msg);
    else
        fprintf(ctl->out, "mailbox %s removed\n", stored);
    free(stored);
    return rc;
}

int
sb_sbctl_mailbox(sb_sbctl_t *ctl, int argc, char **argv)
{
    const char *token_file = NULL, *history = NULL;
    int keep_watch = 0, help = 0;
    const sb_sbctl_opt_t opts[] = {{"--refresh-token-file", &token_file, NULL},
                                   {"--history-id", &history, NULL},
                                   {"--keep-watch", NULL, &keep_watch}};
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
    if (strcmp(verb, "add") == 0 && n == 2)
        return s_add(ctl, pos[1], token_file, history);
    if (strcmp(verb, "list") == 0 && n == 1)
        return s_list(ctl);
    if (strcmp(verb, "remove") == 0 && n == 2)
        return s_remove(ctl, pos[1], keep_watch);
    return s_usage_error(ctl, n == 0 ? "mailbox needs add, list or remove"
                                     : "wrong arguments for mailbox");
}
