/* rc_subscriptions - RingCentral subscriptions and their rows (see rc_subscriptions.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "rc_subscriptions.h"
#include "renewer.h"
#include "renewer_db.h"
#include "sb_mem.h"
#include "sb_banned.h"

#define S_PATH "/restapi/v1.0/subscription"
#define S_TOKEN_CONTEXT "ringcentral_subscriptions.verification_token:"
#define S_ID_MAX 120 // longest id we put into a path (RingCentral's are 36-character UUIDs)

// shared/fixtures/ringcentral/subscription-create-request.json
static const char *const s_sms_filters[] = {
    "/restapi/v1.0/account/~/extension/~/message-store/instant?type=SMS",
    "/restapi/v1.0/account/~/extension/~/message-store?type=SMS&direction=Outbound",
    "/restapi/v1.0/subscription/~?threshold=86400&interval=21600",
};
// shared/fixtures/ringcentral/subscription-create-request-calls.json
static const char *const s_call_filters[] = {
    "/restapi/v1.0/account/~/extension/~/telephony/sessions",
    "/restapi/v1.0/subscription/~?threshold=86400&interval=21600",
};

static void
s_wipe_free(char *text)
{
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
}

// --- Pure pieces -----------------------------------------------------------------------------

json_t *
sb_rc_sub_filters(sb_rc_sub_kind_t kind)
{
    const char *const *list = kind == SB_RC_SUB_CALL ? s_call_filters : s_sms_filters;
    size_t n = kind == SB_RC_SUB_CALL ? sizeof s_call_filters / sizeof s_call_filters[0]
                                      : sizeof s_sms_filters / sizeof s_sms_filters[0];
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_string(list[i]));
    return out;
}

const char *
sb_rc_sub_kind_name(const json_t *filters)
{
    size_t i;
    const json_t *f;
    int sms = 0;
    json_array_foreach(filters, i, f)
    {
        const char *s = json_string_value(f);
        if (s != NULL && strstr(s, "/telephony/sessions") != NULL)
            return "call";
        if (s != NULL && strstr(s, "/message-store") != NULL)
            sms = 1;
    }
    return sms ? "sms" : "other";
}

json_t *
sb_rc_sub_filters_portable(const json_t *filters)
{
    static const char prefix[] = S_PATH "/";
    json_t *out = json_array();
    size_t i;
    const json_t *f;
    json_array_foreach(filters, i, f)
    {
        const char *s = json_string_value(f);
        if (s == NULL)
            continue;
        if (strncmp(s, prefix, sizeof prefix - 1) == 0) {
            const char *rest = s + sizeof prefix - 1;
            const char *end = rest + strcspn(rest, "?/");
            char *portable = sb_xasprintf("%s~%s", prefix, end);
            json_array_append_new(out, json_string(portable));
            free(portable);
        } else {
            json_array_append_new(out, json_string(s));
        }
    }
    return out;
}

char *
sb_rc_sub_create_body(const json_t *filters, const char *address, const char *token)
{
    json_t *doc = json_pack("{s:O,s:{s:s,s:s,s:s},s:i}", "eventFilters", (json_t *)filters,
                            "deliveryMode", "transportType", "WebHook", "address", address,
                            "verificationToken", token, "expiresIn", SB_RC_SUB_EXPIRES_IN_S);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text == NULL)
        return NULL; // not UTF-8 text: the caller says so
    char *copy = sb_xstrdup(text);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return copy;
}

char *
sb_rc_sub_token_generate(void)
{
    char random[SB_RC_SUB_TOKEN_CHARS + 1];
    sb_renewer_random_text(random, SB_RC_SUB_TOKEN_CHARS);
    char *token = sb_xasprintf(SB_RC_SUB_TOKEN_PREFIX "%s", random);
    OPENSSL_cleanse(random, sizeof random);
    return token;
}

void
sb_rc_sub_token_fingerprint(const char *token, char out[65])
{
    unsigned char digest[32];
    unsigned int len = 0;
    EVP_Digest(token, strlen(token), digest, &len, EVP_sha256(), NULL);
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = '\0';
}

int
sb_rc_sub_parse(const char *body, size_t len, sb_rc_sub_info_t *info, sb_err_t *err)
{
    memset(info, 0, sizeof *info);
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    const char *id = json_string_value(json_object_get(root, "id"));
    const char *status = json_string_value(json_object_get(root, "status"));
    const char *exp = json_string_value(json_object_get(root, "expirationTime"));
    int rc = -1;
    if (id == NULL || *id == '\0' || strlen(id) >= sizeof info->id) {
        sb_err_set(err, 0, "invalid subscription answer: no id");
    } else {
        snprintf(info->id, sizeof info->id, "%s", id);
        snprintf(info->status, sizeof info->status, "%s", status ? status : "");
        if (exp != NULL && strlen(exp) < sizeof info->expiration_time)
            snprintf(info->expiration_time, sizeof info->expiration_time, "%s", exp);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

int
sb_rc_sub_status_dead(const char *status)
{
    return status != NULL &&
           (strcasecmp(status, "Blacklisted") == 0 || strcasecmp(status, "Suspended") == 0);
}

// Ids go into API paths: RingCentral's are UUIDs, so anything else is refused.
static int
s_id_ok(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > S_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '_')
            return 0;
    return 1;
}

// --- RingCentral calls -----------------------------------------------------------------------

// The answer's "message" (or errorCode), shortened, for a reason text.
static void
s_api_error(const char *what, const sb_rc_response_t *r, sb_err_t *err)
{
    json_t *root = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    const char *code = json_string_value(json_object_get(root, "errorCode"));
    const char *msg = json_string_value(json_object_get(root, "message"));
    sb_err_set(err, 0, "%s answered HTTP %ld%s%.32s%s%.100s", what, r->status, code ? " " : "",
               code ? code : "", msg ? ": " : "", msg ? msg : "");
    json_decref(root);
}

// One call: 0 with *r (any status), or -1 with err (nothing usable came).
static int
s_call(const sb_rc_sub_env_t *env, const char *method, const char *id, const char *suffix,
       const char *body, int idempotent, sb_rc_response_t *r, sb_err_t *err)
{
    char path[256];
    if (id != NULL)
        snprintf(path, sizeof path, S_PATH "/%s%s", id, suffix ? suffix : "");
    else
        snprintf(path, sizeof path, S_PATH);
    return sb_ringcentral_request(env->rc, method, path, body, body ? strlen(body) : 0, idempotent,
                                  r, err);
}

// Create at RingCentral. 0 with info, or -1 with err.
static int
s_create_remote(const sb_rc_sub_env_t *env, const json_t *filters, const char *address,
                const char *token, sb_rc_sub_info_t *info, sb_err_t *err)
{
    char *body = sb_rc_sub_create_body(filters, address, token);
    if (body == NULL) {
        sb_err_set(err, 0, "cannot build the subscription request (address not UTF-8?)");
        return -1;
    }
    sb_rc_response_t r = {0};
    // Not idempotent: a retried create could leave two subscriptions delivering twice.
    int rc = s_call(env, "POST", NULL, NULL, body, 0, &r, err);
    s_wipe_free(body);
    if (rc == 0 && (r.status < 200 || r.status >= 300)) {
        s_api_error("creating the subscription", &r, err);
        rc = -1;
    } else if (rc == 0) {
        rc = sb_rc_sub_parse(r.body, r.len, info, err);
    }
    sb_rc_response_release(&r);
    return rc;
}

// Best effort: a subscription we no longer want. 1 gone (2xx or 404), 0 not, with err.
static int
s_delete_remote(const sb_rc_sub_env_t *env, const char *id, sb_err_t *err)
{
    sb_rc_response_t r = {0};
    int gone = 0;
    if (s_call(env, "DELETE", id, NULL, NULL, 1, &r, err) == 0) {
        gone = (r.status >= 200 && r.status < 300) || r.status == 404;
        if (!gone)
            s_api_error("deleting the subscription", &r, err);
    }
    sb_rc_response_release(&r);
    return gone;
}

// --- The rows --------------------------------------------------------------------------------

int
sb_rc_sub_due(const sb_rc_sub_env_t *env, char ***ids, size_t *n, sb_err_t *err)
{
    *ids = NULL;
    *n = 0;
    char before[32], check[32];
    snprintf(before, sizeof before, "%lld", (long long)env->renew_before_ms);
    snprintf(check, sizeof check, "%lld", (long long)env->check_interval_ms);
    const char *params[] = {before, check};
    PGresult *res =
        sb_renewer_db_query(env->db, "could not list the subscriptions due",
                            "SELECT id FROM ringcentral_subscriptions"
                            " WHERE COALESCE(status, '') <> 'Retired'"
                            "   AND (renew_after IS NULL OR renew_after <= now())"
                            "   AND (expires_at IS NULL"
                            "        OR expires_at < now() + $1::bigint * interval '1 millisecond'"
                            "        OR checked_at IS NULL"
                            "        OR checked_at < now() - $2::bigint * interval '1 millisecond')"
                            " ORDER BY expires_at NULLS FIRST",
                            2, params, err);
    if (res == NULL)
        return -1;
    int rows = PQntuples(res);
    char **out = sb_xcalloc((size_t)rows + 1, sizeof *out);
    for (int i = 0; i < rows; i++)
        out[i] = sb_xstrdup(PQgetvalue(res, i, 0));
    PQclear(res);
    *ids = out;
    *n = (size_t)rows;
    return 0;
}

typedef struct {
    char id[128];
    json_t *filters;      // event_filters
    char *address;        // delivery address
    char *sealed;         // verification_token (sealed), or NULL
    char fingerprint[65]; // verification_token_sha256, or ""
    int failures;         // renew_failures
    int expiring;         // within renew_before (or no expiry known)
    int check_due;        // last status check older than check_interval
    int ready;            // renew_after passed
} s_row_t;

static void
s_row_release(s_row_t *row)
{
    json_decref(row->filters);
    free(row->address);
    free(row->sealed);
    memset(row, 0, sizeof *row);
}

// Read the row under the lock: 1 found, 0 none (or retired), -1 error.
static int
s_row_read(const sb_rc_sub_env_t *env, const char *id, s_row_t *row, sb_err_t *err)
{
    char before[32], check[32];
    snprintf(before, sizeof before, "%lld", (long long)env->renew_before_ms);
    snprintf(check, sizeof check, "%lld", (long long)env->check_interval_ms);
    const char *params[] = {id, before, check};
    PGresult *res = sb_renewer_db_query(
        env->db, "could not read the subscription",
        "SELECT id, event_filters::text, address, verification_token,"
        "       COALESCE(verification_token_sha256, ''), renew_failures,"
        "       expires_at IS NULL"
        "         OR expires_at < now() + $2::bigint * interval '1 millisecond',"
        "       checked_at IS NULL"
        "         OR checked_at < now() - $3::bigint * interval '1 millisecond',"
        "       renew_after IS NULL OR renew_after <= now()"
        "  FROM ringcentral_subscriptions"
        " WHERE id = $1 AND COALESCE(status, '') <> 'Retired'",
        3, params, err);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        snprintf(row->id, sizeof row->id, "%s", PQgetvalue(res, 0, 0));
        row->filters = PQgetisnull(res, 0, 1) ? NULL : json_loads(PQgetvalue(res, 0, 1), 0, NULL);
        row->address = PQgetisnull(res, 0, 2) ? NULL : sb_xstrdup(PQgetvalue(res, 0, 2));
        row->sealed = PQgetisnull(res, 0, 3) ? NULL : sb_xstrdup(PQgetvalue(res, 0, 3));
        snprintf(row->fingerprint, sizeof row->fingerprint, "%s", PQgetvalue(res, 0, 4));
        row->failures = (int)strtol(PQgetvalue(res, 0, 5), NULL, 10);
        row->expiring = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
        row->check_due = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
        row->ready = strcmp(PQgetvalue(res, 0, 8), "t") == 0;
    }
    PQclear(res);
    return found;
}

// What RingCentral said about the subscription: store it. renewed: it was a renewal.
static int
s_store_info(const sb_rc_sub_env_t *env, const char *id, const sb_rc_sub_info_t *info, int renewed,
             sb_err_t *err)
{
    const char *params[] = {id, info->expiration_time, info->status, renewed ? "t" : "f"};
    return sb_renewer_db_exec(
        env->db, "could not store the subscription",
        "UPDATE ringcentral_subscriptions"
        "   SET expires_at = COALESCE(NULLIF($2, '')::timestamptz, expires_at),"
        "       status = COALESCE(NULLIF($3, ''), status), checked_at = now(),"
        "       renewed_at = CASE WHEN $4::boolean THEN now() ELSE renewed_at END,"
        "       renew_failures = 0, renew_after = NULL, last_error = NULL, updated_at = now()"
        " WHERE id = $1",
        4, params, err);
}

static int
s_store_failure(const sb_rc_sub_env_t *env, const s_row_t *row, sb_rc_sub_result_t *res,
                sb_err_t *err)
{
    res->outcome = SB_RC_SUB_FAILED;
    res->failures = row->failures + 1;
    res->retry_in_ms = sb_renewer_backoff_ms(res->failures, env->backoff_min_ms,
                                             env->backoff_max_ms, sb_renewer_random_unit());
    char wait[32];
    snprintf(wait, sizeof wait, "%lld", (long long)res->retry_in_ms);
    const char *params[] = {row->id, res->why, wait};
    return sb_renewer_db_exec(env->db, "could not record the failure",
                              "UPDATE ringcentral_subscriptions"
                              "   SET renew_failures = renew_failures + 1,"
                              "       renew_after = now() + $3::bigint * interval '1 millisecond',"
                              "       last_error = $2, updated_at = now()"
                              " WHERE id = $1",
                              3, params, err);
}

// The new row, and (old_id not NULL) the old one retired, in one transaction.
static int
s_insert_row(const sb_rc_sub_env_t *env, const sb_rc_sub_info_t *info, const json_t *filters,
             const char *address, const char *token, const char *old_id, sb_err_t *err)
{
    char *ctx = sb_xasprintf(S_TOKEN_CONTEXT "%s", info->id);
    char *sealed = NULL;
    if (env->box != NULL) {
        sealed = sb_secretbox_seal(env->box, token, ctx, err);
        if (sealed == NULL) {
            free(ctx);
            return -1;
        }
    }
    free(ctx);
    char fingerprint[65];
    sb_rc_sub_token_fingerprint(token, fingerprint);
    char *filters_text = json_dumps(filters, JSON_COMPACT);
    const char *params[] = {info->id,
                            filters_text,
                            address,
                            info->expiration_time,
                            info->status[0] ? info->status : "Active",
                            sealed,
                            fingerprint};
    int rc = sb_renewer_db_exec(env->db, "could not begin", "BEGIN", 0, NULL, err);
    if (rc == 0)
        rc = sb_renewer_db_exec(
            env->db, "could not store the new subscription",
            "INSERT INTO ringcentral_subscriptions (id, event_filters, address, expires_at,"
            "       status, verification_token, verification_token_sha256, renewed_at,"
            "       checked_at)"
            " VALUES ($1, $2::jsonb, $3, NULLIF($4, '')::timestamptz, $5, $6, $7, now(), now())",
            7, params, err);
    if (rc == 0 && old_id != NULL) {
        const char *p2[] = {old_id, info->id};
        rc = sb_renewer_db_exec(env->db, "could not retire the old subscription",
                                "UPDATE ringcentral_subscriptions SET status = 'Retired',"
                                "       replaced_by = $2, retired_at = now(), updated_at = now()"
                                " WHERE id = $1",
                                2, p2, err);
    }
    if (rc == 0)
        rc = sb_renewer_db_exec(env->db, "could not commit", "COMMIT", 0, NULL, err);
    if (rc != 0) {
        PGresult *r = PQexec(env->db, "ROLLBACK");
        PQclear(r);
    }
    free(filters_text);
    free(sealed);
    return rc;
}

// The token a re-created subscription gets (see the header). NULL with res->why.
static char *
s_token_for(const sb_rc_sub_env_t *env, const s_row_t *row, sb_rc_sub_result_t *res)
{
    if (row->sealed != NULL) {
        char *ctx = sb_xasprintf(S_TOKEN_CONTEXT "%s", row->id);
        sb_err_t why = {0};
        char *token = sb_secretbox_load(env->box, row->sealed, ctx, &why);
        free(ctx);
        if (token != NULL)
            return token;
        snprintf(res->note, sizeof res->note,
                 "the stored verification token cannot be read (%.180s)", why.msg);
    }
    const char *conf = env->configured_token;
    if (conf == NULL || *conf == '\0') {
        snprintf(res->why, sizeof res->why,
                 "cannot re-create the subscription: no verification token (set "
                 "RINGCENTRAL_VERIFICATION_TOKEN, or SWITCHBOARD_SECRET_KEY before creating it)");
        return NULL;
    }
    char fingerprint[65];
    sb_rc_sub_token_fingerprint(conf, fingerprint);
    if (row->fingerprint[0] && strcmp(fingerprint, row->fingerprint) != 0)
        snprintf(res->note, sizeof res->note,
                 "RINGCENTRAL_VERIFICATION_TOKEN is not the token the subscription was created "
                 "with; the new subscription uses RINGCENTRAL_VERIFICATION_TOKEN");
    return sb_xstrdup(conf);
}

// Replace a subscription that is gone (404) or dead (Blacklisted, Suspended).
static int
s_recreate(const sb_rc_sub_env_t *env, const s_row_t *row, int still_there, sb_rc_sub_result_t *res,
           sb_err_t *err)
{
    char *token = s_token_for(env, row, res);
    if (token == NULL)
        return s_store_failure(env, row, res, err);
    json_t *filters = row->filters ? sb_rc_sub_filters_portable(row->filters) : NULL;
    if (filters == NULL || json_array_size(filters) == 0 || row->address == NULL) {
        snprintf(res->why, sizeof res->why,
                 "cannot re-create the subscription: its row has no "
                 "event filters or no address");
        json_decref(filters);
        s_wipe_free(token);
        return s_store_failure(env, row, res, err);
    }
    sb_rc_sub_info_t info;
    sb_err_t why = {0};
    int rc;
    if (s_create_remote(env, filters, row->address, token, &info, &why) != 0) {
        snprintf(res->why, sizeof res->why, "could not re-create the subscription: %.200s",
                 why.msg);
        rc = s_store_failure(env, row, res, err);
    } else if (s_insert_row(env, &info, filters, row->address, token, row->id, err) != 0) {
        sb_err_t ignored = {0};
        s_delete_remote(env, info.id, &ignored); // no row: it must not deliver unknown to us
        rc = -1;
    } else {
        res->outcome = SB_RC_SUB_RECREATED;
        snprintf(res->new_id, sizeof res->new_id, "%s", info.id);
        snprintf(res->status, sizeof res->status, "%s", info.status);
        snprintf(res->expiration_time, sizeof res->expiration_time, "%s", info.expiration_time);
        if (still_there && !s_delete_remote(env, row->id, &why) && !res->note[0])
            snprintf(res->note, sizeof res->note,
                     "the old subscription stays at RingCentral: %.190s", why.msg);
        rc = 0;
    }
    json_decref(filters);
    s_wipe_free(token);
    return rc;
}

// GET the subscription after a renewal that failed with a 4xx: gone or dead means re-create.
// 1 re-create (*still_there set), 0 not (res->why says why), with info filled when read.
static int
s_needs_recreate(const sb_rc_sub_env_t *env, const char *id, sb_rc_sub_info_t *info,
                 int *still_there, sb_rc_sub_result_t *res)
{
    sb_rc_response_t r = {0};
    sb_err_t why = {0};
    int recreate = 0;
    memset(info, 0, sizeof *info);
    if (s_call(env, "GET", id, NULL, NULL, 1, &r, &why) != 0) {
        snprintf(res->why, sizeof res->why, "%s", why.msg);
    } else if (r.status == 404) {
        recreate = 1;
        *still_there = 0;
        snprintf(res->why, sizeof res->why, "the subscription no longer exists (HTTP 404)");
    } else if (r.status != 200 || sb_rc_sub_parse(r.body, r.len, info, &why) != 0) {
        if (r.status != 200)
            s_api_error("reading the subscription", &r, &why);
        snprintf(res->why, sizeof res->why, "%s", why.msg);
    } else if (sb_rc_sub_status_dead(info->status)) {
        recreate = 1;
        *still_there = 1;
        snprintf(res->why, sizeof res->why, "the subscription is %s", info->status);
    }
    sb_rc_response_release(&r);
    return recreate;
}

// Renew (renew = 1) or check the status of a row read under the lock.
static int
s_act(const sb_rc_sub_env_t *env, const s_row_t *row, int renew, sb_rc_sub_result_t *res,
      sb_err_t *err)
{
    sb_rc_response_t r = {0};
    sb_err_t why = {0};
    sb_rc_sub_info_t info;
    int rc = renew ? s_call(env, "POST", row->id, "/renew", NULL, 1, &r, &why)
                   : s_call(env, "GET", row->id, NULL, NULL, 1, &r, &why);
    const char *what = renew ? "renewing the subscription" : "reading the subscription";
    int still_there = 1;
    if (rc != 0) { // transport, 5xx, 429 after the client's own retries
        snprintf(res->why, sizeof res->why, "%s", why.msg);
        sb_rc_response_release(&r);
        return s_store_failure(env, row, res, err);
    }
    if (r.status == 404) {
        snprintf(res->why, sizeof res->why, "the subscription no longer exists (HTTP 404)");
        sb_rc_response_release(&r);
        return s_recreate(env, row, 0, res, err);
    }
    if (r.status >= 200 && r.status < 300 && sb_rc_sub_parse(r.body, r.len, &info, &why) == 0) {
        sb_rc_response_release(&r);
        snprintf(res->status, sizeof res->status, "%s", info.status);
        if (sb_rc_sub_status_dead(info.status)) {
            snprintf(res->why, sizeof res->why, "the subscription is %s", info.status);
            return s_recreate(env, row, 1, res, err);
        }
        snprintf(res->expiration_time, sizeof res->expiration_time, "%s", info.expiration_time);
        res->outcome = renew ? SB_RC_SUB_RENEWED : SB_RC_SUB_CHECKED;
        return s_store_info(env, row->id, &info, renew, err);
    }
    long status = r.status;
    if (status < 200 || status >= 300) // else a 2xx we could not read: why says so
        s_api_error(what, &r, &why);
    snprintf(res->why, sizeof res->why, "%s", why.msg);
    sb_rc_response_release(&r);
    // A renewal refused with a 4xx: a Blacklisted subscription may answer so. Look.
    if (renew && status >= 400 && status < 500 &&
        s_needs_recreate(env, row->id, &info, &still_there, res))
        return s_recreate(env, row, still_there, res, err);
    return s_store_failure(env, row, res, err);
}

int
sb_rc_sub_renew(const sb_rc_sub_env_t *env, const char *id, int force, sb_rc_sub_result_t *res,
                sb_err_t *err)
{
    memset(res, 0, sizeof *res);
    snprintf(res->id, sizeof res->id, "%s", id);
    if (!s_id_ok(id)) {
        res->outcome = SB_RC_SUB_NOT_FOUND;
        return 0;
    }
    int got = sb_renewer_db_trylock(env->db, SB_RENEWER_LOCK_SUBSCRIPTION, id, err);
    if (got <= 0) {
        res->outcome = SB_RC_SUB_BUSY;
        return got;
    }
    // Read again under the lock: a replica that held it a moment ago may have renewed it.
    s_row_t row;
    memset(&row, 0, sizeof row);
    int rc = s_row_read(env, id, &row, err);
    if (rc == 0) {
        res->outcome = SB_RC_SUB_NOT_FOUND;
    } else if (rc == 1 && !force && !(row.ready && (row.expiring || row.check_due))) {
        res->outcome = SB_RC_SUB_NOT_DUE;
    } else if (rc == 1) {
        rc = s_act(env, &row, force || row.expiring, res, err);
    }
    s_row_release(&row);
    sb_renewer_db_unlock(env->db, SB_RENEWER_LOCK_SUBSCRIPTION, id);
    return rc < 0 ? -1 : 0;
}

int
sb_rc_sub_create(const sb_rc_sub_env_t *env, sb_rc_sub_kind_t kind, const char *address,
                 const char *token, sb_rc_sub_result_t *res, sb_err_t *err)
{
    memset(res, 0, sizeof *res);
    json_t *filters = sb_rc_sub_filters(kind);
    sb_rc_sub_info_t info;
    sb_err_t why = {0};
    int rc = 0;
    if (s_create_remote(env, filters, address, token, &info, &why) != 0) {
        res->outcome = SB_RC_SUB_FAILED;
        snprintf(res->why, sizeof res->why, "%s", why.msg);
    } else if (s_insert_row(env, &info, filters, address, token, NULL, err) != 0) {
        sb_err_t ignored = {0};
        s_delete_remote(env, info.id, &ignored);
        rc = -1;
    } else {
        res->outcome = SB_RC_SUB_RECREATED;
        snprintf(res->id, sizeof res->id, "%s", info.id);
        snprintf(res->new_id, sizeof res->new_id, "%s", info.id);
        snprintf(res->status, sizeof res->status, "%s", info.status);
        snprintf(res->expiration_time, sizeof res->expiration_time, "%s", info.expiration_time);
    }
    json_decref(filters);
    return rc;
}

int
sb_rc_sub_delete(const sb_rc_sub_env_t *env, const char *id, sb_rc_sub_result_t *res, sb_err_t *err)
{
    memset(res, 0, sizeof *res);
    snprintf(res->id, sizeof res->id, "%s", id);
    if (!s_id_ok(id)) {
        res->outcome = SB_RC_SUB_NOT_FOUND;
        return 0;
    }
    int got = sb_renewer_db_trylock(env->db, SB_RENEWER_LOCK_SUBSCRIPTION, id, err);
    if (got <= 0) {
        res->outcome = SB_RC_SUB_BUSY;
        return got;
    }
    sb_rc_response_t r = {0};
    sb_err_t why = {0};
    int rc = 0;
    int remote = 0; // 1 deleted now, 0 was not there
    if (s_call(env, "DELETE", id, NULL, NULL, 1, &r, &why) != 0) {
        res->outcome = SB_RC_SUB_FAILED;
        snprintf(res->why, sizeof res->why, "%s", why.msg);
    } else if ((r.status < 200 || r.status >= 300) && r.status != 404) {
        res->outcome = SB_RC_SUB_FAILED;
        s_api_error("deleting the subscription", &r, &why);
        snprintf(res->why, sizeof res->why, "%s", why.msg);
    } else {
        remote = r.status != 404;
        const char *params[] = {id};
        PGresult *del = sb_renewer_db_query(env->db, "could not delete the row",
                                            "DELETE FROM ringcentral_subscriptions WHERE id = $1",
                                            1, params, err);
        if (del == NULL) {
            rc = -1;
        } else {
            int rows = (int)strtol(PQcmdTuples(del), NULL, 10);
            res->outcome = rows > 0 || remote ? SB_RC_SUB_DELETED : SB_RC_SUB_NOT_FOUND;
            PQclear(del);
        }
    }
    sb_rc_response_release(&r);
    sb_renewer_db_unlock(env->db, SB_RENEWER_LOCK_SUBSCRIPTION, id);
    return rc;
}
