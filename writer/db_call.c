/* db_call - the "sb_call" statement and the batch's lock list (see db_call.h). */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "db_call.h"
#include "sb_banned.h"

// Type OIDs (pg_type.h): text, int8, jsonb, bytea.
#define S_TEXT 25
#define S_INT8 20
#define S_BYTEA 17
#define S_JSONB 3802

const char sb_db_call_sql[] = "SELECT * FROM sb_call_event($1, $2, $3, $4, $5, $6, $7)";
const Oid sb_db_call_types[SB_DB_CALL_PARAMS] = {S_TEXT,  S_TEXT,  S_INT8, S_JSONB,
                                                 S_BYTEA, S_JSONB, S_JSONB};

char *
sb_db_call_locks(sb_db_event_t *events, size_t n)
{
    json_t *sessions = NULL;
    sb_db_event_t *first = NULL;
    for (size_t i = 0; i < n; i++) {
        events[i].call_locks = NULL;
        const sb_map_t *map = events[i].map;
        if (map->kind != SB_MAP_CALL || map->comm.external_id == NULL)
            continue;
        if (first == NULL) {
            first = &events[i];
            sessions = json_array();
        }
        // Duplicates are harmless: sb_call_lock takes each distinct session once.
        json_array_append_new(sessions, json_string(map->comm.external_id));
    }
    if (first == NULL)
        return NULL;
    char *text = json_dumps(sessions, JSON_COMPACT);
    json_decref(sessions);
    if (text == NULL)
        abort(); // jansson fails only when out of memory
    first->call_locks = text;
    return text;
}
