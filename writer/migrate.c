/* migrate - apply the compiled-in migrations once each (see migrate.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "migrate.h"
#include "migrations.h"
#include "db.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_banned.h"

// Run one command without parameters; 0 when it returned `want`.
static int
s_exec(PGconn *conn, const char *sql, ExecStatusType want, const char *what, sb_err_t *err)
{
    PGresult *res = PQexec(conn, sql);
    int rc = 0;
    if (PQresultStatus(res) != want) {
        char why[SB_ERR_MSG_MAX];
        sb_db_describe_error(conn, res, why, sizeof why);
        sb_err_set(err, 0, "could not %s: %s", what, why);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

static int
s_applied(const PGresult *res, int version)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (strtol(PQgetvalue(res, i, 0), NULL, 10) == version)
            return 1;
    return 0;
}

// One migration and its sb_schema_migrations row, in one transaction.
static int
s_apply(PGconn *conn, const sb_migration_t *m, sb_err_t *err)
{
    char what[128];
    snprintf(what, sizeof what, "apply migration \"%s\"", m->name);
    if (s_exec(conn, "BEGIN", PGRES_COMMAND_OK, "begin a migration", err) != 0)
        return -1;
    // A file is several statements; PQexec returns the last one's result, or the error.
    PGresult *res = PQexec(conn, m->sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        char why[SB_ERR_MSG_MAX];
        sb_db_describe_error(conn, res, why, sizeof why);
        sb_err_set(err, 0, "could not %s: %s", what, why);
        PQclear(res);
        return -1; // the caller rolls back
    }
    PQclear(res);
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[2] = {version, m->name};
    res = PQexecParams(conn, "INSERT INTO sb_schema_migrations (version, name) VALUES ($1, $2)", 2,
                       NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        char why[SB_ERR_MSG_MAX];
        sb_db_describe_error(conn, res, why, sizeof why);
        sb_err_set(err, 0, "could not record migration \"%s\": %s", m->name, why);
    }
    PQclear(res);
    if (!ok || s_exec(conn, "COMMIT", PGRES_COMMAND_OK, what, err) != 0)
        return -1;
    sb_log_info(NULL, "applied migration %s", m->name);
    return 0;
}

static int
s_apply_missing(PGconn *conn, int *n_applied, sb_err_t *err)
{
    if (s_exec(conn,
               "CREATE TABLE IF NOT EXISTS sb_schema_migrations ("
               " version int PRIMARY KEY, name text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT now())",
               PGRES_COMMAND_OK, "create sb_schema_migrations", err) != 0)
        return -1;
    PGresult *done = PQexec(conn, "SELECT version FROM sb_schema_migrations");
    if (PQresultStatus(done) != PGRES_TUPLES_OK) {
        char why[SB_ERR_MSG_MAX];
        sb_db_describe_error(conn, done, why, sizeof why);
        sb_err_set(err, 0, "could not read sb_schema_migrations: %s", why);
        PQclear(done);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < sb_migrations_n && rc == 0; i++) {
        if (s_applied(done, sb_migrations[i].version))
            continue;
        rc = s_apply(conn, &sb_migrations[i], err);
        if (rc == 0)
            (*n_applied)++;
    }
    PQclear(done);
    return rc;
}

// Record DEFAULT_COUNTRY_CODE where the customers trigger reads it. If it changed, every
// stored phone_e164 was computed with the old code: recompute them all ("SET phone =
// phone" fires the trigger), in the same transaction so no reader sees a mix.
static int
s_settings(PGconn *conn, const char *default_cc, int recompute, sb_err_t *err)
{
    if (s_exec(conn, "BEGIN", PGRES_COMMAND_OK, "begin settings", err) != 0)
        return -1;
    const char *params[1] = {default_cc};
    PGresult *res = PQexecParams(
        conn,
        "WITH old AS (SELECT value FROM sb_settings WHERE key = 'default_country_code') "
        "INSERT INTO sb_settings (key, value) VALUES ('default_country_code', $1) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value "
        "RETURNING (SELECT value FROM old)",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char why[SB_ERR_MSG_MAX];
        sb_db_describe_error(conn, res, why, sizeof why);
        sb_err_set(err, 0, "could not store default_country_code: %s", why);
        PQclear(res);
        return -1;
    }
    int was_null = PQgetisnull(res, 0, 0);
    if (!was_null && strcmp(PQgetvalue(res, 0, 0), default_cc) != 0) {
        sb_log_warn(NULL, "DEFAULT_COUNTRY_CODE changed from %s to %s: recomputing customers",
                    PQgetvalue(res, 0, 0), default_cc);
        recompute = 1;
    }
    PQclear(res);
    if ((recompute || was_null) &&
        s_exec(conn, "UPDATE customers SET phone = phone, email = email", PGRES_COMMAND_OK,
               "recompute customers.phone_e164", err) != 0)
        return -1;
    return s_exec(conn, "COMMIT", PGRES_COMMAND_OK, "commit settings", err);
}

int
sb_migrate(PGconn *conn, const char *default_cc, sb_err_t *err)
{
    char lock[96], unlock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%lld)", (long long)SB_MIGRATE_LOCK_KEY);
    snprintf(unlock, sizeof unlock, "SELECT pg_advisory_unlock(%lld)",
             (long long)SB_MIGRATE_LOCK_KEY);
    // Blocks while another writer migrates; it then finds everything applied.
    if (s_exec(conn, lock, PGRES_TUPLES_OK, "take the migration lock", err) != 0)
        return -1;
    int n_applied = 0;
    int rc = s_apply_missing(conn, &n_applied, err);
    if (rc == 0)
        rc = s_settings(conn, default_cc, n_applied > 0, err);
    if (rc != 0 && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    // The lock is per session: a lost connection released it already.
    if (PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, unlock));
    return rc;
}
