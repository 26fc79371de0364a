/* migrations - the schema as numbered SQL files in writer/migrations/, compiled into
 * sb-writer (embed_migrations.cmake). They are applied in order at start, each once,
 * recorded in sb_schema_migrations; an advisory lock makes two writers starting together
 * safe. Each file must be idempotent on its own too (IF NOT EXISTS, OR REPLACE). */
#ifndef SB_MIGRATIONS_H
#define SB_MIGRATIONS_H
#include <stddef.h>

typedef struct {
    int version;      // from the file name, "0002_schema.sql" -> 2
    const char *name; // "0002_schema"
    const char *sql;  // the file's text
} sb_migration_t;

extern const sb_migration_t sb_migrations[];
extern const size_t sb_migrations_n;

#endif
