/* ingress_health - what the ingress knows of the whole pipeline: stage replicas from
 * their heartbeats, the database from the writers' reports, the spool from itself.
 * GET /api/webhooks/health and the sb_spool_* / sb_stage_up gauges come from here. */
#include <jansson.h>
#include <string.h>
#include "ingress_internal.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_banned.h"

void
sb_ingress_heartbeat(sb_ingress_t *self, const char *stage, const char *instance,
                     const char *status_json, int64_t now_ms)
{
    sb_ingress_instance_t *slot = NULL;
    for (size_t i = 0; i < self->n_instances && slot == NULL; i++)
        if (strcmp(self->instances[i].stage, stage) == 0 &&
            strcmp(self->instances[i].instance, instance) == 0)
            slot = &self->instances[i];
    if (slot == NULL) {
        // Reuse the stalest slot when full: replicas come and go under --scale.
        if (self->n_instances < SB_INGRESS_MAX_INSTANCES) {
            slot = &self->instances[self->n_instances++];
        } else {
            slot = &self->instances[0];
            for (size_t i = 1; i < self->n_instances; i++)
                if (self->instances[i].last_seen_ms < slot->last_seen_ms)
                    slot = &self->instances[i];
        }
        memset(slot, 0, sizeof *slot);
        snprintf(slot->stage, sizeof slot->stage, "%s", stage);
        snprintf(slot->instance, sizeof slot->instance, "%s", instance);
        sb_log_info(NULL, "%s %s is up", slot->stage, slot->instance);
    }
    slot->last_seen_ms = now_ms;
    json_t *status = json_loads(status_json, 0, NULL);
    json_t *db_ok = json_object_get(status, "db_ok");
    slot->db_ok = json_is_true(db_ok);
    const char *db_error = json_string_value(json_object_get(status, "db_error"));
    snprintf(slot->db_error, sizeof slot->db_error, "%s", db_error ? db_error : "");
    json_decref(status);
}

typedef struct {
    int alive;            // replicas seen within the TTL
    int db_ok;            // writers only: one of them reached the database
    const char *db_error; // a writer's last database error
} s_stage_state_t;

static s_stage_state_t
s_stage_state(const sb_ingress_t *self, const char *stage, int64_t now_ms)
{
    s_stage_state_t st = {0, 0, NULL};
    for (size_t i = 0; i < self->n_instances; i++) {
        const sb_ingress_instance_t *in = &self->instances[i];
        if (strcmp(in->stage, stage) != 0 ||
            now_ms - in->last_seen_ms > SB_INGRESS_HEARTBEAT_TTL_MS)
            continue;
        st.alive++;
        if (in->db_ok)
            st.db_ok = 1;
        else if (in->db_error[0])
            st.db_error = in->db_error;
    }
    return st;
}

void
sb_ingress_gauges_update(sb_ingress_t *self, int64_t now_ms)
{
    int64_t oldest = sb_spool_oldest_ms(self->spool);
    sb_gauge_set(self->g_depth, (double)sb_spool_depth(self->spool));
    sb_gauge_set(self->g_bytes, (double)sb_spool_bytes(self->spool));
    sb_gauge_set(self->g_oldest, oldest ? (double)(now_ms - oldest) / 1000.0 : 0.0);
    sb_gauge_set(self->g_torn, (double)sb_spool_torn(self->spool));
    sb_gauge_set(self->g_rto, (double)sb_spool_first_wait_ms(self->spool, now_ms) / 1000.0);
    sb_gauge_set(self->g_stage_up[0], s_stage_state(self, "verifier", now_ms).alive);
    sb_gauge_set(self->g_stage_up[1], s_stage_state(self, "writer", now_ms).alive);
    sb_gauge_set(self->g_stage_up[2], s_stage_state(self, "enricher", now_ms).alive);
}

int
sb_ingress_db_down(const sb_ingress_t *self, int64_t now_ms)
{
    s_stage_state_t writer = s_stage_state(self, "writer", now_ms);
    return writer.alive > 0 && !writer.db_ok;
}

static json_t *
s_stage_json(int alive)
{
    return json_pack("{s:b,s:i}", "alive", alive > 0, "instances", alive);
}

char *
sb_ingress_health_json(sb_ingress_t *self, int64_t now_ms, int *healthy)
{
    s_stage_state_t verifier = s_stage_state(self, "verifier", now_ms);
    s_stage_state_t enricher = s_stage_state(self, "enricher", now_ms);
    s_stage_state_t writer = s_stage_state(self, "writer", now_ms);
    int64_t oldest = sb_spool_oldest_ms(self->spool);
    double lag_s = oldest ? (double)(now_ms - oldest) / 1000.0 : 0.0;
    json_t *reasons = json_array();
    if (sb_spool_failed(self->spool))
        json_array_append_new(reasons, json_string("spool failed: restart the ingress"));
    if (!verifier.alive)
        json_array_append_new(reasons, json_string("no verifier is connected"));
    if (!enricher.alive)
        json_array_append_new(reasons, json_string("no enricher is connected"));
    if (!writer.alive)
        json_array_append_new(reasons, json_string("no writer is connected"));
    else if (!writer.db_ok)
        json_array_append_new(reasons, json_string("database unreachable"));
    if (lag_s > (double)self->conf->health_max_lag_s) {
        char text[96];
        snprintf(text, sizeof text, "oldest unacked event is %.0f s old (limit %lld s)", lag_s,
                 (long long)self->conf->health_max_lag_s);
        json_array_append_new(reasons, json_string(text));
    }
    *healthy = json_array_size(reasons) == 0;
    json_t *stages = json_pack("{s:{s:b},s:o,s:o,s:o}", "ingress", "alive", 1, "verifier",
                               s_stage_json(verifier.alive), "enricher",
                               s_stage_json(enricher.alive), "writer", s_stage_json(writer.alive));
    // Optional stages (renewer, sender, ...) are reported when they heartbeat, but their
    // absence does not make the pipeline degraded: not every deployment runs them.
    for (size_t i = 0; i < self->n_instances; i++) {
        const char *name = self->instances[i].stage;
        if (json_object_get(stages, name) == NULL)
            json_object_set_new(stages, name,
                                s_stage_json(s_stage_state(self, name, now_ms).alive));
    }
    json_t *database = json_pack("{s:b}", "reachable", writer.db_ok);
    if (!writer.db_ok && writer.db_error)
        json_object_set_new(database, "error", json_string(writer.db_error));
    json_t *spool =
        json_pack("{s:I,s:I,s:f,s:I,s:b}", "depth", (json_int_t)sb_spool_depth(self->spool),
                  "bytes", (json_int_t)sb_spool_bytes(self->spool), "oldest_unacked_age_seconds",
                  lag_s, "torn_records", (json_int_t)sb_spool_torn(self->spool), "failed",
                  sb_spool_failed(self->spool));
    json_t *doc =
        json_pack("{s:s,s:o,s:o,s:o,s:o}", "status", *healthy ? "ok" : "degraded", "reasons",
                  reasons, "stages", stages, "database", database, "spool", spool);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text ? text : sb_xstrdup("{\"status\":\"degraded\"}");
}
