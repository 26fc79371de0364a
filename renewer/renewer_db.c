/* renewer_db - see renewer_db.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include "renewer_db.h"
#include "sb_banned.h"

PGconn *
sb_renewer_db_connect(const char *url, const char *application_name, int timeout_ms, sb_err_t *err)
{
    char options[64];
    snprintf(options, sizeof options, "-c statement_timeout=%d", timeout_ms);
    const char *keys[] = {"connect_timeout", "application_name", "client_encoding",
                          "options",         "dbname",           NULL};
    const char *values[] = {
        SB_RENEWER_DB_CONNECT_TIMEOUT_S, application_name, "UTF8", options, url, NULL};
    PGconn *db = PQconnectdbParams(keys, values, 1); // expand_dbname: url may be a URL
    if (db == NULL) {
        sb_err_set(err, 0, "could not connect to the database: out of memory");
        return NULL;
    }
    if (PQstatus(db) != CONNECTION_OK) {
        // libpq's message names host and port, never the password.
        const char *msg = PQerrorMessage(db);
        size_t len = strlen(msg);
        while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
            len--;
        sb_err_set(err, 0, "could not connect to the database: %.*s", (int)len, msg);
        PQfinish(db);
        return NULL;
    }
    return db;
}

PGresult *
sb_renewer_db_query(PGconn *db, const char *what, const char *sql, int n_params,
                    const char *const *params, sb_err_t *err)
{
    PGresult *res = PQexecParams(db, sql, n_params, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(db);
    if (msg == NULL || *msg == '\0')
        msg = PQerrorMessage(db);
    size_t len = strcspn(msg, "\n"); // the first line: LINE 1 and the caret add nothing here
    while (len > 0 && msg[len - 1] == ' ')
        len--;
    sb_err_set(err, 0, "%s: %.*s", what, (int)len, msg);
    PQclear(res);
    return NULL;
}

int
sb_renewer_db_exec(PGconn *db, const char *what, const char *sql, int n_params,
                   const char *const *params, sb_err_t *err)
{
    PGresult *res = sb_renewer_db_query(db, what, sql, n_params, params, err);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int
sb_renewer_db_trylock(PGconn *db, int lock_class, const char *key, sb_err_t *err)
{
    char cls[16];
    snprintf(cls, sizeof cls, "%d", lock_class);
    const char *params[] = {cls, key};
    PGresult *res =
        sb_renewer_db_query(db, "could not take the advisory lock",
                            "SELECT pg_try_advisory_lock($1::int, hashtext($2))", 2, params, err);
    if (res == NULL)
        return -1;
    int got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return got;
}

void
sb_renewer_db_unlock(PGconn *db, int lock_class, const char *key)
{
    char cls[16];
    snprintf(cls, sizeof cls, "%d", lock_class);
    const char *params[] = {cls, key};
    // A failure here means the connection is gone, and the lock went with the session.
    PGresult *res = PQexecParams(db, "SELECT pg_advisory_unlock($1::int, hashtext($2))", 2, NULL,
                                 params, NULL, NULL, 0);
    PQclear(res);
}

void
sb_renewer_strv_free(char ***strv_p)
{
    char **strv = *strv_p;
    if (strv == NULL)
        return;
    for (char **p = strv; *p != NULL; p++)
        free(*p);
    free(strv);
    *strv_p = NULL;
}

double
sb_renewer_random_unit(void)
{
    uint32_t x = 0;
    if (RAND_bytes((unsigned char *)&x, sizeof x) != 1)
        x = (uint32_t)rand(); // jitter only: a weak value does no harm
    return (double)x / 4294967296.0;
}

void
sb_renewer_random_text(char *out, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t i = 0;
    while (i < n) {
        unsigned char buf[64];
        if (RAND_bytes(buf, sizeof buf) != 1)
            abort(); // a secret from a failed generator must never be handed out
        for (size_t k = 0; k < sizeof buf && i < n; k++)
            if (buf[k] < 248) // 248 = 4 * 62: no modulo bias
                out[i++] = alphabet[buf[k] % 62];
    }
    out[n] = '\0';
}
