/* db_batch - the "sb_batch" statement and its array parameters (see db_batch.h). */
#include <string.h>
#include "db_batch.h"
#include "map_ringcentral.h"
#include "sb_banned.h"

// $1..$5 the webhook_events row (as in db.c's statements), $6 the outcome of an event
// without a communication (NULL for a communication), $7 its reason, $8..$18 the
// communications row, $19 and $20 what to match a customer on.
//   fresh:    the first copy of each event id that is not in webhook_events yet;
//   numbered: the first fresh event of each communication key (the winner) draws the
//             row's id from the column's own sequence, in batch order, so ids follow
//             the batch as before;
//   f:        every fresh event with key_id, the id its key's winner drew;
//   c:        the winners' rows; a key already there is skipped (its id stays unused);
//   w:        one webhook_events row per fresh event, in batch order: 'stored' when its
//             own row went in, else 'duplicate' with the id of the row that is there.
// No CTE is joined to another: the planner guesses 1 to 200 rows for each, and with
// joins it chose nested loops over CTE scans (quadratic in the batch) once the
// prepared statement went generic. What is left is index probes (webhook_events,
// customers, communications) and "IN (SELECT id FROM c)", a hashed subplan. The caller
// maps the answer (event_id, outcome) back to its events.
const char sb_db_batch_sql[] =
    "WITH e AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[],"
    "   $5::bytea[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],"
    "   $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],"
    "   $18::text[], $19::text[], $20::text[])"
    "   WITH ORDINALITY AS e(event_id, source, received_ms, headers, raw, outcome, reason,"
    "     channel, direction, provider, external_id, thread_id, from_address, to_address,"
    "     subject, body, status, occurred_at, match_phone, match_email, ord)),"
    " fresh AS (SELECT DISTINCT ON (event_id) * FROM e"
    "   WHERE NOT EXISTS (SELECT 1 FROM webhook_events w WHERE w.event_id = e.event_id)"
    "   ORDER BY event_id, ord),"
    " seq AS (SELECT pg_get_serial_sequence('communications', 'id')::regclass AS s),"
    " numbered AS (SELECT *, CASE WHEN winner THEN nextval((SELECT s FROM seq)) END"
    "   AS new_id FROM (SELECT *, outcome IS NULL AND row_number() OVER (PARTITION BY"
    "     provider, channel, external_id ORDER BY ord) = 1 AS winner FROM fresh"
    "     ORDER BY ord) r),"
    " f AS (SELECT *, max(new_id) OVER (PARTITION BY provider, channel, external_id)"
    "   AS key_id FROM numbered),"
    " c AS (INSERT INTO communications (id, customer_id, channel, direction, provider,"
    "   external_id, thread_id, from_address, to_address, subject, body, status, occurred_at)"
    "   SELECT new_id, LEAST((SELECT min(id) FROM customers WHERE phone_e164 = f.match_phone),"
    "       (SELECT min(id) FROM customers WHERE email_norm = f.match_email)),"
    "     channel, direction, provider, external_id, thread_id, from_address, to_address,"
    "     subject, body, status,"
    "     COALESCE(occurred_at::timestamptz, to_timestamp(received_ms / 1000.0))"
    "   FROM f WHERE winner ORDER BY ord" // NOTIFYs in batch order, as before
    "   ON CONFLICT (provider, channel, external_id) DO NOTHING RETURNING id),"
    " w AS (INSERT INTO webhook_events (event_id, source, received_at, outcome, reason,"
    "   communication_id, headers, body)"
    "   SELECT event_id, source, to_timestamp(received_ms / 1000.0),"
    "     CASE WHEN outcome IS NOT NULL THEN outcome"
    "       WHEN new_id IN (SELECT id FROM c) THEN 'stored' ELSE 'duplicate' END,"
    "     reason,"
    "     CASE WHEN outcome IS NOT NULL THEN NULL"
    "       WHEN key_id IN (SELECT id FROM c) THEN key_id"
    "       ELSE (SELECT x.id FROM communications x WHERE x.provider = f.provider"
    "         AND x.channel = f.channel AND x.external_id = f.external_id) END,"
    "     headers::jsonb, raw"
    "   FROM f ORDER BY ord"
    "   ON CONFLICT (event_id) DO NOTHING RETURNING event_id, outcome)"
    " SELECT event_id, outcome FROM w";

const Oid sb_db_batch_types[SB_DB_BATCH_PARAMS] = {
    SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_INT8_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_BYTEA_ARRAY,
    SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY,
    SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY,
    SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY, SB_PG_TEXT_ARRAY};

int
sb_db_batch_fits(const sb_db_event_t *ev)
{
    sb_map_kind_t kind = ev->map->kind;
    return kind == SB_MAP_COMMUNICATION || kind == SB_MAP_IGNORED || kind == SB_MAP_REJECTED;
}

// The text columns of one event, $6..$20 (the first five differ in type).
static void
s_text_columns(const sb_db_event_t *ev, const char *out[SB_DB_BATCH_PARAMS - 5])
{
    const sb_map_t *map = ev->map;
    memset(out, 0, sizeof(const char *) * (SB_DB_BATCH_PARAMS - 5));
    if (map->kind != SB_MAP_COMMUNICATION) {
        out[0] = map->kind == SB_MAP_IGNORED ? "ignored" : "rejected";
        out[1] = map->reason;
        return;
    }
    _Static_assert(SB_COMM_COLUMNS == SB_DB_BATCH_PARAMS - 7, "$8..$20");
    sb_comm_columns(&map->comm, out + 2);
}

void
sb_db_batch_params(sb_db_batch_params_t *p, const sb_db_event_t *events, size_t n)
{
    memset(p, 0, sizeof *p);
    for (size_t k = 0; k < SB_DB_BATCH_PARAMS; k++)
        sb_pg_array_init(&p->cols[k], sb_db_batch_types[k] == SB_PG_INT8_ARRAY    ? SB_PG_INT8
                                      : sb_db_batch_types[k] == SB_PG_BYTEA_ARRAY ? SB_PG_BYTEA
                                                                                  : SB_PG_TEXT);
    for (size_t i = 0; i < n; i++) {
        const sb_envelope_t *env = events[i].env;
        sb_pg_array_add_text(&p->cols[0], env->event_id);
        sb_pg_array_add_text(&p->cols[1], env->source);
        sb_pg_array_add_int8(&p->cols[2], env->received_at_ms);
        sb_pg_array_add_text(&p->cols[3], env->headers ? env->headers : "{}");
        // The raw body as it came: byte exact, NULs included, never parsed again here.
        sb_pg_array_add(&p->cols[4], env->body ? env->body : "", env->body ? env->body_len : 0);
        const char *text[SB_DB_BATCH_PARAMS - 5];
        s_text_columns(&events[i], text);
        for (size_t k = 5; k < SB_DB_BATCH_PARAMS; k++)
            sb_pg_array_add_text(&p->cols[k], text[k - 5]);
    }
    for (size_t k = 0; k < SB_DB_BATCH_PARAMS; k++) {
        p->values[k] = sb_pg_array_finish(&p->cols[k], &p->lengths[k]);
        p->formats[k] = 1;
    }
}

void
sb_db_batch_params_release(sb_db_batch_params_t *p)
{
    for (size_t k = 0; k < SB_DB_BATCH_PARAMS; k++)
        sb_pg_array_release(&p->cols[k]);
}
