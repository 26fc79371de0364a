/* fuzz_map_ringcentral - the writer's mapping of a verified event to rows, decided
 * without a database: sb_map_ringcentral_sms and sb_map_ringcentral_call on the raw
 * bytes, sb_map_event for an accepted event of every source, and the same bytes as the
 * enricher's extra frame (sb_map_extra_parse).
 * Checked besides memory safety: every event gets a verdict; a rejection or ignore has
 * a reason; a communication has an external id, the static channel/direction/provider
 * words, a match_phone in E.164 when there is one, and only text PostgreSQL accepts
 * (valid UTF-8, no NUL): a row that fails to insert would turn a good event into a
 * failed one; a call's party states and the extra's rows are JSON documents. */
#include <string.h>
#include <jansson.h>
#include "map_call.h"
#include "map_extra.h"
#include "map_ringcentral.h"
#include "sb_envelope.h"
#include "sb_fuzz.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

static bool
s_one_of(const char *s, const char *const *words, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, words[i]) == 0)
            return true;
    return false;
}

static void
s_check_json(const char *text, int want_array, const char *what)
{
    SB_FUZZ_CHECK(text != NULL && sb_fuzz_text_ok(text), what);
    json_t *doc = json_loads(text, 0, NULL);
    SB_FUZZ_CHECK(want_array ? json_is_array(doc) : json_is_object(doc), what);
    json_decref(doc);
}

static void
s_check_extra(const sb_map_extra_t *x)
{
    static const char *const outcomes[] = {"stored", "duplicate", "rejected", "ignored", "failed"};
    SB_FUZZ_CHECK(x != NULL, "an extra frame always maps");
    s_check_json(x->rows_json, 1, "extra rows are a JSON array");
    SB_FUZZ_CHECK(x->n_rows <= SB_MAP_EXTRA_MAX_ROWS, "extra rows bound");
    SB_FUZZ_CHECK(s_one_of(x->outcome, outcomes, 5), "an extra outcome");
    SB_FUZZ_CHECK(sb_fuzz_text_ok(x->mailbox_email) && sb_fuzz_text_ok(x->mailbox_status) &&
                      sb_fuzz_text_ok(x->reason),
                  "extra text");
    for (const char *p = x->history_id; p && *p; p++)
        SB_FUZZ_CHECK(*p >= '0' && *p <= '9', "history_id is decimal");
}

static void
s_check_map(const sb_map_t *map)
{
    static const char *const channels[] = {"sms", "call", "email"};
    static const char *const directions[] = {"inbound", "outbound"};
    static const char *const providers[] = {"ringcentral", "gmail"};
    if (map->kind == SB_MAP_EXTRA) {
        s_check_extra(map->extra);
        return;
    }
    if (map->kind == SB_MAP_CALL) {
        SB_FUZZ_CHECK(map->comm.external_id && *map->comm.external_id &&
                          sb_fuzz_text_ok(map->comm.external_id),
                      "a call has its session id");
        s_check_json(map->call, 0, "a call's party states are a JSON object");
        return;
    }
    if (map->kind != SB_MAP_COMMUNICATION) {
        SB_FUZZ_CHECK(map->kind == SB_MAP_IGNORED || map->kind == SB_MAP_REJECTED, "a kind");
        SB_FUZZ_CHECK(map->reason && *map->reason && sb_fuzz_text_ok(map->reason), "a reason");
        return;
    }
    const sb_comm_t *c = &map->comm;
    SB_FUZZ_CHECK(c->external_id && *c->external_id, "an external id");
    SB_FUZZ_CHECK(s_one_of(c->channel, channels, 3), "a channel");
    SB_FUZZ_CHECK(s_one_of(c->direction, directions, 2), "a direction");
    SB_FUZZ_CHECK(s_one_of(c->provider, providers, 2), "a provider");
    const char *text[] = {c->external_id, c->thread_id,  c->from_address, c->to_address,
                          c->subject,     c->body,       c->status,       c->occurred_at,
                          c->match_phone, c->match_email};
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        SB_FUZZ_CHECK(sb_fuzz_text_ok(text[i]), "row text is valid UTF-8 without NUL");
    if (c->match_phone) {
        char again[SB_PHONE_E164_MAX];
        SB_FUZZ_CHECK(sb_phone_e164(c->match_phone, "1", again, sizeof again) == 0 &&
                          strcmp(again, c->match_phone) == 0,
                      "match_phone is E.164");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_map_t map;
    sb_map_ringcentral_sms((const char *)data, size, "1", &map);
    s_check_map(&map);
    sb_map_release(&map);
    sb_map_release(&map); // release is safe twice
    sb_map_ringcentral_call((const char *)data, size, "1", &map);
    s_check_map(&map);
    sb_map_release(&map);
    sb_map_extra_t *extra = sb_map_extra_parse((const char *)data, size, "1");
    s_check_extra(extra);
    sb_map_extra_destroy(&extra);

    static const char *const sources[] = {"ringcentral_sms", "ringcentral_call", "gmail_push",
                                          "other"};
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        sb_envelope_t *env = sb_envelope_new();
        sb_envelope_set(&env->event_id, "fuzz:0123456789abcdef:1");
        sb_envelope_set(&env->source, sources[i]);
        sb_envelope_set(&env->verdict, "accepted");
        env->received_at_ms = INT64_C(1795533668000);
        free(env->body);
        env->body = sb_xmemdup(data, size);
        env->body_len = size;
        sb_map_event(env, "1", &map);
        s_check_map(&map);
        sb_map_release(&map);
        sb_envelope_destroy(&env);
    }
    // The same bytes as the extra frame of an enriched Gmail push (frames carry no NUL).
    if (memchr(data, '\0', size) == NULL) {
        sb_envelope_t *env = sb_envelope_new();
        sb_envelope_set(&env->event_id, "fuzz:0123456789abcdef:2");
        sb_envelope_set(&env->source, "gmail_push");
        sb_envelope_set(&env->verdict, "accepted");
        env->extra = sb_xmemdup(data, size);
        sb_map_event(env, "1", &map);
        s_check_map(&map);
        sb_map_release(&map);
        sb_envelope_destroy(&env);
    }
    return 0;
}
