/* migrate - bring the database to the schema this sb-writer was built with.
 *
 * The migrations are writer/migrations/NNNN_name.sql, compiled in (migrations.h). At
 * start every writer calls sb_migrate() once on its first connection:
 *   1. pg_advisory_lock(SB_MIGRATE_LOCK_KEY): writers starting together take turns, and
 *      the second finds everything applied;
 *   2. sb_schema_migrations(version, name, applied_at) is created if missing;
 *   3. each migration not recorded there runs in its own transaction and is recorded in
 *      the same transaction, so a crash leaves it either applied and recorded or neither;
 *   4. sb_settings.default_country_code is set to default_cc; when it changed (or a
 *      migration ran), customers.phone_e164 and email_norm are recomputed by their trigger;
 *   5. the lock is released.
 * A database with versions unknown to this binary (a newer writer ran) is left alone. */
#ifndef SB_MIGRATE_H
#define SB_MIGRATE_H
#include <libpq-fe.h>
#include "sb_err.h"

#define SB_MIGRATE_LOCK_KEY 0x53424d4947524154LL // "SBMIGRAT": any fixed key of ours

// 0, or -1 with err. After a failure the caller can tell a lost connection (retry) from a
// broken migration (stop) by PQstatus(conn). Logs one info line per applied migration.
int sb_migrate(PGconn *conn, const char *default_cc, sb_err_t *err);

#endif
